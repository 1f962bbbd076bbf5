//! One worker's remote JWKS: the keys it loaded, its refresh schedule ([`RemoteKeys`]), what a
//! fetch's answer means, and whether a request may wait for keys. Plain state over explicit
//! time, one per remote provider per worker; the root context fetches when
//! [`LocalJwks::take_fetch`] says so and reports back with [`LocalJwks::fetched`].
//!
//! Its calls mirror the key set shared by every worker (`current`, `request_refetch`,
//! `take_fetch`, `fetched`, `settled`) so that the shell can swap one for the other.

use std::cell::RefCell;
use std::rc::Rc;

use crate::bearer::{KeySource, RemoteJwks};
use crate::callout::{Callout, CalloutResult};
use crate::config::Config;
use crate::decide::{keys_unavailable, unknown_key, Decision};
use crate::jwk::KeySet;
use crate::jwks_cache::{Millis, RemoteKeys};

/// A remote provider's keys as this worker holds them.
#[derive(Debug)]
pub struct LocalJwks {
    pub provider: String,
    settings: RemoteJwks,
    keys: RefCell<RemoteKeys<Rc<KeySet>>>,
}

impl LocalJwks {
    /// One per remote JWKS provider of `config`, nothing loaded, every first fetch due.
    pub fn of(config: &Config) -> Vec<LocalJwks> {
        let remote = |name: &String, keys: &KeySource| match keys {
            KeySource::Remote(settings) => Some(LocalJwks {
                provider: name.clone(),
                settings: settings.clone(),
                keys: RefCell::new(RemoteKeys::new(settings.refresh)),
            }),
            KeySource::Static(_) => None,
        };
        (config.jwt_providers.iter())
            .filter_map(|p| remote(&p.name, &p.keys))
            .collect()
    }

    /// The last good keys, if any fetch ever succeeded.
    pub fn current(&self) -> Option<Rc<KeySet>> {
        self.keys.borrow().keys().cloned()
    }

    /// Whether a request may wait for keys, and until when: `Ok(deadline)` (its own, or
    /// `now` + the provider's wait bound), or the answer it gets now (a refetch for an unknown
    /// `kid` too soon after the last, or its wait ran out).
    pub fn wait(&self, refetch: bool, deadline: Option<Millis>, now: Millis) -> Result<Millis, Decision> {
        if refetch && !self.request_refetch(now) {
            return Err(unknown_key());
        }
        let deadline = deadline.unwrap_or(now.saturating_add(self.settings.wait_ms));
        if now >= deadline {
            return Err(keys_unavailable());
        }
        Ok(deadline)
    }

    /// A token named a `kid` the keys lack: `false` when a refetch is too soon after the last.
    pub fn request_refetch(&self, now: Millis) -> bool {
        self.keys.borrow_mut().request_refetch(now)
    }

    /// The fetch to start now, if one is due (marked started).
    pub fn take_fetch(&self, now: Millis) -> Option<Callout> {
        let mut keys = self.keys.borrow_mut();
        if !keys.due(now) {
            return None;
        }
        keys.fetch_started();
        Some(Callout {
            cluster: self.settings.cluster.clone(),
            method: "GET",
            path: self.settings.path.clone(),
            authority: self.settings.authority.clone(),
            headers: vec![("accept".to_owned(), "application/json".to_owned())],
            body: None,
            timeout_ms: self.settings.timeout_ms,
        })
    }

    /// A fetch's answer: good keys replace the old ones; anything else keeps them and backs
    /// off. `Err`: the log line (no secrets: a JWKS holds public keys only).
    pub fn fetched(&self, result: CalloutResult, now: Millis) -> Result<(), String> {
        let loaded = match result {
            CalloutResult::Response { status: 200, body } => {
                KeySet::from_jwks(&body).map_err(|e| e.to_string())
            }
            CalloutResult::Response { status, .. } => Err(format!("status {status}")),
            CalloutResult::Failed => Err("no response".to_owned()),
        };
        let mut keys = self.keys.borrow_mut();
        match loaded {
            Ok(loaded) => {
                keys.fetch_succeeded(Rc::new(loaded), now);
                Ok(())
            }
            Err(problem) => {
                keys.fetch_failed(now);
                let kept = match keys.keys() {
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

    /// Requests parked for these keys may be decided again: loaded, no fetch due or under way.
    pub fn settled(&self, now: Millis) -> bool {
        let keys = self.keys.borrow();
        !keys.fetching() && !keys.due(now) && keys.keys().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwks_cache::RefreshPolicy;

    /// RFC 8037's example Ed25519 public key.
    const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

    fn corp() -> LocalJwks {
        let settings = RemoteJwks {
            cluster: "idp".into(),
            authority: "idp.example".into(),
            path: "/jwks".into(),
            timeout_ms: 500,
            refresh: RefreshPolicy {
                interval_ms: 60_000,
                initial_backoff_ms: 1_000,
                unknown_kid_gap_ms: 30_000,
            },
            wait_ms: 2_000,
        };
        LocalJwks {
            provider: "corp".into(),
            keys: RefCell::new(RemoteKeys::new(settings.refresh)),
            settings,
        }
    }

    fn answer(status: u32, body: &str) -> CalloutResult {
        CalloutResult::Response {
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn the_first_fetch_is_due_at_once_and_requests_settle_once_it_brought_keys() {
        let jwks = corp();
        let fetch = jwks.take_fetch(0).unwrap();
        assert_eq!(
            (fetch.cluster.as_str(), fetch.path.as_str(), fetch.timeout_ms),
            ("idp", "/jwks", 500)
        );
        assert!(jwks.take_fetch(0).is_none(), "one fetch at a time");
        assert!(!jwks.settled(0));
        assert_eq!(jwks.fetched(answer(200, JWKS), 10), Ok(()));
        assert!(jwks.current().is_some());
        assert!(jwks.settled(10));
    }

    #[test]
    fn a_failed_fetch_says_why_and_keeps_nothing_or_the_last_keys() {
        let jwks = corp();
        jwks.take_fetch(0);
        let line = jwks.fetched(answer(503, ""), 0).unwrap_err();
        assert_eq!(
            line,
            "JWKS of provider `corp` not loaded (status 503); no keys yet"
        );
        assert!(!jwks.settled(0));
        jwks.take_fetch(1_000).unwrap();
        jwks.fetched(answer(200, JWKS), 1_000).unwrap();
        jwks.take_fetch(61_000).unwrap();
        let line = jwks.fetched(CalloutResult::Failed, 61_000).unwrap_err();
        assert!(
            line.ends_with("(no response); keeping the last good keys"),
            "{line}"
        );
        assert!(jwks.current().is_some());
    }

    #[test]
    fn a_request_waits_until_its_deadline_and_an_unknown_kid_refetches_at_most_once_per_gap() {
        let jwks = corp();
        assert_eq!(jwks.wait(false, None, 100), Ok(2_100));
        assert_eq!(
            jwks.wait(false, Some(2_100), 2_000),
            Ok(2_100),
            "keeps its own deadline"
        );
        assert_eq!(jwks.wait(false, Some(2_100), 2_100), Err(keys_unavailable()));
        jwks.take_fetch(0);
        jwks.fetched(answer(200, JWKS), 0).unwrap();
        assert!(jwks.wait(true, None, 5_000).is_ok());
        jwks.take_fetch(5_000).unwrap();
        jwks.fetched(answer(200, JWKS), 5_010).unwrap();
        assert_eq!(jwks.wait(true, None, 6_000), Err(unknown_key()));
    }
}
