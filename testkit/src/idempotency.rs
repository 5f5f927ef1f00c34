//! The server's idempotency store, with Stripe's semantics.
//!
//! The first request with a key runs and its response is stored (whatever its status, as
//! Stripe stores even a 500 once the endpoint started executing). Then, for 24 h by default:
//! the same key with the same operation and body replays the stored response, marked with the
//! dialect's replay header (`Idempotent-Replayed: true`); the same key with different parameters
//! is refused with [`IdempotencyError::Mismatch`] (400); the same key while the first request
//! is still in flight is refused with [`IdempotencyError::InFlight`] (409). A request that was
//! throttled, faulted, or reset before it was processed stores nothing, so its retry runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

/// Why the server refused a request's idempotency key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdempotencyError {
    /// The key was first used with different parameters (Stripe: 400 `idempotency_error`).
    Mismatch,
    /// A request with the same key is still being processed (Stripe: 409).
    InFlight,
}

impl IdempotencyError {
    /// The status Stripe answers with: 400 for a mismatch, 409 for a request in flight.
    pub fn status(self) -> StatusCode {
        match self {
            Self::Mismatch => StatusCode::BAD_REQUEST,
            Self::InFlight => StatusCode::CONFLICT,
        }
    }
}

/// A response kept for replay.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

#[derive(Debug)]
enum State {
    InFlight,
    Done(Stored),
}

#[derive(Debug)]
struct Entry {
    operation: Arc<str>,
    body: Bytes,
    created: Instant,
    state: State,
}

/// What the store says about an arriving request with a key.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// First use: the key is now in flight.
    Fresh,
    /// Replay this stored response.
    Replay(Stored),
    /// Refuse the request.
    Refuse(IdempotencyError),
}

/// Keys and their stored responses.
#[derive(Debug)]
pub(crate) struct IdempotencyStore {
    ttl: Duration,
    entries: HashMap<String, Entry>,
}

impl IdempotencyStore {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: HashMap::new(),
        }
    }

    pub(crate) fn lookup(
        &mut self,
        key: &str,
        operation: &Arc<str>,
        body: &Bytes,
        now: Instant,
    ) -> Lookup {
        let expired = self
            .entries
            .get(key)
            .is_some_and(|e| now.saturating_duration_since(e.created) >= self.ttl);
        if expired {
            self.entries.remove(key);
        }
        match self.entries.get(key) {
            None => {
                self.entries.insert(
                    key.to_owned(),
                    Entry {
                        operation: operation.clone(),
                        body: body.clone(),
                        created: now,
                        state: State::InFlight,
                    },
                );
                Lookup::Fresh
            }
            Some(entry) => match &entry.state {
                State::InFlight => Lookup::Refuse(IdempotencyError::InFlight),
                State::Done(_) if entry.operation != *operation || entry.body != *body => {
                    Lookup::Refuse(IdempotencyError::Mismatch)
                }
                State::Done(stored) => Lookup::Replay(stored.clone()),
            },
        }
    }

    /// Stores the response of the request that holds `key`.
    pub(crate) fn complete(&mut self, key: &str, stored: Stored) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.state = State::Done(stored);
        }
    }

    /// Forgets a key whose request ended without being processed.
    pub(crate) fn abandon(&mut self, key: &str) {
        if matches!(
            self.entries.get(key).map(|e| &e.state),
            Some(State::InFlight)
        ) {
            self.entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratewise_core::clock::{Clock, ManualClock};

    fn stored() -> Stored {
        Stored {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from_static(b"{}"),
        }
    }

    #[test]
    fn a_key_replays_after_completion_and_expires_after_its_ttl() {
        let t0 = ManualClock::new().now();
        let mut store = IdempotencyStore::new(Duration::from_secs(60));
        let op: Arc<str> = Arc::from("POST /v1/charges");
        let body = Bytes::from_static(b"amount=1");
        assert!(matches!(store.lookup("k", &op, &body, t0), Lookup::Fresh));
        store.complete("k", stored());
        assert!(matches!(
            store.lookup("k", &op, &body, t0 + Duration::from_secs(59)),
            Lookup::Replay(_)
        ));
        assert!(matches!(
            store.lookup("k", &op, &body, t0 + Duration::from_secs(60)),
            Lookup::Fresh
        ));
    }

    #[test]
    fn an_abandoned_key_can_be_used_again() {
        let t0 = ManualClock::new().now();
        let mut store = IdempotencyStore::new(Duration::from_secs(60));
        let op: Arc<str> = Arc::from("POST /v1/charges");
        let body = Bytes::new();
        assert!(matches!(store.lookup("k", &op, &body, t0), Lookup::Fresh));
        store.abandon("k");
        assert!(matches!(store.lookup("k", &op, &body, t0), Lookup::Fresh));
    }
}
