//! One key set per Envoy process (issue 12): the real Envoy with `--concurrency 2` and a JWKS
//! server the test controls. After a rotation (a new key added, the old one removed) every
//! worker gives a removed-key token and a new-key token the same answer, also when the key
//! server goes down right after the rotation; and a refresh is one fetch for the whole
//! process, not one per worker.
//!
//! Which worker serves a request is the kernel's choice (Envoy binds one `SO_REUSEPORT`
//! listener per worker), so a token is sent over fresh connections until every worker's
//! `listener.<address>.worker_<n>.downstream_cx_total` has grown.

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
const WORKERS: u32 = 2;
/// Connections sent per token before giving up on reaching every worker (the kernel spreads
/// them by a hash of the client's port: 2 workers are both reached within a few).
const MAX_CONNECTIONS: usize = 200;

/// A JWKS server whose document the test changes, that records when each fetch came, and that
/// can go down (its port then refuses connections).
struct KeyServer {
    server: Option<Server>,
    document: Arc<Mutex<Reply>>,
    fetched_at: Arc<Mutex<Vec<Instant>>>,
    port: u16,
}

impl KeyServer {
    fn start(keys: &[&TestKey]) -> KeyServer {
        let document = Arc::new(Mutex::new(Reply::json(200, &jwks(keys))));
        let fetched_at = Arc::new(Mutex::new(Vec::new()));
        let (shared, times) = (document.clone(), fetched_at.clone());
        let server = Server::start(0, move |request| {
            if request.path == "/jwks.json" {
                times.lock().unwrap().push(Instant::now());
            }
            shared.lock().unwrap().clone()
        })
        .unwrap();
        let port = server.port();
        KeyServer {
            server: Some(server),
            document,
            fetched_at,
            port,
        }
    }

    fn serve(&self, keys: &[&TestKey]) {
        *self.document.lock().unwrap() = Reply::json(200, &jwks(keys));
    }

    fn go_down(&mut self) {
        self.server = None;
    }

    fn fetches(&self) -> Vec<Instant> {
        self.fetched_at.lock().unwrap().clone()
    }
}

/// One remote-JWKS provider. A long refresh interval, so that only the unknown `kid` of the
/// new key makes anyone fetch after the rotation; a long refetch gap, so that a removed `kid`
/// does not make anyone fetch again during the test.
fn config(remote: Value) -> String {
    let mut remote_jwks = json!({"cluster": "idp", "path": "/jwks.json", "timeout_ms": 500,
        "refresh_interval_seconds": 300, "initial_backoff_ms": 100,
        "unknown_kid_refetch_gap_seconds": 30, "wait_ms": 2000});
    for (k, v) in remote.as_object().unwrap() {
        remote_jwks[k] = v.clone();
    }
    json!({"realm": "jira", "jwt_providers": {"idp": {"issuer": ISSUER, "remote_jwks": remote_jwks}}})
        .to_string()
}

fn start(keys: &KeyServer, remote: Value) -> (Server, Envoy) {
    let app = DemoApp::start(0).unwrap();
    let yaml = bootstrap(&config(remote), app.port(), &[("idp", keys.port)]);
    let envoy = Envoy::try_start_yaml_with_workers(&yaml, WORKERS)
        .unwrap_or_else(|log| panic!("Envoy did not become ready:\n{log}"));
    (app, envoy)
}

fn token(key: &TestKey, sub: &str) -> String {
    key.sign(&json!({"iss": ISSUER, "sub": sub, "exp": now() + 600}))
}

/// Each worker's `downstream_cx_total` on the listener, by worker number. Envoy names listener
/// stats after the configured address: the bootstrap's is `127.0.0.1:0` (a free port).
fn connections_per_worker(envoy: &Envoy) -> Vec<u64> {
    let prefix = "listener.127.0.0.1_0.worker_";
    let stats = envoy.admin("/stats").map(|r| r.body).unwrap_or_default();
    let mut counts = vec![0; WORKERS as usize];
    for line in stats.lines() {
        let Some(rest) = line.strip_prefix(prefix) else {
            continue;
        };
        let Some((worker, count)) = rest.split_once(".downstream_cx_total: ") else {
            continue;
        };
        let worker: usize = worker.parse().unwrap();
        counts[worker] = count.trim().parse().unwrap();
    }
    counts
}

/// The statuses `token(i)` gets on the `i`th of fresh connections, sent until every worker has
/// taken at least one of them.
fn answers_on_every_worker(envoy: &Envoy, token: impl Fn(usize) -> String) -> Vec<u16> {
    let before = connections_per_worker(envoy);
    let mut statuses = Vec::new();
    loop {
        let authorization = format!("Bearer {}", token(statuses.len()));
        // `Envoy::get` opens a connection of its own and closes it after the answer.
        statuses.push(envoy.get("/x", &[("authorization", &authorization)]).status);
        let now = connections_per_worker(envoy);
        if now.iter().zip(&before).all(|(now, before)| now > before) {
            return statuses;
        }
        assert!(
            statuses.len() < MAX_CONNECTIONS,
            "{MAX_CONNECTIONS} connections did not reach every worker: {before:?} -> {now:?}"
        );
    }
}

fn assert_every_answer(what: &str, statuses: &[u16], expected: u16) {
    assert!(
        statuses.iter().all(|s| *s == expected),
        "{what}: every worker must answer {expected}, got {statuses:?}"
    );
}

/// Key set 1 `{old}` loaded and a token of the old key verified (and cached) on every worker;
/// then key set 2 `{new}` served and one new-key token sent, whose unknown `kid` makes one
/// worker fetch the new set. The cached old-key token, and how many fetches came before the
/// rotation.
fn rotate(keys: &KeyServer, envoy: &Envoy, old: &TestKey, new: &TestKey) -> (String, usize) {
    let cached = token(old, "fred");
    assert_every_answer(
        "the old key before the rotation",
        &answers_on_every_worker(envoy, |_| cached.clone()),
        200,
    );
    let before = keys.fetches().len();
    keys.serve(&[new]);
    let response = envoy.get(
        "/x",
        &[("authorization", &format!("Bearer {}", token(new, "jsmith")))],
    );
    assert_eq!(response.status, 200, "the first new-key token: {response:?}");
    assert!(keys.fetches().len() > before, "the new kid made a worker fetch");
    (cached, before)
}

/// After the rotation, on every worker: removed-key tokens never seen before, the removed-key
/// token every worker verified before the rotation, and new-key tokens never seen before. A
/// fresh token per connection, so that each answer is the serving worker's own verdict, not one
/// another worker left in the shared verified-token cache. The fresh removed-key tokens go
/// first: a worker that still held key set 1 would accept them.
fn assert_every_worker_agrees(envoy: &Envoy, old: &TestKey, new: &TestKey, cached: &str) {
    let fresh_removed = answers_on_every_worker(envoy, |i| token(old, &format!("removed-{i}")));
    let cached_removed = answers_on_every_worker(envoy, |_| cached.to_owned());
    let new_key = answers_on_every_worker(envoy, |i| token(new, &format!("new-{i}")));
    // README: "no key with its `kid` (after a refetch)" is seed 001's 400.
    let expected = |n: usize, status: u16| vec![status; n];
    assert_eq!(
        (&fresh_removed, &cached_removed, &new_key),
        (
            &expected(fresh_removed.len(), 400),
            &expected(cached_removed.len(), 400),
            &expected(new_key.len(), 200)
        ),
        "every worker must answer (a removed-key token, the same cached before the rotation, \
         a new-key token) with (400, 400, 200)"
    );
}

#[test]
fn after_a_rotation_every_worker_refuses_the_removed_key_and_accepts_the_new_one() {
    let (old, new) = (TestKey::es256("2026-01"), TestKey::es256("2026-02"));
    let keys = KeyServer::start(&[&old]);
    let (_app, envoy) = start(&keys, json!({}));
    let (cached, before) = rotate(&keys, &envoy, &old, &new);
    assert_every_worker_agrees(&envoy, &old, &new, &cached);
    // Every worker learnt of key set 2 from one fetch, and no removed `kid` made anyone fetch
    // again within `unknown_kid_refetch_gap_seconds`.
    assert_eq!(
        keys.fetches().len() - before,
        1,
        "fetches for the rotation: one for the process, not one per worker"
    );
}

#[test]
fn after_a_rotation_every_worker_agrees_even_when_the_key_server_goes_down_at_once() {
    let (old, new) = (TestKey::es256("2026-01"), TestKey::es256("2026-02"));
    let mut keys = KeyServer::start(&[&old]);
    let (_app, envoy) = start(&keys, json!({}));
    let (cached, _) = rotate(&keys, &envoy, &old, &new);
    keys.go_down();
    assert_every_worker_agrees(&envoy, &old, &new, &cached);
}

#[test]
fn a_refresh_is_one_fetch_for_the_whole_envoy_process_not_one_per_worker() {
    const INTERVAL: Duration = Duration::from_secs(1);
    const REFRESHES: u32 = 4;
    let key = TestKey::es256("k1");
    let keys = KeyServer::start(&[&key]);
    let (_app, envoy) = start(&keys, json!({"refresh_interval_seconds": 1}));
    let statuses = answers_on_every_worker(&envoy, |i| token(&key, &format!("user-{i}")));
    assert_every_answer("a token of the served key", &statuses, 200);

    // Watch a few refresh intervals after the first fetch (Envoy's main thread's VM may be the
    // one that fetches: it is part of the process).
    let first = *keys.fetches().first().expect("the keys were fetched");
    let until = first + INTERVAL * REFRESHES + INTERVAL / 2;
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    let fetches: Vec<Instant> = keys.fetches().into_iter().filter(|t| *t <= until).collect();
    let gaps: Vec<u128> = fetches
        .windows(2)
        .map(|pair| pair[1].duration_since(pair[0]).as_millis())
        .collect();
    // One fetch per refresh: the first load plus one per interval, never two close together.
    assert!(
        fetches.len() >= REFRESHES as usize,
        "the keys were not refreshed every interval: {} fetches, gaps {gaps:?} ms",
        fetches.len()
    );
    assert!(
        fetches.len() <= REFRESHES as usize + 2,
        "{} fetches in {REFRESHES} refresh intervals (gaps {gaps:?} ms): each worker fetched, not one for the process",
        fetches.len()
    );
    assert!(
        gaps.iter().all(|gap| *gap >= INTERVAL.as_millis() / 2),
        "two fetches for one refresh: gaps {gaps:?} ms"
    );
}
