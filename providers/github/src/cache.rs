//! [`EtagCache`]: the bounded in-memory cache behind conditional requests.
//!
//! GitHub answers a GET sent with `If-None-Match: "<etag>"` with `304 Not Modified` when the
//! resource has not changed, and a 304 **does not count against the primary rate limit**. The
//! client keeps the last `ETag` and body of each GET URL (path and query) here, sends the ETag
//! on the next GET of that URL, and on a 304 returns the cached body.
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
    etag: HeaderValue,
    body: Bytes,
    used: u64,
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

    /// The ETag and body cached for `url`, counted as a conditional request when found.
    pub fn lookup(&self, url: &str) -> Option<(HeaderValue, Bytes)> {
        let mut state = self.lock();
        state.tick = state.tick.wrapping_add(1);
        let tick = state.tick;
        let entry = state.entries.get_mut(url)?;
        entry.used = tick;
        let found = (entry.etag.clone(), entry.body.clone());
        state.stats.conditional = state.stats.conditional.saturating_add(1);
        Some(found)
    }

    /// Records that a conditional GET was answered `304 Not Modified`.
    pub fn record_not_modified(&self) {
        let mut state = self.lock();
        state.stats.not_modified = state.stats.not_modified.saturating_add(1);
    }

    /// Stores `body` under `url` with its `etag` (bodies over the size bound are not kept, and
    /// drop what was cached for `url`).
    pub fn store(&self, url: &str, etag: HeaderValue, body: Bytes) {
        let mut state = self.lock();
        if body.len() > self.max_body {
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
        state
            .entries
            .insert(url.to_owned(), Entry { etag, body, used });
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

    #[test]
    fn a_stored_body_is_found_with_its_etag_and_counted() {
        let cache = EtagCache::new(10);
        assert!(cache.lookup("/repos/o/r").is_none());
        cache.store("/repos/o/r", etag("\"abc\""), Bytes::from_static(b"{}"));
        let (tag, body) = cache.lookup("/repos/o/r").unwrap();
        assert_eq!(tag, "\"abc\"");
        assert_eq!(&body[..], b"{}");
        cache.record_not_modified();
        let stats = cache.stats();
        assert_eq!((stats.conditional, stats.not_modified, stats.stored), (1, 1, 1));
    }

    #[test]
    fn the_least_recently_used_entry_goes_first() {
        let cache = EtagCache::new(2);
        cache.store("/a", etag("\"a\""), Bytes::new());
        cache.store("/b", etag("\"b\""), Bytes::new());
        let _ = cache.lookup("/a");
        cache.store("/c", etag("\"c\""), Bytes::new());
        assert_eq!(cache.len(), 2);
        assert!(cache.lookup("/b").is_none());
        assert!(cache.lookup("/a").is_some());
        assert_eq!(cache.stats().evicted, 1);
    }

    #[test]
    fn large_bodies_are_not_kept() {
        let cache = EtagCache::new(2).max_body(4);
        cache.store("/a", etag("\"a\""), Bytes::from_static(b"1234"));
        assert!(!cache.is_empty());
        cache.store("/a", etag("\"b\""), Bytes::from_static(b"12345"));
        assert!(cache.is_empty());
        cache.store("/b", etag("\"b\""), Bytes::new());
        cache.remove("/b");
        assert!(cache.is_empty());
    }
}
