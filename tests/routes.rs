//! A rule the filter does not authenticate (`"providers": []`, the demo's token-service rule)
//! and Envoy's own routes: Envoy routes on the spelling of the path, the rules on the path
//! Tomcat resolves, so a spelling of the rule's prefix that Envoy's route does not match must
//! not reach another upstream with the credentials the rule passes unchecked.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use serde_json::json;

#[test]
fn a_respelled_prefix_of_an_unauthenticated_rule_never_reaches_the_application() {
    let app = Server::start(0, |_: &Received| Reply::json(200, &json!({"from": "app"}))).unwrap();
    let tokens = Server::start(0, |_: &Received| Reply::json(200, &json!({"from": "tokens"}))).unwrap();
    let config = json!({
        "realm": "jira",
        "tisjwt": {"secret": SECRET},
        "rules": [
            {"path_prefix": "/rest/tokens/", "providers": [], "allow_anonymous": true},
            {"path_prefix": "/", "providers": ["tisjwt"]}
        ]
    })
    .to_string();
    let envoy = Envoy::start_with_clusters_and_routes(
        &config,
        app.port(),
        &[("tokens", tokens.port())],
        &[("/rest/tokens/", "tokens")],
    );
    // fred:fred-password
    let basic = [("authorization", "Basic ZnJlZDpmcmVkLXBhc3N3b3Jk")];
    let plain = envoy.get("/rest/tokens/latest/user", &basic);
    assert_eq!(plain.json()["from"], "tokens", "{plain:?}");
    for path in [
        "/rest;x/tokens/latest/user",
        "/rest/tokens;x/latest/user",
        "/rest/tok%65ns/latest/user",
        "//rest/tokens/latest/user",
        "/rest/./tokens/latest/user",
        "/x/../rest/tokens/latest/user",
    ] {
        let response = envoy.get(path, &basic);
        assert_ne!(response.json()["from"], "app", "{path}: {response:?}");
    }
    assert!(
        app.received().is_empty(),
        "the application got the password: {:?}",
        app.received()
    );
}
