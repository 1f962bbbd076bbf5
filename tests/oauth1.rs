//! OAuth 1.0a application links end to end (issue 13, seed 002): the real token service (its
//! binary, with two consumers X and Y whose RSA keys the test makes, Y's 1024-bit) behind the
//! real Envoy (`--concurrency 2`, the built module, an `oauth1_providers` entry), and the demo
//! application as the upstream that records what it receives.
//!
//! Real clients drive it (tests/oauth1/*.py, with the project's virtualenv): requests-oauthlib's
//! `OAuth1Session` performs the dance, the authorisation page driven as a browser would;
//! jira-python's `JIRA(oauth=...)` signs with the access token it got; oauthlib's `Client`
//! signs the requests the test then sends as they are or changed after signing.
//!
//! jira-python (3.10.5, `JIRA._create_oauth_session`) tries, in order, `oauth["signature_method"]`
//! when given, then HMAC-SHA1, then RSA-SHA1, building a requests-oauthlib `OAuth1` for each and
//! calling `myself()`; it goes on to the next on a `JIRAError` (any refused answer) and raises
//! when the attempt with oauthlib's own `SIGNATURE_RSA` object fails (an identity test: a given
//! `"RSA-SHA1"` that is that object and fails raises at once, without trying HMAC-SHA1); other
//! errors (a refused connection) propagate. So without `signature_method` every construction
//! sends one HMAC-SHA1 request that an RSA-only server refuses before the RSA-SHA1 one: a
//! refused signature method must not count as a failed login, or ten constructions would lock
//! the user out.
//!
//! Each test is one group of scenarios over one token service and one Envoy (starting them is
//! most of the runtime). Every scenario runs and is reported, passed or failed, and the test
//! fails at the end if any did: one unfinished branch does not hide what the others show.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::*;
use serde_json::{json, Value};
use std::net::TcpStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const API: &str = "/rest/de.resolution.apitokenauth/latest";
/// The callback both consumers register (never called: the test reads the 302's `Location`).
const CALLBACK: &str = "http://127.0.0.1:9/callback";
const X: &str = "consumer-x";
const Y: &str = "consumer-y";
const WORKERS: u32 = 2;
/// The body of the signed form POST: UTF-8, an escaped `&`, an empty value.
const FORM: &str = "body=Hello+w%C3%B6rld%21&tag=a%26b&empty=";
/// A JSON body (Jira's REST API): not part of the signature (RFC 5849 section 3.4.1.3.1).
const JSON_BODY: &str = r#"{"fields":{"project":{"key":"DEMO"},"summary":"caf\u00e9 & more"}}"#;
/// A search as Jira clients send it: escapes, `+`, a repeated parameter, an empty value.
const JQL: &str = "/rest/api/2/search?jql=project%20%3D%20DEMO%20ORDER%20BY%20key&fields=summary&fields=status&q=a+b&empty=";

// ---------------------------------------------------------------------------------------------
// Scenarios: each runs, each is reported.

/// The scenarios of one group: what passed, what failed and why.
struct Scenarios {
    group: &'static str,
    passed: Vec<String>,
    failed: Vec<(String, String)>,
}

impl Scenarios {
    fn new(group: &'static str) -> Scenarios {
        Scenarios {
            group,
            passed: Vec::new(),
            failed: Vec::new(),
        }
    }

    /// Runs one scenario; `None` (and the failure recorded) if it panicked.
    fn run<T>(&mut self, name: &str, scenario: impl FnOnce() -> T) -> Option<T> {
        match catch_unwind(AssertUnwindSafe(scenario)) {
            Ok(value) => {
                eprintln!("[{}] PASS {name}", self.group);
                self.passed.push(name.to_owned());
                Some(value)
            }
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                eprintln!("[{}] FAIL {name}", self.group);
                self.failed.push((name.to_owned(), message));
                None
            }
        }
    }

    /// Runs a scenario that needs what an earlier one made; recorded as failed if it is missing.
    fn after<D, T>(&mut self, name: &str, needs: Option<&D>, scenario: impl FnOnce(&D) -> T) -> Option<T> {
        match needs {
            Some(needs) => self.run(name, || scenario(needs)),
            None => {
                eprintln!("[{}] NOT RUN {name}", self.group);
                self.failed.push((
                    name.to_owned(),
                    "not run: an earlier scenario it needs failed".to_owned(),
                ));
                None
            }
        }
    }

    fn finish(self) {
        let mut report = format!(
            "{}: {} passed, {} failed\n",
            self.group,
            self.passed.len(),
            self.failed.len()
        );
        for name in &self.passed {
            report.push_str(&format!("  pass: {name}\n"));
        }
        for (name, why) in &self.failed {
            report.push_str(&format!("  FAIL: {name}\n    {}\n", why.replace('\n', "\n    ")));
        }
        eprintln!("{report}");
        assert!(self.failed.is_empty(), "{report}");
    }
}

// ---------------------------------------------------------------------------------------------
// The Python drivers.

fn python() -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make pytools` (part of `make test`)",
        python.display()
    );
    python
}

/// Runs tests/oauth1/`script` with `arg` as JSON; its last line of output is JSON.
fn drive(script: &str, arg: &Value) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/oauth1")
        .join(script);
    let output = Command::new(python())
        .arg(path)
        .arg(arg.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{script}: not JSON ({e}): {stdout}\n{stderr}"))
}

/// A directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("tokengate-oauth1-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The consumers' key pairs, made by tests/oauth1/keys.py.
struct Keys {
    _dir: Scratch,
    /// Private keys (PEM) of X and Y.
    x: String,
    y: String,
    /// Public keys (PEM files) of X and Y.
    x_public: String,
    y_public: String,
}

impl Keys {
    fn make() -> Keys {
        let dir = Scratch::new();
        let made = drive("keys.py", &json!(dir.0));
        let path = |name: &str, which: &str| made[name][which].as_str().unwrap().to_owned();
        Keys {
            x: path("x", "private"),
            y: path("y", "private"),
            x_public: path("x", "public"),
            y_public: path("y", "public"),
            _dir: dir,
        }
    }
}

/// A request signed by tests/oauth1/sign.py, not sent yet.
#[derive(Debug, Clone)]
struct Signed {
    url: String,
    authorization: String,
    body: Option<String>,
}

/// The requests a driver signed (a JSON list).
fn signed_of(list: &Value) -> Vec<Signed> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|signed| Signed {
            url: signed["url"].as_str().unwrap().to_owned(),
            authorization: signed["authorization"].as_str().unwrap().to_owned(),
            body: signed["body"].as_str().map(str::to_owned),
        })
        .collect()
}

/// What the access-token step gave the consumer.
#[derive(Debug, Clone)]
struct AccessToken {
    token: String,
    secret: String,
}

// ---------------------------------------------------------------------------------------------
// The stack.

struct Stack {
    app: Server,
    tokens: TokenService,
    envoy: Envoy,
    keys: Keys,
    /// `http://127.0.0.1:<Envoy's port>`: what the clients use (and sign at the token service).
    base: String,
    /// What clients sign requests to the filter over: the provider's `public_base_url` (as
    /// behind a TLS-terminating proxy) if configured, else `base`.
    signing_base: String,
}

/// The token service's `oauth1` section: X by key file, Y inline; `overrides` replace fields.
fn token_service_oauth1(keys: &Keys, overrides: &Value) -> Value {
    let y_public = std::fs::read_to_string(&keys.y_public).unwrap();
    let mut oauth1 = json!({
        "consumers": [
            {"consumer_key": X, "name": "Application X", "public_key_file": keys.x_public,
             "callbacks": [CALLBACK]},
            {"consumer_key": Y, "name": "Application Y", "public_key": y_public,
             "callbacks": [CALLBACK]}
        ],
        "min_key_bits": 1024,
        "timestamp_window_seconds": 300,
        "request_token_ttl_seconds": 600,
        "access_token_ttl_seconds": 157_680_000,
        "authorization_ttl_seconds": 160_704_000
    });
    merge(&mut oauth1, overrides);
    oauth1
}

/// The filter's configuration: the dance and the token service's REST API to the token
/// service unauthenticated (it checks its own callers), everything else signed requests of the
/// `applinks` provider or API tokens.
fn filter_config(provider_overrides: &Value) -> Value {
    let introspection = json!({"cluster": "tokens", "path": "/introspect", "client_id": "tokengate",
                               "client_secret": TOKENS_CLIENT_SECRET});
    let mut applinks = json!({
        "introspection": introspection,
        "timeout_ms": 1000,
        "cache_ttl_seconds": 1,
        "negative_cache_ttl_seconds": 1,
        "timestamp_window_seconds": 300,
        "nonce_store": {"buckets": 1024, "per_bucket": 32},
        "form_body": {"max_bytes": 65536, "timeout_ms": 5000}
    });
    merge(&mut applinks, provider_overrides);
    json!({
        "realm": "jira",
        "oauth1_providers": {"applinks": applinks},
        "api_token_providers": {
            "apitokens": {"introspection": introspection, "cache_ttl_seconds": 1,
                          "negative_cache_ttl_seconds": 1, "locked_cache_ttl_seconds": 1}
        },
        "rules": [
            {"path_prefix": "/plugins/servlet/oauth/", "providers": [], "allow_anonymous": true},
            {"path_prefix": "/rest/de.resolution.apitokenauth/", "providers": [], "allow_anonymous": true},
            {"path_prefix": "/", "providers": ["applinks", "apitokens"]}
        ],
        "directory": {"callout": {"cluster": "app", "path": "/rest/api/2/user?username={user}"}}
    })
}

fn merge(into: &mut Value, overrides: &Value) {
    if let (Some(into), Some(overrides)) = (into.as_object_mut(), overrides.as_object()) {
        for (name, value) in overrides {
            into.insert(name.clone(), value.clone());
        }
    }
}

impl Stack {
    /// `oauth1`: overrides of the token service's `oauth1` section; `provider`: of the
    /// filter's `applinks` provider.
    fn start(oauth1: &Value, provider: &Value) -> Stack {
        let mut keys = Some(Keys::make());
        for _ in 0..3 {
            match Self::try_start(keys.take().unwrap(), oauth1, provider) {
                Ok(stack) => return stack,
                Err(failed) => {
                    let (unused, log) = *failed;
                    // Another process took the port picked for Envoy: start again on another.
                    if !log.contains("Address already in use") {
                        panic!("Envoy did not become ready:\n{log}");
                    }
                    keys = Some(unused);
                }
            }
        }
        panic!("Envoy's port was taken three times");
    }

    fn try_start(keys: Keys, oauth1: &Value, provider: &Value) -> Result<Stack, Box<(Keys, String)>> {
        // The token service must know the base URL clients sign before Envoy listens on it.
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let tokens = TokenService::start_with_config(&json!({
            "public_base_urls": [base],
            "oauth1": token_service_oauth1(&keys, oauth1),
        }));
        let app = DemoApp::start(0).unwrap();
        let signing_base = provider["public_base_url"]
            .as_str()
            .map_or_else(|| base.clone(), str::to_owned);
        let config = filter_config(provider).to_string();
        let yaml = bootstrap_with_hcm(
            &config,
            app.port(),
            &[("tokens", tokens.port)],
            &[
                ("/plugins/servlet/oauth/", "tokens"),
                ("/rest/de.resolution.apitokenauth/", "tokens"),
            ],
            "",
        );
        let envoy = match Envoy::try_start_yaml_with_workers(&with_listener_port(&yaml, port), WORKERS) {
            Ok(envoy) => envoy,
            Err(log) => return Err(Box::new((keys, log))),
        };
        assert_eq!(envoy.port, port);
        Ok(Stack {
            app,
            tokens,
            envoy,
            keys,
            base,
            signing_base,
        })
    }

    /// The dance by requests-oauthlib (tests/oauth1/dance.py) as consumer X.
    /// `sign`: paths of GETs it signs with the new access token before it exits (`signed`).
    fn dance(&self, user: &str, button: &str, myself: bool, sign: &[String]) -> Value {
        self.dance_as(X, &self.keys.x, user, button, myself, sign)
    }

    /// [`Stack::dance`] as the consumer `consumer_key` signing with `key_file`.
    fn dance_as(
        &self,
        consumer_key: &str,
        key_file: &str,
        user: &str,
        button: &str,
        myself: bool,
        sign: &[String],
    ) -> Value {
        let sign: Vec<Value> = sign.iter().map(|path| json!({"path": path})).collect();
        drive(
            "dance.py",
            &json!({"base": self.base, "consumer_key": consumer_key, "key_file": key_file,
                    "callback": CALLBACK, "user": user, "password": format!("{user}-password"),
                    "button": button, "myself": myself, "spare_request_token": true,
                    "sign": sign, "sign_base": self.signing_base}),
        )
    }

    /// A dance as X whose login first tries `wrong` passwords on the authorize page.
    fn dance_after_wrong_passwords(&self, user: &str, wrong: &[&str]) -> Value {
        drive(
            "dance.py",
            &json!({"base": self.base, "consumer_key": X, "key_file": self.keys.x,
                    "callback": CALLBACK, "user": user, "password": format!("{user}-password"),
                    "wrong_passwords": wrong, "myself": false}),
        )
    }

    /// Signs each `(consumer key, key file, token, method, path, body, signature method,
    /// timestamp, nonce)` given as JSON fields over the stack's base URL.
    fn sign(&self, specs: &[Value]) -> Vec<Signed> {
        let specs: Vec<Value> = specs
            .iter()
            .map(|spec| {
                let mut spec = spec.clone();
                let path = spec["path"].as_str().unwrap().to_owned();
                let base = spec["base"].as_str().unwrap_or(&self.signing_base).to_owned();
                spec["url"] = json!(format!("{base}{path}"));
                spec
            })
            .collect();
        signed_of(&drive("sign.py", &json!(specs)))
    }

    /// A GET of `path` signed by consumer X with `token` (RSA-SHA1), with `extra` fields.
    fn spec(&self, token: &AccessToken, path: &str, extra: Value) -> Value {
        let mut spec = json!({"path": path, "method": "GET", "consumer_key": X,
                              "key_file": self.keys.x, "token": token.token,
                              "token_secret": token.secret, "signature_method": "RSA-SHA1"});
        merge(&mut spec, &extra);
        spec
    }

    fn host(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    /// The bytes of `method path` with `authorization` and a form `body`.
    fn request(&self, method: &str, path: &str, authorization: Option<&str>, body: Option<&str>) -> Vec<u8> {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n",
            self.host()
        );
        if let Some(authorization) = authorization {
            request.push_str(&format!("authorization: {authorization}\r\n"));
        }
        if let Some(body) = body {
            request.push_str(&format!(
                "content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n",
                body.len()
            ));
        }
        request.push_str("\r\n");
        request.push_str(body.unwrap_or_default());
        request.into_bytes()
    }

    fn path_of<'a>(&self, signed: &'a Signed) -> &'a str {
        signed
            .url
            .strip_prefix(&self.signing_base)
            .or_else(|| signed.url.strip_prefix(&self.base))
            .unwrap()
    }

    /// Sends `signed` as it was signed (`GET`, or `POST` with its form body).
    fn send(&self, signed: &Signed) -> Response {
        let method = if signed.body.is_some() { "POST" } else { "GET" };
        let request = self.request(
            method,
            self.path_of(signed),
            Some(&signed.authorization),
            signed.body.as_deref(),
        );
        self.envoy.raw(&request)
    }

    /// `method path` with Basic `user:secret` and a JSON body, to the token service's REST API.
    fn rest(&self, method: &str, path: &str, user: &str, secret: &str, body: Option<&Value>) -> Response {
        let body = body.map(Value::to_string).unwrap_or_default();
        let auth = STANDARD.encode(format!("{user}:{secret}"));
        let request = format!(
            "{method} {API}{path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\nauthorization: Basic {auth}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            self.host(),
            body.len()
        );
        self.envoy.raw(request.as_bytes())
    }

    /// How many requests for exactly `path` the application received.
    fn reached(&self, path: &str) -> usize {
        self.app.received().iter().filter(|r| r.path == path).count()
    }

    /// Asserts the application never received a request for `path`.
    fn never_reached(&self, path: &str) {
        let seen: Vec<Received> = self
            .app
            .received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect();
        assert!(
            seen.is_empty(),
            "a refused request reached the application: {seen:?}"
        );
    }

    /// Each worker's `downstream_cx_total` on the listener, by worker number.
    fn connections_per_worker(&self) -> Vec<u64> {
        let prefix = format!("listener.127.0.0.1_{}.worker_", self.envoy.port);
        let stats = self.envoy.admin("/stats").map(|r| r.body).unwrap_or_default();
        let mut counts = vec![0; WORKERS as usize];
        for line in stats.lines() {
            let Some(rest) = line.strip_prefix(&prefix) else {
                continue;
            };
            let Some((worker, count)) = rest.split_once(".downstream_cx_total: ") else {
                continue;
            };
            counts[worker.parse::<usize>().unwrap()] = count.trim().parse().unwrap();
        }
        counts
    }

    /// Two open connections that two different workers accepted. Which worker takes a
    /// connection is the kernel's choice (one `SO_REUSEPORT` listener per worker), so
    /// connections are opened until one lands on the other worker.
    fn connections_on_two_workers(&self) -> (TcpStream, TcpStream) {
        let mut first: Option<(usize, TcpStream)> = None;
        for _ in 0..200 {
            let before = self.connections_per_worker();
            let stream = TcpStream::connect(("127.0.0.1", self.envoy.port)).unwrap();
            let deadline = Instant::now() + Duration::from_secs(5);
            let worker = loop {
                let now = self.connections_per_worker();
                if let Some(worker) = (0..now.len()).find(|&w| now[w] > before[w]) {
                    break worker;
                }
                assert!(Instant::now() < deadline, "no worker accepted the connection");
                std::thread::sleep(Duration::from_millis(10));
            };
            match first.take() {
                None => first = Some((worker, stream)),
                Some((taken, earlier)) if taken != worker => return (earlier, stream),
                Some(same) => first = Some(same),
            }
        }
        panic!("200 connections did not reach both workers");
    }
}

// ---------------------------------------------------------------------------------------------
// Assertions on answers.

fn values<'a>(response: &'a Response, name: &str) -> Vec<&'a str> {
    response
        .headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The filter's `errorMessages[0]` for each `oauth_problem` (README, the OAuth 1.0a family).
fn message(problem: &str) -> &'static str {
    match problem {
        "parameter_rejected" => {
            "An OAuth parameter is malformed, repeated, or outside the Authorization header."
        }
        "signature_method_rejected" => "The OAuth signature method is not accepted: sign with RSA-SHA1.",
        "timestamp_refused" => {
            "The OAuth timestamp is outside the accepted window: check the client's clock."
        }
        "parameter_absent" => "A required OAuth parameter is missing.",
        "version_rejected" => "The OAuth version is not 1.0.",
        "consumer_key_unknown" => "The OAuth consumer is not known.",
        "token_rejected" => "The OAuth access token is not valid.",
        "token_expired" => "The OAuth access token has expired.",
        "signature_invalid" => "OAuth signature is invalid for this request.",
        "nonce_used" => "The OAuth nonce has already been used.",
        other => panic!("no message for {other}"),
    }
}

const NOT_AUTHENTICATED: &str =
    "You are not authenticated. Authentication required to perform this operation.";
const NONCE_STORE_FULL: &str = "The OAuth nonce store is full. Please try again later.";

/// Jira's error collection `{"errorMessages":[message],"errors":{}}`, as the filter refuses.
fn assert_jira_error_is(response: &Response, message: &str) {
    assert_jira_error(response);
    assert_eq!(response.json()["errorMessages"][0], message, "{response:?}");
}

/// Jira's error collection, as the filter answers a refusal: one message, no field errors.
fn assert_jira_error(response: &Response) {
    assert_eq!(
        response.header("content-type"),
        Some("application/json;charset=UTF-8"),
        "{response:?}"
    );
    assert_eq!(response.header("cache-control"), Some("no-store"), "{response:?}");
    let body = response.json();
    assert_eq!(body["errors"], json!({}), "{response:?}");
    let messages = body["errorMessages"].as_array().unwrap();
    assert!(
        messages.len() == 1 && messages[0].as_str().is_some_and(|m| !m.is_empty()),
        "{response:?}"
    );
}

/// The filter's refusal: 401, `WWW-Authenticate: OAuth realm="<realm>", oauth_problem="<problem>"`
/// first, Jira's error body.
fn assert_refused(response: &Response, realm: &str, problem: &str) {
    assert_eq!(response.status, 401, "{response:?}");
    assert_eq!(
        values(response, "www-authenticate").first().copied(),
        Some(format!(r#"OAuth realm="{realm}", oauth_problem="{problem}""#).as_str()),
        "{response:?}"
    );
    assert_jira_error_is(response, message(problem));
}

/// A request the filter let through: 200 from the application, as `user`, the credentials gone.
fn assert_passed_as(stack: &Stack, response: &Response, path: &str, user: &str) {
    assert_eq!(response.status, 200, "{response:?}\n{}", stack.envoy.log());
    let seen: Vec<Received> = stack
        .app
        .received()
        .into_iter()
        .filter(|r| r.path == path)
        .collect();
    assert_eq!(seen.len(), 1, "the application received {seen:?}");
    assert_eq!(seen[0].header("x-tokengate-user"), Some(user), "{seen:?}");
    assert_eq!(seen[0].header("authorization"), None, "{seen:?}");
}

/// A 43-character base64url value (32 random bytes), as the design makes every token.
fn assert_token_shaped(value: &Value) {
    let text = value.as_str().unwrap_or_default();
    assert!(
        text.len() == 43
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "not 32 random bytes in base64url: {value}"
    );
}

/// The signature of `authorization` changed in its first character (still base64).
fn tampered(authorization: &str) -> String {
    let at = authorization.find("oauth_signature=\"").unwrap() + "oauth_signature=\"".len();
    let first = authorization.as_bytes()[at];
    let other = if first == b'A' { "B" } else { "A" };
    format!("{}{other}{}", &authorization[..at], &authorization[at + 1..])
}

/// The dance's access token, after asserting every step answered as Jira does.
fn assert_dance(dance: &Value) -> AccessToken {
    let request_token = &dance["request_token"];
    assert_token_shaped(&request_token["oauth_token"]);
    assert_token_shaped(&request_token["oauth_token_secret"]);
    assert_eq!(request_token["oauth_callback_confirmed"], "true", "{dance}");

    let page = &dance["page"];
    assert_eq!(page["status"], 200, "{dance}");
    let headers = &page["headers"];
    assert_eq!(headers["content-type"], "text/html;charset=UTF-8", "{dance}");
    assert_eq!(headers["cache-control"], "no-store", "{dance}");
    assert_eq!(headers["x-frame-options"], "DENY", "{dance}");
    // form-action may also name the callback's origin (browsers apply it to the redirect).
    assert!(
        headers["content-security-policy"]
            .as_str()
            .is_some_and(|csp| csp.starts_with("default-src 'none'; form-action 'self'")),
        "{dance}"
    );
    assert!(
        page["body"].as_str().unwrap().contains("Application X"),
        "{dance}"
    );
    let form = &dance["form"];
    assert_eq!(
        form["form"]["method"].as_str().map(str::to_ascii_lowercase),
        Some("post".into())
    );
    assert_eq!(
        form["form"]["action"], "/plugins/servlet/oauth/authorize",
        "{dance}"
    );
    let input = |name: &str| {
        form["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no input {name} in {form}"))
    };
    assert_eq!(input("oauth_token")["value"], request_token["oauth_token"]);
    assert_eq!(input("oauth_token")["type"], "hidden");
    assert_eq!(input("atl_token")["type"], "hidden");
    input("os_username");
    assert_eq!(input("os_password")["type"], "password");
    assert_eq!(input("approve")["value"], "Allow");
    assert_eq!(input("deny")["value"], "Deny");
    assert!(
        dance["cookies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "atl.xsrf.token" && c["path"] == "/plugins/servlet/oauth"),
        "{dance}"
    );

    let login = &dance["login"];
    assert_eq!(login["status"], 302, "{dance}");
    let location = login["headers"]["location"].as_str().unwrap();
    assert!(location.starts_with(&format!("{CALLBACK}?")), "{location}");
    assert_eq!(
        dance["callback_query"]["oauth_token"][0],
        request_token["oauth_token"]
    );
    assert_token_shaped(&dance["callback_query"]["oauth_verifier"][0]);

    let access = &dance["access_token"];
    assert_token_shaped(&access["oauth_token"]);
    assert_token_shaped(&access["oauth_token_secret"]);
    assert_token_shaped(&access["oauth_session_handle"]);
    assert_ne!(access["oauth_token"], request_token["oauth_token"]);
    assert!(access["oauth_expires_in"].as_str().is_some(), "{dance}");
    assert!(
        access["oauth_authorization_expires_in"].as_str().is_some(),
        "{dance}"
    );

    AccessToken {
        token: access["oauth_token"].as_str().unwrap().to_owned(),
        secret: access["oauth_token_secret"].as_str().unwrap().to_owned(),
    }
}

/// The dance's last step, `GET /rest/api/2/myself` signed with the new access token, passed as
/// `user`.
fn assert_myself(stack: &Stack, dance: &Value, user: &str) {
    let myself = &dance["myself"];
    assert_eq!(myself["status"], 200, "{dance}\n{}", stack.envoy.log());
    let me: Value = serde_json::from_str(myself["body"].as_str().unwrap()).unwrap();
    assert_eq!(me["name"], user);
    let seen = stack
        .app
        .received()
        .into_iter()
        .rfind(|r| r.path == "/rest/api/2/myself")
        .unwrap();
    assert_eq!(seen.header("x-tokengate-user"), Some(user), "{seen:?}");
    assert_eq!(seen.header("authorization"), None, "{seen:?}");
}

/// A driver's recorded answer as a [`Response`].
fn response_of(answer: &Value) -> Response {
    Response {
        status: answer["status"].as_u64().unwrap() as u16,
        headers: answer["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(n, v)| (n.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect(),
        body: answer["body"].as_str().unwrap_or_default().to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// The groups.

/// The whole dance, jira-python, a signed form POST and every refusal, on one stack.
#[test]
fn application_links_through_envoy_and_the_token_service() {
    let stack = Stack::start(&json!({}), &json!({}));
    let mut s = Scenarios::new("oauth1");
    let realm = "jira";

    s.run(
        "the token service warns at start about consumer Y's 1024-bit key, not X's",
        || {
            let log = stack.tokens.log();
            let warnings: Vec<&str> = log.lines().filter(|l| l.contains("warning")).collect();
            assert!(
                warnings.iter().any(|l| l.contains(Y) && l.contains("1024")),
                "{log}"
            );
            assert!(!warnings.iter().any(|l| l.contains(X)), "{log}");
        },
    );

    let access = s.run(
        "requests-oauthlib's OAuth1Session performs the dance through Envoy (the authorize page driven as a browser)",
        || {
            let dance = stack.dance("fred", "approve", true, &[]);
            let access = assert_dance(&dance);
            assert_eq!(dance["access_token"]["oauth_expires_in"], "157680000", "{dance}");
            assert_eq!(
                dance["access_token"]["oauth_authorization_expires_in"], "160704000",
                "{dance}"
            );
            let spare = &dance["spare_request_token"];
            assert_token_shaped(&spare["oauth_token"]);
            let spare = AccessToken {
                token: spare["oauth_token"].as_str().unwrap().to_owned(),
                secret: spare["oauth_token_secret"].as_str().unwrap().to_owned(),
            };
            (dance, access, spare)
        },
    );
    let (access, request_token, secrets) = match access {
        Some((dance, access, spare)) => {
            s.run(
                "then OAuth1Session GETs /rest/api/2/myself as the user through the filter",
                || assert_myself(&stack, &dance, "fred"),
            );
            // What must never be written to a log: the dance's tokens, secrets and verifier.
            let secrets: Vec<String> = [
                &dance["request_token"]["oauth_token"],
                &dance["request_token"]["oauth_token_secret"],
                &dance["callback_query"]["oauth_verifier"][0],
                &dance["access_token"]["oauth_token"],
                &dance["access_token"]["oauth_token_secret"],
                &dance["access_token"]["oauth_session_handle"],
            ]
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
            (Some(access), Some(spare), Some(secrets))
        }
        None => (None, None, None),
    };

    s.run("an unsigned request is challenged with OAuth realm", || {
        let response = stack
            .envoy
            .raw(&stack.request("GET", "/rest/api/2/refused/unsigned", None, None));
        assert_eq!(response.status, 401, "{response:?}");
        let challenges = values(&response, "www-authenticate");
        assert_eq!(challenges.first(), Some(&r#"OAuth realm="jira""#), "{response:?}");
        assert_jira_error_is(&response, NOT_AUTHENTICATED);
        stack.never_reached("/rest/api/2/refused/unsigned");
    });

    s.after(
        "the user's access tokens are listed for them by the token service",
        access.as_ref(),
        |_| {
            let listed = stack.rest("GET", "/user/oauth/access-tokens", "fred", "fred-password", None);
            assert_eq!(listed.status, 200, "{listed:?}");
            let listed = listed.json();
            assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
            assert_eq!(listed[0]["consumerKey"], X);
            assert_eq!(listed[0]["consumerName"], "Application X");
            assert!(
                listed[0]["created"].as_i64().unwrap() > 1_600_000_000_000,
                "epoch millis"
            );
            let none = stack.rest(
                "GET",
                "/user/oauth/access-tokens",
                "jsmith",
                "jsmith-password",
                None,
            );
            assert_eq!(none.json(), json!([]), "{none:?}");
            let by_admin = stack.rest(
                "GET",
                "/admin/oauth/access-tokens?user=fred",
                "admin",
                "admin-password",
                None,
            );
            assert_eq!(by_admin.status, 200, "{by_admin:?}");
            assert_eq!(by_admin.json(), listed, "{by_admin:?}");
            let not_admin = stack.rest(
                "GET",
                "/admin/oauth/access-tokens?user=fred",
                "jsmith",
                "jsmith-password",
                None,
            );
            assert_eq!(not_admin.status, 403, "{not_admin:?}");
        },
    );

    s.after(
        "jira-python's JIRA(oauth=...) with signature_method RSA-SHA1",
        access.as_ref(),
        |access| {
            let before = stack.reached("/rest/api/2/myself");
            let run = drive(
                "jira_myself.py",
                &json!({"server": stack.base, "consumer_key": X, "key_file": stack.keys.x,
                    "access_token": access.token, "access_token_secret": access.secret,
                    "signature_method": "RSA-SHA1", "times": 1}),
            );
            assert_eq!(run["errors"], json!([]), "{run}");
            assert_eq!(run["names"], json!(["fred"]), "{run}");
            let exchanges = run["exchanges"].as_array().unwrap();
            assert!(
                exchanges
                    .iter()
                    .all(|e| e["status"] == 200 && e["signature_method"] == "RSA-SHA1"),
                "{run}"
            );
            assert_eq!(
                stack.reached("/rest/api/2/myself") - before,
                exchanges.len(),
                "{run}"
            );
        },
    );

    s.after(
        "jira-python without signature_method: HMAC-SHA1 refused then RSA-SHA1, ten times; the user is not locked out",
        access.as_ref(),
        |access| {
            let before = stack.reached("/rest/api/2/myself");
            let rejected = "wasmcustom.tokengate.denied.oauth1.signature_method_rejected";
            let rejected_before = stack.envoy.counter(rejected);
            let run = drive(
                "jira_myself.py",
                &json!({"server": stack.base, "consumer_key": X, "key_file": stack.keys.x,
                        "access_token": access.token, "access_token_secret": access.secret,
                        "times": 10}),
            );
            assert_eq!(run["errors"], json!([]), "{run}");
            assert_eq!(run["names"], json!(vec!["fred"; 10]), "{run}");
            let exchanges = run["exchanges"].as_array().unwrap();
            let hmac: Vec<&Value> = exchanges
                .iter()
                .filter(|e| e["signature_method"] == "HMAC-SHA1")
                .collect();
            assert_eq!(hmac.len(), 10, "one HMAC-SHA1 attempt per construction: {run}");
            for refused in &hmac {
                assert_eq!(refused["status"], 401, "{run}");
                assert_eq!(
                    refused["www_authenticate"].as_str().map(|v| v.starts_with(&format!(
                        r#"OAuth realm="{realm}", oauth_problem="signature_method_rejected""#
                    ))),
                    Some(true),
                    "{run}"
                );
            }
            let rsa = exchanges.iter().filter(|e| e["signature_method"] == "RSA-SHA1");
            assert!(rsa.clone().all(|e| e["status"] == 200), "{run}");
            assert_eq!(
                stack.reached("/rest/api/2/myself") - before,
                rsa.count(),
                "only the RSA-SHA1 requests reach the application: {run}"
            );
            assert_eq!(stack.envoy.counter(rejected) - rejected_before, 10);
            // Ten refused signature methods are not ten failed logins (the lockout is 3).
            let created = stack.rest(
                "POST",
                "/user/token",
                "fred",
                "fred-password",
                Some(&json!({"tokenDescription": "after jira-python"})),
            );
            assert_eq!(created.status, 200, "fred's password login is locked: {created:?}");
            let token = created.json()["plainTextToken"].as_str().unwrap().to_owned();
            let basic = STANDARD.encode(format!("fred:{token}"));
            let request = format!(
                "GET /rest/api/2/myself?case=api-token HTTP/1.1\r\nhost: {}\r\nconnection: close\r\nauthorization: Basic {basic}\r\n\r\n",
                stack.host()
            );
            let by_token = stack.envoy.raw(request.as_bytes());
            assert_passed_as(&stack, &by_token, "/rest/api/2/myself?case=api-token", "fred");
        },
    );

    // Every request the refusals need, signed in one go (one Python start).
    let now = now();
    let keys = &stack.keys;
    let cases: Vec<(&str, Value)> = match (&access, &request_token) {
        (Some(a), Some(rt)) => vec![
            (
                "form",
                stack.spec(
                    a,
                    "/rest/api/2/issue/DEMO-1/comment?notify=true",
                    json!({"method": "POST", "body": FORM}),
                ),
            ),
            (
                "form-charset",
                stack.spec(
                    a,
                    "/rest/api/2/issue/DEMO-2/comment",
                    json!({"method": "POST", "body": FORM}),
                ),
            ),
            (
                "form-chunked",
                stack.spec(
                    a,
                    "/rest/api/2/issue/DEMO-3/comment",
                    json!({"method": "POST", "body": FORM}),
                ),
            ),
            (
                "json",
                stack.spec(
                    a,
                    "/rest/api/2/issue",
                    json!({"method": "POST", "body": JSON_BODY, "content_type": "application/json"}),
                ),
            ),
            ("jql", stack.spec(a, JQL, json!({}))),
            (
                "realm",
                stack.spec(
                    a,
                    "/rest/api/2/myself?case=realm",
                    json!({"realm": "https://jira.example.com/"}),
                ),
            ),
            (
                "form-changed",
                stack.spec(
                    a,
                    "/rest/api/2/refused/form-changed",
                    json!({"method": "POST", "body": FORM}),
                ),
            ),
            (
                "tampered",
                stack.spec(a, "/rest/api/2/refused/tampered", json!({})),
            ),
            (
                "changed",
                stack.spec(a, "/rest/api/2/refused/changed?jql=project%3DDEMO", json!({})),
            ),
            (
                "query-oauth",
                stack.spec(a, "/rest/api/2/refused/query-oauth", json!({})),
            ),
            (
                "no-token",
                stack.spec(a, "/rest/api/2/refused/no-token", json!({"token": null})),
            ),
            ("version", stack.spec(a, "/rest/api/2/refused/version", json!({}))),
            (
                "hmac",
                stack.spec(
                    a,
                    "/rest/api/2/refused/hmac",
                    json!({"signature_method": "HMAC-SHA1"}),
                ),
            ),
            (
                "plaintext",
                stack.spec(
                    a,
                    "/rest/api/2/refused/plaintext",
                    json!({"signature_method": "PLAINTEXT"}),
                ),
            ),
            (
                "stale",
                stack.spec(
                    a,
                    "/rest/api/2/refused/stale",
                    json!({"timestamp": (now - 3600).to_string()}),
                ),
            ),
            (
                "future",
                stack.spec(
                    a,
                    "/rest/api/2/refused/future",
                    json!({"timestamp": (now + 3600).to_string()}),
                ),
            ),
            (
                "replay",
                stack.spec(a, "/rest/api/2/myself?case=replay", json!({})),
            ),
            (
                "race-0",
                stack.spec(a, "/rest/api/2/myself?case=race-0", json!({})),
            ),
            (
                "race-1",
                stack.spec(a, "/rest/api/2/myself?case=race-1", json!({})),
            ),
            (
                "race-2",
                stack.spec(a, "/rest/api/2/myself?case=race-2", json!({})),
            ),
            (
                "unknown-consumer",
                stack.spec(
                    a,
                    "/rest/api/2/refused/unknown-consumer",
                    json!({"consumer_key": "consumer-z"}),
                ),
            ),
            (
                "x-token-as-y",
                stack.spec(
                    a,
                    "/rest/api/2/refused/x-token-as-y",
                    json!({"consumer_key": Y, "key_file": keys.y}),
                ),
            ),
            (
                "x-token-y-key",
                stack.spec(
                    a,
                    "/rest/api/2/refused/x-token-y-key",
                    json!({"key_file": keys.y}),
                ),
            ),
            (
                "request-token",
                stack.spec(rt, "/rest/api/2/refused/request-token", json!({})),
            ),
        ],
        _ => Vec::new(),
    };
    let signed: Option<Vec<(String, Signed)>> = if cases.is_empty() {
        None
    } else {
        s.run("oauthlib signs the requests of the scenarios below", || {
            let specs: Vec<Value> = cases.iter().map(|(_, spec)| spec.clone()).collect();
            cases
                .iter()
                .map(|(name, _)| (*name).to_owned())
                .zip(stack.sign(&specs))
                .collect()
        })
    };
    let signed_request = |name: &str| {
        signed
            .as_ref()
            .and_then(|all| all.iter().find(|(n, _)| n == name).map(|(_, s)| s.clone()))
    };

    s.after(
        "a POST with a form body signed over the body passes it byte-identical",
        signed_request("form").as_ref(),
        |form| {
            assert_eq!(form.body.as_deref(), Some(FORM));
            let response = stack.send(form);
            assert_passed_as(
                &stack,
                &response,
                "/rest/api/2/issue/DEMO-1/comment?notify=true",
                "fred",
            );
            let seen = stack
                .app
                .received()
                .into_iter()
                .find(|r| r.path == "/rest/api/2/issue/DEMO-1/comment?notify=true")
                .unwrap();
            assert_eq!(seen.body, FORM);
            assert_eq!(seen.method, "POST");
            assert_eq!(
                seen.header("content-type"),
                Some("application/x-www-form-urlencoded")
            );
        },
    );

    s.after(
        "a form body sent as application/x-www-form-urlencoded; charset=UTF-8 is signed over too",
        signed_request("form-charset").as_ref(),
        |form| {
            let path = stack.path_of(form);
            let request = format!(
                "POST {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\nauthorization: {}\r\ncontent-type: application/x-www-form-urlencoded; charset=UTF-8\r\ncontent-length: {}\r\n\r\n{FORM}",
                stack.host(),
                form.authorization,
                FORM.len()
            );
            let response = stack.envoy.raw(request.as_bytes());
            assert_passed_as(&stack, &response, path, "fred");
            let seen = stack.app.received().into_iter().find(|r| r.path == path).unwrap();
            assert_eq!(seen.body, FORM);
        },
    );

    s.after(
        "a form body sent in chunks is read whole and passed byte-identical",
        signed_request("form-chunked").as_ref(),
        |form| {
            let path = stack.path_of(form);
            let (first, second) = FORM.split_at(10);
            let request = format!(
                "POST {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\nauthorization: {}\r\ncontent-type: application/x-www-form-urlencoded\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{first}\r\n{:x}\r\n{second}\r\n0\r\n\r\n",
                stack.host(),
                form.authorization,
                first.len(),
                second.len()
            );
            let response = stack.envoy.raw(request.as_bytes());
            assert_passed_as(&stack, &response, path, "fred");
            let seen = stack.app.received().into_iter().find(|r| r.path == path).unwrap();
            assert_eq!(seen.body, FORM);
        },
    );

    s.after(
        "a POST with a JSON body (not signed over) passes it byte-identical",
        signed_request("json").as_ref(),
        |signed| {
            assert_eq!(signed.body.as_deref(), Some(JSON_BODY));
            let request = format!(
                "POST /rest/api/2/issue HTTP/1.1\r\nhost: {}\r\nconnection: close\r\nauthorization: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{JSON_BODY}",
                stack.host(),
                signed.authorization,
                JSON_BODY.len()
            );
            let response = stack.envoy.raw(request.as_bytes());
            assert_passed_as(&stack, &response, "/rest/api/2/issue", "fred");
            let seen = stack.app.received().into_iter().find(|r| r.path == "/rest/api/2/issue").unwrap();
            assert_eq!(seen.body, JSON_BODY);
        },
    );

    s.after(
        "a GET with an escaped, repeated query (a JQL search) passes",
        signed_request("jql").as_ref(),
        |signed| {
            assert_eq!(stack.path_of(signed), JQL);
            assert_passed_as(&stack, &stack.send(signed), JQL, "fred");
        },
    );

    s.after(
        "a header with a realm parameter (as Java consumers send it) passes: realm is not signed",
        signed_request("realm").as_ref(),
        |signed| {
            assert!(signed.authorization.starts_with("OAuth realm="), "{signed:?}");
            assert_passed_as(&stack, &stack.send(signed), stack.path_of(signed), "fred");
        },
    );

    s.after(
        "a form body changed after signing is refused: signature_invalid",
        signed_request("form-changed").as_ref(),
        |form| {
            let changed = FORM.replace("Hello", "Jello");
            let request = stack.request(
                "POST",
                stack.path_of(form),
                Some(&form.authorization),
                Some(&changed),
            );
            assert_refused(&stack.envoy.raw(&request), realm, "signature_invalid");
            stack.never_reached("/rest/api/2/refused/form-changed");
        },
    );

    s.after(
        "a tampered signature is refused: signature_invalid",
        signed_request("tampered").as_ref(),
        |signed| {
            let request = stack.request(
                "GET",
                stack.path_of(signed),
                Some(&tampered(&signed.authorization)),
                None,
            );
            assert_refused(&stack.envoy.raw(&request), realm, "signature_invalid");
            stack.never_reached("/rest/api/2/refused/tampered");
        },
    );

    s.after(
        "a query parameter changed after signing is refused: signature_invalid",
        signed_request("changed").as_ref(),
        |signed| {
            let path = stack.path_of(signed).replace("DEMO", "EVIL");
            let request = stack.request("GET", &path, Some(&signed.authorization), None);
            assert_refused(&stack.envoy.raw(&request), realm, "signature_invalid");
            stack.never_reached(&path);
            stack.never_reached(stack.path_of(signed));
        },
    );

    s.after(
        "oauth_* in the query beside the header is refused: parameter_rejected",
        signed_request("query-oauth").as_ref(),
        |signed| {
            let path = format!("{}?oauth_version=1.0", stack.path_of(signed));
            let request = stack.request("GET", &path, Some(&signed.authorization), None);
            assert_refused(&stack.envoy.raw(&request), realm, "parameter_rejected");
            stack.never_reached(&path);
        },
    );

    s.after(
        "a request signed without an access token (a request-token step's) is refused: parameter_absent",
        signed_request("no-token").as_ref(),
        |signed| {
            assert!(!signed.authorization.contains("oauth_token="));
            assert_refused(&stack.send(signed), realm, "parameter_absent");
            stack.never_reached(stack.path_of(signed));
        },
    );

    s.after(
        "oauth_version other than 1.0 is refused: version_rejected",
        signed_request("version").as_ref(),
        |signed| {
            let changed = signed
                .authorization
                .replace(r#"oauth_version="1.0""#, r#"oauth_version="2.0""#);
            assert_ne!(changed, signed.authorization);
            let request = stack.request("GET", stack.path_of(signed), Some(&changed), None);
            assert_refused(&stack.envoy.raw(&request), realm, "version_rejected");
            stack.never_reached(stack.path_of(signed));
        },
    );

    for (case, method) in [("hmac", "HMAC-SHA1"), ("plaintext", "PLAINTEXT")] {
        s.after(
            &format!("{method} is refused where only RSA-SHA1 is allowed: signature_method_rejected"),
            signed_request(case).as_ref(),
            |signed| {
                assert!(signed
                    .authorization
                    .contains(&format!("oauth_signature_method=\"{method}\"")));
                assert_refused(&stack.send(signed), realm, "signature_method_rejected");
                stack.never_reached(stack.path_of(signed));
            },
        );
    }

    for (case, what) in [("stale", "an hour old"), ("future", "an hour ahead")] {
        s.after(
            &format!("a timestamp {what} is refused: timestamp_refused"),
            signed_request(case).as_ref(),
            |signed| {
                assert_refused(&stack.send(signed), realm, "timestamp_refused");
                stack.never_reached(stack.path_of(signed));
            },
        );
    }

    s.after(
        "a replayed nonce is refused: nonce_used",
        signed_request("replay").as_ref(),
        |signed| {
            let first = stack.send(signed);
            assert_passed_as(&stack, &first, stack.path_of(signed), "fred");
            assert_refused(&stack.send(signed), realm, "nonce_used");
            assert_eq!(
                stack.reached(stack.path_of(signed)),
                1,
                "the replay reached the application"
            );
        },
    );

    let races: Option<Vec<Signed>> = ["race-0", "race-1", "race-2"]
        .iter()
        .map(|case| signed_request(case))
        .collect();
    s.after(
        "the same signed request on two connections to the two workers: exactly one 200",
        races.as_ref(),
        |races| {
            for signed in races {
                let (mut a, mut b) = stack.connections_on_two_workers();
                let request = stack.request("GET", stack.path_of(signed), Some(&signed.authorization), None);
                std::io::Write::write_all(&mut a, &request).unwrap();
                std::io::Write::write_all(&mut b, &request).unwrap();
                for stream in [&a, &b] {
                    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                }
                let answers = [read_response(&mut a).unwrap(), read_response(&mut b).unwrap()];
                let passed: Vec<&Response> = answers.iter().filter(|r| r.status == 200).collect();
                assert_eq!(passed.len(), 1, "{answers:?}");
                let refused = answers.iter().find(|r| r.status != 200).unwrap();
                assert_refused(refused, realm, "nonce_used");
                assert_passed_as(&stack, passed[0], stack.path_of(signed), "fred");
            }
        },
    );

    s.after(
        "an unknown consumer is refused: consumer_key_unknown",
        signed_request("unknown-consumer").as_ref(),
        |signed| {
            assert_refused(&stack.send(signed), realm, "consumer_key_unknown");
            stack.never_reached(stack.path_of(signed));
        },
    );

    s.after(
        "consumer X's access token used by consumer Y (signed with Y's key) is refused: token_rejected",
        signed_request("x-token-as-y").as_ref(),
        |signed| {
            assert_refused(&stack.send(signed), realm, "token_rejected");
            stack.never_reached(stack.path_of(signed));
        },
    );

    s.after(
        "consumer X's access token signed with Y's key as X is refused: signature_invalid",
        signed_request("x-token-y-key").as_ref(),
        |signed| {
            assert_refused(&stack.send(signed), realm, "signature_invalid");
            stack.never_reached(stack.path_of(signed));
        },
    );

    s.after(
        "a request token used as an access token is refused: token_rejected",
        signed_request("request-token").as_ref(),
        |signed| {
            assert_refused(&stack.send(signed), realm, "token_rejected");
            stack.never_reached(stack.path_of(signed));
        },
    );

    s.run(
        "the wrong user denies the authorisation: the access-token exchange is refused, permission_denied",
        || {
            let before = stack.app.received().len();
            let dance = stack.dance("jsmith", "deny", true, &[]);
            assert_eq!(dance["login"]["status"], 302, "{dance}");
            assert_eq!(
                dance["callback_query"]["oauth_verifier"],
                json!(["denied"]),
                "{dance}"
            );
            let refused = response_of(&dance["access_refused"]);
            assert_eq!(refused.status, 401, "{dance}");
            assert_eq!(
                refused.header("www-authenticate"),
                Some(
                    format!(
                        r#"OAuth realm="{}", oauth_problem="permission_denied""#,
                        stack.base
                    )
                    .as_str()
                ),
                "{dance}"
            );
            assert!(
                refused
                    .header("content-type")
                    .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded")),
                "{dance}"
            );
            assert!(
                refused
                    .body
                    .starts_with("oauth_problem=permission_denied&oauth_problem_advice="),
                "{dance}"
            );
            assert!(
                dance.get("access_token").is_none() && dance.get("myself").is_none(),
                "{dance}"
            );
            assert_eq!(
                stack.app.received().len(),
                before,
                "the dance never reaches the application"
            );
            let listed = stack.rest(
                "GET",
                "/user/oauth/access-tokens",
                "jsmith",
                "jsmith-password",
                None,
            );
            assert_eq!(listed.json(), json!([]), "{listed:?}");
        },
    );

    s.run(
        "consumer Y (a 1024-bit key, as Jira's tutorial makes) dances and calls myself as the user",
        || {
            let dance = stack.dance_as(Y, &stack.keys.y, "admin", "approve", true, &[]);
            assert!(
                dance["page"]["body"].as_str().unwrap().contains("Application Y"),
                "{dance}"
            );
            assert_token_shaped(&dance["access_token"]["oauth_token"]);
            assert_myself(&stack, &dance, "admin");
        },
    );

    s.after(
        "a revoked access token is refused within the cache's lifetime: token_rejected",
        access.as_ref(),
        |access| {
            let listed = stack
                .rest("GET", "/user/oauth/access-tokens", "fred", "fred-password", None)
                .json();
            let id = listed[0]["id"].as_i64().unwrap();
            let not_yours = stack.rest(
                "DELETE",
                &format!("/user/oauth/access-tokens/{id}"),
                "jsmith",
                "jsmith-password",
                None,
            );
            assert_eq!(not_yours.status, 404, "{not_yours:?}");
            let specs: Vec<Value> = (0..40)
                .map(|_| stack.spec(access, "/rest/api/2/myself?case=revoked", json!({})))
                .collect();
            let polls = stack.sign(&specs);
            let revoked = stack.rest(
                "DELETE",
                &format!("/user/oauth/access-tokens/{id}"),
                "fred",
                "fred-password",
                None,
            );
            assert_eq!(revoked.status, 204, "{revoked:?}");
            let revoked_at = Instant::now();
            let mut passed = 0;
            let mut polls = polls.iter();
            let refused = loop {
                let Some(signed) = polls.next() else {
                    panic!("still accepted {:?} after the revocation", revoked_at.elapsed());
                };
                let sent = revoked_at.elapsed();
                let response = stack.send(signed);
                if response.status != 200 {
                    break response;
                }
                // cache_ttl_seconds is 1: an answer cached before the revocation lasts at most
                // that long (a second more for a clock of whole seconds).
                assert!(
                    sent < Duration::from_secs(2),
                    "accepted a request sent {sent:?} after the revocation"
                );
                passed += 1;
                std::thread::sleep(Duration::from_millis(100));
            };
            assert_refused(&refused, realm, "token_rejected");
            assert_refused(&stack.send(polls.next().unwrap()), realm, "token_rejected");
            assert_eq!(stack.reached("/rest/api/2/myself?case=revoked"), passed);
            let listed = stack.rest("GET", "/user/oauth/access-tokens", "fred", "fred-password", None);
            assert_eq!(listed.json(), json!([]), "{listed:?}");
        },
    );

    s.run(
        "the authorize page's login is throttled: after three wrong passwords the right one is refused too",
        || {
            let dance = stack.dance_after_wrong_passwords("admin", &["wrong-1", "wrong-2", "wrong-3"]);
            let wrong = dance["wrong_logins"].as_array().unwrap();
            assert_eq!(wrong.len(), 3, "{dance}");
            for login in wrong {
                assert_eq!(login["status"], 401, "{dance}");
                assert!(
                    login["body"].as_str().unwrap().contains("atl_token"),
                    "the page again: {dance}"
                );
            }
            assert_ne!(
                dance["login"]["status"], 302,
                "a locked user authorised a token: {dance}"
            );
            assert!(dance.get("access_token").is_none(), "{dance}");
            let locked = stack.rest(
                "GET",
                "/user/oauth/access-tokens",
                "admin",
                "admin-password",
                None,
            );
            assert_eq!(
                locked.status, 403,
                "the lockout is the service's, for every login: {locked:?}"
            );
        },
    );

    s.after(
        "no token, secret or verifier of the dance is in Envoy's or the token service's log",
        secrets.as_ref(),
        |secrets| {
            assert_eq!(secrets.len(), 6, "{secrets:?}");
            let (envoy, tokens) = (stack.envoy.log(), stack.tokens.log());
            for secret in secrets {
                assert!(!envoy.contains(secret.as_str()), "Envoy's log holds {secret}");
                assert!(
                    !tokens.contains(secret.as_str()),
                    "the token service's log holds {secret}"
                );
            }
        },
    );

    s.finish();
}

/// A provider with a tiny nonce store (1 bucket of 4) and a configured public base URL (what
/// clients sign over, not the URL Envoy sees), and a
/// token service whose access tokens live 15 seconds: the nonce store is filled as soon as
/// the dance ends (with requests the dance's driver signed before it exited), then the test
/// polls until the token has expired.
#[test]
fn a_full_nonce_store_and_an_expired_access_token() {
    const TTL_SECONDS: u64 = 15;
    /// The name clients use, as a TLS-terminating proxy in front of Envoy would serve it.
    const PUBLIC: &str = "https://jira.example.com";
    let stack = Stack::start(
        &json!({"access_token_ttl_seconds": TTL_SECONDS, "authorization_ttl_seconds": 2 * TTL_SECONDS}),
        &json!({"nonce_store": {"buckets": 1, "per_bucket": 4}, "public_base_url": PUBLIC}),
    );
    // The provider's realm defaults to its public_base_url.
    let realm = PUBLIC;
    let mut s = Scenarios::new("oauth1 nonce store and expiry");
    let issued_after = Instant::now();

    let access = s.run(
        "the dance gives an access token that expires in 15 seconds",
        || {
            let fills: Vec<String> = (0..6)
                .map(|i| format!("/rest/api/2/myself?case=fill-{i}"))
                .collect();
            let dance = stack.dance("fred", "approve", false, &fills);
            let access = assert_dance(&dance);
            assert_eq!(
                dance["access_token"]["oauth_expires_in"],
                TTL_SECONDS.to_string(),
                "{dance}"
            );
            (access, signed_of(&dance["signed"]))
        },
    );
    let (access, fills) = match access {
        Some((access, fills)) => (Some(access), Some(fills)),
        None => (None, None),
    };

    s.after(
        "a full nonce store refuses new requests (503) and still refuses a replay: nonce_used",
        fills.as_ref(),
        |fills| {
            assert!(fills.iter().all(|f| f.url.starts_with(PUBLIC)), "{fills:?}");
            for fill in &fills[..4] {
                assert_passed_as(&stack, &stack.send(fill), stack.path_of(fill), "fred");
            }
            let full = stack.send(&fills[4]);
            assert_eq!(full.status, 503, "{full:?}");
            assert_jira_error_is(&full, NONCE_STORE_FULL);
            stack.never_reached(stack.path_of(&fills[4]));
            assert_refused(&stack.send(&fills[0]), realm, "nonce_used");
            assert_eq!(
                stack.reached(stack.path_of(&fills[0])),
                1,
                "the replay reached the application"
            );
            assert_eq!(stack.send(&fills[5]).status, 503);
            stack.never_reached(stack.path_of(&fills[5]));
        },
    );

    s.after(
        "with public_base_url configured, a request signed over Envoy's own URL is refused: signature_invalid",
        access.as_ref(),
        |access| {
            let path = "/rest/api/2/refused/envoy-url";
            let signed = stack.sign(&[stack.spec(access, path, json!({"base": stack.base}))]);
            assert!(signed[0].url.starts_with(&stack.base));
            let request = stack.request("GET", path, Some(&signed[0].authorization), None);
            assert_refused(&stack.envoy.raw(&request), realm, "signature_invalid");
            stack.never_reached(path);
        },
    );

    s.after(
        "an expired access token is refused: token_expired",
        access.as_ref(),
        |access| {
            let specs: Vec<Value> = (0..100)
                .map(|i| stack.spec(access, &format!("/rest/api/2/myself?case=expiry-{i}"), json!({})))
                .collect();
            let mut polls = stack.sign(&specs).into_iter();
            let deadline = issued_after + Duration::from_secs(TTL_SECONDS + 10);
            let refused = loop {
                let Some(poll) = polls.next() else {
                    panic!("no answer but 200/503 within {:?}", issued_after.elapsed());
                };
                let response = stack.send(&poll);
                if response.status == 401 {
                    break response;
                }
                // Until it expires: 503 (the store is full) if the scenario above ran, else 200.
                assert!(matches!(response.status, 200 | 503), "{response:?}");
                assert!(
                    Instant::now() < deadline,
                    "not expired {:?} after the dance began",
                    issued_after.elapsed()
                );
                std::thread::sleep(Duration::from_millis(250));
            };
            // `exp` is whole seconds: a filter may refuse up to a second before the millisecond.
            assert!(
                issued_after.elapsed() >= Duration::from_secs(TTL_SECONDS - 1),
                "refused {:?} after the dance began, before the token could expire: {refused:?}",
                issued_after.elapsed()
            );
            assert_refused(&refused, realm, "token_expired");
        },
    );

    s.finish();
}
