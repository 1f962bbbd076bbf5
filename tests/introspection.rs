//! Opaque OAuth tokens end to end: the real Envoy with an RFC 7662 introspection server and a
//! UserInfo server started by the test, counting the calls they receive.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const CLIENT: &str = "Basic dG9rZW5nYXRlOmNsaWVudC1zZWNyZXQ="; // tokengate:client-secret
const INACTIVE: &str = "Expired Token / invalid_client_ID";
const AUDIENCE: &str = "https://jira.test";
/// The issuer whose JWTs `kc` introspects (Keycloak's access tokens are JWTs).
const KC_ISSUER: &str = "https://kc.test/realms/jira";

/// The fake provider's answer for a form body `token=<t>&...`.
fn introspection_answer(request: &Received) -> Reply {
    if request.header("authorization") != Some(CLIENT) {
        return Reply::json(401, &json!({"error": "invalid_client"}));
    }
    let token = request
        .body
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .unwrap_or_default()
        .to_owned();
    let later = now() + 600;
    let active = |extra: Value| {
        let mut answer =
            json!({"active": true, "exp": later, "scope": "read:jira-work", "aud": ["account", AUDIENCE]});
        for (k, v) in extra.as_object().unwrap() {
            answer[k] = v.clone();
        }
        Reply::json(200, &answer)
    };
    match token.as_str() {
        "fred-token" | "fred-burst" => active(json!({"username": "fred"})).after(Duration::from_millis(300)),
        "revoked" => Reply::json(200, &json!({"active": false})),
        "past-exp" => active(json!({"username": "fred", "exp": now() - 5})),
        t if t.starts_with("short-") => {
            let exp: i64 = t.trim_start_matches("short-").parse().unwrap();
            active(json!({"username": "fred", "exp": exp}))
        }
        "service" => active(json!({"client_id": "reporting"})),
        "rogue-service" => active(json!({"client_id": "unknown-client"})),
        "nobody-token" => active(json!({"username": "nobody"})),
        "slow" => active(json!({"username": "fred"})).after(Duration::from_secs(2)),
        "shared-slow" => active(json!({"username": "fred"})).after(Duration::from_millis(400)),
        "garbage" => Reply::text(200, "<html>login</html>", "text/html"),
        "boom" => Reply::text(500, "internal error", "text/plain"),
        t if t.starts_with("boom-") => Reply::text(500, "internal error", "text/plain"),
        "other-audience" => active(json!({"username": "fred", "aud": "https://other.example"})),
        "no-audience" => Reply::json(200, &json!({"active": true, "username": "fred", "exp": later})),
        "unsupported" => Reply::json(400, &json!({"error": "unsupported_token_type"})),
        "client-refused" => Reply::json(400, &json!({"error": "invalid_client"})),
        _ => Reply::json(200, &json!({"active": false})),
    }
}

fn config(secret: &str, port_name: &str) -> String {
    json!({
        "realm": "jira",
        "oauth_providers": {
            "kc": {
                "introspection": {"cluster": port_name, "path": "/introspect", "client_id": "tokengate", "client_secret": secret},
                "timeout_ms": 500,
                "audiences": [AUDIENCE],
                "jwt_issuers": [KC_ISSUER],
                "service_accounts": {"reporting": "svc-reports"},
                "cache_ttl_seconds": 300,
                "negative_cache_ttl_seconds": 300
            },
            "github": {"userinfo": {"cluster": "userinfo", "path": "/user"}, "user_field": "login"}
        },
        "rules": [
            {"path_prefix": "/rest/api/3/", "providers": ["kc"], "scopes": ["write:jira-work"]},
            {"path_prefix": "/github/", "providers": ["github"]},
            {"path_prefix": "/", "providers": ["kc"]}
        ],
        "directory": {"users": [{"name": "fred"}, {"name": "jsmith"}, {"name": "svc-reports"}]}
    })
    .to_string()
}

struct Stack {
    app: Server,
    provider: Server,
    _userinfo: Server,
    envoy: Envoy,
}

fn stack(secret: &str) -> Stack {
    let app = DemoApp::start(0).unwrap();
    let provider = Server::start(0, introspection_answer).unwrap();
    let userinfo = Server::start(0, |r: &Received| match r.header("authorization") {
        Some("Bearer gh-token") => Reply::json(200, &json!({"login": "jsmith", "id": 1})),
        _ => Reply::json(401, &json!({"message": "Bad credentials"})),
    })
    .unwrap();
    let clusters = [("kc", provider.port()), ("userinfo", userinfo.port())];
    let envoy = Envoy::start_with_clusters(&config(secret, "kc"), app.port(), &clusters);
    Stack {
        app,
        provider,
        _userinfo: userinfo,
        envoy,
    }
}

fn get(envoy: &Envoy, path: &str, token: &str) -> Response {
    envoy.get(path, &[("authorization", &format!("Bearer {token}"))])
}

fn message(response: &Response) -> String {
    response.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn the_provider_decides_and_each_answer_has_its_documented_response() {
    let s = stack("client-secret");
    let fred = get(&s.envoy, "/rest/api/2/myself", "fred-token");
    assert_eq!(fred.status, 200, "{fred:?}");
    assert_eq!(fred.json()["name"], "fred");
    let sent = &s.provider.received()[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.body, "token=fred-token&token_type_hint=access_token");
    assert_eq!(
        sent.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );

    let service = get(&s.envoy, "/rest/api/2/myself", "service");
    assert_eq!(
        service.json()["name"],
        "svc-reports",
        "client-credentials token maps to its service account"
    );

    for (token, status, expected) in [
        ("revoked", 401, INACTIVE),
        ("past-exp", 401, INACTIVE),
        ("rogue-service", 401, INACTIVE),
        (
            "nobody-token",
            400,
            "No user found with this username/email address",
        ),
    ] {
        let response = get(&s.envoy, "/x", token);
        assert_eq!(
            (response.status, message(&response).as_str()),
            (status, expected),
            "{token}"
        );
    }
    let revoked = get(&s.envoy, "/x", "revoked");
    assert_eq!(
        revoked.header("www-authenticate"),
        Some(r#"Bearer realm="jira", error="invalid_token""#)
    );
    let unscoped = get(&s.envoy, "/rest/api/3/issue", "fred-token");
    assert_eq!(unscoped.status, 403);
    assert_eq!(
        unscoped.header("www-authenticate"),
        Some(r#"Bearer realm="jira", error="insufficient_scope", scope="write:jira-work""#)
    );
    let app_paths: Vec<String> = s.app.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(app_paths, ["/rest/api/2/myself", "/rest/api/2/myself"]);
    assert!(s
        .app
        .received()
        .iter()
        .all(|r| r.header("authorization").is_none()));
}

#[test]
fn a_userinfo_provider_names_the_user_from_its_configured_field() {
    let s = stack("client-secret");
    let me = get(&s.envoy, "/github/rest/api/2/myself", "gh-token");
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(s.app.received()[0].header("x-tokengate-user"), Some("jsmith"));
    let bad = get(&s.envoy, "/github/x", "not-a-github-token");
    assert_eq!((bad.status, message(&bad).as_str()), (401, INACTIVE));
}

#[test]
fn a_rejected_client_secret_is_a_401_and_an_error_log_without_the_secret() {
    let s = stack("wrong-secret-value");
    let response = get(&s.envoy, "/x", "fred-token");
    assert_eq!((response.status, message(&response).as_str()), (401, INACTIVE));
    let log = s.envoy.log();
    assert!(
        log.contains("token provider `kc` rejected the configured client credentials"),
        "{log}"
    );
    assert!(!log.contains("wrong-secret-value"));
    assert_eq!(
        s.envoy
            .counter("wasmcustom.tokengate.introspection.failed.client_rejected"),
        1
    );
}

#[test]
fn a_dead_slow_or_babbling_provider_is_a_503_never_a_pass_or_a_hang() {
    let s = stack("client-secret");
    for token in ["slow", "garbage", "boom"] {
        let started = Instant::now();
        let response = get(&s.envoy, "/x", token);
        assert_eq!(response.status, 503, "{token}: {response:?}");
        assert_eq!(
            message(&response),
            "Service Unavailable: The token provider could not be reached."
        );
        assert!(started.elapsed() < Duration::from_millis(1500), "{token} hung");
    }
    let app = DemoApp::start(0).unwrap();
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let envoy = Envoy::start_with_clusters(
        &config("client-secret", "kc"),
        app.port(),
        &[("kc", dead), ("userinfo", dead)],
    );
    assert_eq!(get(&envoy, "/x", "fred-token").status, 503);
    assert!(s.app.received().is_empty() && app.received().is_empty());
    // A timeout reaches the filter as Envoy's own 504, so it counts as a bad status.
    let failed = |envoy: &Envoy, kind: &str| {
        envoy.counter(&format!("wasmcustom.tokengate.introspection.failed.{kind}"))
    };
    assert_eq!(failed(&s.envoy, "unparsable"), 1);
    assert_eq!(
        failed(&s.envoy, "bad_status") + failed(&s.envoy, "no_response"),
        2
    );
    assert_eq!(failed(&envoy, "bad_status") + failed(&envoy, "no_response"), 1);
}

#[test]
fn answers_are_cached_but_never_past_the_token_exp() {
    let s = stack("client-secret");
    for _ in 0..5 {
        assert_eq!(get(&s.envoy, "/x", "fred-token").status, 200);
        assert_eq!(get(&s.envoy, "/x", "revoked").status, 401);
    }
    assert_eq!(
        s.provider.count("/introspect"),
        2,
        "one callout per token, then the shared cache"
    );
    assert_eq!(s.envoy.counter("wasmcustom.tokengate.introspection.cache_hit"), 8);

    let exp = now() + 2;
    let short = format!("short-{exp}");
    assert_eq!(get(&s.envoy, "/x", &short).status, 200);
    assert_eq!(get(&s.envoy, "/x", &short).status, 200);
    assert_eq!(s.provider.count("/introspect"), 3);
    while now() < exp {
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = get(&s.envoy, "/x", &short);
    assert_eq!((after.status, message(&after).as_str()), (401, INACTIVE));
    assert_eq!(
        s.provider.count("/introspect"),
        4,
        "the cached answer was not served past exp"
    );
}

#[test]
fn fifty_concurrent_requests_with_one_new_token_cause_one_callout_per_worker() {
    let s = stack("client-secret");
    let port = s.envoy.port;
    let handles: Vec<_> = (0..50)
        .map(|_| {
            std::thread::spawn(move || {
                let request = "GET /burst HTTP/1.1\r\nhost: a\r\nconnection: close\r\nauthorization: Bearer fred-burst\r\n\r\n";
                send_raw(port, request.as_bytes()).unwrap().status
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        s.app.count("/burst"),
        50,
        "every request reached the real upstream"
    );
    let callouts = s.provider.count("/introspect");
    // Envoy runs 2 workers here; each coalesces its own requests (and may later hit the cache).
    assert!((1..=2).contains(&callouts), "{callouts} callouts for one token");
    assert!(
        s.envoy.counter("wasmcustom.tokengate.introspection.coalesced")
            + s.envoy.counter("wasmcustom.tokengate.introspection.cache_hit")
            >= 48
    );
    assert_questions_settle(&s.envoy);
}

#[test]
fn when_the_request_that_asked_goes_away_the_others_waiting_for_the_answer_still_get_it() {
    let app = DemoApp::start(0).unwrap();
    let provider = Server::start(0, introspection_answer).unwrap();
    let envoy = Envoy::start_single_worker(
        &config("client-secret", "kc"),
        app.port(),
        &[("kc", provider.port()), ("userinfo", provider.port())],
    );
    let request = b"GET /direct/x HTTP/1.1\r\nhost: a\r\nconnection: close\r\nauthorization: Bearer shared-slow\r\n\r\n";
    // The first request asks the provider, then its client hangs up before the answer.
    let mut first = std::net::TcpStream::connect(("127.0.0.1", envoy.port)).unwrap();
    std::io::Write::write_all(&mut first, request).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let port = envoy.port;
    let second = std::thread::spawn(move || send_raw(port, request).map(|r| r.status));
    std::thread::sleep(Duration::from_millis(150));
    let waiting = question_gauge(&envoy, "waiting");
    assert!(
        waiting >= Some(1),
        "both requests wait for the answer: {waiting:?}"
    );
    drop(first);
    let status = second.join().unwrap().unwrap();
    assert_eq!(status, 200, "the waiting request was left hanging");
    assert_eq!(envoy.counter("wasmcustom.tokengate.introspection.coalesced"), 1);
    assert_eq!(
        provider.count("/introspect"),
        1,
        "the question is the root context's: it outlives the request that asked"
    );
    assert_questions_settle(&envoy);
}

/// A question gauge (`in_flight`, `waiting`); `None` when Envoy does not show it.
fn question_gauge(envoy: &Envoy, name: &str) -> Option<u64> {
    let stats = envoy.admin("/stats").map(|r| r.body).unwrap_or_default();
    let prefix = format!("wasmcustom.tokengate.questions.{name}: ");
    let value = stats.lines().find_map(|line| line.strip_prefix(&prefix))?;
    value.trim().parse().ok()
}

/// Polls the question gauges until both read 0: nothing left in flight and nobody waiting
/// once every request was answered (a leaked question or waiter keeps one above 0).
fn assert_questions_settle(envoy: &Envoy) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (in_flight, waiting) = (
            question_gauge(envoy, "in_flight"),
            question_gauge(envoy, "waiting"),
        );
        if (in_flight, waiting) == (Some(0), Some(0)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "questions left: in_flight {in_flight:?}, waiting {waiting:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn failed(envoy: &Envoy, kind: &str) -> u64 {
    envoy.counter(&format!("wasmcustom.tokengate.introspection.failed.{kind}"))
}

fn all_failures(envoy: &Envoy) -> u64 {
    ["client_rejected", "no_response", "bad_status", "unparsable"]
        .iter()
        .map(|kind| failed(envoy, kind))
        .sum()
}

#[test]
fn a_token_for_another_audience_is_refused_and_the_refusal_is_cached() {
    let s = stack("client-secret");
    assert_eq!(
        get(&s.envoy, "/x", "fred-token").status,
        200,
        "the configured audience passes"
    );
    for token in ["other-audience", "no-audience"] {
        let first = get(&s.envoy, "/x", token);
        assert_eq!(
            (first.status, message(&first).as_str()),
            (401, INACTIVE),
            "{token}"
        );
        let callouts = s.provider.count("/introspect");
        let again = get(&s.envoy, "/x", token);
        assert_eq!(
            (again.status, message(&again).as_str()),
            (401, INACTIVE),
            "{token}"
        );
        assert_eq!(
            s.provider.count("/introspect"),
            callouts,
            "{token}: the second refusal came from the negative cache"
        );
    }
    assert!(
        s.app.received().len() == 1,
        "only fred-token reached the application"
    );
    assert_eq!(all_failures(&s.envoy), 0);
}

#[test]
fn an_oauth_error_about_the_token_is_a_cached_401_not_an_outage() {
    let s = stack("client-secret");
    let first = get(&s.envoy, "/x", "unsupported");
    assert_eq!(
        (first.status, message(&first).as_str()),
        (401, INACTIVE),
        "{first:?}"
    );
    assert_eq!(
        first.header("www-authenticate"),
        Some(r#"Bearer realm="jira", error="invalid_token""#)
    );
    let again = get(&s.envoy, "/x", "unsupported");
    assert_eq!(again.status, 401);
    assert_eq!(s.provider.count("/introspect"), 1, "negatively cached");
    assert_eq!(all_failures(&s.envoy), 0, "no provider-failure counter");
    assert_eq!(s.envoy.counter("wasmcustom.tokengate.denied.token_inactive"), 2);
    assert_eq!(
        s.envoy
            .counter("wasmcustom.tokengate.denied.provider_unavailable"),
        0
    );
    assert!(!s.envoy.log().contains("token provider `kc`"), "no warning");

    // `invalid_client` is about us, not the token: our client was rejected.
    let refused = get(&s.envoy, "/x", "client-refused");
    assert_eq!(refused.status, 401);
    assert_eq!(failed(&s.envoy, "client_rejected"), 1);
    assert!(s.app.received().is_empty());
}

#[test]
fn a_jwt_goes_to_introspection_only_when_the_provider_introspects_its_issuer() {
    let s = stack("client-secret");
    let jwt = |iss: &str| {
        mint_tisjwt(
            b"whatever-secret-the-filter-does-not-know",
            &json!({"iss": iss, "sub": "fred", "exp": now() + 600}),
        )
    };
    let stranger = get(&s.envoy, "/x", &jwt("https://stranger.example"));
    assert_eq!(
        (stranger.status, message(&stranger).as_str()),
        (400, "Token Invalid: Error while validating the token."),
        "{stranger:?}"
    );
    assert!(s.provider.received().is_empty(), "the provider got nothing");
    assert_eq!(all_failures(&s.envoy), 0);

    let keycloak = jwt(KC_ISSUER);
    let asked = get(&s.envoy, "/x", &keycloak);
    assert_eq!((asked.status, message(&asked).as_str()), (401, INACTIVE));
    let sent = s.provider.received();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].body.contains(&keycloak),
        "the JWT of the listed issuer was introspected"
    );
}

#[test]
fn a_thousand_failed_callouts_in_a_second_log_a_handful_of_lines_and_count_every_one() {
    let s = stack("client-secret");
    let port = s.envoy.port;
    let started = Instant::now();
    let handles: Vec<_> = (0..4)
        .map(|thread| {
            std::thread::spawn(move || {
                (0..250)
                    .map(|i| {
                        let request = format!(
                            "GET /direct/x HTTP/1.1\r\nhost: a\r\nconnection: close\r\nauthorization: Bearer boom-{thread}-{i}\r\n\r\n"
                        );
                        send_raw(port, request.as_bytes()).unwrap().status
                    })
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let elapsed = started.elapsed();
    assert_eq!(statuses.len(), 1000);
    assert!(statuses.iter().all(|s| *s == 503), "every one is a 503");
    assert_eq!(failed(&s.envoy, "bad_status"), 1000, "the counter is exact");
    let log = s.envoy.log();
    let lines = log
        .lines()
        .filter(|l| l.contains("token provider `kc` gave no usable answer"))
        .count();
    // One line per (provider, kind) per 10 s per Wasm VM: 2 workers (and the main thread).
    let windows = 1 + elapsed.as_secs() / 10;
    assert!(
        (1..=3 * windows as usize).contains(&lines),
        "{lines} warning lines in {elapsed:?}:\n{log}"
    );
    eprintln!("1,000 failed callouts in {elapsed:?}: {lines} warning lines");
}
