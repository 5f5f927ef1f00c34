//! State-change events: the states, the transition record, and its ordered delivery.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError, RwLock, TryLockError};
use std::time::Instant;

/// The state of a circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls flow; the rolling window counts failures.
    Closed,
    /// Calls fail fast until `until`, then the breaker is half-open.
    Open {
        /// When the breaker turns half-open.
        until: Instant,
    },
    /// A limited number of probes test the upstream; the rest fail fast.
    HalfOpen,
}

impl BreakerState {
    /// `"closed"`, `"open"` or `"half_open"`: the label in traces and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open { .. } => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a breaker changed state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransitionCause {
    /// Closed → open: the window's failure rate reached the threshold with enough calls.
    FailureRate,
    /// Open → half-open: the open period elapsed (noticed by the next admit or state read).
    OpenPeriodElapsed,
    /// Half-open → open: a probe failed.
    ProbeFailed,
    /// Half-open → closed: the configured number of probes succeeded.
    ProbesSucceeded,
    /// → open: the server said nothing until a given time (`open_until`).
    ServerOpenUntil,
}

impl TransitionCause {
    /// A snake-case label for traces and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::FailureRate => "failure_rate",
            Self::OpenPeriodElapsed => "open_period_elapsed",
            Self::ProbeFailed => "probe_failed",
            Self::ProbesSucceeded => "probes_succeeded",
            Self::ServerOpenUntil => "server_open_until",
        }
    }
}

/// One state change of a breaker, as delivered to listeners.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Transition {
    /// The breaker's label.
    pub breaker: Arc<str>,
    /// The state it left.
    pub from: BreakerState,
    /// The state it entered.
    pub to: BreakerState,
    /// Why.
    pub cause: TransitionCause,
    /// The failure rate behind it, `0.0..=1.0`: the window's rate on tripping, the rate that
    /// opened it on turning half-open, the probes' rate on leaving half-open, and the window's
    /// (or probes') rate when a server forced it open.
    pub failure_rate: f64,
    /// When it happened, on the breaker's clock.
    pub at: Instant,
}

type Listener = Arc<dyn Fn(&Transition) + Send + Sync>;

/// Listeners plus a queue that delivers transitions in the order they happened, from whichever
/// thread gets there first, without holding the breaker's lock (a listener may read the
/// breaker's state).
#[derive(Default)]
pub(super) struct Events {
    listeners: RwLock<Vec<Listener>>,
    pending: Mutex<VecDeque<Transition>>,
    delivering: Mutex<()>,
}

impl Events {
    pub(super) fn subscribe(&self, listener: Listener) {
        self.listeners
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(listener);
    }

    /// Queues `transition`; call under the breaker's lock so the queue order is the real order.
    pub(super) fn push(&self, transition: Transition) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(transition);
    }

    /// Delivers queued transitions, unless another thread (or a listener up this stack) is
    /// already delivering: it will deliver them.
    pub(super) fn publish(&self) {
        loop {
            let _guard = match self.delivering.try_lock() {
                Ok(guard) => guard,
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            while let Some(transition) = self.pop() {
                self.deliver(&transition);
            }
            drop(_guard);
            // A transition queued after our last pop, whose publisher saw us delivering.
            if self.is_idle() {
                return;
            }
        }
    }

    fn pop(&self) -> Option<Transition> {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }

    fn is_idle(&self) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    fn deliver(&self, t: &Transition) {
        trace(t);
        let listeners = self
            .listeners
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for listener in listeners {
            if catch_unwind(AssertUnwindSafe(|| listener(t))).is_err() {
                tracing::error!(
                    target: "ratewise::breaker",
                    breaker = %t.breaker,
                    "a circuit-breaker listener panicked; the transition was still applied"
                );
            }
        }
    }
}

fn trace(t: &Transition) {
    let (breaker, from, to, cause, rate) = (
        &*t.breaker,
        t.from.as_str(),
        t.to.as_str(),
        t.cause.as_str(),
        t.failure_rate,
    );
    match t.to {
        BreakerState::Open { until } => {
            let open_for = until.saturating_duration_since(t.at);
            tracing::warn!(
                target: "ratewise::breaker",
                breaker, from, to, cause, failure_rate = rate, ?open_for,
                "circuit `{breaker}` opened ({cause}, failure rate {:.0} %); failing fast for {open_for:?}",
                rate * 100.0,
            );
        }
        _ => tracing::info!(
            target: "ratewise::breaker",
            breaker, from, to, cause, failure_rate = rate,
            "circuit `{breaker}` {from} -> {to} ({cause})",
        ),
    }
}
