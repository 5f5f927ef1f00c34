//! Search: issues and pull requests (`GET /search/issues`), paginated like every list.

use http::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::client::GitHubClient;
use crate::issues::Issue;
use crate::list::Listing;
use crate::request::Request;

/// One page of search results.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct SearchResults<T> {
    /// Matches in total (all pages).
    #[serde(default)]
    pub total_count: u64,
    /// True when the search timed out and the results may be partial.
    #[serde(default)]
    pub incomplete_results: bool,
    /// The matches of this page.
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
}

impl<T: DeserializeOwned + Send> Listing for SearchResults<T> {
    type Item = T;
    fn into_items(self) -> Vec<T> {
        self.items
    }
}

/// The search endpoints of a [`GitHubClient`]. Searches spend the `search` budget (30 per
/// minute for a token) and are spaced 2 s apart by default.
#[derive(Clone, Debug)]
pub struct Search {
    client: GitHubClient,
}

impl Search {
    pub(crate) fn new(client: GitHubClient) -> Self {
        Self { client }
    }

    /// `GET /search/issues?q=…` (`repo:octo-org/hello-world is:issue is:open crash`).
    pub fn issues(&self, query: &str) -> Request<SearchResults<Issue>> {
        Request::new(
            self.client.clone(),
            Method::GET,
            "/search/issues".to_owned(),
            "search.issues",
        )
        .query("q", query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_decode_and_page_their_items() {
        let results: SearchResults<Issue> = serde_json::from_str(
            r#"{"total_count":280,"incomplete_results":false,"items":[{"id":1,"number":2,
            "title":"Crash on start","state":"open","score":1.0}]}"#,
        )
        .unwrap();
        assert_eq!(results.total_count, 280);
        assert_eq!(results.into_items()[0].title, "Crash on start");
        let client = GitHubClient::new("t").unwrap();
        let request = client.search().issues("repo:o/r crash").per_page(50);
        assert_eq!(
            request.path_and_query(),
            "/search/issues?q=repo%3Ao%2Fr%20crash&per_page=50"
        );
    }
}
