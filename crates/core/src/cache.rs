//! Caches shared by all Envoy workers, over proxy-wasm shared data.
//!
//! Shared data has no delete and no enumeration, so a cache is a fixed array of buckets of
//! [`WAYS`] entries (set-associative): an entry lives in the bucket its key's hash picks, and
//! a full bucket gives up its entry that expires first. The size bound is therefore the slot
//! count, whatever the traffic; with 4 ways, keys that share a bucket do not evict each other
//! until five of them do (a direct-mapped cache made about 11% of 1,000 tokens evict each
//! other on every request). Keys are BLAKE3 digests: a raw token is never stored. BLAKE3 is a
//! 256-bit cryptographic hash like SHA-256, about three times faster under V8, where hashing
//! the token was the largest part of a cache hit. Time is explicit: `get(key, now)`.
//!
//! Every key is scoped ([`Scope`]): the digest of the configuration section that compiled the
//! provider (or directory) whose answer it stores, hashed into the key first. Two
//! configurations that share a VM (two listeners, one `vm_id`) and both name a provider `corp`
//! never read each other's verdicts unless the two `corp` sections are the same. The scope
//! is inside the hashed key and never in the bucket's name: shared data cannot be deleted, so
//! buckets per configuration would leak a whole cache at every configuration push.

use crate::clock::UnixSeconds;

/// The host's key-value store (proxy-wasm shared data in the shell, a map in tests).
///
/// Envoy's semantics, which every implementation copies: an entry's version (`cas`) changes
/// on every write; a write with a `cas` other than the entry's current one is refused, but a
/// write to a key that does not exist yet ignores the `cas` (two first writers both win);
/// entries can be neither deleted nor expired.
pub trait SharedStore {
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    fn set(&self, key: &str, value: &[u8]);
    /// The value and its version (`cas`), as Envoy's `get_shared_data` returns them.
    ///
    /// The default suits a store with one writer at a time (the single-threaded test maps):
    /// every version is 0, and [`SharedStore::set_versioned`] then writes unconditionally.
    /// The host's store and the tests' `EnvoyLikeStore` keep real versions.
    fn get_versioned(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.get(key).map(|value| (value, 0))
    }
    /// Writes if the entry's version is still `cas` (0: unconditionally; a missing key is
    /// always written, as Envoy does). `false` on a mismatch or a host refusal.
    fn set_versioned(&self, key: &str, value: &[u8], cas: u32) -> bool {
        let _ = cas;
        self.set(key, value);
        true
    }
}

/// A `cas` for [`SharedStore::set_versioned`] that writes a missing key only: Envoy ignores
/// the `cas` on a missing key and refuses it on an existing one, whose version it never is in
/// practice (Envoy's one version counter starts at 1 and would have to wrap around to reach
/// it). Two first writers racing with it: exactly one wins.
pub const CREATE_ONLY: u32 = u32::MAX;

/// A key as stored: BLAKE3 of the scope, the namespace and the caller's key.
pub type CacheKey = [u8; 32];

/// What a cached answer depends on: a BLAKE3 digest of the configuration section a provider
/// (or the directory) was compiled from, with its kind and name ([`scope_of`]).
pub type Scope = [u8; 32];

/// The scope of the section `section` of kind `kind` (`jwt_providers`, `oauth_providers`,
/// `api_token_providers`, `directory`) named `name`. The section is hashed as canonical JSON:
/// serde_json's default map is sorted by key, so the order a configuration writes its
/// fields in does not matter, while any value that differs (a key, an endpoint, a TTL, a
/// default written out) gives another scope.
pub fn scope_of(kind: &str, name: &str, section: &serde_json::Value) -> Scope {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"tokengate.scope\0");
    hasher.update(kind.as_bytes());
    hasher.update(&[0]);
    hasher.update(name.as_bytes());
    hasher.update(&[0]);
    // Serialising a `Value` cannot fail (its keys are strings); an empty digest input if it
    // ever did would still differ from every real section's.
    hasher.update(&serde_json::to_vec(section).unwrap_or_default());
    hasher.finalize().into()
}

/// A bounded TTL cache in `slots` slots of a [`SharedStore`] under `tokengate.<namespace>.`.
#[derive(Debug, Clone)]
pub struct SlotCache {
    namespace: &'static str,
    slots: u32,
}

/// Entries per bucket.
pub const WAYS: usize = 4;

/// One stored entry: key, expiry, value.
struct Entry<'a> {
    key: &'a [u8],
    expires_at: UnixSeconds,
    value: &'a [u8],
}

/// The entries of a bucket, `[32 key][8 expiry][4 length][value]` each; a malformed tail is
/// ignored (it is garbage from an older layout or another writer).
fn entries(bucket: &[u8]) -> Vec<Entry<'_>> {
    let mut rest = bucket;
    let mut found = Vec::new();
    while let Some((key, tail)) = rest.split_at_checked(32) {
        let Some((expiry, tail)) = tail.split_at_checked(8) else {
            break;
        };
        let Some((length, tail)) = tail.split_at_checked(4) else {
            break;
        };
        let (Ok(expiry), Ok(length)) = (expiry.try_into(), length.try_into()) else {
            break;
        };
        let length = u32::from_le_bytes(length) as usize;
        let Some((value, tail)) = tail.split_at_checked(length) else {
            break;
        };
        found.push(Entry {
            key,
            expires_at: i64::from_le_bytes(expiry),
            value,
        });
        rest = tail;
    }
    found
}

fn push_entry(bucket: &mut Vec<u8>, key: &[u8], expires_at: UnixSeconds, value: &[u8]) {
    bucket.extend_from_slice(key);
    bucket.extend_from_slice(&expires_at.to_le_bytes());
    bucket.extend_from_slice(&u32::try_from(value.len()).unwrap_or(u32::MAX).to_le_bytes());
    bucket.extend_from_slice(value);
}

impl SlotCache {
    pub fn new(namespace: &'static str, slots: u32) -> Self {
        Self {
            namespace,
            slots: slots.max(1),
        }
    }

    /// The stored key of `raw` in `scope`: the scope first, so that no key can be built
    /// without one.
    pub fn key(&self, scope: &Scope, raw: &[u8]) -> CacheKey {
        let mut hasher = blake3::Hasher::new();
        hasher.update(scope);
        hasher.update(self.namespace.as_bytes());
        hasher.update(&[0]);
        hasher.update(raw);
        hasher.finalize().into()
    }

    /// The value stored for `key`, if it is there and `now < expires_at`.
    pub fn get(&self, store: &dyn SharedStore, key: &CacheKey, now: UnixSeconds) -> Option<Vec<u8>> {
        let bucket = store.get(&self.bucket_name(key))?;
        let found = entries(&bucket)
            .into_iter()
            .find(|e| e.key == key.as_slice() && now < e.expires_at)?;
        Some(found.value.to_vec())
    }

    /// Stores `value` for `key` until `expires_at`. In a full bucket, the entry that expires
    /// first gives way.
    pub fn insert(&self, store: &dyn SharedStore, key: &CacheKey, value: &[u8], expires_at: UnixSeconds) {
        let name = self.bucket_name(key);
        let old = store.get(&name).unwrap_or_default();
        let mut kept: Vec<Entry<'_>> = entries(&old)
            .into_iter()
            .filter(|e| e.key != key.as_slice())
            .collect();
        kept.sort_by_key(|e| std::cmp::Reverse(e.expires_at));
        kept.truncate(WAYS - 1);
        let mut bucket = Vec::new();
        for entry in &kept {
            push_entry(&mut bucket, entry.key, entry.expires_at, entry.value);
        }
        push_entry(&mut bucket, key, expires_at, value);
        store.set(&name, &bucket);
    }

    /// The bucket `key` lives in, `0..slots / WAYS`.
    pub fn bucket(&self, key: &CacheKey) -> u32 {
        let buckets = (self.slots / WAYS as u32).max(1);
        u32::from_le_bytes([key[0], key[1], key[2], key[3]]) % buckets
    }

    fn bucket_name(&self, key: &CacheKey) -> String {
        format!("tokengate.{}.{}", self.namespace, self.bucket(key))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    const SCOPE: Scope = [7; 32];

    #[derive(Default)]
    pub struct MapStore(pub RefCell<HashMap<String, Vec<u8>>>);

    impl SharedStore for MapStore {
        fn get(&self, key: &str) -> Option<Vec<u8>> {
            self.0.borrow().get(key).cloned()
        }
        fn set(&self, key: &str, value: &[u8]) {
            self.0.borrow_mut().insert(key.to_owned(), value.to_vec());
        }
    }

    #[test]
    fn an_entry_is_served_until_it_expires() {
        let (store, cache) = (MapStore::default(), SlotCache::new("jwt", 64));
        let key = cache.key(&SCOPE, b"token");
        cache.insert(&store, &key, b"identity", 100);
        assert_eq!(cache.get(&store, &key, 99).as_deref(), Some(&b"identity"[..]));
        assert_eq!(cache.get(&store, &key, 100), None);
    }

    #[test]
    fn the_slot_count_bounds_the_store_and_collisions_never_return_another_key() {
        let (store, cache) = (MapStore::default(), SlotCache::new("jwt", 8));
        let keys: Vec<CacheKey> = (0..1000u32)
            .map(|i| cache.key(&SCOPE, &i.to_le_bytes()))
            .collect();
        for key in &keys {
            cache.insert(&store, key, key, 100);
        }
        assert!(store.0.borrow().len() <= 8);
        for key in &keys {
            if let Some(value) = cache.get(&store, key, 0) {
                assert_eq!(&value, key);
            }
        }
    }

    #[test]
    fn namespaces_do_not_share_keys_and_raw_keys_are_not_stored() {
        let store = MapStore::default();
        let (a, b) = (SlotCache::new("a", 1), SlotCache::new("b", 1));
        a.insert(&store, &a.key(&SCOPE, b"secret-token"), b"1", 100);
        assert_eq!(b.get(&store, &b.key(&SCOPE, b"secret-token"), 0), None);
        let stored = store.0.borrow();
        assert!(stored
            .values()
            .all(|v| !v.windows(12).any(|w| w == b"secret-token")));
    }

    #[test]
    fn a_thousand_keys_in_8192_slots_all_stay() {
        let (store, cache) = (MapStore::default(), SlotCache::new("jwt", 8192));
        let keys: Vec<CacheKey> = (0..1000u32)
            .map(|i| cache.key(&SCOPE, &i.to_le_bytes()))
            .collect();
        for key in &keys {
            cache.insert(&store, key, b"v", 100);
        }
        let kept = keys.iter().filter(|k| cache.get(&store, k, 0).is_some()).count();
        assert_eq!(kept, 1000);
    }

    #[test]
    fn a_full_bucket_gives_up_the_entry_that_expires_first() {
        let (store, cache) = (MapStore::default(), SlotCache::new("jwt", WAYS as u32));
        let keys: Vec<CacheKey> = (0..5u32).map(|i| cache.key(&SCOPE, &i.to_le_bytes())).collect();
        for (i, key) in keys.iter().enumerate() {
            let expires = if i == 2 { 50 } else { 100 + i as i64 };
            cache.insert(&store, key, b"v", expires);
        }
        assert_eq!(cache.get(&store, &keys[2], 0), None, "the soonest to expire went");
        for i in [0, 1, 3, 4] {
            assert!(cache.get(&store, &keys[i], 0).is_some(), "{i}");
        }
        cache.insert(&store, &keys[0], b"new", 200);
        assert_eq!(
            cache.get(&store, &keys[0], 0).as_deref(),
            Some(&b"new"[..]),
            "a key is stored once"
        );
        assert_eq!(entries(&store.get("tokengate.jwt.0").unwrap()).len(), WAYS);
    }

    #[test]
    fn a_key_of_another_scope_is_a_miss() {
        let (store, cache) = (MapStore::default(), SlotCache::new("jwt", 1));
        cache.insert(&store, &cache.key(&[1; 32], b"token"), b"corp of listener 1", 100);
        assert_eq!(cache.get(&store, &cache.key(&[2; 32], b"token"), 0), None);
        assert!(cache.get(&store, &cache.key(&[1; 32], b"token"), 0).is_some());
    }

    #[test]
    fn a_scope_is_the_canonical_section_with_its_kind_and_name() {
        let section = serde_json::json!({"issuer": "https://a", "audiences": ["jira"]});
        let reordered: serde_json::Value =
            serde_json::from_str(r#"{"audiences": ["jira"], "issuer": "https://a"}"#).unwrap();
        let scope = scope_of("jwt_providers", "corp", &section);
        assert_eq!(
            scope,
            scope_of("jwt_providers", "corp", &reordered),
            "field order is not a difference"
        );
        for (kind, name, other) in [
            (
                "jwt_providers",
                "corp",
                serde_json::json!({"issuer": "https://b", "audiences": ["jira"]}),
            ),
            (
                "jwt_providers",
                "corp",
                serde_json::json!({"issuer": "https://a"}),
            ),
            ("jwt_providers", "corp2", section.clone()),
            ("oauth_providers", "corp", section.clone()),
        ] {
            assert_ne!(scope, scope_of(kind, name, &other), "{kind}.{name}: {other}");
        }
    }

    #[test]
    fn garbage_in_a_slot_is_a_miss() {
        let (store, cache) = (MapStore::default(), SlotCache::new("jwt", 1));
        let key = cache.key(&SCOPE, b"x");
        store.set("tokengate.jwt.0", b"short");
        assert_eq!(cache.get(&store, &key, 0), None);
    }
}
