//! [`User`]: the account summary embedded in issues, pulls and repositories (`simple-user`).

use serde::Deserialize;

/// An account (user, organization or bot) as GitHub embeds it. Fields not modelled here are
/// ignored.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct User {
    /// The login (`octocat`).
    pub login: String,
    /// The numeric id.
    #[serde(default)]
    pub id: u64,
    /// `User`, `Organization` or `Bot`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The profile page.
    #[serde(default)]
    pub html_url: Option<String>,
    /// The avatar image.
    #[serde(default)]
    pub avatar_url: Option<String>,
}
