//! Fakes for unit tests: a shared-data store with Envoy's versioning, and a way to run
//! another worker between one worker's read and its write.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use crate::cache::SharedStore;

/// What runs just before the store's next write (another worker's turn).
type Interleaved<'a> = Box<dyn FnOnce(&dyn SharedStore) + 'a>;

/// Envoy's shared data as `source/extensions/common/wasm/context.cc` keeps it: one version
/// counter for the whole store, starting at 1 and skipping 0; a write with a `cas` other
/// than the entry's version is refused, a `cas` of 0 is unconditional, and a missing key is
/// written whatever the `cas`. Nothing is ever deleted.
#[derive(Default)]
pub struct EnvoyLikeStore<'a> {
    entries: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    last_cas: Cell<u32>,
    /// Another worker's turn, and how many writes still come before it.
    before_write: RefCell<Option<(usize, Interleaved<'a>)>>,
    /// Keys written so far, in order (to count fetch results, body-before-head, ...).
    pub writes: RefCell<Vec<String>>,
    /// Reads so far.
    pub reads: Cell<usize>,
    /// While set, every write is refused (a host refusal, or a writer stopped mid-way).
    pub refuse_writes: Cell<bool>,
}

impl<'a> EnvoyLikeStore<'a> {
    /// Runs `turn` just before the next write, as if another worker ran between this
    /// worker's read and its write.
    pub fn before_next_write(&self, turn: impl FnOnce(&dyn SharedStore) + 'a) {
        self.before_write_number(1, turn);
    }

    /// Runs `turn` just before the `n`th write from now (1: the next one).
    pub fn before_write_number(&self, n: usize, turn: impl FnOnce(&dyn SharedStore) + 'a) {
        *self.before_write.borrow_mut() = Some((n.max(1), Box::new(turn)));
    }

    /// The raw entry, for tests that check what is stored.
    pub fn raw(&self, key: &str) -> Option<Vec<u8>> {
        self.entries.borrow().get(key).map(|(value, _)| value.clone())
    }

    fn next_cas(&self) -> u32 {
        let next = match self.last_cas.get().wrapping_add(1) {
            0 => 1,
            cas => cas,
        };
        self.last_cas.set(next);
        next
    }
}

impl SharedStore for EnvoyLikeStore<'_> {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.get_versioned(key).map(|(value, _)| value)
    }

    fn set(&self, key: &str, value: &[u8]) {
        self.set_versioned(key, value, 0);
    }

    fn get_versioned(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.reads.set(self.reads.get() + 1);
        self.entries.borrow().get(key).cloned()
    }

    fn set_versioned(&self, key: &str, value: &[u8], cas: u32) -> bool {
        let turn = {
            let mut pending = self.before_write.borrow_mut();
            match pending.take() {
                Some((1, turn)) => Some(turn),
                Some((n, turn)) => {
                    *pending = Some((n - 1, turn));
                    None
                }
                None => None,
            }
        };
        if let Some(turn) = turn {
            turn(self);
        }
        if self.refuse_writes.get() {
            return false;
        }
        let current = self.entries.borrow().get(key).map(|(_, version)| *version);
        if matches!(current, Some(version) if cas != 0 && cas != version) {
            return false;
        }
        let version = self.next_cas();
        self.entries
            .borrow_mut()
            .insert(key.to_owned(), (value.to_vec(), version));
        self.writes.borrow_mut().push(key.to_owned());
        true
    }
}

/// A keyring without remote keys: providers with local keys, or none at all.
pub struct NoKeys;

impl crate::host::Keyring for NoKeys {
    fn remote_keys(
        &self,
        _provider: &str,
    ) -> Option<(std::rc::Rc<crate::jwk::KeySet>, crate::jwks_cache::Generation)> {
        None
    }
}

/// What a unit test decides against: `store`, no remote keys, no counting, and the module's
/// own signature checks.
pub fn env_over(store: &dyn SharedStore) -> crate::host::Env<'_> {
    crate::host::Env {
        keyring: &NoKeys,
        store,
        count: &crate::host::NoCount,
        signatures: &crate::hostcrypto::ModuleOnly,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CREATE_ONLY;

    #[test]
    fn a_write_with_a_stale_version_is_refused_and_a_current_one_accepted() {
        let store = EnvoyLikeStore::default();
        assert!(store.set_versioned("k", b"1", 0));
        let (_, cas) = store.get_versioned("k").unwrap();
        assert!(store.set_versioned("k", b"2", cas));
        assert!(!store.set_versioned("k", b"3", cas), "cas changed with the write");
        assert_eq!(store.get("k").as_deref(), Some(&b"2"[..]));
        assert!(store.set_versioned("k", b"4", 0), "0 is unconditional");
    }

    #[test]
    fn the_version_is_ignored_on_a_missing_key_so_two_first_writers_both_win() {
        let store = EnvoyLikeStore::default();
        assert!(store.set_versioned("k", b"first", 12345));
        assert!(store.set_versioned("other", b"x", 7));
        assert!(!store.set_versioned("k", b"second", 12345));
    }

    #[test]
    fn create_only_writes_a_missing_key_once() {
        let store = EnvoyLikeStore::default();
        assert!(store.set_versioned("k", b"first", CREATE_ONLY));
        assert!(!store.set_versioned("k", b"second", CREATE_ONLY));
        assert_eq!(store.raw("k").as_deref(), Some(&b"first"[..]));
    }

    #[test]
    fn another_workers_turn_runs_before_the_write() {
        let store = EnvoyLikeStore::default();
        assert!(store.set_versioned("k", b"a", 0));
        let (_, cas) = store.get_versioned("k").unwrap();
        store.before_next_write(|other| {
            assert!(other.set_versioned("k", b"b", 0));
        });
        assert!(!store.set_versioned("k", b"c", cas), "the other write came first");
        assert_eq!(store.get("k").as_deref(), Some(&b"b"[..]));
        store.before_write_number(2, |other| assert!(other.set_versioned("k", b"e", 0)));
        assert!(store.set_versioned("k", b"d", 0));
        assert_eq!(
            store.raw("k").as_deref(),
            Some(&b"d"[..]),
            "not before the first write"
        );
        assert!(store.set_versioned("k", b"f", 0));
        assert_eq!(store.writes.borrow().len(), 5);
    }
}
