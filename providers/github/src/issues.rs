//! Issues: list (with filters), get, create, comment.

use http::Method;
use serde::{Deserialize, Deserializer, Serialize};

use crate::client::{GitHubClient, json_body};
use crate::request::{Request, repo_path};
use crate::user::User;

/// An issue's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IssueState {
    /// Open.
    Open,
    /// Closed.
    Closed,
    /// A state this crate does not know yet.
    #[serde(other)]
    Unknown,
}

/// Which issues a list returns by state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StateFilter {
    /// Open only (GitHub's default).
    Open,
    /// Closed only.
    Closed,
    /// Both.
    All,
}

impl StateFilter {
    /// The query value.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::All => "all",
        }
    }
}

/// A label: GitHub sends objects, and on some endpoints bare names.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Label {
    /// The name (`bug`).
    pub name: String,
    /// The colour, hex without `#`.
    pub color: Option<String>,
    /// The description.
    pub description: Option<String>,
}

impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Object {
            #[serde(default)]
            name: Option<String>,
            #[serde(default)]
            color: Option<String>,
            #[serde(default)]
            description: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Object(Object),
        }
        Ok(match Raw::deserialize(deserializer)? {
            Raw::Name(name) => Self {
                name,
                color: None,
                description: None,
            },
            Raw::Object(o) => Self {
                name: o.name.unwrap_or_default(),
                color: o.color,
                description: o.description,
            },
        })
    }
}

/// An issue (or a pull request seen as an issue: [`Issue::is_pull_request`]). Fields not
/// modelled here are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Issue {
    /// The numeric id.
    pub id: u64,
    /// The number in its repository (`#42`).
    pub number: u64,
    /// The title.
    pub title: String,
    /// The body (Markdown).
    #[serde(default)]
    pub body: Option<String>,
    /// Open or closed.
    pub state: IssueState,
    /// Why it was closed (`completed`, `not_planned`, …).
    #[serde(default)]
    pub state_reason: Option<String>,
    /// The author.
    #[serde(default)]
    pub user: Option<User>,
    /// The labels.
    #[serde(default)]
    pub labels: Vec<Label>,
    /// The assignees.
    #[serde(default)]
    pub assignees: Vec<User>,
    /// The number of comments.
    #[serde(default)]
    pub comments: u64,
    /// True when locked.
    #[serde(default)]
    pub locked: bool,
    /// Present when the issue is a pull request.
    #[serde(default)]
    pub pull_request: Option<serde_json::Value>,
    /// The web page.
    #[serde(default)]
    pub html_url: String,
    /// ISO 8601 creation time.
    #[serde(default)]
    pub created_at: String,
    /// ISO 8601 time of the last change.
    #[serde(default)]
    pub updated_at: String,
    /// ISO 8601 closing time.
    #[serde(default)]
    pub closed_at: Option<String>,
}

impl Issue {
    /// True when this issue is a pull request (issue lists include them).
    pub fn is_pull_request(&self) -> bool {
        self.pull_request.is_some()
    }
}

/// A comment on an issue or pull request.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Comment {
    /// The numeric id.
    pub id: u64,
    /// The body (Markdown).
    #[serde(default)]
    pub body: Option<String>,
    /// The author.
    #[serde(default)]
    pub user: Option<User>,
    /// The web page.
    #[serde(default)]
    pub html_url: String,
    /// The issue's API URL.
    #[serde(default)]
    pub issue_url: String,
    /// ISO 8601 creation time.
    #[serde(default)]
    pub created_at: String,
    /// ISO 8601 time of the last change.
    #[serde(default)]
    pub updated_at: String,
}

/// The body of `POST /repos/{owner}/{repo}/issues`: the title is required.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct CreateIssue {
    title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    labels: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    assignees: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    milestone: Option<u64>,
}

impl CreateIssue {
    /// An issue titled `title`.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            body: None,
            labels: Vec::new(),
            assignees: Vec::new(),
            milestone: None,
        }
    }

    /// The body (Markdown).
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// One more label.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.labels.push(label.into());
        self
    }

    /// One more assignee (a login).
    pub fn assignee(mut self, login: impl Into<String>) -> Self {
        self.assignees.push(login.into());
        self
    }

    /// The milestone number.
    pub fn milestone(mut self, number: u64) -> Self {
        self.milestone = Some(number);
        self
    }
}

/// Filters of `GET /repos/{owner}/{repo}/issues`.
impl Request<Vec<Issue>> {
    /// Open (default), closed or all.
    pub fn state(self, state: StateFilter) -> Self {
        self.query("state", state.as_str())
    }

    /// Only issues carrying every one of `labels`.
    pub fn labels(self, labels: &[&str]) -> Self {
        self.query("labels", labels.join(","))
    }

    /// Only issues created by `login`.
    pub fn creator(self, login: &str) -> Self {
        self.query("creator", login)
    }

    /// Only issues assigned to `login` (`none`, `*` for any).
    pub fn assignee(self, login: &str) -> Self {
        self.query("assignee", login)
    }

    /// Only issues updated at or after `timestamp` (ISO 8601).
    pub fn since(self, timestamp: &str) -> Self {
        self.query("since", timestamp)
    }

    /// Sorted by `created` (default), `updated` or `comments`, `desc` (default) or `asc`.
    pub fn sort(self, field: &str, ascending: bool) -> Self {
        self.query("sort", field)
            .query("direction", if ascending { "asc" } else { "desc" })
    }
}

/// The issues of one repository of a [`GitHubClient`].
#[derive(Clone, Debug)]
pub struct Issues {
    client: GitHubClient,
    owner: String,
    repo: String,
}

impl Issues {
    pub(crate) fn new(client: GitHubClient, owner: &str, repo: &str) -> Self {
        Self {
            client,
            owner: owner.to_owned(),
            repo: repo.to_owned(),
        }
    }

    fn path(&self, rest: &str) -> String {
        repo_path(&self.owner, &self.repo, rest)
    }

    /// `GET /repos/{owner}/{repo}/issues`: one page; filter with [`state`](Request::state),
    /// [`labels`](Request::labels), …; every page with `.pages()`.
    pub fn list(&self) -> Request<Vec<Issue>> {
        Request::new(
            self.client.clone(),
            Method::GET,
            self.path("/issues"),
            "issues.list",
        )
    }

    /// `GET /repos/{owner}/{repo}/issues/{number}`.
    pub fn get(&self, number: u64) -> Request<Issue> {
        Request::new(
            self.client.clone(),
            Method::GET,
            self.path(&format!("/issues/{number}")),
            "issues.get",
        )
    }

    /// `POST /repos/{owner}/{repo}/issues`. GitHub has no idempotency key: the call is retried
    /// only after failures that certainly did not create the issue (rate limits, connection
    /// refused); after an ambiguous one it ends with `Error::Ambiguous`.
    pub fn create(&self, issue: CreateIssue) -> Request<Issue> {
        Request::new(
            self.client.clone(),
            Method::POST,
            self.path("/issues"),
            "issues.create",
        )
        .json(json_body(&issue))
    }

    /// `POST /repos/{owner}/{repo}/issues/{number}/comments`, retried like
    /// [`create`](Self::create).
    pub fn comment(&self, number: u64, body: &str) -> Request<Comment> {
        Request::new(
            self.client.clone(),
            Method::POST,
            self.path(&format!("/issues/{number}/comments")),
            "issues.comment",
        )
        .json(json_body(&serde_json::json!({ "body": body })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issue_decodes_labels_in_both_shapes_and_flags_pull_requests() {
        let issue: Issue = serde_json::from_str(
            r#"{"id":1,"node_id":"MDU6SXNzdWUx","number":1347,"title":"Found a bug",
            "body":"I'm having a problem with this.","state":"open","state_reason":null,
            "user":{"login":"octocat","id":1,"type":"User"},
            "labels":[{"id":208045946,"name":"bug","color":"f29513","description":"Something isn't working"},"triage"],
            "assignees":[],"comments":0,"locked":false,
            "pull_request":{"url":"https://api.github.com/repos/o/r/pulls/1347"},
            "html_url":"https://github.com/o/r/issues/1347",
            "created_at":"2011-04-22T13:33:48Z","updated_at":"2011-04-22T13:33:48Z","closed_at":null,
            "reactions":{"total_count":0}}"#,
        )
        .unwrap();
        assert_eq!(issue.labels[0].name, "bug");
        assert_eq!(issue.labels[1].name, "triage");
        assert!(issue.is_pull_request());
        assert_eq!(issue.state, IssueState::Open);
        let odd: IssueState = serde_json::from_str(r#""archived""#).unwrap();
        assert_eq!(odd, IssueState::Unknown);
    }

    #[test]
    fn filters_and_create_bodies_send_only_what_was_set() {
        let client = GitHubClient::new("t").unwrap();
        let list = client
            .issues("o", "r")
            .list()
            .state(StateFilter::All)
            .labels(&["bug", "ui"])
            .sort("updated", true);
        assert_eq!(
            list.path_and_query(),
            "/repos/o/r/issues?state=all&labels=bug%2Cui&sort=updated&direction=asc"
        );
        let body = serde_json::to_value(CreateIssue::new("Crash").label("bug")).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"title": "Crash", "labels": ["bug"]})
        );
    }
}
