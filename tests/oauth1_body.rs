//! Issue 13's form body read, end to end: the real Envoy and the built module. And what
//! Envoy's `verify_signature` (the host check RSA-SHA1 signatures go to) does with the keys
//! OAuth 1.0a consumers have.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use serde_json::json;

/// Jira's tutorial makes 1024-bit consumer keys: this Envoy (1.40, BoringSSL) checks RSA-SHA1
/// signatures by them as well as by 2048-bit ones, so both go to it (the start-up self-test
/// has a vector of each; a host that failed the small one would leave small keys to the
/// module).
#[test]
fn envoys_verify_signature_checks_rsa_sha1_with_1024_bit_keys_too() {
    let app = DemoApp::start(0).unwrap();
    let plugin = json!({
        "jwt_providers": {"idp": {"issuer": "https://idp.example.com",
            "local_jwks": {"keys": [{"kty": "oct", "kid": "k", "alg": "HS256",
                                     "k": "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T"}]}}},
        "rules": [{"path_prefix": "/", "providers": ["idp"]}]
    });
    let envoy = Envoy::start(&plugin.to_string(), app.port());
    let log = envoy.log();
    assert!(
        log.contains("and RSA-SHA1 ones (keys under 2048 bits too)"),
        "{log}"
    );
}
