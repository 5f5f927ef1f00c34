//! The quota pacer: one server-announced budget, spread evenly over the time left to its reset.
//!
//! Most providers tell each response how much of a budget is left and when it resets:
//!
//! | provider | headers | reset format | budget |
//! |---|---|---|---|
//! | OpenAI | `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` | Go duration (`6m0s`, `12ms`) | requests and tokens per minute, rolling |
//! | GitHub | `x-ratelimit-{limit,remaining,reset,resource}` | UTC epoch seconds | one hourly window per resource (`core`, `search`, …) |
//! | SendGrid | `X-RateLimit-{Limit,Remaining,Reset}` | UTC epoch seconds | one window per endpoint; blocked "for the remainder of the refresh period" once spent |
//!
//! They all report a fixed budget and its reset, and punish spending past it: GitHub answers
//! `403`/`429` with `x-ratelimit-remaining: 0` and its docs say to wait until
//! `x-ratelimit-reset` (continuing "may result in the banning of your integration"); SendGrid
//! blocks the endpoint for the rest of the refresh period; OpenAI counts even failed requests
//! against the per-minute limits. So the pacer spends what the server says is left, no faster
//! than the time left allows, and stops at zero until the reset.
//!
//! The provider crate turns those headers into a [`QuotaSnapshot`] (`limit`, `remaining`,
//! `reset_at` on the caller's monotonic clock) and the pacer does the rest. One pacer per
//! budget: a GitHub client keeps one per `x-ratelimit-resource`, a SendGrid client one per
//! endpoint, an OpenAI client one for requests and one for tokens.
//!
//! # What it does
//!
//! * **Holds at zero.** When the local estimate of what is left cannot cover a call, every caller
//!   waits for `reset_at` (the budget is "open until T"); a caller that will not wait that long
//!   is refused at once with [`ThrottleReason::QuotaExhausted`] and `until = reset_at`.
//! * **Spreads the rest.** With `A` units left and `L = reset_at − now` to go, the pacer admits
//!   at the even rate `A / L`: one unit every `T = L / A`. Callers may run ahead of that even
//!   schedule by a burst tolerance `τ = max(T, burst_share × L)` (default share 5 %, so at
//!   least one unit's worth). It is a GCRA over a moving target: a call of cost `c` is admitted
//!   when the theoretical arrival time `tat ≤ now + τ`, and pushes `tat` to
//!   `max(tat, now) + c × T`. `T` and `τ` are recomputed at every call from the current `A` and
//!   `L`, so a window that starts with 5,000 of GitHub's requests and an hour to go admits about
//!   250 at once and then about one every 0.75 s, rather than spending the hour in the first
//!   second.
//! * **Counts its own admissions.** Every admission spends from the local estimate, so calls in
//!   flight, not yet reported by any response, are not admitted twice: 50 concurrent callers
//!   after `remaining: 10` get 10 admissions before the reset, not 50.
//!
//! # Which snapshot wins
//!
//! Responses to calls in flight come back in any order, and a slow one carries old news. The
//! rule, for a snapshot `S` observed while the current window ends at `R`:
//!
//! 1. `S.reset_at ≤ now`: its window is over; only its `limit` is learned.
//! 2. No window known yet (before any snapshot, no `initial` configured): `S` is adopted as is.
//! 3. `S.reset_at > R + tolerance` (default 1 s) **and** `S.observed_at` is not older than the
//!    newest snapshot seen so far: a new window has started; it replaces the current one and its
//!    `remaining` is adopted, even if higher.
//! 4. Anything else describes the current window (same reset within the tolerance, an earlier
//!    reset, or a later reset seen out of order): it can only lower the estimate,
//!    `available = min(available, S.remaining)`, never raise it. Within one window, remaining
//!    only decreases.
//!
//! A window the pacer assumed itself (from `initial`, or restored after a reset, rule below) is
//! treated by rule 4 too, and takes the server's `reset_at`: the server's word can lower the
//! assumption, and a window it reported replaces the assumption only when it ends.
//!
//! The limit learned last (by `observed_at`) wins, so a tier upgrade is picked up.
//!
//! # Before the first snapshot, and after a reset
//!
//! * Before any snapshot, the pacer admits according to [`QuotaPacer::initial`] (`limit` per
//!   `window`, the first window starting at the first call) or, when none is given, admits
//!   freely: only limits the server announces apply. With [`QuotaPacer::discovery`], "freely"
//!   starts with one call: it goes first and the others wait for its answer (a snapshot, or any
//!   response at all), at most the discovery wait, so 1,000 callers starting together do not
//!   all land before the server has said what the budget is.
//! * When `reset_at` passes with no newer snapshot, the window's quota is assumed restored to
//!   the limit (learned, else the initial one) for one more window length: the configured
//!   `initial` window, else the longest `reset_at − observed_at` any snapshot showed (a lower
//!   bound of the window, exact for GitHub's hour once a fresh window's first call is seen).
//!   With no known limit or length the pacer admits freely again until the next snapshot.
//!
//! # Rolling budgets
//!
//! A rolling (sliding) window gives each unit back one window after it was spent, so its
//! `reset` is when it is fully replenished: at full use the server reports little left and a
//! reset about a window away, at any rate. Spread to that reset, what is left would settle at
//! half the limit. With [`QuotaPacer::rolling`] the pacer reads the budget as what it is: it
//! logs its admissions, admits while the units spent in the trailing window stay within the
//! limit (learned from snapshots, else the initial one), and otherwise waits until enough come
//! back. A snapshot reporting less left than the log explains (another client spending the same
//! budget) is logged as units that come back at its reset; only units back for longer than the
//! same-window tolerance are forgotten, so a response in flight while units came back is not
//! mistaken for another client. Before the limit is known, discovery applies as above.
//!
//! `reconcile` corrects the local estimate once the real cost is known (OpenAI tokens reserved
//! on `max_tokens`, refunded by what the completion did not use); a full refund also gives back
//! the call's place in the pacing schedule. Permits hold nothing: quota is spent on admission.
//!
//! ```
//! use std::time::Duration;
//! use ratewise_core::clock::{Clock, ManualClock};
//! use ratewise_core::limit::{BudgetName, Cost, Limiter, QuotaPacer, QuotaSnapshot};
//!
//! let clock = ManualClock::new();
//! let pacer = QuotaPacer::new(BudgetName::REQUESTS).clock(clock.shared());
//! let now = clock.now();
//! // GitHub said: 0 left, the hour resets in 10 minutes.
//! pacer.observe(&QuotaSnapshot::new(BudgetName::REQUESTS, 0, now + Duration::from_secs(600), now));
//! let refused = pacer.try_acquire(&Cost::request()).unwrap_err();
//! assert_eq!(refused.retry_after(now), Some(Duration::from_secs(600)));
//! ```

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::rolling::RollingLog;
use super::turnstile::{Admission, Hold, Turnstile, later};
use super::{
    BudgetName, Cost, Feedback, Limiter, Permit, QuotaSnapshot, ThrottleReason, Throttled,
};
use crate::clock::{SharedClock, TokioClock};

/// A limiter that paces one server-announced budget (header `remaining`/`reset`) to its reset.
///
/// See the [module docs](self) for the pacing formula and the snapshot ordering rule. Defaults:
/// no initial limit (admit freely until the first snapshot), burst share 5 %, same-window
/// tolerance 1 s, [`TokioClock`].
pub struct QuotaPacer {
    budget: BudgetName,
    clock: SharedClock,
    line: Turnstile<PacerState>,
}

impl QuotaPacer {
    /// The default share of what is left that may go back-to-back: 5 %.
    pub const DEFAULT_BURST_SHARE: f64 = 0.05;
    /// The default slack within which two resets name the same window: 1 s (epoch-second
    /// resets are rounded to the second; duration resets drift by the network latency).
    pub const DEFAULT_SAME_WINDOW_TOLERANCE: Duration = Duration::from_secs(1);

    /// A pacer for `budget` that admits freely until the server reports the budget.
    pub fn new(budget: impl Into<BudgetName>) -> Self {
        let budget = budget.into();
        Self {
            clock: TokioClock::shared(),
            line: Turnstile::new(PacerState::new(budget.clone())),
            budget,
        }
    }

    /// Assumes `limit` per `window` until a snapshot says otherwise. Default: none (free).
    ///
    /// The first window starts with the first call. The initial limit is also the limit assumed
    /// after a reset while no snapshot has carried one, and `window` the assumed window length.
    pub fn initial(self, limit: u64, window: Duration) -> Self {
        self.line.inspect(|s| s.initial = Some((limit, window)));
        self
    }

    /// Lets `share` (0 to 1) of what is left go back-to-back ahead of the even schedule.
    /// Default 5 % ([`Self::DEFAULT_BURST_SHARE`]); never less than one unit's interval.
    pub fn burst_share(self, share: f64) -> Self {
        let share = if share.is_nan() {
            Self::DEFAULT_BURST_SHARE
        } else {
            share.clamp(0.0, 1.0)
        };
        self.line.inspect(|s| s.burst_share = share);
        self
    }

    /// Before the first snapshot (and without [`initial`](Self::initial)), admits one call and
    /// holds the rest until the server has answered it, or for at most `wait`; after that, and
    /// when the answer carried no snapshot, calls are admitted freely as without discovery.
    /// Default: off (everything is admitted freely until the first snapshot). One round trip
    /// of delay for the callers behind the first, against a cold-start burst of as many
    /// requests as there are callers, most of them throttled.
    pub fn discovery(self, wait: Duration) -> Self {
        self.line.inspect(|s| s.discovery = Discovery::Ready(wait));
        self
    }

    /// Reads the budget as a rolling window of `window`: a unit comes back one `window` after it
    /// was admitted, and the snapshots' `reset` is when the budget is fully replenished (see
    /// [Rolling budgets](self#rolling-budgets)). Default: a fixed window per `reset`. For servers
    /// that document "`limit` in any trailing `window`" (GitHub's secondary limits, sliding-log
    /// limiters).
    pub fn rolling(self, window: Duration) -> Self {
        self.line
            .inspect(|s| s.rolling = (!window.is_zero()).then(|| RollingLog::new(window)));
        self
    }

    /// Two resets closer than `tolerance` name the same window. Default 1 s.
    pub fn same_window_tolerance(self, tolerance: Duration) -> Self {
        self.line.inspect(|s| s.tolerance = tolerance);
        self
    }

    /// Reads time from `clock` instead of tokio's. Default: [`TokioClock`].
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The budget this pacer guards.
    pub fn budget(&self) -> &BudgetName {
        &self.budget
    }

    /// The local estimate of what is left before the reset (`None`: no window known, admits
    /// freely).
    pub fn remaining(&self) -> Option<u64> {
        let now = self.clock.now();
        self.line.inspect(|s| {
            s.roll(now);
            if let Some(log) = &s.rolling {
                let limit = s.limit()?;
                return Some(limit.saturating_sub(log.used_at(now)));
            }
            s.window.as_ref().map(|w| w.available)
        })
    }

    /// When the current window resets, if one is known.
    pub fn reset_at(&self) -> Option<Instant> {
        let now = self.clock.now();
        self.line.inspect(|s| {
            s.roll(now);
            if let Some(log) = &s.rolling {
                return s.limit().map(|_| log.whole_at(now));
            }
            s.window.as_ref().map(|w| w.reset_at)
        })
    }

    /// The budget's size per window: the last one a snapshot announced, else the initial one.
    pub fn limit(&self) -> Option<u64> {
        self.line.inspect(|s| s.limit())
    }

    /// How many callers are waiting in line.
    pub fn waiting(&self) -> usize {
        self.line.waiting()
    }

    fn amount(&self, cost: &Cost) -> u64 {
        cost.amount(&self.budget)
    }
}

impl fmt::Debug for QuotaPacer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuotaPacer")
            .field("state", &self.line)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Limiter for QuotaPacer {
    fn try_acquire(&self, cost: &Cost) -> Result<Permit, Throttled> {
        let amount = self.amount(cost);
        self.line
            .try_acquire(self.clock.now(), amount)
            .map(|()| Permit::empty())
    }

    async fn acquire(&self, cost: &Cost, max_wait: Duration) -> Result<Permit, Throttled> {
        let amount = self.amount(cost);
        self.line
            .acquire(&*self.clock, amount, max_wait)
            .await
            .map(|()| Permit::empty())
    }

    fn observe(&self, snapshot: &QuotaSnapshot) {
        let now = self.clock.now();
        self.line.update(|s| s.observe(snapshot, now));
    }

    fn feedback(&self, _feedback: Feedback) {
        // Any answer ends discovery; wake the waiters only when it does.
        if self
            .line
            .inspect(|s| matches!(s.discovery, Discovery::Probing { .. }))
        {
            self.line.update(|s| s.discovery = Discovery::Done);
        }
    }

    fn reconcile(&self, reserved: &Cost, actual: &Cost) {
        let now = self.clock.now();
        self.line.update(|s| {
            let (reserved, actual) = (reserved.amount(&s.budget), actual.amount(&s.budget));
            s.reconcile(now, reserved, actual);
        });
    }
}

/// The pacer's state: the window, the learned limit, the pacing schedule.
#[derive(Debug)]
struct PacerState {
    budget: BudgetName,
    initial: Option<(u64, Duration)>,
    burst_share: f64,
    tolerance: Duration,
    learned_limit: Option<u64>,
    learned_window: Option<Duration>,
    newest_observed: Option<Instant>,
    seen_snapshot: bool,
    discovery: Discovery,
    window: Option<Window>,
    /// GCRA theoretical arrival time of the next unit (`None`: not ahead of now).
    tat: Option<Instant>,
    /// The admissions of a rolling budget ([`QuotaPacer::rolling`]); `None`: fixed windows.
    rolling: Option<RollingLog>,
}

/// Cold-start discovery: one call first, the rest after its answer ([`QuotaPacer::discovery`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Discovery {
    /// Not configured: admit freely before the first snapshot.
    Off,
    /// Configured, no call admitted yet: the next one is the probe; the others wait at most
    /// this long for its answer.
    Ready(Duration),
    /// The probe is out: hold the others until its answer or `until`.
    Probing { until: Instant },
    /// Answered (or timed out): admit freely until a snapshot says otherwise.
    Done,
}

/// One window of the budget as the pacer believes it.
#[derive(Clone, Copy, Debug)]
struct Window {
    reset_at: Instant,
    /// The local estimate of what is left: server-reported, minus our admissions since.
    available: u64,
    /// True when a server snapshot described this window; false when the pacer assumed it.
    reported: bool,
}

/// Margin added to computed wake-ups so float rounding does not wake a caller a hair early.
const WAKE_MARGIN_SECS: f64 = 1e-6;

impl PacerState {
    fn new(budget: BudgetName) -> Self {
        Self {
            budget,
            initial: None,
            burst_share: QuotaPacer::DEFAULT_BURST_SHARE,
            tolerance: QuotaPacer::DEFAULT_SAME_WINDOW_TOLERANCE,
            learned_limit: None,
            learned_window: None,
            newest_observed: None,
            seen_snapshot: false,
            discovery: Discovery::Off,
            window: None,
            tat: None,
            rolling: None,
        }
    }

    fn limit(&self) -> Option<u64> {
        self.learned_limit.or(self.initial.map(|(limit, _)| limit))
    }

    fn window_length(&self) -> Option<Duration> {
        self.initial
            .map(|(_, window)| window)
            .or(self.learned_window)
            .filter(|d| !d.is_zero())
    }

    /// Starts the initial window on first use; restores the quota when `reset_at` has passed.
    /// A rolling budget only forgets units that came back long ago.
    fn roll(&mut self, now: Instant) {
        if let Some(log) = self.rolling.as_mut() {
            log.prune(now, self.tolerance);
            return;
        }
        if self.window.is_none()
            && !self.seen_snapshot
            && let Some((limit, length)) = self.initial
            && !length.is_zero()
        {
            self.window = Some(Window {
                reset_at: now.checked_add(length).unwrap_or(now),
                available: limit,
                reported: false,
            });
            self.tat = None;
            return;
        }
        let Some(expired) = self.window.filter(|w| now >= w.reset_at) else {
            return;
        };
        self.tat = None;
        self.window = match (self.limit(), self.window_length()) {
            (Some(limit), Some(length)) => Some(Window {
                reset_at: next_reset(expired.reset_at, length, now),
                available: limit,
                reported: false,
            }),
            _ => None,
        };
    }

    fn observe(&mut self, s: &QuotaSnapshot, now: Instant) {
        if s.budget != self.budget {
            return;
        }
        self.roll(now);
        let newest = self.newest_observed.is_none_or(|n| s.observed_at >= n);
        // A limit of 0 says nothing usable about capacity (taken at its word it would refuse
        // every call forever); `remaining` and the reset still apply.
        if let Some(limit) = s.limit.filter(|limit| *limit > 0)
            && (newest || self.learned_limit.is_none())
        {
            self.learned_limit = Some(limit);
        }
        let shown = s.reset_at.saturating_duration_since(s.observed_at);
        if self.learned_window.is_none_or(|w| shown > w) && !shown.is_zero() {
            self.learned_window = Some(shown);
        }
        if newest {
            self.newest_observed = Some(s.observed_at);
        }
        self.seen_snapshot = true;
        self.discovery = Discovery::Done;
        if s.reset_at <= now {
            return; // rule 1: that window is over
        }
        if self.rolling.is_some() {
            self.observe_rolling(s, now);
            return;
        }
        let reported = Window {
            reset_at: s.reset_at,
            available: s.remaining,
            reported: true,
        };
        match &mut self.window {
            None => self.window = Some(reported), // rule 2
            Some(w) if !w.reported => {
                // An assumed window: the server's word may lower it and fixes its end.
                w.available = w.available.min(s.remaining);
                w.reset_at = s.reset_at;
                w.reported = true;
            }
            Some(w) => {
                let later_window = w
                    .reset_at
                    .checked_add(self.tolerance)
                    .is_some_and(|edge| s.reset_at > edge);
                if later_window && newest {
                    *w = reported; // rule 3: a new window
                } else {
                    w.available = w.available.min(s.remaining); // rule 4
                }
            }
        }
    }

    /// Logs what a snapshot says was spent beyond what the log explains: units that may still
    /// be out are those back within the tolerance (the response may have been computed before
    /// they came back); the rest was spent by someone else and comes back at the reset.
    fn observe_rolling(&mut self, s: &QuotaSnapshot, now: Instant) {
        let Some(limit) = self.limit() else {
            return;
        };
        let tolerance = self.tolerance;
        let Some(log) = self.rolling.as_mut() else {
            return;
        };
        let since = now.checked_sub(tolerance).unwrap_or(now);
        let explained = limit.saturating_sub(log.used_at(since));
        if s.remaining < explained {
            let latest = now.checked_add(log.window()).unwrap_or(now);
            log.insert(s.reset_at.min(latest), explained - s.remaining);
        }
    }

    fn reconcile(&mut self, now: Instant, reserved: u64, actual: u64) {
        self.roll(now);
        if let Some(log) = self.rolling.as_mut() {
            if actual < reserved {
                log.refund(reserved - actual);
            } else {
                log.spend(now, actual - reserved);
            }
            return;
        }
        let limit = self.limit();
        let pace = self.pace(now);
        let Some(w) = self.window.as_mut() else {
            return;
        };
        if actual < reserved {
            let refund = reserved.saturating_sub(actual);
            w.available = w
                .available
                .saturating_add(refund)
                .min(limit.unwrap_or(u64::MAX));
            // Give the refunded units' place in the schedule back too.
            if let (Some(tat), Some((interval, _))) = (self.tat, pace) {
                let back =
                    Duration::try_from_secs_f64(interval * refund as f64).unwrap_or(Duration::MAX);
                self.tat = tat.checked_sub(back).or(Some(now));
            }
        } else {
            w.available = w.available.saturating_sub(actual.saturating_sub(reserved));
        }
    }

    /// `(T, τ)` in seconds: the even interval per unit and the burst tolerance, for the window
    /// as it stands at `now` (`None` when nothing is left or the window is over).
    fn pace(&self, now: Instant) -> Option<(f64, f64)> {
        let w = self.window.as_ref()?;
        let left = w.reset_at.saturating_duration_since(now).as_secs_f64();
        if w.available == 0 || left <= 0.0 {
            return None;
        }
        let interval = left / w.available as f64;
        Some((interval, interval.max(left * self.burst_share)))
    }

    /// Seconds the schedule runs ahead of `now` (`tat − now`, at least 0).
    fn ahead(&self, now: Instant) -> f64 {
        self.tat
            .map_or(0.0, |tat| tat.saturating_duration_since(now).as_secs_f64())
    }

    fn exceeds_capacity(&self, amount: u64) -> Option<Hold> {
        self.limit()
            .filter(|limit| amount > *limit)
            .map(|_| Hold::new(ThrottleReason::ExceedsCapacity, None))
    }
}

impl Admission for PacerState {
    fn budget(&self) -> &BudgetName {
        &self.budget
    }

    fn try_admit(&mut self, now: Instant, amount: u64) -> Result<(), Hold> {
        self.roll(now);
        if let Some(hold) = self.exceeds_capacity(amount) {
            return Err(hold);
        }
        if self.rolling.is_some() && self.limit().is_some() {
            return self.try_admit_rolling(now, amount);
        }
        let pace = self.pace(now);
        let ahead = self.ahead(now);
        let Some(w) = self.window.as_mut() else {
            // No window known: free, after discovery.
            let admitted = match self.discovery {
                Discovery::Ready(wait) => {
                    let until = now.checked_add(wait).unwrap_or(now);
                    self.discovery = Discovery::Probing { until };
                    Ok(())
                }
                Discovery::Probing { until } if now < until => {
                    Err(Hold::new(ThrottleReason::WouldWait, Some(until)))
                }
                Discovery::Probing { .. } => {
                    self.discovery = Discovery::Done;
                    Ok(())
                }
                Discovery::Off | Discovery::Done => Ok(()),
            };
            // A rolling budget counts what it admitted before it knew the limit.
            if admitted.is_ok()
                && let Some(log) = self.rolling.as_mut()
            {
                log.spend(now, amount);
            }
            return admitted;
        };
        if amount > w.available {
            return Err(Hold::new(ThrottleReason::QuotaExhausted, Some(w.reset_at)));
        }
        let Some((interval, tolerance)) = pace else {
            return Err(Hold::new(ThrottleReason::QuotaExhausted, Some(w.reset_at)));
        };
        if ahead <= tolerance + 1e-9 {
            w.available = w.available.saturating_sub(amount);
            self.tat = Some(later(now, ahead + interval * amount as f64));
            return Ok(());
        }
        // Admissible once `tat − now' ≤ τ(now')`, with τ = c·(reset − now') and c = τ/L ≤ 1:
        // solve for the wait δ = (ahead − c·L) / (1 − c); at c = 1 only the reset helps.
        let left = w.reset_at.saturating_duration_since(now).as_secs_f64();
        let share = if left > 0.0 { tolerance / left } else { 1.0 };
        let wait = if share >= 1.0 {
            left
        } else {
            ((ahead - share * left) / (1.0 - share)).min(left)
        };
        Err(Hold::new(
            ThrottleReason::WouldWait,
            Some(later(now, wait + WAKE_MARGIN_SECS).min(w.reset_at)),
        ))
    }

    fn predict(&mut self, now: Instant, ahead: u64, amount: u64) -> Hold {
        self.roll(now);
        if let Some(hold) = self.exceeds_capacity(amount) {
            return hold;
        }
        if let (Some(log), Some(limit)) = (&self.rolling, self.limit()) {
            return predict_rolling(log, limit, now, ahead.saturating_add(amount));
        }
        let Some(w) = self.window else {
            let at = match self.discovery {
                Discovery::Probing { until } => until.max(now),
                _ => now,
            };
            return Hold::new(ThrottleReason::WouldWait, Some(at));
        };
        let need = ahead.saturating_add(amount);
        if need <= w.available
            && let Some((interval, tolerance)) = self.pace(now)
        {
            let start = self.ahead(now) + interval * ahead as f64 - tolerance;
            let at = later(now, start).min(w.reset_at);
            return Hold::new(ThrottleReason::WouldWait, Some(at));
        }
        // Beyond this window: whole windows more if the limit and length are known.
        let overflow = need.saturating_sub(w.available);
        let at = match (self.limit(), self.window_length()) {
            (Some(limit), Some(length)) if limit > 0 => {
                let more = overflow.saturating_sub(1) / limit;
                let more = u32::try_from(more).unwrap_or(u32::MAX);
                length
                    .checked_mul(more)
                    .and_then(|d| w.reset_at.checked_add(d))
                    .unwrap_or_else(|| later(w.reset_at, f64::INFINITY))
            }
            _ => w.reset_at,
        };
        Hold::new(ThrottleReason::QuotaExhausted, Some(at))
    }
}

impl PacerState {
    /// A rolling budget admits while the units out in the trailing window leave room.
    fn try_admit_rolling(&mut self, now: Instant, amount: u64) -> Result<(), Hold> {
        let limit = self.limit().unwrap_or(u64::MAX);
        let Some(log) = self.rolling.as_mut() else {
            return Ok(());
        };
        let used = log.used_at(now);
        if used.saturating_add(amount) <= limit {
            log.spend(now, amount);
            return Ok(());
        }
        Err(predict_rolling(log, limit, now, amount))
    }
}

/// When `need` units fit in a rolling budget of `limit`: once enough logged units are back, or
/// whole windows after the last one when even the whole log would not free enough.
fn predict_rolling(log: &RollingLog, limit: u64, now: Instant, need: u64) -> Hold {
    let free = limit.saturating_sub(log.used_at(now));
    if need <= free {
        return Hold::new(ThrottleReason::WouldWait, Some(now));
    }
    let short = need - free;
    let at = log.free_by(now, short).unwrap_or_else(|| {
        let beyond = short.saturating_sub(log.used_at(now));
        let windows = u32::try_from(beyond.div_ceil(limit.max(1))).unwrap_or(u32::MAX);
        log.window()
            .checked_mul(windows)
            .and_then(|d| log.whole_at(now).checked_add(d))
            .unwrap_or_else(|| later(now, f64::INFINITY))
    });
    Hold::new(ThrottleReason::QuotaExhausted, Some(at))
}

/// The first window boundary after `now`, stepping from `reset_at` by whole `length`s.
fn next_reset(reset_at: Instant, length: Duration, now: Instant) -> Instant {
    let late = now.saturating_duration_since(reset_at).as_nanos();
    let length_nanos = length.as_nanos().max(1);
    let into = late % length_nanos;
    let to_go = length_nanos.saturating_sub(into);
    let to_go = Duration::from_nanos(u64::try_from(to_go).unwrap_or(u64::MAX));
    now.checked_add(to_go).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    const SEC: Duration = Duration::from_secs(1);

    fn snap(clock: &ManualClock, remaining: u64, reset_in: Duration) -> QuotaSnapshot {
        let now = clock.now();
        QuotaSnapshot::new(BudgetName::REQUESTS, remaining, now + reset_in, now)
    }

    #[test]
    fn next_reset_steps_by_whole_windows_past_now() {
        let clock = ManualClock::new();
        let r = clock.now();
        assert_eq!(next_reset(r, 60 * SEC, r), r + 60 * SEC);
        assert_eq!(next_reset(r, 60 * SEC, r + 61 * SEC), r + 120 * SEC);
        assert_eq!(next_reset(r, 60 * SEC, r + 150 * SEC), r + 180 * SEC);
    }

    #[test]
    fn a_snapshot_for_another_budget_is_ignored() {
        let clock = ManualClock::new();
        let pacer = QuotaPacer::new(BudgetName::TOKENS).clock(clock.shared());
        pacer.observe(&snap(&clock, 0, 60 * SEC));
        assert_eq!(pacer.remaining(), None);
        assert!(pacer.try_acquire(&Cost::none().with("tokens", 5)).is_ok());
    }

    #[test]
    fn a_cost_that_does_not_name_the_budget_passes_even_when_exhausted() {
        let clock = ManualClock::new();
        let pacer = QuotaPacer::new(BudgetName::TOKENS).clock(clock.shared());
        let now = clock.now();
        pacer.observe(&QuotaSnapshot::new(
            BudgetName::TOKENS,
            0,
            now + 60 * SEC,
            now,
        ));
        assert!(pacer.try_acquire(&Cost::request()).is_ok());
        assert!(pacer.try_acquire(&Cost::none().with("tokens", 1)).is_err());
    }
}
