//! API tokens end to end (seeds 003 and 004): seed 004's curl session through the real Envoy
//! to the real token service, then the tokens used as Basic and Bearer against the demo
//! application, their deletion, and the failed-login lockout and its reset.

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
use std::time::Duration;

const API: &str = "/rest/de.resolution.apitokenauth/latest";

struct Stack {
    app: Server,
    _tokens: TokenService,
    envoy: Envoy,
}

fn stack() -> Stack {
    let app = DemoApp::start(0).unwrap();
    let tokens = TokenService::start();
    let config = json!({
        "realm": "jira",
        "api_token_providers": {
            "apitokens": {
                "introspection": {"cluster": "tokens", "path": "/introspect", "client_id": "tokengate",
                                  "client_secret": TOKENS_CLIENT_SECRET},
                "cache_ttl_seconds": 1,
                "negative_cache_ttl_seconds": 1,
                "locked_cache_ttl_seconds": 1
            }
        },
        "rules": [
            {"path_prefix": "/rest/de.resolution.apitokenauth/", "providers": [], "allow_anonymous": true},
            {"path_prefix": "/rest/legacy/", "providers": ["apitokens"], "basic_passwords": "pass"},
            {"path_prefix": "/", "providers": ["apitokens"]}
        ],
        "directory": {"callout": {"cluster": "app", "path": "/rest/api/2/user?username={user}"}}
    });
    let envoy = Envoy::start_with_token_service(&config.to_string(), app.port(), tokens.port);
    Stack {
        app,
        _tokens: tokens,
        envoy,
    }
}

impl Envoy {
    fn start_with_token_service(plugin: &str, app: u16, tokens: u16) -> Envoy {
        Envoy::start_with_clusters_and_routes(
            plugin,
            app,
            &[("tokens", tokens)],
            &[("/rest/de.resolution.apitokenauth/", "tokens")],
        )
    }
}

fn basic(user: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{secret}")))
}

fn call(envoy: &Envoy, method: &str, path: &str, auth: &str, body: Option<&Value>) -> Response {
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: jira.test\r\nconnection: close\r\nauthorization: {auth}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    envoy.raw(request.as_bytes())
}

fn create(envoy: &Envoy, auth: &str, body: Value) -> Value {
    let response = call(envoy, "POST", &format!("{API}/user/token"), auth, Some(&body));
    assert_eq!(response.status, 200, "{response:?}");
    response.json()
}

fn jira_error(response: &Response) -> String {
    assert_eq!(response.json()["errors"], json!({}), "{response:?}");
    response.json()["errorMessages"][0].as_str().unwrap().to_owned()
}

#[test]
fn seed_004_session_through_envoy_then_the_token_as_basic_and_bearer() {
    let s = stack();
    let fred = basic("fred", "fred-password");
    let admin = basic("admin", "admin-password");

    // Create, list, rename (seed 004, first part).
    let created = create(&s.envoy, &fred, json!({"tokenDescription": "Automation token"}));
    let token = created["plainTextToken"].as_str().unwrap().to_owned();
    let id = created["id"].as_i64().unwrap();
    let listed = call(&s.envoy, "GET", &format!("{API}/user/token/"), &fred, None).json();
    assert_eq!(listed[0]["description"], "Automation token");
    assert!(
        listed[0]["created"].as_i64().unwrap() > 1_600_000_000_000,
        "epoch millis"
    );
    let renamed = call(
        &s.envoy,
        "PATCH",
        &format!("{API}/user/token/{id}"),
        &fred,
        Some(&json!({"tokenDescription": "Updated token description"})),
    );
    assert_eq!(renamed.status, 200);

    // The token works as the password of Basic and as Bearer (seed 003), as fred.
    let by_basic = s
        .envoy
        .get("/rest/api/2/myself", &[("authorization", &basic("fred", &token))]);
    assert_eq!(by_basic.status, 200, "{by_basic:?}");
    assert_eq!(by_basic.json()["name"], "fred");
    let by_bearer = s.envoy.get(
        "/rest/api/user/current",
        &[("authorization", &format!("Bearer {token}"))],
    );
    assert_eq!(by_bearer.json()["username"], "fred");
    assert!(s
        .app
        .received()
        .iter()
        .filter(|r| r.path.starts_with("/rest/api/2/myself") || r.path.starts_with("/rest/api/user/"))
        .all(|r| r.header("authorization").is_none()));
    // ...but not as somebody else.
    let stolen = s.envoy.get(
        "/rest/api/2/myself",
        &[("authorization", &basic("jsmith", &token))],
    );
    assert_eq!(stolen.status, 401);
    assert_eq!(stolen.header("www-authenticate"), Some(r#"Basic realm="jira""#));
    assert_eq!(
        jira_error(&stolen),
        "The user name or API token is not valid, or the token has expired."
    );

    // Administrators: create for another user with clamped validity, filter with paging.
    let for_fred = create(
        &s.envoy,
        &admin,
        json!({"tokenDescription": "token for another user", "tokenForUserKey": "JIRAUSER10004", "tokenValidityTimeInMonths": 24}),
    );
    let months = (for_fred["validUntil"].as_i64().unwrap() - for_fred["created"].as_i64().unwrap())
        / (86_400_000 * 30);
    assert!(
        (11..=12).contains(&months),
        "validity clamped to 12 months, got about {months}"
    );
    create(&s.envoy, &admin, json!({"tokenDescription": "third"}));
    let page = call(
        &s.envoy,
        "GET",
        &format!("{API}/user/tokensByFilter?notValidAfter=-1&page=0&limit=1"),
        &admin,
        None,
    )
    .json();
    assert_eq!(
        (
            page["total"].as_i64(),
            page["totalPages"].as_i64(),
            page["limit"].as_i64()
        ),
        (Some(3), Some(3), Some(1))
    );
    assert_eq!(
        page["paginationLinks"]["nextPage"],
        format!("http://jira.test{API}/user/tokensByFilter?page=1&limit=1&notValidAfter=-1")
    );
    assert_eq!(page["paginationLinks"]["previousPage"], "");

    // 403 for non-administrators on administrator endpoints; 404 for another user's token.
    let forbidden = call(
        &s.envoy,
        "DELETE",
        &format!("{API}/user/token/deleteAllFor/JIRAUSER10004"),
        &fred,
        None,
    );
    assert_eq!(forbidden.status, 403);
    let admin_token_id = page["content"][0]["id"].as_i64().unwrap();
    let not_yours = call(
        &s.envoy,
        "DELETE",
        &format!("{API}/user/token/{admin_token_id}"),
        &basic("jsmith", "jsmith-password"),
        None,
    );
    assert!(matches!(not_yours.status, 403 | 404), "{not_yours:?}");

    // Deleting the tokens makes them stop working once the filter's cache entry ends (1 s here).
    let gone = call(
        &s.envoy,
        "DELETE",
        &format!("{API}/user/token/deleteAllFor/JIRAUSER10004"),
        &admin,
        None,
    );
    assert_eq!(gone.status, 204);
    std::thread::sleep(Duration::from_millis(1100));
    let after = s.envoy.get(
        "/rest/api/2/myself",
        &[("authorization", &format!("Bearer {token}"))],
    );
    assert_eq!(after.status, 401, "{after:?}");
}

#[test]
fn passwords_are_refused_or_passed_per_route() {
    let s = stack();
    let refused = s.envoy.get(
        "/rest/api/2/myself",
        &[("authorization", &basic("jsmith", "jsmith-password"))],
    );
    assert_eq!(refused.status, 401);
    let passed = s.envoy.get(
        "/rest/legacy/thing",
        &[
            ("authorization", &basic("jsmith", "jsmith-password")),
            ("x-tokengate-user", "admin"),
        ],
    );
    assert_eq!(passed.status, 200);
    let upstream = s
        .app
        .received()
        .into_iter()
        .find(|r| r.path == "/rest/legacy/thing")
        .unwrap();
    assert_eq!(
        upstream.header("authorization"),
        Some(basic("jsmith", "jsmith-password").as_str()),
        "the application checks the password"
    );
    assert_eq!(
        upstream.header("x-tokengate-user"),
        None,
        "no identity is vouched for"
    );
    let malformed = s.envoy.get("/x", &[("authorization", "Basic %%%")]);
    assert_eq!(
        (malformed.status, jira_error(&malformed).as_str()),
        (
            400,
            "The Authorization header does not hold valid Basic credentials."
        )
    );
    let missing = s.envoy.get("/x", &[]);
    assert_eq!(missing.status, 401);
    assert_eq!(missing.header("www-authenticate"), Some(r#"Basic realm="jira""#));
}

#[test]
fn three_failures_lock_a_user_out_until_an_administrator_resets_the_counter() {
    let s = stack();
    let token = create(
        &s.envoy,
        &basic("fred", "fred-password"),
        json!({"tokenDescription": "t"}),
    )["plainTextToken"]
        .as_str()
        .unwrap()
        .to_owned();
    for attempt in 0..3 {
        let wrong = s.envoy.get(
            "/x",
            &[("authorization", &basic("fred", &format!("wrong-{attempt}")))],
        );
        assert_eq!(wrong.status, 401, "attempt {attempt}");
    }
    let locked = s.envoy.get("/x", &[("authorization", &basic("fred", &token))]);
    assert_eq!(locked.status, 403, "even the right token is refused while locked");
    assert_eq!(
        locked.header("x-authentication-denied-reason"),
        Some("CAPTCHA_CHALLENGE; login-url=http://jira.test/login.jsp")
    );
    assert!(jira_error(&locked).starts_with("Too many failed login attempts."));
    // Other users are not affected.
    let jsmith = create(
        &s.envoy,
        &basic("jsmith", "jsmith-password"),
        json!({"tokenDescription": "j"}),
    )["plainTextToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        s.envoy
            .get("/x", &[("authorization", &basic("jsmith", &jsmith))])
            .status,
        200
    );

    // fred cannot reset his own counter; an administrator can.
    let not_admin = call(
        &s.envoy,
        "DELETE",
        &format!("{API}/user/failedLogins/fred"),
        &basic("jsmith", "jsmith-password"),
        None,
    );
    assert_eq!(not_admin.status, 403);
    assert_eq!(
        s.envoy
            .get("/x", &[("authorization", &basic("fred", &token))])
            .status,
        403
    );
    let reset = call(
        &s.envoy,
        "DELETE",
        &format!("{API}/user/failedLogins/fred"),
        &basic("admin", "admin-password"),
        None,
    );
    assert_eq!(reset.status, 204);
    // The reset is the token service's; this Envoy believes its "locked" for at most
    // locked_cache_ttl_seconds (1 s here).
    let reset_at = std::time::Instant::now();
    let unlocked = loop {
        let response = s.envoy.get("/x", &[("authorization", &basic("fred", &token))]);
        if response.status != 403 || reset_at.elapsed() > Duration::from_secs(5) {
            break response;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(unlocked.status, 200, "{unlocked:?}");
    assert!(
        reset_at.elapsed() <= Duration::from_millis(2500),
        "{:?}",
        reset_at.elapsed()
    );
    assert!(s.envoy.counter("wasmcustom.tokengate.denied.locked_out") >= 2);
}
