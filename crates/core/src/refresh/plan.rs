//! When to refresh: pure functions of the connection's expiry, the provider's margin and the retry history, so
//! the timing rules are unit-tested without a clock or a network.

use std::time::Duration;

/// Timing rules of the refresh engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// Refresh this long before the access token expires, unless the provider sets its own margin.
    ///
    /// IMPORTANT: five minutes also absorbs a few minutes of clock skew between this machine and the provider: a
    /// token is renewed while both clocks still agree it is valid.
    pub default_margin: Duration,
    /// The margin never exceeds this fraction (in percent) of the token's lifetime, so a 60-second token is not
    /// "due" the moment it is issued.
    pub max_margin_percent: u32,
    /// Refreshes start up to this fraction (in percent) of the margin early, at random, so connections issued
    /// together do not all refresh in the same second.
    pub jitter_percent: u32,
    /// First retry delay after a transient failure; doubles with each further failure.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_cap: Duration,
    /// `access_token()` refreshes first when the token expires within this long.
    pub on_demand_margin: Duration,
    /// Longest the engine sleeps without checking the wall clock (suspend, clock changes).
    pub wake_check: Duration,
    /// Refresh requests at providers in flight at once, across all connections (the store's commits around
    /// each request run outside this limit).
    pub max_concurrent: usize,
    /// First wait before trying a failed revocation again; doubles with each further failure.
    pub revoke_backoff_base: Duration,
    /// Longest wait between revocation attempts.
    pub revoke_backoff_cap: Duration,
    /// How long after a disconnect the engine keeps trying to revoke before it deletes what it kept and tells the
    /// person to revoke by hand.
    pub revoke_give_up_after: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            default_margin: Duration::from_secs(5 * 60),
            max_margin_percent: 50,
            jitter_percent: 20,
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(15 * 60),
            on_demand_margin: Duration::from_secs(60),
            // IMPORTANT: tokio's timers run on the monotonic clock, which stops while the machine sleeps. Waking at
            // least this often lets the engine notice a suspend (wall clock jumped ahead of the monotonic clock)
            // and re-plan, at the cost of 12 wakeups an hour when nothing is due.
            wake_check: Duration::from_secs(5 * 60),
            max_concurrent: 4,
            // A provider that is down for minutes is retried within minutes; one gone for days is asked four
            // times a day, for a week: long enough for an outage or a trip offline, short enough that the tokens
            // do not linger for ever.
            revoke_backoff_base: Duration::from_secs(60),
            revoke_backoff_cap: Duration::from_secs(6 * 3600),
            revoke_give_up_after: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl RefreshPolicy {
    /// How many refreshes can have their request out and their result not yet on disk at once: the most one
    /// crash can turn into `interrupted`. Four times [`Self::max_concurrent`]: a result waits for the disk about
    /// as long as a request takes (the group commit's window, then the sync), so with only twice as many the
    /// requests at the provider fell below the limit while answers waited (the `refresh_storm` bench at
    /// concurrency 4, 3-pair runs: 0.66–0.73 of the plain client at twice, 0.74–0.82 at four times).
    pub fn max_exposed(&self) -> usize {
        self.max_concurrent.max(1) * 4
    }

    /// The margin for a token living `lifetime`: the provider's (or default) margin, capped at a share of the
    /// lifetime.
    pub fn margin(&self, provider_margin: Option<Duration>, lifetime: Option<Duration>) -> Duration {
        let margin = provider_margin.unwrap_or(self.default_margin);
        match lifetime {
            Some(lifetime) => margin.min(lifetime * self.max_margin_percent / 100),
            None => margin,
        }
    }

    /// When (Unix milliseconds) a token expiring at `expires_at_ms` should be refreshed. `unit_random` in
    /// `[0, 1)` places the start within the jitter window.
    pub fn due_at_ms(&self, expires_at_ms: u64, margin: Duration, unit_random: f64) -> u64 {
        let margin_ms = margin.as_millis() as u64;
        let jitter_ms =
            (margin_ms as f64 * f64::from(self.jitter_percent) / 100.0 * unit_random.clamp(0.0, 1.0)) as u64;
        expires_at_ms.saturating_sub(margin_ms + jitter_ms)
    }

    /// Delay before retry number `attempt` (1 = the first retry), with ±20 % jitter from `unit_random`, raised to
    /// `retry_after` when the provider asked for longer.
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>, unit_random: f64) -> Duration {
        let exp = self
            .backoff_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let capped = exp.min(self.backoff_cap);
        let factor = 0.8 + 0.4 * unit_random.clamp(0.0, 1.0);
        let jittered = capped.mul_f64(factor).min(self.backoff_cap);
        match retry_after {
            Some(wait) => jittered.max(wait.min(self.backoff_cap * 4)),
            None => jittered,
        }
    }
}

impl RefreshPolicy {
    /// Wait after failed revocation attempt number `attempt` (1 = the one at disconnect), with ±20 % jitter.
    pub fn revoke_backoff(&self, attempt: u32, unit_random: f64) -> Duration {
        let exp = self
            .revoke_backoff_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let factor = 0.8 + 0.4 * unit_random.clamp(0.0, 1.0);
        exp.min(self.revoke_backoff_cap)
            .mul_f64(factor)
            .min(self.revoke_backoff_cap)
    }
}

/// A uniform random number in `[0, 1)` from the OS (jitter only: no security depends on it).
pub(crate) fn unit_random() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_is_capped_by_the_lifetime() {
        let p = RefreshPolicy::default();
        assert_eq!(
            p.margin(None, Some(Duration::from_secs(3600))),
            Duration::from_secs(300)
        );
        assert_eq!(p.margin(None, Some(Duration::from_secs(60))), Duration::from_secs(30));
        assert_eq!(
            p.margin(Some(Duration::from_secs(600)), Some(Duration::from_secs(7200))),
            Duration::from_secs(600)
        );
        assert_eq!(p.margin(None, None), Duration::from_secs(300));
    }

    #[test]
    fn due_time_falls_within_the_jitter_window_before_the_margin() {
        let p = RefreshPolicy::default();
        let exp = 10_000_000;
        let margin = Duration::from_secs(300);
        assert_eq!(p.due_at_ms(exp, margin, 0.0), exp - 300_000);
        assert_eq!(p.due_at_ms(exp, margin, 0.999_999), exp - 300_000 - 59_999);
        assert_eq!(p.due_at_ms(100, margin, 0.5), 0, "never before the epoch");
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let p = RefreshPolicy::default();
        let mid = |n| p.backoff(n, None, 0.5);
        assert_eq!(mid(1), Duration::from_secs(2));
        assert_eq!(mid(2), Duration::from_secs(4));
        assert_eq!(mid(5), Duration::from_secs(32));
        assert_eq!(mid(30), Duration::from_secs(15 * 60));
        assert!(p.backoff(1, None, 0.0) >= Duration::from_millis(1600));
        assert!(p.backoff(1, None, 0.999) <= Duration::from_millis(2400));
        assert_eq!(
            p.backoff(1, Some(Duration::from_secs(120)), 0.5),
            Duration::from_secs(120)
        );
        assert_eq!(
            p.backoff(1, Some(Duration::from_secs(86_400)), 0.5),
            Duration::from_secs(3600),
            "bounded"
        );
    }

    #[test]
    fn revocation_backoff_starts_at_a_minute_and_settles_at_six_hours() {
        let p = RefreshPolicy::default();
        assert_eq!(p.revoke_backoff(1, 0.5), Duration::from_secs(60));
        assert_eq!(p.revoke_backoff(2, 0.5), Duration::from_secs(120));
        assert_eq!(p.revoke_backoff(9, 0.5), Duration::from_secs(256 * 60));
        assert_eq!(
            p.revoke_backoff(10, 0.5),
            Duration::from_secs(6 * 3600),
            "512 min is past the cap"
        );
        assert_eq!(
            p.revoke_backoff(40, 0.999),
            Duration::from_secs(6 * 3600),
            "jitter never exceeds the cap"
        );
        assert!(p.revoke_backoff(1, 0.0) >= Duration::from_secs(48));
    }

    #[test]
    fn unit_random_stays_in_range() {
        for _ in 0..1000 {
            let r = unit_random();
            assert!((0.0..1.0).contains(&r));
        }
    }
}
