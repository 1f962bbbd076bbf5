//! The OAuth 1.0a dance against the real `tokengate-tokens` binary, driven by
//! requests-oauthlib from the project's virtualenv as an application link's client drives it
//! (`tests/oauth1/dance.py`): `fetch_request_token` signed with RSA-SHA1, the authorize page
//! fetched and its form posted as a browser would (cookie kept, `atl_token` read from the
//! HTML), the verifier read from the 302's `Location`, `fetch_access_token`; then the filter's
//! question about the access token. Also: the user denying, the wrong user, a consumer signing
//! with HMAC-SHA1, and the dance across two replicas sharing one PostgreSQL, where one request
//! token exchanged on both at once gives exactly one access token (`tests/oauth1/race.py`).

// Test harness: failing loudly is its job.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Scratch, Service};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

const CONSUMER: &str = "tokengate-demo";
const CALLBACK: &str = "http://127.0.0.1:8765/";

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The configuration's additions: the demo consumer, and no configured base URL, so that the
/// URL the client signs (`http://127.0.0.1:<port>`, from `Host`) is the one checked.
fn oauth1_config() -> Value {
    let public_key: PathBuf = manifest().join("config/demo-consumer.pub");
    json!({
        "base_url": null,
        "oauth1": {"consumers": [{"consumer_key": CONSUMER, "name": "Demo application link",
                                  "public_key_file": public_key, "callbacks": [CALLBACK]}]},
    })
}

fn start(scratch: &Scratch) -> Service {
    Service::start_with(scratch, oauth1_config())
}

/// Runs `tests/oauth1/<script>` with `args`; its JSON.
fn python(script: &str, args: &[&str]) -> Value {
    let python = manifest().join("../.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make pytools`",
        python.display()
    );
    let output = Command::new(python)
        .arg(manifest().join("tests/oauth1").join(script))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The dance as `user` with `password`, pressing `button`.
fn dance(service: &Service, user: &str, password: &str, button: &str) -> Value {
    let base = format!("http://127.0.0.1:{}", service.port);
    let key = manifest().join("../demo/oauth-consumer.pem");
    python(
        "dance.py",
        &[
            &base,
            CONSUMER,
            key.to_str().unwrap(),
            CALLBACK,
            user,
            password,
            button,
        ],
    )
}

fn ask(service: &Service, token: &str, consumer: &str) -> Value {
    let reply = service.introspect(&format!(
        "token={token}&token_type_hint=oauth1_access_token&oauth_consumer_key={consumer}"
    ));
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

#[test]
fn requests_oauthlib_dances_to_an_access_token_the_filter_is_told_about() {
    let scratch = Scratch::new();
    let service = start(&scratch);
    let result = dance(&service, "fred", "fred-password", "approve");
    assert_eq!(result["page_status"], 200, "{result}");
    assert_eq!(result["page_headers"]["cache-control"], "no-store");
    assert_eq!(result["page_headers"]["x-frame-options"], "DENY");
    assert_eq!(result["cookie_sent"], true, "{result}");
    assert_eq!(result["authorize_status"], 302, "{result}");
    assert!(
        result["location"].as_str().unwrap().starts_with(CALLBACK),
        "{result}"
    );
    let tokens = &result["access_token"];
    let token = tokens["oauth_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{result}"));
    assert_eq!(token.len(), 43);
    assert_eq!(tokens["oauth_expires_in"], "157680000");
    assert_eq!(tokens["oauth_authorization_expires_in"], "160704000");
    assert!(tokens["oauth_session_handle"].is_string(), "{result}");

    let answer = ask(&service, token, CONSUMER);
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["username"], "fred");
    assert_eq!(answer["client_id"], CONSUMER);
    assert_eq!(answer["token_type"], "oauth1_access_token");
    let pem = std::fs::read_to_string(manifest().join("config/demo-consumer.pub")).unwrap();
    let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert_eq!(answer["consumer_public_key"], der);
    assert_eq!(
        ask(&service, token, "another-consumer"),
        json!({"active": false, "oauth_problem": "consumer_key_unknown"})
    );

    // fred sees the application link among his access tokens, and revokes it.
    let listed = service.api(
        "GET",
        "/user/oauth/access-tokens",
        Some(&common::password("fred")),
        "",
    );
    assert_eq!(listed.status, 200, "{}", listed.body);
    let id = listed.json()[0]["id"].as_i64().unwrap();
    assert_eq!(listed.json()[0]["consumerName"], "Demo application link");
    let revoked = service.api(
        "DELETE",
        &format!("/user/oauth/access-tokens/{id}"),
        Some(&common::password("fred")),
        "",
    );
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    assert_eq!(
        ask(&service, token, CONSUMER),
        json!({"active": false, "oauth_problem": "token_rejected"})
    );
    // No line of the log holds a token or the verifier (the request token was in the
    // authorize page's query).
    let log = Service::log(&scratch);
    let location = result["location"].as_str().unwrap();
    let query = location.split_once('?').unwrap().1;
    let callback: std::collections::HashMap<String, String> =
        form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    assert!(log.contains("/plugins/servlet/oauth/authorize"), "{log}");
    for secret in [token, &callback["oauth_token"], &callback["oauth_verifier"]] {
        assert!(!log.contains(secret), "{secret} in {log}");
    }
}

#[test]
fn a_denied_authorisation_sends_denied_and_the_exchange_is_refused() {
    let scratch = Scratch::new();
    let service = start(&scratch);
    let result = dance(&service, "jsmith", "jsmith-password", "deny");
    assert_eq!(result["authorize_status"], 302, "{result}");
    assert!(
        result["location"]
            .as_str()
            .unwrap()
            .ends_with("&oauth_verifier=denied"),
        "{result}"
    );
    assert!(result["access_token"].is_null(), "{result}");
    assert_eq!(result["access_status"], 401, "{result}");
    assert!(
        result["access_challenge"]
            .as_str()
            .unwrap()
            .contains("oauth_problem=\"permission_denied\""),
        "{result}"
    );
    assert!(
        result["access_body"]
            .as_str()
            .unwrap()
            .starts_with("oauth_problem=permission_denied&"),
        "{result}"
    );
}

#[test]
fn the_wrong_user_gets_the_form_again_and_a_failed_login() {
    let scratch = Scratch::new();
    let service = start(&scratch);
    let result = dance(&service, "fred", "not-freds-password", "approve");
    assert_eq!(result["authorize_status"], 401, "{result}");
    assert!(result["location"].is_null(), "{result}");
    let body = result["authorize_body"].as_str().unwrap();
    assert!(body.contains("name=\"os_password\""), "the form again: {body}");
    // Counted as the REST API counts it: two more wrong passwords there lock fred.
    for _ in 0..2 {
        let reply = service.api("GET", "/user/token", Some(&common::basic("fred:wrong")), "");
        assert_eq!(reply.status, 401);
    }
    let reply = service.api("GET", "/user/token", Some(&common::password("fred")), "");
    assert_eq!(reply.status, 403, "{}", reply.body);
}

#[test]
fn a_consumer_signing_with_hmac_sha1_is_refused_as_a_signature_method() {
    let scratch = Scratch::new();
    let service = start(&scratch);
    let base = format!("http://127.0.0.1:{}", service.port);
    let result = python("hmac_refused.py", &[&base, CONSUMER]);
    assert_eq!(result["status"], 401, "{result}");
    assert!(
        result["challenge"]
            .as_str()
            .unwrap()
            .contains("oauth_problem=\"signature_method_rejected\""),
        "{result}"
    );
}

#[test]
fn a_consumer_key_under_2048_bits_is_warned_about_at_start() {
    let scratch = Scratch::new();
    let key = scratch.0.join("tutorial.pub");
    std::fs::copy(manifest().join("src/testdata/consumer-1024.pub"), &key).unwrap();
    let _service = Service::start_with(
        &scratch,
        json!({"oauth1": {"consumers": [{"consumer_key": "jira-tutorial", "name": "Tutorial",
                                          "public_key_file": key, "callbacks": []}]}}),
    );
    // Written before the "listening" line the harness waited for.
    let log = Service::log(&scratch);
    assert!(
        log.contains("warning: oauth1 consumer `jira-tutorial` has a 1024-bit RSA key"),
        "{log}"
    );
}

#[test]
fn the_dance_alternates_between_two_replicas_on_one_postgresql() {
    let scratch = Scratch::new();
    let database = common::TestDatabase::postgres();
    let replicas = Service::start_replicas_with(&scratch, &database.spec(), 2, oauth1_config());
    let [a, b] = [replicas.ports[0], replicas.ports[1]].map(|port| format!("http://127.0.0.1:{port}"));
    let key = manifest().join("../demo/oauth-consumer.pem");
    // request-token and the post on one, the page and access-token on the other: the CSRF
    // value, the decision and the single use of the request token are the store's.
    let result = python(
        "dance.py",
        &[
            &a,
            CONSUMER,
            key.to_str().unwrap(),
            CALLBACK,
            "fred",
            "fred-password",
            "approve",
            &b,
        ],
    );
    let token = result["access_token"]["oauth_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{result}"));
    for _ in 0..2 {
        // Asked of each replica in turn.
        assert_eq!(ask(&replicas, token, CONSUMER)["username"], "fred");
    }
    // One request token exchanged on both replicas at once: exactly one access token.
    let race = python(
        "race.py",
        &[
            &a,
            &b,
            CONSUMER,
            key.to_str().unwrap(),
            CALLBACK,
            "jsmith",
            "jsmith-password",
        ],
    );
    let answers = race["answers"].as_array().unwrap();
    let won: Vec<_> = answers.iter().filter(|a| a["access_token"].is_object()).collect();
    assert_eq!(won.len(), 1, "{race}");
    let lost = answers.iter().find(|a| a["access_token"].is_null()).unwrap();
    assert_eq!(lost["access_status"], 401, "{race}");
    assert!(
        lost["access_challenge"]
            .as_str()
            .unwrap()
            .contains("oauth_problem=\"token_rejected\""),
        "{race}"
    );
    assert!(!Service::log(&scratch).contains(common::postgres::PG_PASSWORD));
}
