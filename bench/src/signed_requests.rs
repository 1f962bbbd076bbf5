//! The OAuth 1.0a row of `make bench` (issue 13): requests pre-signed with RSA-SHA1, and the
//! introspection server's answer about their access token.
//!
//! A signed request can be used once (its nonce), so the row sends `count` distinct requests,
//! each `GET /rest/api/2/myself` signed for [`BASE_URL`] (the `public_base_url` the bench
//! configures, so the measured Envoy's free port does not enter the signature) with one
//! access token of one consumer, a fresh 2048-bit RSA key (as the demo's application link).
//! Every line of `oauth1-rsa-sha1.txt` is one `Authorization: OAuth ...` value; the
//! consumer's public key is in `oauth1-consumer.b64` (base64 of the DER SubjectPublicKeyInfo,
//! as the token service answers it).

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand_core::{OsRng, RngCore as _};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::EncodePublicKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha1::Sha1;

/// The consumer key of the bench's application link.
pub const CONSUMER_KEY: &str = "bench-consumer";
/// The scheme and authority clients sign (the provider's `public_base_url` in bench/run.py).
pub const BASE_URL: &str = "https://jira.bench.example";
/// The path bench/wrk/tokens.lua requests.
pub const PATH: &str = "/rest/api/2/myself";
/// The user the introspection server answers for the bench's access token.
pub const USER: &str = "bench-user";
/// The requests' file and the consumer's public key file, in the tokens directory.
pub const REQUESTS_FILE: &str = "oauth1-rsa-sha1.txt";
pub const PUBLIC_KEY_FILE: &str = "oauth1-consumer.b64";
const KEY_BITS: usize = 2048;

/// Writes `count` requests signed by a new consumer key with a new access token, and the
/// key's public half. Signing is spread over the machine's CPUs (it is most of the time).
pub fn write_requests(dir: &Path, count: usize, now: i64) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let key = RsaPrivateKey::new(&mut OsRng, KEY_BITS).map_err(|e| format!("RSA key: {e}"))?;
    let public = key
        .to_public_key()
        .to_public_key_der()
        .map_err(|e| format!("RSA public key: {e}"))?;
    let token = random_base64url();
    let signing = SigningKey::<Sha1>::new(key);
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let per_thread = count.div_ceil(threads);
    let lines: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (signing, token) = (&signing, &token);
                let range = (t * per_thread).min(count)..((t + 1) * per_thread).min(count);
                scope.spawn(move || range.map(|i| signed(signing, token, now, i)).collect::<Vec<_>>())
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| vec![Err("a signing thread failed".to_owned())])
            })
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect::<Result<_, _>>()?;
    super::write(dir.join(PUBLIC_KEY_FILE), &STANDARD.encode(public.as_bytes()))?;
    super::write_lines(dir.join(REQUESTS_FILE), lines)?;
    println!(
        "{count} OAuth 1.0a requests signed with RSA-SHA1 in {}",
        dir.display()
    );
    Ok(())
}

/// The `Authorization` value of request `i`: its own nonce, signed over the base string the
/// filter builds (RFC 5849 section 3.4.1, the `oauth1` crate's).
fn signed(signing: &SigningKey<Sha1>, token: &str, now: i64, i: usize) -> Result<String, String> {
    let nonce = format!("{i:08}{}", random_hex(8));
    let params = [
        ("oauth_nonce", nonce.as_str()),
        ("oauth_timestamp", &now.to_string()),
        ("oauth_version", "1.0"),
        ("oauth_signature_method", "RSA-SHA1"),
        ("oauth_consumer_key", CONSUMER_KEY),
        ("oauth_token", token),
    ]
    .map(|(name, value)| format!("{name}=\"{}\"", oauth1::encode::encode(value.as_bytes())));
    let unsigned = format!("OAuth {}", params.join(", "));
    // The base string leaves the signature out: any value stands in for it.
    let auth = oauth1::parse(&format!("{unsigned}, oauth_signature=\"\"")).map_err(|e| format!("{e:?}"))?;
    let uri = oauth1::BaseUri::from_url(&format!("{BASE_URL}{PATH}")).map_err(|e| format!("{e:?}"))?;
    let base = oauth1::base_string("GET", &uri, b"", &auth, None).map_err(|e| format!("{e:?}"))?;
    let signature = STANDARD.encode(signing.sign(base.as_bytes()).to_bytes());
    Ok(format!(
        "{unsigned}, oauth_signature=\"{}\"",
        oauth1::encode::encode(signature.as_bytes())
    ))
}

/// The introspection answer about an OAuth 1.0a access token (issue 13's wire format): any
/// token of the bench's consumer is active for an hour, with the consumer's public key.
pub fn answer(form: &str, public_key: Option<&str>, exp: i64) -> Value {
    let consumer = oauth1::encode::form_pairs(form.as_bytes())
        .find(|(name, _)| name == b"oauth_consumer_key")
        .map(|(_, value)| value);
    match (consumer, public_key) {
        (Some(consumer), Some(key)) if consumer == CONSUMER_KEY.as_bytes() => json!({
            "active": true, "token_type": "oauth1_access_token", "username": USER,
            "client_id": CONSUMER_KEY, "exp": exp, "consumer_public_key": key,
        }),
        _ => json!({"active": false, "oauth_problem": "consumer_key_unknown"}),
    }
}

/// 32 random bytes, base64url without padding (43 characters): an access token as the token
/// service makes them.
fn random_base64url() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    OsRng.fill_bytes(&mut bytes);
    super::hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oauth1::{ConsumerKey, Credentials, SignatureMethod};

    #[test]
    fn every_written_request_verifies_with_the_written_key_and_has_its_own_nonce() {
        let dir = std::env::temp_dir().join(format!("tokengate-bench-oauth1-{}", std::process::id()));
        write_requests(&dir, 5, 1_764_590_000).unwrap();
        let der = STANDARD
            .decode(std::fs::read_to_string(dir.join(PUBLIC_KEY_FILE)).unwrap().trim())
            .unwrap();
        let pem = pem_rfc7468::encode_string("PUBLIC KEY", pem_rfc7468::LineEnding::LF, &der).unwrap();
        let key = ConsumerKey::from_pem(&pem, 2048).unwrap();
        let text = std::fs::read_to_string(dir.join(REQUESTS_FILE)).unwrap();
        let mut nonces = std::collections::HashSet::new();
        for line in text.lines() {
            let auth = oauth1::parse(line).unwrap();
            assert!(nonces.insert(auth.nonce.clone()), "{line}");
            let uri = oauth1::BaseUri::from_url(&format!("{BASE_URL}{PATH}")).unwrap();
            let base = oauth1::base_string("GET", &uri, b"", &auth, None).unwrap();
            let verified = oauth1::verify(
                auth.signature_method,
                &auth.signature,
                &base,
                &[SignatureMethod::RsaSha1],
                Credentials::Rsa(&key),
            );
            assert_eq!(verified, Ok(()), "{line}");
        }
        assert_eq!(nonces.len(), 5);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_bench_consumer_is_answered_with_its_key_and_any_other_is_unknown() {
        let form = "token=abc&token_type_hint=oauth1_access_token&oauth_consumer_key=bench-consumer";
        let active = answer(form, Some("KEY"), 7);
        assert_eq!(active["active"], true);
        assert_eq!(active["username"], USER);
        assert_eq!(active["client_id"], CONSUMER_KEY);
        assert_eq!(active["consumer_public_key"], "KEY");
        let other = answer(&form.replace("bench-consumer", "other"), Some("KEY"), 7);
        assert_eq!(
            other,
            json!({"active": false, "oauth_problem": "consumer_key_unknown"})
        );
    }
}
