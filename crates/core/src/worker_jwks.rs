//! One worker's view of a remote provider's key set, which every worker of the Envoy process
//! shares ([`SharedJwks`]): the keys to verify with, whether a request may wait for keys and
//! until when, the fetch this worker's root must make (when it holds the lease) and what the
//! answer means for the log and the counters. Plain state over explicit time; the worker hands
//! in the host's shared data.

use std::rc::Rc;

use crate::bearer::{KeySource, RemoteJwks};
use crate::cache::SharedStore;
use crate::callout::{Callout, CalloutResult};
use crate::config::Config;
use crate::jwk::KeySet;
use crate::jwks_cache::{Generation, Millis};
use crate::jwks_shared::{Fetched, Refetch, SharedJwks};
use crate::outcome::{keys_unavailable, unknown_key, Decision};

/// A remote provider's keys as one worker reaches them.
pub struct WorkerJwks {
    pub provider: String,
    wait_ms: Millis,
    shared: SharedJwks,
}

impl WorkerJwks {
    /// One per remote JWKS provider of `config`; `holder` names this VM in fetch leases. The
    /// shared entries are created in advance (see [`SharedJwks::create_in_advance`]).
    pub fn of(config: &Config, holder: u64, store: &dyn SharedStore) -> Vec<WorkerJwks> {
        let remote = |name: &String, keys: &KeySource| match keys {
            KeySource::Remote(settings) => Some(WorkerJwks::new(name, settings, holder, store)),
            KeySource::Static(_) => None,
        };
        (config.jwt_providers.iter())
            .filter_map(|p| remote(&p.name, &p.keys))
            .collect()
    }

    fn new(provider: &str, settings: &RemoteJwks, holder: u64, store: &dyn SharedStore) -> Self {
        let shared = SharedJwks::new(settings, holder);
        shared.create_in_advance(store);
        Self {
            provider: provider.to_owned(),
            wait_ms: settings.wait_ms,
            shared,
        }
    }

    /// The process's keys now, and their generation.
    pub fn current(&self, store: &dyn SharedStore) -> Option<(Rc<KeySet>, Generation)> {
        self.shared.current(store)
    }

    /// Whether a request may wait for keys, and until when: `Ok(deadline)` (its own, or
    /// `now` + the provider's wait bound), or the answer it gets now (a refetch for an unknown
    /// `kid` too soon after the last one anywhere in the process, or its wait ran out).
    pub fn wait(
        &self,
        store: &dyn SharedStore,
        refetch: bool,
        deadline: Option<Millis>,
        now: Millis,
    ) -> Result<Millis, Decision> {
        if refetch && self.shared.request_refetch(store, now) == Refetch::TooSoon {
            return Err(unknown_key());
        }
        let deadline = deadline.unwrap_or(now.saturating_add(self.wait_ms));
        if now >= deadline {
            return Err(keys_unavailable());
        }
        Ok(deadline)
    }

    /// The fetch this worker must start now: one is due and this worker took the lease.
    pub fn take_fetch(&self, store: &dyn SharedStore, now: Millis) -> Option<Callout> {
        self.shared.take_fetch(store, now)
    }

    /// This worker's fetch answered: `Err` is the log line (a JWKS holds public keys only).
    pub fn fetched(&self, store: &dyn SharedStore, result: CalloutResult, now: Millis) -> Result<(), String> {
        match self.shared.fetched(store, result, now) {
            Fetched::NewKeys | Fetched::Unchanged => Ok(()),
            Fetched::Failed(problem) => {
                let kept = match self.shared.current(store) {
                    Some(_) => "keeping the last good keys",
                    None => "no keys yet",
                };
                Err(format!(
                    "JWKS of provider `{}` not loaded ({problem}); {kept}",
                    self.provider
                ))
            }
        }
    }

    /// This worker's root context is done: a fetch lease it holds goes back to the others.
    pub fn release(&self, store: &dyn SharedStore) {
        self.shared.release(store);
    }

    /// Requests parked for these keys may be decided again: loaded, and no fetch due or under
    /// way in any worker.
    pub fn settled(&self, store: &dyn SharedStore, now: Millis) -> bool {
        self.shared.settled(store, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::EnvoyLikeStore;

    /// RFC 8037's example Ed25519 public key.
    const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

    fn config() -> Config {
        let json = r#"{"jwt_providers": {"corp": {"issuer": "https://corp", "algorithms": ["EdDSA"],
            "remote_jwks": {"cluster": "idp", "path": "/jwks", "timeout_ms": 500, "wait_ms": 2000}}}}"#;
        Config::from_json(json.as_bytes()).unwrap()
    }

    fn ok() -> CalloutResult {
        CalloutResult::Response {
            status: 200,
            body: JWKS.as_bytes().to_vec(),
        }
    }

    #[test]
    fn two_workers_fetch_once_and_both_verify_with_what_it_brought() {
        let (store, config) = (EnvoyLikeStore::default(), config());
        let one = WorkerJwks::of(&config, 1, &store).pop().unwrap();
        let two = WorkerJwks::of(&config, 2, &store).pop().unwrap();
        assert!(one.take_fetch(&store, 0).is_some());
        assert!(two.take_fetch(&store, 0).is_none(), "the lease is taken");
        assert!(!two.settled(&store, 10), "a fetch is under way elsewhere");
        assert_eq!(one.fetched(&store, ok(), 10), Ok(()));
        assert!(two.settled(&store, 11));
        let (a, b) = (one.current(&store).unwrap(), two.current(&store).unwrap());
        assert_eq!(a.1, b.1, "one generation");
    }

    #[test]
    fn a_request_waits_for_its_bound_and_an_unknown_kid_too_soon_is_answered_at_once() {
        let (store, config) = (EnvoyLikeStore::default(), config());
        let corp = WorkerJwks::of(&config, 1, &store).pop().unwrap();
        assert_eq!(corp.wait(&store, false, None, 1_000), Ok(3_000));
        assert_eq!(
            corp.wait(&store, false, Some(3_000), 3_000),
            Err(keys_unavailable())
        );
        corp.take_fetch(&store, 0).unwrap();
        corp.fetched(&store, ok(), 10).unwrap();
        assert_eq!(
            corp.wait(&store, true, None, 100),
            Ok(2_100),
            "the first refetch is allowed"
        );
        corp.take_fetch(&store, 100).unwrap();
        corp.fetched(&store, ok(), 110).unwrap();
        assert_eq!(
            corp.wait(&store, true, None, 200),
            Err(unknown_key()),
            "within the gap"
        );
    }

    #[test]
    fn a_failed_fetch_says_what_it_kept() {
        let (store, config) = (EnvoyLikeStore::default(), config());
        let corp = WorkerJwks::of(&config, 1, &store).pop().unwrap();
        corp.take_fetch(&store, 0).unwrap();
        let first = corp.fetched(&store, CalloutResult::Failed, 10).unwrap_err();
        assert!(first.ends_with("no keys yet"), "{first}");
        let later = corp.take_fetch(&store, 60_000).unwrap();
        assert_eq!(later.path, "/jwks");
        corp.fetched(&store, ok(), 60_010).unwrap();
        corp.take_fetch(&store, 10_000_000).unwrap();
        let kept = corp
            .fetched(&store, CalloutResult::Failed, 10_000_010)
            .unwrap_err();
        assert!(kept.ends_with("keeping the last good keys"), "{kept}");
    }
}
