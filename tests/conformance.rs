//! The third-party JWT conformance vectors (`tests/conformance/jwt/`) against the verification
//! core, and again through a provider built by `Config::from_json` from the vector's key (as
//! `local_jwks`, `pem` or `hmac_secret_base64url`) with the default `algorithms`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use tokengate::bearer::{JwtProvider, KeySource};
use tokengate::config::Config;
use tokengate::hostcrypto::ModuleOnly;
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

/// The provider a user would configure for this case: the vector's key, its issuer, audiences
/// and `require_exp`, no clock skew, and the default `algorithms`.
fn configured_provider(case: &Value) -> JwtProvider {
    let key = &case["key"];
    let mut provider = json!({
        "clock_skew_seconds": 0,
        "require_exp": case["require_exp"],
        "user_claim": user_claim(case),
    });
    match key["format"].as_str().unwrap() {
        "jwks" => provider["local_jwks"] = key["value"].clone(),
        "pem" => provider["pem"] = key["value"].clone(),
        "hmac" => provider["hmac_secret_base64url"] = key["value"].clone(),
        other => panic!("unknown key format {other}"),
    }
    if case["issuer"].is_string() {
        provider["issuer"] = case["issuer"].clone();
    }
    if case["audience"].is_array() {
        provider["audiences"] = case["audience"].clone();
    }
    let config = json!({"jwt_providers": {"vector": provider}}).to_string();
    let mut config = Config::from_json(config.as_bytes())
        .unwrap_or_else(|e| panic!("{}: {e}", case["id"].as_str().unwrap()));
    config.jwt_providers.remove(0)
}

/// Which claim names the user is not what the vectors test: `sub`, or else `iss`, or else the
/// payload's first member (a few RFC and golang-jwt examples have no `sub`).
fn user_claim(case: &Value) -> String {
    let payload = case["token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .and_then(|segment| URL_SAFE_NO_PAD.decode(segment).ok())
        .and_then(|bytes| serde_json::from_slice::<serde_json::Map<String, Value>>(&bytes).ok())
        .unwrap_or_default();
    ["sub", "iss"]
        .into_iter()
        .find(|name| payload.contains_key(*name))
        .map(str::to_owned)
        .or_else(|| payload.keys().next().cloned())
        .unwrap_or_else(|| "sub".to_owned())
}

fn verify_through_provider(case: &Value) -> Result<(), JwtError> {
    let provider = configured_provider(case);
    let KeySource::Static(keys) = &provider.keys else {
        panic!("a static key source")
    };
    let jwt = UntrustedJwt::parse(case["token"].as_str().unwrap())?;
    let now = case["now"].as_i64().unwrap();
    provider.verify(&jwt, keys, now, &ModuleOnly).map(|_| ())
}

#[test]
fn every_conformance_vector_gets_its_expected_verdict_through_a_configured_provider() {
    let cases = load_cases();
    let mut disagreements = Vec::new();
    for case in &cases {
        let outcome = verify_through_provider(case);
        if outcome.is_ok() != (case["expect"] == "accept") {
            disagreements.push(format!("{} (got {outcome:?})", case["id"].as_str().unwrap()));
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
fn the_oct_and_binary_hmac_vectors_verify_through_a_configured_provider() {
    // The `oct` JWKS of jwt_verify_lib, and the binary secrets (RFC 7515 A.1, golang-jwt).
    let cases = load_cases();
    let hmac: Vec<&Value> = cases
        .iter()
        .filter(|case| case["alg"].as_str().is_some_and(|alg| alg.starts_with("HS")))
        .filter(|case| case["expect"] == "accept")
        .collect();
    let ids: Vec<&str> = hmac.iter().map(|case| case["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "jvl-hs256-jwks-nokid",
            "jvl-hs256-jwks-kid",
            "jvl-hs384-jwks-kid",
            "jvl-hs512-jwks-kid",
            "gojwt-hs384-exp-float",
            "gojwt-hs512-exp-float",
            "rfc7515-a1-hs256",
            "panva-hs256-zero-secret"
        ]
    );
    for case in hmac {
        let provider = configured_provider(case);
        let alg = Algorithm::from_name(case["alg"].as_str().unwrap()).unwrap();
        assert!(provider.algorithms.contains(&alg), "{}", case["id"]);
        assert_eq!(verify_through_provider(case), Ok(()), "{}", case["id"]);
    }
}

#[test]
fn the_vector_file_holds_96_cases_of_which_42_accept() {
    let cases = load_cases();
    let accepting = cases.iter().filter(|case| case["expect"] == "accept").count();
    assert_eq!((cases.len(), accepting), (96, 42));
}
