//! Issue 13's form body read, end to end: the real Envoy, the built module and real loopback
//! upstreams. An OAuth 1.0a signature covers an `application/x-www-form-urlencoded` body, so
//! the filter reads it, bounded (`form_body.max_bytes`: 413) and within a deadline
//! (`form_body.timeout_ms`: 408); the refusals come before any question to the token service,
//! and neither it nor the application sees such a request. A form signed by a 1024-bit consumer
//! key (the real token service, after requests-oauthlib's dance) passes with its body byte for
//! byte. Every request with a body is held, its body buffered, until it is decided. And what
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
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
    // Envoy may answer and close before it has read it all.
    let _ = stream.write_all(bytes);
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
        log.contains(
            "RSA-SHA1 signatures (OAuth 1.0a) are checked by Envoy (verify_signature), 1024-bit keys too"
        ),
        "{log}"
    );
}

/// The real token service with one OAuth 1.0a consumer registered by `public_key_file`, the
/// demo users, and no base URL (the dance is signed for `http://127.0.0.1:<port>`, from `Host`).
struct OAuthTokenService {
    child: Child,
    port: u16,
}

const CONSUMER: &str = "jira-cli-1024";
const CALLBACK: &str = "http://127.0.0.1:8765/";

impl OAuthTokenService {
    fn start(dir: &Path, public_key_file: &Path) -> OAuthTokenService {
        let root = manifest();
        let binary = ["debug", "release"]
            .iter()
            .map(|profile| root.join("target").join(profile).join("tokengate-tokens"))
            .find(|path| path.exists())
            .expect("tokengate-tokens is not built: cargo build -p tokengate-tokens");
        let config = json!({
            "listen": "127.0.0.1:0",
            "database": dir.join("tokens.db"),
            "users_file": root.join("tokenservice/config/users.json"),
            "introspection": {"client_id": "tokengate", "client_secret": TOKENS_CLIENT_SECRET},
            "max_validity_months": 12,
            "default_validity_months": 6,
            "base_url": null,
            "lockout": {"max_failures": 3, "window_seconds": 300, "login_url": "http://jira.test/login.jsp"},
            "oauth1": {"consumers": [{"consumer_key": CONSUMER, "name": "A 1024-bit application link",
                                      "public_key_file": public_key_file, "callbacks": [CALLBACK]}],
                       "min_key_bits": 1024}
        });
        let config_path = dir.join("tokens.json");
        std::fs::write(&config_path, config.to_string()).unwrap();
        let mut child = Command::new(binary)
            .arg("--config")
            .arg(&config_path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
        let port = line.trim().rsplit(':').next().and_then(|p| p.parse().ok());
        let port = port.unwrap_or_else(|| panic!("no port in {line:?}"));
        OAuthTokenService { child, port }
    }
}

impl Drop for OAuthTokenService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a driver script with the project's virtualenv Python; its JSON.
fn python(script: &Path, args: &[&str]) -> Value {
    let python = manifest().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make pytools`",
        python.display()
    );
    let output = Command::new(python).arg(script).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{} failed:\n{stdout}\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn driver() -> PathBuf {
    manifest().join("tests/oauth1_body/signed_post.py")
}

/// The whole path with the real token service: a consumer with a 1024-bit key (Jira's
/// tutorial's size) dances to an access token (requests-oauthlib, the token service's own
/// driver), then POSTs a form signed over its body through Envoy. The filter reads the body,
/// asks the token service, and Envoy's verify_signature checks the 1024-bit RSA-SHA1
/// signature; the application gets the body byte for byte, as the user, without the
/// credential. The same request with its body changed after signing is refused.
#[test]
fn a_form_post_signed_with_a_1024_bit_key_reaches_the_application_with_its_body_unchanged() {
    let dir = std::env::temp_dir().join(format!("oauth1-body-{}-{}", std::process::id(), now()));
    std::fs::create_dir_all(&dir).unwrap();
    let dir_text = dir.to_str().unwrap();
    python(&driver(), &["keygen", dir_text, "1024"]);
    let service = OAuthTokenService::start(&dir, &dir.join("consumer.pub"));
    let key_file = dir.join("consumer.pem");
    let dance = python(
        &manifest().join("tokenservice/tests/oauth1/dance.py"),
        &[
            &format!("http://127.0.0.1:{}", service.port),
            CONSUMER,
            key_file.to_str().unwrap(),
            CALLBACK,
            "fred",
            "fred-password",
            "approve",
        ],
    );
    let tokens = &dance["access_token"];
    let (token, secret) = (
        tokens["oauth_token"].as_str(),
        tokens["oauth_token_secret"].as_str(),
    );
    let (Some(token), Some(secret)) = (token, secret) else {
        panic!("no access token: {dance}");
    };
    let app = DemoApp::start(0).unwrap();
    let plugin = json!({
        "realm": "jira",
        "oauth1_providers": {"applinks": {
            "introspection": {"cluster": "token_service", "path": "/introspect",
                              "client_id": "tokengate", "client_secret": TOKENS_CLIENT_SECRET},
            "form_body": {"max_bytes": MAX_BYTES, "timeout_ms": TIMEOUT_MS}
        }},
        "rules": [{"path_prefix": "/", "providers": ["applinks"]}]
    });
    let envoy = Envoy::start_with_clusters(
        &plugin.to_string(),
        app.port(),
        &[("token_service", service.port)],
    );
    let url = format!(
        "http://127.0.0.1:{}/rest/api/2/issue/DEMO-1/comment?expand=renderedBody",
        envoy.port
    );
    let body = "body=Hello%20world%21&visibility=role%3AUsers&note=caf%C3%A9+%E2%9C%93";
    let posted = python(
        &driver(),
        &[
            "post",
            &url,
            CONSUMER,
            key_file.to_str().unwrap(),
            token,
            secret,
            body,
        ],
    );
    assert_eq!(posted["status"], 200, "{posted}\n{}", envoy.log());
    let received = app.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(
        received[0].body, body,
        "the body upstream is the body signed and sent"
    );
    assert_eq!(received[0].header("x-tokengate-user"), Some("fred"));
    assert_eq!(received[0].header("authorization"), None);
    assert_eq!(
        envoy.counter("wasmcustom.tokengate.jwt.signatures_checked_by_host"),
        1
    );
    let changed = body.replace("Users", "Admins");
    let refused = python(
        &driver(),
        &[
            "tampered",
            &url,
            CONSUMER,
            key_file.to_str().unwrap(),
            token,
            secret,
            body,
            &changed,
        ],
    );
    assert_eq!(refused["status"], 401, "{refused}");
    let challenge = refused["www_authenticate"].as_str().unwrap_or_default();
    assert!(
        challenge.contains("oauth_problem=\"signature_invalid\""),
        "{refused}"
    );
    assert_eq!(app.received().len(), 1, "the changed body never arrived");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without `allow_on_headers_stop_iteration` Envoy turns the held headers into
/// StopAllIterationAndWatermark and hands the filter no body: a complete signed form then
/// waits for its 408 (nothing reaches anyone), and the log names the setting.
#[test]
fn without_allow_on_headers_stop_iteration_a_form_waits_for_its_408_and_the_log_says_why() {
    let app = DemoApp::start(0).unwrap();
    let token_service = HeldUpstream::start();
    let yaml = bootstrap(
        &oauth1_config(),
        app.port(),
        &[("token_service", token_service.port())],
    );
    let setting = "                allow_on_headers_stop_iteration: true\n";
    assert!(yaml.contains(setting));
    let envoy = Envoy::try_start_yaml(&yaml.replacen(setting, "", 1)).unwrap_or_else(|log| panic!("{log}"));
    let body = "body=whole";
    let request = format!("{}{body}", form_head(&format!("content-length: {}", body.len())));
    let (response, took) = exchange(envoy.port, request.as_bytes());
    assert_eq!(response.status, 408, "{response:?}");
    assert!(took >= Duration::from_millis(TIMEOUT_MS - 50), "{took:?}");
    assert!(
        envoy
            .log()
            .contains("set `allow_on_headers_stop_iteration: true`"),
        "{}",
        envoy.log()
    );
    assert!(app.received().is_empty());
    assert!(token_service.received().is_empty());
}

/// What the setting costs: with it, the body of a request held for a callout is buffered (the
/// SDK's only pause for a body chunk is StopIterationAndBuffer), so an upload that passes
/// Envoy's buffer limit (`per_connection_buffer_limit_bytes`, 1 MiB) before the answer is
/// Envoy's 413; without it Envoy holds the body with backpressure and the upload goes through.
#[test]
fn an_upload_held_for_a_callout_past_envoys_buffer_limit_is_413_with_the_setting_and_passes_without() {
    let app = DemoApp::start(0).unwrap();
    let config = json!({
        "realm": "jira",
        "oauth_providers": {"kc": {
            "introspection": {"cluster": "idp", "path": "/introspect", "client_id": "tokengate",
                              "client_secret": "client-secret"},
            "timeout_ms": 5000, "cache_ttl_seconds": 0
        }},
        "rules": [{"path_prefix": "/", "providers": ["kc"]}]
    })
    .to_string();
    let setting = "                allow_on_headers_stop_iteration: true\n";
    for with_setting in [true, false] {
        let idp = HeldUpstream::start();
        let yaml = bootstrap(&config, app.port(), &[("idp", idp.port())]);
        let yaml = if with_setting {
            yaml
        } else {
            yaml.replacen(setting, "", 1)
        };
        let envoy = Envoy::try_start_yaml(&yaml).unwrap_or_else(|log| panic!("{log}"));
        let body = "x".repeat(2 << 20);
        let request = format!(
            "POST /rest/api/2/issue/DEMO-1/attachments HTTP/1.1\r\nhost: jira\r\nauthorization: Bearer opaque-upload\r\n\
             content-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let port = envoy.port;
        let client = std::thread::spawn(move || exchange(port, request.as_bytes()).0);
        if with_setting {
            // Past the limit before the question even went out.
            assert_eq!(client.join().unwrap().status, 413);
            assert!(app.received().is_empty());
            continue;
        }
        idp.wait_for_requests(1, Duration::from_secs(10));
        idp.release_all(introspection(true));
        let response = client.join().unwrap();
        assert_eq!(response.status, 200, "{response:?}");
        assert_eq!(app.received().len(), 1);
    }
}
