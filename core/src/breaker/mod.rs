//! The circuit breaker: stop calling an upstream that is failing, and probe for its recovery.
//!
//! Retries help with a blip; against an outage they multiply the load on a server that is
//! already down and hold every caller for the length of its backoff. A breaker watches the
//! failure rate of recent calls and, once it is too high, fails calls at once
//! ([`CircuitOpen`]) for a while, then lets a few probes through to see whether the upstream is
//! back.
//!
//! # States
//!
//! ```text
//!            failure rate ≥ threshold             open period elapsed
//!  Closed ───(with ≥ min_calls in the window)──► Open ──────────────────► HalfOpen
//!    ▲                                            ▲                          │
//!    │                                            └──── a probe fails ───────┤
//!    └───────────── `half_open_probes` probes succeed ───────────────────────┘
//! ```
//!
//! * **Closed**: calls flow. Each recorded outcome lands in a rolling window of time buckets
//!   (default 10 s in 10 buckets). When the window holds at least `min_calls` counted calls
//!   (default 20) and its failure rate reaches the threshold (default 50 %), the breaker trips.
//!   A call leaves the window when its bucket expires.
//! * **Open**: [`CircuitBreaker::admit`] refuses at once with [`CircuitOpen`] saying until when
//!   (default 30 s after tripping). There is no timer task: the move to half-open is computed
//!   from the clock by the next [`admit`](CircuitBreaker::admit) or
//!   [`state`](CircuitBreaker::state), so a breaker always reaches half-open after the open
//!   period, traffic or not (opossum#385).
//! * **HalfOpen**: at most `half_open_probes` probes (default 1) are in flight at once, decided
//!   under one lock so concurrent callers cannot over-admit (opossum#119). A probe failure
//!   re-opens the breaker for another open period; `half_open_probes` successes close it with
//!   an empty window.
//!
//! A server can also say "nothing until T" (a `Retry-After` beyond the client's clamp, a
//! maintenance window): [`CircuitBreaker::open_until`] opens the breaker until then, or extends
//! an open period, and never shortens one.
//!
//! # What counts
//!
//! A [`BreakerPermit`] records an [`Outcome`]: success, failure or ignored. Dropping a permit
//! without recording counts as ignored (a cancelled call says nothing about the upstream) and
//! frees its half-open probe slot, so a lost permit never wedges the breaker. The upstream
//! pipeline derives the outcome from a [`CallOutcome`] with the configured predicate, by default
//! [`counts_as_failure`]: 5xx, timeouts and connection failures count as failures; every other
//! response, 4xx and 429 included, counts as a success (the server answered; 429 is the
//! limiters' business, not an outage). With a slow-call threshold set, a call slower than it
//! (strictly) counts as a failure even if it succeeded, probes included.
//!
//! A permit admitted in one state that records after the breaker moved on (a closed-state call
//! finishing after the trip, a probe of an earlier half-open period) is not counted.
//!
//! While half-open with every probe slot taken, [`CircuitOpen::probing`] is set and
//! [`CircuitOpen::until`] is one bucket from now (1 s by default): nobody knows when the probes
//! finish, so the hint is "look again soon", not a promise.
//!
//! # Events
//!
//! Every transition is delivered, in order, to the listeners registered with
//! [`CircuitBreaker::on_transition`] and as a `tracing` event with target `ratewise::breaker`
//! (`warn` on opening, `info` otherwise) carrying the breaker's name, the states, the cause and
//! the failure rate. Listeners run outside the breaker's lock, so they may read or drive the
//! breaker; a panicking listener is logged and skipped.
//!
//! # Cost
//!
//! In the closed state, [`admit`](CircuitBreaker::admit) is one atomic load (plus a clock read
//! when a slow-call threshold is set) and lends a permit without touching a reference count
//! ([`admit_owned`](CircuitBreaker::admit_owned) gives a `'static` one for a spawned task).
//! Recording a success is one clock read and one compare-and-swap on the current bucket; while
//! a failure is in the window it also sums the buckets (one load each) to decide whether to
//! trip. No lock, no allocation, no dynamic call besides the clock (none with a
//! [`FastClock`](crate::clock::FastClock), which is read directly). Locks are taken only while
//! open past the period, half-open, or to trip.
//!
//! ```
//! use std::time::Duration;
//! use http::StatusCode;
//! use ratewise_core::breaker::{BreakerConfig, BreakerState, CallOutcome, CircuitBreaker};
//! use ratewise_core::clock::ManualClock;
//!
//! let clock = ManualClock::new();
//! let breaker = CircuitBreaker::new(BreakerConfig::default().min_calls(4), clock.shared());
//! for _ in 0..4 {
//!     let permit = breaker.admit().unwrap();
//!     permit.record_call(&CallOutcome::from_status(StatusCode::SERVICE_UNAVAILABLE));
//! }
//! let refused = breaker.admit().unwrap_err();
//! assert_eq!(refused.remaining, Duration::from_secs(30));
//!
//! clock.advance(Duration::from_secs(30));
//! assert_eq!(breaker.state(), BreakerState::HalfOpen);
//! breaker.admit().unwrap().record_call(&CallOutcome::from_status(StatusCode::OK));
//! assert_eq!(breaker.state(), BreakerState::Closed);
//! ```

mod config;
mod error;
mod events;
mod outcome;
mod permit;
mod window;

#[cfg(test)]
mod prop_tests;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub use config::BreakerConfig;
pub use error::CircuitOpen;
pub use events::{BreakerState, Transition, TransitionCause};
pub use outcome::{CallOutcome, FailurePredicate, Outcome, counts_as_failure};
pub use permit::BreakerPermit;
pub use window::WindowStats;

use crate::clock::{ClockReader, SharedClock};
use events::Events;
use window::Window;

/// State word: the low 2 bits are the state, the rest a generation bumped on every transition,
/// so a permit knows whether the state it was admitted in is still current.
const KIND_MASK: u64 = 0b11;
const CLOSED: u64 = 0;
const OPEN: u64 = 1;
const HALF_OPEN: u64 = 2;

/// A circuit breaker for one upstream: fails fast while the upstream is failing.
///
/// Cheap to clone (an `Arc` inside); clones share the same state. See the
/// [module docs](self) for the state machine, the defaults and what counts as a failure.
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

struct Inner {
    /// The state word (see `KIND_MASK`); written only under `control`.
    state: AtomicU64,
    /// While open: when it turns half-open, in nanoseconds since `origin`. Written before
    /// `state`, so a reader that sees an open state sees its deadline.
    open_until: AtomicU64,
    window: Window,
    control: Mutex<Control>,
    events: Events,
    clock: ClockReader,
    origin: Instant,
    config: BreakerConfig,
    slow_nanos: Option<u64>,
    open_nanos: u64,
    bucket_nanos: u64,
}

/// What only the slow paths touch, under one lock.
#[derive(Default)]
struct Control {
    /// Half-open: probes admitted and not yet finished.
    in_flight: u32,
    /// Half-open: probes that succeeded.
    successes: u32,
    /// Half-open: probes that failed (0 or 1: the first failure re-opens).
    failures: u32,
    /// The failure rate behind the last opening.
    open_rate: f64,
}

/// `d` in nanoseconds, saturating at about 584 years.
#[inline]
fn nanos(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

impl CircuitBreaker {
    /// A closed breaker with `config`, reading time from `clock`.
    pub fn new(config: BreakerConfig, clock: SharedClock) -> Self {
        let clock = ClockReader::new(clock);
        let origin = clock.epoch();
        let bucket = config.bucket_duration();
        Self {
            inner: Arc::new(Inner {
                state: AtomicU64::new(CLOSED),
                open_until: AtomicU64::new(0),
                window: Window::new(bucket, config.buckets),
                control: Mutex::new(Control::default()),
                events: Events::default(),
                clock,
                origin,
                slow_nanos: config.slow_call.map(nanos),
                open_nanos: nanos(config.open_for),
                bucket_nanos: nanos(bucket),
                config,
            }),
        }
    }

    /// The breaker's label (see [`BreakerConfig::name`]).
    pub fn name(&self) -> &str {
        &self.inner.config.name
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &BreakerConfig {
        &self.inner.config
    }

    /// Admits a call, or refuses at once with [`CircuitOpen`]; never waits.
    ///
    /// The permit must record the call's outcome ([`BreakerPermit::record`]); dropping it
    /// records [`Outcome::Ignored`].
    #[inline]
    pub fn admit(&self) -> Result<BreakerPermit<'_>, CircuitOpen> {
        let inner = &*self.inner;
        let word = inner.state.load(Ordering::Acquire);
        if word & KIND_MASK == CLOSED && inner.slow_nanos.is_none() {
            return Ok(BreakerPermit::new(inner, word, 0));
        }
        self.admit_timed(word)
    }

    /// [`admit`](Self::admit) when it needs the time: closed with a slow-call threshold (the
    /// call's start), open or half-open.
    #[inline(never)]
    fn admit_timed(&self, word: u64) -> Result<BreakerPermit<'_>, CircuitOpen> {
        let inner = &*self.inner;
        let now = inner.now();
        if word & KIND_MASK == CLOSED {
            return Ok(BreakerPermit::new(inner, word, now));
        }
        if word & KIND_MASK == OPEN {
            let until = inner.open_until.load(Ordering::Acquire);
            if now < until {
                return Err(inner.refusal(until, now, false));
            }
        }
        self.admit_locked(now)
    }

    /// [`admit`](Self::admit), with a permit that holds a reference to the breaker instead of
    /// borrowing it, so it can move into a spawned task.
    pub fn admit_owned(&self) -> Result<BreakerPermit<'static>, CircuitOpen> {
        self.admit().map(|permit| permit.into_owned(&self.inner))
    }

    #[cold]
    fn admit_locked(&self, now: u64) -> Result<BreakerPermit<'_>, CircuitOpen> {
        let inner = &*self.inner;
        let mut ctl = inner.lock();
        let word = inner.materialize(&mut ctl, now);
        let result = match word & KIND_MASK {
            CLOSED => Ok(BreakerPermit::new(inner, word, now)),
            OPEN => Err(inner.refusal(inner.open_until.load(Ordering::Acquire), now, false)),
            _ if ctl.in_flight.saturating_add(ctl.successes) < inner.config.half_open_probes => {
                ctl.in_flight = ctl.in_flight.saturating_add(1);
                Ok(BreakerPermit::new(inner, word, now))
            }
            _ => Err(inner.refusal(now.saturating_add(inner.bucket_nanos), now, true)),
        };
        drop(ctl);
        inner.events.publish();
        result
    }

    /// The current state; an open breaker whose period has elapsed turns half-open here.
    pub fn state(&self) -> BreakerState {
        let inner = &*self.inner;
        let word = inner.state.load(Ordering::Acquire);
        match word & KIND_MASK {
            CLOSED => BreakerState::Closed,
            OPEN => {
                let now = inner.now();
                let until = inner.open_until.load(Ordering::Acquire);
                if now < until {
                    return BreakerState::Open {
                        until: inner.instant(until),
                    };
                }
                let mut ctl = inner.lock();
                let word = inner.materialize(&mut ctl, now);
                let state = inner.describe(word);
                drop(ctl);
                inner.events.publish();
                state
            }
            _ => BreakerState::HalfOpen,
        }
    }

    /// The calls and failures in the rolling window now.
    pub fn window_stats(&self) -> WindowStats {
        self.inner.window.tally(self.inner.now())
    }

    /// The server said "nothing until `until`": opens the breaker now until then (from closed
    /// or half-open), or extends the open period to `until`. Never shortens an open period; an
    /// `until` already past does nothing. Probes in flight stop counting.
    pub fn open_until(&self, until: Instant) {
        let inner = &*self.inner;
        let now = inner.now();
        let until = nanos(until.saturating_duration_since(inner.origin));
        if until <= now {
            return;
        }
        let mut ctl = inner.lock();
        let word = inner.materialize(&mut ctl, now);
        match word & KIND_MASK {
            OPEN => {
                if until > inner.open_until.load(Ordering::Acquire) {
                    inner.open_until.store(until, Ordering::Release);
                    tracing::debug!(
                        target: "ratewise::breaker",
                        breaker = %inner.config.name,
                        "circuit open period extended by the server's hint"
                    );
                }
            }
            kind => {
                let rate = if kind == CLOSED {
                    inner.window.tally(now).failure_rate()
                } else {
                    ctl.open_rate
                };
                inner.switch(
                    &mut ctl,
                    word,
                    OPEN,
                    until,
                    now,
                    rate,
                    TransitionCause::ServerOpenUntil,
                );
            }
        }
        drop(ctl);
        inner.events.publish();
    }

    /// Calls `listener` on every state change, in order, after the change is applied (so it
    /// may read the breaker). A panicking listener is logged and does not affect the breaker.
    pub fn on_transition(&self, listener: impl Fn(&Transition) + Send + Sync + 'static) {
        self.inner.events.subscribe(Arc::new(listener));
    }
}

impl Inner {
    #[inline]
    fn now(&self) -> u64 {
        self.clock.nanos()
    }

    fn instant(&self, nanos: u64) -> Instant {
        self.origin
            .checked_add(Duration::from_nanos(nanos))
            .unwrap_or(self.origin)
    }

    fn lock(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn refusal(&self, until: u64, now: u64, probing: bool) -> CircuitOpen {
        CircuitOpen {
            breaker: Arc::clone(&self.config.name),
            until: self.instant(until),
            remaining: Duration::from_nanos(until.saturating_sub(now)),
            probing,
        }
    }

    fn describe(&self, word: u64) -> BreakerState {
        match word & KIND_MASK {
            CLOSED => BreakerState::Closed,
            OPEN => BreakerState::Open {
                until: self.instant(self.open_until.load(Ordering::Acquire)),
            },
            _ => BreakerState::HalfOpen,
        }
    }

    /// Under the lock: turns an open breaker whose period has elapsed half-open; returns the
    /// current state word.
    fn materialize(&self, ctl: &mut Control, now: u64) -> u64 {
        let word = self.state.load(Ordering::Acquire);
        if word & KIND_MASK == OPEN && now >= self.open_until.load(Ordering::Acquire) {
            let rate = ctl.open_rate;
            return self.switch(
                ctl,
                word,
                HALF_OPEN,
                0,
                now,
                rate,
                TransitionCause::OpenPeriodElapsed,
            );
        }
        word
    }

    /// Under the lock: moves from `word` to state `kind` (open until `until`), queues the
    /// event, and returns the new state word.
    #[allow(clippy::too_many_arguments)]
    fn switch(
        &self,
        ctl: &mut Control,
        word: u64,
        kind: u64,
        until: u64,
        now: u64,
        rate: f64,
        cause: TransitionCause,
    ) -> u64 {
        let from = self.describe(word);
        if kind == OPEN {
            ctl.open_rate = rate;
            self.open_until.store(until, Ordering::Release);
        }
        if kind == CLOSED {
            self.window.clear();
        }
        ctl.in_flight = 0;
        ctl.successes = 0;
        ctl.failures = 0;
        let next = ((word >> 2).wrapping_add(1) << 2) | kind;
        self.state.store(next, Ordering::Release);
        self.events.push(Transition {
            breaker: Arc::clone(&self.config.name),
            from,
            to: self.describe(next),
            cause,
            failure_rate: rate,
            at: self.instant(now),
        });
        next
    }

    /// Records the outcome of a call admitted in state `word` (a half-open probe when that state
    /// is half-open: nothing else is admitted then).
    #[inline]
    fn finish(&self, word: u64, started: u64, outcome: Outcome) {
        if word & KIND_MASK == HALF_OPEN {
            return self.finish_probe(word, started, outcome);
        }
        if outcome == Outcome::Ignored {
            return;
        }
        let now = self.now();
        let failed = outcome == Outcome::Failure || self.is_slow(started, now);
        if self.state.load(Ordering::Acquire) != word {
            return;
        }
        if let Some(tally) = self.window.record(now, failed)
            && self.trips(tally)
        {
            self.trip(word, now, tally.failure_rate());
        }
    }

    #[inline]
    fn is_slow(&self, started: u64, now: u64) -> bool {
        self.slow_nanos
            .is_some_and(|t| now.saturating_sub(started) > t)
    }

    #[inline]
    fn trips(&self, tally: WindowStats) -> bool {
        tally.failures > 0
            && tally.calls >= u64::from(self.config.min_calls)
            && tally.failure_rate() >= self.config.failure_rate
    }

    #[cold]
    fn trip(&self, word: u64, now: u64, rate: f64) {
        let mut ctl = self.lock();
        if self.state.load(Ordering::Acquire) == word {
            let until = now.saturating_add(self.open_nanos);
            self.switch(
                &mut ctl,
                word,
                OPEN,
                until,
                now,
                rate,
                TransitionCause::FailureRate,
            );
        }
        drop(ctl);
        self.events.publish();
    }

    #[cold]
    fn finish_probe(&self, word: u64, started: u64, outcome: Outcome) {
        let now = self.now();
        let mut ctl = self.lock();
        if self.state.load(Ordering::Acquire) != word {
            return;
        }
        ctl.in_flight = ctl.in_flight.saturating_sub(1);
        let outcome = match outcome {
            Outcome::Success if self.is_slow(started, now) => Outcome::Failure,
            other => other,
        };
        match outcome {
            Outcome::Success => {
                ctl.successes = ctl.successes.saturating_add(1);
                if ctl.successes >= self.config.half_open_probes {
                    self.switch(
                        &mut ctl,
                        word,
                        CLOSED,
                        0,
                        now,
                        0.0,
                        TransitionCause::ProbesSucceeded,
                    );
                }
            }
            Outcome::Failure => {
                ctl.failures = ctl.failures.saturating_add(1);
                let finished = ctl.successes.saturating_add(ctl.failures);
                let rate = f64::from(ctl.failures) / f64::from(finished.max(1));
                let until = now.saturating_add(self.open_nanos);
                self.switch(
                    &mut ctl,
                    word,
                    OPEN,
                    until,
                    now,
                    rate,
                    TransitionCause::ProbeFailed,
                );
            }
            Outcome::Ignored => {}
        }
        drop(ctl);
        self.events.publish();
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = self.inner.state.load(Ordering::Acquire);
        f.debug_struct("CircuitBreaker")
            .field("name", &self.inner.config.name)
            .field("state", &self.inner.describe(word))
            .finish_non_exhaustive()
    }
}
