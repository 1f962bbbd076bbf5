//! The store suite: every case runs on both engines, SQLite (a file in a scratch directory)
//! and PostgreSQL (a fresh database in a real throw-away cluster). A case gets an opener: each
//! call opens another handle on the same database, as another replica would.

// The cases are test bodies (the macro at the end wraps each in `#[test]`): they fail loudly.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::postgres::Postgres;
use common::Scratch;
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Barrier};
use tokengate_tokens::store::postgres as postgres_engine;
use tokengate_tokens::store::{Database, LoginFailures, NewRecord, Store};
use tokengate_tokens::tokens::TokenHash;

type Open<'a> = &'a dyn Fn() -> Store;

/// Both engines' migrations: tokens, failed logins, OAuth 1.0a tokens.
const SCHEMA_VERSION: u32 = 3;

fn new<'a>(
    lookup: &'a str,
    hash: &'a TokenHash,
    user: &'a str,
    created: i64,
    valid_until: i64,
) -> NewRecord<'a> {
    NewRecord {
        lookup,
        hash,
        description: "a token",
        user_key: user,
        created_by_user_key: user,
        created,
        valid_until,
    }
}

fn a_new_database_is_at_the_latest_schema_version(open: Open) {
    let store = open();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    // Opening it again (another replica, a restart) migrates nothing.
    assert_eq!(open().schema_version().unwrap(), SCHEMA_VERSION);
}

fn a_created_token_is_listed_and_found_by_lookup(open: Open) {
    let store = open();
    let hash = TokenHash::of("t1");
    let created = store.create(&new("l1", &hash, "K1", 1000, 2000)).unwrap();
    assert_eq!(created.id, 1);
    assert_eq!(created.last_accessed, 0);
    assert_eq!(store.list_for_user("K1").unwrap(), vec![created.clone()]);
    assert!(store.list_for_user("K2").unwrap().is_empty());
    let (found, stored) = store.find_by_lookup("l1").unwrap().unwrap();
    assert_eq!(found, created);
    assert!(stored.ct_eq(&hash));
    assert!(store.find_by_lookup("l2").unwrap().is_none());
    // Another handle sees it at once.
    assert_eq!(open().list_for_user("K1").unwrap(), vec![created]);
}

fn a_duplicate_lookup_is_refused_and_stores_nothing(open: Open) {
    let store = open();
    let hash = TokenHash::of("t1");
    store.create(&new("same", &hash, "K1", 1, 2)).unwrap();
    assert!(store.create(&new("same", &hash, "K2", 1, 2)).is_err());
    assert!(store.list_for_user("K2").unwrap().is_empty());
    assert_eq!(store.filter(None, 0, 50).unwrap().1, 1);
}

fn only_the_owner_renames_or_deletes(open: Open) {
    let store = open();
    let hash = TokenHash::of("t1");
    let id = store.create(&new("l1", &hash, "K1", 1000, 2000)).unwrap().id;
    assert!(store.rename(id, "K2", "mine now").unwrap().is_none());
    assert!(!store.delete(id, "K2").unwrap());
    let renamed = store.rename(id, "K1", "renamed").unwrap().unwrap();
    assert_eq!((renamed.id, renamed.description.as_str()), (id, "renamed"));
    assert_eq!(store.list_for_user("K1").unwrap()[0].description, "renamed");
    assert!(store.rename(id + 1, "K1", "no such").unwrap().is_none());
    assert!(store.delete(id, "K1").unwrap());
    assert!(!store.delete(id, "K1").unwrap());
    assert!(store.find_by_lookup("l1").unwrap().is_none());
}

fn ids_are_not_reused_after_a_delete(open: Open) {
    let store = open();
    let hash = TokenHash::of("t");
    let first = store.create(&new("l1", &hash, "K1", 1, 2)).unwrap().id;
    store.delete(first, "K1").unwrap();
    assert_eq!(store.create(&new("l2", &hash, "K1", 1, 2)).unwrap().id, first + 1);
}

fn filter_pages_soonest_expiry_first_and_counts_all_matches(open: Open) {
    let store = open();
    let hash = TokenHash::of("t");
    for (lookup, valid_until) in [("a", 300), ("b", 100), ("c", 200), ("d", 900), ("e", 200)] {
        store.create(&new(lookup, &hash, "K", 1, valid_until)).unwrap();
    }
    let (page, total) = store.filter(Some(300), 0, 2).unwrap();
    assert_eq!(total, 4);
    assert_eq!(page.iter().map(|r| r.valid_until).collect::<Vec<_>>(), [100, 200]);
    let (page, _) = store.filter(Some(300), 2, 2).unwrap();
    // Equal expiries in creation order.
    assert_eq!(
        page.iter().map(|r| (r.valid_until, r.id)).collect::<Vec<_>>(),
        [(200, 5), (300, 1)]
    );
    let (page, total) = store.filter(None, 0, 50).unwrap();
    assert_eq!((page.len(), total), (5, 5));
    let (page, total) = store.filter(Some(99), 0, 50).unwrap();
    assert_eq!((page.len(), total), (0, 0));
    let (page, total) = store.filter(None, u64::MAX, u64::MAX).unwrap();
    assert_eq!((page.len(), total), (0, 5));
}

fn delete_all_for_removes_only_that_users_tokens(open: Open) {
    let store = open();
    let hash = TokenHash::of("t");
    store.create(&new("a", &hash, "K1", 1, 2)).unwrap();
    store.create(&new("b", &hash, "K1", 1, 2)).unwrap();
    store.create(&new("c", &hash, "K2", 1, 2)).unwrap();
    assert_eq!(store.delete_all_for("K1").unwrap(), 2);
    assert_eq!(store.delete_all_for("K1").unwrap(), 0);
    assert_eq!(store.filter(None, 0, 50).unwrap().1, 1);
}

fn touch_never_moves_last_accessed_backwards(open: Open) {
    let store = open();
    let hash = TokenHash::of("t");
    let id = store.create(&new("a", &hash, "K1", 1, 2)).unwrap().id;
    store.touch(id, 500).unwrap();
    store.touch(id, 400).unwrap();
    assert_eq!(store.list_for_user("K1").unwrap()[0].last_accessed, 500);
    store.touch(id + 100, 600).unwrap(); // no such token: nothing to do, no error
}

fn text_round_trips_unchanged(open: Open) {
    let store = open();
    let hash = TokenHash::of("t");
    let description = "Ünïcødé 'quotes' \"double\" ; DROP TABLE tokens; -- \\ 🎫";
    let record = NewRecord {
        description,
        ..new("a", &hash, "K'1", i64::MIN + 1, i64::MAX)
    };
    let created = store.create(&record).unwrap();
    let listed = store.list_for_user("K'1").unwrap();
    assert_eq!(listed, vec![created]);
    assert_eq!(listed[0].description, description);
    assert_eq!(
        (listed[0].created, listed[0].valid_until),
        (i64::MIN + 1, i64::MAX)
    );
}

const MINUTE: i64 = 60_000;

fn failed_logins_count_a_streak_that_restarts_after_the_window(open: Open) {
    let store = open();
    assert_eq!(store.failed_logins("fred").unwrap(), LoginFailures::default());
    let at = |count, last_failure_ms| LoginFailures {
        count,
        last_failure_ms,
    };
    assert_eq!(
        store.record_failed_login("fred", 1_000, MINUTE).unwrap(),
        at(1, 1_000)
    );
    assert_eq!(
        store.record_failed_login("fred", 2_000, MINUTE).unwrap(),
        at(2, 2_000)
    );
    // Exactly one window after the last failure is still the same streak...
    assert_eq!(
        store.record_failed_login("fred", 2_000 + MINUTE, MINUTE).unwrap(),
        at(3, 2_000 + MINUTE)
    );
    assert_eq!(store.failed_logins("fred").unwrap(), at(3, 2_000 + MINUTE));
    // ...and a failure longer than the window after it starts a new one.
    assert_eq!(
        store
            .record_failed_login("fred", 3_001 + 2 * MINUTE, MINUTE)
            .unwrap(),
        at(1, 3_001 + 2 * MINUTE)
    );
    // Other users are counted apart.
    assert_eq!(store.failed_logins("jsmith").unwrap(), LoginFailures::default());
}

fn failed_logins_fold_the_user_name(open: Open) {
    let store = open();
    store.record_failed_login("FRED", 1_000, MINUTE).unwrap();
    assert_eq!(store.record_failed_login("Fred", 1_001, MINUTE).unwrap().count, 2);
    assert_eq!(store.failed_logins("fred").unwrap().count, 2);
    store.clear_failed_logins("fReD").unwrap();
    assert_eq!(store.failed_logins("FRED").unwrap(), LoginFailures::default());
    store.clear_failed_logins("nobody").unwrap(); // nothing to clear: no error
}

fn a_late_failure_never_moves_the_last_failure_backwards(open: Open) {
    // Replicas' clocks differ a little: a failure stamped earlier than the last one still
    // counts, and the streak's end stays where it was.
    let store = open();
    store.record_failed_login("fred", 10_000, MINUTE).unwrap();
    let late = store.record_failed_login("fred", 9_000, MINUTE).unwrap();
    assert_eq!(
        late,
        LoginFailures {
            count: 2,
            last_failure_ms: 10_000
        }
    );
}

fn concurrent_failures_from_two_handles_lose_no_count(open: Open) {
    // Two handles are two replicas (two connection pools); 8 threads x 25 failures.
    let stores = [Arc::new(open()), Arc::new(open())];
    let start = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|n| {
            let (store, start) = (stores[n % 2].clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                (0..25)
                    .map(|i| {
                        store
                            .record_failed_login("Fred", 1_000 + i, MINUTE)
                            .unwrap()
                            .count
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seen: Vec<u32> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    seen.sort_unstable();
    // Each failure saw its own count: 1..=200, none twice.
    assert_eq!(seen, (1..=200).collect::<Vec<u32>>());
    assert_eq!(stores[0].failed_logins("fred").unwrap().count, 200);
}

fn concurrent_creates_from_two_handles_get_distinct_ids(open: Open) {
    let stores = [Arc::new(open()), Arc::new(open())];
    let threads: Vec<_> = (0..8)
        .map(|n| {
            let store = stores[n % 2].clone();
            std::thread::spawn(move || {
                let hash = TokenHash::of("t");
                (0..10)
                    .map(|i| {
                        store
                            .create(&new(&format!("l-{n}-{i}"), &hash, "K", 1, 2))
                            .unwrap()
                            .id
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let ids: HashSet<i64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert_eq!(ids.len(), 80);
    let listed: Vec<i64> = stores[1]
        .list_for_user("K")
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed.len(), 80);
    assert!(listed.windows(2).all(|w| w[0] < w[1]), "oldest first: {listed:?}");
}

/// Each case as a test on SQLite and on PostgreSQL.
macro_rules! on_both_engines {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(
                #[test]
                fn $case() {
                    let scratch = Scratch::new();
                    let database = Database::Sqlite(scratch.database());
                    super::$case(&|| Store::open(&database).unwrap());
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[test]
                fn $case() {
                    let cluster = Postgres::shared();
                    let database = Database::parse(&cluster.fresh_database(), Path::new(".")).unwrap();
                    super::$case(&|| Store::open(&database).unwrap());
                }
            )*
        }
    };
}

on_both_engines!(
    a_new_database_is_at_the_latest_schema_version,
    a_created_token_is_listed_and_found_by_lookup,
    a_duplicate_lookup_is_refused_and_stores_nothing,
    only_the_owner_renames_or_deletes,
    ids_are_not_reused_after_a_delete,
    filter_pages_soonest_expiry_first_and_counts_all_matches,
    delete_all_for_removes_only_that_users_tokens,
    touch_never_moves_last_accessed_backwards,
    text_round_trips_unchanged,
    failed_logins_count_a_streak_that_restarts_after_the_window,
    failed_logins_fold_the_user_name,
    a_late_failure_never_moves_the_last_failure_backwards,
    concurrent_failures_from_two_handles_lose_no_count,
    concurrent_creates_from_two_handles_get_distinct_ids,
);

#[test]
fn postgres_refuses_a_database_with_a_newer_schema() {
    let cluster = Postgres::shared();
    let url = cluster.fresh_database();
    let database = Database::parse(&url, Path::new(".")).unwrap();
    drop(Store::open(&database).unwrap());
    Postgres::client_for(&url)
        .batch_execute("INSERT INTO schema_migrations VALUES (99, 0)")
        .unwrap();
    let err = Store::open(&database).unwrap_err();
    assert!(err.0.contains("newer"), "{err}");
    assert!(!err.0.contains(common::postgres::PG_PASSWORD), "{err}");
}

#[test]
fn postgres_replicas_that_open_together_migrate_once() {
    let cluster = Postgres::shared();
    let database = Database::parse(&cluster.fresh_database(), Path::new(".")).unwrap();
    let start = Arc::new(Barrier::new(4));
    let opened: Vec<_> = (0..4)
        .map(|_| {
            let (database, start) = (database.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                Store::open(&database).map(|s| s.schema_version())
            })
        })
        .collect();
    for handle in opened {
        assert_eq!(handle.join().unwrap().unwrap().unwrap(), SCHEMA_VERSION);
    }
}

#[test]
fn postgres_that_cannot_be_reached_is_an_error_that_hides_the_password() {
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://tg:unreachable-s3cret@127.0.0.1:{port}/tokens");
    let err = Store::open(&Database::parse(&url, Path::new(".")).unwrap()).unwrap_err();
    assert!(!err.0.contains("unreachable-s3cret"), "{err}");
    assert!(
        err.0.contains("***"),
        "names the database, password hidden: {err}"
    );
}

#[test]
fn a_wrong_postgres_password_is_an_error_that_hides_it() {
    let cluster = Postgres::shared();
    let url = cluster
        .fresh_database()
        .replace(common::postgres::PG_PASSWORD, "wrong-s3cret");
    let err = Store::open(&Database::parse(&url, Path::new(".")).unwrap()).unwrap_err();
    assert!(!err.0.contains("wrong-s3cret"), "{err}");
    assert!(err.0.contains("password"), "says why: {err}");
}

#[test]
fn the_service_stops_on_a_wrong_postgres_password_and_does_not_log_it() {
    let cluster = Postgres::shared();
    let url = cluster
        .fresh_database()
        .replace(common::postgres::PG_PASSWORD, "wrong-s3cret");
    let scratch = Scratch::new();
    let users = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/users.json");
    let config = serde_json::json!({
        "listen": "127.0.0.1:0",
        "database": url,
        "users_file": users,
        "introspection": {"client_id": "tokengate", "client_secret": "integration-introspection-secret"},
        "max_validity_months": 12,
        "default_validity_months": 6,
    });
    let path = scratch.0.join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tokengate-tokens"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "{said}");
    assert!(
        said.contains("password authentication failed"),
        "says why: {said}"
    );
    assert!(
        said.contains("tokengate:***@127.0.0.1"),
        "names the database: {said}"
    );
    assert!(!said.contains("wrong-s3cret"), "{said}");
}

#[test]
fn postgres_is_reconnected_to_after_a_server_restart() {
    let mut cluster = Postgres::start(); // its own: the restart must not disturb other tests
    let database = Database::parse(&cluster.fresh_database(), Path::new(".")).unwrap();
    let store = Store::open(&database).unwrap();
    let hash = TokenHash::of("t");
    store.create(&new("before", &hash, "K", 1, 2)).unwrap();
    // Use every pooled connection, so each has one to lose.
    let users: Vec<String> = (0..16).map(|n| format!("U{n}")).collect();
    std::thread::scope(|s| {
        for user in &users {
            let store = &store;
            s.spawn(move || store.list_for_user(user).unwrap());
        }
    });
    cluster.restart();
    // A call on a connection that broke fails (500 for that one request); the next call on
    // that connection opens a new one. So at most one failure per pooled connection.
    let answers: Vec<_> = (0..3 * postgres_engine::POOL)
        .map(|_| store.list_for_user("K"))
        .collect();
    let failures = answers.iter().filter(|a| a.is_err()).count();
    assert!(failures <= postgres_engine::POOL, "{answers:?}");
    assert_eq!(answers.last().unwrap().as_ref().unwrap().len(), 1, "{answers:?}");
    store.create(&new("after", &hash, "K", 1, 2)).unwrap();
}
