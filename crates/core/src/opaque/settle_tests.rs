//! Bounds and folded names in `settle` and `verify_opaque`: what a wrong token gets, without a
//! callout, and whose token a Basic user may use.

use super::*;
use crate::cache::tests::MapStore;
use crate::decide::{begin, RequestHead};
use crate::test_support::env_over;
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
        client_address: None,
        body: None,
        has_body: false,
    }
}

/// The token service's answer about `user`'s token, for a request sent as `Basic as:token`.
fn answered(store: &MapStore, basic_as: &str, owner: &str) -> Step {
    let active = TokenInfo::Active {
        user: owner.into(),
        scopes: vec![],
        exp: Some(NOW + 60),
    };
    answer_with(store, &basic_request(basic_as, "tgat_x"), active)
}

/// The token service's `answer` to the question `request` makes (which must make one).
fn answer_with(store: &MapStore, request: &RequestHead, answer: TokenInfo) -> Step {
    let cfg = api_token_config();
    let env = env_over(store);
    let Step::AskProvider { pending, .. } = begin(&cfg, request, &env, NOW) else {
        panic!("not asked")
    };
    after_provider(&cfg, pending, Ok(answer), &env, NOW)
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
    }
}

#[test]
fn another_users_token_is_refused_and_not_cached_so_a_repeat_reaches_the_service_counter() {
    let store = MapStore::default();
    let step = answered(&store, "FRED", "jsmith");
    assert_eq!(
        refusal(&step),
        Some((Family::ApiToken, DenyReason::InvalidApiToken)),
        "fred may not use jsmith's token"
    );
    assert!(matches!(
        begin_with(&api_token_config(), &store, &basic_request("FRED", "tgat_x")),
        Step::AskProvider { .. }
    ));
}

#[test]
fn a_basic_failure_is_never_cached_and_a_bearer_failure_is() {
    let store = MapStore::default();
    let cfg = api_token_config();
    for _ in 0..3 {
        let step = answer_with(&store, &basic_request("fred", "wrong"), TokenInfo::Inactive);
        assert_eq!(
            refusal(&step),
            Some((Family::ApiToken, DenyReason::InvalidApiToken))
        );
        assert!(
            matches!(
                begin_with(&cfg, &store, &basic_request("fred", "wrong")),
                Step::AskProvider { .. }
            ),
            "the same wrong secret again is asked about (and counted by the service)"
        );
    }
    answer_with(&store, &bearer_request("wrong"), TokenInfo::Inactive);
    assert_eq!(
        refusal(&begin_with(&cfg, &store, &bearer_request("wrong"))),
        Some((Family::ApiToken, DenyReason::InvalidApiToken)),
        "a Bearer token names no user: its failure may be cached"
    );
}

#[test]
fn a_locked_answer_is_a_403_remembered_for_the_user_and_refuses_every_credential_of_theirs() {
    let store = MapStore::default();
    let cfg = api_token_config();
    // fred's token, cached as valid for Bearer and for Basic before the lock.
    let active = TokenInfo::Active {
        user: "fred".into(),
        scopes: vec![],
        exp: Some(NOW + 3600),
    };
    answer_with(&store, &bearer_request("tgat_good"), active.clone());
    answer_with(&store, &basic_request("fred", "tgat_good"), active);
    assert!(matches!(
        begin_with(&cfg, &store, &bearer_request("tgat_good")),
        Step::Done(Decision::Allow(_))
    ));
    let locked = TokenInfo::Locked {
        user: Some("fred".into()),
        login_url: Some("https://jira.test/login.jsp".into()),
    };
    let step = answer_with(&store, &basic_request("FRED", "wrong"), locked);
    let expected = Some((
        Family::ApiToken,
        DenyReason::LockedOut {
            login_url: "https://jira.test/login.jsp".into(),
        },
    ));
    assert_eq!(refusal(&step), expected);
    for request in [
        bearer_request("tgat_good"),
        basic_request("fred", "tgat_good"),
        basic_request("Fred", "anything"),
    ] {
        assert_eq!(
            refusal(&begin_with(&cfg, &store, &request)),
            expected,
            "{request:?}"
        );
    }
}

#[test]
fn the_failure_that_locks_a_user_is_a_401_and_then_their_cached_token_is_refused() {
    let store = MapStore::default();
    let cfg = api_token_config();
    let active = TokenInfo::Active {
        user: "fred".into(),
        scopes: vec![],
        exp: Some(NOW + 3600),
    };
    answer_with(&store, &basic_request("fred", "tgat_good"), active);
    let locking = TokenInfo::LockingFailure {
        user: "FRED".into(),
        login_url: None,
    };
    let step = answer_with(&store, &basic_request("FRED", "wrong"), locking);
    assert_eq!(
        refusal(&step),
        Some((Family::ApiToken, DenyReason::InvalidApiToken))
    );
    assert_eq!(
        refusal(&begin_with(&cfg, &store, &basic_request("fred", "tgat_good"))),
        Some((
            Family::ApiToken,
            DenyReason::LockedOut {
                login_url: "/login.jsp".into()
            }
        ))
    );
}

#[test]
fn a_lock_of_the_address_alone_refuses_the_request_but_no_user() {
    let store = MapStore::default();
    let cfg = api_token_config();
    let locked = TokenInfo::Locked {
        user: None,
        login_url: None,
    };
    let step = answer_with(&store, &basic_request("fred", "tgat_x"), locked);
    assert_eq!(
        refusal(&step),
        Some((
            Family::ApiToken,
            DenyReason::LockedOut {
                login_url: "/login.jsp".into()
            }
        )),
        "the configured login URL when the service gives none"
    );
    assert!(matches!(
        begin_with(&cfg, &store, &basic_request("fred", "tgat_x")),
        Step::AskProvider { .. }
    ));
}

#[test]
fn the_question_carries_the_clients_address_for_the_services_per_address_limit() {
    let store = MapStore::default();
    let cfg = api_token_config();
    let mut request = basic_request("fred", "tgat_x");
    request.client_address = Some("203.0.113.7:5123".into());
    let Step::AskProvider { callout, .. } = begin_with(&cfg, &store, &request) else {
        panic!("not asked")
    };
    let body = String::from_utf8(callout.body.clone().unwrap()).unwrap();
    assert!(body.ends_with("&client_address=203.0.113.7%3A5123"), "{body}");
    let mut bearer = bearer_request("tgat_y");
    bearer.client_address = Some("[2001:db8::1]:443".into());
    let Step::AskProvider { callout, .. } = begin_with(&cfg, &store, &bearer) else {
        panic!("not asked")
    };
    let body = String::from_utf8(callout.body.clone().unwrap()).unwrap();
    assert!(
        body.contains("client_address=%5B2001%3Adb8%3A%3A1%5D%3A443"),
        "{body}"
    );
}

#[test]
fn only_a_password_route_asks_the_service_not_to_count_a_failure() {
    let store = MapStore::default();
    for (rule, counted) in [(r#""refuse""#, true), (r#""pass""#, false)] {
        let json = format!(
            r#"{{"api_token_providers": {{"tokens": {{"introspection": {{"cluster": "tokens", "path": "/introspect",
                 "client_id": "tg", "client_secret": "s"}}}}}},
                 "rules": [{{"path_prefix": "/", "providers": ["tokens"], "basic_passwords": {rule}}}]}}"#
        );
        let cfg = Config::from_json(json.as_bytes()).unwrap();
        let Step::AskProvider { callout, .. } = begin_with(&cfg, &store, &basic_request("fred", "pw")) else {
            panic!("not asked")
        };
        let body = String::from_utf8(callout.body.clone().unwrap()).unwrap();
        assert_eq!(!body.contains("count_failures=false"), counted, "{body}");
        assert!(body.contains("username=fred"), "{body}");
    }
}

fn begin_with(cfg: &Config, store: &MapStore, request: &RequestHead) -> Step {
    begin(cfg, request, &env_over(store), NOW)
}

fn bearer_request(token: &str) -> RequestHead {
    RequestHead {
        method: "GET".into(),
        path: "/rest/api/2/myself".into(),
        headers: vec![("authorization".into(), format!("Bearer {token}").into_bytes())],
        client_address: None,
        body: None,
        has_body: false,
    }
}

#[test]
fn credentials_out_of_bounds_are_refused_as_wrong_tokens_without_a_callout() {
    let cfg = api_token_config();
    let refused = Some((Family::ApiToken, DenyReason::InvalidApiToken));
    let cases = [
        basic_request("fred", ""),
        basic_request("fred", &"p".repeat(10_000)),
        basic_request(&"u".repeat(256), "tgat_x"),
        bearer_request(&"t".repeat(60_000)),
    ];
    for request in cases {
        let store = MapStore::default();
        assert_eq!(refusal(&begin_with(&cfg, &store, &request)), refused);
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
