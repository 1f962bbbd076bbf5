//! Properties of the filter's half of the fleet lockout, over arbitrary interleavings of
//! attempts, clock steps and resets, against a model of the token service (one counter per
//! folded user, Jira's rule, the answers of `tokenservice/src/introspect.rs`):
//!
//! 1. no failed Basic attempt is hidden from the service's counter: every Basic attempt with a
//!    wrong secret that is judged (401, not refused unjudged as locked) reaches the service,
//!    the same wrong secret again included;
//! 2. a lock reaches every credential of the user within the stated bound: no request as a
//!    locked user is let in later than `cache_ttl_seconds` after the lock;
//! 3. a reset is honoured within `locked_cache_ttl_seconds`: no request is refused as locked
//!    later than that after a reset, while the service has not locked the user again.

use super::*;
use crate::cache::tests::MapStore;
use crate::decide::{begin, RequestHead};
use crate::test_support::env_over;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use proptest::prelude::*;

const START: UnixSeconds = 1_700_000_000;
const CACHE_TTL: i64 = 4;
const LOCKED_TTL: i64 = 2;
const MAX_FAILURES: u32 = 3;
const GOOD: &str = "tgat_good";

fn config() -> Config {
    let json = format!(
        r#"{{"api_token_providers": {{"tokens": {{"introspection": {{"cluster": "tokens", "path": "/introspect",
             "client_id": "tg", "client_secret": "s"}}, "cache_ttl_seconds": {CACHE_TTL},
             "locked_cache_ttl_seconds": {LOCKED_TTL}}}}},
             "rules": [{{"path_prefix": "/", "providers": ["tokens"]}}]}}"#
    );
    Config::from_json(json.as_bytes()).unwrap()
}

/// One thing that happens.
#[derive(Debug, Clone)]
enum Event {
    /// `Basic <spelling of fred>:<secret>`.
    Basic { spelling: usize, secret: usize },
    /// `Bearer <fred's token>`.
    Bearer,
    /// The clock moves on.
    Wait(i64),
    /// An administrator resets fred's counter on the service.
    Reset,
}

const SPELLINGS: [&str; 3] = ["fred", "FRED", "Fred"];
const SECRETS: [&str; 3] = [GOOD, "tgat_wrong", "tgat_other"];

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (0..3usize, 0..3usize).prop_map(|(spelling, secret)| Event::Basic { spelling, secret }),
        2 => Just(Event::Bearer),
        2 => (0..6i64).prop_map(Event::Wait),
        1 => Just(Event::Reset),
    ]
}

/// The token service: fred's streak (no window: the runs are shorter than any window).
#[derive(Default)]
struct Service {
    failures: u32,
    /// When the service last locked fred (its counter reached the maximum).
    locked_at: Option<UnixSeconds>,
}

impl Service {
    fn locked(&self) -> bool {
        self.failures >= MAX_FAILURES
    }

    /// The answer to a question about `token` (for `basic`, with `username`).
    fn answer(&mut self, token_is_good: bool, basic: bool, now: UnixSeconds) -> TokenInfo {
        let url = Some("/login.jsp".to_owned());
        if self.locked() {
            return TokenInfo::Locked {
                user: Some("fred".into()),
                login_url: url,
            };
        }
        if token_is_good {
            if basic {
                self.failures = 0;
            }
            return TokenInfo::Active {
                user: "fred".into(),
                scopes: vec![],
                exp: None,
            };
        }
        if !basic {
            return TokenInfo::Inactive;
        }
        self.failures += 1;
        if self.locked() {
            self.locked_at = Some(now);
            return TokenInfo::LockingFailure {
                user: "fred".into(),
                login_url: url,
            };
        }
        TokenInfo::Inactive
    }
}

fn request(authorization: String) -> RequestHead {
    RequestHead {
        method: "GET".into(),
        path: "/x".into(),
        headers: vec![("authorization".into(), authorization.into_bytes())],
        client_address: None,
        body: None,
        has_body: false,
    }
}

proptest! {
    #[test]
    fn every_failure_reaches_the_counter_and_locks_and_resets_hold_within_their_bounds(
        events in proptest::collection::vec(event(), 1..60)
    ) {
        let cfg = config();
        let store = MapStore::default();
        let env = env_over(&store);
        let mut service = Service::default();
        let mut now = START;
        let mut last_reset: Option<UnixSeconds> = None;
        for event in events {
            let (head, good, basic) = match event {
                Event::Wait(seconds) => { now += seconds; continue; }
                Event::Reset => {
                    service.failures = 0;
                    service.locked_at = None;
                    last_reset = Some(now);
                    continue;
                }
                Event::Basic { spelling, secret } => (
                    request(format!("Basic {}", STANDARD.encode(format!("{}:{}", SPELLINGS[spelling], SECRETS[secret])))),
                    secret == 0,
                    true,
                ),
                Event::Bearer => (request(format!("Bearer {GOOD}")), true, false),
            };
            let mut asked = false;
            let step = match begin(&cfg, &head, &env, now) {
                Step::AskProvider { pending, .. } => {
                    asked = true;
                    let answer = service.answer(good, basic, now);
                    after_provider(&cfg, pending, Ok(answer), &env, now)
                }
                done => done,
            };
            let decision = match step {
                Step::Done(decision) => decision,
                other => return Err(TestCaseError::fail(format!("unexpected {other:?}"))),
            };
            match decision {
                Decision::Allow(_) => {
                    prop_assert!(good, "only fred's token lets anyone in");
                    if let Some(locked_at) = service.locked_at.filter(|_| service.locked()) {
                        prop_assert!(now < locked_at + CACHE_TTL,
                            "let in at {now}, {}s after the lock", now - locked_at);
                    }
                }
                Decision::Deny(denial) => {
                    if basic && !good && denial.reason == DenyReason::InvalidApiToken {
                        prop_assert!(asked, "a wrong secret judged without the service counting it");
                    }
                    if let DenyReason::LockedOut { .. } = denial.reason {
                        if !service.locked() {
                            let reset = last_reset.unwrap_or(START);
                            prop_assert!(now < reset + LOCKED_TTL,
                                "refused as locked {}s after the reset", now - reset);
                        }
                    }
                }
            }
        }
    }
}
