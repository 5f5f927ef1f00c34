//! Shared plumbing of the waiting limiters: deadlines, sleeping, and the cancel guard.
//!
//! A limiter that makes callers wait reserves their slot first and then sleeps until it. If the
//! caller's future is dropped during that sleep, the [`Reservation`] guard gives the slot back.

use std::time::{Duration, Instant};

/// A reservation that is given back when dropped, unless [`Reservation::keep`] was called.
pub(crate) struct Reservation<F: FnOnce()> {
    refund: Option<F>,
}

impl<F: FnOnce()> Reservation<F> {
    /// A reservation that runs `refund` if it is dropped before being kept.
    pub(crate) fn new(refund: F) -> Self {
        Self {
            refund: Some(refund),
        }
    }

    /// The caller was admitted: nothing to give back.
    pub(crate) fn keep(mut self) {
        self.refund = None;
    }
}

impl<F: FnOnce()> Drop for Reservation<F> {
    fn drop(&mut self) {
        if let Some(refund) = self.refund.take() {
            refund();
        }
    }
}

/// Waits until `at` holding a reservation: if the caller's future is dropped during the wait,
/// `refund` gives the reserved slot back; once `at` is reached the caller is admitted.
pub(crate) async fn wait_reserved(at: Instant, refund: impl FnOnce()) {
    let reservation = Reservation::new(refund);
    sleep_until(at).await;
    reservation.keep();
}

/// Sleeps (in tokio's possibly virtual time) until `deadline` on the injected clock's timeline.
pub(crate) async fn sleep_until(deadline: Instant) {
    tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
}

/// Nanoseconds as a `u64`, saturating at about 584 years.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
