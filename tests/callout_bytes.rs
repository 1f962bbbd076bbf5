//! Callout answers the SDK's host-call wrappers would panic on, which would kill the Wasm VM:
//! header bytes that are not UTF-8 (RFC 9110 section 5.5 allows obs-text, and Envoy forwards
//! it), and an answer cut off in its body (Envoy resets the callout and has no response map).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpListener;

/// A UserInfo server written byte by byte: `Bearer gh-token` is jsmith, `Bearer cut-token`
/// gets a 200 cut off in its body (the connection closes: Envoy resets the callout); any other
/// token gets a 401 whose `WWW-Authenticate` has a Latin-1 byte (`caf\xe9`).
fn latin1_userinfo() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
            let reply: Vec<u8> = if text.contains("authorization: bearer cut-token") {
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"login\""
                    .to_vec()
            } else if text.contains("authorization: bearer gh-token") {
                let body = r#"{"login":"jsmith"}"#;
                format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).into_bytes()
            } else {
                let body = br#"{"message":"Bad credentials"}"#;
                let mut reply = b"HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer realm=\"caf\xe9\", error=\"invalid_token\"\r\ncontent-type: application/json\r\n".to_vec();
                reply.extend_from_slice(
                    format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()).as_bytes(),
                );
                reply.extend_from_slice(body);
                reply
            };
            let _ = stream.write_all(&reply);
        }
    });
    port
}

#[test]
fn a_provider_challenge_that_is_not_utf8_is_a_refusal_not_a_dead_vm() {
    let app = DemoApp::start(0).unwrap();
    let userinfo = latin1_userinfo();
    let config = json!({
        "realm": "jira",
        "oauth_providers": {
            "github": {"userinfo": {"cluster": "userinfo", "path": "/user"}, "user_field": "login"}
        },
        "rules": [{"path_prefix": "/", "providers": ["github"]}],
        "directory": {"users": [{"name": "jsmith"}]}
    })
    .to_string();
    let envoy = Envoy::start_single_worker(&config, app.port(), &[("userinfo", userinfo)]);
    let bearer = |token: &str| {
        envoy.get(
            "/rest/api/2/myself",
            &[("authorization", &format!("Bearer {token}"))],
        )
    };
    assert_eq!(bearer("gh-token").status, 200, "the stack works");
    let refused = bearer("wrong-token");
    assert_eq!(refused.status, 401, "{refused:?}\n{}", envoy.log());
    let after = bearer("gh-token");
    assert_eq!(after.status, 200, "the VM survived: {after:?}\n{}", envoy.log());
    assert!(!envoy.log().contains("panicked"), "{}", envoy.log());
}

#[test]
fn a_callout_cut_off_in_its_body_is_a_provider_failure_not_a_dead_vm() {
    let app = DemoApp::start(0).unwrap();
    let userinfo = latin1_userinfo();
    let config = json!({
        "realm": "jira",
        "oauth_providers": {
            "github": {"userinfo": {"cluster": "userinfo", "path": "/user"}, "user_field": "login"}
        },
        "rules": [{"path_prefix": "/", "providers": ["github"]}],
        "directory": {"users": [{"name": "jsmith"}]}
    })
    .to_string();
    let envoy = Envoy::start_single_worker(&config, app.port(), &[("userinfo", userinfo)]);
    let bearer = |token: &str| {
        envoy.get(
            "/rest/api/2/myself",
            &[("authorization", &format!("Bearer {token}"))],
        )
    };
    let cut = bearer("cut-token");
    assert_eq!(cut.status, 503, "{cut:?}\n{}", envoy.log());
    let after = bearer("gh-token");
    assert_eq!(after.status, 200, "the VM survived: {after:?}\n{}", envoy.log());
    assert!(!envoy.log().contains("panicked"), "{}", envoy.log());
}
