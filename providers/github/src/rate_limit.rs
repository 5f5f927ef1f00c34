//! `GET /rate_limit`: every resource's budget, without spending primary budget.

use std::collections::BTreeMap;

use http::Method;
use serde::Deserialize;

use crate::client::GitHubClient;
use crate::request::Request;

/// One resource's budget (`rate-limit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ResourceLimit {
    /// The budget per window.
    pub limit: u64,
    /// What is left.
    pub remaining: u64,
    /// What was spent.
    #[serde(default)]
    pub used: u64,
    /// When the window resets, in UTC epoch seconds.
    pub reset: u64,
}

/// Every resource's budget (`rate-limit-overview`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct RateLimitOverview {
    /// By resource name: `core`, `search`, `code_search`, `graphql`, ….
    pub resources: BTreeMap<String, ResourceLimit>,
    /// The `core` budget (deprecated by GitHub in favour of `resources.core`).
    #[serde(default)]
    pub rate: Option<ResourceLimit>,
}

/// The rate-limit endpoint of a [`GitHubClient`].
#[derive(Clone, Debug)]
pub struct RateLimits {
    client: GitHubClient,
}

impl RateLimits {
    pub(crate) fn new(client: GitHubClient) -> Self {
        Self { client }
    }

    /// `GET /rate_limit`. Free of primary budget, but it does count against the secondary
    /// limits, so it is never sent conditionally nor more often than asked.
    pub fn get(&self) -> Request<RateLimitOverview> {
        Request::new(
            self.client.clone(),
            Method::GET,
            "/rate_limit".to_owned(),
            "rate_limit.get",
        )
        .no_cache()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overview_decodes_every_resource() {
        let overview: RateLimitOverview = serde_json::from_str(
            r#"{"resources":{"core":{"limit":5000,"used":1,"remaining":4999,"reset":1691591363},
            "search":{"limit":30,"used":12,"remaining":18,"reset":1691591091},
            "graphql":{"limit":5000,"used":7,"remaining":4993,"reset":1691593228}},
            "rate":{"limit":5000,"used":1,"remaining":4999,"reset":1372700873}}"#,
        )
        .unwrap();
        assert_eq!(overview.resources["search"].remaining, 18);
        assert_eq!(overview.rate.unwrap().limit, 5000);
    }
}
