//! [`List`]: one page of a list endpoint, and [`Pages`] to walk them with `starting_after`.

use futures_util::Stream;
use ratewise_core::pages::PageSource;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::request::{Error, Request};

/// A Stripe object with an id: what pagination needs to continue after it.
pub trait Object {
    /// The object's id (`pi_…`, `cus_…`).
    fn id(&self) -> &str;
}

/// One page of a list: `{"object": "list", "data": [...], "has_more": bool, "url": "…"}`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct List<T> {
    /// The objects of this page, newest first.
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    /// True when more objects follow this page.
    #[serde(default)]
    pub has_more: bool,
    /// The list's URL.
    #[serde(default)]
    pub url: Option<String>,
}

impl<T: Object> List<T> {
    /// The cursor for the next page (`starting_after`): the last object's id, if more follow.
    pub fn next_cursor(&self) -> Option<&str> {
        if self.has_more {
            self.data.last().map(Object::id)
        } else {
            None
        }
    }
}

/// A list request with paging parameters.
impl<T: DeserializeOwned> Request<List<T>> {
    /// At most `limit` objects per page (Stripe: 1 to 100, default 10).
    pub fn limit(self, limit: u8) -> Self {
        self.param("limit", limit)
    }

    /// The page after the object `id` (the previous page's [`List::next_cursor`]).
    pub fn starting_after(self, id: &str) -> Self {
        self.param("starting_after", id)
    }

    /// The page before the object `id`.
    pub fn ending_before(self, id: &str) -> Self {
        self.param("ending_before", id)
    }
}

/// Walks a list page by page, each page one logical call through the pipeline.
///
/// ```no_run
/// # async fn run(client: ratewise_stripe::StripeClient) -> Result<(), ratewise_stripe::Error> {
/// let mut pages = client.payment_intents().list().limit(100).pages();
/// while let Some(page) = pages.next_page().await? {
///     for intent in page.data {
///         println!("{} {}", intent.id, intent.amount);
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Pages<T> {
    template: Request<List<T>>,
    cursor: Option<String>,
    done: bool,
}

impl<T: DeserializeOwned + Object> Request<List<T>> {
    /// Every page of this list, following `starting_after` from the last object of each page.
    pub fn pages(self) -> Pages<T> {
        Pages {
            template: self,
            cursor: None,
            done: false,
        }
    }
}

impl<T: DeserializeOwned + Object> Pages<T> {
    /// The next page, or `None` after the last one. A failed page can be asked for again.
    pub async fn next_page(&mut self) -> Result<Option<List<T>>, Error> {
        if self.done {
            return Ok(None);
        }
        let request = match &self.cursor {
            Some(cursor) => self.template.clone().starting_after(cursor),
            None => self.template.clone(),
        };
        let page = request.send().await?;
        match page.next_cursor() {
            Some(cursor) => self.cursor = Some(cursor.to_owned()),
            None => self.done = true,
        }
        Ok(Some(page))
    }

    /// Every object of every page, as an async stream fetching one page at a time.
    ///
    /// Ends after the last object, or after the first error (which it yields).
    ///
    /// ```no_run
    /// use futures_util::{StreamExt, pin_mut};
    /// # async fn run(client: ratewise_stripe::StripeClient) -> Result<(), ratewise_stripe::Error> {
    /// let customers = client.customers().list().limit(100).pages().into_stream();
    /// pin_mut!(customers);
    /// while let Some(customer) = customers.next().await {
    ///     println!("{}", customer?.id);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn into_stream(self) -> impl Stream<Item = Result<T, Error>>
    where
        T: Send,
    {
        ratewise_core::pages::items(self)
    }
}

impl<T: DeserializeOwned + Object + Send> PageSource for Pages<T> {
    type Item = T;
    type Error = Error;

    async fn next_items(&mut self) -> Result<Option<Vec<T>>, Error> {
        Ok(self.next_page().await?.map(|page| page.data))
    }
}
