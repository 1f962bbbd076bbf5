//! Requests that wait for a callout (issue 12's five scenarios, and a provider that hangs up),
//! through the real Envoy with the built module: the introspection provider, the directory and
//! the JWKS server are [`HeldUpstream`]s, so the test answers each callout when Envoy's stats
//! (or the upstream) show the state it needs, never after a sleep. Envoy runs one worker, so
//! every request meets the same Wasm VM.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokengate_demo::keys::{jwks, TestKey};

const AUDIENCE: &str = "https://jira.test";
const ISSUER: &str = "https://idp.example.com";
/// How long any one step may take before the test gives up on it.
const STEP: Duration = Duration::from_secs(5);
/// A JWT request's wait for the first JWKS (shorter than the fetch timeout).
const KEYS_WAIT: Duration = Duration::from_millis(2000);

const COALESCED: &str = "wasmcustom.tokengate.introspection.coalesced";
const IN_FLIGHT: &str = "wasmcustom.tokengate.questions.in_flight";
const WAITING: &str = "wasmcustom.tokengate.questions.waiting";
const JWKS_WAITED: &str = "wasmcustom.tokengate.jwks.waited";
const JWKS_FETCHED: &str = "wasmcustom.tokengate.jwks.fetch_ok";
const RQ_ACTIVE: &str = "http.ingress.downstream_rq_active";
const HUNG_UP: &str = "http.ingress.downstream_cx_destroy_remote_active_rq";

/// An opaque-token provider and a directory callout, both with timeouts longer than any test.
fn opaque_config() -> String {
    json!({
        "realm": "jira",
        "oauth_providers": {"kc": {
            "introspection": {"cluster": "kc", "path": "/introspect", "client_id": "tokengate", "client_secret": "client-secret"},
            "timeout_ms": 8000,
            "audiences": [AUDIENCE],
            "cache_ttl_seconds": 300,
            "negative_cache_ttl_seconds": 300
        }},
        "rules": [{"path_prefix": "/", "providers": ["kc"]}],
        "directory": {"callout": {"cluster": "directory", "timeout_ms": 8000}}
    })
    .to_string()
}

/// A remote-JWKS provider whose requests wait [`KEYS_WAIT`] for keys fetched with a longer timeout.
fn jwks_config() -> String {
    json!({
        "realm": "jira",
        "jwt_providers": {"idp": {
            "issuer": ISSUER,
            "remote_jwks": {"cluster": "idp", "path": "/jwks.json", "timeout_ms": 8000,
                            "wait_ms": KEYS_WAIT.as_millis() as u64, "refresh_interval_seconds": 300}
        }}
    })
    .to_string()
}

/// The provider's introspection answer: `fred`, active for ten minutes.
fn fred_is_active() -> Reply {
    Reply::json(
        200,
        &json!({"active": true, "username": "fred", "exp": now() + 600, "aud": [AUDIENCE]}),
    )
}

/// The directory's answer for `fred`.
fn fred_in_directory() -> Reply {
    Reply::json(200, &json!({"name": "fred", "active": true}))
}

fn signed(key: &TestKey, sub: &str) -> String {
    key.sign(&json!({"iss": ISSUER, "sub": sub, "exp": now() + 600}))
}

/// One client request on its own connection, answered on a thread of its own.
struct Client {
    sent: Instant,
    /// A second handle on the connection, to hang up.
    stream: TcpStream,
    answer: mpsc::Receiver<std::io::Result<Response>>,
}

impl Client {
    /// `GET path` with `Bearer token`, the connection kept open after the answer.
    fn send(envoy: &Envoy, path: &str, token: &str) -> Client {
        let mut stream = TcpStream::connect(("127.0.0.1", envoy.port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let request =
            format!("GET {path} HTTP/1.1\r\nhost: jira.test\r\nauthorization: Bearer {token}\r\n\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut reader = stream.try_clone().unwrap();
        let (tx, answer) = mpsc::channel();
        std::thread::spawn(move || tx.send(read_response(&mut reader)));
        Client {
            sent: Instant::now(),
            stream,
            answer,
        }
    }

    /// The response, or a panic naming `who` if none came within `within`.
    fn answered_within(&self, who: &str, within: Duration, envoy: &Envoy) -> Response {
        match self.answer.recv_timeout(within) {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => panic!("{who}: the connection failed: {e}\n{}", envoy.log()),
            Err(_) => panic!(
                "{who} got no response {:?} after it was sent (it hangs)\n{}",
                self.sent.elapsed(),
                envoy.log()
            ),
        }
    }

    /// The response (or the failure) if it has come.
    fn is_answered(&self) -> Option<std::io::Result<Response>> {
        self.answer.try_recv().ok()
    }

    /// The client closes its connection before any answer.
    fn hang_up(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Bytes Envoy sent on the connection after the response (none expected), read for `within`.
    fn more_bytes(&mut self, within: Duration) -> Vec<u8> {
        self.stream.set_read_timeout(Some(within)).unwrap();
        let mut bytes = vec![0_u8; 4096];
        match self.stream.read(&mut bytes) {
            Ok(n) => bytes.truncate(n),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => bytes.clear(),
            Err(e) => panic!("reading the connection again: {e}"),
        }
        bytes
    }
}

fn app_paths(app: &Server) -> Vec<String> {
    let mut paths: Vec<String> = app.received().iter().map(|r| r.path.clone()).collect();
    paths.sort();
    paths
}

fn message(response: &Response) -> String {
    let json: Value = response.json();
    json["error"]["message"].as_str().unwrap_or_default().to_owned()
}

/// Waits until no request is open in Envoy but `open` (after a client hung up).
fn wait_for_hang_up(envoy: &Envoy, open: u64) {
    envoy.wait_for_counter(HUNG_UP, 1, STEP);
    envoy.wait_for_gauge(RQ_ACTIVE, open, STEP);
}

/// Issue 12's hang: B joins A's introspection; each then needs a directory lookup for the same
/// user, and A is answered first. B must be answered too (before issue 12, B's lookup was filed
/// by the SDK under A's context, gone by then, and its answer dropped: B hung).
#[test]
fn a_request_that_joined_another_s_question_is_answered_after_the_other_is_done() {
    let app = DemoApp::start(0).unwrap();
    let (kc, directory) = (HeldUpstream::start(), HeldUpstream::start());
    let envoy = Envoy::start_single_worker(
        &opaque_config(),
        app.port(),
        &[("kc", kc.port()), ("directory", directory.port())],
    );

    let a = Client::send(&envoy, "/a", "shared-opaque");
    let asked = kc.wait_for_requests(1, STEP);
    assert_eq!(
        asked[0].request.body,
        "token=shared-opaque&token_type_hint=access_token"
    );
    let b = Client::send(&envoy, "/b", "shared-opaque");
    envoy.wait_for_counter(COALESCED, 1, STEP);
    kc.release(0, fred_is_active());

    // The first lookup (A's: the answer continues A, then B) is answered; A's response is read
    // before anything else B waits for is released.
    let lookups = directory.wait_for_requests(1, STEP);
    assert_eq!(lookups[0].request.path, "/rest/api/2/user?username=fred");
    directory.release(0, fred_in_directory());
    let first = a.answered_within("A", STEP, &envoy);
    assert_eq!(first.status, 200, "{first:?}");
    directory.release_all(fred_in_directory());
    let second = b.answered_within(
        "B (after A's lookup, then every other, was answered)",
        STEP,
        &envoy,
    );
    assert_eq!(second.status, 200, "{second:?}");

    assert_eq!(app_paths(&app), ["/a", "/b"]);
    assert_eq!(kc.received().len(), 1, "one introspection for both requests");
    assert!(directory.received().len() <= 2, "{:?}", directory.received());
}

/// A asks, B joins, A's client hangs up before the answer: B still gets it.
#[test]
fn when_the_request_that_asked_hangs_up_the_one_waiting_with_it_is_answered() {
    let app = DemoApp::start(0).unwrap();
    let directory = DemoApp::start(0).unwrap();
    let kc = HeldUpstream::start();
    let envoy = Envoy::start_single_worker(
        &opaque_config(),
        app.port(),
        &[("kc", kc.port()), ("directory", directory.port())],
    );

    let a = Client::send(&envoy, "/a", "owner-leaves");
    kc.wait_for_requests(1, STEP);
    let b = Client::send(&envoy, "/b", "owner-leaves");
    envoy.wait_for_counter(COALESCED, 1, STEP);
    a.hang_up();
    wait_for_hang_up(&envoy, 1);
    // Every introspection (one, or a second one asked again for B) gets the answer.
    kc.release_all(fred_is_active());

    let response = b.answered_within("B", STEP, &envoy);
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(app_paths(&app), ["/b"], "the application saw B only");
    assert_eq!(directory.count("/rest/api/2/user"), 1);
}

/// A asks alone and hangs up during its callout: the late answer reaches nobody, and the
/// worker's question table is empty afterwards.
#[test]
fn when_a_request_hangs_up_during_its_own_question_nothing_reaches_the_application_or_leaks() {
    let app = DemoApp::start(0).unwrap();
    let (kc, directory) = (HeldUpstream::start(), HeldUpstream::start());
    let envoy = Envoy::start_single_worker(
        &opaque_config(),
        app.port(),
        &[("kc", kc.port()), ("directory", directory.port())],
    );

    let a = Client::send(&envoy, "/a", "alone");
    kc.wait_for_requests(1, STEP);
    envoy.wait_for_gauge(IN_FLIGHT, 1, STEP);
    envoy.wait_for_gauge(WAITING, 1, STEP);
    a.hang_up();
    wait_for_hang_up(&envoy, 0);
    envoy.wait_for_gauge(WAITING, 0, STEP);
    kc.release(0, fred_is_active());
    envoy.wait_for_gauge(IN_FLIGHT, 0, STEP);
    envoy.wait_for_gauge(WAITING, 0, STEP);
    assert!(app.received().is_empty(), "{:?}", app.received());
    assert!(
        directory.received().is_empty(),
        "a lookup for a request that is gone"
    );

    // The worker still serves: the same token again (from the cache or asked again) passes.
    kc.release_all(fred_is_active());
    directory.release_all(fred_in_directory());
    let again = Client::send(&envoy, "/again", "alone").answered_within("again", STEP, &envoy);
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(app_paths(&app), ["/again"]);
}

/// A waits for the first JWKS; B arrives later. A's wait ends at its own deadline with the
/// keys-unavailable 503 while B keeps waiting, and B is answered when the keys come.
#[test]
fn one_request_times_out_waiting_for_keys_while_a_later_one_keeps_waiting_and_passes() {
    let key = TestKey::es256("ec-1");
    let app = DemoApp::start(0).unwrap();
    let keys = HeldUpstream::start();
    let envoy = Envoy::start_single_worker(&jwks_config(), app.port(), &[("idp", keys.port())]);

    // (The first fetch may start with the configuration or with the first request.)
    let mut a = Client::send(&envoy, "/a", &signed(&key, "fred"));
    envoy.wait_for_counter(JWKS_WAITED, 1, STEP);
    keys.wait_for_requests(1, STEP);
    // Deadlines are the subject here: B arrives halfway through A's wait, so that its own
    // deadline is half a wait after A's (not an ordering by sleep: both waits are polled).
    let halfway = a.sent + KEYS_WAIT / 2;
    std::thread::sleep(halfway.saturating_duration_since(Instant::now()));
    let b = Client::send(&envoy, "/b", &signed(&key, "jsmith"));
    envoy.wait_for_counter(JWKS_WAITED, 2, STEP);

    let first = a.answered_within("A", STEP, &envoy);
    let waited = a.sent.elapsed();
    assert_eq!(
        (first.status, message(&first).as_str()),
        (503, "Service Unavailable: The signing keys could not be loaded."),
        "{first:?}"
    );
    assert!(
        waited >= KEYS_WAIT - Duration::from_millis(100) && waited < KEYS_WAIT + KEYS_WAIT / 2,
        "A waited {waited:?}, not its {KEYS_WAIT:?}"
    );
    assert!(
        b.is_answered().is_none(),
        "B was answered with A, before its own deadline"
    );

    keys.release_all(Reply::json(200, &jwks(&[&key])));
    let second = b.answered_within("B", STEP, &envoy);
    assert_eq!(second.status, 200, "{second:?}");
    assert!(
        b.sent.elapsed() < KEYS_WAIT,
        "B was answered at its deadline, not when the keys came"
    );
    let extra = a.more_bytes(Duration::from_millis(200));
    assert!(
        extra.is_empty(),
        "A got a second reply: {:?}",
        String::from_utf8_lossy(&extra)
    );
    assert_eq!(app_paths(&app), ["/b"]);
}

/// The JWKS comes after the only waiting request was answered 503: the late answer is used for
/// the keys, never for a second reply, and the worker keeps serving.
#[test]
fn keys_that_arrive_after_the_request_was_answered_change_nothing_for_it() {
    let key = TestKey::es256("ec-1");
    let app = DemoApp::start(0).unwrap();
    let keys = HeldUpstream::start();
    let envoy = Envoy::start_single_worker(&jwks_config(), app.port(), &[("idp", keys.port())]);

    let mut a = Client::send(&envoy, "/a", &signed(&key, "fred"));
    envoy.wait_for_counter(JWKS_WAITED, 1, STEP);
    keys.wait_for_requests(1, STEP);
    let first = a.answered_within("A", STEP, &envoy);
    assert_eq!(first.status, 503, "{first:?}");

    keys.release_all(Reply::json(200, &jwks(&[&key])));
    // Every fetch's answer has been read (by whichever VM asked) before the next request.
    envoy.wait_for_counter(JWKS_FETCHED, keys.received().len() as u64, STEP);
    let later = Client::send(&envoy, "/later", &signed(&key, "fred"));
    let response = later.answered_within("the later request", STEP, &envoy);
    assert_eq!(response.status, 200, "{response:?}");

    let extra = a.more_bytes(Duration::from_millis(300));
    assert!(
        extra.is_empty(),
        "A got a second reply: {:?}",
        String::from_utf8_lossy(&extra)
    );
    assert_eq!(app_paths(&app), ["/later"], "A never reached the application");
    let log = envoy.log();
    assert!(!log.contains("panicked"), "{log}");
}

/// The provider hangs up on a question two requests wait for: both get the provider-unavailable
/// 503 at once (not at a timeout), and nothing reaches the application.
#[test]
fn a_provider_that_hangs_up_answers_every_request_waiting_for_it_with_a_503() {
    let app = DemoApp::start(0).unwrap();
    let (kc, directory) = (HeldUpstream::start(), HeldUpstream::start());
    let envoy = Envoy::start_single_worker(
        &opaque_config(),
        app.port(),
        &[("kc", kc.port()), ("directory", directory.port())],
    );

    let a = Client::send(&envoy, "/a", "provider-leaves");
    kc.wait_for_requests(1, STEP);
    let b = Client::send(&envoy, "/b", "provider-leaves");
    envoy.wait_for_counter(COALESCED, 1, STEP);
    let hung_up = Instant::now();
    kc.release(0, Reply::hang_up());

    for (who, client) in [("A", &a), ("B", &b)] {
        let response = client.answered_within(who, STEP, &envoy);
        assert_eq!(
            (response.status, message(&response).as_str()),
            (
                503,
                "Service Unavailable: The token provider could not be reached."
            ),
            "{who}: {response:?}"
        );
    }
    assert!(
        hung_up.elapsed() < Duration::from_secs(2),
        "answered {:?} after the provider hung up: at a timeout",
        hung_up.elapsed()
    );
    assert!(app.received().is_empty() && directory.received().is_empty());
    assert_eq!(kc.received().len(), 1, "asked once, not again for B");
}
