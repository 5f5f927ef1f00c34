//! Pull requests: list.

use http::Method;
use serde::Deserialize;

use crate::client::GitHubClient;
use crate::issues::{IssueState, StateFilter};
use crate::request::{Request, repo_path};
use crate::user::User;

/// One end of a pull request: a branch at a commit.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Branch {
    /// `owner:branch`.
    #[serde(default)]
    pub label: String,
    /// The branch name.
    #[serde(rename = "ref", default)]
    pub name: String,
    /// The commit SHA.
    #[serde(default)]
    pub sha: String,
}

/// A pull request as lists return it (`pull-request-simple`). Fields not modelled here are
/// ignored.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct PullRequest {
    /// The numeric id.
    pub id: u64,
    /// The number in its repository.
    pub number: u64,
    /// Open or closed.
    pub state: IssueState,
    /// The title.
    pub title: String,
    /// The body (Markdown).
    #[serde(default)]
    pub body: Option<String>,
    /// The author.
    #[serde(default)]
    pub user: Option<User>,
    /// True for a draft.
    #[serde(default)]
    pub draft: bool,
    /// The branch with the changes.
    pub head: Branch,
    /// The branch the changes go into.
    pub base: Branch,
    /// ISO 8601 merge time, when merged.
    #[serde(default)]
    pub merged_at: Option<String>,
    /// The web page.
    #[serde(default)]
    pub html_url: String,
    /// ISO 8601 creation time.
    #[serde(default)]
    pub created_at: String,
    /// ISO 8601 time of the last change.
    #[serde(default)]
    pub updated_at: String,
}

/// Filters of `GET /repos/{owner}/{repo}/pulls`.
impl Request<Vec<PullRequest>> {
    /// Open (default), closed or all.
    pub fn state(self, state: StateFilter) -> Self {
        self.query("state", state.as_str())
    }

    /// Only pull requests into `branch`.
    pub fn base(self, branch: &str) -> Self {
        self.query("base", branch)
    }

    /// Only pull requests from `user:branch`.
    pub fn head(self, user_and_branch: &str) -> Self {
        self.query("head", user_and_branch)
    }
}

/// The pull requests of one repository of a [`GitHubClient`].
#[derive(Clone, Debug)]
pub struct Pulls {
    client: GitHubClient,
    owner: String,
    repo: String,
}

impl Pulls {
    pub(crate) fn new(client: GitHubClient, owner: &str, repo: &str) -> Self {
        Self {
            client,
            owner: owner.to_owned(),
            repo: repo.to_owned(),
        }
    }

    /// `GET /repos/{owner}/{repo}/pulls`: one page; every page with `.pages()`.
    pub fn list(&self) -> Request<Vec<PullRequest>> {
        Request::new(
            self.client.clone(),
            Method::GET,
            repo_path(&self.owner, &self.repo, "/pulls"),
            "pulls.list",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pull_request_decodes_its_branches() {
        let pull: PullRequest = serde_json::from_str(
            r#"{"id":1,"number":1347,"state":"open","title":"Amazing new feature","body":null,
            "user":{"login":"octocat","id":1,"type":"User"},"draft":false,
            "head":{"label":"octocat:new-topic","ref":"new-topic","sha":"6dcb09b5","repo":null},
            "base":{"label":"octocat:master","ref":"master","sha":"6dcb09b5"},
            "merged_at":null,"html_url":"https://github.com/o/r/pull/1347",
            "created_at":"2011-01-26T19:01:12Z","updated_at":"2011-01-26T19:01:12Z"}"#,
        )
        .unwrap();
        assert_eq!(pull.head.name, "new-topic");
        assert_eq!(pull.base.name, "master");
        let client = GitHubClient::new("t").unwrap();
        let list = client
            .pulls("o", "r")
            .list()
            .state(StateFilter::Closed)
            .base("main");
        assert_eq!(
            list.path_and_query(),
            "/repos/o/r/pulls?state=closed&base=main"
        );
    }
}
