//! The user directory as a callout to the application's user API (Jira's
//! `GET /rest/api/2/user?username=`), through the real Envoy: answers, cache, and failures.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

const INACTIVE: &str = "User is not an active Jira user.";

fn plugin_config(timeout_ms: u64) -> String {
    json!({
        "plugin_version": "2.0.0.1",
        "tisjwt": {"secret": SECRET},
        "directory": {"callout": {
            "cluster": "directory",
            "authorization": "Basic c3ZjLWRpcmVjdG9yeTpzM2NyZXQ=",
            "timeout_ms": timeout_ms,
            "cache_ttl_seconds": 300,
            "negative_cache_ttl_seconds": 300
        }}
    })
    .to_string()
}

fn auth(sub: &str) -> String {
    format!(
        "TISJWT {}",
        mint_tisjwt(SECRET.as_bytes(), &json!({"sub": sub, "exp": now() + 3600}))
    )
}

fn message(response: &Response) -> String {
    response.json()["messages"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn the_directory_decides_who_passes_and_its_answers_are_cached() {
    let app = DemoApp::start(0).unwrap();
    let directory = DemoApp::start(0).unwrap();
    let envoy = Envoy::start_with_clusters(
        &plugin_config(1000),
        app.port(),
        &[("directory", directory.port())],
    );

    let fred = envoy.get("/rest/api/2/myself", &[("authorization", &auth("fred"))]);
    assert_eq!(fred.status, 200, "{fred:?}");
    let departed = envoy.get("/x", &[("authorization", &auth("departed"))]);
    assert_eq!((departed.status, message(&departed)), (401, INACTIVE.to_owned()));
    let stranger = envoy.get("/x", &[("authorization", &auth("stranger"))]);
    assert_eq!((stranger.status, message(&stranger)), (401, INACTIVE.to_owned()));

    let asked = directory.received();
    assert_eq!(asked.len(), 3);
    assert_eq!(asked[0].path, "/rest/api/2/user?username=fred");
    assert_eq!(
        asked[0].header("authorization"),
        Some("Basic c3ZjLWRpcmVjdG9yeTpzM2NyZXQ=")
    );

    for _ in 0..5 {
        assert_eq!(envoy.get("/x", &[("authorization", &auth("fred"))]).status, 200);
        assert_eq!(
            envoy.get("/x", &[("authorization", &auth("stranger"))]).status,
            401
        );
    }
    assert_eq!(
        directory.count("/rest/api/2/user"),
        3,
        "cached answers were asked again"
    );
    assert_eq!(envoy.counter("wasmcustom.tokengate.directory.cache_hit"), 10);
    assert_eq!(app.count("/x"), 5);
    assert!(
        !envoy.log().contains("c3ZjLWRpcmVjdG9yeTpzM2NyZXQ="),
        "the directory credential was logged"
    );
}

fn assert_unavailable(response: &Response) {
    assert_eq!(response.status, 503, "{response:?}");
    assert_eq!(
        message(response),
        "The user directory could not be reached. Please try again later."
    );
    assert_eq!(response.json()["message"], "Service Unavailable");
}

#[test]
fn a_dead_slow_or_babbling_directory_is_a_503_never_a_pass() {
    let app = DemoApp::start(0).unwrap();
    let slow = Server::start(0, |_| {
        Reply::json(200, &json!({"name": "fred", "active": true})).after(Duration::from_secs(3))
    })
    .unwrap();
    let garbage = Server::start(0, |_| Reply::text(200, "<html>oops</html>", "text/html")).unwrap();
    let failing = Server::start(0, |_| Reply::text(500, "boom", "text/plain")).unwrap();
    let dead_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    for (name, port) in [
        ("slow", slow.port()),
        ("garbage", garbage.port()),
        ("failing", failing.port()),
        ("dead", dead_port),
    ] {
        let envoy = Envoy::start_with_clusters(&plugin_config(300), app.port(), &[("directory", port)]);
        let started = std::time::Instant::now();
        let response = envoy.get("/x", &[("authorization", &auth("fred"))]);
        assert_unavailable(&response);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{name}: the request hung"
        );
        assert!(
            envoy.counter("wasmcustom.tokengate.directory.callout_failed") >= 1,
            "{name}"
        );
    }
    assert_eq!(app.received().len(), 0);
}

/// A directory that answers as a broken or unusual Jira might: without `active`, with another
/// user's record, with a list the user is not first in (or not in), and by folded names.
fn quirky_directory() -> Server {
    Server::start(0, |request| {
        let asked = request
            .path
            .split_once("username=")
            .and_then(|(_, user)| tokengate::query::percent_decode(user))
            .unwrap_or_default();
        let answer = match asked.as_str() {
            "noactive" => json!({"name": "noactive", "key": "JIRAUSER1", "emailAddress": "n@example.com"}),
            "fred" => json!({"name": "admin", "key": "JIRAUSER10005", "active": true}),
            "fr" => json!([{"name": "fred", "active": true}]),
            "pick" => json!([{"name": "picker", "active": true}, {"name": "pick", "active": false}]),
            "JSMITH" => json!({"name": "jsmith", "key": "JIRAUSER10006", "active": true}),
            "ΣΟΦΙΑ" | "σοφια" => json!([{"name": "Σοφια", "active": true}]),
            _ => return Reply::json(404, &json!({"errorMessages": ["no such user"], "errors": {}})),
        };
        Reply::json(200, &answer)
    })
    .unwrap()
}

#[test]
fn the_directory_fails_closed_and_compares_names_as_jira_folds_them() {
    let app = DemoApp::start(0).unwrap();
    let directory = quirky_directory();
    let envoy = Envoy::start_with_clusters(
        &plugin_config(1000),
        app.port(),
        &[("directory", directory.port())],
    );
    let get = |path: &str, user: &str| envoy.get(path, &[("authorization", &auth(user))]);

    for (user, why) in [
        ("noactive", "an answer without `active`"),
        ("fr", "a list without the user"),
        ("pick", "a list whose first element is somebody else"),
    ] {
        let response = get("/x", user);
        assert_eq!(
            (response.status, message(&response)),
            (401, INACTIVE.to_owned()),
            "{why}"
        );
    }
    assert_unavailable(&get("/x", "fred"));
    assert_eq!(
        envoy.counter("wasmcustom.tokengate.directory.callout_failed"),
        1,
        "another user's record is an answer to another question"
    );

    let jsmith = get("/rest/api/2/myself", "JSMITH");
    assert_eq!(jsmith.status, 200, "{jsmith:?}");
    assert_eq!(
        jsmith.json()["name"],
        "JSMITH",
        "the token's own name is forwarded"
    );
    // Non-ASCII names (the demo application reads headers as ASCII, so Envoy's direct answer
    // stands in for it); the second case variant is the same cache entry.
    for user in ["ΣΟΦΙΑ", "σοφια"] {
        let response = get("/direct/x", user);
        assert_eq!(
            (response.status, response.body.as_str()),
            (200, "direct"),
            "{user}"
        );
    }
    assert_eq!(
        directory.received().len(),
        6,
        "one lookup per user, the folded name shared by both spellings"
    );
    assert_eq!(app.count("/x"), 0, "nobody was let through");
}
