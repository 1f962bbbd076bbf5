//! A property of the storage trait: for any sequence of operations, SQLite and PostgreSQL give
//! the same answers, and the answers a plain in-memory model of the contract gives. Ids are
//! compared by creation order (PostgreSQL may skip an id after a refused create; neither engine
//! reuses one). `PROPTEST_CASES=2000 cargo test --release -p tokengate-tokens --test store_model`
//! runs a longer campaign.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::postgres::Postgres;
use proptest::prelude::*;
use std::path::Path;
use tokengate_tokens::store::{
    fold_user_name, Database, LoginFailures, NewRecord, Store, TokenRecord, TokenStore,
};
use tokengate_tokens::tokens::TokenHash;

const USERS: [&str; 3] = ["K1", "K2", "K'3"];
const NAMES: [&str; 5] = ["fred", "FRED", "Fred", "jsmith", "ÖLAF"];
const DESCRIPTIONS: [&str; 4] = ["a", "Ünïcødé 🎫", "'; DROP TABLE tokens; --", "x\\y"];

#[derive(Debug, Clone)]
enum Op {
    /// `lookup` picks one of a few handles, so some creates collide and must be refused.
    Create {
        lookup: u8,
        user: usize,
        by: usize,
        created: i64,
        valid_until: i64,
    },
    List {
        user: usize,
    },
    /// `token` is a creation index (one past the end and beyond: no such token).
    Rename {
        token: usize,
        owner: usize,
        description: usize,
    },
    Delete {
        token: usize,
        owner: usize,
    },
    DeleteAll {
        user: usize,
    },
    Filter {
        bound: Option<i64>,
        offset: u64,
        limit: u64,
    },
    Find {
        lookup: u8,
    },
    Touch {
        token: usize,
        at: i64,
    },
    Fail {
        name: usize,
        now: i64,
        window: i64,
    },
    Failures {
        name: usize,
    },
    Clear {
        name: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..12, 0..3usize, 0..3usize, 0i64..4, 0i64..6).prop_map(|(lookup, user, by, created, valid_until)| Op::Create { lookup, user, by, created, valid_until }),
        1 => (0..3usize).prop_map(|user| Op::List { user }),
        1 => (0..10usize, 0..3usize, 0..4usize).prop_map(|(token, owner, description)| Op::Rename { token, owner, description }),
        1 => (0..10usize, 0..3usize).prop_map(|(token, owner)| Op::Delete { token, owner }),
        1 => (0..3usize).prop_map(|user| Op::DeleteAll { user }),
        1 => (proptest::option::of(0i64..7), 0u64..6, 0u64..5).prop_map(|(bound, offset, limit)| Op::Filter { bound, offset, limit }),
        1 => (0u8..12).prop_map(|lookup| Op::Find { lookup }),
        1 => (0..10usize, 0i64..8).prop_map(|(token, at)| Op::Touch { token, at }),
        3 => (0..5usize, 0i64..60, 0i64..20).prop_map(|(name, now, window)| Op::Fail { name, now, window }),
        1 => (0..5usize).prop_map(|name| Op::Failures { name }),
        1 => (0..5usize).prop_map(|name| Op::Clear { name }),
    ]
}

/// A record with its id replaced by its creation index.
#[derive(Debug, Clone, PartialEq)]
struct Rec {
    n: usize,
    description: String,
    user_key: String,
    created_by_user_key: String,
    created: i64,
    valid_until: i64,
    last_accessed: i64,
}

#[derive(Debug, PartialEq)]
enum Answer {
    Created(Option<Rec>),
    Records(Vec<Rec>),
    Renamed(Option<Rec>),
    Deleted(bool),
    DeletedAll(usize),
    Page(Vec<Rec>, u64),
    /// The record, and whether the stored hash is the one created with it.
    Found(Option<(Rec, bool)>),
    Done,
    Failures(LoginFailures),
}

fn lookup(n: u8) -> String {
    format!("lookup-{n}")
}

fn hash_for(n: u8) -> TokenHash {
    TokenHash::of(&lookup(n))
}

/// Runs `ops` on an engine; ids are mapped to creation indexes.
fn run(store: &dyn TokenStore, ops: &[Op]) -> Vec<Answer> {
    let mut ids: Vec<i64> = Vec::new();
    let id_of = |ids: &[i64], token: usize| ids.get(token).copied().unwrap_or(1_000_000 + token as i64);
    let rec = |ids: &[i64], r: TokenRecord| Rec {
        n: ids.iter().position(|&id| id == r.id).unwrap(),
        description: r.description,
        user_key: r.user_key,
        created_by_user_key: r.created_by_user_key,
        created: r.created,
        valid_until: r.valid_until,
        last_accessed: r.last_accessed,
    };
    ops.iter()
        .map(|op| match *op {
            Op::Create {
                lookup: l,
                user,
                by,
                created,
                valid_until,
            } => {
                let (handle, hash) = (lookup(l), hash_for(l));
                let made = store.create(&NewRecord {
                    lookup: &handle,
                    hash: &hash,
                    description: DESCRIPTIONS[l as usize % 4],
                    user_key: USERS[user],
                    created_by_user_key: USERS[by],
                    created,
                    valid_until,
                });
                Answer::Created(made.ok().map(|r| {
                    ids.push(r.id);
                    rec(&ids, r)
                }))
            }
            Op::List { user } => Answer::Records(
                store
                    .list_for_user(USERS[user])
                    .unwrap()
                    .into_iter()
                    .map(|r| rec(&ids, r))
                    .collect(),
            ),
            Op::Rename {
                token,
                owner,
                description,
            } => Answer::Renamed(
                store
                    .rename(id_of(&ids, token), USERS[owner], DESCRIPTIONS[description])
                    .unwrap()
                    .map(|r| rec(&ids, r)),
            ),
            Op::Delete { token, owner } => {
                Answer::Deleted(store.delete(id_of(&ids, token), USERS[owner]).unwrap())
            }
            Op::DeleteAll { user } => Answer::DeletedAll(store.delete_all_for(USERS[user]).unwrap()),
            Op::Filter { bound, offset, limit } => {
                let (page, total) = store.filter(bound, offset, limit).unwrap();
                Answer::Page(page.into_iter().map(|r| rec(&ids, r)).collect(), total)
            }
            Op::Find { lookup: l } => Answer::Found(
                store
                    .find_by_lookup(&lookup(l))
                    .unwrap()
                    .map(|(r, hash)| (rec(&ids, r), hash.ct_eq(&hash_for(l)))),
            ),
            Op::Touch { token, at } => {
                store.touch(id_of(&ids, token), at).unwrap();
                Answer::Done
            }
            Op::Fail { name, now, window } => {
                Answer::Failures(store.record_failed_login(NAMES[name], now, window).unwrap())
            }
            Op::Failures { name } => Answer::Failures(store.failed_logins(NAMES[name]).unwrap()),
            Op::Clear { name } => {
                store.clear_failed_logins(NAMES[name]).unwrap();
                Answer::Done
            }
        })
        .collect()
}

/// The contract, as plain data.
fn model(ops: &[Op]) -> Vec<Answer> {
    struct Row {
        lookup: u8,
        rec: Rec,
    }
    let mut rows: Vec<Row> = Vec::new();
    let mut created = 0usize;
    let mut failures: Vec<(String, LoginFailures)> = Vec::new();
    ops.iter()
        .map(|op| match *op {
            Op::Create {
                lookup: l,
                user,
                by,
                created: at,
                valid_until,
            } => {
                if rows.iter().any(|r| r.lookup == l) {
                    return Answer::Created(None);
                }
                let rec = Rec {
                    n: created,
                    description: DESCRIPTIONS[l as usize % 4].to_owned(),
                    user_key: USERS[user].to_owned(),
                    created_by_user_key: USERS[by].to_owned(),
                    created: at,
                    valid_until,
                    last_accessed: 0,
                };
                created += 1;
                rows.push(Row {
                    lookup: l,
                    rec: rec.clone(),
                });
                Answer::Created(Some(rec))
            }
            Op::List { user } => Answer::Records(
                rows.iter()
                    .filter(|r| r.rec.user_key == USERS[user])
                    .map(|r| r.rec.clone())
                    .collect(),
            ),
            Op::Rename {
                token,
                owner,
                description,
            } => Answer::Renamed(
                rows.iter_mut()
                    .find(|r| r.rec.n == token && r.rec.user_key == USERS[owner])
                    .map(|r| {
                        r.rec.description = DESCRIPTIONS[description].to_owned();
                        r.rec.clone()
                    }),
            ),
            Op::Delete { token, owner } => {
                let before = rows.len();
                rows.retain(|r| !(r.rec.n == token && r.rec.user_key == USERS[owner]));
                Answer::Deleted(rows.len() < before)
            }
            Op::DeleteAll { user } => {
                let before = rows.len();
                rows.retain(|r| r.rec.user_key != USERS[user]);
                Answer::DeletedAll(before - rows.len())
            }
            Op::Filter { bound, offset, limit } => {
                let mut matching: Vec<Rec> = rows
                    .iter()
                    .filter(|r| r.rec.valid_until <= bound.unwrap_or(i64::MAX))
                    .map(|r| r.rec.clone())
                    .collect();
                matching.sort_by_key(|r| (r.valid_until, r.n));
                let total = matching.len() as u64;
                let page = matching
                    .into_iter()
                    .skip(offset as usize)
                    .take(limit as usize)
                    .collect();
                Answer::Page(page, total)
            }
            Op::Find { lookup: l } => {
                Answer::Found(rows.iter().find(|r| r.lookup == l).map(|r| (r.rec.clone(), true)))
            }
            Op::Touch { token, at } => {
                if let Some(r) = rows.iter_mut().find(|r| r.rec.n == token) {
                    r.rec.last_accessed = r.rec.last_accessed.max(at);
                }
                Answer::Done
            }
            Op::Fail { name, now, window } => {
                let user = fold_user_name(NAMES[name]);
                let streak = match failures.iter_mut().find(|(u, _)| *u == user) {
                    Some((_, f)) => {
                        f.count = if f.last_failure_ms < now - window {
                            1
                        } else {
                            f.count + 1
                        };
                        f.last_failure_ms = f.last_failure_ms.max(now);
                        *f
                    }
                    None => {
                        let f = LoginFailures {
                            count: 1,
                            last_failure_ms: now,
                        };
                        failures.push((user, f));
                        f
                    }
                };
                Answer::Failures(streak)
            }
            Op::Failures { name } => {
                let user = fold_user_name(NAMES[name]);
                Answer::Failures(
                    failures
                        .iter()
                        .find(|(u, _)| *u == user)
                        .map(|(_, f)| *f)
                        .unwrap_or_default(),
                )
            }
            Op::Clear { name } => {
                let user = fold_user_name(NAMES[name]);
                failures.retain(|(u, _)| *u != user);
                Answer::Done
            }
        })
        .collect()
}

/// One PostgreSQL database for the whole run, emptied before each case.
struct Pg {
    store: Store,
    url: String,
}

fn pg() -> &'static Pg {
    static PG: std::sync::OnceLock<Pg> = std::sync::OnceLock::new();
    PG.get_or_init(|| {
        let url = Postgres::shared().fresh_database();
        let store = Store::open(&Database::parse(&url, Path::new(".")).unwrap()).unwrap();
        Pg { store, url }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64)
    ))]

    #[test]
    fn both_engines_answer_any_sequence_of_operations_as_the_model_does(ops in proptest::collection::vec(op(), 1..40)) {
        let expected = model(&ops);
        let sqlite = Store::open_in_memory().unwrap();
        prop_assert_eq!(&run(&*sqlite, &ops), &expected, "SQLite");
        let pg = pg();
        Postgres::client_for(&pg.url)
            .batch_execute("TRUNCATE tokens, failed_logins RESTART IDENTITY")
            .unwrap();
        prop_assert_eq!(&run(&*pg.store, &ops), &expected, "PostgreSQL");
    }
}
