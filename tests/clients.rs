//! Real client libraries against the shipped demo (`envoy/demo.yaml`, the demo application and
//! the real token service): atlassian-python-api and Python's `urllib` from the project's
//! virtualenv (`make pytools`), and `curl --anyauth`. They read Jira's wire details: the
//! content type of error bodies, and one `WWW-Authenticate` challenge per accepted scheme.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::*;
use serde_json::{json, Value};
use tokengate_demo::keys::TestKey;

const API: &str = "/rest/de.resolution.apitokenauth/latest";
const INVALID_TOKEN: &str = "The user name or API token is not valid, or the token has expired.";

/// The demo stack: envoy/demo.yaml on free ports, with its token service and identity provider.
struct Demo {
    _app: Server,
    _idp: Server,
    _tokens: TokenService,
    envoy: Envoy,
}

impl Demo {
    fn start() -> Demo {
        let app = DemoApp::start(0).unwrap();
        let jwks = tokengate_demo::keys::jwks(&[&TestKey::es256(tokengate_demo::DEMO_IDP_KID)]);
        let idp = Server::start(0, move |_| Reply::json(200, &jwks)).unwrap();
        let tokens = TokenService::start();
        let root = env!("CARGO_MANIFEST_DIR");
        let yaml = std::fs::read_to_string(format!("{root}/envoy/demo.yaml")).unwrap();
        let demo_secret = "demo-introspection-secret-change-me";
        assert!(
            yaml.contains(demo_secret),
            "envoy/demo.yaml no longer uses the demo client secret"
        );
        let yaml = yaml
            .replace("port_value: 9901", "port_value: 0")
            .replace("port_value: 8080", "port_value: 0")
            .replace("port_value: 9080", &format!("port_value: {}", app.port()))
            .replace("port_value: 9081", &format!("port_value: {}", idp.port()))
            .replace("port_value: 9090", &format!("port_value: {}", tokens.port))
            .replace(demo_secret, TOKENS_CLIENT_SECRET)
            .replace("filename: target/", &format!("filename: {root}/target/"));
        let envoy = Envoy::try_start_yaml(&yaml).unwrap_or_else(|log| panic!("{log}"));
        Demo {
            _app: app,
            _idp: idp,
            _tokens: tokens,
            envoy,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.envoy.port)
    }

    /// A new API token of `user` (password `<user>-password`), created through Envoy.
    fn api_token(&self, user: &str) -> String {
        let body = json!({"tokenDescription": "clients test"}).to_string();
        let auth = STANDARD.encode(format!("{user}:{user}-password"));
        let request = format!(
            "POST {API}/user/token HTTP/1.1\r\nhost: jira.test\r\nconnection: close\r\nauthorization: Basic {auth}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let response = self.envoy.raw(request.as_bytes());
        assert_eq!(response.status, 200, "{response:?}");
        response.json()["plainTextToken"].as_str().unwrap().to_owned()
    }

    fn counter(&self, name: &str) -> u64 {
        self.envoy.counter(&format!("wasmcustom.tokengate.{name}"))
    }
}

/// The project's virtualenv Python, with the pinned client libraries (`make pytools`).
fn python() -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make pytools` (part of `make test`)",
        python.display()
    );
    python
}

/// Runs `script` with `args`; its last line of output is JSON.
fn run_python(script: &str, args: &[&str]) -> Value {
    let output = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "python failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// `Jira(url, username, password).myself()`: the user's name, or the exception it raised.
const ATLASSIAN_MYSELF: &str = r#"
import json, sys
from atlassian import Jira
url, user, password = sys.argv[1:4]
try:
    me = Jira(url=url, username=user, password=password).myself()
    print(json.dumps({"name": me["name"]}))
except Exception as e:
    print(json.dumps({"error": type(e).__name__, "text": str(e)}))
"#;

#[test]
fn atlassian_python_api_shows_the_filters_message_and_logs_in_with_the_right_token() {
    let demo = Demo::start();
    let token = demo.api_token("fred");
    let wrong = run_python(ATLASSIAN_MYSELF, &[&demo.url(), "fred", "not-freds-token"]);
    assert_eq!(wrong["error"], "HTTPError", "{wrong}");
    assert!(
        wrong["text"].as_str().unwrap().contains(INVALID_TOKEN),
        "the library reads the body of a 401 only with Jira's content type: {wrong}"
    );
    let right = run_python(ATLASSIAN_MYSELF, &[&demo.url(), "fred", &token]);
    assert_eq!(right, json!({"name": "fred"}));
}

/// urllib's `HTTPBasicAuthHandler` sends Basic only after a `Basic` challenge.
const URLLIB_MYSELF: &str = r#"
import json, sys, urllib.request
url, user, password = sys.argv[1:4]
passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
passwords.add_password(None, url, user, password)
opener = urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(passwords))
with opener.open(url + "/rest/api/2/myself") as response:
    print(json.dumps({"status": response.status, "name": json.load(response)["name"]}))
"#;

#[test]
fn pythons_basic_auth_handler_logs_in_after_the_basic_challenge() {
    let demo = Demo::start();
    let token = demo.api_token("fred");
    let me = run_python(URLLIB_MYSELF, &[&demo.url(), "fred", &token]);
    assert_eq!(me, json!({"status": 200, "name": "fred"}));
    assert_eq!(
        (demo.counter("denied.missing_credential"), demo.counter("allowed")),
        (1, 2),
        "challenged first, then allowed (the other allowed request created the token)"
    );
}

#[test]
fn curl_anyauth_reads_the_challenges_then_sends_basic() {
    let demo = Demo::start();
    let token = demo.api_token("fred");
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--anyauth", "--user"])
        .arg(format!("fred:{token}"))
        .args(["--write-out", "\n%{http_code}"])
        .arg(format!("{}/rest/api/2/myself", demo.url()))
        .output()
        .expect("curl is installed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let (body, status) = stdout.rsplit_once('\n').unwrap();
    assert_eq!(status, "200", "{stdout}");
    assert_eq!(serde_json::from_str::<Value>(body).unwrap()["name"], "fred");
    assert_eq!(
        (demo.counter("denied.missing_credential"), demo.counter("allowed")),
        (1, 2),
        "curl first asked without a credential"
    );
}

#[test]
fn a_wrong_api_token_sent_as_bearer_gets_a_bearer_invalid_token_challenge() {
    let demo = Demo::start();
    let response = demo.envoy.get(
        "/rest/api/2/myself",
        &[("authorization", "Bearer not-an-api-token")],
    );
    assert_eq!(response.status, 401, "{response:?}");
    assert_eq!(
        response.header("content-type"),
        Some("application/json;charset=UTF-8")
    );
    assert_eq!(response.json()["errorMessages"][0], INVALID_TOKEN);
    let challenges: Vec<&str> = response
        .headers
        .iter()
        .filter(|(name, _)| name == "www-authenticate")
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(
        challenges,
        [
            r#"Bearer realm="jira", error="invalid_token""#,
            r#"Basic realm="jira""#,
            r#"TISJWT realm="jira""#,
            r#"OAuth realm="http://127.0.0.1:8080""#
        ]
    );
}

#[test]
fn the_demos_main_route_challenges_every_scheme_it_accepts_tisjwt_first() {
    let demo = Demo::start();
    let response = demo.envoy.get("/rest/api/2/myself", &[]);
    assert_eq!(response.status, 401);
    let challenges: Vec<&str> = response
        .headers
        .iter()
        .filter(|(name, _)| name == "www-authenticate")
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(
        challenges,
        [
            r#"TISJWT realm="jira""#,
            r#"Bearer realm="jira""#,
            r#"Basic realm="jira""#,
            r#"OAuth realm="http://127.0.0.1:8080""#
        ]
    );
}
