//! A first-in-first-out wait line in front of a limiter's admission rule.
//!
//! Limiters whose admission depends on state that changes under them (a server snapshot lowers
//! the quota, a throttle cuts the rate) cannot promise a caller a fixed slot when it arrives.
//! Instead every waiting caller takes a ticket; only the caller at the head of the line may be
//! admitted, so callers are served in arrival order and a late caller never overtakes an early
//! one. The head sleeps until its rule says capacity returns, or until the state changes
//! (snapshot, feedback, refund, cancellation), whichever comes first, then checks again.
//!
//! Nothing is spent before admission, so a cancelled waiter only gives back its place in line.

use std::collections::VecDeque;
use std::fmt;
use std::pin::pin;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::{BudgetName, ThrottleReason, Throttled};
use crate::clock::Clock;

/// Why a rule cannot admit a call now, and when it could.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hold {
    /// Why the call must wait (or can never be admitted: `ExceedsCapacity`).
    pub(crate) reason: ThrottleReason,
    /// When the call could be admitted (`None`: never, or not known).
    pub(crate) until: Option<Instant>,
}

impl Hold {
    /// A hold for `reason` until `until`.
    pub(crate) const fn new(reason: ThrottleReason, until: Option<Instant>) -> Self {
        Self { reason, until }
    }

    fn refusal(self, budget: &BudgetName) -> Throttled {
        Throttled::new(budget.clone(), self.reason, self.until)
    }
}

/// The admission rule a [`Turnstile`] guards: one limiter's state.
pub(crate) trait Admission: Send + 'static {
    /// The budget named in refusals.
    fn budget(&self) -> &BudgetName;

    /// Admits `amount` at `now` (spending it), or says when to try again.
    fn try_admit(&mut self, now: Instant, amount: u64) -> Result<(), Hold>;

    /// When a caller of `amount`, with `ahead` already waiting in front of it, could be admitted.
    fn predict(&mut self, now: Instant, ahead: u64, amount: u64) -> Hold;
}

/// A FIFO wait line around an [`Admission`] rule.
pub(crate) struct Turnstile<S> {
    line: Mutex<Line<S>>,
    changed: Notify,
}

struct Line<S> {
    state: S,
    queue: VecDeque<Ticket>,
    next_id: u64,
}

#[derive(Clone, Copy)]
struct Ticket {
    id: u64,
    amount: u64,
}

impl<S: Admission> Turnstile<S> {
    /// A turnstile with nobody waiting.
    pub(crate) fn new(state: S) -> Self {
        Self {
            line: Mutex::new(Line {
                state,
                queue: VecDeque::new(),
                next_id: 0,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Line<S>> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters more than refusing every future call would, so poisoning is ignored.
        self.line
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads the rule's state without waking anyone.
    pub(crate) fn inspect<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.lock().state)
    }

    /// Changes the rule's state and wakes the waiters so the head checks again.
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        let out = f(&mut self.lock().state);
        self.changed.notify_waiters();
        out
    }

    /// How many callers are waiting in line.
    pub(crate) fn waiting(&self) -> usize {
        self.lock().queue.len()
    }

    /// Admits `amount` now if nobody is waiting and the rule allows it.
    pub(crate) fn try_acquire(&self, now: Instant, amount: u64) -> Result<(), Throttled> {
        if amount == 0 {
            return Ok(());
        }
        let mut line = self.lock();
        if line.queue.is_empty() {
            match line.state.try_admit(now, amount) {
                Ok(()) => return Ok(()),
                Err(hold) if hold.reason == ThrottleReason::ExceedsCapacity => {
                    return Err(hold.refusal(line.state.budget()));
                }
                Err(_) => {}
            }
        }
        let ahead = ahead_of_new(&line.queue);
        let hold = line.state.predict(now, ahead, amount);
        Err(hold.refusal(line.state.budget()))
    }

    /// Admits `amount`, waiting in line at most `max_wait`.
    ///
    /// Refuses at once when the predicted admission is later than `max_wait`; a caller that
    /// queued on a prediction that turned out too hopeful gets [`ThrottleReason::TimedOut`].
    pub(crate) async fn acquire(
        &self,
        clock: &dyn Clock,
        amount: u64,
        max_wait: Duration,
    ) -> Result<(), Throttled> {
        if amount == 0 {
            return Ok(());
        }
        let start = clock.now();
        let deadline = start.checked_add(max_wait);
        let id = {
            let mut line = self.lock();
            if line.queue.is_empty() {
                match line.state.try_admit(start, amount) {
                    Ok(()) => return Ok(()),
                    Err(hold) if hold.reason == ThrottleReason::ExceedsCapacity => {
                        return Err(hold.refusal(line.state.budget()));
                    }
                    Err(_) => {}
                }
            }
            let ahead = ahead_of_new(&line.queue);
            let hold = line.state.predict(start, ahead, amount);
            let too_late = match (hold.until, deadline) {
                (None, _) => hold.reason == ThrottleReason::ExceedsCapacity,
                (Some(at), Some(deadline)) => at > deadline,
                (Some(_), None) => false,
            };
            if too_late || max_wait.is_zero() {
                return Err(hold.refusal(line.state.budget()));
            }
            let id = line.next_id;
            line.next_id = line.next_id.wrapping_add(1);
            line.queue.push_back(Ticket { id, amount });
            id
        };
        let mut place = Place {
            turnstile: self,
            id,
            queued: true,
        };
        loop {
            let mut notified = pin!(self.changed.notified());
            notified.as_mut().enable();
            let now = clock.now();
            let wake = {
                let mut line = self.lock();
                let at_head = line.queue.front().map(|t| t.id) == Some(id);
                let hold = if at_head {
                    match line.state.try_admit(now, amount) {
                        Ok(()) => {
                            line.queue.pop_front();
                            place.queued = false;
                            drop(line);
                            self.changed.notify_waiters();
                            return Ok(());
                        }
                        Err(hold) => hold,
                    }
                } else {
                    let ahead = ahead_of(&line.queue, id);
                    line.state.predict(now, ahead, amount)
                };
                if hold.reason == ThrottleReason::ExceedsCapacity {
                    return Err(hold.refusal(line.state.budget()));
                }
                if deadline.is_some_and(|d| now >= d) {
                    let refusal = Hold::new(ThrottleReason::TimedOut, hold.until);
                    return Err(refusal.refusal(line.state.budget()));
                }
                // Only the head needs a timer; the others wait for the line to move.
                let wake = if at_head { hold.until } else { None };
                match (wake, deadline) {
                    (Some(w), Some(d)) => Some(w.min(d)),
                    (w, d) => w.or(d),
                }
            };
            match wake {
                Some(at) => {
                    let at = tokio::time::Instant::from_std(at);
                    let _ = tokio::time::timeout_at(at, notified).await;
                }
                None => notified.await,
            }
        }
    }
}

/// Units already waiting, in front of a newcomer.
fn ahead_of_new(queue: &VecDeque<Ticket>) -> u64 {
    queue
        .iter()
        .fold(0u64, |sum, t| sum.saturating_add(t.amount))
}

/// Units waiting in front of ticket `id`.
fn ahead_of(queue: &VecDeque<Ticket>, id: u64) -> u64 {
    queue
        .iter()
        .take_while(|t| t.id != id)
        .fold(0u64, |sum, t| sum.saturating_add(t.amount))
}

/// A caller's place in line: leaving it (admitted, refused, or cancelled) lets the next one on.
struct Place<'a, S: Admission> {
    turnstile: &'a Turnstile<S>,
    id: u64,
    queued: bool,
}

impl<S: Admission> Drop for Place<'_, S> {
    fn drop(&mut self) {
        if self.queued {
            let id = self.id;
            self.turnstile.lock().queue.retain(|t| t.id != id);
            self.turnstile.changed.notify_waiters();
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Turnstile<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = self
            .line
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f.debug_struct("Turnstile")
            .field("state", &line.state)
            .field("waiting", &line.queue.len())
            .finish()
    }
}

/// `t + secs` seconds, saturating far in the future instead of overflowing.
pub(crate) fn later(t: Instant, secs: f64) -> Instant {
    let d = if secs.is_nan() || secs <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(secs).unwrap_or(FAR)
    };
    t.checked_add(d).or_else(|| t.checked_add(FAR)).unwrap_or(t)
}

/// "Never" for a wait: about 30 years, far enough, and representable as an `Instant` offset.
const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn later_saturates_instead_of_overflowing_on_absurd_waits() {
        let now = ManualClock::new().now();
        assert_eq!(later(now, f64::NAN), now);
        assert_eq!(later(now, -3.0), now);
        assert_eq!(later(now, 1.5), now + Duration::from_millis(1500));
        assert!(later(now, f64::INFINITY) >= now + FAR);
        assert!(later(now, 1e300) >= now + FAR);
    }
}
