//! The refresh policy of a remote JWKS: how long between fetches, how a failure backs off
//! ([`RefreshPolicy::backoff_ms`]), and how often a token with an unknown `kid` may cause a
//! refetch ([`RefreshPolicy::refetch_allowed`]). The key set every worker shares
//! (`jwks_shared`) keeps its schedule by these rules.

/// Milliseconds since the unix epoch.
pub type Millis = u64;

/// A remote key set's version: it changes only when the parsed keys change, so a verdict
/// made under one generation is still good while the generation is the same.
pub type Generation = u64;

/// How a remote JWKS is refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// Time between successful fetches.
    pub interval_ms: Millis,
    /// First retry delay after a failure; doubles per consecutive failure up to `interval_ms`.
    pub initial_backoff_ms: Millis,
    /// Least time between two refetches caused by unknown `kid`s.
    pub unknown_kid_gap_ms: Millis,
}

impl RefreshPolicy {
    /// The retry delay after `consecutive_failures` failures (at least one): the initial
    /// backoff, doubled per further failure, never more than the interval.
    pub fn backoff_ms(&self, consecutive_failures: u32) -> Millis {
        let doublings = consecutive_failures.saturating_sub(1).min(20);
        self.initial_backoff_ms
            .saturating_mul(1 << doublings)
            .min(self.interval_ms)
    }

    /// Whether an unknown `kid` may cause a refetch at `now`, the last one having been at
    /// `last` (so a stream of junk `kid`s cannot hammer the key server).
    pub fn refetch_allowed(&self, last: Option<Millis>, now: Millis) -> bool {
        // A last refetch after `now` was made under a clock since stepped back: it holds no
        // refetch back (else every unknown `kid` would be refused for the length of the step).
        last.is_none_or(|at| at > now || now - at >= self.unknown_kid_gap_ms)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The refresh policy of the key-set tests (here and in `jwks_shared`).
    pub(crate) const POLICY: RefreshPolicy = RefreshPolicy {
        interval_ms: 60_000,
        initial_backoff_ms: 1_000,
        unknown_kid_gap_ms: 30_000,
    };

    #[test]
    fn failures_back_off_exponentially_up_to_the_interval() {
        let delays: Vec<Millis> = (1..=8).map(|failures| POLICY.backoff_ms(failures)).collect();
        assert_eq!(
            delays,
            [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]
        );
        assert_eq!(POLICY.backoff_ms(u32::MAX), 60_000, "no overflow");
    }

    #[test]
    fn unknown_kids_cause_at_most_one_refetch_per_gap() {
        assert!(POLICY.refetch_allowed(None, 0));
        assert!(!POLICY.refetch_allowed(Some(10_000), 39_999));
        assert!(POLICY.refetch_allowed(Some(10_000), 40_000));
        assert!(
            POLICY.refetch_allowed(Some(10_000), 5_000),
            "a last refetch in the future (the clock went back) holds nothing back"
        );
    }
}
