//! Nothing acknowledged is lost: across a restart, across `kill -9` in the middle of a burst
//! of creates, and under parallel creates.

mod common;

use common::*;
use serde_json::json;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

#[test]
fn tokens_survive_a_restart() {
    let scratch = Scratch::new();
    let (id, token) = {
        let service = Service::start(&scratch);
        let created = service.create("fred", r#"{"tokenDescription":"kept"}"#);
        (
            created["id"].clone(),
            created["plainTextToken"].as_str().unwrap().to_owned(),
        )
    };
    let service = Service::start(&scratch);
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

#[test]
fn kill_9_during_a_burst_of_creates_loses_no_acknowledged_token() {
    let scratch = Scratch::new();
    let service = Service::start(&scratch);
    // Bearer tokens skip the (deliberately slow) password hash, so the burst is dense.
    let auth = bearer(
        service.create("admin", r#"{"tokenDescription":"burst driver"}"#)["plainTextToken"]
            .as_str()
            .unwrap(),
    );
    let port = service.port;
    let acknowledged = Arc::new(Mutex::new(Vec::<(i64, String)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let (acknowledged, stop, auth) = (acknowledged.clone(), stop.clone(), auth.clone());
            std::thread::spawn(move || {
                let headers = [("Authorization".to_owned(), auth)];
                for n in 0..2000 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let body = json!({"tokenDescription": format!("burst {writer}/{n}")}).to_string();
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
                        _ => break, // the server is gone
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < 40 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    service.kill(); // SIGKILL while the writers are still sending
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 40,
        "only {} creates before the deadline",
        acknowledged.len()
    );

    // The database is intact and every row is whole.
    {
        let db = rusqlite::Connection::open(scratch.database()).unwrap();
        let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
        let broken: i64 = db
            .query_row(
                "SELECT count(*) FROM tokens WHERE length(secret_hash) != 32 OR length(lookup) != 24
                 OR description NOT LIKE 'burst %' OR valid_until <= created",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(broken, 0);
    }

    // Restarted, the service knows every acknowledged token.
    let service = Service::start(&scratch);
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

#[test]
fn twenty_parallel_creates_all_succeed_with_distinct_ids() {
    let scratch = Scratch::new();
    let service = Service::start(&scratch);
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
