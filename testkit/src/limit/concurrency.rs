//! The server's concurrency limit: at most `max` requests in flight at once.

/// One key's in-flight count.
#[derive(Clone, Debug)]
pub(crate) struct Concurrency {
    max: u64,
    in_flight: u64,
}

impl Concurrency {
    pub(crate) fn new(max: u32) -> Self {
        Self {
            max: u64::from(max),
            in_flight: 0,
        }
    }

    /// `Ok` if a slot is free. A full server cannot say when one frees up: no hint.
    pub(crate) fn check(&self) -> Result<(), Option<std::time::Duration>> {
        if self.in_flight < self.max {
            Ok(())
        } else {
            Err(None)
        }
    }

    pub(crate) fn acquire(&mut self) {
        self.in_flight = self.in_flight.saturating_add(1);
    }

    pub(crate) fn release(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    pub(crate) fn limit(&self) -> u64 {
        self.max
    }

    pub(crate) fn remaining(&self) -> u64 {
        self.max.saturating_sub(self.in_flight)
    }
}
