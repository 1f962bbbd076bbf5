//! The service never falls over on bad input: broken JSON, wrong types, huge or endless
//! bodies, broken HTTP. After all of it, it still answers.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

#[test]
fn bad_bodies_get_400_in_jiras_error_format() {
    let scratch = Scratch::new();
    let service = Service::start(&scratch);
    let auth = bearer(
        service.create("fred", r#"{"tokenDescription":"driver"}"#)["plainTextToken"]
            .as_str()
            .unwrap(),
    );
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"null".to_vec(),
        b"\"tokenDescription\"".to_vec(),
        br#"{"tokenDescription":["a"]}"#.to_vec(),
        br#"{"tokenDescription":"x","tokenValidityTimeInMonths":"twelve"}"#.to_vec(),
        br#"{"tokenDescription":"x","tokenValidityTimeInMonths":1e400}"#.to_vec(),
        br#"{"tokenDescription":"x","tokenForUserKey":{"a":1}}"#.to_vec(),
        b"{\"tokenDescription\":\"\xff\xfe\"}".to_vec(),
        format!("{}1{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
    ];
    let headers = [
        ("Authorization".to_owned(), auth.clone()),
        ("Content-Type".to_owned(), "application/json".to_owned()),
    ];
    for body in &bodies {
        let reply = service.call_with("POST", &format!("{PREFIX}/user/token"), &headers, body);
        reply.assert_jira_error(400);
        // PATCH reads only the description; these bodies have no good one.
        if !body.starts_with(br#"{"tokenDescription":"x""#) {
            let reply = service.call_with("PATCH", &format!("{PREFIX}/user/token/1"), &headers, body);
            reply.assert_jira_error(400);
        }
    }
    let listed = service.api("GET", "/user/token/", Some(&auth), "").json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "no bad body made a token");
}

#[test]
fn bodies_over_64_kib_get_413() {
    let scratch = Scratch::new();
    let service = Service::start(&scratch);
    let path = format!("{PREFIX}/user/token");
    let auth = [("Authorization".to_owned(), password("fred"))];

    // Announced by Content-Length: refused before it is read.
    let big = vec![b'x'; 10 * 1024 * 1024];
    let reply = service.call_with("POST", &path, &auth, &big);
    reply.assert_jira_error(413);
    // Exactly one byte over the cap.
    let reply = service.call_with("POST", &path, &auth, &vec![b' '; 64 * 1024 + 1]);
    reply.assert_jira_error(413);
    // Chunked, with no length announced: cut off at the cap.
    let mut chunked = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        password("fred")
    )
    .into_bytes();
    for _ in 0..100 {
        chunked.extend_from_slice(b"400\r\n");
        chunked.extend_from_slice(&[b' '; 0x400]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    service.raw(&chunked).unwrap().assert_jira_error(413);
    // The introspection endpoint has the same cap.
    let reply = service.introspect(&format!("token={}", "a".repeat(70 * 1024)));
    assert_eq!(reply.status, 413);
    // A body at the cap is read (and here is just not JSON).
    let reply = service.call_with("POST", &path, &auth, &vec![b' '; 64 * 1024]);
    reply.assert_jira_error(400);
}

#[test]
fn broken_http_does_not_take_the_service_down() {
    let scratch = Scratch::new();
    let service = Service::start(&scratch);
    let garbage: [&[u8]; 6] = [
        b"\r\n\r\n",
        b"GET\r\n\r\n",
        b"BREW /coffee HTCPCP/1.0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        b"GET / HTTP/1.1\r\nbad header line\r\n\r\n",
        b"\x00\x01\x02\xff\xfe",
    ];
    for bytes in garbage {
        // Half-close after sending, so a server waiting for the rest of a line sees the end.
        let mut stream = TcpStream::connect(("127.0.0.1", service.port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        stream.write_all(bytes).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer);
        assert!(text.is_empty() || text.starts_with("HTTP/1.1 4"), "{text}");
    }
    // Unknown paths and methods.
    service.call("GET", "/", None, "").assert_jira_error(404);
    service
        .call("GET", "/rest/api/2/myself", None, "")
        .assert_jira_error(404);
    let reply = service.api("PUT", "/user/token/1", Some(&password("fred")), "{}");
    reply.assert_jira_error(405);
    assert!(reply.header("allow").is_some());
    // Odd paths and parameters.
    let reply = service.api(
        "GET",
        "/user/tokensByFilter?notValidAfter=%ff%00&page=%",
        Some(&password("admin")),
        "",
    );
    reply.assert_jira_error(400);
    let reply = service.api(
        "DELETE",
        "/user/token/deleteAllFor/%ff",
        Some(&password("admin")),
        "",
    );
    reply.assert_jira_error(400);
    let reply = service.api(
        "DELETE",
        "/user/token/99999999999999999999999",
        Some(&password("fred")),
        "",
    );
    reply.assert_jira_error(404);
    // Still serving, every worker alive.
    for _ in 0..16 {
        assert_eq!(
            service
                .api("GET", "/user/token/", Some(&password("jsmith")), "")
                .status,
            200
        );
    }
}
