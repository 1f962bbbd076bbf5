//! Issue 13's form body read, end to end: the real Envoy, the built module and real loopback
//! upstreams. An OAuth 1.0a signature covers an `application/x-www-form-urlencoded` body, so
//! the filter reads it, bounded (`form_body.max_bytes`: 413) and within a deadline
//! (`form_body.timeout_ms`: 408); the refusals come before any question to the token service,
//! and neither it nor the application sees such a request. Every request with a body is held,
//! its body buffered, until it is decided. And what Envoy's `verify_signature` (the host check
//! RSA-SHA1 signatures go to) does with the keys OAuth 1.0a consumers have.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use serde_json::json;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

const MAX_BYTES: usize = 1024;
const TIMEOUT_MS: u64 = 1000;

/// The oauth1 provider on every path, its token service at `token_service` (a held upstream,
/// so that a question would show).
fn oauth1_config() -> String {
    json!({
        "realm": "jira",
        "oauth1_providers": {"applinks": {
            "introspection": {"cluster": "token_service", "path": "/introspect",
                              "client_id": "tokengate", "client_secret": "client-secret"},
            "public_base_url": "http://127.0.0.1:8080",
            "form_body": {"max_bytes": MAX_BYTES, "timeout_ms": TIMEOUT_MS}
        }},
        "rules": [{"path_prefix": "/", "providers": ["applinks"]}]
    })
    .to_string()
}

/// A well-formed RSA-SHA1 `Authorization: OAuth` header with a current timestamp: everything
/// the filter checks before it reads the body passes (the signature is checked after the
/// question, which none of these requests gets to).
fn oauth_header() -> String {
    format!(
        "OAuth realm=\"jira\", oauth_consumer_key=\"jira-cli\", oauth_token=\"access-token-1\", \
         oauth_signature_method=\"RSA-SHA1\", oauth_timestamp=\"{}\", oauth_nonce=\"n-{}\", \
         oauth_version=\"1.0\", oauth_signature=\"c2lnbmF0dXJl\"",
        now(),
        now()
    )
}

/// A form POST's head with `framing` (`content-length: N` or `transfer-encoding: chunked`).
fn form_head(framing: &str) -> String {
    format!(
        "POST /rest/api/2/issue/DEMO-1/comment HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n\
         authorization: {}\r\ncontent-type: application/x-www-form-urlencoded\r\n{framing}\r\n\r\n",
        oauth_header()
    )
}

/// Sends `bytes` and reads the answer, keeping the connection open meanwhile (the body may be
/// unfinished); how long the answer took.
fn exchange(port: u16, bytes: &[u8]) -> (Response, Duration) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    stream.write_all(bytes).unwrap();
    let response = read_response(&mut stream).unwrap();
    (response, started.elapsed())
}

fn error_messages(response: &Response) -> serde_json::Value {
    response.json()["errorMessages"].clone()
}

#[test]
fn a_form_body_that_is_only_half_sent_is_answered_408_at_the_deadline_and_reaches_nobody() {
    let app = DemoApp::start(0).unwrap();
    let token_service = HeldUpstream::start();
    let envoy = Envoy::start_with_clusters(
        &oauth1_config(),
        app.port(),
        &[("token_service", token_service.port())],
    );
    let request = format!("{}body=only+half", form_head("content-length: 40"));
    let (response, took) = exchange(envoy.port, request.as_bytes());
    assert_eq!(response.status, 408, "{response:?}");
    assert!(error_messages(&response).is_array(), "{response:?}");
    // The root's tick (100 ms) answers it once the deadline has passed.
    let timeout = Duration::from_millis(TIMEOUT_MS);
    assert!(took >= timeout - Duration::from_millis(50), "{took:?}");
    assert!(took < timeout + Duration::from_millis(1500), "{took:?}");
    assert_eq!(envoy.counter("wasmcustom.tokengate.denied.body_timeout"), 1);
    assert!(app.received().is_empty(), "{:?}", app.received());
    assert!(token_service.received().is_empty());
    envoy.wait_for_gauge(
        "wasmcustom.tokengate.questions.waiting",
        0,
        Duration::from_secs(5),
    );
}

#[test]
fn a_form_body_over_the_bound_is_answered_413_by_its_length_at_once_or_as_its_chunks_pass_it() {
    let app = DemoApp::start(0).unwrap();
    let token_service = HeldUpstream::start();
    let envoy = Envoy::start_with_clusters(
        &oauth1_config(),
        app.port(),
        &[("token_service", token_service.port())],
    );
    // Declared too long: refused at the headers, the body not awaited.
    let declared = format!(
        "{}body=",
        form_head(&format!("content-length: {}", MAX_BYTES + 1))
    );
    let (response, took) = exchange(envoy.port, declared.as_bytes());
    assert_eq!(response.status, 413, "{response:?}");
    assert!(error_messages(&response).is_array(), "{response:?}");
    assert!(took < Duration::from_millis(TIMEOUT_MS), "{took:?}");
    // Chunked, no length: refused when what arrived passes the bound, the end not awaited.
    let chunk = format!("body={}", "x".repeat(MAX_BYTES));
    let chunked = format!(
        "{}{:x}\r\n{chunk}\r\n",
        form_head("transfer-encoding: chunked"),
        chunk.len()
    );
    let (response, took) = exchange(envoy.port, chunked.as_bytes());
    assert_eq!(response.status, 413, "{response:?}");
    assert!(took < Duration::from_millis(TIMEOUT_MS), "{took:?}");
    assert_eq!(envoy.counter("wasmcustom.tokengate.denied.body_too_large"), 2);
    assert!(app.received().is_empty(), "{:?}", app.received());
    assert!(token_service.received().is_empty());
}

/// The fake identity provider's RFC 7662 answer.
fn introspection(active: bool) -> Reply {
    let answer = match active {
        true => json!({"active": true, "username": "fred", "exp": now() + 600}),
        false => json!({"active": false}),
    };
    Reply::json(200, &answer)
}

/// A request whose headers are held for a callout must not go upstream with its first body
/// chunk: Envoy's filter manager continues stopped headers when a body chunk is continued, so
/// the filter buffers every chunk until the decision. Then the body arrives byte for byte.
#[test]
fn a_body_sent_while_its_token_is_introspected_waits_for_the_answer_and_arrives_unchanged() {
    let app = DemoApp::start(0).unwrap();
    let idp = HeldUpstream::start();
    let config = json!({
        "realm": "jira",
        "oauth_providers": {"kc": {
            "introspection": {"cluster": "idp", "path": "/introspect", "client_id": "tokengate",
                              "client_secret": "client-secret"},
            "timeout_ms": 5000
        }},
        "rules": [{"path_prefix": "/", "providers": ["kc"]}]
    })
    .to_string();
    let envoy = Envoy::start_with_clusters(&config, app.port(), &[("idp", idp.port())]);
    let body = "{\"fields\":{\"summary\":\"caf\u{e9} \u{2713}\"},\"a\":\"&=+%\"}";
    let post = |token: &str| {
        format!(
            "POST /rest/api/2/issue HTTP/1.1\r\nhost: jira\r\nauthorization: Bearer {token}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    for (index, (token, active)) in [("opaque-good", true), ("opaque-bad", false)]
        .into_iter()
        .enumerate()
    {
        let port = envoy.port;
        let request = post(token);
        let client = std::thread::spawn(move || exchange(port, request.as_bytes()).0);
        idp.wait_for_requests(index + 1, Duration::from_secs(10));
        // Envoy has had the whole request (one write) while the question is out.
        assert_eq!(app.received().len(), index, "{:?}", app.received());
        idp.release(index, introspection(active));
        let response = client.join().unwrap();
        match active {
            true => {
                assert_eq!(response.status, 200, "{response:?}");
                let received = app.received();
                assert_eq!(received.len(), 1);
                assert_eq!(received[0].body, body, "the body upstream is the body sent");
            }
            false => assert_eq!(response.status, 401, "{response:?}"),
        }
    }
    assert_eq!(app.received().len(), 1, "the refused request never arrived");
}

/// Jira's tutorial makes 1024-bit consumer keys: this Envoy (1.40, BoringSSL) checks RSA-SHA1
/// signatures by them as well as by 2048-bit ones, so both go to it (the start-up self-test
/// has a vector of each; a host that failed the small one would leave small keys to the
/// module).
#[test]
fn envoys_verify_signature_checks_rsa_sha1_with_1024_bit_keys_too() {
    let app = DemoApp::start(0).unwrap();
    let envoy = Envoy::start_with_clusters(&oauth1_config(), app.port(), &[("token_service", app.port())]);
    let log = envoy.log();
    assert!(
        log.contains("and RSA-SHA1 ones (keys under 2048 bits too)"),
        "{log}"
    );
}
