//! Seed 000 end to end: the real Envoy running tokengate.wasm in front of the demo application.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use serde_json::json;

const MISSING: &str = "tisjwt is required for authentication.";
const INVALID: &str =
    "tisjwt is invalid. Please make sure that you have supplied a valid tisjwt token that is active and has not expired.";
const LICENSE: &str = "License is not valid.";
const INACTIVE: &str = "User is not an active Jira user.";

fn plugin_config() -> String {
    json!({
        "plugin_version": "2.0.0.1",
        "realm": "jira",
        "tisjwt": {
            "secret": SECRET,
            "issuer": "com.obss.plugin.time-in-status",
            "licenses": [
                {"client_key": "tenant-a", "valid_until": "2099-12-31"},
                {"client_key": "tenant-lapsed", "valid_until": "2020-03-19"}
            ]
        },
        "directory": {"inactive_users": ["departed"]}
    })
    .to_string()
}

struct Stack {
    app: Server,
    envoy: Envoy,
}

fn stack() -> Stack {
    let app = DemoApp::start(0).expect("demo app");
    let envoy = Envoy::start(&plugin_config(), app.port());
    Stack { app, envoy }
}

/// A token for `sub` in `tenant`, valid for an hour, signed with the configured secret.
fn token(sub: &str, tenant: &str) -> String {
    token_with(
        json!({"sub": sub, "clientKey": tenant, "iss": "com.obss.plugin.time-in-status", "exp": now() + 3600}),
    )
}

fn token_with(claims: serde_json::Value) -> String {
    mint_tisjwt(SECRET.as_bytes(), &claims)
}

/// Asserts the exact seed 000 body (with `time` checked separately) and the challenge.
fn assert_tis_error(response: &Response, status: u16, message: &str) {
    assert_eq!(response.status, status, "{response:?}");
    assert_eq!(
        response.header("content-type"),
        Some("application/json;charset=UTF-8")
    );
    let body = response.json();
    let time = body["time"].as_str().expect("time").to_owned();
    assert_tis_time_is_now(&time);
    let title = if status == 401 {
        "Unauthorized access"
    } else {
        "Bad Request"
    };
    let expected = format!(
        r#"{{"status":{status},"message":"{title}","messages":["{message}"],"pluginVersion":"2.0.0.1","time":"{time}"}}"#
    );
    assert_eq!(response.body, expected);
    if status == 401 {
        assert_eq!(response.header("www-authenticate"), Some("TISJWT realm=\"jira\""));
    }
}

#[test]
fn a_valid_header_token_reaches_the_application_as_its_user_and_nothing_else() {
    let s = stack();
    let auth = format!("TISJWT {}", token("fred", "tenant-a"));
    let response = s.envoy.get(
        "/rest/api/2/myself",
        &[
            ("Authorization", &auth),
            ("X-Tokengate-User", "admin"),
            ("x-tokengate-tenant", "other"),
        ],
    );
    assert_eq!(response.status, 200, "{response:?}");
    let me = response.json();
    assert_eq!(me["name"], "fred");
    assert_eq!(me["displayName"], "Fred F. User");

    let received = s.app.received();
    assert_eq!(received.len(), 1);
    let upstream = &received[0];
    assert_eq!(upstream.path, "/rest/api/2/myself");
    assert_eq!(
        upstream.header("authorization"),
        None,
        "the tisjwt must not reach the application"
    );
    assert_eq!(upstream.header_values("x-tokengate-user"), vec!["fred"]);
    assert_eq!(upstream.header_values("x-tokengate-tenant"), vec!["tenant-a"]);

    let confluence = s.envoy.get("/rest/api/user/current", &[("authorization", &auth)]);
    assert_eq!(confluence.json()["username"], "fred");
    assert_eq!(s.envoy.counter("wasmcustom.tokengate.allowed"), 2);
}

#[test]
fn a_query_token_is_accepted_and_removed_from_the_forwarded_path() {
    let s = stack();
    let t = token("fred", "tenant-a");
    let response = s
        .envoy
        .get(&format!("/rest/export/status?a=1&tisjwt={t}&b=%20x&c"), &[]);
    assert_eq!(response.status, 200, "{response:?}");
    let upstream = &s.app.received()[0];
    assert_eq!(upstream.path, "/rest/export/status?a=1&b=%20x&c");
    assert_eq!(upstream.header("x-tokengate-user"), Some("fred"));

    let only = s.envoy.get(&format!("/rest/export/status?tisjwt={t}"), &[]);
    assert_eq!(only.status, 200);
    assert_eq!(s.app.received()[1].path, "/rest/export/status");
}

/// Path, headers, expected message.
type Case = (String, Vec<(&'static str, String)>, &'static str);

#[test]
fn every_documented_error_has_its_exact_body_and_nothing_reaches_the_application() {
    let s = stack();
    let hour = now() + 3600;
    let iss = "com.obss.plugin.time-in-status";
    let other_secret = mint_tisjwt(
        b"some-other-secret-0123456789abcdef",
        &json!({"sub": "fred", "clientKey": "tenant-a", "iss": iss, "exp": hour}),
    );
    let alg_none = mint_with_header(
        SECRET.as_bytes(),
        &json!({"alg": "none"}),
        &json!({"sub": "fred", "clientKey": "tenant-a", "iss": iss, "exp": hour}),
    );
    let unsigned_none = format!("{}.", alg_none.rsplit_once('.').unwrap().0);
    let cases: Vec<Case> = vec![
        ("/rest/api/2/myself".into(), vec![], MISSING),
        ("/rest/api/2/myself?tisjwt=".into(), vec![], MISSING),
        (
            "/rest/api/2/myself".into(),
            vec![("authorization", "TISJWT".into())],
            MISSING,
        ),
        (
            "/rest/api/2/myself".into(),
            vec![("authorization", "Bearer abc".into())],
            MISSING,
        ),
        (
            "/rest/api/2/myself".into(),
            vec![("authorization", format!("TISJWT {other_secret}"))],
            INVALID,
        ),
        (
            "/rest/api/2/myself".into(),
            vec![("authorization", format!("TISJWT {alg_none}"))],
            INVALID,
        ),
        (
            "/rest/api/2/myself".into(),
            vec![("authorization", format!("TISJWT {unsigned_none}"))],
            INVALID,
        ),
        (
            "/rest/api/2/myself".into(),
            vec![(
                "authorization",
                format!(
                    "TISJWT {}",
                    token_with(
                        json!({"sub": "fred", "clientKey": "tenant-a", "iss": iss, "exp": now() - 120})
                    )
                ),
            )],
            INVALID,
        ),
        (
            format!(
                "/x?tisjwt={}",
                token_with(
                    json!({"sub": "fred", "clientKey": "tenant-a", "iss": iss, "exp": hour, "nbf": now() + 600})
                )
            ),
            vec![],
            INVALID,
        ),
        (
            "/x".into(),
            vec![(
                "authorization",
                format!(
                    "TISJWT {}",
                    token_with(
                        json!({"sub": "fred", "clientKey": "tenant-a", "iss": "someone-else", "exp": hour})
                    )
                ),
            )],
            INVALID,
        ),
        (
            "/x".into(),
            vec![(
                "authorization",
                format!("TISJWT {}", token("fred", "tenant-unknown")),
            )],
            LICENSE,
        ),
        (
            "/x".into(),
            vec![(
                "authorization",
                format!("TISJWT {}", token("fred", "tenant-lapsed")),
            )],
            LICENSE,
        ),
        (
            "/x".into(),
            vec![(
                "authorization",
                format!("TISJWT {}", token("departed", "tenant-a")),
            )],
            INACTIVE,
        ),
    ];
    for (path, headers, message) in &cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let response = s.envoy.get(path, &headers);
        assert_tis_error(&response, 401, message);
    }
    assert!(
        s.app.received().is_empty(),
        "denied requests reached the application"
    );
    assert_eq!(
        s.envoy.counter("wasmcustom.tokengate.denied.missing_credential"),
        4
    );
    assert_eq!(s.envoy.counter("wasmcustom.tokengate.denied.invalid_token"), 5);
    assert_eq!(s.envoy.counter("wasmcustom.tokengate.denied.expired_token"), 1);
    assert_eq!(s.envoy.counter("wasmcustom.tokengate.denied.invalid_license"), 2);
    assert_eq!(s.envoy.counter("wasmcustom.tokengate.denied.inactive_user"), 1);
}

#[test]
fn two_credentials_are_a_bad_request_not_a_guess() {
    let s = stack();
    let good = token("fred", "tenant-a");
    let auth = format!("TISJWT {good}");
    let message = "More than one credential was supplied. Send the tisjwt token once: in the Authorization header or in the tisjwt query parameter.";
    let header_and_query = s
        .envoy
        .get(&format!("/x?tisjwt={good}"), &[("authorization", &auth)]);
    assert_tis_error(&header_and_query, 400, message);
    let two_headers = s.envoy.get(
        "/x",
        &[("authorization", &auth), ("authorization", "TISJWT other")],
    );
    assert_tis_error(&two_headers, 400, message);
    let two_params = s.envoy.get(&format!("/x?tisjwt={good}&tisjwt={good}"), &[]);
    assert_tis_error(&two_params, 400, message);
    assert!(s.app.received().is_empty());
}

#[test]
fn bad_inputs_get_their_documented_answer_and_never_kill_the_vm() {
    let s = stack();
    let good = token("fred", "tenant-a");
    let (header_and_payload, _) = good.rsplit_once('.').unwrap();
    let invalid_tokens = [
        "a".to_string(),
        "a.b".to_string(),
        "a.b.c.d".to_string(),
        format!("{good}.x"),
        format!("{header_and_payload}.!!!!"),
        "%%%.***.$$$".to_string(),
        format!("{good}="),
        "é.e30.x".to_string(),
        "\u{202e}\u{1F600}".to_string(),
        "x".repeat(60 * 1024),
        format!("{}.{}.{}", "e".repeat(30_000), "e".repeat(30_000), "e".repeat(10)),
    ];
    for t in &invalid_tokens {
        let response = s.envoy.get("/x", &[("authorization", &format!("TISJWT {t}"))]);
        assert_tis_error(&response, 401, INVALID);
    }
    // Raw bytes that are not UTF-8 in the Authorization value.
    let non_utf8 =
        b"GET /x HTTP/1.1\r\nhost: a\r\nconnection: close\r\nauthorization: TISJWT \xff\xfe\xfd\r\n\r\n";
    assert_tis_error(&s.envoy.raw(non_utf8), 401, INVALID);
    // Control characters never reach the filter: Envoy's codec refuses the request itself.
    let control = b"GET /x HTTP/1.1\r\nhost: a\r\nconnection: close\r\nauthorization: TISJWT a\x01b\r\n\r\n";
    assert_eq!(s.envoy.raw(control).status, 400);
    // A header block over Envoy's limit (96 KiB here) is refused by Envoy with 431.
    let huge = s.envoy.get(
        "/x",
        &[("authorization", &format!("TISJWT {}", "x".repeat(100 * 1024)))],
    );
    assert_eq!(huge.status, 431);

    assert!(s.app.received().is_empty());
    // The VM is alive and still verifies: a panic would have turned this into a 5xx.
    let after = s.envoy.get(
        "/rest/api/2/myself",
        &[("authorization", &format!("TISJWT {good}"))],
    );
    assert_eq!(after.status, 200, "{after:?}");
    assert!(!s.envoy.log().contains("panicked"), "{}", s.envoy.log());
}

#[test]
fn envoy_refuses_a_configuration_with_an_unknown_or_invalid_field() {
    let app = DemoApp::start(0).expect("demo app");
    let cases = [
        (
            json!({"tisjwt": {"secret": SECRET, "secrett": "x"}}),
            "field `tisjwt.secrett`",
        ),
        (
            json!({"tisjwt": {"secret": "short"}}),
            "field `tisjwt.secret`: must be at least 32 bytes",
        ),
        (
            json!({"tisjwt": {"secret": SECRET, "algorithms": ["none"]}}),
            "field `tisjwt.algorithms`",
        ),
    ];
    for (config, expected) in cases {
        let log = match Envoy::try_start(&config.to_string(), app.port()) {
            Ok(_) => panic!("Envoy accepted {config}"),
            Err(log) => log,
        };
        assert!(log.contains(expected), "log lacks {expected:?}:\n{log}");
        assert!(!log.contains(SECRET), "the secret was logged");
    }
}
