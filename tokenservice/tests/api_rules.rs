//! Against the real binary: tokens made with a token expire no later than it, and links come
//! from the configured public base URL the client used, never from a bare `Host`.

// Test harness: failing loudly is its job.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{bearer, password, request, Scratch, Service, PREFIX};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

#[test]
fn a_token_minted_by_a_one_month_token_dies_with_it() {
    let scratch = Scratch::new();
    let service = Service::start(&scratch);
    let parent = service.create(
        "fred",
        r#"{"tokenDescription":"one month","tokenValidityTimeInMonths":1}"#,
    );
    let parent_token = parent["plainTextToken"].as_str().unwrap();
    let body = r#"{"tokenDescription":"twelve months","tokenValidityTimeInMonths":12}"#;
    let child = service.api("POST", "/user/token", Some(&bearer(parent_token)), body);
    assert_eq!(child.status, 200, "{}", child.body);
    let child = child.json();
    assert_eq!(child["validUntil"], parent["validUntil"]);
    // Introspection says the same: the child's exp is the parent's.
    let answer = service
        .introspect(&format!("token={}", child["plainTextToken"].as_str().unwrap()))
        .json();
    assert_eq!(
        answer["exp"].as_i64().unwrap(),
        parent["validUntil"].as_i64().unwrap() / 1000
    );
    // With a password, the same request gets its twelve months.
    let by_password = service.create("fred", body);
    assert!(by_password["validUntil"].as_i64() > parent["validUntil"].as_i64());
}

/// The binary with `public_base_urls` and no `base_url`; killed on drop.
struct Configured {
    child: Child,
    port: u16,
}

impl Drop for Configured {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_with_public_base_urls(scratch: &Scratch, urls: &[&str]) -> Configured {
    let users = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/users.json");
    let config = serde_json::json!({
        "listen": "127.0.0.1:0",
        "database": scratch.database(),
        "users_file": users,
        "introspection": {"client_id": "tokengate", "client_secret": "0123456789abcdef"},
        "max_validity_months": 12,
        "default_validity_months": 6,
        "public_base_urls": urls,
    });
    let path = scratch.0.join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokengate-tokens"))
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().rsplit(':').next().unwrap().parse().unwrap();
    Configured { child, port }
}

#[test]
fn paging_links_follow_the_public_base_url_the_client_used_and_ignore_a_forged_host() {
    let scratch = Scratch::new();
    let service =
        start_with_public_base_urls(&scratch, &["https://jira.example.com", "http://127.0.0.1:8080"]);
    let admin = password("admin");
    for _ in 0..2 {
        let reply = request(
            service.port,
            "POST",
            &format!("{PREFIX}/user/token"),
            &[("Authorization".to_owned(), admin.clone())],
            br#"{"tokenDescription":"x"}"#,
        )
        .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    // Sent as Envoy forwards them; `request` itself sends Host 127.0.0.1:<port>.
    let next = |extra: &[(&str, &str)]| {
        let mut headers = vec![("Authorization".to_owned(), admin.clone())];
        headers.extend(extra.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())));
        let reply = request(
            service.port,
            "GET",
            &format!("{PREFIX}/user/tokensByFilter?limit=1"),
            &headers,
            b"",
        )
        .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()["paginationLinks"]["nextPage"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let tail = format!("{PREFIX}/user/tokensByFilter?page=1&limit=1&notValidAfter=-1");
    // Through any Envoy, the public name the client used gives the same link.
    assert_eq!(
        next(&[
            ("X-Forwarded-Host", "jira.example.com"),
            ("X-Forwarded-Proto", "https")
        ]),
        format!("https://jira.example.com{tail}")
    );
    assert_eq!(
        next(&[("X-Forwarded-Host", "127.0.0.1:8080")]),
        format!("http://127.0.0.1:8080{tail}")
    );
    // A forged host gets the canonical base URL, never a link to itself.
    assert_eq!(
        next(&[
            ("X-Forwarded-Host", "evil.example"),
            ("X-Forwarded-Proto", "https")
        ]),
        format!("https://jira.example.com{tail}")
    );
}

#[test]
fn parallel_wrong_passwords_get_no_more_checks_than_the_lockout_allows() {
    let scratch = Scratch::new();
    // Password checks on 8 threads at once: each must see the others' failures.
    let service = Service::start_with(
        &scratch,
        serde_json::json!({"password_threads": 8, "password_queue": 64}),
    );
    let guesses = 24;
    let barrier = std::sync::Barrier::new(guesses);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..guesses)
            .map(|i| {
                let (service, barrier) = (&service, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    let auth = common::basic(&format!("fred:wrong-{i}"));
                    service.api("GET", "/user/token", Some(&auth), "").status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let checked = statuses.iter().filter(|s| **s == 401).count();
    // Jira's rule (lockout.max_failures = 3): the guesses after the third are refused unchecked,
    // however many arrive at once.
    assert!(
        checked <= 3,
        "{checked} of {guesses} parallel guesses had their password checked: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [401, 403, 503].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(
        service
            .api("GET", "/user/token", Some(&password("fred")), "")
            .status,
        403
    );
}
