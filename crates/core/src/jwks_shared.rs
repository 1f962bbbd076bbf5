//! One key set per Envoy process: a remote JWKS, its refresh schedule and its fetch lease in
//! shared data, so every worker verifies with the same keys at the same moment and the
//! process fetches once per refresh, not once per worker.
//!
//! Per JWKS source (cluster, authority, path and refresh policy) two entries:
//! `tokengate.jwks.<hex>.head`, small, read by every request that needs the keys (the
//! generation, a digest of the parsed keys, the schedule, the backoff, the last unknown-`kid`
//! refetch and the fetch lease), and `tokengate.jwks.<hex>.body`, `generation || JWKS bytes`,
//! read and parsed only when the head's generation differs from the worker's local copy.
//!
//! Shared data has no locks, no delete and no expiry, and a write to a missing key ignores its
//! `cas`; so the head is created in advance (create-only, [`CREATE_ONLY`]: exactly one first
//! writer wins), every change to it is a compare-and-swap, and the leader lock is a lease
//! inside it, `{holder, until}`, that any worker takes over once `until` (the fetch timeout
//! plus a second) has passed: a leader lost in a plugin reload never holds it for longer.
//!
//! A writer writes the body before the head. A reader takes a body only when its generation is
//! the head's and its parsed keys have the head's digest, so a writer stopped between the two
//! writes (or two writers whose bodies crossed) never makes a reader verify with keys the head
//! does not name; such a reader has no keys for the moment and makes a fetch due, which
//! rewrites both.
//!
//! How the worker drives it (one [`SharedJwks`] per remote provider per worker VM, `holder` a
//! random nonce of the VM): `on_configure` calls [`SharedJwks::create_in_advance`]; the
//! `Keyring` answers with [`SharedJwks::current`]; a request whose token names an unknown
//! `kid` calls [`SharedJwks::request_refetch`] (`TooSoon`: decide with the keys as they are;
//! `Underway`: park until settled or its deadline, and wake the root); the root's tick and
//! `on_queue_ready` call [`SharedJwks::take_fetch`] and dispatch what it returns, its
//! `on_http_call_response` reports with [`SharedJwks::fetched`]; parked requests are decided
//! again once [`SharedJwks::settled`] (every worker's tick checks, so a fetch made by one
//! worker wakes the others' parked requests within a tick).

use std::cell::RefCell;
use std::rc::Rc;

use crate::bearer::RemoteJwks;
use crate::cache::{SharedStore, CREATE_ONLY};
use crate::callout::{Callout, CalloutResult};
use crate::jwk::{KeyMaterial, KeySet};
pub use crate::jwks_cache::{Generation, Millis};

/// Why a request that met an unknown `kid` may or may not hope for fresher keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refetch {
    /// A fetch is due or under way somewhere in the process: wait for it.
    Underway,
    /// The last unknown-`kid` refetch was within the policy's gap: decide with the keys as
    /// they are.
    TooSoon,
}

/// What a fetch did to the shared key set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// New keys, under a new generation.
    NewKeys,
    /// The same keys: the generation stays, and so do verdicts made under it.
    Unchanged,
    /// Nothing usable (the reason, for the log line, holds no secrets): the last good keys
    /// stay and the next fetch backs off.
    Failed(String),
}

/// How many times a compare-and-swap is retried against other workers' writes.
const ATTEMPTS: usize = 4;

/// How long a lease outlives the fetch's own timeout.
const LEASE_MARGIN_MS: Millis = 1_000;

/// The longest fetch timeout a configuration can give (`remote_jwks.timeout_ms` is clamped to
/// it): no lease is taken for longer than this and [`LEASE_MARGIN_MS`].
const MAX_FETCH_TIMEOUT_MS: Millis = 60_000;

/// Layout version of the head.
const HEAD_LAYOUT: u8 = 1;

/// The fetch lease: `holder` (a VM's nonce) fetches, until `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Lease {
    holder: u64,
    until: Millis,
}

/// The shared state of one JWKS source, as stored in its head entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Head {
    generation: Generation,
    /// Digest of the parsed keys of `generation`; `None` until a fetch succeeded.
    digest: Option<[u8; 32]>,
    next_fetch_at: Millis,
    consecutive_failures: u32,
    /// When an unknown `kid` last made a fetch due.
    last_refetch: Option<Millis>,
    lease: Option<Lease>,
}

impl Head {
    /// A lease ending further ahead than any fetch can last was taken under a clock that has
    /// since been stepped back: it is over (else a lost leader would hold it for the step).
    fn lease_live(&self, now: Millis) -> bool {
        let longest = now.saturating_add(MAX_FETCH_TIMEOUT_MS + LEASE_MARGIN_MS);
        self.lease
            .is_some_and(|lease| now < lease.until && lease.until <= longest)
    }

    /// Whether the schedule makes a fetch due: its time has come, or it lies further ahead
    /// than the refresh interval ever puts it (written under a clock since stepped back).
    fn fetch_due(&self, now: Millis, interval_ms: Millis) -> bool {
        now >= self.next_fetch_at || self.next_fetch_at > now.saturating_add(interval_ms)
    }

    fn held_by(&self, holder: u64) -> bool {
        self.lease.is_some_and(|lease| lease.holder == holder)
    }

    /// A fetch should start now, and nobody holds a live lease for it.
    fn due(&self, now: Millis, interval_ms: Millis) -> bool {
        self.fetch_due(now, interval_ms) && !self.lease_live(now)
    }

    /// `[layout][generation 8][has digest 1][digest 32][next fetch 8][failures 4]`
    /// `[has refetch 1][refetch 8][has lease 1][holder 8][until 8]`, little-endian.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(80);
        out.push(HEAD_LAYOUT);
        out.extend_from_slice(&self.generation.to_le_bytes());
        out.push(u8::from(self.digest.is_some()));
        out.extend_from_slice(&self.digest.unwrap_or_default());
        out.extend_from_slice(&self.next_fetch_at.to_le_bytes());
        out.extend_from_slice(&self.consecutive_failures.to_le_bytes());
        out.push(u8::from(self.last_refetch.is_some()));
        out.extend_from_slice(&self.last_refetch.unwrap_or_default().to_le_bytes());
        out.push(u8::from(self.lease.is_some()));
        let lease = self.lease.unwrap_or(Lease { holder: 0, until: 0 });
        out.extend_from_slice(&lease.holder.to_le_bytes());
        out.extend_from_slice(&lease.until.to_le_bytes());
        out
    }

    /// A head whose bytes [`Head::decode`] refused, read as a new one, but numbered from a
    /// digest of those bytes: generations restarting at 0 would hand out again numbers that
    /// workers' local copies and cached verdicts hold for other keys.
    fn unreadable(bytes: &[u8]) -> Self {
        let digest = blake3::hash(bytes);
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest.as_bytes()[..8]);
        Self {
            generation: u64::from_le_bytes(first),
            ..Self::default()
        }
    }

    /// `None` for anything [`Head::encode`] did not write (another layout, a truncated value).
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut reader = Reader(bytes);
        if reader.byte()? != HEAD_LAYOUT {
            return None;
        }
        let generation = reader.u64()?;
        let has_digest = reader.flag()?;
        let digest: [u8; 32] = reader.take(32)?.try_into().ok()?;
        let next_fetch_at = reader.u64()?;
        let consecutive_failures = u32::from_le_bytes(reader.take(4)?.try_into().ok()?);
        let has_refetch = reader.flag()?;
        let refetch = reader.u64()?;
        let has_lease = reader.flag()?;
        let (holder, until) = (reader.u64()?, reader.u64()?);
        reader.0.is_empty().then_some(Self {
            generation,
            digest: has_digest.then_some(digest),
            next_fetch_at,
            consecutive_failures,
            last_refetch: has_refetch.then_some(refetch),
            lease: has_lease.then_some(Lease { holder, until }),
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(taken)
    }
    fn byte(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }
    fn flag(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

/// A digest of the parsed keys: what verifies, in order (`kid`, `alg`, key type and public
/// key). Whitespace, member order and keys this build skips do not change it. A key set
/// holding an HMAC secret (never from a remote JWKS, which may not carry one) falls back to
/// the digest of the JWKS bytes, as the secret is not readable here.
fn digest_of(keys: &KeySet, jwks: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    let mut field = |bytes: &[u8]| {
        hasher.update(&u64::try_from(bytes.len()).unwrap_or(u64::MAX).to_le_bytes());
        hasher.update(bytes);
    };
    for key in keys.iter() {
        field(key.kid().map_or(b"\0none" as &[u8], str::as_bytes));
        field(key.alg().map_or("", |alg| alg.name()).as_bytes());
        match key.material() {
            KeyMaterial::Rsa(rsa) => field(&rsa.spki_der),
            KeyMaterial::P256(ec) => field(&ec.spki_der),
            KeyMaterial::P384(ec) => field(&ec.spki_der),
            KeyMaterial::P521(ec) => field(&ec.spki_der),
            KeyMaterial::Ed25519(public) => field(public.as_ref()),
            KeyMaterial::Hmac(_) => return blake3::hash(jwks).into(),
        }
    }
    hasher.finalize().into()
}

/// The keys of one worker's last look at the body.
struct Local {
    generation: Generation,
    keys: Rc<KeySet>,
}

/// One remote JWKS provider's shared key set, as one worker sees it.
pub struct SharedJwks {
    settings: RemoteJwks,
    holder: u64,
    head_key: String,
    body_key: String,
    local: RefCell<Option<Local>>,
}

impl SharedJwks {
    /// `holder` is this VM's nonce (random per VM): the lease names it.
    pub fn new(settings: &RemoteJwks, holder: u64) -> Self {
        let source = source_hex(settings);
        Self {
            settings: settings.clone(),
            holder,
            head_key: format!("tokengate.jwks.{source}.head"),
            body_key: format!("tokengate.jwks.{source}.body"),
            local: RefCell::new(None),
        }
    }

    /// Creates the head if it does not exist yet (`on_configure`), so that no worker's first
    /// lease is a write to a missing key (which ignores the `cas`).
    pub fn create_in_advance(&self, store: &dyn SharedStore) {
        if store.get_versioned(&self.head_key).is_none() {
            store.set_versioned(&self.head_key, &Head::default().encode(), CREATE_ONLY);
        }
    }

    /// The process's current keys and their generation; `None` until a fetch succeeded (or
    /// while the body does not match the head: see the module's notes). One small read of
    /// the head; the body is read and parsed only when the generation changed.
    pub fn current(&self, store: &dyn SharedStore) -> Option<(Rc<KeySet>, Generation)> {
        let (head, cas) = self.read_head(store);
        let digest = head.digest?;
        if let Some(local) = self.local.borrow().as_ref() {
            if local.generation == head.generation {
                return Some((local.keys.clone(), local.generation));
            }
        }
        let Some(keys) = self.read_body(store, head.generation, &digest) else {
            // The body is not the head's (a writer stopped between them, or is between them
            // now): make a fetch due, once; the next good fetch rewrites both.
            if head.next_fetch_at != 0 {
                let repair = Head {
                    next_fetch_at: 0,
                    ..head
                };
                store.set_versioned(&self.head_key, &repair.encode(), cas);
            }
            return None;
        };
        let keys = Rc::new(keys);
        *self.local.borrow_mut() = Some(Local {
            generation: head.generation,
            keys: keys.clone(),
        });
        Some((keys, head.generation))
    }

    /// A token named a `kid` the keys lack: make a fetch due now, unless one is due or under
    /// way already, or the last such refetch was within the policy's gap.
    pub fn request_refetch(&self, store: &dyn SharedStore, now: Millis) -> Refetch {
        for _ in 0..ATTEMPTS {
            let (head, cas) = self.read_head(store);
            if head.fetch_due(now, self.settings.refresh.interval_ms) || head.lease_live(now) {
                return Refetch::Underway;
            }
            if !self.settings.refresh.refetch_allowed(head.last_refetch, now) {
                return Refetch::TooSoon;
            }
            let due = Head {
                next_fetch_at: now,
                last_refetch: Some(now),
                ..head
            };
            if store.set_versioned(&self.head_key, &due.encode(), cas) {
                return Refetch::Underway;
            }
        }
        // Other workers kept writing the head: one of them is fetching or asking for it.
        Refetch::Underway
    }

    /// `Some(callout)` when a fetch is due and this worker took the lease: it must fetch now
    /// (root callbacks only) and report with [`SharedJwks::fetched`].
    pub fn take_fetch(&self, store: &dyn SharedStore, now: Millis) -> Option<Callout> {
        for _ in 0..ATTEMPTS {
            let (head, cas) = self.read_head(store);
            if !head.due(now, self.settings.refresh.interval_ms) {
                return None;
            }
            let until = now
                .saturating_add(self.settings.timeout_ms)
                .saturating_add(LEASE_MARGIN_MS);
            let leased = Head {
                lease: Some(Lease {
                    holder: self.holder,
                    until,
                }),
                ..head
            };
            if store.set_versioned(&self.head_key, &leased.encode(), cas) {
                return Some(self.callout());
            }
        }
        None
    }

    /// The answer to this worker's fetch: good keys become the process's keys (a new
    /// generation only if they differ from the current ones); anything else keeps the last
    /// good keys and backs off.
    pub fn fetched(&self, store: &dyn SharedStore, result: CalloutResult, now: Millis) -> Fetched {
        let loaded = match result {
            CalloutResult::Response { status: 200, body } => match KeySet::from_jwks(&body) {
                Ok(keys) => Ok((digest_of(&keys, &body), keys, body)),
                Err(problem) => Err(problem.to_string()),
            },
            CalloutResult::Response { status, .. } => Err(format!("status {status}")),
            CalloutResult::Failed => Err("no response".to_owned()),
        };
        match loaded {
            Ok((digest, keys, jwks)) => self.store_keys(store, digest, keys, &jwks, now),
            Err(reason) => {
                self.store_failure(store, now);
                Fetched::Failed(reason)
            }
        }
    }

    /// This worker's root context is done (a plugin reload): the host cancels its fetch, so
    /// a lease it holds is given back for another worker to fetch at its next tick (rather
    /// than when the lease expires). The schedule stays: the fetch is still due.
    pub fn release(&self, store: &dyn SharedStore) {
        for _ in 0..ATTEMPTS {
            let (head, cas) = self.read_head(store);
            if !head.held_by(self.holder) {
                return;
            }
            let released = Head { lease: None, ..head };
            if store.set_versioned(&self.head_key, &released.encode(), cas) {
                return;
            }
        }
    }

    /// Requests parked for these keys may be decided again: keys loaded and no fetch due or
    /// under way anywhere.
    pub fn settled(&self, store: &dyn SharedStore, now: Millis) -> bool {
        let (head, _) = self.read_head(store);
        head.digest.is_some()
            && !head.fetch_due(now, self.settings.refresh.interval_ms)
            && !head.lease_live(now)
    }

    fn store_keys(
        &self,
        store: &dyn SharedStore,
        digest: [u8; 32],
        keys: KeySet,
        jwks: &[u8],
        now: Millis,
    ) -> Fetched {
        for _ in 0..ATTEMPTS {
            let (head, cas) = self.read_head(store);
            let unchanged = head.digest == Some(digest);
            let generation = match unchanged {
                true => head.generation,
                false => head.generation.wrapping_add(1),
            };
            // The body first: a reader follows the head, and takes a body only when it is
            // the head's. Rewritten even when unchanged, which heals a body left by a writer
            // stopped before its head.
            let mut body = Vec::with_capacity(8 + jwks.len());
            body.extend_from_slice(&generation.to_le_bytes());
            body.extend_from_slice(jwks);
            if !store.set_versioned(&self.body_key, &body, 0) {
                continue;
            }
            let next = Head {
                generation,
                digest: Some(digest),
                next_fetch_at: now.saturating_add(self.settings.refresh.interval_ms),
                consecutive_failures: 0,
                last_refetch: head.last_refetch,
                lease: head.lease.filter(|lease| lease.holder != self.holder),
            };
            if store.set_versioned(&self.head_key, &next.encode(), cas) {
                *self.local.borrow_mut() = Some(Local {
                    generation,
                    keys: Rc::new(keys),
                });
                return match unchanged {
                    true => Fetched::Unchanged,
                    false => Fetched::NewKeys,
                };
            }
        }
        Fetched::Failed("shared data refused the new keys".to_owned())
    }

    fn store_failure(&self, store: &dyn SharedStore, now: Millis) {
        for _ in 0..ATTEMPTS {
            let (head, cas) = self.read_head(store);
            // A lease taken over by another worker: that fetch decides the schedule now.
            if !head.held_by(self.holder) {
                return;
            }
            let failures = head.consecutive_failures.saturating_add(1);
            let next = Head {
                next_fetch_at: now.saturating_add(self.settings.refresh.backoff_ms(failures)),
                consecutive_failures: failures,
                lease: None,
                ..head
            };
            if store.set_versioned(&self.head_key, &next.encode(), cas) {
                return;
            }
        }
    }

    /// The head and its version; a missing or unreadable head reads as a new one whose write
    /// only creates (so two workers that both find it missing cannot both win a lease).
    fn read_head(&self, store: &dyn SharedStore) -> (Head, u32) {
        match store.get_versioned(&self.head_key) {
            Some((bytes, cas)) => (
                Head::decode(&bytes).unwrap_or_else(|| Head::unreadable(&bytes)),
                cas,
            ),
            None => (Head::default(), CREATE_ONLY),
        }
    }

    /// The body's keys if the body is `generation`'s and its keys have `digest`.
    fn read_body(
        &self,
        store: &dyn SharedStore,
        generation: Generation,
        digest: &[u8; 32],
    ) -> Option<KeySet> {
        let body = store.get(&self.body_key)?;
        let (stored, jwks) = body.split_at_checked(8)?;
        if u64::from_le_bytes(stored.try_into().ok()?) != generation {
            return None;
        }
        let keys = KeySet::from_jwks(jwks).ok()?;
        (digest_of(&keys, jwks) == *digest).then_some(keys)
    }

    fn callout(&self) -> Callout {
        Callout {
            cluster: self.settings.cluster.clone(),
            method: "GET",
            path: self.settings.path.clone(),
            authority: self.settings.authority.clone(),
            headers: vec![("accept".to_owned(), "application/json".to_owned())],
            body: None,
            timeout_ms: self.settings.timeout_ms,
        }
    }
}

/// The source's name in shared data: a digest of where the keys come from and how they are
/// refreshed (providers with the same source share one key set).
fn source_hex(settings: &RemoteJwks) -> String {
    let mut hasher = blake3::Hasher::new();
    for text in [&settings.cluster, &settings.authority, &settings.path] {
        hasher.update(&u64::try_from(text.len()).unwrap_or(u64::MAX).to_le_bytes());
        hasher.update(text.as_bytes());
    }
    let policy = settings.refresh;
    for number in [
        policy.interval_ms,
        policy.initial_backoff_ms,
        policy.unknown_kid_gap_ms,
    ] {
        hasher.update(&number.to_le_bytes());
    }
    let digest = hasher.finalize();
    digest
        .as_bytes()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwks_cache::tests::POLICY;
    use crate::jwks_cache::RefreshPolicy;
    use crate::test_support::EnvoyLikeStore;
    use std::cell::Cell;
    use tokengate_demo::keys::{jwks, TestKey};

    fn settings() -> RemoteJwks {
        RemoteJwks {
            cluster: "idp".into(),
            authority: "idp.example".into(),
            path: "/jwks".into(),
            timeout_ms: 2_000,
            refresh: POLICY,
            wait_ms: 5_000,
        }
    }

    /// Three workers (VMs) of one Envoy process, with their nonces.
    fn workers() -> [SharedJwks; 3] {
        let settings = settings();
        [11, 22, 33].map(|nonce| SharedJwks::new(&settings, nonce))
    }

    fn served(keys: &[&TestKey]) -> CalloutResult {
        let body = jwks(keys).to_string().into_bytes();
        CalloutResult::Response { status: 200, body }
    }

    /// Takes the lease and fetches `answer` at `now`, as the root context of `worker` does.
    fn fetch(worker: &SharedJwks, store: &dyn SharedStore, answer: CalloutResult, now: Millis) -> Fetched {
        assert!(
            worker.take_fetch(store, now).is_some(),
            "the fetch was due at {now}"
        );
        worker.fetched(store, answer, now)
    }

    fn kids(worker: &SharedJwks, store: &dyn SharedStore) -> Option<(Vec<String>, Generation)> {
        let (keys, generation) = worker.current(store)?;
        let kids = keys.iter().filter_map(|k| k.kid()).map(str::to_owned).collect();
        Some((kids, generation))
    }

    #[test]
    fn exactly_one_worker_takes_the_lease_when_two_race_even_on_a_head_not_created_yet() {
        for created_in_advance in [true, false] {
            let [a, b, _] = workers();
            let b_took = Cell::new(false);
            let store = EnvoyLikeStore::default();
            if created_in_advance {
                a.create_in_advance(&store);
                b.create_in_advance(&store);
            }
            // B runs between A's read of the head and A's write of it.
            store.before_next_write(|store| b_took.set(b.take_fetch(store, 0).is_some()));
            let a_took = a.take_fetch(&store, 0).is_some();
            assert!(
                b_took.get() != a_took,
                "one, not both (in advance: {created_in_advance})"
            );
            assert!(a.take_fetch(&store, 1).is_none() && b.take_fetch(&store, 1).is_none());
        }
    }

    #[test]
    fn the_head_is_created_once_and_a_second_creation_changes_nothing() {
        let [a, b, _] = workers();
        let store = EnvoyLikeStore::default();
        a.create_in_advance(&store);
        assert!(a.take_fetch(&store, 0).is_some());
        b.create_in_advance(&store);
        assert!(
            b.take_fetch(&store, 0).is_none(),
            "a's lease survived b's configuration"
        );
    }

    #[test]
    fn a_lease_whose_holder_vanished_is_taken_over_after_until() {
        let [a, b, _] = workers();
        let store = EnvoyLikeStore::default();
        a.create_in_advance(&store);
        assert!(a.take_fetch(&store, 0).is_some());
        // A's VM went away with its callout; the lease lasts the fetch timeout and a second.
        assert!(b.take_fetch(&store, 2_999).is_none());
        assert!(!b.settled(&store, 2_999));
        assert!(b.take_fetch(&store, 3_000).is_some());
        let key = TestKey::es256("k1");
        assert_eq!(b.fetched(&store, served(&[&key]), 3_100), Fetched::NewKeys);
        assert!(a.settled(&store, 3_100));
    }

    #[test]
    fn a_clock_stepped_back_freezes_neither_a_lost_lease_nor_the_schedule_nor_refetches() {
        let [a, b, _] = workers();
        let store = EnvoyLikeStore::default();
        let (old, new) = (TestKey::es256("old"), TestKey::es256("new"));
        let ahead = 10_000_000;
        assert_eq!(fetch(&a, &store, served(&[&old]), ahead), Fetched::NewKeys);
        // An unknown kid at the clock ahead; then A takes the lease and its VM goes away.
        assert_eq!(a.request_refetch(&store, ahead + 1), Refetch::Underway);
        assert!(a.take_fetch(&store, ahead + 1).is_some());
        // The clock is stepped back an hour (NTP, a restored VM).
        let back = ahead - 3_600_000;
        assert!(
            b.take_fetch(&store, back + 3_000).is_some(),
            "a lease can never last longer than the longest fetch timeout and a second"
        );
        assert_eq!(b.fetched(&store, served(&[&new]), back + 3_100), Fetched::NewKeys);
        // The schedule was written under the clock now in use: the refresh is due on time.
        assert!(b.take_fetch(&store, back + 3_100 + 60_000).is_some());
        assert_eq!(
            b.fetched(&store, served(&[&new]), back + 63_200),
            Fetched::Unchanged
        );
        // The refetch A asked for an hour "later" does not hold refetches back for an hour.
        assert_eq!(
            b.request_refetch(&store, back + 63_300),
            Refetch::Underway,
            "the last refetch is in the future: the clock went back"
        );
        // And a next fetch written under the clock ahead makes the fetch due now.
        let [c, d, _] = workers();
        let other = EnvoyLikeStore::default();
        assert_eq!(fetch(&c, &other, served(&[&old]), ahead), Fetched::NewKeys);
        assert!(
            d.take_fetch(&other, back).is_some(),
            "next_fetch_at an hour and a minute away"
        );
    }

    #[test]
    fn a_released_lease_is_taken_at_once_and_only_its_holder_releases_it() {
        let [a, b, _] = workers();
        let store = EnvoyLikeStore::default();
        assert!(a.take_fetch(&store, 0).is_some());
        b.release(&store);
        assert!(b.take_fetch(&store, 10).is_none(), "not b's to give back");
        a.release(&store);
        assert!(b.take_fetch(&store, 10).is_some(), "the fetch is still due");
    }

    #[test]
    fn a_late_failure_of_a_taken_over_lease_leaves_the_new_holders_schedule() {
        let [a, b, _] = workers();
        let store = EnvoyLikeStore::default();
        let key = TestKey::es256("k1");
        assert!(a.take_fetch(&store, 0).is_some());
        assert_eq!(fetch(&b, &store, served(&[&key]), 3_000), Fetched::NewKeys);
        let reason = a.fetched(&store, CalloutResult::Failed, 3_001);
        assert_eq!(reason, Fetched::Failed("no response".into()));
        assert!(
            b.take_fetch(&store, 62_999).is_none(),
            "no backoff from a's failure"
        );
        assert!(b.take_fetch(&store, 63_000).is_some());
    }

    #[test]
    fn a_refetch_requested_by_one_worker_is_fetched_once_and_seen_by_all() {
        let workers = workers();
        let [a, b, c] = &workers;
        let store = EnvoyLikeStore::default();
        let (old, new) = (TestKey::es256("old"), TestKey::es256("new"));
        assert_eq!(fetch(a, &store, served(&[&old]), 0), Fetched::NewKeys);
        assert!(b.take_fetch(&store, 10_000).is_none(), "nothing due yet");
        assert_eq!(b.request_refetch(&store, 10_000), Refetch::Underway);
        assert_eq!(c.request_refetch(&store, 10_001), Refetch::Underway, "joins it");
        assert!(!a.settled(&store, 10_001), "parked requests keep waiting");
        let fetchers: Vec<&SharedJwks> = workers
            .iter()
            .filter(|w| w.take_fetch(&store, 10_002).is_some())
            .collect();
        assert_eq!(fetchers.len(), 1, "one fetch for the process");
        assert_eq!(c.request_refetch(&store, 10_003), Refetch::Underway, "under way");
        assert_eq!(
            fetchers[0].fetched(&store, served(&[&new]), 10_050),
            Fetched::NewKeys
        );
        for worker in &workers {
            assert!(worker.settled(&store, 10_050));
            assert_eq!(kids(worker, &store), Some((vec!["new".into()], 2)));
        }
        assert_eq!(
            a.request_refetch(&store, 20_000),
            Refetch::TooSoon,
            "within the gap"
        );
        assert!(a.take_fetch(&store, 20_000).is_none());
        assert_eq!(b.request_refetch(&store, 40_000), Refetch::Underway);
        assert!(c.take_fetch(&store, 40_000).is_some());
    }

    #[test]
    fn a_rotation_is_seen_by_every_workers_current_at_once() {
        let [a, b, c] = workers();
        let store = EnvoyLikeStore::default();
        let (k1, k2) = (TestKey::es256("k1"), TestKey::es256("k2"));
        assert_eq!(fetch(&a, &store, served(&[&k1]), 0), Fetched::NewKeys);
        for worker in [&a, &b, &c] {
            assert_eq!(kids(worker, &store), Some((vec!["k1".into()], 1)));
        }
        assert_eq!(fetch(&b, &store, served(&[&k2]), 60_000), Fetched::NewKeys);
        for worker in [&a, &b, &c] {
            assert_eq!(
                kids(worker, &store),
                Some((vec!["k2".into()], 2)),
                "no old keys anywhere"
            );
        }
    }

    #[test]
    fn unchanged_keys_keep_the_generation_and_the_body_is_not_read_again() {
        let [a, b, _] = workers();
        let store = EnvoyLikeStore::default();
        let key = TestKey::es256("k1");
        assert_eq!(fetch(&a, &store, served(&[&key]), 0), Fetched::NewKeys);
        assert_eq!(kids(&b, &store).map(|(_, g)| g), Some(1));
        // The same key, other whitespace and member order, plus a key this build skips.
        let mut jwk = key.jwk();
        let reordered: serde_json::Map<String, serde_json::Value> =
            jwk.as_object_mut().unwrap().clone().into_iter().rev().collect();
        let body = serde_json::to_string_pretty(&serde_json::json!({
            "keys": [reordered, {"kty": "unknown-to-this-build", "kid": "x"}]
        }))
        .unwrap();
        let answer = CalloutResult::Response {
            status: 200,
            body: body.into_bytes(),
        };
        assert_eq!(fetch(&a, &store, answer, 60_000), Fetched::Unchanged);
        let reads = store.reads.get();
        assert_eq!(kids(&b, &store).map(|(_, g)| g), Some(1));
        assert_eq!(store.reads.get() - reads, 1, "the head only");
    }

    #[test]
    fn a_failed_fetch_keeps_the_keys_and_backs_off_up_to_the_interval() {
        let [a, b, _] = workers();
        let store = EnvoyLikeStore::default();
        let key = TestKey::es256("k1");
        assert!(!a.settled(&store, 0), "nothing loaded");
        assert_eq!(fetch(&a, &store, served(&[&key]), 0), Fetched::NewKeys);
        let failures = [
            (CalloutResult::Failed, "no response"),
            (
                CalloutResult::Response {
                    status: 503,
                    body: vec![],
                },
                "status 503",
            ),
            (
                CalloutResult::Response {
                    status: 200,
                    body: b"{}".to_vec(),
                },
                "not a jwks",
            ),
        ];
        let mut now = 60_000;
        let mut delays = Vec::new();
        for round in 0..8 {
            // Whichever worker's tick comes first fetches.
            let fetcher = [&a, &b][round % 2];
            let (answer, reason) = failures[round % failures.len()].clone();
            match fetch(fetcher, &store, answer, now) {
                Fetched::Failed(problem) => assert!(problem.to_lowercase().contains(reason), "{problem}"),
                other => panic!("{other:?}"),
            }
            assert_eq!(
                kids(&a, &store),
                Some((vec!["k1".into()], 1)),
                "the last good keys"
            );
            assert!(
                b.settled(&store, now),
                "parked requests decide with the keys they have"
            );
            let next = (now..).step_by(100).find(|t| !a.settled(&store, *t)).unwrap();
            delays.push(next - now);
            now = next;
        }
        assert_eq!(
            delays,
            [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]
        );
        assert_eq!(fetch(&b, &store, served(&[&key]), now), Fetched::Unchanged);
        assert!(
            a.take_fetch(&store, now + 59_999).is_none(),
            "backoff reset on success"
        );
        assert!(a.take_fetch(&store, now + 60_000).is_some());
    }

    #[test]
    fn a_writer_interrupted_between_body_and_head_never_gives_a_reader_other_keys() {
        let (k1, k2) = (TestKey::es256("k1"), TestKey::es256("k2"));
        // A body of the next generation whose head never came, and a body under the head's
        // generation with other keys (two writers crossed).
        for stale_generation in [2u64, 1] {
            let [a, b, c] = workers();
            let store = EnvoyLikeStore::default();
            assert_eq!(fetch(&a, &store, served(&[&k1]), 0), Fetched::NewKeys);
            assert_eq!(kids(&b, &store), Some((vec!["k1".into()], 1)));
            let mut body = stale_generation.to_le_bytes().to_vec();
            body.extend_from_slice(jwks(&[&k2]).to_string().as_bytes());
            store.set(&a.body_key, &body);
            assert_eq!(
                kids(&c, &store),
                None,
                "c has no copy yet: no keys, rather than k2"
            );
            assert_eq!(
                kids(&b, &store),
                Some((vec!["k1".into()], 1)),
                "b's copy is the head's"
            );
            // c made a fetch due; it puts the body and the head back in step.
            assert!(!c.settled(&store, 1));
            assert_eq!(fetch(&c, &store, served(&[&k1]), 1), Fetched::Unchanged);
            for worker in [&a, &b, &c] {
                assert_eq!(kids(worker, &store), Some((vec!["k1".into()], 1)));
            }
        }
    }

    #[test]
    fn two_writers_whose_bodies_cross_leave_every_worker_with_the_heads_keys() {
        let [a, b, c] = workers();
        let store = EnvoyLikeStore::default();
        let (k1, k2, k3) = (TestKey::es256("k1"), TestKey::es256("k2"), TestKey::es256("k3"));
        assert_eq!(fetch(&a, &store, served(&[&k1]), 0), Fetched::NewKeys);
        assert!(a.take_fetch(&store, 60_000).is_some());
        assert!(b.take_fetch(&store, 63_000).is_some(), "a's lease ran out");
        // a's late answer writes its body; before a's head, b's whole answer lands.
        let b_answer = served(&[&k3]);
        store.before_write_number(2, |store| {
            assert_eq!(b.fetched(store, b_answer, 63_400), Fetched::NewKeys);
        });
        assert_eq!(a.fetched(&store, served(&[&k2]), 63_500), Fetched::NewKeys);
        let seen: Vec<_> = [&a, &b, &c].iter().map(|w| kids(w, &store)).collect();
        assert_eq!(
            seen,
            vec![Some((vec!["k2".to_owned()], 3)); 3],
            "the last head's keys"
        );
    }

    #[test]
    fn a_fetch_whose_writes_are_refused_fails_and_keeps_the_keys() {
        let [a, b, _] = workers();
        let store = EnvoyLikeStore::default();
        let (k1, k2) = (TestKey::es256("k1"), TestKey::es256("k2"));
        assert_eq!(fetch(&a, &store, served(&[&k1]), 0), Fetched::NewKeys);
        assert!(a.take_fetch(&store, 60_000).is_some());
        store.refuse_writes.set(true);
        let refused = a.fetched(&store, served(&[&k2]), 60_010);
        assert!(matches!(refused, Fetched::Failed(_)), "{refused:?}");
        store.refuse_writes.set(false);
        assert_eq!(kids(&b, &store), Some((vec!["k1".into()], 1)));
        assert_eq!(
            kids(&a, &store),
            Some((vec!["k1".into()], 1)),
            "a keeps the head's keys"
        );
    }

    #[test]
    fn the_body_is_written_before_the_head() {
        let [a, ..] = workers();
        let store = EnvoyLikeStore::default();
        assert_eq!(
            fetch(&a, &store, served(&[&TestKey::es256("k1")]), 0),
            Fetched::NewKeys
        );
        let writes = store.writes.borrow();
        assert_eq!(
            writes.iter().map(String::as_str).collect::<Vec<_>>(),
            [a.head_key.as_str(), &a.body_key, &a.head_key],
            "lease, body, head"
        );
    }

    #[test]
    fn a_garbage_head_reads_as_a_new_one_and_a_fetch_replaces_it() {
        let [a, b, _] = workers();
        let store = EnvoyLikeStore::default();
        store.set(&a.head_key, b"from another layout");
        assert_eq!(a.current(&store).map(|(_, g)| g), None);
        assert_eq!(
            fetch(&b, &store, served(&[&TestKey::es256("k1")]), 0),
            Fetched::NewKeys
        );
        assert!(a.current(&store).is_some());
    }

    #[test]
    fn a_head_read_as_new_never_hands_out_a_generation_a_worker_holds_other_keys_under() {
        let [a, b, c] = workers();
        let store = EnvoyLikeStore::default();
        let (k1, k2) = (TestKey::es256("k1"), TestKey::es256("k2"));
        assert_eq!(fetch(&a, &store, served(&[&k1, &k2]), 0), Fetched::NewKeys);
        let (_, first) = kids(&c, &store).unwrap();
        // k1 is removed; C sees no request meanwhile, so it still holds the first set.
        assert_eq!(fetch(&a, &store, served(&[&k2]), 60_000), Fetched::NewKeys);
        // The head is overwritten by a build with another layout (one vm_id, a rolling
        // update of the module), and this build fetches again.
        store.set(&a.head_key, b"from another layout");
        assert_eq!(fetch(&b, &store, served(&[&k2]), 60_100), Fetched::NewKeys);
        let (kept, generation) = kids(&c, &store).unwrap();
        assert_ne!(
            generation, first,
            "a verdict cached under the first set would hold again"
        );
        assert_eq!(kept, ["k2"], "the removed key verifies on no worker");
    }

    #[test]
    fn the_head_survives_encoding() {
        let head = Head {
            generation: 7,
            digest: Some([9; 32]),
            next_fetch_at: 123,
            consecutive_failures: 3,
            last_refetch: Some(99),
            lease: Some(Lease {
                holder: 42,
                until: 456,
            }),
        };
        assert_eq!(Head::decode(&head.encode()), Some(head.clone()));
        assert_eq!(Head::decode(&Head::default().encode()), Some(Head::default()));
        let bytes = head.encode();
        assert!(bytes.len() < 100, "{} bytes: every request reads it", bytes.len());
        for cut in 0..bytes.len() {
            assert_eq!(Head::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Head::decode(&longer), None);
        for flag in [9, 54, 63] {
            let mut bad = bytes.clone();
            bad[flag] = 2;
            assert_eq!(Head::decode(&bad), None, "flag at {flag}");
        }
    }

    #[test]
    fn providers_with_one_source_share_a_key_set_and_other_sources_do_not() {
        let one = SharedJwks::new(&settings(), 1);
        assert_eq!(SharedJwks::new(&settings(), 2).head_key, one.head_key);
        let others = [
            RemoteJwks {
                path: "/other".into(),
                ..settings()
            },
            RemoteJwks {
                cluster: "idp2".into(),
                ..settings()
            },
            RemoteJwks {
                authority: "other.example".into(),
                ..settings()
            },
            RemoteJwks {
                refresh: RefreshPolicy {
                    interval_ms: 1,
                    ..POLICY
                },
                ..settings()
            },
        ];
        for other in others {
            assert_ne!(SharedJwks::new(&other, 1).head_key, one.head_key, "{other:?}");
        }
        assert!(one.head_key.starts_with("tokengate.jwks.") && one.head_key.ends_with(".head"));
    }
}
