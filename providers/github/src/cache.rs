//! [`EtagCache`]: the bounded in-memory cache behind conditional requests.
//!
//! GitHub answers a GET sent with `If-None-Match: "<etag>"` with `304 Not Modified` when the
//! resource has not changed, and a 304 **does not count against the primary rate limit**. The
//! client keeps the last `ETag` and body of each GET URL (path and query) here, sends the ETag
//! on the next GET of that URL, and on a 304 returns the cached body. The `Link` header is kept
//! too: a 304 need not repeat it, and a list page answered from the cache must still lead to
//! the next page.
//!
//! Bounded: at most [`DEFAULT_CAPACITY`] entries (1,000) by default, each body at most
//! [`DEFAULT_MAX_BODY`] (1 MiB; larger bodies are not cached); past the capacity the entry used
//! least recently is dropped.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use http::HeaderValue;

/// The default number of cached URLs: 1,000.
pub const DEFAULT_CAPACITY: usize = 1_000;
/// The largest body cached by default: 1 MiB.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;

/// What the cache did, since the client was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// GETs sent with `If-None-Match` (a cached ETag existed).
    pub conditional: u64,
    /// Of those, answered `304 Not Modified` from the cache (no primary budget spent).
    pub not_modified: u64,
    /// Responses stored (or replaced).
    pub stored: u64,
    /// Entries dropped to stay within the capacity.
    pub evicted: u64,
}

/// A bounded map from GET URL to its last `ETag` and body.
#[derive(Debug)]
pub struct EtagCache {
    capacity: usize,
    max_body: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Entry>,
    tick: u64,
    stats: CacheStats,
}

#[derive(Debug)]
struct Entry {
    cached: Cached,
    used: u64,
}

/// What the cache keeps of one GET response.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cached {
    /// The `ETag`, sent back in `If-None-Match`.
    pub etag: HeaderValue,
    /// The body.
    pub body: Bytes,
    /// The `Link` header, if the response had one.
    pub link: Option<HeaderValue>,
}

impl Cached {
    /// A cached response: its `etag`, `body` and `Link` header.
    pub fn new(etag: HeaderValue, body: Bytes, link: Option<HeaderValue>) -> Self {
        Self { etag, body, link }
    }
}

impl Default for EtagCache {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl EtagCache {
    /// A cache of at most `capacity` URLs (at least 1), bodies up to [`DEFAULT_MAX_BODY`].
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            max_body: DEFAULT_MAX_BODY,
            state: Mutex::new(State::default()),
        }
    }

    /// This cache keeping only bodies up to `bytes`.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What is cached for `url`, counted as a conditional request when found.
    pub fn lookup(&self, url: &str) -> Option<Cached> {
        let mut state = self.lock();
        state.tick = state.tick.wrapping_add(1);
        let tick = state.tick;
        let entry = state.entries.get_mut(url)?;
        entry.used = tick;
        let found = entry.cached.clone();
        state.stats.conditional = state.stats.conditional.saturating_add(1);
        Some(found)
    }

    /// Records that a conditional GET was answered `304 Not Modified`.
    pub fn record_not_modified(&self) {
        let mut state = self.lock();
        state.stats.not_modified = state.stats.not_modified.saturating_add(1);
    }

    /// Stores `cached` under `url` (bodies over the size bound are not kept, and drop what was
    /// cached for `url`).
    pub fn store(&self, url: &str, cached: Cached) {
        let mut state = self.lock();
        if cached.body.len() > self.max_body {
            state.entries.remove(url);
            return;
        }
        if !state.entries.contains_key(url) && state.entries.len() >= self.capacity {
            let oldest = state
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                state.entries.remove(&oldest);
                state.stats.evicted = state.stats.evicted.saturating_add(1);
            }
        }
        state.tick = state.tick.wrapping_add(1);
        let used = state.tick;
        state.entries.insert(url.to_owned(), Entry { cached, used });
        state.stats.stored = state.stats.stored.saturating_add(1);
    }

    /// Forgets `url` (after a write changed it, or to force a full GET).
    pub fn remove(&self, url: &str) {
        self.lock().entries.remove(url);
    }

    /// The number of cached URLs.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the cache did so far.
    pub fn stats(&self) -> CacheStats {
        self.lock().stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn etag(tag: &'static str) -> HeaderValue {
        HeaderValue::from_static(tag)
    }

    fn entry(tag: &'static str, body: &'static [u8]) -> Cached {
        Cached::new(etag(tag), Bytes::from_static(body), None)
    }

    #[test]
    fn a_stored_body_is_found_with_its_etag_and_counted() {
        let cache = EtagCache::new(10);
        assert!(cache.lookup("/repos/o/r").is_none());
        cache.store("/repos/o/r", entry("\"abc\"", b"{}"));
        let found = cache.lookup("/repos/o/r").unwrap();
        assert_eq!(found.etag, "\"abc\"");
        assert_eq!(&found.body[..], b"{}");
        cache.record_not_modified();
        let stats = cache.stats();
        assert_eq!(
            (stats.conditional, stats.not_modified, stats.stored),
            (1, 1, 1)
        );
    }

    #[test]
    fn the_least_recently_used_entry_goes_first() {
        let cache = EtagCache::new(2);
        cache.store("/a", entry("\"a\"", b""));
        cache.store("/b", entry("\"b\"", b""));
        let _ = cache.lookup("/a");
        cache.store("/c", entry("\"c\"", b""));
        assert_eq!(cache.len(), 2);
        assert!(cache.lookup("/b").is_none());
        assert!(cache.lookup("/a").is_some());
        assert_eq!(cache.stats().evicted, 1);
    }

    #[test]
    fn large_bodies_are_not_kept() {
        let cache = EtagCache::new(2).max_body(4);
        cache.store("/a", entry("\"a\"", b"1234"));
        assert!(!cache.is_empty());
        cache.store("/a", entry("\"b\"", b"12345"));
        assert!(cache.is_empty());
        cache.store("/b", entry("\"b\"", b""));
        cache.remove("/b");
        assert!(cache.is_empty());
    }
}
