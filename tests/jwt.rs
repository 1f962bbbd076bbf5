//! Bearer JWT providers end to end (seed 001, seed 002 scopes): the real Envoy, the built
//! module, a JWKS server and the demo application on loopback.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokengate_demo::keys::{jwks, TestKey};

const ISSUER: &str = "https://idp.example.com";

/// A JWKS server whose document the test can change.
struct KeyServer {
    server: Server,
    document: Arc<Mutex<Reply>>,
}

impl KeyServer {
    fn start(port: u16, document: Reply) -> KeyServer {
        let document = Arc::new(Mutex::new(document));
        let shared = document.clone();
        let server = Server::start(port, move |_| shared.lock().unwrap().clone()).unwrap();
        KeyServer { server, document }
    }

    fn serve(&self, reply: Reply) {
        *self.document.lock().unwrap() = reply;
    }

    fn fetches(&self) -> usize {
        self.server.count("/jwks.json")
    }
}

fn jwks_reply(keys: &[&TestKey]) -> Reply {
    Reply::json(200, &jwks(keys))
}

fn provider(extra: Value) -> Value {
    let mut idp = json!({
        "issuer": ISSUER,
        "audiences": ["jira"],
        "remote_jwks": {"cluster": "idp", "path": "/jwks.json", "refresh_interval_seconds": 300,
                        "initial_backoff_ms": 100, "unknown_kid_refetch_gap_seconds": 1, "wait_ms": 2000},
        "claims_to_headers": [{"claim": "email", "header": "x-jwt-email"}, {"claim": "groups", "header": "x-jwt-groups"}]
    });
    for (k, v) in extra.as_object().unwrap() {
        idp[k] = v.clone();
    }
    idp
}

fn config(idp: Value, rest: Value) -> String {
    let mut config = json!({"realm": "jira", "jwt_providers": {"idp": idp}});
    for (k, v) in rest.as_object().unwrap() {
        config[k] = v.clone();
    }
    config.to_string()
}

fn claims(sub: &str) -> Value {
    json!({"iss": ISSUER, "aud": "jira", "sub": sub, "email": format!("{sub}@example.com"),
           "groups": ["jira-users", "admins"], "scope": "read:jira-work read:jira-user", "exp": now() + 600})
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn error_message(response: &Response) -> String {
    response.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn tokens_signed_by_the_remote_jwks_reach_the_application_with_their_claims() {
    let (rsa, ec) = (TestKey::rs256("rsa-1"), TestKey::es256("ec-1"));
    let keys = KeyServer::start(0, jwks_reply(&[&rsa, &ec]));
    let app = DemoApp::start(0).unwrap();
    let envoy = Envoy::start_with_clusters(
        &config(provider(json!({})), json!({})),
        app.port(),
        &[("idp", keys.server.port())],
    );

    let spoofed = [("x-jwt-email", "root@example.com"), ("x-tokengate-user", "root")];
    for key in [&rsa, &ec] {
        let token = key.sign(&claims("fred"));
        let auth = bearer(&token);
        let mut headers = vec![("authorization", auth.as_str())];
        headers.extend(spoofed);
        let response = envoy.get("/rest/api/2/myself", &headers);
        assert_eq!(response.status, 200, "{}: {response:?}", key.alg());
        assert_eq!(response.json()["name"], "fred");
    }
    for upstream in app.received() {
        assert_eq!(upstream.header("authorization"), None);
        assert_eq!(upstream.header_values("x-tokengate-user"), ["fred"]);
        assert_eq!(upstream.header_values("x-jwt-email"), ["fred@example.com"]);
        assert_eq!(upstream.header_values("x-jwt-groups"), ["jira-users,admins"]);
    }
    // One fetch per VM: Envoy's main thread and each of its 2 workers run their own.
    assert!(keys.fetches() <= 3, "{} JWKS fetches", keys.fetches());
}

#[test]
fn every_bearer_error_has_its_seed_001_body_and_rfc_6750_challenge() {
    let key = TestKey::es256("ec-1");
    let stranger = TestKey::es256("ec-1");
    let keys = KeyServer::start(0, jwks_reply(&[&key]));
    let app = DemoApp::start(0).unwrap();
    let rest = json!({
        "rules": [
            {"path_prefix": "/rest/api/3/", "providers": ["idp"], "scopes": ["write:jira-work"]},
            {"path_prefix": "/", "providers": ["idp"]}
        ],
        "directory": {"users": [{"name": "fred"}, {"name": "departed", "active": false}]}
    });
    let envoy = Envoy::start_with_clusters(
        &config(provider(json!({})), rest),
        app.port(),
        &[("idp", keys.server.port())],
    );
    let expired = key.sign(&json!({"iss": ISSUER, "aud": "jira", "sub": "fred", "exp": now() - 120}));
    let other_issuer =
        key.sign(&json!({"iss": "https://evil", "aud": "jira", "sub": "fred", "exp": now() + 60}));
    let other_audience =
        key.sign(&json!({"iss": ISSUER, "aud": "confluence", "sub": "fred", "exp": now() + 60}));
    let none = {
        let t = key.sign_with_header(&json!({"alg": "none", "kid": "ec-1"}), &claims("fred"));
        format!("{}.", t.rsplit_once('.').unwrap().0)
    };
    let cases: Vec<(&str, String, u16, &str, Option<&str>)> = vec![
        (
            "/x",
            bearer(&stranger.sign(&claims("fred"))),
            400,
            "Token Invalid: Error while validating the token.",
            Some(r#"Bearer realm="jira", error="invalid_token""#),
        ),
        (
            "/x",
            bearer(&other_issuer),
            400,
            "Token Invalid: Error while validating the token.",
            Some(r#"Bearer realm="jira", error="invalid_token""#),
        ),
        (
            "/x",
            bearer(&other_audience),
            400,
            "Token Invalid: Error while validating the token.",
            Some(r#"Bearer realm="jira", error="invalid_token""#),
        ),
        (
            "/x",
            bearer(&none),
            400,
            "Token Invalid: Error while validating the token.",
            Some(r#"Bearer realm="jira", error="invalid_token""#),
        ),
        (
            "/x",
            bearer("not-a-jwt"),
            400,
            "Token Invalid: Error while validating the token.",
            Some(r#"Bearer realm="jira", error="invalid_token""#),
        ),
        (
            "/x",
            bearer(&expired),
            401,
            "Token Expired: The token provided is expired.",
            Some(r#"Bearer realm="jira", error="invalid_token""#),
        ),
        (
            "/x",
            String::new(),
            401,
            "Authentication required: No bearer token was provided.",
            Some(r#"Bearer realm="jira""#),
        ),
        (
            "/x",
            bearer(&key.sign(&claims("nobody"))),
            400,
            "No user found with this username/email address",
            None,
        ),
        (
            "/x",
            bearer(&key.sign(&claims("departed"))),
            401,
            "User Inactive: The user of this token is not active.",
            Some(r#"Bearer realm="jira", error="invalid_token""#),
        ),
        (
            "/rest/api/3/issue",
            bearer(&key.sign(&claims("fred"))),
            403,
            "Insufficient Scope: The token does not grant the scope this request requires.",
            Some(r#"Bearer realm="jira", error="insufficient_scope", scope="write:jira-work""#),
        ),
    ];
    for (path, auth, status, message, challenge) in cases {
        let headers: Vec<(&str, &str)> = if auth.is_empty() {
            vec![]
        } else {
            vec![("authorization", &auth)]
        };
        let response = envoy.get(path, &headers);
        assert_eq!(response.status, status, "{message}: {response:?}");
        assert_eq!(
            response.body,
            format!(r#"{{"error":{{"status":"ERROR","message":"{message}"}}}}"#)
        );
        assert_eq!(response.header("www-authenticate"), challenge, "{message}");
    }
    assert!(app.received().is_empty());
    let ok = envoy.get("/x", &[("authorization", &bearer(&key.sign(&claims("fred"))))]);
    assert_eq!(ok.status, 200);
}

fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_rotated_key_is_picked_up_without_a_restart_and_junk_kids_do_not_hammer_the_key_server() {
    let (old, new) = (TestKey::es256("2026-01"), TestKey::es256("2026-02"));
    let keys = KeyServer::start(0, jwks_reply(&[&old]));
    let app = DemoApp::start(0).unwrap();
    let envoy = Envoy::start_with_clusters(
        &config(provider(json!({})), json!({})),
        app.port(),
        &[("idp", keys.server.port())],
    );
    assert_eq!(
        envoy
            .get("/x", &[("authorization", &bearer(&old.sign(&claims("fred"))))])
            .status,
        200
    );
    let before = keys.fetches();

    keys.serve(jwks_reply(&[&old, &new]));
    let rotated = envoy.get("/x", &[("authorization", &bearer(&new.sign(&claims("fred"))))]);
    assert_eq!(rotated.status, 200, "{rotated:?}");
    assert!(keys.fetches() > before, "the unknown kid caused a refetch");

    let junk_before = keys.fetches();
    for i in 0..20 {
        let junk = TestKey::es256(&format!("junk-{i}"));
        let response = envoy.get("/x", &[("authorization", &bearer(&junk.sign(&claims("fred"))))]);
        assert_eq!(response.status, 400);
    }
    // 20 junk kids within about a second: at most a couple of refetches per worker.
    assert!(
        keys.fetches() - junk_before <= 4,
        "{} refetches for junk kids",
        keys.fetches() - junk_before
    );
}

#[test]
fn a_key_server_down_at_start_gives_a_503_then_keys_load_when_it_comes_up() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let app = DemoApp::start(0).unwrap();
    let idp = provider(
        json!({"remote_jwks": {"cluster": "idp", "path": "/jwks.json", "timeout_ms": 200,
        "initial_backoff_ms": 100, "wait_ms": 500}}),
    );
    let envoy = Envoy::start_with_clusters(&config(idp, json!({})), app.port(), &[("idp", port)]);
    let key = TestKey::es256("k1");
    let token = bearer(&key.sign(&claims("fred")));

    let started = Instant::now();
    let waited = envoy.get("/x", &[("authorization", &token)]);
    assert_eq!(waited.status, 503, "{waited:?}");
    assert_eq!(
        error_message(&waited),
        "Service Unavailable: The signing keys could not be loaded."
    );
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "the request did not wait for the keys"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(envoy.counter("wasmcustom.tokengate.jwks.fetch_failed") >= 1);

    let _keys = KeyServer::start(port, jwks_reply(&[&key]));
    // One fetch for the whole Envoy process (the worker or the main thread's VM, whichever
    // holds the lease), not one per VM.
    wait_for("the JWKS to load", || {
        envoy.counter("wasmcustom.tokengate.jwks.fetch_ok") >= 1
    });
    assert_eq!(envoy.get("/x", &[("authorization", &token)]).status, 200);
}

#[test]
fn garbage_from_the_key_server_keeps_the_last_good_keys() {
    let key = TestKey::es256("k1");
    let keys = KeyServer::start(0, jwks_reply(&[&key]));
    let app = DemoApp::start(0).unwrap();
    let idp = provider(
        json!({"remote_jwks": {"cluster": "idp", "path": "/jwks.json", "refresh_interval_seconds": 1,
        "initial_backoff_ms": 100}}),
    );
    let envoy = Envoy::start_with_clusters(
        &config(idp, json!({})),
        app.port(),
        &[("idp", keys.server.port())],
    );
    // Every VM (main thread and 2 workers) holds good keys before the server turns bad.
    wait_for("every VM to load keys", || {
        envoy.counter("wasmcustom.tokengate.jwks.fetch_ok") >= 3
    });
    let token = bearer(&key.sign(&claims("fred")));
    assert_eq!(envoy.get("/x", &[("authorization", &token)]).status, 200);

    for garbage in [
        Reply::text(200, "<html>maintenance</html>", "text/html"),
        Reply::json(200, &json!({"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]})),
        Reply::text(500, "oops", "text/plain"),
    ] {
        let failures = envoy.counter("wasmcustom.tokengate.jwks.fetch_failed");
        keys.serve(garbage);
        wait_for("a failed refresh", || {
            envoy.counter("wasmcustom.tokengate.jwks.fetch_failed") > failures
        });
        // A fresh token so the verified-token cache cannot answer.
        let fresh = bearer(&key.sign(&claims("jsmith")));
        assert_eq!(envoy.get("/x", &[("authorization", &fresh)]).status, 200);
    }
}

#[test]
fn a_route_with_two_providers_accepts_either_token() {
    let key = TestKey::rs256("r1");
    let app = DemoApp::start(0).unwrap();
    let idp = json!({"issuer": ISSUER, "local_jwks": jwks(&[&key]), "user_claim": "preferred_username"});
    let rest = json!({
        "tisjwt": {"secret": SECRET},
        "rules": [{"path_prefix": "/", "providers": ["tisjwt", "idp"]}]
    });
    let envoy = Envoy::start(&config(idp, rest), app.port());
    let jwt =
        key.sign(&json!({"iss": ISSUER, "sub": "u-1", "preferred_username": "jsmith", "exp": now() + 60}));
    let tis = mint_tisjwt(SECRET.as_bytes(), &json!({"sub": "fred", "exp": now() + 60}));

    let by_jwt = envoy.get("/rest/api/2/myself", &[("authorization", &bearer(&jwt))]);
    assert_eq!(by_jwt.json()["name"], "jsmith");
    let by_tis = envoy.get(
        "/rest/api/2/myself",
        &[("authorization", &format!("TISJWT {tis}"))],
    );
    assert_eq!(by_tis.json()["name"], "fred");
    let neither = envoy.get("/rest/api/2/myself", &[]);
    assert_eq!(neither.status, 401);
    assert_eq!(
        neither.json()["messages"][0],
        "tisjwt is required for authentication.",
        "the first provider owns the answer"
    );
}

/// A signature with one base64url character changed in the middle (still canonical base64url,
/// still the right length): only the signature check can catch it.
fn tampered(token: &str) -> String {
    let (input, signature) = token.rsplit_once('.').unwrap();
    let mut signature = signature.as_bytes().to_vec();
    let middle = signature.len() / 2;
    signature[middle] = if signature[middle] == b'A' { b'B' } else { b'A' };
    format!("{input}.{}", String::from_utf8(signature).unwrap())
}

#[test]
fn rsa_and_ecdsa_signatures_are_checked_by_envoy_and_bad_ones_are_refused() {
    let (rsa, ec) = (TestKey::rs256("rsa-1"), TestKey::es256("ec-1"));
    let impostors = [TestKey::rs256("rsa-1"), TestKey::es256("ec-1")];
    let keys = KeyServer::start(0, jwks_reply(&[&rsa, &ec]));
    let app = DemoApp::start(0).unwrap();
    // No verified-token cache: every request's signature is checked.
    let envoy = Envoy::start_with_clusters(
        &config(provider(json!({"cache_ttl_seconds": 0})), json!({})),
        app.port(),
        &[("idp", keys.server.port())],
    );
    let log = envoy.log();
    assert!(
        log.contains("RS256/384/512 and ES256/384/512 signatures are checked by Envoy (verify_signature)"),
        "{log}"
    );
    for (key, impostor) in [&rsa, &ec].into_iter().zip(&impostors) {
        let token = key.sign(&claims("fred"));
        for _ in 0..3 {
            let response = envoy.get("/rest/api/2/myself", &[("authorization", &bearer(&token))]);
            assert_eq!(response.status, 200, "{}: {response:?}", key.alg());
            assert_eq!(response.json()["name"], "fred");
        }
        for bad in [tampered(&token), impostor.sign(&claims("fred"))] {
            let response = envoy.get("/rest/api/2/myself", &[("authorization", &bearer(&bad))]);
            assert_eq!(response.status, 400, "{}: {response:?}", key.alg());
            assert_eq!(
                error_message(&response),
                "Token Invalid: Error while validating the token."
            );
        }
    }
    assert_eq!(app.received().len(), 6);
    assert_eq!(
        envoy.counter("wasmcustom.tokengate.jwt.signatures_checked_by_host"),
        10
    );
}

/// What tokengate imports from Envoy and WASI and exports to it: with a capability restriction,
/// Envoy stubs out (or never calls) anything not listed.
const MODULE_CAPABILITIES: &[&str] = &[
    "proxy_get_buffer_bytes",
    "proxy_set_buffer_bytes",
    "proxy_get_property",
    "proxy_set_property",
    "proxy_add_header_map_value",
    "proxy_define_metric",
    "proxy_get_header_map_pairs",
    "proxy_get_header_map_value",
    "proxy_set_header_map_pairs",
    "proxy_replace_header_map_value",
    "proxy_remove_header_map_value",
    "proxy_close_stream",
    "proxy_get_status",
    "proxy_get_shared_data",
    "proxy_continue_stream",
    "proxy_set_shared_data",
    "proxy_set_tick_period_milliseconds",
    "proxy_get_current_time_nanoseconds",
    "proxy_increment_metric",
    "proxy_http_call",
    "proxy_send_local_response",
    "proxy_set_effective_context",
    "proxy_log",
    "proxy_done",
    "proxy_call_foreign_function",
    "random_get",
    "environ_get",
    "environ_sizes_get",
    "fd_write",
    "proc_exit",
    "proxy_abi_version_0_2_1",
    "proxy_on_configure",
    "proxy_on_context_create",
    "proxy_on_delete",
    "proxy_on_done",
    "proxy_on_foreign_function",
    "proxy_on_http_call_response",
    "proxy_on_log",
    "proxy_on_memory_allocate",
    "proxy_on_request_headers",
    "proxy_on_request_body",
    "proxy_on_request_trailers",
    "proxy_on_response_headers",
    "proxy_on_response_body",
    "proxy_on_response_trailers",
    "proxy_on_tick",
    "proxy_on_vm_start",
    "_initialize",
];

#[test]
fn without_envoys_verify_signature_the_module_checks_signatures_itself() {
    let (rsa, ec) = (TestKey::rs256("rsa-1"), TestKey::es256("ec-1"));
    let keys = KeyServer::start(0, jwks_reply(&[&rsa, &ec]));
    let app = DemoApp::start(0).unwrap();
    let plugin = config(provider(json!({"cache_ttl_seconds": 0})), json!({}));
    // Every capability the module uses except the foreign-function call.
    let allowed: String = MODULE_CAPABILITIES
        .iter()
        .filter(|name| **name != "proxy_call_foreign_function")
        .map(|name| format!("                    {name}: {{}}\n"))
        .collect();
    let yaml = bootstrap(&plugin, app.port(), &[("idp", keys.server.port())]).replacen(
        "                failure_policy: FAIL_CLOSED\n",
        &format!(
            "                failure_policy: FAIL_CLOSED\n                capability_restriction_config:\n                  allowed_capabilities:\n{allowed}"
        ),
        1,
    );
    let envoy = Envoy::try_start_yaml(&yaml).unwrap_or_else(|log| panic!("{log}"));
    let log = envoy.log();
    assert!(
        log.contains("restricted proxy-wasm capability: proxy_call_foreign_function"),
        "{log}"
    );
    assert!(
        log.contains(
            "this Envoy has no working verify_signature: RSA and ECDSA signatures are checked in the module"
        ),
        "{log}"
    );
    for key in [&rsa, &ec] {
        let token = key.sign(&claims("fred"));
        let response = envoy.get("/rest/api/2/myself", &[("authorization", &bearer(&token))]);
        assert_eq!(response.status, 200, "{}: {response:?}", key.alg());
        let response = envoy.get(
            "/rest/api/2/myself",
            &[("authorization", &bearer(&tampered(&token)))],
        );
        assert_eq!(response.status, 400, "{}: {response:?}", key.alg());
    }
    assert_eq!(app.received().len(), 2);
    assert_eq!(
        envoy.counter("wasmcustom.tokengate.jwt.signatures_checked_by_host"),
        0
    );
}
