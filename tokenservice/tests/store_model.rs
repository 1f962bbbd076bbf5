//! A property of the storage trait: for any sequence of operations, SQLite and PostgreSQL give
//! the same answers, and the answers a plain in-memory model of the contract gives (API tokens,
//! failed logins, and OAuth 1.0a request and access tokens). Ids are
//! compared by creation order (PostgreSQL may skip an id after a refused create; neither engine
//! reuses one). `PROPTEST_CASES=2000 cargo test --release -p tokengate-tokens --test store_model`
//! runs a longer campaign.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::postgres::Postgres;
use proptest::prelude::*;
use std::path::Path;
use tokengate_tokens::oauth_tokens;
use tokengate_tokens::store::{
    fold_user_name, AccessTokenRecord, Database, LoginFailures, NewAccessToken, NewRecord, NewRequestToken,
    RequestTokenRecord, RequestTokenState, Store, TokenRecord, TokenStore,
};
use tokengate_tokens::tokens::TokenHash;

const USERS: [&str; 3] = ["K1", "K2", "K'3"];
const NAMES: [&str; 5] = ["fred", "FRED", "Fred", "jsmith", "ÖLAF"];
const DESCRIPTIONS: [&str; 4] = ["a", "Ünïcødé 🎫", "'; DROP TABLE tokens; --", "x\\y"];
const CONSUMERS: [&str; 2] = ["demo", "Ünïcødé 'app'"];

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
    // OAuth 1.0a. `token` picks one of a few request or access token values, so some creates
    // collide and must be refused.
    CreateRequestToken {
        token: u8,
        consumer: usize,
        created: i64,
        expires: i64,
    },
    FindRequestToken {
        token: u8,
    },
    /// `decision`: 0 is Pending (no decision), 1..=3 authorized by that user, 4 denied.
    Decide {
        token: u8,
        decision: usize,
        now: i64,
    },
    Take {
        token: u8,
    },
    Purge {
        now: i64,
    },
    CreateAccessToken {
        token: u8,
        session: u8,
        consumer: usize,
        user: usize,
        created: i64,
    },
    FindAccessToken {
        token: u8,
    },
    ListAccessTokens {
        user: usize,
    },
    /// `access` is a creation index; `owner` None is an administrator.
    Revoke {
        access: usize,
        owner: Option<usize>,
    },
    TouchAccessToken {
        access: usize,
        at: i64,
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
        2 => (0u8..6, 0..2usize, 0i64..4, 0i64..8).prop_map(|(token, consumer, created, expires)| Op::CreateRequestToken { token, consumer, created, expires }),
        1 => (0u8..6).prop_map(|token| Op::FindRequestToken { token }),
        2 => (0u8..6, 0..5usize, 0i64..8).prop_map(|(token, decision, now)| Op::Decide { token, decision, now }),
        1 => (0u8..6).prop_map(|token| Op::Take { token }),
        1 => (0i64..8).prop_map(|now| Op::Purge { now }),
        2 => (0u8..6, 0u8..6, 0..2usize, 0..3usize, 0i64..4).prop_map(|(token, session, consumer, user, created)| Op::CreateAccessToken { token, session, consumer, user, created }),
        1 => (0u8..6).prop_map(|token| Op::FindAccessToken { token }),
        1 => (0..3usize).prop_map(|user| Op::ListAccessTokens { user }),
        1 => (0..8usize, proptest::option::of(0..3usize)).prop_map(|(access, owner)| Op::Revoke { access, owner }),
        1 => (0..8usize, 0i64..8).prop_map(|(access, at)| Op::TouchAccessToken { access, at }),
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
    RequestTokenCreated(bool),
    RequestToken(Option<RequestTokenRecord>),
    Decided(bool),
    Purged(usize),
    AccessTokenCreated(Option<AccessRec>),
    AccessToken(Option<AccessRec>),
    AccessTokens(Vec<AccessRec>),
    Revoked(bool),
}

/// An access token with its id replaced by its creation index.
#[derive(Debug, Clone, PartialEq)]
struct AccessRec {
    n: usize,
    consumer_key: String,
    user_key: String,
    created: i64,
    expires: i64,
    authorization_expires: i64,
    last_accessed: i64,
}

fn value_hash(kind: &str, n: u8) -> [u8; 32] {
    oauth_tokens::hash(&format!("{kind}-{n}"))
}

fn callback(consumer: usize) -> String {
    format!("http://127.0.0.1:8765/{consumer}?q='x'")
}

fn decision(token: u8, decision: usize) -> RequestTokenState {
    match decision {
        0 => RequestTokenState::Pending,
        1..=3 => RequestTokenState::Authorized {
            user_key: USERS[decision - 1].to_owned(),
            verifier_hash: value_hash(&format!("verifier-{decision}"), token),
        },
        _ => RequestTokenState::Denied,
    }
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
    let mut access_ids: Vec<i64> = Vec::new();
    let access = |ids: &[i64], r: AccessTokenRecord| AccessRec {
        n: ids.iter().position(|&id| id == r.id).unwrap(),
        consumer_key: r.consumer_key,
        user_key: r.user_key,
        created: r.created,
        expires: r.expires,
        authorization_expires: r.authorization_expires,
        last_accessed: r.last_accessed,
    };
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
            Op::CreateRequestToken {
                token,
                consumer,
                created,
                expires,
            } => {
                let (hash, secret, csrf) = (
                    value_hash("rt", token),
                    value_hash("rt-secret", token),
                    value_hash("csrf", token),
                );
                let callback = callback(consumer);
                Answer::RequestTokenCreated(
                    store
                        .create_request_token(&NewRequestToken {
                            hash: &hash,
                            secret_hash: &secret,
                            consumer_key: CONSUMERS[consumer],
                            callback: &callback,
                            csrf_hash: &csrf,
                            created,
                            expires,
                        })
                        .is_ok(),
                )
            }
            Op::FindRequestToken { token } => {
                Answer::RequestToken(store.find_request_token(&value_hash("rt", token)).unwrap())
            }
            Op::Decide {
                token,
                decision: d,
                now,
            } => Answer::Decided(
                store
                    .decide_request_token(&value_hash("rt", token), &decision(token, d), now)
                    .unwrap(),
            ),
            Op::Take { token } => {
                Answer::RequestToken(store.take_request_token(&value_hash("rt", token)).unwrap())
            }
            Op::Purge { now } => Answer::Purged(store.purge_request_tokens(now).unwrap()),
            Op::CreateAccessToken {
                token,
                session,
                consumer,
                user,
                created,
            } => {
                let (hash, secret, session) = (
                    value_hash("at", token),
                    value_hash("at-secret", token),
                    value_hash("session", session),
                );
                let made = store.create_access_token(&NewAccessToken {
                    hash: &hash,
                    secret_hash: &secret,
                    session_hash: &session,
                    consumer_key: CONSUMERS[consumer],
                    user_key: USERS[user],
                    created,
                    expires: created + 10,
                    authorization_expires: created + 20,
                });
                Answer::AccessTokenCreated(made.ok().map(|r| {
                    access_ids.push(r.id);
                    access(&access_ids, r)
                }))
            }
            Op::FindAccessToken { token } => Answer::AccessToken(
                store
                    .find_access_token(&value_hash("at", token))
                    .unwrap()
                    .map(|r| access(&access_ids, r)),
            ),
            Op::ListAccessTokens { user } => Answer::AccessTokens(
                store
                    .list_access_tokens(USERS[user])
                    .unwrap()
                    .into_iter()
                    .map(|r| access(&access_ids, r))
                    .collect(),
            ),
            Op::Revoke { access: n, owner } => Answer::Revoked(
                store
                    .revoke_access_token(id_of(&access_ids, n), owner.map(|o| USERS[o]))
                    .unwrap(),
            ),
            Op::TouchAccessToken { access: n, at } => {
                store.touch_access_token(id_of(&access_ids, n), at).unwrap();
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
    let mut request_tokens: Vec<(u8, RequestTokenRecord)> = Vec::new();
    // (token, session, record)
    let mut access_tokens: Vec<(u8, u8, AccessRec)> = Vec::new();
    let mut access_created = 0usize;
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
            Op::CreateRequestToken {
                token,
                consumer,
                created,
                expires,
            } => {
                if request_tokens.iter().any(|(t, _)| *t == token) {
                    return Answer::RequestTokenCreated(false);
                }
                request_tokens.push((
                    token,
                    RequestTokenRecord {
                        consumer_key: CONSUMERS[consumer].to_owned(),
                        callback: callback(consumer),
                        csrf_hash: value_hash("csrf", token),
                        created,
                        expires,
                        state: RequestTokenState::Pending,
                    },
                ));
                Answer::RequestTokenCreated(true)
            }
            Op::FindRequestToken { token } => Answer::RequestToken(
                request_tokens
                    .iter()
                    .find(|(t, _)| *t == token)
                    .map(|(_, r)| r.clone()),
            ),
            Op::Decide {
                token,
                decision: d,
                now,
            } => {
                let decision = decision(token, d);
                let row = request_tokens
                    .iter_mut()
                    .find(|(t, r)| *t == token && r.state == RequestTokenState::Pending && now < r.expires);
                match row {
                    Some((_, r)) if decision != RequestTokenState::Pending => {
                        r.state = decision;
                        Answer::Decided(true)
                    }
                    _ => Answer::Decided(false),
                }
            }
            Op::Take { token } => {
                let at = request_tokens.iter().position(|(t, _)| *t == token);
                Answer::RequestToken(at.map(|at| request_tokens.remove(at).1))
            }
            Op::Purge { now } => {
                let before = request_tokens.len();
                request_tokens.retain(|(_, r)| r.expires > now);
                Answer::Purged(before - request_tokens.len())
            }
            Op::CreateAccessToken {
                token,
                session,
                consumer,
                user,
                created,
            } => {
                if access_tokens.iter().any(|(t, s, _)| *t == token || *s == session) {
                    return Answer::AccessTokenCreated(None);
                }
                let rec = AccessRec {
                    n: access_created,
                    consumer_key: CONSUMERS[consumer].to_owned(),
                    user_key: USERS[user].to_owned(),
                    created,
                    expires: created + 10,
                    authorization_expires: created + 20,
                    last_accessed: 0,
                };
                access_created += 1;
                access_tokens.push((token, session, rec.clone()));
                Answer::AccessTokenCreated(Some(rec))
            }
            Op::FindAccessToken { token } => Answer::AccessToken(
                access_tokens
                    .iter()
                    .find(|(t, _, _)| *t == token)
                    .map(|(_, _, r)| r.clone()),
            ),
            Op::ListAccessTokens { user } => Answer::AccessTokens(
                access_tokens
                    .iter()
                    .filter(|(_, _, r)| r.user_key == USERS[user])
                    .map(|(_, _, r)| r.clone())
                    .collect(),
            ),
            Op::Revoke { access, owner } => {
                let before = access_tokens.len();
                access_tokens
                    .retain(|(_, _, r)| !(r.n == access && owner.is_none_or(|o| r.user_key == USERS[o])));
                Answer::Revoked(access_tokens.len() < before)
            }
            Op::TouchAccessToken { access, at } => {
                if let Some((_, _, r)) = access_tokens.iter_mut().find(|(_, _, r)| r.n == access) {
                    r.last_accessed = r.last_accessed.max(at);
                }
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
            .batch_execute("TRUNCATE tokens, failed_logins, oauth_request_tokens, oauth_access_tokens RESTART IDENTITY")
            .unwrap();
        prop_assert_eq!(&run(&*pg.store, &ops), &expected, "PostgreSQL");
    }
}
