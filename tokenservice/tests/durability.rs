//! Nothing acknowledged is lost: across a restart, across `kill -9` in the middle of a burst
//! of creates, and under parallel creates. Each on SQLite and on PostgreSQL; and with two
//! replicas sharing one PostgreSQL, `kill -9` of one during a burst while the other serves on.

// The cases are test bodies (the macro at the end wraps each in `#[test]`): they fail loudly.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::*;
use serde_json::json;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

fn tokens_survive_a_restart(scratch: &Scratch, database: &TestDatabase) {
    let (id, token) = {
        let service = Service::start_on(scratch, &database.spec());
        let created = service.create("fred", r#"{"tokenDescription":"kept"}"#);
        (
            created["id"].clone(),
            created["plainTextToken"].as_str().unwrap().to_owned(),
        )
    };
    let service = Service::start_on(scratch, &database.spec());
    let listed = service
        .api("GET", "/user/token/", Some(&password("fred")), "")
        .json();
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["description"], "kept");
    assert_eq!(
        service.introspect(&format!("token={token}")).json()["active"],
        true
    );
    // Ids continue after the restart.
    let next = service.create("fred", r#"{"tokenDescription":"next"}"#);
    assert_eq!(next["id"], id.as_i64().unwrap() + 1);
}

/// Tokens acknowledged by a writer: (id, token).
type Acknowledged = Arc<Mutex<Vec<(i64, String)>>>;

/// `writers` threads creating tokens on `port` as `auth` until `stop`, or until the server is
/// gone; every 200 goes into `acknowledged`, every other answer (or none) counts in `failed`.
fn burst(
    port: u16,
    auth: &str,
    writers: usize,
    label: &str,
    stop: &Arc<AtomicBool>,
    acknowledged: &Acknowledged,
    failed: &Arc<AtomicUsize>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..writers)
        .map(|writer| {
            let (acknowledged, stop, failed) = (acknowledged.clone(), stop.clone(), failed.clone());
            let headers = [("Authorization".to_owned(), auth.to_owned())];
            let label = label.to_owned();
            std::thread::spawn(move || {
                for n in 0..5000 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let body = json!({"tokenDescription": format!("burst {label} {writer}/{n}")}).to_string();
                    let path = format!("{PREFIX}/user/token");
                    match request(port, "POST", &path, &headers, body.as_bytes()) {
                        Some(reply) if reply.status == 200 => {
                            let created = reply.json();
                            let token = created["plainTextToken"].as_str().unwrap().to_owned();
                            acknowledged
                                .lock()
                                .unwrap()
                                .push((created["id"].as_i64().unwrap(), token));
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            break; // the server is gone (or refused): this writer stops
                        }
                    }
                }
            })
        })
        .collect()
}

fn wait_for(acknowledged: &Acknowledged, at_least: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < at_least && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let got = acknowledged.lock().unwrap().len();
    assert!(got >= at_least, "only {got} creates before the deadline");
}

/// Rows a crash could have left half-written (none may be).
const BROKEN_ROWS: &str =
    "SELECT count(*) FROM tokens WHERE length(secret_hash) != 32 OR length(lookup) != 24
     OR description NOT LIKE 'burst %' OR valid_until <= created";

fn kill_9_during_a_burst_of_creates_loses_no_acknowledged_token(scratch: &Scratch, database: &TestDatabase) {
    let service = Service::start_on(scratch, &database.spec());
    // Bearer tokens skip the (deliberately slow) password hash, so the burst is dense.
    let auth = bearer(
        service.create("admin", r#"{"tokenDescription":"burst driver"}"#)["plainTextToken"]
            .as_str()
            .unwrap(),
    );
    let acknowledged = Acknowledged::default();
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let writers = burst(service.port, &auth, 4, "", &stop, &acknowledged, &failed);
    wait_for(&acknowledged, 40);
    service.kill(); // SIGKILL while the writers are still sending
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    // The database is intact and every row is whole.
    database.assert_intact();
    assert_eq!(database.count(BROKEN_ROWS), 0);

    // Restarted, the service knows every acknowledged token.
    let service = Service::start_on(scratch, &database.spec());
    let all = service
        .api(
            "GET",
            "/user/tokensByFilter?notValidAfter=-1",
            Some(&password("admin")),
            "",
        )
        .json();
    assert!(all["total"].as_u64().unwrap() > acknowledged.len() as u64);
    for (id, token) in &acknowledged {
        let answer = service.introspect(&format!("token={token}")).json();
        assert_eq!(answer["active"], true, "acknowledged token {id} lost");
    }
}

fn twenty_parallel_creates_all_succeed_with_distinct_ids(scratch: &Scratch, database: &TestDatabase) {
    let service = Service::start_on(scratch, &database.spec());
    let port = service.port;
    let start = Arc::new(Barrier::new(20));
    let creators: Vec<_> = (0..20)
        .map(|n| {
            let start = start.clone();
            std::thread::spawn(move || {
                let headers = [("Authorization".to_owned(), password("jsmith"))];
                let body = json!({"tokenDescription": format!("parallel {n}")}).to_string();
                start.wait();
                request(
                    port,
                    "POST",
                    &format!("{PREFIX}/user/token"),
                    &headers,
                    body.as_bytes(),
                )
                .unwrap()
            })
        })
        .collect();
    let replies: Vec<Reply> = creators.into_iter().map(|c| c.join().unwrap()).collect();
    let mut ids = HashSet::new();
    let mut tokens = HashSet::new();
    for reply in &replies {
        assert_eq!(reply.status, 200, "{}", reply.body);
        let created = reply.json();
        ids.insert(created["id"].as_i64().unwrap());
        tokens.insert(created["plainTextToken"].as_str().unwrap().to_owned());
    }
    assert_eq!((ids.len(), tokens.len()), (20, 20));
    let listed = service
        .api("GET", "/user/token/", Some(&password("jsmith")), "")
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 20);
}

/// Each case on SQLite and on PostgreSQL.
macro_rules! on_both_engines {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $case() {
                    let scratch = super::Scratch::new();
                    super::$case(&scratch, &super::TestDatabase::sqlite(&scratch));
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $case() {
                    let scratch = super::Scratch::new();
                    super::$case(&scratch, &super::TestDatabase::postgres());
                }
            )*
        }
    };
}

on_both_engines!(
    tokens_survive_a_restart,
    kill_9_during_a_burst_of_creates_loses_no_acknowledged_token,
    twenty_parallel_creates_all_succeed_with_distinct_ids,
);

#[test]
fn kill_9_of_one_postgres_replica_during_a_burst_loses_no_acknowledged_token_and_the_other_keeps_serving() {
    let scratch = Scratch::new();
    let database = TestDatabase::postgres();
    let doomed = Service::start_on(&scratch, &database.spec());
    let survivor = Service::start_on(&scratch, &database.spec());
    let auth = bearer(
        doomed.create("admin", r#"{"tokenDescription":"burst driver"}"#)["plainTextToken"]
            .as_str()
            .unwrap(),
    );
    let (on_doomed, on_survivor) = (Acknowledged::default(), Acknowledged::default());
    let (stop_doomed, stop_survivor) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let (failed_doomed, failed_survivor) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut writers = burst(
        doomed.port,
        &auth,
        3,
        "doomed",
        &stop_doomed,
        &on_doomed,
        &failed_doomed,
    );
    writers.extend(burst(
        survivor.port,
        &auth,
        3,
        "survivor",
        &stop_survivor,
        &on_survivor,
        &failed_survivor,
    ));
    wait_for(&on_doomed, 40);
    wait_for(&on_survivor, 10);
    doomed.kill(); // SIGKILL of one replica, its writers still sending
    stop_doomed.store(true, Ordering::SeqCst);
    // The survivor keeps creating: 40 more after the kill.
    let after_kill = on_survivor.lock().unwrap().len() + 40;
    wait_for(&on_survivor, after_kill);
    stop_survivor.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.join().unwrap();
    }
    assert_eq!(
        failed_survivor.load(Ordering::SeqCst),
        0,
        "the surviving replica refused or dropped a create"
    );
    let (by_doomed, by_survivor) = (
        on_doomed.lock().unwrap().clone(),
        on_survivor.lock().unwrap().clone(),
    );
    eprintln!(
        "acknowledged: {} by the killed replica, {} by the survivor ({} after the kill)",
        by_doomed.len(),
        by_survivor.len(),
        by_survivor.len() + 40 - after_kill
    );
    let acknowledged: Vec<_> = by_doomed.into_iter().chain(by_survivor).collect();
    database.assert_intact();
    assert_eq!(database.count(BROKEN_ROWS), 0);
    // Every token either replica acknowledged is known to the survivor.
    for (id, token) in &acknowledged {
        let answer = survivor.introspect(&format!("token={token}")).json();
        assert_eq!(answer["active"], true, "acknowledged token {id} lost");
    }
    let ids: HashSet<i64> = acknowledged.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), acknowledged.len(), "an id was given twice");
}
