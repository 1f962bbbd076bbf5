//! Credentials through the real Envoy: bounds checked before any callout (the real token
//! service is never asked about a credential no provider could accept), user names folded as
//! Jira folds them (`JSMITH`, a non-ASCII user), and the `tisjwt` parameter under every
//! spelling.

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

const API: &str = "/rest/de.resolution.apitokenauth/latest";
const NOT_VALID: &str = "The user name or API token is not valid, or the token has expired.";

fn api_token_config() -> String {
    json!({
        "realm": "jira",
        "api_token_providers": {
            "apitokens": {
                "introspection": {"cluster": "tokens", "path": "/introspect", "client_id": "tokengate",
                                  "client_secret": TOKENS_CLIENT_SECRET},
                "lockout": {"login_url": "http://jira.test/login.jsp"}
            }
        },
        "rules": [
            {"path_prefix": "/rest/de.resolution.apitokenauth/", "providers": [], "allow_anonymous": true},
            {"path_prefix": "/", "providers": ["apitokens"]}
        ]
    })
    .to_string()
}

fn start_envoy(app: u16, tokens: u16) -> Envoy {
    Envoy::start_with_clusters_and_routes(
        &api_token_config(),
        app,
        &[("tokens", tokens)],
        &[("/rest/de.resolution.apitokenauth/", "tokens")],
    )
}

fn basic(user: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{secret}")))
}

fn jira_error(response: &Response) -> String {
    response.json()["errorMessages"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn create_token(envoy: &Envoy, auth: &str, body: &Value) -> String {
    let body = body.to_string();
    let request = format!(
        "POST {API}/user/token HTTP/1.1\r\nhost: jira.test\r\nconnection: close\r\nauthorization: {auth}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let response = envoy.raw(request.as_bytes());
    assert_eq!(response.status, 200, "{response:?}");
    response.json()["plainTextToken"].as_str().unwrap().to_owned()
}

#[test]
fn credentials_out_of_bounds_are_refused_without_asking_the_token_service() {
    let app = DemoApp::start(0).unwrap();
    let tokens = TokenService::start();
    let envoy = start_envoy(app.port(), tokens.port);
    let callouts = || envoy.counter("wasmcustom.tokengate.introspection.callouts");

    let long_bearer = format!("Bearer {}", "t".repeat(60_000));
    let long_password = basic("fred", &"p".repeat(10_000));
    let empty_secret = basic("fred", "");
    for (what, auth) in [
        ("a 60,000-character Bearer token", long_bearer.as_str()),
        ("a 10 KB Basic password", long_password.as_str()),
        ("Basic fred: (empty secret)", empty_secret.as_str()),
    ] {
        let response = envoy.get("/rest/api/2/myself", &[("authorization", auth)]);
        assert_eq!(response.status, 401, "{what}: {response:?}");
        assert_eq!(jira_error(&response), NOT_VALID, "{what}");
    }
    assert_eq!(callouts(), 0, "the token service was asked");
    assert_eq!(envoy.counter("wasmcustom.tokengate.introspection.cache_miss"), 0);
    assert_eq!(envoy.counter("wasmcustom.tokengate.denied.invalid_api_token"), 3);
    assert_eq!(app.count("/rest/api/2/myself"), 0);

    // The same refusal for a wrong token in bounds is the token service's answer...
    let wrong = envoy.get("/x", &[("authorization", &basic("fred", "wrong"))]);
    assert_eq!((wrong.status, jira_error(&wrong).as_str()), (401, NOT_VALID));
    assert_eq!(callouts(), 1, "a credential in bounds is asked about");
    // ...and only it is a failed login: the failed-login counter is the token service's, and
    // the refusals above never reached it (no secret that long, or empty, is anyone's, so no
    // guess is lost). fred is locked by the third failure the service sees, not the first.
    for _ in 0..2 {
        let wrong = envoy.get("/x", &[("authorization", &basic("fred", "anything"))]);
        assert_eq!(wrong.status, 401, "{wrong:?}");
    }
    assert_eq!(callouts(), 3);
    let locked = envoy.get("/x", &[("authorization", &basic("fred", "anything"))]);
    assert_eq!(locked.status, 403, "{locked:?}");
}

#[test]
fn a_user_name_in_any_case_is_the_same_user_also_beyond_ascii() {
    let app = DemoApp::start(0).unwrap();
    // The demo's admin (password admin-password) and a user with a non-ASCII name.
    let demo: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tokenservice/config/users.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut users: Vec<Value> = demo["users"].as_array().unwrap().clone();
    users.push(json!({"name": "Jörg.Σίσυφος", "key": "JIRAUSER20001", "emailAddress": "joerg@example.com"}));
    let tokens = TokenService::start_with_users(Some(&json!({ "users": users }).to_string()));
    let envoy = start_envoy(app.port(), tokens.port);

    let jsmith = create_token(
        &envoy,
        &basic("jsmith", "jsmith-password"),
        &json!({"tokenDescription": "j"}),
    );
    for name in ["jsmith", "JSMITH", "JSmith"] {
        let response = envoy.get("/rest/api/2/myself", &[("authorization", &basic(name, &jsmith))]);
        assert_eq!(response.status, 200, "{name}: {response:?}");
        assert_eq!(response.json()["name"], "jsmith", "{name}");
    }
    let not_his = envoy.get("/x", &[("authorization", &basic("fred", &jsmith))]);
    assert_eq!(not_his.status, 401);

    let joerg = create_token(
        &envoy,
        &basic("admin", "admin-password"),
        &json!({"tokenDescription": "for Jörg", "tokenForUserKey": "JIRAUSER20001"}),
    );
    // The demo application reads headers as ASCII, so Envoy's own direct answer stands in
    // for it: a 200 there means the filter let the request through.
    for name in ["Jörg.Σίσυφος", "jörg.σίσυφος", "JÖRG.ΣΊΣΥΦΟΣ"] {
        let response = envoy.get("/direct/x", &[("authorization", &basic(name, &joerg))]);
        assert_eq!(
            (response.status, response.body.as_str()),
            (200, "direct"),
            "{name}"
        );
    }
    let other = envoy.get("/direct/x", &[("authorization", &basic("jorg.sisyfos", &joerg))]);
    assert_eq!(other.status, 401, "another name is another user");
    assert_eq!(envoy.counter("wasmcustom.tokengate.denied.invalid_api_token"), 2);
}

fn tisjwt_config() -> String {
    json!({"plugin_version": "2.0.0.1", "tisjwt": {"secret": SECRET}}).to_string()
}

#[test]
fn the_tisjwt_parameter_is_found_and_removed_under_every_spelling() {
    let app = DemoApp::start(0).unwrap();
    let envoy = Envoy::start(&tisjwt_config(), app.port());
    let token = mint_tisjwt(SECRET.as_bytes(), &json!({"sub": "fred", "exp": now() + 3600}));

    for name in ["tisjwt", "TISJWT", "TisJwt", "%74isjwt", "%54%49%53%4A%57%54"] {
        let response = envoy.get(&format!("/rest/echo?a=%2F&{name}={token}&b=+&c"), &[]);
        assert_eq!(response.status, 200, "{name}: {response:?}");
        assert_eq!(response.json()["path"], "/rest/echo?a=%2F&b=+&c", "{name}");
    }
    for smuggled in [
        format!("?tisjwt={token}&%74isjwt=anything"),
        format!("?tisjwt={token}&TISJWT=anything"),
        format!("?TisJwt={token}&tis%6Awt"),
    ] {
        let response = envoy.get(&format!("/rest/echo{smuggled}"), &[]);
        assert_eq!(response.status, 400, "{smuggled}: {response:?}");
        assert!(response.json()["messages"][0]
            .as_str()
            .unwrap()
            .starts_with("More than one credential was supplied."));
    }
    let broken = envoy.get(&format!("/rest/echo?tisjwt%={token}"), &[]);
    assert_eq!(broken.status, 401, "{broken:?}");
    assert_eq!(
        app.count("/rest/echo"),
        5,
        "only the five single copies reached the application"
    );
    assert!(app.received().iter().all(|r| !r.path.contains(&token)));
}
