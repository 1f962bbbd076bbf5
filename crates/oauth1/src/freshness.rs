//! Replay protection (RFC 5849 section 3.3): `oauth_timestamp` within a window of the
//! server's clock, and `oauth_nonce` never accepted twice for the same consumer and token
//! while its timestamp is inside that window. Outside the window the timestamp check refuses
//! the request, so a store may forget a nonce once its timestamp has left the window, and
//! never before.
//!
//! [`NonceStore`] is the contract both sides code to. [`MemoryNonces`] keeps nonces in one
//! process (the token service, tests); [`crate::shared_nonces::SharedNonces`] keeps them in
//! the shared data of every worker of an Envoy process, written with compare-and-swap.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::problem::Problem;

/// The timestamp check: `timestamp` at most `window_seconds` before or after `now`.
pub fn check_timestamp(timestamp: u64, now: u64, window_seconds: u64) -> Result<(), Problem> {
    match timestamp.abs_diff(now) <= window_seconds {
        true => Ok(()),
        false => Err(Problem::TimestampRefused),
    }
}

/// Whom a nonce belongs to: the consumer, the token (empty for requests without one), the
/// nonce itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NonceKey<'a> {
    pub consumer_key: &'a str,
    pub token: &'a str,
    pub nonce: &'a str,
}

/// Why a nonce is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NonceRefusal {
    /// Seen before with a timestamp still inside the window: a replay (`nonce_used`).
    Used,
    /// The store holds as many nonces inside their window as it may: it refuses new ones
    /// rather than forget one that could still be replayed. Not the client's fault: the
    /// filter answers "try later", not `nonce_used`.
    Full,
    /// The store could not be read or written (a shared-data error): refused, fail closed.
    Unavailable,
}

impl NonceRefusal {
    /// The Problem Reporting name, for the refusal that has one.
    pub fn problem(self) -> Option<Problem> {
        match self {
            Self::Used => Some(Problem::NonceUsed),
            Self::Full | Self::Unavailable => None,
        }
    }
}

/// A store of used nonces.
pub trait NonceStore {
    /// Records `key` as used by a request whose (already checked) timestamp is `timestamp`.
    /// Atomic for every caller sharing the store: of two concurrent inserts of one key,
    /// exactly one succeeds. Refuses a key recorded before whose timestamp is still within
    /// the window, and refuses new keys when full rather than forgetting one inside the
    /// window.
    fn insert(&self, key: NonceKey<'_>, timestamp: u64, now: u64) -> Result<(), NonceRefusal>;
}

/// Nonces in this process's memory, at most `capacity`, each kept until its timestamp is
/// more than `window_seconds` old.
#[derive(Debug)]
pub struct MemoryNonces {
    window_seconds: u64,
    capacity: usize,
    seen: Mutex<HashMap<(String, String, String), u64>>,
}

impl MemoryNonces {
    pub fn new(window_seconds: u64, capacity: usize) -> Self {
        Self {
            window_seconds,
            capacity,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// How many nonces are held.
    pub fn len(&self) -> usize {
        self.seen.lock().map_or(0, |seen| seen.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl NonceStore for MemoryNonces {
    fn insert(&self, key: NonceKey<'_>, timestamp: u64, now: u64) -> Result<(), NonceRefusal> {
        let mut seen = self.seen.lock().map_err(|_| NonceRefusal::Unavailable)?;
        let window = self.window_seconds;
        let live = |stamp: &u64| stamp.saturating_add(window) >= now;
        let entry = (
            key.consumer_key.to_owned(),
            key.token.to_owned(),
            key.nonce.to_owned(),
        );
        if seen.get(&entry).is_some_and(live) {
            return Err(NonceRefusal::Used);
        }
        if seen.len() >= self.capacity && !seen.contains_key(&entry) {
            seen.retain(|_, stamp| live(stamp));
            if seen.len() >= self.capacity {
                return Err(NonceRefusal::Full);
            }
        }
        seen.insert(entry, timestamp);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(nonce: &str) -> NonceKey<'_> {
        NonceKey {
            consumer_key: "jira-cli",
            token: "t",
            nonce,
        }
    }

    #[test]
    fn timestamps_outside_the_window_either_way_are_refused() {
        let table = [
            (1000, true),
            (700, true),
            (1300, true),
            (699, false),
            (1301, false),
            (0, false),
            (u64::MAX, false),
        ];
        for (timestamp, ok) in table {
            assert_eq!(check_timestamp(timestamp, 1000, 300).is_ok(), ok, "{timestamp}");
        }
        assert_eq!(check_timestamp(0, 1000, 300), Err(Problem::TimestampRefused));
    }

    #[test]
    fn a_nonce_is_accepted_once_per_consumer_and_token_within_the_window() {
        let store = MemoryNonces::new(300, 10);
        assert_eq!(store.insert(key("n1"), 1000, 1000), Ok(()));
        assert_eq!(store.insert(key("n1"), 1000, 1299), Err(NonceRefusal::Used));
        assert_eq!(
            store.insert(key("n1"), 1001, 1000),
            Err(NonceRefusal::Used),
            "another timestamp, same nonce"
        );
        let other_token = NonceKey {
            token: "u",
            ..key("n1")
        };
        let other_consumer = NonceKey {
            consumer_key: "other",
            ..key("n1")
        };
        assert_eq!(store.insert(other_token, 1000, 1000), Ok(()));
        assert_eq!(store.insert(other_consumer, 1000, 1000), Ok(()));
        assert_eq!(
            NonceRefusal::Used.problem().map(Problem::name),
            Some("nonce_used")
        );
    }

    #[test]
    fn a_full_store_refuses_new_nonces_until_old_ones_leave_the_window() {
        let store = MemoryNonces::new(300, 2);
        assert_eq!(store.insert(key("a"), 1000, 1000), Ok(()));
        assert_eq!(store.insert(key("b"), 1100, 1100), Ok(()));
        // Both still inside their window: nothing is forgotten, the new one is refused.
        assert_eq!(store.insert(key("c"), 1200, 1200), Err(NonceRefusal::Full));
        assert_eq!(store.insert(key("a"), 1000, 1200), Err(NonceRefusal::Used));
        assert_eq!(NonceRefusal::Full.problem(), None);
        // "a" left its window at 1300: its place is taken, "b" is still remembered.
        assert_eq!(store.insert(key("c"), 1301, 1301), Ok(()));
        assert_eq!(store.insert(key("b"), 1100, 1301), Err(NonceRefusal::Used));
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn of_concurrent_inserts_of_one_nonce_exactly_one_succeeds() {
        let store = MemoryNonces::new(300, 100);
        let accepted = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| store.insert(key("same"), 1000, 1000).is_ok()))
                .collect();
            threads
                .into_iter()
                .filter_map(|t| t.join().ok())
                .filter(|&ok| ok)
                .count()
        });
        assert_eq!(accepted, 1);
    }
}
