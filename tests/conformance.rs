//! The third-party JWT conformance vectors (`tests/conformance/jwt/`) against the verification core.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;
use tokengate::jwk::{KeySet, SymmetricKeys};
use tokengate::jwt::{check_claims, Algorithm, ClaimRules, JwtError, UntrustedJwt};

const VECTORS: &str = "tests/conformance/jwt/vectors.json";

fn load_cases() -> Vec<Value> {
    let path = format!("{}/{VECTORS}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let vectors: Value = serde_json::from_str(&text).unwrap();
    vectors["cases"].as_array().unwrap().clone()
}

fn key_set(key: &Value) -> KeySet {
    match key["format"].as_str().unwrap() {
        "jwks" => {
            let jwks = serde_json::to_vec(&key["value"]).unwrap();
            KeySet::from_jwks_with(&jwks, SymmetricKeys::Allow).unwrap()
        }
        "pem" => KeySet::from_pem(key["value"].as_str().unwrap()).unwrap(),
        "hmac" => {
            assert_eq!(key["encoding"], "base64url");
            let secret = URL_SAFE_NO_PAD.decode(key["value"].as_str().unwrap()).unwrap();
            KeySet::from_hmac_secret(secret).unwrap()
        }
        other => panic!("unknown key format {other}"),
    }
}

fn claim_rules(case: &Value) -> ClaimRules {
    let audiences = case["audience"]
        .as_array()
        .map(|list| list.iter().map(|aud| aud.as_str().unwrap().to_owned()).collect());
    ClaimRules {
        issuer: case["issuer"].as_str().map(str::to_owned),
        audiences,
        clock_skew_seconds: 0,
        require_exp: case["require_exp"].as_bool().unwrap(),
    }
}

fn verify_case(case: &Value) -> Result<(), JwtError> {
    let keys = key_set(&case["key"]);
    let jwt = UntrustedJwt::parse(case["token"].as_str().unwrap())?;
    jwt.verify(&keys, &Algorithm::ALL)?;
    check_claims(jwt.claims(), &claim_rules(case), case["now"].as_i64().unwrap())
}

#[test]
fn every_conformance_vector_gets_its_expected_verdict() {
    let cases = load_cases();
    let mut disagreements = Vec::new();
    for case in &cases {
        let outcome = verify_case(case);
        let expected_accept = case["expect"] == "accept";
        if outcome.is_ok() != expected_accept {
            disagreements.push(format!(
                "{} (expected {}, got {outcome:?})",
                case["id"].as_str().unwrap(),
                case["expect"].as_str().unwrap()
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} cases disagree:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
}

#[test]
fn the_vector_file_holds_96_cases_of_which_42_accept() {
    let cases = load_cases();
    let accepting = cases.iter().filter(|case| case["expect"] == "accept").count();
    assert_eq!((cases.len(), accepting), (96, 42));
}
