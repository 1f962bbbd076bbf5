//! The crate against the real client library: oauthlib (what requests-oauthlib and
//! jira-python sign with) signs requests with RSA-SHA1, and the base string built here from
//! what went on the wire must be the one oauthlib signed, and its signature must verify.
//! Needs the project's virtualenv (`make pytools`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::process::Command;

use oauth1::signature::DEFAULT_MIN_BITS;
use oauth1::{base_string, parse, verify, BaseUri, ConsumerKey, Credentials, SignatureMethod};
use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rsa::RsaPrivateKey;

fn python() -> PathBuf {
    let python = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python"));
    assert!(
        python.exists(),
        "{} is missing: run `make pytools`",
        python.display()
    );
    python
}

/// oauthlib's signed requests, each a JSON object (see oauthlib_sign.py).
fn signed_by_oauthlib(private: &RsaPrivateKey) -> Vec<serde_json::Value> {
    let dir = std::env::temp_dir().join(format!("tokengate-oauth1-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("consumer.pem");
    std::fs::write(
        &key_file,
        private.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
    )
    .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oauthlib_sign.py");
    let output = Command::new(python())
        .arg(script)
        .arg(&key_file)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn base_strings_are_oauthlibs_and_its_rsa_sha1_signatures_verify() {
    let private = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let pem = private.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
    let key = ConsumerKey::from_pem(&pem, DEFAULT_MIN_BITS).unwrap();
    let requests = signed_by_oauthlib(&private);
    assert_eq!(requests.len(), 5);
    for request in requests {
        let field = |name: &str| request[name].as_str().map(str::to_owned);
        let name = field("name").unwrap();
        let (method, url) = (field("method").unwrap(), field("url").unwrap());
        let auth = parse(&field("authorization").unwrap()).unwrap();
        let query = url.split_once('?').map_or("", |(_, query)| query);
        let form = field("content_type").is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        let body = field("body").filter(|_| form);
        let uri = BaseUri::from_url(&url).unwrap();
        let base = base_string(
            &method,
            &uri,
            query.as_bytes(),
            &auth,
            body.as_deref().map(str::as_bytes),
        )
        .unwrap();
        assert_eq!(base, field("base_string").unwrap(), "{name}");
        let rsa = [SignatureMethod::RsaSha1];
        assert_eq!(
            verify(
                auth.signature_method,
                &auth.signature,
                &base,
                &rsa,
                Credentials::Rsa(&key)
            ),
            Ok(()),
            "{name}"
        );
        // The same signature over another request's base string: refused.
        let tampered = base.replace("DEMO", "DEMP").replace("jira-cli", "jira-clj");
        assert!(
            verify(
                auth.signature_method,
                &auth.signature,
                &tampered,
                &rsa,
                Credentials::Rsa(&key)
            )
            .is_err(),
            "{name}"
        );
    }
}
