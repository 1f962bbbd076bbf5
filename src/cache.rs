//! Caches shared by all Envoy workers, over proxy-wasm shared data.
//!
//! Shared data has no delete and no enumeration, so a cache is a fixed array of slots: an
//! entry lives in the slot its key's hash picks, and a newer entry for the same slot replaces
//! it. The size bound is therefore the slot count, whatever the traffic. Keys are SHA-256
//! digests: a raw token is never stored. Time is explicit: `get(key, now)`.

use sha2::{Digest, Sha256};

use crate::clock::UnixSeconds;

/// The host's key-value store (proxy-wasm shared data in the shell, a map in tests).
pub trait SharedStore {
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    fn set(&self, key: &str, value: &[u8]);
}

/// A key as stored: SHA-256 of the namespace and the caller's key.
pub type CacheKey = [u8; 32];

/// A bounded TTL cache in `slots` slots of a [`SharedStore`] under `tokengate.<namespace>.`.
#[derive(Debug, Clone)]
pub struct SlotCache {
    namespace: &'static str,
    slots: u32,
}

const HEADER_LEN: usize = 32 + 8;

impl SlotCache {
    pub fn new(namespace: &'static str, slots: u32) -> Self {
        Self {
            namespace,
            slots: slots.max(1),
        }
    }

    pub fn key(&self, raw: &[u8]) -> CacheKey {
        let mut hasher = Sha256::new();
        hasher.update(self.namespace.as_bytes());
        hasher.update([0]);
        hasher.update(raw);
        hasher.finalize().into()
    }

    /// The value stored for `key`, if it is there and `now < expires_at`.
    pub fn get(&self, store: &dyn SharedStore, key: &CacheKey, now: UnixSeconds) -> Option<Vec<u8>> {
        let entry = store.get(&self.slot_name(key))?;
        let (stored_key, rest) = entry.split_at_checked(32)?;
        let (expiry, value) = rest.split_at_checked(8)?;
        let expires_at = i64::from_le_bytes(expiry.try_into().ok()?);
        (stored_key == key && now < expires_at).then(|| value.to_vec())
    }

    /// Stores `value` for `key` until `expires_at`, replacing whatever shared its slot.
    pub fn insert(&self, store: &dyn SharedStore, key: &CacheKey, value: &[u8], expires_at: UnixSeconds) {
        let mut entry = Vec::with_capacity(HEADER_LEN + value.len());
        entry.extend_from_slice(key);
        entry.extend_from_slice(&expires_at.to_le_bytes());
        entry.extend_from_slice(value);
        store.set(&self.slot_name(key), &entry);
    }

    fn slot_name(&self, key: &CacheKey) -> String {
        let index = u32::from_le_bytes([key[0], key[1], key[2], key[3]]) % self.slots;
        format!("tokengate.{}.{index}", self.namespace)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

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
        let key = cache.key(b"token");
        cache.insert(&store, &key, b"identity", 100);
        assert_eq!(cache.get(&store, &key, 99).as_deref(), Some(&b"identity"[..]));
        assert_eq!(cache.get(&store, &key, 100), None);
    }

    #[test]
    fn the_slot_count_bounds_the_store_and_collisions_never_return_another_key() {
        let (store, cache) = (MapStore::default(), SlotCache::new("jwt", 8));
        let keys: Vec<CacheKey> = (0..1000u32).map(|i| cache.key(&i.to_le_bytes())).collect();
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
        a.insert(&store, &a.key(b"secret-token"), b"1", 100);
        assert_eq!(b.get(&store, &b.key(b"secret-token"), 0), None);
        let stored = store.0.borrow();
        assert!(stored
            .values()
            .all(|v| !v.windows(12).any(|w| w == b"secret-token")));
    }

    #[test]
    fn garbage_in_a_slot_is_a_miss() {
        let (store, cache) = (MapStore::default(), SlotCache::new("jwt", 1));
        let key = cache.key(b"x");
        store.set("tokengate.jwt.0", b"short");
        assert_eq!(cache.get(&store, &key, 0), None);
    }
}
