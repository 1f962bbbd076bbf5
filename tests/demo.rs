//! The shipped demo (`envoy/demo.yaml`, what `make run` starts) answers the README's curl
//! session as documented. Ports are rewritten to free ones so the test can run beside `make run`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use tokengate_demo::keys::TestKey;

/// The secret configured in envoy/demo.yaml (and used by scripts/run-demo to mint tokens).
const DEMO_SECRET: &str = "demo-shared-secret-change-me-0123456789";

fn demo_yaml(app_port: u16, idp_port: u16) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let yaml = std::fs::read_to_string(format!("{root}/envoy/demo.yaml")).unwrap();
    assert!(
        yaml.contains(DEMO_SECRET),
        "envoy/demo.yaml no longer uses the demo secret"
    );
    yaml.replace("port_value: 9901", "port_value: 0")
        .replace("port_value: 8080", "port_value: 0")
        .replace("port_value: 9080", &format!("port_value: {app_port}"))
        .replace("port_value: 9081", &format!("port_value: {idp_port}"))
        .replace("filename: target/", &format!("filename: {root}/target/"))
}

/// What `tokengate-demo mint` produces: the demo's issuer and audience.
fn mint(sub: &str, tenant: &str, ttl: i64) -> String {
    mint_tisjwt(
        DEMO_SECRET.as_bytes(),
        &tokengate_demo::demo_claims(sub, tenant, now(), ttl),
    )
}

#[test]
fn the_readme_session_gives_the_documented_answers() {
    let app = DemoApp::start(0).unwrap();
    let idp_key = TestKey::es256(tokengate_demo::DEMO_IDP_KID);
    let jwks = tokengate_demo::keys::jwks(&[&idp_key]);
    let idp = Server::start(0, move |_| Reply::json(200, &jwks)).unwrap();
    let envoy =
        Envoy::try_start_yaml(&demo_yaml(app.port(), idp.port())).unwrap_or_else(|log| panic!("{log}"));
    let valid = mint("fred", "demo-tenant", 3600);
    let auth = format!("TISJWT {valid}");

    let myself = envoy.get("/rest/api/2/myself", &[("Authorization", &auth)]);
    assert_eq!(myself.status, 200);
    assert_eq!(myself.json()["name"], "fred");
    assert_eq!(myself.json()["displayName"], "Fred F. User");

    let current = envoy.get("/rest/api/user/current", &[("Authorization", &auth)]);
    assert_eq!(current.json()["username"], "fred");

    let export = envoy.get(&format!("/rest/export/status?tisjwt={valid}&page=2"), &[]);
    assert_eq!(export.json()["path"], "/rest/export/status?page=2");

    let message = |response: Response| {
        assert_eq!(response.header("www-authenticate"), Some("TISJWT realm=\"jira\""));
        let body = response.json();
        assert_eq!(body["pluginVersion"], "2.0.0.1");
        (response.status, body["messages"][0].as_str().unwrap().to_owned())
    };
    let expired = format!("TISJWT {}", mint("fred", "demo-tenant", -3600));
    let lapsed = format!("TISJWT {}", mint("fred", "lapsed-tenant", 3600));
    let departed = format!("TISJWT {}", mint("departed", "demo-tenant", 3600));
    let invalid = "tisjwt is invalid. Please make sure that you have supplied a valid tisjwt token that is active and has not expired.";
    assert_eq!(
        message(envoy.get("/rest/api/2/myself", &[])),
        (401, "tisjwt is required for authentication.".into())
    );
    assert_eq!(
        message(envoy.get("/rest/api/2/myself", &[("Authorization", &expired)])),
        (401, invalid.into())
    );
    assert_eq!(
        message(envoy.get("/rest/api/2/myself", &[("Authorization", &lapsed)])),
        (401, "License is not valid.".into())
    );
    assert_eq!(
        message(envoy.get("/rest/api/2/myself", &[("Authorization", &departed)])),
        (401, "User is not an active Jira user.".into())
    );
    let both = envoy.get(
        &format!("/rest/api/2/myself?tisjwt={valid}"),
        &[("Authorization", &auth)],
    );
    assert_eq!(both.status, 400);
    let jwt = |sub: &str, scope: &str, ttl: i64| {
        format!(
            "Bearer {}",
            idp_key.sign(&tokengate_demo::demo_jwt_claims(sub, scope, now(), ttl))
        )
    };
    let bearer_error = |path: &str, auth: String| {
        let response = envoy.get(path, &[("Authorization", &auth)]);
        (
            response.status,
            response.json()["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    let by_jwt = envoy.get(
        "/rest/api/2/myself",
        &[("Authorization", &jwt("jsmith", "read:jira-work", 3600))],
    );
    assert_eq!(by_jwt.json()["displayName"], "Joe Smith");
    assert_eq!(
        bearer_error("/rest/api/2/myself", jwt("jsmith", "read:jira-work", -3600)),
        (401, "Token Expired: The token provided is expired.".into())
    );
    assert_eq!(
        bearer_error("/rest/api/2/myself", jwt("nobody", "read:jira-work", 3600)),
        (400, "No user found with this username/email address".into())
    );
    assert_eq!(
        bearer_error("/rest/api/2/myself", "Bearer not.a.jwt".into()),
        (400, "Token Invalid: Error while validating the token.".into())
    );
    let scope = envoy.get(
        "/rest/api/3/issue",
        &[("Authorization", &jwt("jsmith", "read:jira-work", 3600))],
    );
    assert_eq!(scope.status, 403);
    assert_eq!(
        scope.header("www-authenticate"),
        Some(r#"Bearer realm="jira", error="insufficient_scope", scope="write:jira-work""#)
    );
    let writer = envoy.get(
        "/rest/api/3/issue",
        &[("Authorization", &jwt("jsmith", "write:jira-work", 3600))],
    );
    assert_eq!(writer.status, 200);
    assert_eq!(
        writer.json()["headers"]["x-tokengate-email"],
        "jsmith@example.com"
    );
    assert_eq!(envoy.counter("wasmcustom.tokengate.allowed"), 5);
}

/// How many requests the upstream must hold at the same moment in the test below.
const AT_ONCE: usize = 100;

#[test]
fn the_demo_upstream_holds_a_hundred_requests_through_envoy_at_the_same_moment_and_answers_all() {
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::{Duration, Instant};
    // Each request waits inside the upstream until all AT_ONCE are inside together (8 s at
    // most, under the client's 10 s read timeout): a server that cannot hold them all at once
    // answers 503 after the wait. The filter's directory lookups to the same upstream are
    // answered at once.
    let inside = Arc::new((Mutex::new(0usize), Condvar::new()));
    let app = {
        let inside = inside.clone();
        Server::start(0, move |request| {
            if request.path.starts_with("/rest/api/2/user?") {
                // The filter's directory lookup (envoy/demo.yaml asks the demo app).
                return Reply::json(200, &serde_json::json!({"name": "fred", "active": true}));
            }
            let (count, arrived) = &*inside;
            let mut count = count.lock().unwrap();
            *count += 1;
            arrived.notify_all();
            let deadline = Instant::now() + Duration::from_secs(8);
            while *count < AT_ONCE {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Reply::text(503, &format!("{} inside together", *count), "text/plain");
                }
                count = arrived.wait_timeout(count, left).unwrap().0;
            }
            Reply::json(
                200,
                &serde_json::json!({"user": request.header(tokengate_demo::USER_HEADER)}),
            )
        })
        .unwrap()
    };
    let idp = Server::start(0, |_| Reply::json(200, &serde_json::json!({"keys": []}))).unwrap();
    let envoy =
        Envoy::try_start_yaml(&demo_yaml(app.port(), idp.port())).unwrap_or_else(|log| panic!("{log}"));
    let auth = format!("TISJWT {}", mint("fred", "demo-tenant", 3600));
    let port = envoy.port;
    let clients: Vec<_> = (0..AT_ONCE)
        .map(|i| {
            let request = format!(
                "GET /rest/api/2/issue/DEMO-{i} HTTP/1.1\r\nhost: jira.test\r\nconnection: close\r\nauthorization: {auth}\r\n\r\n"
            );
            std::thread::spawn(move || send_raw(port, request.as_bytes()).map(|r| (r.status, r.body)))
        })
        .collect();
    let answers: Vec<(u16, String)> = clients.into_iter().map(|c| c.join().unwrap().unwrap()).collect();
    let refused: Vec<_> = answers.iter().filter(|(status, _)| *status != 200).collect();
    assert!(
        refused.is_empty(),
        "{} of {AT_ONCE} not answered: {refused:?}",
        refused.len()
    );
    assert!(answers.iter().all(|(_, body)| body.contains("\"fred\"")));
    assert_eq!(app.count("/rest/api/2/issue/DEMO-"), AT_ONCE);
    assert_eq!(envoy.counter("wasmcustom.tokengate.allowed"), AT_ONCE as u64);
}
