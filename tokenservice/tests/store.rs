//! The store suite: every case runs on both engines, SQLite (a file in a scratch directory)
//! and PostgreSQL (a fresh database in a real throw-away cluster). A case gets an opener: each
//! call opens another handle on the same database, as another replica would.

// The cases are test bodies (the macro at the end wraps each in `#[test]`): they fail loudly.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::postgres::Postgres;
use common::{Scratch, TestDatabase};
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Barrier};
use tokengate_tokens::oauth_tokens;
use tokengate_tokens::store::postgres as postgres_engine;
use tokengate_tokens::store::{
    AccessTokenRecord, Database, LoginFailures, NewAccessToken, NewRecord, NewRequestToken,
    RequestTokenRecord, RequestTokenState, Store,
};
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

// OAuth 1.0a (issue 13): request tokens and access tokens.

/// The hash of a test value (the store only ever sees hashes).
fn h(value: &str) -> [u8; 32] {
    oauth_tokens::hash(value)
}

/// The hashes a request token is made of, named by `name`.
struct RequestHashes {
    hash: [u8; 32],
    secret: [u8; 32],
    csrf: [u8; 32],
}

impl RequestHashes {
    fn of(name: &str) -> Self {
        Self {
            hash: h(name),
            secret: h(&format!("{name}-secret")),
            csrf: h(&format!("{name}-csrf")),
        }
    }

    fn as_new<'a>(&'a self, consumer_key: &'a str, created: i64, expires: i64) -> NewRequestToken<'a> {
        NewRequestToken {
            hash: &self.hash,
            secret_hash: &self.secret,
            consumer_key,
            callback: "http://127.0.0.1:8765/done",
            csrf_hash: &self.csrf,
            created,
            expires,
        }
    }

    /// The record `new(consumer_key, created, expires)` reads back as, in `state`.
    fn record(
        &self,
        consumer_key: &str,
        created: i64,
        expires: i64,
        state: RequestTokenState,
    ) -> RequestTokenRecord {
        RequestTokenRecord {
            consumer_key: consumer_key.to_owned(),
            callback: "http://127.0.0.1:8765/done".to_owned(),
            csrf_hash: self.csrf,
            created,
            expires,
            state,
        }
    }
}

fn authorized(user_key: &str, verifier: &str) -> RequestTokenState {
    RequestTokenState::Authorized {
        user_key: user_key.to_owned(),
        verifier_hash: h(verifier),
    }
}

/// The hashes an access token is made of, named by `name`.
struct AccessHashes {
    hash: [u8; 32],
    secret: [u8; 32],
    session: [u8; 32],
}

impl AccessHashes {
    fn of(name: &str) -> Self {
        Self {
            hash: h(name),
            secret: h(&format!("{name}-secret")),
            session: h(&format!("{name}-session")),
        }
    }

    fn as_new<'a>(&'a self, consumer_key: &'a str, user_key: &'a str, created: i64) -> NewAccessToken<'a> {
        NewAccessToken {
            hash: &self.hash,
            secret_hash: &self.secret,
            session_hash: &self.session,
            consumer_key,
            user_key,
            created,
            expires: created + 1_000,
            authorization_expires: created + 2_000,
        }
    }
}

fn a_request_token_is_created_pending_and_found_by_its_hash(open: Open) {
    let store = open();
    let rt = RequestHashes::of("rt1");
    store
        .create_request_token(&rt.as_new("demo", 1_000, 2_000))
        .unwrap();
    let expected = rt.record("demo", 1_000, 2_000, RequestTokenState::Pending);
    assert_eq!(
        store.find_request_token(&rt.hash).unwrap(),
        Some(expected.clone())
    );
    // Found by its hash only: not by its secret's, not by another's.
    assert!(store.find_request_token(&rt.secret).unwrap().is_none());
    assert!(store.find_request_token(&h("rt2")).unwrap().is_none());
    // Another handle (another replica) sees it at once.
    assert_eq!(open().find_request_token(&rt.hash).unwrap(), Some(expected));
}

fn a_duplicate_request_token_hash_is_refused_and_changes_nothing(open: Open) {
    let store = open();
    let rt = RequestHashes::of("rt1");
    store
        .create_request_token(&rt.as_new("demo", 1_000, 2_000))
        .unwrap();
    assert!(store
        .create_request_token(&rt.as_new("other", 1_500, 9_000))
        .is_err());
    assert_eq!(
        store.find_request_token(&rt.hash).unwrap(),
        Some(rt.record("demo", 1_000, 2_000, RequestTokenState::Pending))
    );
}

fn a_pending_request_token_is_authorized_once_and_then_stays_decided(open: Open) {
    let store = open();
    let rt = RequestHashes::of("rt1");
    store
        .create_request_token(&rt.as_new("demo", 1_000, 2_000))
        .unwrap();
    // Pending is not a decision.
    assert!(!store
        .decide_request_token(&rt.hash, &RequestTokenState::Pending, 1_500)
        .unwrap());
    assert!(store
        .decide_request_token(&rt.hash, &authorized("K1", "v1"), 1_500)
        .unwrap());
    let decided = rt.record("demo", 1_000, 2_000, authorized("K1", "v1"));
    assert_eq!(store.find_request_token(&rt.hash).unwrap(), Some(decided.clone()));
    // Decided once: neither another user's approval nor a denial moves it again.
    assert!(!store
        .decide_request_token(&rt.hash, &authorized("K2", "v2"), 1_600)
        .unwrap());
    assert!(!store
        .decide_request_token(&rt.hash, &RequestTokenState::Denied, 1_600)
        .unwrap());
    assert_eq!(store.find_request_token(&rt.hash).unwrap(), Some(decided));
}

fn a_denied_request_token_cannot_be_authorized_afterwards(open: Open) {
    let store = open();
    let rt = RequestHashes::of("rt1");
    store
        .create_request_token(&rt.as_new("demo", 1_000, 2_000))
        .unwrap();
    assert!(store
        .decide_request_token(&rt.hash, &RequestTokenState::Denied, 1_500)
        .unwrap());
    assert!(!store
        .decide_request_token(&rt.hash, &authorized("K1", "v1"), 1_500)
        .unwrap());
    assert_eq!(
        store.find_request_token(&rt.hash).unwrap().unwrap().state,
        RequestTokenState::Denied
    );
}

fn an_expired_or_unknown_request_token_cannot_be_decided(open: Open) {
    let store = open();
    let rt = RequestHashes::of("rt1");
    store
        .create_request_token(&rt.as_new("demo", 1_000, 2_000))
        .unwrap();
    // Usable while now < expires: at `expires` it is expired.
    for now in [2_000, 2_001, i64::MAX] {
        assert!(!store
            .decide_request_token(&rt.hash, &authorized("K1", "v1"), now)
            .unwrap());
        assert!(!store
            .decide_request_token(&rt.hash, &RequestTokenState::Denied, now)
            .unwrap());
    }
    let pending = store.find_request_token(&rt.hash).unwrap().unwrap();
    assert_eq!(
        pending.state,
        RequestTokenState::Pending,
        "an expired token is still found, as it was"
    );
    assert!(!store
        .decide_request_token(&h("unknown"), &RequestTokenState::Denied, 1_500)
        .unwrap());
    assert!(store.find_request_token(&h("unknown")).unwrap().is_none());
    // One millisecond before it expires it still can be.
    assert!(store
        .decide_request_token(&rt.hash, &authorized("K1", "v1"), 1_999)
        .unwrap());
}

fn take_returns_the_request_token_as_it_was_once(open: Open) {
    let store = open();
    let (rt, expired) = (RequestHashes::of("rt1"), RequestHashes::of("rt2"));
    store
        .create_request_token(&rt.as_new("demo", 1_000, 2_000))
        .unwrap();
    store
        .create_request_token(&expired.as_new("demo", 1_000, 1_001))
        .unwrap();
    store
        .decide_request_token(&rt.hash, &authorized("K1", "v1"), 1_500)
        .unwrap();
    assert_eq!(
        store.take_request_token(&rt.hash).unwrap(),
        Some(rt.record("demo", 1_000, 2_000, authorized("K1", "v1")))
    );
    assert!(store.take_request_token(&rt.hash).unwrap().is_none());
    assert!(open().take_request_token(&rt.hash).unwrap().is_none());
    assert!(store.find_request_token(&rt.hash).unwrap().is_none());
    // Taken, it cannot be decided any more either.
    assert!(!store
        .decide_request_token(&rt.hash, &RequestTokenState::Denied, 1_500)
        .unwrap());
    // An expired one is taken too (the caller answers token_expired), and only once.
    assert_eq!(
        store.take_request_token(&expired.hash).unwrap(),
        Some(expired.record("demo", 1_000, 1_001, RequestTokenState::Pending))
    );
    assert!(store.take_request_token(&expired.hash).unwrap().is_none());
    assert!(store.take_request_token(&h("unknown")).unwrap().is_none());
}

/// Eight threads on two handles (two replicas) race for each of `tokens` at once; for each
/// token, what each thread got.
fn race<T: Send + 'static>(
    open: Open,
    tokens: usize,
    attempt: impl Fn(&Store, usize, usize) -> T + Send + Sync + 'static,
) -> Vec<Vec<T>> {
    let stores = [Arc::new(open()), Arc::new(open())];
    let attempt = Arc::new(attempt);
    let start = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|thread| {
            let (store, start, attempt) = (stores[thread % 2].clone(), start.clone(), attempt.clone());
            std::thread::spawn(move || {
                start.wait();
                (0..tokens)
                    .map(|token| attempt(&store, thread, token))
                    .collect::<Vec<T>>()
            })
        })
        .collect();
    let per_thread: Vec<Vec<T>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let mut per_token: Vec<Vec<T>> = (0..tokens).map(|_| Vec::new()).collect();
    for answers in per_thread {
        for (token, answer) in answers.into_iter().enumerate() {
            per_token[token].push(answer);
        }
    }
    per_token
}

fn racing_takes_give_each_request_token_to_exactly_one_caller(open: Open) {
    let store = open();
    let tokens: Vec<RequestHashes> = (0..25).map(|n| RequestHashes::of(&format!("rt{n}"))).collect();
    for rt in &tokens {
        store
            .create_request_token(&rt.as_new("demo", 1_000, 2_000))
            .unwrap();
    }
    let hashes: Vec<[u8; 32]> = tokens.iter().map(|rt| rt.hash).collect();
    let answers = race(open, hashes.len(), move |store, _, token| {
        store.take_request_token(&hashes[token]).unwrap()
    });
    for (n, got) in answers.iter().enumerate() {
        let winners: Vec<_> = got.iter().flatten().collect();
        assert_eq!(winners.len(), 1, "token {n}: {got:?}");
        assert_eq!(winners[0].consumer_key, "demo");
    }
    assert!(store.find_request_token(&tokens[0].hash).unwrap().is_none());
}

fn racing_decisions_let_exactly_one_user_decide_each_request_token(open: Open) {
    let store = open();
    let tokens: Vec<RequestHashes> = (0..25).map(|n| RequestHashes::of(&format!("rt{n}"))).collect();
    for rt in &tokens {
        store
            .create_request_token(&rt.as_new("demo", 1_000, 2_000))
            .unwrap();
    }
    let hashes: Vec<[u8; 32]> = tokens.iter().map(|rt| rt.hash).collect();
    let answers = race(open, hashes.len(), move |store, thread, token| {
        store
            .decide_request_token(&hashes[token], &authorized(&format!("K{thread}"), "v"), 1_500)
            .unwrap()
    });
    for (rt, won) in tokens.iter().zip(&answers) {
        let winners: Vec<usize> = (0..won.len()).filter(|&t| won[t]).collect();
        assert_eq!(winners.len(), 1, "{won:?}");
        // The state is the winner's decision.
        assert_eq!(
            store.find_request_token(&rt.hash).unwrap().unwrap().state,
            authorized(&format!("K{}", winners[0]), "v")
        );
    }
}

fn purge_removes_only_the_expired_request_tokens(open: Open) {
    let store = open();
    let tokens: Vec<RequestHashes> = (1..=3).map(|n| RequestHashes::of(&format!("rt{n}"))).collect();
    for (rt, expires) in tokens.iter().zip([100, 200, 300]) {
        store
            .create_request_token(&rt.as_new("demo", 1, expires))
            .unwrap();
    }
    store
        .decide_request_token(&tokens[0].hash, &RequestTokenState::Denied, 50)
        .unwrap();
    // Expired at 200: the ones with expires 100 and 200, whatever their state.
    assert_eq!(store.purge_request_tokens(200).unwrap(), 2);
    assert!(store.find_request_token(&tokens[0].hash).unwrap().is_none());
    assert!(store.find_request_token(&tokens[1].hash).unwrap().is_none());
    assert!(store.find_request_token(&tokens[2].hash).unwrap().is_some());
    assert_eq!(store.purge_request_tokens(200).unwrap(), 0);
    assert_eq!(open().purge_request_tokens(i64::MAX).unwrap(), 1);
}

fn an_access_token_is_created_and_found_by_its_hash_only(open: Open) {
    let store = open();
    let at = AccessHashes::of("at1");
    let created = store
        .create_access_token(&at.as_new("demo", "K1", 1_000))
        .unwrap();
    assert_eq!(
        created,
        AccessTokenRecord {
            id: 1,
            consumer_key: "demo".to_owned(),
            user_key: "K1".to_owned(),
            created: 1_000,
            expires: 2_000,
            authorization_expires: 3_000,
            last_accessed: 0,
        }
    );
    assert_eq!(store.find_access_token(&at.hash).unwrap(), Some(created.clone()));
    assert_eq!(open().find_access_token(&at.hash).unwrap(), Some(created));
    // Not by its secret's or its session handle's hash, and a request token is not one.
    let rt = RequestHashes::of("rt1");
    store
        .create_request_token(&rt.as_new("demo", 1_000, 2_000))
        .unwrap();
    for other in [at.secret, at.session, rt.hash, h("unknown")] {
        assert!(store.find_access_token(&other).unwrap().is_none());
    }
}

fn a_duplicate_access_token_or_session_hash_is_refused_and_stores_nothing(open: Open) {
    let store = open();
    let at = AccessHashes::of("at1");
    store
        .create_access_token(&at.as_new("demo", "K1", 1_000))
        .unwrap();
    let same_token = AccessHashes {
        session: h("another-session"),
        ..AccessHashes::of("at1")
    };
    let same_session = AccessHashes {
        hash: h("another-token"),
        ..AccessHashes::of("at1")
    };
    assert!(store
        .create_access_token(&same_token.as_new("demo", "K2", 1_000))
        .is_err());
    assert!(store
        .create_access_token(&same_session.as_new("demo", "K2", 1_000))
        .is_err());
    assert!(store.list_access_tokens("K2").unwrap().is_empty());
    assert!(store.find_access_token(&same_session.hash).unwrap().is_none());
}

fn access_tokens_are_listed_per_user_oldest_first(open: Open) {
    let store = open();
    let (a, b, c) = (
        AccessHashes::of("a"),
        AccessHashes::of("b"),
        AccessHashes::of("c"),
    );
    let a = store.create_access_token(&a.as_new("demo", "K1", 1_000)).unwrap();
    let c = store
        .create_access_token(&c.as_new("other", "K2", 1_000))
        .unwrap();
    let b = store.create_access_token(&b.as_new("other", "K1", 500)).unwrap();
    assert_eq!(store.list_access_tokens("K1").unwrap(), vec![a, b]);
    assert_eq!(open().list_access_tokens("K2").unwrap(), vec![c]);
    assert!(store.list_access_tokens("K3").unwrap().is_empty());
    assert!(
        store.list_access_tokens("k1").unwrap().is_empty(),
        "user keys are exact"
    );
}

fn only_the_owner_or_an_administrator_revokes_an_access_token(open: Open) {
    let store = open();
    let (a, b) = (AccessHashes::of("a"), AccessHashes::of("b"));
    let a = store.create_access_token(&a.as_new("demo", "K1", 1_000)).unwrap();
    let b_id = store
        .create_access_token(&b.as_new("demo", "K2", 1_000))
        .unwrap()
        .id;
    // Someone else: refused, and the token still works.
    assert!(!store.revoke_access_token(a.id, Some("K2")).unwrap());
    assert_eq!(store.find_access_token(&h("a")).unwrap(), Some(a.clone()));
    // Its owner.
    assert!(store.revoke_access_token(a.id, Some("K1")).unwrap());
    assert!(store.find_access_token(&h("a")).unwrap().is_none());
    assert!(!store.revoke_access_token(a.id, Some("K1")).unwrap());
    // An administrator, whoever owns it.
    assert!(open().revoke_access_token(b_id, None).unwrap());
    assert!(store.find_access_token(&h("b")).unwrap().is_none());
    assert!(!store.revoke_access_token(b_id, None).unwrap());
    assert!(!store.revoke_access_token(b_id + 100, None).unwrap());
    assert!(store.list_access_tokens("K1").unwrap().is_empty());
    assert!(store.list_access_tokens("K2").unwrap().is_empty());
}

fn access_token_ids_are_not_reused_after_a_revoke(open: Open) {
    let store = open();
    let first = store
        .create_access_token(&AccessHashes::of("a").as_new("demo", "K1", 1))
        .unwrap()
        .id;
    assert!(store.revoke_access_token(first, None).unwrap());
    let next = store
        .create_access_token(&AccessHashes::of("b").as_new("demo", "K1", 1))
        .unwrap()
        .id;
    assert_eq!(next, first + 1);
}

fn touching_an_access_token_never_moves_last_accessed_backwards(open: Open) {
    let store = open();
    let id = store
        .create_access_token(&AccessHashes::of("a").as_new("demo", "K1", 1))
        .unwrap()
        .id;
    let other = store
        .create_access_token(&AccessHashes::of("b").as_new("demo", "K1", 1))
        .unwrap();
    store.touch_access_token(id, 500).unwrap();
    store.touch_access_token(id, 400).unwrap();
    assert_eq!(
        store.find_access_token(&h("a")).unwrap().unwrap().last_accessed,
        500
    );
    assert_eq!(
        store.find_access_token(&h("b")).unwrap(),
        Some(other),
        "only that token"
    );
    store.touch_access_token(id + 100, 600).unwrap(); // no such token: nothing to do, no error
}

fn oauth_text_round_trips_unchanged(open: Open) {
    let store = open();
    let consumer = "Ünïcødé 'quotes' ; DROP TABLE oauth_access_tokens; -- \\ 🎫";
    let callback = "http://127.0.0.1:8765/cb?a=1&b='2'#é";
    let rt = RequestHashes::of("rt1");
    store
        .create_request_token(&NewRequestToken {
            callback,
            ..rt.as_new(consumer, i64::MIN + 1, i64::MAX)
        })
        .unwrap();
    let found = store.find_request_token(&rt.hash).unwrap().unwrap();
    assert_eq!(
        (found.consumer_key.as_str(), found.callback.as_str()),
        (consumer, callback)
    );
    assert_eq!((found.created, found.expires), (i64::MIN + 1, i64::MAX));
    let at = AccessHashes::of("at1");
    let created = store.create_access_token(&at.as_new(consumer, "K'1", 1)).unwrap();
    assert_eq!(store.list_access_tokens("K'1").unwrap(), vec![created]);
}

/// Every row of `table` as text, byte strings in lower-case hex (PostgreSQL's JSON writes
/// `bytea` as `\\x<hex>`; SQLite's blobs are written here the same way).
fn rows_as_text(database: &TestDatabase, table: &str) -> Vec<String> {
    match database {
        TestDatabase::Sqlite(path) => {
            let connection = rusqlite::Connection::open(path).unwrap();
            let mut statement = connection.prepare(&format!("SELECT * FROM {table}")).unwrap();
            let columns = statement.column_count();
            let mut rows = statement.query([]).unwrap();
            let mut text = Vec::new();
            while let Some(row) = rows.next().unwrap() {
                let values: Vec<String> = (0..columns)
                    .map(|i| match row.get_ref(i).unwrap() {
                        rusqlite::types::ValueRef::Blob(bytes) => format!("\\x{}", hex(bytes)),
                        rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                        rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                        rusqlite::types::ValueRef::Real(x) => x.to_string(),
                        rusqlite::types::ValueRef::Null => "NULL".to_owned(),
                    })
                    .collect();
                text.push(values.join(" | "));
            }
            text
        }
        TestDatabase::Postgres(url) => Postgres::client_for(url)
            .query(&format!("SELECT to_jsonb(t)::text FROM {table} t"), &[])
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn the_database_holds_only_hashes_of_oauth_values(open: Open, database: &TestDatabase) {
    let store = open();
    let fresh = || oauth_tokens::generate().unwrap();
    let (rt, rt_secret, csrf, verifier) = (fresh(), fresh(), fresh(), fresh());
    let (at, at_secret, session) = (fresh(), fresh(), fresh());
    store
        .create_request_token(&NewRequestToken {
            hash: &rt.hash,
            secret_hash: &rt_secret.hash,
            consumer_key: "demo",
            callback: "oob",
            csrf_hash: &csrf.hash,
            created: 1,
            expires: 2,
        })
        .unwrap();
    let decision = RequestTokenState::Authorized {
        user_key: "K1".to_owned(),
        verifier_hash: verifier.hash,
    };
    assert!(store.decide_request_token(&rt.hash, &decision, 1).unwrap());
    store
        .create_access_token(&NewAccessToken {
            hash: &at.hash,
            secret_hash: &at_secret.hash,
            session_hash: &session.hash,
            consumer_key: "demo",
            user_key: "K1",
            created: 1,
            expires: 2,
            authorization_expires: 3,
        })
        .unwrap();
    for (table, values) in [
        ("oauth_request_tokens", [&rt, &rt_secret, &csrf, &verifier]),
        ("oauth_access_tokens", [&at, &at_secret, &session, &session]),
    ] {
        let rows = rows_as_text(database, table).join("\n");
        assert_eq!(rows.lines().count(), 1, "{rows}");
        for value in values {
            assert!(
                !rows.contains(&value.plain),
                "{table} holds a value itself: {rows}"
            );
            assert!(
                !rows.contains(&hex(value.plain.as_bytes())),
                "{table} holds a value as bytes: {rows}"
            );
            assert!(rows.contains(&hex(&value.hash)), "{table} holds its hash: {rows}");
        }
    }
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

/// Each case that also reads the tables itself, on both engines.
macro_rules! on_both_databases {
    ($($case:ident),* $(,)?) => {
        mod sqlite_tables {
            use super::*;
            $(
                #[test]
                fn $case() {
                    let scratch = Scratch::new();
                    let test_database = TestDatabase::sqlite(&scratch);
                    let database = Database::parse(&test_database.spec(), Path::new(".")).unwrap();
                    super::$case(&|| Store::open(&database).unwrap(), &test_database);
                }
            )*
        }
        mod postgres_tables {
            use super::*;
            $(
                #[test]
                fn $case() {
                    let test_database = TestDatabase::postgres();
                    let database = Database::parse(&test_database.spec(), Path::new(".")).unwrap();
                    super::$case(&|| Store::open(&database).unwrap(), &test_database);
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
    a_request_token_is_created_pending_and_found_by_its_hash,
    a_duplicate_request_token_hash_is_refused_and_changes_nothing,
    a_pending_request_token_is_authorized_once_and_then_stays_decided,
    a_denied_request_token_cannot_be_authorized_afterwards,
    an_expired_or_unknown_request_token_cannot_be_decided,
    take_returns_the_request_token_as_it_was_once,
    racing_takes_give_each_request_token_to_exactly_one_caller,
    racing_decisions_let_exactly_one_user_decide_each_request_token,
    purge_removes_only_the_expired_request_tokens,
    an_access_token_is_created_and_found_by_its_hash_only,
    a_duplicate_access_token_or_session_hash_is_refused_and_stores_nothing,
    access_tokens_are_listed_per_user_oldest_first,
    only_the_owner_or_an_administrator_revokes_an_access_token,
    access_token_ids_are_not_reused_after_a_revoke,
    touching_an_access_token_never_moves_last_accessed_backwards,
    oauth_text_round_trips_unchanged,
);

on_both_databases!(the_database_holds_only_hashes_of_oauth_values);

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
fn postgres_migrates_a_version_2_database_keeping_its_tokens() {
    let cluster = Postgres::shared();
    let url = cluster.fresh_database();
    let database = Database::parse(&url, Path::new(".")).unwrap();
    let hash = TokenHash::of("t");
    Store::open(&database)
        .unwrap()
        .create(&new("l1", &hash, "K1", 1, 2))
        .unwrap();
    // Back to version 2, as a database made before OAuth 1.0a was.
    Postgres::client_for(&url)
        .batch_execute(
            "DROP TABLE oauth_request_tokens, oauth_access_tokens;
             DELETE FROM schema_migrations WHERE version = 3",
        )
        .unwrap();
    let store = Store::open(&database).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(store.list_for_user("K1").unwrap().len(), 1);
    let at = AccessHashes::of("at1");
    let created = store.create_access_token(&at.as_new("demo", "K1", 1)).unwrap();
    assert_eq!(store.list_access_tokens("K1").unwrap(), vec![created]);
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
