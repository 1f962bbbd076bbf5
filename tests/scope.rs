//! State scoped to its configuration, through the real Envoy: two listeners share one
//! `vm_id` (so one shared-data store and one verified-token cache) and each has a JWT
//! provider named `corp` that trusts another key. A token verified on one listener is never
//! accepted on the other from the cache, in either order.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{bootstrap, DemoApp, Envoy};
use serde_json::json;
use tokengate_demo::mint_with_header;

const SECRET_1: &str = "the-first-listeners-corp-secret-0123456789";
const SECRET_2: &str = "the-second-listeners-corp-secret-0123456789";

fn plugin(secret: &str) -> String {
    json!({"jwt_providers": {"corp": {"issuer": "https://corp", "hmac_secret": secret}}}).to_string()
}

/// A token of `corp` signed with `secret`, for user `sub`.
fn token(secret: &str, sub: &str) -> String {
    let claims = json!({"iss": "https://corp", "sub": sub, "exp": 4_000_000_000_u64});
    mint_with_header(secret.as_bytes(), &json!({"alg": "HS256"}), &claims)
}

/// Envoy with two listeners, `ingress` with `corp` trusting SECRET_1 and `second` trusting
/// SECRET_2, both in VM `tokengate`; their ports in that order.
fn two_listeners(app_port: u16) -> (Envoy, u16, u16) {
    let first = bootstrap(&plugin(SECRET_1), app_port, &[]);
    let (start, end) = (
        first.find("  - name: ingress").unwrap(),
        first.find("  clusters:").unwrap(),
    );
    let quoted = |secret| serde_json::to_string(&plugin(secret)).unwrap();
    let second = first[start..end]
        .replace("  - name: ingress", "  - name: second")
        .replace(&quoted(SECRET_1), &quoted(SECRET_2));
    assert!(second.contains(SECRET_2));
    let yaml = format!("{}{second}{}", &first[..end], &first[end..]);
    let envoy = Envoy::try_start_yaml(&yaml).unwrap_or_else(|log| panic!("Envoy did not start:\n{log}"));
    let listeners: serde_json::Value =
        serde_json::from_str(&envoy.admin("/listeners?format=json").unwrap().body).unwrap();
    let port_of = |name: &str| {
        listeners["listener_statuses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .and_then(|l| l["local_address"]["socket_address"]["port_value"].as_u64())
            .unwrap() as u16
    };
    let (a, b) = (port_of("ingress"), port_of("second"));
    (envoy, a, b)
}

/// The status of `GET /rest/api/2/myself` with `token` on `port` (a refused JWT: 400, seed 001).
fn status(port: u16, token: &str) -> u16 {
    let request = format!(
        "GET /rest/api/2/myself HTTP/1.1\r\nhost: jira.test\r\nauthorization: Bearer {token}\r\nconnection: close\r\n\r\n"
    );
    common::send_raw(port, request.as_bytes()).unwrap().status
}

#[test]
fn two_listeners_of_one_vm_never_accept_each_others_corp_tokens_in_either_order() {
    let app = DemoApp::start(0).unwrap();
    let (_envoy, first, second) = two_listeners(app.port());
    // Each listener's own token, verified (and cached) there first; then the other listener.
    let of_first = token(SECRET_1, "fred");
    assert_eq!(status(first, &of_first), 200);
    assert_eq!(status(first, &of_first), 200, "served again (from the cache)");
    assert_eq!(
        status(second, &of_first),
        400,
        "the first listener's verdict is not the second's"
    );
    let of_second = token(SECRET_2, "fred");
    assert_eq!(status(second, &of_second), 200);
    assert_eq!(status(first, &of_second), 400, "nor the other way round");
    assert_eq!(status(second, &of_first), 400);
}
