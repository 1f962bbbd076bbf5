//! One failed-login counter for the fleet (issue 11): two real Envoys with the built filter in
//! front of one real token service. Failures spread over both lock the user on both, for
//! every credential of theirs, even one the second Envoy cached as valid (within the stated
//! bound: the API-token positive cache TTL); repeats of the same wrong token all count;
//! `FRED` is `fred`; an administrator's reset through one Envoy unlocks both (within
//! `locked_cache_ttl_seconds`); a restarted Envoy still refuses a locked user.

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
use std::time::{Duration, Instant};

const API: &str = "/rest/de.resolution.apitokenauth/latest";
/// The positive cache TTL of API tokens configured below: the bound within which a lock
/// reaches a credential an Envoy cached as valid before it heard of the lock.
const CACHE_TTL: u64 = 3;
/// How long an Envoy believes the service's "locked" (the bound for a reset).
const LOCKED_TTL: u64 = 1;
/// Slack for the request round trips of the poll.
const SLACK: Duration = Duration::from_millis(1500);
const LOGIN_URL: &str = "CAPTCHA_CHALLENGE; login-url=http://jira.test/login.jsp";

fn plugin() -> String {
    json!({
        "realm": "jira",
        "api_token_providers": {
            "apitokens": {
                "introspection": {"cluster": "tokens", "path": "/introspect", "client_id": "tokengate",
                                  "client_secret": TOKENS_CLIENT_SECRET},
                "cache_ttl_seconds": CACHE_TTL,
                "negative_cache_ttl_seconds": 30,
                "locked_cache_ttl_seconds": LOCKED_TTL
            }
        },
        "rules": [
            {"path_prefix": "/rest/de.resolution.apitokenauth/", "providers": [], "allow_anonymous": true},
            {"path_prefix": "/", "providers": ["apitokens"]}
        ]
    })
    .to_string()
}

fn envoy(app: &Server, tokens: &TokenService) -> Envoy {
    Envoy::start_with_clusters_and_routes(
        &plugin(),
        app.port(),
        &[("tokens", tokens.port)],
        &[("/rest/de.resolution.apitokenauth/", "tokens")],
    )
}

fn basic(user: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{secret}")))
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn call(envoy: &Envoy, method: &str, path: &str, auth: &str, body: Option<&Value>) -> Response {
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: jira.test\r\nconnection: close\r\nauthorization: {auth}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    envoy.raw(request.as_bytes())
}

fn token_of(envoy: &Envoy, user: &str) -> String {
    let response = call(
        envoy,
        "POST",
        &format!("{API}/user/token"),
        &basic(user, &format!("{user}-password")),
        Some(&json!({"tokenDescription": "fleet"})),
    );
    assert_eq!(response.status, 200, "{response:?}");
    response.json()["plainTextToken"].as_str().unwrap().to_owned()
}

fn status(envoy: &Envoy, auth: &str) -> u16 {
    envoy.get("/rest/api/2/myself", &[("authorization", auth)]).status
}

/// Sends `auth` through `envoy` until it gets `wanted` or `bound` (plus slack) has passed;
/// how long it took, or a panic with the last answer.
#[track_caller]
fn poll_until(envoy: &Envoy, auth: &str, wanted: u16, bound: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let response = envoy.get("/rest/api/2/myself", &[("authorization", auth)]);
        if response.status == wanted {
            return start.elapsed();
        }
        assert!(
            start.elapsed() <= bound + SLACK,
            "still {} after {:?} (bound {bound:?}): {response:?}",
            response.status,
            start.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[track_caller]
fn assert_locked(envoy: &Envoy, auth: &str) {
    let response = envoy.get("/rest/api/2/myself", &[("authorization", auth)]);
    assert_eq!(response.status, 403, "{response:?}");
    assert_eq!(response.header("x-authentication-denied-reason"), Some(LOGIN_URL));
}

#[test]
fn two_envoys_share_one_failed_login_counter_one_lock_and_one_reset() {
    let app = DemoApp::start(0).unwrap();
    let tokens = TokenService::start();
    let first = envoy(&app, &tokens);
    let mut second = envoy(&app, &tokens);
    let token = token_of(&first, "fred");

    // The second Envoy caches fred's token as valid, as Basic and as Bearer.
    for _ in 0..2 {
        assert_eq!(status(&second, &basic("fred", &token)), 200);
        assert_eq!(status(&second, &bearer(&token)), 200);
    }
    let hits = "wasmcustom.tokengate.introspection.cache_hit";
    assert!(second.counter(hits) >= 2, "served from its cache");

    // Three failures spread over both Envoys, under three spellings of the name.
    assert_eq!(status(&first, &basic("fred", "tgat_wrong")), 401);
    assert_eq!(status(&second, &basic("FRED", "tgat_wrong")), 401);
    assert_eq!(status(&first, &basic("Fred", "tgat_wrong")), 401);
    let locked_at = Instant::now();

    // Locked on the first Envoy at once, for the right token too, under any spelling.
    assert_locked(&first, &basic("fred", &token));
    assert_locked(&first, &bearer(&token));
    assert_locked(&first, &basic("FRED", &token));
    // On the second, within the positive cache TTL even for what it had cached as valid.
    let bound = Duration::from_secs(CACHE_TTL);
    let basic_took = poll_until(&second, &basic("fred", &token), 403, bound);
    let bearer_took = poll_until(&second, &bearer(&token), 403, bound);
    eprintln!(
        "lock reached the second Envoy's cached token after {:?} (Basic, polled) and {bearer_took:?} more (Bearer); {:?} after the lock",
        basic_took,
        locked_at.elapsed()
    );
    assert!(locked_at.elapsed() <= bound + SLACK, "{:?}", locked_at.elapsed());
    assert_locked(&second, &bearer(&token));
    assert_locked(&second, &basic("fReD", &token));

    // An administrator's reset through the second Envoy unlocks both.
    let reset = call(
        &second,
        "DELETE",
        &format!("{API}/user/failedLogins/FRED"),
        &basic("admin", "admin-password"),
        None,
    );
    assert_eq!(reset.status, 204, "{reset:?}");
    let bound = Duration::from_secs(LOCKED_TTL);
    let reset_at = Instant::now();
    for envoy in [&first, &second] {
        poll_until(envoy, &basic("fred", &token), 200, bound);
        poll_until(envoy, &bearer(&token), 200, bound);
    }
    eprintln!("the reset reached both Envoys after {:?}", reset_at.elapsed());

    // Locked again through the first; the second Envoy restarted still refuses fred.
    for _ in 0..3 {
        assert_eq!(status(&first, &basic("fred", "tgat_wrong")), 401);
    }
    assert_locked(&first, &basic("fred", &token));
    drop(second);
    second = envoy(&app, &tokens);
    assert_locked(&second, &basic("fred", &token));
    assert_locked(&second, &bearer(&token));
}

#[test]
fn the_same_wrong_token_three_times_counts_three_on_whichever_envoy() {
    let app = DemoApp::start(0).unwrap();
    let tokens = TokenService::start();
    let first = envoy(&app, &tokens);
    let second = envoy(&app, &tokens);
    let token = token_of(&first, "jsmith");
    // One wrong token, the same each time, through one Envoy (no negative cache hides it).
    for attempt in 0..3 {
        assert_eq!(
            status(&second, &basic("jsmith", "tgat_same_wrong")),
            401,
            "{attempt}"
        );
    }
    assert_locked(&first, &basic("jsmith", &token));
    assert_locked(&second, &basic("JSMITH", &token));
    // Other users are not affected.
    let fred = token_of(&first, "fred");
    assert_eq!(status(&second, &basic("fred", &fred)), 200);
    // The lock is the token service's: its own management endpoints refuse jsmith too.
    let direct = send_raw(
        tokens.port,
        format!(
            "GET {API}/user/token HTTP/1.1\r\nhost: t\r\nconnection: close\r\nauthorization: {}\r\n\r\n",
            basic("jsmith", "jsmith-password")
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(direct.status, 403);
    assert_eq!(direct.header("x-authentication-denied-reason"), Some(LOGIN_URL));
}

#[test]
fn one_client_address_guessing_many_names_is_throttled_through_either_envoy() {
    let app = DemoApp::start(0).unwrap();
    let tokens = TokenService::start();
    let first = envoy(&app, &tokens);
    let second = envoy(&app, &tokens);
    let token = token_of(&first, "fred");
    // The token service's default: 30 failures per address per window; each name once.
    for i in 0..30 {
        let envoy = if i % 2 == 0 { &first } else { &second };
        assert_eq!(
            status(envoy, &basic(&format!("guess{i}"), "tgat_wrong")),
            401,
            "{i}"
        );
    }
    // From that address (loopback, as Envoy saw it), even fred's right token is refused...
    assert_locked(&first, &basic("fred", &token));
    assert_locked(&second, &basic("fred", &token));
    // ...but fred is not locked: the lock is the address's (no Envoy remembers fred), and
    // fred logs in to the token service from another address.
    let direct = send_raw_from(
        [127, 0, 0, 2],
        tokens.port,
        format!(
            "GET {API}/user/token HTTP/1.1\r\nhost: t\r\nconnection: close\r\nauthorization: {}\r\n\r\n",
            basic("fred", "fred-password")
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(direct.status, 200, "{direct:?}");
}
