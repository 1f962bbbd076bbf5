//! The service never falls over on bad input: broken JSON, wrong types, huge or endless
//! bodies, broken HTTP, oversized heads, slow clients, password guessing, HTTP/2, SIGTERM.
//! After all of it, it still answers, and introspection within the filter's callout timeout.

// Test helpers: failing loudly is their job (clippy does not count them as tests).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// A fresh token of fred's, made with his password.
fn fred_token(service: &Service) -> String {
    service.create("fred", r#"{"tokenDescription":"load"}"#)["plainTextToken"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Introspects `token` and asserts it is active, answered within the filter's callout timeout
/// (1 s): the one timed assertion of these tests.
fn introspect_within_the_callout_timeout(service: &Service, token: &str) {
    let started = Instant::now();
    let reply = service.introspect(&format!("token={token}"));
    let took = started.elapsed();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["active"], true, "{}", reply.body);
    assert!(took < Duration::from_secs(1), "introspection took {took:?}");
}

/// Opens a connection that announces a 60000-byte body and sends one byte of it.
fn slow_body(port: u16, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream
}

#[test]
fn a_terabyte_content_length_gets_413_unread_and_the_service_keeps_answering() {
    let scratch = Scratch::new();
    let service = Service::start(&scratch);
    let token = fred_token(&service);
    for path in [format!("{PREFIX}/user/token"), "/introspect".to_owned()] {
        for _ in 0..3 {
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Length: 1000000000000\r\n\r\n",
                password("fred")
            );
            // raw() reads until the server closes: an answer proves the connection was closed.
            let reply = service.raw(head.as_bytes()).expect("an answer");
            reply.assert_jira_error(413);
            assert_eq!(reply.header("connection"), Some("close"));
        }
    }
    introspect_within_the_callout_timeout(&service, &token);
    assert_eq!(
        service
            .api("GET", "/user/token", Some(&bearer(&token)), "")
            .status,
        200
    );
}

#[test]
fn introspection_is_answered_in_time_under_slow_bodies_and_password_guessing() {
    let scratch = Scratch::new();
    let service = Service::start(&scratch);
    let token = fred_token(&service);
    // fred is the one guessed; a token of jsmith's is introspected while fred ends locked
    // (fred's own tokens then answer `locked`), made before the guessing locks this address.
    let bystander = service.create("jsmith", r#"{"tokenDescription":"load"}"#)["plainTextToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let port = service.port;
    let stop = Arc::new(AtomicBool::new(false));

    // 16, then 200 connections that send a body one byte a second.
    let slow = Arc::new(Mutex::new(Vec::new()));
    let trickle = {
        let (slow, stop) = (slow.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                for stream in slow.lock().unwrap().iter_mut() {
                    let _ = Write::write_all(stream, b" ");
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    // And 100 that stop in the middle of their head (they hold a connection slot, no thread).
    let _partial_heads: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            stream
                .write_all(b"POST /introspect HTTP/1.1\r\nHost: x\r\nAuthori")
                .unwrap();
            stream
        })
        .collect();
    for count in [16, 200] {
        let opened: Vec<TcpStream> = (0..count)
            .map(|i| {
                let path = if i % 2 == 0 {
                    format!("{PREFIX}/user/token")
                } else {
                    "/introspect".to_owned()
                };
                slow_body(port, &path)
            })
            .collect();
        slow.lock().unwrap().extend(opened);
        for _ in 0..20 {
            introspect_within_the_callout_timeout(&service, &token);
        }
    }

    // And 64 threads guessing fred's password as fast as they are answered.
    let answered = Arc::new(AtomicUsize::new(0));
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let guessers: Vec<_> = (0..64)
        .map(|i| {
            let (stop, answered, statuses) = (stop.clone(), answered.clone(), statuses.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let auth = [("Authorization".to_owned(), basic(&format!("fred:guess-{i}-{n}")))];
                    if let Some(reply) = request(port, "GET", &format!("{PREFIX}/user/token"), &auth, b"") {
                        statuses.lock().unwrap().push(reply.status);
                    }
                    answered.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    // The guessing is under way once some guesses were answered.
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.load(Ordering::SeqCst) < 16 {
        assert!(Instant::now() < deadline, "no guess was answered");
        std::thread::sleep(Duration::from_millis(10));
    }
    for _ in 0..20 {
        introspect_within_the_callout_timeout(&service, &bystander);
    }
    stop.store(true, Ordering::SeqCst);
    for guesser in guessers {
        guesser.join().unwrap();
    }
    trickle.join().unwrap();

    // fred ends locked: his right password gets Jira's CAPTCHA answer, sent from an address
    // that guessed nothing (the guessers' 127.0.0.1 is over its own limit), while jsmith's
    // right password from that address still gets in; fred's token is answered `locked`.
    let elsewhere = |auth: String| {
        let headers = [
            ("Authorization".to_owned(), auth),
            ("x-envoy-external-address".to_owned(), "198.51.100.7".to_owned()),
        ];
        request(port, "GET", &format!("{PREFIX}/user/token"), &headers, b"").expect("an answer")
    };
    let fred = elsewhere(password("fred"));
    fred.assert_jira_error(403);
    assert_eq!(
        fred.header("x-authentication-denied-reason"),
        Some("CAPTCHA_CHALLENGE; login-url=/login.jsp"),
        "{fred:?}"
    );
    assert_eq!(elsewhere(password("jsmith")).status, 200);
    let reply = service.introspect(&format!("token={token}"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["active"], false, "{}", reply.body);
    assert_eq!(reply.json()["locked"], true, "{}", reply.body);

    // Every guess was refused (401; 403 once fred is locked; 503 when the password queue was
    // full), none failed with another 5xx.
    let statuses = statuses.lock().unwrap();
    assert!(!statuses.is_empty());
    for status in statuses.iter() {
        assert!([401, 403, 503].contains(status), "a guess got {status}");
    }
    assert!(statuses.contains(&403), "the guessing never reached the lock");
    // The slow connections are cut (408, or closed) instead of being held open.
    for mut stream in slow.lock().unwrap().drain(..) {
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut answer = Vec::new();
        match stream.read_to_end(&mut answer) {
            Ok(_) => {}
            Err(e) => assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "a slow-body connection was still open after 30 s"
            ),
        }
        let text = String::from_utf8_lossy(&answer);
        assert!(text.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
    }
    introspect_within_the_callout_timeout(&service, &bystander);
}

/// Streams `total` bytes after `head` until the server stops taking them; how many it took.
fn stream_until_refused(port: u16, head: &[u8], chunk: &[u8], total: usize) -> usize {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    stream.write_all(head).unwrap();
    let mut sent = 0;
    while sent < total {
        match stream.write(chunk) {
            Ok(n) => sent += n,
            Err(e) => {
                assert!(
                    !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ),
                    "the server neither read nor closed"
                );
                break;
            }
        }
    }
    sent
}

#[test]
fn a_huge_header_line_and_a_million_headers_are_refused_with_bounded_memory() {
    let scratch = Scratch::new();
    let service = Service::start(&scratch);
    let token = fred_token(&service);
    introspect_within_the_callout_timeout(&service, &token);
    let before = service.rss_kib();

    // One 512 MiB header line.
    let total = 512 * 1024 * 1024;
    let line = vec![b'a'; 1024 * 1024];
    let head = b"GET /introspect HTTP/1.1\r\nHost: x\r\nX-Big: ";
    let sent = stream_until_refused(service.port, head, &line, total);
    assert!(sent < total, "all of the 512 MiB line was taken");
    let after_line = service.rss_kib();

    // A million headers.
    let headers = b"X-H: v\r\n".repeat(10_000);
    let total = 1_000_000 * 8;
    let sent = stream_until_refused(
        service.port,
        b"GET /introspect HTTP/1.1\r\nHost: x\r\n",
        &headers,
        total,
    );
    assert!(sent < total, "all of the million headers were taken");
    let after_headers = service.rss_kib();

    for after in [after_line, after_headers] {
        let growth = after.saturating_sub(before);
        assert!(
            growth < 20 * 1024,
            "RSS grew by {growth} KiB ({before} -> {after})"
        );
    }
    // Just over the limits, with an answer: 431.
    let many: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    let reply = service
        .raw(format!("GET /introspect HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes())
        .expect("an answer");
    assert_eq!(reply.status, 431);
    let long = "a".repeat(17 * 1024);
    let reply = service
        .raw(format!("GET /introspect HTTP/1.1\r\nHost: x\r\nX-Big: {long}\r\n\r\n").as_bytes())
        .expect("an answer");
    assert_eq!(reply.status, 431);
    introspect_within_the_callout_timeout(&service, &token);
}

#[test]
fn an_http2_prior_knowledge_request_gets_an_answer() {
    let scratch = Scratch::new();
    let service = Service::start(&scratch);
    let token = fred_token(&service);
    let output = std::process::Command::new("curl")
        .args(["-sS", "--http2-prior-knowledge", "--max-time", "10", "-u"])
        .arg(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
        .arg("--data")
        .arg(format!("token={token}"))
        .args(["-w", "\n%{http_version} %{http_code}"])
        .arg(format!("http://127.0.0.1:{}/introspect", service.port))
        .output()
        .expect("curl (with HTTP/2) on the PATH");
    let text = String::from_utf8_lossy(&output.stdout);
    let (body, version) = text
        .rsplit_once('\n')
        .unwrap_or_else(|| panic!("{text:?} {output:?}"));
    assert_eq!(version, "2 200", "{text}");
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["username"], "fred");

    // The head limit holds on HTTP/2 too.
    let output = std::process::Command::new("curl")
        .args([
            "-sS",
            "--http2-prior-knowledge",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
        ])
        .args(["-w", "%{http_version} %{http_code}", "-H"])
        .arg(format!("X-Big: {}", "a".repeat(20 * 1024)))
        .arg(format!("http://127.0.0.1:{}/introspect", service.port))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "2 431");
}

#[test]
fn sigterm_lets_a_request_in_flight_finish_then_the_service_exits() {
    let scratch = Scratch::new();
    let mut service = Service::start_with(&scratch, serde_json::json!({}));
    let token = fred_token(&service);
    let body = br#"{"tokenDescription":"made during shutdown"}"#;
    let mut stream = TcpStream::connect(("127.0.0.1", service.port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST {PREFIX}/user/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {}\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        bearer(&token),
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    // `100 Continue` comes once the service is reading the body: the request is in flight.
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(&body[..10]).unwrap();

    service.terminate();
    // The listener closes at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", service.port)).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    stream.write_all(&body[10..]).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("plainTextToken"), "{text}");
    let status = service
        .wait_exit(Duration::from_secs(20))
        .expect("the service exits after SIGTERM");
    assert!(status.success(), "{status}");

    // The token made during shutdown was committed.
    let made: serde_json::Value = serde_json::from_str(text.split_once("\r\n\r\n").unwrap().1).unwrap();
    let service = Service::start(&scratch);
    let reply = service.introspect(&format!("token={}", made["plainTextToken"].as_str().unwrap()));
    assert_eq!(reply.json()["active"], true, "{}", reply.body);
}

#[test]
fn a_token_in_a_path_or_query_is_never_logged_in_full() {
    let scratch = Scratch::new();
    let mut service = Service::start_with(&scratch, serde_json::json!({}));
    let token = fred_token(&service);
    let auth = Some(password("fred"));
    let reply = service.api("DELETE", &format!("/user/token/{token}"), auth.as_deref(), "");
    reply.assert_jira_error(404);
    let reply = service.api("GET", &format!("/user/token?token={token}"), auth.as_deref(), "");
    assert_eq!(reply.status, 200);
    let reply = service.call("GET", &format!("/{token}"), None, "");
    reply.assert_jira_error(404);
    service.introspect(&format!("token={token}"));
    service.terminate();
    service
        .wait_exit(Duration::from_secs(20))
        .expect("the service exits after SIGTERM");

    let log = Service::log(&scratch);
    // `tgat_<24 hex>_<43 base64url>`: the secret itself may hold `_`, so split from the left.
    let secret = token.splitn(3, '_').nth(2).unwrap();
    assert_eq!(secret.len(), 43, "{token}");
    assert!(!log.contains(secret), "{log}");
    assert!(!log.contains("fred-password"), "{log}");
    assert!(!log.contains(CLIENT_SECRET), "{log}");
    // The requests are logged, with the token redacted.
    assert!(
        log.contains(&format!("DELETE {PREFIX}/user/token/<redacted> 404")),
        "{log}"
    );
    assert!(
        log.contains(&format!("GET {PREFIX}/user/token?token=<redacted> 200")),
        "{log}"
    );
    assert!(log.contains("GET /<redacted> 404"), "{log}");
    assert!(log.contains("POST /introspect 200"), "{log}");
}

#[test]
fn password_checks_past_the_queue_get_503_with_retry_after_and_the_rest_are_answered() {
    let scratch = Scratch::new();
    let service = Service::start_with(
        &scratch,
        serde_json::json!({"password_threads": 1, "password_queue": 0}),
    );
    let token = fred_token(&service);
    let port = service.port;
    let path = format!("{PREFIX}/user/token");
    let mut busy = None;
    let mut served = 0;
    for _ in 0..20 {
        let barrier = Arc::new(std::sync::Barrier::new(16));
        let replies: Vec<Reply> = (0..16)
            .map(|_| {
                let (barrier, path) = (barrier.clone(), path.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let auth = [("Authorization".to_owned(), password("fred"))];
                    request(port, "GET", &path, &auth, b"").unwrap()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        for reply in replies {
            match reply.status {
                200 => served += 1,
                503 => busy = Some(reply),
                other => panic!("a password request got {other}: {}", reply.body),
            }
        }
        // Token requests never wait for the password lane.
        introspect_within_the_callout_timeout(&service, &token);
        if busy.is_some() && served > 0 {
            break;
        }
    }
    let busy = busy.expect("16 concurrent password checks on one thread with no queue: some refused");
    busy.assert_jira_error(503);
    assert_eq!(busy.header("retry-after"), Some("1"));
    assert!(served > 0);
}
