//! Time, behind a small trait: the system clock in production, a hand-driven clock in tests.
//!
//! Everything in core that stamps or compares times (record timestamps, token expiry) asks a [`Clock`]
//! instead of calling `SystemTime::now()`, so tests can move time without sleeping.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

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

#[cfg(any(test, feature = "test-support"))]
pub use self::manual::ManualClock;

/// The hand-driven clock of the tests, compiled only for them (the `test-support` feature, or this crate's own
/// unit tests).
#[cfg(any(test, feature = "test-support"))]
mod manual {
    use std::sync::Mutex;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::Clock;

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
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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

/// The UTC calendar date and time of Unix seconds: `(year, month, day, hour, minute, second)`
/// (Howard Hinnant's civil-from-days; proleptic Gregorian, no leap seconds).
pub fn civil_utc(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month as u32,
        day as u32,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// `2026-11-30T04:12:09Z` for Unix seconds.
pub fn rfc3339(secs: u64) -> String {
    let (year, month, day, hour, minute, second) = civil_utc(secs);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

#[cfg(test)]
mod calendar_tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_010_838), "2026-11-30T03:53:58Z");
        assert_eq!(civil_utc(4_102_444_799), (2099, 12, 31, 23, 59, 59));
    }
}
