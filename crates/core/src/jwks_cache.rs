//! The refresh schedule of a remote JWKS: when to fetch, what to keep when a fetch fails,
//! and how often a token with an unknown `kid` may cause a refetch.
//!
//! Plain state over explicit time in milliseconds; the root context owns one per remote
//! provider, fetches when [`RemoteKeys::due`] says so, and reports back. The policy's rules
//! ([`RefreshPolicy::backoff_ms`], [`RefreshPolicy::refetch_allowed`]) are also those of the
//! key set shared by every worker (`jwks_shared`).

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
        last.is_none_or(|at| now.saturating_sub(at) >= self.unknown_kid_gap_ms)
    }
}

/// One remote key set and its schedule. `K` is the parsed key set.
#[derive(Debug, Clone)]
pub struct RemoteKeys<K> {
    policy: RefreshPolicy,
    keys: Option<K>,
    in_flight: bool,
    next_fetch_at: Millis,
    consecutive_failures: u32,
    last_unknown_kid_fetch: Option<Millis>,
}

impl<K> RemoteKeys<K> {
    /// Nothing loaded; the first fetch is due at once.
    pub fn new(policy: RefreshPolicy) -> Self {
        Self {
            policy,
            keys: None,
            in_flight: false,
            next_fetch_at: 0,
            consecutive_failures: 0,
            last_unknown_kid_fetch: None,
        }
    }

    /// The last good keys, if any fetch ever succeeded.
    pub fn keys(&self) -> Option<&K> {
        self.keys.as_ref()
    }

    /// Whether a fetch should start now.
    pub fn due(&self, now: Millis) -> bool {
        !self.in_flight && now >= self.next_fetch_at
    }

    pub fn fetch_started(&mut self) {
        self.in_flight = true;
    }

    /// A fetch brought good keys: they replace the old ones.
    pub fn fetch_succeeded(&mut self, keys: K, now: Millis) {
        self.keys = Some(keys);
        self.in_flight = false;
        self.consecutive_failures = 0;
        self.next_fetch_at = now.saturating_add(self.policy.interval_ms);
    }

    /// A fetch failed (no answer, bad status, unusable JWKS): keep the last good keys and
    /// retry with exponential backoff.
    pub fn fetch_failed(&mut self, now: Millis) {
        self.in_flight = false;
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.next_fetch_at = now.saturating_add(self.policy.backoff_ms(self.consecutive_failures));
    }

    /// A token named a `kid` the keys lack: make a fetch due now, unless one happened within
    /// `unknown_kid_gap_ms` (so a stream of junk `kid`s cannot hammer the key server).
    /// `true` if a fetch is (or already was) under way.
    pub fn request_refetch(&mut self, now: Millis) -> bool {
        if self.in_flight {
            return true;
        }
        if !self.policy.refetch_allowed(self.last_unknown_kid_fetch, now) {
            return false;
        }
        self.last_unknown_kid_fetch = Some(now);
        self.next_fetch_at = now;
        true
    }

    /// Whether a fetch is under way (waiting requests stay parked while it is).
    pub fn fetching(&self) -> bool {
        self.in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RefreshPolicy = RefreshPolicy {
        interval_ms: 60_000,
        initial_backoff_ms: 1_000,
        unknown_kid_gap_ms: 30_000,
    };

    #[test]
    fn the_first_fetch_is_due_at_once_and_then_every_interval() {
        let mut remote: RemoteKeys<&str> = RemoteKeys::new(POLICY);
        assert!(remote.due(0));
        remote.fetch_started();
        assert!(!remote.due(0), "no second fetch while one is in flight");
        remote.fetch_succeeded("keys-1", 1_000);
        assert_eq!(remote.keys(), Some(&"keys-1"));
        assert!(!remote.due(60_999));
        assert!(remote.due(61_000));
    }

    #[test]
    fn failures_keep_the_last_good_keys_and_back_off_exponentially_up_to_the_interval() {
        let mut remote = RemoteKeys::new(POLICY);
        remote.fetch_started();
        remote.fetch_succeeded("good", 0);
        let mut now = 60_000;
        let mut delays = Vec::new();
        for _ in 0..8 {
            remote.fetch_started();
            remote.fetch_failed(now);
            let next = (now..).find(|t| remote.due(*t)).unwrap();
            delays.push(next - now);
            now = next;
        }
        assert_eq!(
            delays,
            [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]
        );
        assert_eq!(remote.keys(), Some(&"good"));
        remote.fetch_started();
        remote.fetch_succeeded("fresh", now);
        assert!(
            remote.due(now + 60_000) && !remote.due(now + 59_999),
            "backoff resets on success"
        );
    }

    #[test]
    fn unknown_kids_cause_at_most_one_refetch_per_gap() {
        let mut remote = RemoteKeys::new(POLICY);
        remote.fetch_started();
        remote.fetch_succeeded("old", 0);
        assert!(remote.request_refetch(10_000));
        assert!(remote.due(10_000));
        remote.fetch_started();
        assert!(remote.request_refetch(10_001), "joins the fetch in flight");
        remote.fetch_succeeded("new", 10_050);
        assert!(!remote.request_refetch(20_000), "within the gap");
        assert!(!remote.due(20_000));
        assert!(remote.request_refetch(40_000));
    }
}
