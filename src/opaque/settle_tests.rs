//! Bounds and folded names in `settle` and `verify_opaque`: what a wrong token gets, without a
//! callout, and whose token a Basic user may use.

use super::*;
use crate::apitoken::FailedLogins;
use crate::cache::tests::MapStore;
use crate::decide::{begin, NoCount, RequestHead};
use crate::hostcrypto::ModuleOnly;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

const NOW: UnixSeconds = 1_700_000_000;

/// The family and reason of a refusal (what these tests pin; the challenges are respond's).
fn refusal(step: &Step) -> Option<(Family, DenyReason)> {
    match step {
        Step::Done(Decision::Deny(denial)) => Some((denial.family, denial.reason.clone())),
        _ => None,
    }
}

struct NoKeys;
impl crate::decide::Keyring for NoKeys {
    fn remote_keys(&self, _provider: &str) -> Option<std::rc::Rc<crate::jwk::KeySet>> {
        None
    }
}

fn api_token_config() -> Config {
    let json = r#"{
        "api_token_providers": {"tokens": {"introspection": {"cluster": "tokens", "path": "/introspect",
                                "client_id": "tg", "client_secret": "s"}}},
        "rules": [{"path_prefix": "/", "providers": ["tokens"]}]
    }"#;
    Config::from_json(json.as_bytes()).unwrap()
}

fn basic_request(user: &str, secret: &str) -> RequestHead {
    let value = format!("Basic {}", STANDARD.encode(format!("{user}:{secret}")));
    RequestHead {
        method: "GET".into(),
        path: "/rest/api/2/myself".into(),
        headers: vec![("authorization".into(), value.into_bytes())],
    }
}

/// The token service's answer about `user`'s token, for a request sent as `Basic as:token`.
fn answered(store: &MapStore, basic_as: &str, owner: &str) -> Step {
    let cfg = api_token_config();
    let env = Env {
        keyring: &NoKeys,
        store,
        count: &NoCount,
        signatures: &ModuleOnly,
    };
    let Step::AskProvider { pending, .. } = begin(&cfg, &basic_request(basic_as, "tgat_x"), &env, NOW) else {
        panic!("not asked")
    };
    let active = TokenInfo::Active {
        user: owner.into(),
        scopes: vec![],
        exp: Some(NOW + 60),
    };
    after_provider(&cfg, pending, Ok(active), &env, NOW)
}

#[test]
fn the_basic_user_matches_the_token_owner_as_jira_folds_names() {
    for (basic_as, owner) in [
        ("JSMITH", "jsmith"),
        ("jsmith", "JSmith"),
        ("\u{212A}IM", "kim"),
        ("ΣΟΦΙΑ", "σοφια"),
    ] {
        let store = MapStore::default();
        let step = answered(&store, basic_as, owner);
        assert!(
            matches!(step, Step::Done(Decision::Allow(_))),
            "{basic_as}: {step:?}"
        );
        let logins = FailedLogins::new(&store, "s");
        assert_eq!(
            logins.get(owner, NOW).count,
            0,
            "{basic_as}: counted as a failure"
        );
    }
}

#[test]
fn another_users_token_is_still_refused_and_counted_for_the_folded_name() {
    let store = MapStore::default();
    let step = answered(&store, "FRED", "jsmith");
    assert_eq!(
        refusal(&step),
        Some((Family::ApiToken, DenyReason::InvalidApiToken)),
        "fred may not use jsmith's token"
    );
    let logins = FailedLogins::new(&store, "s");
    assert_eq!(
        logins.get("fred", NOW).count,
        1,
        "one failure for fred, in any case"
    );
    assert_eq!(logins.get("Fred", NOW).count, 1);
    assert_eq!(logins.get("jsmith", NOW).count, 0);
}

fn begin_with(cfg: &Config, store: &MapStore, request: &RequestHead) -> Step {
    let env = Env {
        keyring: &NoKeys,
        store,
        count: &NoCount,
        signatures: &ModuleOnly,
    };
    begin(cfg, request, &env, NOW)
}

fn bearer_request(token: &str) -> RequestHead {
    RequestHead {
        method: "GET".into(),
        path: "/rest/api/2/myself".into(),
        headers: vec![("authorization".into(), format!("Bearer {token}").into_bytes())],
    }
}

#[test]
fn credentials_out_of_bounds_are_refused_as_wrong_tokens_without_a_callout() {
    let cfg = api_token_config();
    let refused = Some((Family::ApiToken, DenyReason::InvalidApiToken));
    // (request, whose failed login it is)
    let cases = [
        (basic_request("fred", ""), Some("fred")),
        (basic_request("fred", &"p".repeat(10_000)), Some("fred")),
        (basic_request(&"u".repeat(256), "tgat_x"), Some(&*"u".repeat(256))),
        (bearer_request(&"t".repeat(60_000)), None),
    ];
    for (request, failed) in cases {
        let store = MapStore::default();
        assert_eq!(refusal(&begin_with(&cfg, &store, &request)), refused);
        if let Some(user) = failed {
            let logins = FailedLogins::new(&store, "s");
            assert_eq!(logins.get(user, NOW).count, 1, "as a wrong token is");
        }
        assert!(
            store.0.borrow().keys().all(|k| !k.starts_with("tokengate.oauth")),
            "nothing cached"
        );
    }
    let store = MapStore::default();
    assert!(matches!(
        begin_with(&cfg, &store, &bearer_request(&"t".repeat(8192))),
        Step::AskProvider { .. }
    ));
    assert!(matches!(
        begin_with(&cfg, &store, &basic_request("fred", &"p".repeat(1024))),
        Step::AskProvider { .. }
    ));
}

#[test]
fn an_oauth_token_out_of_bounds_is_an_inactive_token() {
    let json = r#"{
        "oauth_providers": {"kc": {"introspection": {"cluster": "kc", "path": "/introspect",
                                   "client_id": "tg", "client_secret": "s"}}}
    }"#;
    let cfg = Config::from_json(json.as_bytes()).unwrap();
    let store = MapStore::default();
    assert_eq!(
        refusal(&begin_with(&cfg, &store, &bearer_request(&"t".repeat(8193)))),
        Some((Family::OAuth, DenyReason::TokenInactive))
    );
}

#[test]
fn on_a_password_route_a_password_out_of_bounds_goes_to_the_application_unasked() {
    let json = r#"{
        "api_token_providers": {"tokens": {"introspection": {"cluster": "tokens", "path": "/introspect",
                                "client_id": "tg", "client_secret": "s"}}},
        "rules": [{"path_prefix": "/", "providers": ["tokens"], "basic_passwords": "pass"}]
    }"#;
    let cfg = Config::from_json(json.as_bytes()).unwrap();
    let store = MapStore::default();
    for request in [
        basic_request("fred", ""),
        basic_request("fred", &"p".repeat(2000)),
    ] {
        assert!(matches!(
            begin_with(&cfg, &store, &request),
            Step::Done(Decision::Allow(_))
        ));
    }
}
