//! Paginated listings as one stream of items: [`PageSource`] and [`items`].
//!
//! Every provider paginates its own way (Stripe's `starting_after` cursor, GitHub's `Link:
//! rel="next"`, Twilio's `next_page_uri`), but once a provider can fetch "the next page", walking
//! every item is the same: fetch a page, hand out its items, fetch the next only when they are
//! used up, stop after the last page or after the first error. Providers implement
//! [`PageSource`]; [`items`] does the walking.

use std::collections::VecDeque;
use std::future::Future;

use futures_util::Stream;

/// Something that fetches a listing one page at a time.
pub trait PageSource: Send {
    /// One element of a page.
    type Item: Send;
    /// What a failed page fetch returns.
    type Error: Send;

    /// The next page's items, or `None` after the last page. After an error the source is
    /// expected to fetch the same page again when asked.
    fn next_items(
        &mut self,
    ) -> impl Future<Output = Result<Option<Vec<Self::Item>>, Self::Error>> + Send;
}

/// Every item of every page of `source`, fetching a page only when the previous one's items
/// are used up. Ends after the last item, or after the first error (which it yields).
pub fn items<S: PageSource>(source: S) -> impl Stream<Item = Result<S::Item, S::Error>> + Send {
    let state = (source, VecDeque::new(), false);
    futures_util::stream::unfold(state, |(mut source, mut buffer, failed)| async move {
        loop {
            if failed {
                return None;
            }
            if let Some(item) = buffer.pop_front() {
                return Some((Ok(item), (source, buffer, false)));
            }
            match source.next_items().await {
                Ok(Some(page)) => buffer.extend(page),
                Ok(None) => return None,
                Err(error) => return Some((Err(error), (source, buffer, true))),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    /// Pages of the given sizes; fails once when asked for page `fail_at`.
    struct Numbers {
        pages: VecDeque<Vec<u32>>,
        fail_at: Option<usize>,
        fetched: usize,
    }

    impl PageSource for Numbers {
        type Item = u32;
        type Error = String;

        async fn next_items(&mut self) -> Result<Option<Vec<u32>>, String> {
            if self.fail_at == Some(self.fetched) {
                self.fail_at = None;
                return Err(format!("page {} failed", self.fetched));
            }
            self.fetched += 1;
            Ok(self.pages.pop_front())
        }
    }

    fn numbers(pages: &[&[u32]], fail_at: Option<usize>) -> Numbers {
        Numbers {
            pages: pages.iter().map(|p| p.to_vec()).collect(),
            fail_at,
            fetched: 0,
        }
    }

    #[tokio::test]
    async fn items_walk_every_page_in_order_skipping_empty_ones() {
        let all: Vec<_> = items(numbers(&[&[1, 2], &[], &[3]], None)).collect().await;
        assert_eq!(all, [Ok(1), Ok(2), Ok(3)]);
    }

    #[tokio::test]
    async fn a_failed_page_ends_the_stream_after_the_items_before_it_and_the_error() {
        let all: Vec<_> = items(numbers(&[&[1, 2], &[3]], Some(1))).collect().await;
        assert_eq!(all, [Ok(1), Ok(2), Err("page 1 failed".to_owned())]);
    }

    #[tokio::test]
    async fn a_page_is_fetched_only_when_the_previous_one_is_used_up() {
        let stream = items(numbers(&[&[1, 2], &[3]], None));
        futures_util::pin_mut!(stream);
        assert_eq!(stream.next().await, Some(Ok(1)));
        assert_eq!(stream.next().await, Some(Ok(2)));
        assert_eq!(stream.next().await, Some(Ok(3)));
        assert_eq!(stream.next().await, None);
    }
}
