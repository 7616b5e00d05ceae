//! Time, behind a small trait: the system clock in production, a hand-driven clock in tests.
//!
//! Everything in core that stamps or compares times (record timestamps, token expiry) asks a [`Clock`]
//! instead of calling `SystemTime::now()`, so tests can move time without sleeping.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current wall-clock time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// The current time as whole seconds since the Unix epoch (0 for times before it).
    fn unix_secs(&self) -> u64 {
        self.now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to. For tests.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
}

impl ManualClock {
    /// A clock showing `unix_secs` seconds after the Unix epoch.
    pub fn at_unix(unix_secs: u64) -> Self {
        Self {
            now: Mutex::new(UNIX_EPOCH + Duration::from_secs(unix_secs)),
        }
    }

    /// Sets the time.
    pub fn set(&self, now: SystemTime) {
        *self.lock() = now;
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        *now += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SystemTime> {
        // A panic while holding this lock cannot leave a half-written SystemTime behind: recover the value.
        self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::at_unix(1_700_000_000);
        assert_eq!(clock.unix_secs(), 1_700_000_000);
        clock.advance(Duration::from_secs(90));
        assert_eq!(clock.unix_secs(), 1_700_000_090);
        clock.set(UNIX_EPOCH + Duration::from_secs(5));
        assert_eq!(clock.unix_secs(), 5);
    }

    #[test]
    fn times_before_the_epoch_read_as_zero() {
        let clock = ManualClock::at_unix(0);
        clock.set(UNIX_EPOCH - Duration::from_secs(10));
        assert_eq!(clock.unix_secs(), 0);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.unix_secs() > 1_577_836_800);
    }
}
