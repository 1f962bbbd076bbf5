//! State scoped to its configuration (issue 12): two listeners of one Envoy whose tokengate
//! filters share one `vm_id` (one Wasm VM, one shared-data store) and each configure a provider
//! named `corp` differently. Neither listener may take the other's verdicts from the shared
//! caches, in either order: a token `corp` accepts on one listener is refused on the other before
//! and after the first has verified it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use serde_json::{json, Value};
use tokengate_demo::keys::{jwks, TestKey};

const ISSUER: &str = "https://corp.example";
/// The listeners, in the order of the bootstrap.
const LISTENERS: [&str; 2] = ["one", "two"];

/// One listener of [`bootstrap`]: tokengate configured with `plugin` in front of the app.
fn listener(name: &str, plugin: &Value) -> String {
    let plugin = serde_json::to_string(&plugin.to_string()).unwrap();
    let wasm = wasm_module();
    format!(
        r#"  - name: {name}
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: {name}
          route_config:
            virtual_hosts:
            - name: app
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                route: {{ cluster: app }}
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: tokengate
                root_id: tokengate
                failure_policy: FAIL_CLOSED
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {plugin}
                vm_config:
                  vm_id: tokengate
                  runtime: envoy.wasm.runtime.v8
                  code: {{ local: {{ filename: "{wasm}" }} }}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"#,
        wasm = wasm.display()
    )
}

fn cluster(name: &str, port: u16) -> String {
    format!(
        r#"  - name: {name}
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: {name}
      endpoints:
      - lb_endpoints:
        - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }} }}
"#
    )
}

/// Two listeners (`one`, `two`) with ONE `vm_id`, their plugin configurations `plugins`, and
/// the clusters (name, loopback port) the filters call out to, besides `app`.
fn bootstrap(plugins: [&Value; 2], app_port: u16, clusters: &[(&str, u16)]) -> String {
    let listeners: String = LISTENERS
        .iter()
        .zip(plugins)
        .map(|(name, plugin)| listener(name, plugin))
        .collect();
    let clusters: String = [("app", app_port)]
        .iter()
        .chain(clusters)
        .map(|(name, port)| cluster(name, *port))
        .collect();
    format!(
        "admin:\n  address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}\n\
         static_resources:\n  listeners:\n{listeners}  clusters:\n{clusters}"
    )
}

/// Envoy with both listeners, and their ports in the order of [`LISTENERS`].
fn start(yaml: &str) -> (Envoy, [u16; 2]) {
    let envoy =
        Envoy::try_start_yaml(yaml).unwrap_or_else(|log| panic!("Envoy did not become ready:\n{log}"));
    let listeners = envoy.admin("/listeners?format=json").unwrap().json();
    let port = |name: &str| {
        let status = listeners["listener_statuses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .unwrap_or_else(|| panic!("no listener {name}: {listeners}"));
        u16::try_from(
            status["local_address"]["socket_address"]["port_value"]
                .as_u64()
                .unwrap(),
        )
        .unwrap()
    };
    let ports = [port(LISTENERS[0]), port(LISTENERS[1])];
    (envoy, ports)
}

fn status(envoy: &Envoy, port: u16, token: &str) -> u16 {
    let request = format!(
        "GET /rest/api/2/myself HTTP/1.1\r\nhost: jira.test\r\nauthorization: Bearer {token}\r\nconnection: close\r\n\r\n"
    );
    send_raw(port, request.as_bytes())
        .unwrap_or_else(|e| panic!("request failed: {e}\n{}", envoy.log()))
        .status
}

/// A token `corp` accepts on listener `home` only, sent to the other listener, then to `home`,
/// then to the other again: the statuses in that order.
fn away_home_away(envoy: &Envoy, ports: [u16; 2], home: usize, token: &str) -> [u16; 3] {
    let away = 1 - home;
    [
        status(envoy, ports[away], token),
        status(envoy, ports[home], token),
        status(envoy, ports[away], token),
    ]
}

#[test]
fn a_jwt_provider_of_the_same_name_on_another_listener_never_accepts_the_other_key() {
    // Both keys under one `kid`, as two realms of one identity product would publish them.
    let (key_a, key_b) = (TestKey::es256("corp-1"), TestKey::es256("corp-1"));
    let plugin = |key: &TestKey| json!({"realm": "jira", "jwt_providers": {"corp": {"issuer": ISSUER, "local_jwks": jwks(&[key])}}});
    let app = DemoApp::start(0).unwrap();
    let (envoy, ports) = start(&bootstrap([&plugin(&key_a), &plugin(&key_b)], app.port(), &[]));
    let claims = json!({"iss": ISSUER, "sub": "fred", "exp": now() + 600});
    let (token_a, token_b) = (key_a.sign(&claims), key_b.sign(&claims));

    // Refused on the other listener (seed 001's 400: the signature does not verify) before and
    // after its own listener verified (and cached) it.
    assert_eq!(
        away_home_away(&envoy, ports, 0, &token_a),
        [400, 200, 400],
        "a key-A token on listeners two, one, two"
    );
    assert_eq!(
        away_home_away(&envoy, ports, 1, &token_b),
        [400, 200, 400],
        "a key-B token on listeners one, two, one"
    );
}

/// An introspection endpoint that knows one token (active, user fred); every other token is
/// inactive there.
fn introspection(known: &'static str) -> Server {
    Server::start(0, move |request: &Received| {
        let token = request
            .body
            .split('&')
            .find_map(|pair| pair.strip_prefix("token="))
            .unwrap_or_default();
        if token == known {
            Reply::json(
                200,
                &json!({"active": true, "username": "fred", "exp": now() + 600}),
            )
        } else {
            Reply::json(200, &json!({"active": false}))
        }
    })
    .unwrap()
}

fn asked_about(server: &Server, token: &str) -> usize {
    let form = format!("token={token}");
    server
        .received()
        .iter()
        .filter(|r| r.body.split('&').any(|pair| pair == form))
        .count()
}

#[test]
fn an_introspection_provider_of_the_same_name_on_another_listener_never_reuses_the_other_answer() {
    let plugin = |cluster: &str| {
        json!({
            "realm": "jira",
            "oauth_providers": {"corp": {
                "introspection": {"cluster": cluster, "path": "/introspect", "client_id": "tokengate", "client_secret": "s"},
                "user_field": "username",
                "negative_cache_ttl_seconds": 300
            }},
            "rules": [{"path_prefix": "/", "providers": ["corp"]}]
        })
    };
    let (one, two) = (introspection("token-one"), introspection("token-two"));
    let app = DemoApp::start(0).unwrap();
    let clusters = [("corp-one", one.port()), ("corp-two", two.port())];
    let (envoy, ports) = start(&bootstrap(
        [&plugin("corp-one"), &plugin("corp-two")],
        app.port(),
        &clusters,
    ));

    // Inactive on the other listener (401, cached there as inactive) before and after its own
    // listener cached the active answer, and the other way round.
    let answers = [
        away_home_away(&envoy, ports, 0, "token-one"),
        away_home_away(&envoy, ports, 1, "token-two"),
    ];
    let asked = [
        (asked_about(&one, "token-one"), asked_about(&two, "token-one")),
        (asked_about(&one, "token-two"), asked_about(&two, "token-two")),
    ];
    assert_eq!(
        answers,
        [[401, 200, 401], [401, 200, 401]],
        "token-one on listeners two, one, two; token-two on one, two, one \
         (endpoints one and two asked about each: {asked:?})"
    );
    // Each listener asked its own endpoint: an answer cached by one was not the other's.
    assert_eq!(
        asked,
        [(1, 1), (1, 1)],
        "(endpoint one, endpoint two) asked about each token"
    );
}
