//! A [`NonceStore`] over a store shared by every worker of an Envoy process (proxy-wasm
//! shared data: `tokengate_core::cache::SharedStore`, whose versioned half is
//! [`VersionedStore`] here, so this crate stays free of the core). Nonces are spread over
//! a fixed number of buckets, one shared-data key each, every bucket a bounded list of
//! (fingerprint, timestamp). An insert reads a bucket with its version, drops what has left
//! the window, refuses a nonce already there (`Used`) or a bucket at its bound (`Full`:
//! never forgetting a nonce still inside its window), and writes back with compare-and-swap;
//! a lost race is retried on the fresh bucket, so of two workers inserting one nonce exactly
//! one succeeds.
//!
//! A fingerprint is 128 bits of SipHash (the standard library's, fixed keys: the same in
//! every worker of one module) of the consumer, the token and the nonce. Two different nonces
//! with one fingerprint make a false `nonce_used`, never an accepted replay.

use std::hash::{Hash as _, Hasher as _};

use crate::freshness::{NonceKey, NonceRefusal, NonceStore};

/// Envoy's shared data as this store needs it (`get_shared_data`, `set_shared_data` with a
/// `cas`). Envoy's semantics: a write with a `cas` other than the entry's version is refused,
/// but a write to a missing key ignores the `cas` (use [`CREATE_ONLY`] to create one).
pub trait VersionedStore {
    /// The value and its version.
    fn get_versioned(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Writes if the entry's version is still `cas`; `false` on a mismatch or a refusal.
    fn set_versioned(&self, key: &str, value: &[u8], cas: u32) -> bool;
}

/// The `cas` that writes a missing key only (`tokengate_core::cache::CREATE_ONLY`): of two
/// first writers, exactly one wins.
pub const CREATE_ONLY: u32 = u32::MAX;

/// How often an insert is retried after losing a compare-and-swap before it gives up
/// (`Unavailable`, refused).
pub const MAX_ATTEMPTS: usize = 16;

/// One record: 16 bytes of fingerprint, 8 of timestamp (big-endian).
const RECORD: usize = 24;

/// Nonces in shared buckets.
pub struct SharedNonces<S> {
    store: S,
    prefix: String,
    buckets: u64,
    per_bucket: usize,
    window_seconds: u64,
}

impl<S: VersionedStore> SharedNonces<S> {
    /// `prefix` names the keys (the configuration's digest and the provider's name, so
    /// another configuration never reads them); capacity is `buckets * per_bucket` nonces.
    pub fn new(store: S, prefix: &str, buckets: u32, per_bucket: usize, window_seconds: u64) -> Self {
        Self {
            store,
            prefix: prefix.to_owned(),
            buckets: u64::from(buckets.max(1)),
            per_bucket,
            window_seconds,
        }
    }

    fn fingerprint(key: NonceKey<'_>) -> [u8; 16] {
        let half = |salt: u8| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            salt.hash(&mut hasher);
            (key.consumer_key, key.token, key.nonce).hash(&mut hasher);
            hasher.finish().to_be_bytes()
        };
        let mut out = [0; 16];
        let (first, second) = out.split_at_mut(8);
        first.copy_from_slice(&half(1));
        second.copy_from_slice(&half(2));
        out
    }
}

/// A bucket as it is written back at `now`: its records still inside the window (`stamp +
/// window >= now`), in order, then `print` at `timestamp`. `Unavailable` if the bucket is not a
/// whole number of records, `Used` if `print` is among those kept, `Full` if `per_bucket` of
/// them are kept. One pass over the stored bytes, one allocation.
fn with_record(
    value: &[u8],
    print: &[u8; 16],
    timestamp: u64,
    now: u64,
    window: u64,
    per_bucket: usize,
) -> Result<Vec<u8>, NonceRefusal> {
    if !value.len().is_multiple_of(RECORD) {
        return Err(NonceRefusal::Unavailable);
    }
    let mut out = Vec::with_capacity(value.len() + RECORD);
    let mut kept = 0_usize;
    for record in value.chunks_exact(RECORD) {
        let (seen, stamp) = record.split_at(16);
        let stamp = u64::from_be_bytes(stamp.try_into().map_err(|_| NonceRefusal::Unavailable)?);
        if stamp.saturating_add(window) < now {
            continue;
        }
        if seen == print {
            return Err(NonceRefusal::Used);
        }
        kept += 1;
        out.extend_from_slice(record);
    }
    if kept >= per_bucket {
        return Err(NonceRefusal::Full);
    }
    out.extend_from_slice(print);
    out.extend_from_slice(&timestamp.to_be_bytes());
    Ok(out)
}

impl<S: VersionedStore> NonceStore for SharedNonces<S> {
    fn insert(&self, key: NonceKey<'_>, timestamp: u64, now: u64) -> Result<(), NonceRefusal> {
        let print = Self::fingerprint(key);
        let bucket = u64::from_be_bytes(print.get(..8).and_then(|b| b.try_into().ok()).unwrap_or_default())
            % self.buckets;
        let store_key = format!("{}.nonces.{bucket}", self.prefix);
        let window = self.window_seconds;
        for _ in 0..MAX_ATTEMPTS {
            // A bucket this module cannot read: fail closed, never start it afresh.
            let (value, cas) = match self.store.get_versioned(&store_key) {
                Some((value, cas)) => (
                    with_record(&value, &print, timestamp, now, window, self.per_bucket)?,
                    cas,
                ),
                None => (
                    with_record(&[], &print, timestamp, now, window, self.per_bucket)?,
                    CREATE_ONLY,
                ),
            };
            if self.store.set_versioned(&store_key, &value, cas) {
                return Ok(());
            }
        }
        Err(NonceRefusal::Unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Envoy's shared data: one version counter, a missing key ignores the `cas`.
    #[derive(Default)]
    struct EnvoyLike {
        entries: Mutex<HashMap<String, (Vec<u8>, u32)>>,
        version: Mutex<u32>,
    }

    impl VersionedStore for EnvoyLike {
        fn get_versioned(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.entries.lock().unwrap().get(key).cloned()
        }
        fn set_versioned(&self, key: &str, value: &[u8], cas: u32) -> bool {
            let mut entries = self.entries.lock().unwrap();
            if entries.get(key).is_some_and(|(_, version)| *version != cas) {
                return false;
            }
            let mut version = self.version.lock().unwrap();
            *version += 1;
            entries.insert(key.to_owned(), (value.to_vec(), *version));
            true
        }
    }

    impl VersionedStore for &EnvoyLike {
        fn get_versioned(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            (*self).get_versioned(key)
        }
        fn set_versioned(&self, key: &str, value: &[u8], cas: u32) -> bool {
            (*self).set_versioned(key, value, cas)
        }
    }

    fn key(nonce: &str) -> NonceKey<'_> {
        NonceKey {
            consumer_key: "jira-cli",
            token: "t",
            nonce,
        }
    }

    #[test]
    fn a_nonce_is_accepted_once_and_a_full_bucket_forgets_nothing_inside_the_window() {
        let store = EnvoyLike::default();
        // One bucket of two: every nonce meets every other.
        let nonces = SharedNonces::new(&store, "scope.p", 1, 2, 300);
        assert_eq!(nonces.insert(key("a"), 1000, 1000), Ok(()));
        assert_eq!(nonces.insert(key("a"), 1000, 1300), Err(NonceRefusal::Used));
        let other_token = NonceKey {
            token: "u",
            ..key("a")
        };
        assert_eq!(nonces.insert(other_token, 1000, 1000), Ok(()));
        assert_eq!(nonces.insert(key("b"), 1100, 1100), Err(NonceRefusal::Full));
        // Both left the window at 1300: room again, and "a" may be forgotten.
        assert_eq!(nonces.insert(key("b"), 1301, 1301), Ok(()));
        assert_eq!(nonces.insert(key("a"), 1301, 1301), Ok(()));
        assert_eq!(nonces.insert(key("c"), 1301, 1301), Err(NonceRefusal::Full));
    }

    #[test]
    fn nonces_spread_over_buckets_under_the_prefix() {
        let store = EnvoyLike::default();
        let nonces = SharedNonces::new(&store, "scope.p", 8, 100, 300);
        for i in 0..64 {
            assert_eq!(nonces.insert(key(&format!("n{i}")), 1000, 1000), Ok(()));
        }
        let entries = store.entries.lock().unwrap();
        assert!(entries.len() > 4, "{} buckets used", entries.len());
        assert!(entries.keys().all(|k| k.starts_with("scope.p.nonces.")));
    }

    /// Another worker inserts `nonce` between this worker's read and its write.
    struct Racing<'a> {
        store: &'a EnvoyLike,
        nonce: &'a str,
        raced: Cell<bool>,
    }

    impl VersionedStore for Racing<'_> {
        fn get_versioned(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.store.get_versioned(key)
        }
        fn set_versioned(&self, key: &str, value: &[u8], cas: u32) -> bool {
            if !self.raced.replace(true) {
                let other = SharedNonces::new(self.store, "scope.p", 1, 10, 300);
                assert_eq!(other.insert(super::tests::key(self.nonce), 1000, 1000), Ok(()));
            }
            self.store.set_versioned(key, value, cas)
        }
    }

    #[test]
    fn a_lost_race_is_retried_and_one_nonce_wins_once() {
        for existing in [false, true] {
            let store = EnvoyLike::default();
            if existing {
                // The bucket exists: a real version is compared. Else CREATE_ONLY is.
                SharedNonces::new(&store, "scope.p", 1, 10, 300)
                    .insert(key("old"), 1000, 1000)
                    .unwrap();
            }
            let same = SharedNonces::new(
                Racing {
                    store: &store,
                    nonce: "x",
                    raced: Cell::new(false),
                },
                "scope.p",
                1,
                10,
                300,
            );
            assert_eq!(
                same.insert(key("x"), 1000, 1000),
                Err(NonceRefusal::Used),
                "existing bucket: {existing}"
            );
            let store = EnvoyLike::default();
            let other = SharedNonces::new(
                Racing {
                    store: &store,
                    nonce: "y",
                    raced: Cell::new(false),
                },
                "scope.p",
                1,
                10,
                300,
            );
            assert_eq!(other.insert(key("x"), 1000, 1000), Ok(()));
            let both = store.get_versioned("scope.p.nonces.0").unwrap().0;
            assert_eq!(both.len(), 2 * RECORD, "the other worker's nonce is kept");
        }
    }

    #[test]
    fn concurrent_workers_accept_one_nonce_exactly_once() {
        let store = EnvoyLike::default();
        let accepted = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        SharedNonces::new(&store, "s", 4, 100, 300)
                            .insert(key("same"), 1000, 1000)
                            .is_ok()
                    })
                })
                .collect();
            threads
                .into_iter()
                .filter_map(|t| t.join().ok())
                .filter(|&ok| ok)
                .count()
        });
        assert_eq!(accepted, 1);
    }

    #[test]
    fn a_bucket_that_cannot_be_read_or_written_refuses() {
        let store = EnvoyLike::default();
        store.set_versioned("s.nonces.0", b"garbage", 0);
        let nonces = SharedNonces::new(&store, "s", 1, 10, 300);
        assert_eq!(
            nonces.insert(key("a"), 1000, 1000),
            Err(NonceRefusal::Unavailable)
        );
        struct Refusing;
        impl VersionedStore for Refusing {
            fn get_versioned(&self, _: &str) -> Option<(Vec<u8>, u32)> {
                None
            }
            fn set_versioned(&self, _: &str, _: &[u8], _: u32) -> bool {
                false
            }
        }
        let nonces = SharedNonces::new(Refusing, "s", 1, 10, 300);
        assert_eq!(
            nonces.insert(key("a"), 1000, 1000),
            Err(NonceRefusal::Unavailable)
        );
    }
}
