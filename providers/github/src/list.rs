//! Pagination: list endpoints follow the `Link: <…>; rel="next"` header, page by page or as a
//! `Stream`.

use futures_util::Stream;
use ratewise_core::pages::PageSource;
use serde::de::DeserializeOwned;

use crate::request::{Error, Request};

/// A response body that holds one page of items: a JSON array (`Vec<T>`), or a search result
/// (`{"total_count", "items": [...]}`).
pub trait Listing: DeserializeOwned + Send {
    /// The item type.
    type Item: Send;
    /// The items of this page.
    fn into_items(self) -> Vec<Self::Item>;
}

impl<T: DeserializeOwned + Send> Listing for Vec<T> {
    type Item = T;
    fn into_items(self) -> Vec<T> {
        self
    }
}

/// One page of a list.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// The next page (a path under the base URL), if any.
    pub next: Option<String>,
    /// True when the page was answered `304 Not Modified` from the ETag cache.
    pub not_modified: bool,
}

/// Paging parameters of any list request.
impl<L: Listing> Request<L> {
    /// At most `per_page` items per page (GitHub: 1 to 100, default 30).
    pub fn per_page(self, per_page: u8) -> Self {
        self.query("per_page", per_page)
    }

    /// Page `page` (1-based).
    pub fn page(self, page: u32) -> Self {
        self.query("page", page)
    }

    /// Every page of this list, following `Link: rel="next"`.
    pub fn pages(self) -> Pages<L> {
        Pages {
            template: self,
            next: None,
            done: false,
        }
    }
}

/// Walks a list page by page, each page one logical call through the pipeline (and through
/// the ETag cache: an unchanged page is a free 304).
///
/// ```no_run
/// use futures_util::{StreamExt, pin_mut};
/// # async fn run(client: ratewise_github::GitHubClient) -> Result<(), ratewise_github::Error> {
/// let issues = client.issues("octo-org", "hello-world").list().per_page(100).pages().into_stream();
/// pin_mut!(issues);
/// while let Some(issue) = issues.next().await {
///     let issue = issue?;
///     println!("#{} {}", issue.number, issue.title);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Pages<L> {
    template: Request<L>,
    next: Option<String>,
    done: bool,
}

impl<L: Listing> Pages<L> {
    /// The next page, or `None` after the last one. A failed page can be asked for again.
    pub async fn next_page(&mut self) -> Result<Option<Page<L::Item>>, Error> {
        if self.done {
            return Ok(None);
        }
        let request = match &self.next {
            Some(next) => self.template.clone().at(next),
            None => self.template.clone(),
        };
        let meta = request.send_with_meta().await?;
        match &meta.next_page {
            Some(next) => self.next = Some(next.clone()),
            None => self.done = true,
        }
        Ok(Some(Page {
            items: meta.value.into_items(),
            next: meta.next_page,
            not_modified: meta.not_modified,
        }))
    }

    /// Every item of every page, as an async stream fetching one page at a time.
    ///
    /// Ends after the last item, or after the first error (which it yields).
    pub fn into_stream(self) -> impl Stream<Item = Result<L::Item, Error>> {
        ratewise_core::pages::items(self)
    }
}

impl<L: Listing> PageSource for Pages<L> {
    type Item = L::Item;
    type Error = Error;

    async fn next_items(&mut self) -> Result<Option<Vec<L::Item>>, Error> {
        Ok(self.next_page().await?.map(|page| page.items))
    }
}
