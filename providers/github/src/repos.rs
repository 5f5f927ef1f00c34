//! Repositories: get one, and its files ([`Repos::content`]).

use http::Method;
use serde::Deserialize;

use crate::client::GitHubClient;
use crate::contents::File;
use crate::request::{Request, component, repo_path};
use crate::user::User;

/// A repository (`full-repository`). Fields not modelled here are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Repository {
    /// The numeric id.
    pub id: u64,
    /// The name (`hello-world`).
    pub name: String,
    /// `owner/name`.
    pub full_name: String,
    /// The owner.
    pub owner: User,
    /// True for a private repository.
    #[serde(default)]
    pub private: bool,
    /// The description.
    #[serde(default)]
    pub description: Option<String>,
    /// True for a fork.
    #[serde(default)]
    pub fork: bool,
    /// The web page.
    #[serde(default)]
    pub html_url: String,
    /// The default branch (`main`).
    #[serde(default)]
    pub default_branch: String,
    /// Open issues and pull requests.
    #[serde(default)]
    pub open_issues_count: u64,
    /// Stars.
    #[serde(default)]
    pub stargazers_count: u64,
    /// Forks.
    #[serde(default)]
    pub forks_count: u64,
    /// True when archived (read-only).
    #[serde(default)]
    pub archived: bool,
    /// ISO 8601 creation time.
    #[serde(default)]
    pub created_at: Option<String>,
    /// ISO 8601 time of the last change.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// ISO 8601 time of the last push.
    #[serde(default)]
    pub pushed_at: Option<String>,
}

/// One repository of a [`GitHubClient`].
#[derive(Clone, Debug)]
pub struct Repos {
    client: GitHubClient,
    owner: String,
    repo: String,
}

impl Repos {
    pub(crate) fn new(client: GitHubClient, owner: &str, repo: &str) -> Self {
        Self {
            client,
            owner: owner.to_owned(),
            repo: repo.to_owned(),
        }
    }

    /// `GET /repos/{owner}/{repo}`.
    pub fn get(&self) -> Request<Repository> {
        Request::new(
            self.client.clone(),
            Method::GET,
            repo_path(&self.owner, &self.repo, ""),
            "repos.get",
        )
    }

    /// `GET /repos/{owner}/{repo}/contents/{path}`: one file, its content decoded from base64.
    /// Pick a branch, tag or commit with `.query("ref", …)`.
    pub fn content(&self, path: &str) -> Request<File> {
        let encoded: Vec<String> = path.trim_matches('/').split('/').map(component).collect();
        Request::new(
            self.client.clone(),
            Method::GET,
            repo_path(
                &self.owner,
                &self.repo,
                &format!("/contents/{}", encoded.join("/")),
            ),
            "repos.content",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repository_decodes_with_nulls_and_unknown_fields() {
        let repo: Repository = serde_json::from_str(
            r#"{"id":1296269,"node_id":"MDEwOlJlcG9zaXRvcnkxMjk2MjY5","name":"Hello-World",
            "full_name":"octocat/Hello-World","owner":{"login":"octocat","id":1,"type":"User"},
            "private":false,"description":null,"fork":false,"html_url":"https://github.com/octocat/Hello-World",
            "default_branch":"master","open_issues_count":0,"stargazers_count":80,"forks_count":9,
            "archived":false,"pushed_at":"2011-01-26T19:06:43Z","permissions":{"admin":false}}"#,
        )
        .unwrap();
        assert_eq!(repo.full_name, "octocat/Hello-World");
        assert_eq!(repo.owner.kind, "User");
        assert_eq!(repo.description, None);
    }

    #[test]
    fn a_file_path_keeps_its_slashes_and_encodes_the_rest() {
        let client = GitHubClient::new("t").unwrap();
        let request = client.repos("o", "r").content("/docs/a b.md");
        assert_eq!(
            request.path_and_query(),
            "/repos/o/r/contents/docs/a%20b.md"
        );
    }
}
