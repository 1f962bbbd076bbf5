//! JWT providers with symmetric and Ed25519 keys end to end (issue 10): the real Envoy and the
//! built module, with `oct` keys in `local_jwks`, RFC 7515 appendix A.1's binary HMAC key given
//! as `hmac_secret_base64url`, and a token whose `alg` is RFC 9864's `Ed25519`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use jwt_compact::alg::{Ed25519, Hs256, Hs256Key, Hs512, Hs512Key};
use jwt_compact::{Algorithm as _, AlgorithmSignature as _};
use serde_json::{json, Value};

/// The 40-byte secret of the `oct` key (kid `h1`), as its JWK `k` carries it.
const OCT_SECRET: &[u8] = b"an-oct-key-of-forty-bytes-for-hs256-only";
/// RFC 7515 appendix A.1's 64-byte binary key, base64url.
const RFC7515_A1_KEY: &str =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
/// RFC 7515 appendix A.1's example JWS: `{"iss":"joe","exp":1300819380,...}`, no `sub`.
const RFC7515_A1_TOKEN: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

enum Signer<'a> {
    Hs256(&'a [u8]),
    Hs512(&'a [u8]),
    Ed25519(&'a ed25519_compact::KeyPair),
}

fn sign(signer: Signer<'_>, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = match signer {
        Signer::Hs256(secret) => Hs256
            .sign(&Hs256Key::new(secret), input.as_bytes())
            .as_bytes()
            .to_vec(),
        Signer::Hs512(secret) => Hs512
            .sign(&Hs512Key::new(secret), input.as_bytes())
            .as_bytes()
            .to_vec(),
        Signer::Ed25519(pair) => Ed25519.sign(&pair.sk, input.as_bytes()).as_bytes().to_vec(),
    };
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn claims(issuer: &str, sub: &str) -> Value {
    json!({"iss": issuer, "sub": sub, "exp": now() + 600})
}

fn ed25519_pair(seed: u8) -> ed25519_compact::KeyPair {
    ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([seed; 32]))
}

/// Three providers, told apart by issuer, each with its default `algorithms`.
fn plugin_config(okp: &ed25519_compact::KeyPair) -> String {
    json!({
        "realm": "jira",
        "jwt_providers": {
            "octs": {
                "issuer": "https://octs.example",
                "local_jwks": {"keys": [
                    {"kty": "oct", "kid": "h1", "alg": "HS256", "k": URL_SAFE_NO_PAD.encode(OCT_SECRET)}
                ]}
            },
            "rfc7515": {"issuer": "joe", "hmac_secret_base64url": RFC7515_A1_KEY},
            "okp": {
                "issuer": "https://okp.example",
                "local_jwks": {"keys": [
                    {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "alg": "Ed25519", "x": URL_SAFE_NO_PAD.encode(&okp.pk[..])}
                ]}
            }
        }
    })
    .to_string()
}

fn get(envoy: &Envoy, token: &str) -> Response {
    envoy.get(
        "/rest/api/2/myself",
        &[("authorization", &format!("Bearer {token}"))],
    )
}

fn message(response: &Response) -> String {
    response.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

const INVALID: &str = "Token Invalid: Error while validating the token.";

#[test]
fn oct_binary_and_ed25519_keys_verify_their_tokens_and_refuse_every_other() {
    let okp = ed25519_pair(5);
    let app = DemoApp::start(0).unwrap();
    let envoy = Envoy::start(&plugin_config(&okp), app.port());

    // Accepted: HS256 with the oct key (with and without its kid), HS256 with RFC 7515 A.1's
    // binary key, and an `Ed25519` token.
    let hs256 = json!({"alg": "HS256", "typ": "JWT", "kid": "h1"});
    let accepted = [
        (
            "oct HS256",
            sign(
                Signer::Hs256(OCT_SECRET),
                &hs256,
                &claims("https://octs.example", "fred"),
            ),
        ),
        (
            "oct HS256 without kid",
            sign(
                Signer::Hs256(OCT_SECRET),
                &json!({"alg": "HS256"}),
                &claims("https://octs.example", "fred"),
            ),
        ),
        (
            "RFC 7515 A.1 key",
            sign(
                Signer::Hs256(&URL_SAFE_NO_PAD.decode(RFC7515_A1_KEY).unwrap()),
                &json!({"typ": "JWT", "alg": "HS256"}),
                &claims("joe", "jsmith"),
            ),
        ),
        (
            "Ed25519",
            sign(
                Signer::Ed25519(&okp),
                &json!({"alg": "Ed25519", "kid": "ed"}),
                &claims("https://okp.example", "admin"),
            ),
        ),
    ];
    for (what, token) in &accepted {
        let response = get(&envoy, token);
        assert_eq!(response.status, 200, "{what}: {response:?}");
    }
    let users: Vec<String> = app
        .received()
        .iter()
        .map(|r| r.header("x-tokengate-user").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(users, ["fred", "fred", "jsmith", "admin"]);

    // Refused with seed 001's 400: another secret, the oct secret under HS512 (the key is bound
    // to HS256), the Ed25519 key's token under the name EdDSA (the key is bound to Ed25519),
    // another Ed25519 key, and an HS256 token whose secret is the Ed25519 public key.
    let stranger = ed25519_pair(6);
    let wrong_secret = b"not-the-oct-key-but-also-forty-bytes-long";
    let refused = [
        (
            "wrong oct secret",
            sign(
                Signer::Hs256(wrong_secret),
                &hs256,
                &claims("https://octs.example", "fred"),
            ),
        ),
        (
            "HS512 with the HS256 key",
            sign(
                Signer::Hs512(OCT_SECRET),
                &json!({"alg": "HS512", "kid": "h1"}),
                &claims("https://octs.example", "fred"),
            ),
        ),
        (
            "EdDSA with the Ed25519-bound key",
            sign(
                Signer::Ed25519(&okp),
                &json!({"alg": "EdDSA", "kid": "ed"}),
                &claims("https://okp.example", "admin"),
            ),
        ),
        (
            "another Ed25519 key",
            sign(
                Signer::Ed25519(&stranger),
                &json!({"alg": "Ed25519", "kid": "ed"}),
                &claims("https://okp.example", "admin"),
            ),
        ),
        (
            "HS256 made with the OKP public key",
            sign(
                Signer::Hs256(&okp.pk[..]),
                &json!({"alg": "HS256", "kid": "ed"}),
                &claims("https://okp.example", "admin"),
            ),
        ),
        ("RFC 7515 A.1 tampered", {
            let (input, _) = RFC7515_A1_TOKEN.rsplit_once('.').unwrap();
            format!("{input}.{}", URL_SAFE_NO_PAD.encode([0_u8; 32]))
        }),
    ];
    for (what, token) in &refused {
        let response = get(&envoy, token);
        assert_eq!(
            (response.status, message(&response).as_str()),
            (400, INVALID),
            "{what}: {response:?}"
        );
        assert_eq!(
            response.header("www-authenticate"),
            Some(r#"Bearer realm="jira", error="invalid_token""#),
            "{what}"
        );
    }
    assert_eq!(
        envoy.counter("wasmcustom.tokengate.denied.invalid_token"),
        refused.len() as u64
    );

    // RFC 7515 A.1's own token: its signature verifies with the binary key, so it is refused
    // only as expired (2011), with the 401 of seed 001; a bad signature would be a 400.
    let response = get(&envoy, RFC7515_A1_TOKEN);
    assert_eq!(
        (response.status, message(&response).as_str()),
        (401, "Token Expired: The token provided is expired.")
    );
    assert_eq!(app.received().len(), accepted.len());
}

#[test]
fn an_oct_key_without_alg_or_hs256_over_public_keys_is_refused_at_start_naming_the_field() {
    let app = DemoApp::start(0).unwrap();
    let okp = ed25519_pair(5);
    let x = URL_SAFE_NO_PAD.encode(&okp.pk[..]);
    let cases = [
        (
            json!({"jwt_providers": {"p": {"local_jwks": {"keys": [{"kty": "oct", "k": RFC7515_A1_KEY}]}}}}),
            "field `jwt_providers.p.local_jwks.keys[0]`: key 0: an `oct` key must name its `alg`",
        ),
        (
            json!({"jwt_providers": {"p": {"local_jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x}]},
                                           "algorithms": ["HS256"]}}}),
            "field `jwt_providers.p.algorithms`: `HS256` needs an `oct` key",
        ),
        (
            json!({"jwt_providers": {"p": {"hmac_secret_base64url": "AyM1+/"}}}),
            "field `jwt_providers.p.hmac_secret_base64url`: is not base64url",
        ),
        (
            json!({"jwt_providers": {"p": {"hmac_secret_base64url": RFC7515_A1_KEY, "algorithms": ["Ed448"]}}}),
            "field `jwt_providers.p.algorithms`: `Ed448` is not supported",
        ),
    ];
    for (config, expected) in cases {
        let log = match Envoy::try_start(&config.to_string(), app.port()) {
            Ok(_) => panic!("Envoy accepted {config}"),
            Err(log) => log,
        };
        assert!(log.contains(expected), "{config}: {log}");
        assert!(!log.contains(RFC7515_A1_KEY), "the secret is in the log");
    }
}
