//! Property tests of what token providers and shared data hand the filter: whatever status,
//! challenge and body an introspection or UserInfo endpoint answers, and whatever bytes sit in
//! the shared answer cache, the result is a well-formed `TokenInfo`, a named
//! `ProviderFailure` or a miss, and an identity only comes from what the protocol says grants
//! one. `PROPTEST_CASES=200000 cargo test --release --test fuzz_provider` runs a campaign.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use tokengate::cache::{SharedStore, SlotCache};
use tokengate::introspect::{ClientAuth, Endpoint, OAuthProvider, ProviderFailure, TokenInfo};
use tokengate::opaque::{answer_bucket, cached_answer, OAUTH_CACHE_SLOTS};

const NOW: i64 = 1_700_000_000;
const AUDIENCE: &str = "jira";

fn provider(endpoint: Endpoint, audiences: bool) -> OAuthProvider {
    OAuthProvider {
        name: "kc".into(),
        endpoint,
        cluster: "kc".into(),
        authority: "kc".into(),
        path: "/introspect".into(),
        client_id: "tokengate".into(),
        client_secret: "secret".into(),
        client_auth: ClientAuth::Basic,
        timeout_ms: 500,
        user_field: "username".into(),
        service_accounts: BTreeMap::from([("reporting".to_owned(), "svc-reports".to_owned())]),
        cache_ttl_seconds: 300,
        negative_cache_ttl_seconds: 10,
        api_tokens: None,
        audiences: if audiences { vec![AUDIENCE.into()] } else { vec![] },
        jwt_issuers: vec![],
        scope: [0; 32],
    }
}

/// Values a provider's answer plausibly holds, and some it should not.
fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("true".to_string()),
        Just("false".to_string()),
        Just("null".to_string()),
        Just("\"fred\"".to_string()),
        Just("\"reporting\"".to_string()),
        Just(format!("\"{AUDIENCE}\"")),
        Just("\"other\"".to_string()),
        Just("\"\"".to_string()),
        Just("\"fr\\u0000ed\"".to_string()),
        Just("\"invalid_token\"".to_string()),
        Just("\"unsupported_token_type\"".to_string()),
        Just("\"invalid_request\"".to_string()),
        Just("\"invalid_client\"".to_string()),
        Just("\"read write\"".to_string()),
        (NOW - 5..NOW + 5).prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:e}")),
        "\\PC{0,8}".prop_map(|s| serde_json::to_string(&s).unwrap()),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(|items| format!("[{}]", items.join(",")))
    })
}

/// A JSON object with the members introspection and UserInfo answers are read for.
fn answer_object() -> impl Strategy<Value = String> {
    let names = prop::sample::select(vec![
        "active",
        "aud",
        "exp",
        "username",
        "client_id",
        "scope",
        "error",
        "sub",
        "x",
    ]);
    prop::collection::vec((names, json_value()), 0..7).prop_map(|members| {
        let body: Vec<String> = members.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(","))
    })
}

/// An answer shaped like a real one (mostly active, mostly with a user), each member optional,
/// so that the audience and expiry rules are exercised often.
fn plausible_answer() -> impl Strategy<Value = String> {
    let member = |name: &'static str, values: Vec<&'static str>| {
        prop::option::weighted(0.8, prop::sample::select(values))
            .prop_map(move |v| v.map(|v| format!("\"{name}\":{v}")))
    };
    let exp = prop::option::of((NOW - 3..NOW + 3).prop_map(|n| format!("\"exp\":{n}")));
    (
        member("active", vec!["true", "true", "true", "false", "1"]),
        member("username", vec!["\"fred\"", "\"\"", "\"fr\\u000aed\"", "7"]),
        member("client_id", vec!["\"reporting\"", "\"stranger\""]),
        member(
            "aud",
            vec![
                "\"jira\"",
                "\"other\"",
                "[\"a\",\"jira\"]",
                "[\"a\"]",
                "[]",
                "[\"jira\",7]",
                "7",
                "\"JIRA\"",
            ],
        ),
        member(
            "error",
            vec![
                "\"invalid_token\"",
                "\"unsupported_token_type\"",
                "\"invalid_client\"",
                "\"server_error\"",
            ],
        ),
        exp,
    )
        .prop_map(|(a, u, c, aud, e, exp)| {
            let members: Vec<String> = [a, u, c, aud, e, exp].into_iter().flatten().collect();
            format!("{{{}}}", members.join(","))
        })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => plausible_answer().prop_map(String::into_bytes),
        2 => answer_object().prop_map(String::into_bytes),
        1 => json_value().prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

fn status() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => Just(200u32),
        2 => Just(400u32),
        1 => Just(401u32),
        1 => Just(403u32),
        2 => 100u32..600,
    ]
}

fn challenge() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some(r#"Bearer realm="x", error="invalid_token""#.to_owned())),
        Just(Some(r#"Bearer error="invalid_request""#.to_owned())),
        Just(Some(r#"Basic realm="x""#.to_owned())),
        "\\PC{0,40}".prop_map(Some),
    ]
}

/// What grants an identity: the user field, or a mapped client of a client-credentials token.
fn expected_user(p: &OAuthProvider, answer: &serde_json::Map<String, Value>) -> Option<String> {
    let text = |name: &str| answer.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
    match text(&p.user_field) {
        Some(user) => Some(user.to_owned()),
        None => p.service_accounts.get(text("client_id")?).cloned(),
    }
}

fn audience_ok(p: &OAuthProvider, answer: &serde_json::Map<String, Value>) -> bool {
    if p.audiences.is_empty() {
        return true;
    }
    match answer.get("aud") {
        None => p.endpoint == Endpoint::UserInfo,
        Some(Value::String(aud)) => aud == AUDIENCE,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(AUDIENCE)),
        Some(_) => false,
    }
}

const TOKEN_ERRORS: [&str; 3] = ["invalid_request", "invalid_token", "unsupported_token_type"];

/// The properties every answer satisfies, whatever it is.
fn check_answer(p: &OAuthProvider, status: u32, challenge: Option<&str>, body: &[u8]) {
    let result = p.read_answer(status, challenge, body, NOW);
    assert_eq!(
        result,
        p.read_answer(status, challenge, body, NOW),
        "deterministic"
    );
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let object = parsed.as_ref().and_then(Value::as_object);
    match &result {
        Ok(TokenInfo::Active { user, exp, .. }) => {
            assert_eq!(status, 200, "an identity only from a 200");
            let answer = object.expect("an identity only from a JSON object");
            if p.endpoint == Endpoint::Introspection {
                assert_eq!(answer.get("active"), Some(&Value::Bool(true)));
            }
            assert!(
                !user.is_empty() && !user.chars().any(char::is_control),
                "{user:?}"
            );
            assert_eq!(
                Some(user),
                expected_user(p, answer).as_ref(),
                "the user is the answer's"
            );
            assert!(audience_ok(p, answer), "a matching audience when configured");
            assert!(exp.is_none_or(|exp| exp > NOW), "never an expired token");
        }
        Ok(TokenInfo::UnmappedClient) => assert_eq!(status, 200),
        Ok(TokenInfo::Locked { .. } | TokenInfo::LockingFailure { .. }) => {
            assert!(p.api_tokens.is_some(), "only the token service answers locked");
            assert_eq!(status, 200);
        }
        Ok(TokenInfo::Inactive) if status == 200 => {}
        Ok(TokenInfo::Inactive) => {
            assert_ne!(
                (p.endpoint, status),
                (Endpoint::Introspection, 401),
                "a 401 from introspection is about our client"
            );
            let about_the_token = |code: Option<&str>| code.is_some_and(|c| TOKEN_ERRORS.contains(&c));
            let body_code = object.and_then(|o| o.get("error")).and_then(Value::as_str);
            let plain_refusal = p.endpoint == Endpoint::UserInfo && matches!(status, 401 | 403);
            let challenged = p.endpoint == Endpoint::UserInfo && challenge.is_some();
            assert!(
                (400..500).contains(&status) && (plain_refusal || about_the_token(body_code) || challenged),
                "an inactive verdict from a non-200 needs a 4xx naming the token: {status} {body_code:?}"
            );
        }
        Err(ProviderFailure::ClientRejected) => assert!((400..500).contains(&status)),
        Err(ProviderFailure::Unparsable) => assert_eq!(status, 200),
        Err(ProviderFailure::BadStatus) => assert_ne!(status, 200),
        Err(ProviderFailure::NoResponse) => panic!("an answer is never `no response`"),
    }
    if !(400..500).contains(&status) && status != 200 {
        assert_eq!(result, Err(ProviderFailure::BadStatus), "{status}");
    }
}

proptest! {
    #[test]
    fn introspection_answers_grant_an_identity_only_as_rfc_7662_says(
        status in status(),
        challenge in challenge(),
        body in body(),
        audiences in any::<bool>(),
    ) {
        check_answer(&provider(Endpoint::Introspection, audiences), status, challenge.as_deref(), &body);
    }

    #[test]
    fn userinfo_answers_grant_an_identity_only_from_a_200(
        status in status(),
        challenge in challenge(),
        body in body(),
        audiences in any::<bool>(),
    ) {
        check_answer(&provider(Endpoint::UserInfo, audiences), status, challenge.as_deref(), &body);
    }
}

#[derive(Default)]
struct MapStore(RefCell<HashMap<String, Vec<u8>>>);

impl SharedStore for MapStore {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.0.borrow().get(key).cloned()
    }
    fn set(&self, key: &str, value: &[u8]) {
        self.0.borrow_mut().insert(key.to_owned(), value.to_vec());
    }
}

fn token_info() -> impl Strategy<Value = TokenInfo> {
    let user = prop_oneof![
        Just("fred".to_owned()),
        Just(String::new()),
        Just("fr\ned".to_owned()),
        "\\PC{0,6}"
    ];
    let exp = prop_oneof![
        Just(None),
        (NOW - 3..NOW + 3).prop_map(Some),
        any::<i64>().prop_map(Some)
    ];
    prop_oneof![
        (user, prop::collection::vec("[a-z:]{0,6}", 0..3), exp)
            .prop_map(|(user, scopes, exp)| TokenInfo::Active { user, scopes, exp }),
        Just(TokenInfo::Inactive),
        Just(TokenInfo::UnmappedClient),
    ]
}

/// One stored entry: whose key, until when, and what value.
#[derive(Debug, Clone)]
struct Entry {
    ours: bool,
    other_key: [u8; 32],
    expires_at: i64,
    value: Vec<u8>,
}

fn entry() -> impl Strategy<Value = Entry> {
    let value = prop_oneof![
        3 => token_info().prop_map(|info| serde_json::to_vec(&info).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 0..40),
    ];
    let expires_at = prop_oneof![3 => NOW - 3..NOW + 3, 1 => any::<i64>()];
    (any::<bool>(), any::<[u8; 32]>(), expires_at, value).prop_map(|(ours, other_key, expires_at, value)| {
        Entry {
            ours,
            other_key,
            expires_at,
            value,
        }
    })
}

/// The cache's layout, `[32 key][8 expiry LE][4 length LE][value]` per entry.
fn bucket_bytes(ours: &[u8; 32], entries: &[Entry], tail: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for e in entries {
        bytes.extend_from_slice(if e.ours { ours } else { &e.other_key });
        bytes.extend_from_slice(&e.expires_at.to_le_bytes());
        bytes.extend_from_slice(&(e.value.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&e.value);
    }
    bytes.extend_from_slice(tail);
    bytes
}

/// What a correct reader serves: the first entry of our key still inside its expiry, if its
/// value is a well-formed answer still good now.
fn model(entries: &[Entry]) -> Option<TokenInfo> {
    let found = entries.iter().find(|e| e.ours && NOW < e.expires_at)?;
    let info: TokenInfo = serde_json::from_slice(&found.value).ok()?;
    match &info {
        TokenInfo::Active { user, exp, .. } => {
            (!user.is_empty() && !user.chars().any(char::is_control) && exp.is_none_or(|exp| exp > NOW))
                .then_some(info)
        }
        _ => Some(info),
    }
}

proptest! {
    #[test]
    fn any_bytes_in_the_answer_cache_are_a_good_answer_or_a_miss(
        entries in prop::collection::vec(entry(), 0..6),
        tail in prop::collection::vec(any::<u8>(), 0..50),
    ) {
        let cache = SlotCache::new("oauth", OAUTH_CACHE_SLOTS);
        let kc = provider(Endpoint::Introspection, false);
        let ours = cache.key(&kc.scope, b"kc\0\0t");
        let store = MapStore::default();
        // Garbage after the entries is ignored only if it cannot be read as one more entry.
        let tail: Vec<u8> = tail.into_iter().take(43).collect();
        store.set(&format!("tokengate.oauth.{}", answer_bucket(&kc, "t")), &bucket_bytes(&ours, &entries, &tail));
        let got = cached_answer(&store, &kc, None, "t", NOW);
        prop_assert_eq!(&got, &model(&entries));
        if let Some(TokenInfo::Active { user, exp, .. }) = &got {
            prop_assert!(!user.is_empty() && !user.chars().any(char::is_control));
            prop_assert!(exp.is_none_or(|exp| exp > NOW), "never past the token's exp");
        }
        prop_assert_eq!(cached_answer(&store, &kc, Some("fred"), "t", NOW), None, "another key misses");
        let other = OAuthProvider { scope: [1; 32], ..kc.clone() };
        prop_assert_eq!(cached_answer(&store, &other, None, "t", NOW), None, "another scope misses");
    }

    #[test]
    fn arbitrary_bytes_in_a_bucket_never_serve_an_entry_past_its_expiry(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        now in prop_oneof![Just(NOW), any::<i64>()],
    ) {
        let store = MapStore::default();
        let kc = provider(Endpoint::Introspection, false);
        store.set(&format!("tokengate.oauth.{}", answer_bucket(&kc, "t")), &bytes);
        if let Some(TokenInfo::Active { user, exp, .. }) = cached_answer(&store, &kc, None, "t", now) {
            prop_assert!(!user.is_empty());
            prop_assert!(exp.is_none_or(|exp| exp > now));
        }
    }

    #[test]
    fn the_slot_cache_returns_the_last_value_stored_for_a_key_until_it_expires(
        inserts in prop::collection::vec((0u8..6, any::<u16>(), NOW - 3..NOW + 3), 1..40),
    ) {
        let cache = SlotCache::new("oauth", 8);
        let store = MapStore::default();
        let mut last = HashMap::new();
        for (key, value, until) in &inserts {
            cache.insert(&store, &cache.key(&[0; 32], &[*key]), &value.to_le_bytes(), *until);
            last.insert(*key, (*value, *until));
        }
        for key in 0u8..6 {
            let got = cache.get(&store, &cache.key(&[0; 32], &[key]), NOW);
            match (got, last.get(&key)) {
                (Some(value), Some((stored, until))) => {
                    prop_assert_eq!(value, stored.to_le_bytes().to_vec(), "never another key's value");
                    prop_assert!(NOW < *until, "never past its expiry");
                }
                (Some(_), None) => prop_assert!(false, "a value for a key never stored"),
                (None, _) => {} // expired, or given up by a full bucket
            }
        }
    }
}
