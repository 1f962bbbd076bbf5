//! The client's address as the token service sees it through Envoy (issue 11, per-address
//! throttling): the REST API's route goes straight to the service (anonymous in the filter),
//! so the service reads the address from `x-envoy-external-address`. A client must not be
//! able to choose it (rotate it to escape the limit), and two clients behind one Envoy must
//! not share Envoy's own address (one guesser locking every user out of the API).

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

const API: &str = "/rest/de.resolution.apitokenauth/latest";
/// The token service's default `lockout.max_failures_per_address`.
const PER_ADDRESS: usize = 30;
const ME: [u8; 4] = [127, 0, 0, 1];
const OTHER: [u8; 4] = [127, 0, 0, 2];

fn envoy(app: &Server, tokens: &TokenService) -> Envoy {
    Envoy::start_with_clusters_and_routes(
        &serde_json::json!({
            "realm": "jira",
            "api_token_providers": {"apitokens": {"introspection": {
                "cluster": "tokens", "path": "/introspect", "client_id": "tokengate",
                "client_secret": TOKENS_CLIENT_SECRET}}},
            "rules": [
                {"path_prefix": "/rest/de.resolution.apitokenauth/", "providers": [], "allow_anonymous": true},
                {"path_prefix": "/", "providers": ["apitokens"]}
            ]
        })
        .to_string(),
        app.port(),
        &[("tokens", tokens.port)],
        &[("/rest/de.resolution.apitokenauth/", "tokens")],
    )
}

/// `GET /user/token` through `envoy` as `user:secret`, from the loopback address `from`,
/// with extra header lines; the status.
fn list_from(envoy: &Envoy, from: [u8; 4], user: &str, secret: &str, extra: &str) -> u16 {
    get_from(envoy, &format!("{API}/user/token"), from, user, secret, extra)
}

/// `GET path` through `envoy` as `user:secret` from the loopback address `from`, with extra
/// header lines; the status.
fn get_from(envoy: &Envoy, path: &str, from: [u8; 4], user: &str, secret: &str, extra: &str) -> u16 {
    let auth = STANDARD.encode(format!("{user}:{secret}"));
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: jira.test\r\nconnection: close\r\nauthorization: Basic {auth}\r\n{extra}\r\n"
    );
    send_raw_from(from, envoy.port, request.as_bytes())
        .unwrap()
        .status
}

#[test]
fn a_client_cannot_escape_the_per_address_limit_by_naming_another_address() {
    let app = DemoApp::start(0).unwrap();
    let tokens = TokenService::start();
    let envoy = envoy(&app, &tokens);
    for i in 0..PER_ADDRESS {
        let spoof =
            format!("x-envoy-external-address: 198.51.100.{i}\r\nx-forwarded-for: 198.51.100.{i}\r\n");
        assert_eq!(
            list_from(&envoy, ME, &format!("guess{i}"), "wrong", &spoof),
            401,
            "{i}"
        );
    }
    let spoof = "x-envoy-external-address: 198.51.100.200\r\n";
    assert_eq!(
        list_from(&envoy, ME, "fred", "fred-password", spoof),
        403,
        "the guessing client's address is throttled, whatever it says it is"
    );
}

#[test]
fn one_guessing_client_does_not_lock_out_another_behind_the_same_envoy() {
    let app = DemoApp::start(0).unwrap();
    let tokens = TokenService::start();
    let envoy = envoy(&app, &tokens);
    for i in 0..PER_ADDRESS {
        assert_eq!(
            list_from(&envoy, OTHER, &format!("guess{i}"), "wrong", ""),
            401,
            "{i}"
        );
    }
    assert_eq!(
        list_from(&envoy, OTHER, "fred", "fred-password", ""),
        403,
        "the guesser is throttled"
    );
    assert_eq!(
        list_from(&envoy, ME, "fred", "fred-password", ""),
        200,
        "another client of the same Envoy is not"
    );
}

#[test]
fn a_client_cannot_escape_the_per_address_limit_with_x_forwarded_for_through_the_filter() {
    let app = DemoApp::start(0).unwrap();
    let tokens = TokenService::start();
    let envoy = envoy(&app, &tokens);
    // Basic with token-shaped secrets to the application: the filter asks the token service,
    // with the client's address as Envoy determined it.
    for i in 0..PER_ADDRESS {
        let spoof = format!("x-forwarded-for: 198.51.100.{i}\r\n");
        let status = get_from(
            &envoy,
            "/rest/api/2/myself",
            ME,
            &format!("guess{i}"),
            "tgat_wrong",
            &spoof,
        );
        assert_eq!(status, 401, "{i}");
    }
    let spoof = "x-forwarded-for: 198.51.100.200\r\n";
    let status = get_from(
        &envoy,
        "/rest/api/2/myself",
        ME,
        "guess-next",
        "tgat_wrong",
        spoof,
    );
    assert_eq!(
        status, 403,
        "the guessing client's address is throttled, whatever it says it is"
    );
}
