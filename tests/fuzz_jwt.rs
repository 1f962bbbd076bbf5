//! Property tests of the JWT entry points: whatever bytes arrive, parsing and verification
//! answer with a typed error or a verdict and never panic (a panic in Wasm kills the VM).
//! `PROPTEST_CASES=1000000 cargo test --release --test fuzz_jwt` runs a longer campaign.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use proptest::prelude::*;
use tokengate::jwk::KeySet;
use tokengate::jwt::{check_claims, Algorithm, ClaimRules, UntrustedJwt};
use tokengate_demo::keys::{jwks, TestKey};

fn keys() -> KeySet {
    let (a, b) = (TestKey::es256("a"), TestKey::es256("b"));
    KeySet::from_jwks(jwks(&[&a, &b]).to_string().as_bytes()).unwrap()
}

fn exercise(token: &str, keys: &KeySet) {
    if let Ok(jwt) = UntrustedJwt::parse(token) {
        let _ = jwt.kid();
        if jwt.verify(keys, &Algorithm::ALL).is_ok() {
            let rules = ClaimRules {
                clock_skew_seconds: 60,
                ..ClaimRules::default()
            };
            let _ = check_claims(jwt.claims(), &rules, 1_700_000_000);
        }
    }
}

/// JSON-ish text: objects, arrays, numbers, odd strings and the registered names.
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("\"none\"".to_string()),
        Just("\"ES256\"".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:e}")),
        "\\PC{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|items| format!("[{}]", items.join(","))),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "alg", "kid", "crit", "b64", "exp", "nbf", "iss", "aud", "jwk", "x"
                    ]),
                    inner
                ),
                0..6
            )
            .prop_map(|members| {
                let body: Vec<String> = members.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", body.join(","))
            }),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(token in "\\PC{0,300}") {
        exercise(&token, &keys());
    }

    #[test]
    fn arbitrary_segments_never_panic(
        header in prop::collection::vec(any::<u8>(), 0..200),
        payload in prop::collection::vec(any::<u8>(), 0..200),
        signature in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let token = format!("{}.{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(signature));
        exercise(&token, &keys());
    }

    #[test]
    fn json_shaped_headers_and_claims_never_panic(
        header in json_text(),
        payload in json_text(),
        signature in prop::collection::vec(any::<u8>(), 0..140),
    ) {
        let token = format!("{}.{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(signature));
        exercise(&token, &keys());
    }
}
