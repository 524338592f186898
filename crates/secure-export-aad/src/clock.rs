//! An injectable clock, so tests can move time without sleeping.

use std::fmt;
use std::sync::Mutex;

use chrono::{DateTime, Duration as ChronoDuration, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock ([`Utc::now`]); the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    #[must_use]
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// A clock stopped at the current system time, rounded down to a whole second.
    #[must_use]
    pub fn starting_now() -> Self {
        let now = Utc::now();
        let whole = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        Self::new(whole)
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: std::time::Duration) {
        let by = ChronoDuration::from_std(by).unwrap_or(ChronoDuration::MAX);
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *now = now.checked_add_signed(by).unwrap_or(*now);
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: DateTime<Utc>) {
        *self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_advances() {
        let c = ManualClock::starting_now();
        let t0 = c.now();
        c.advance(std::time::Duration::from_secs(90));
        assert_eq!((c.now() - t0).num_seconds(), 90);
    }
}
