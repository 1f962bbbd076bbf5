//! The PostgreSQL engine: one database that any number of service replicas share.
//!
//! Durability: every write is one statement (or one transaction) in autocommit, and the server
//! runs with its defaults `fsync=on` and `synchronous_commit=on`, so `COMMIT` returns after
//! the WAL is flushed: an acknowledged create survives `kill -9` of the replica that made it
//! (and of the server).
//!
//! Concurrency across replicas: a create is one `INSERT ... RETURNING id` (the unique `lookup`
//! and the identity column make it safe from any number of writers), a rename or delete is one
//! statement, and a failed login is counted by one upsert, so no count is lost between
//! replicas. OAuth 1.0a request tokens are single use across replicas: a take is one
//! `DELETE ... RETURNING` (a second one waits on the row lock, then finds nothing) and a
//! decision one `UPDATE ... WHERE state = 'pending' AND expires > now` (under READ COMMITTED a
//! second one re-checks that condition on the row the first changed, and moves nothing).
//! Migrations run in one transaction under an advisory lock, so replicas that start
//! together migrate once.
//!
//! Connections: [`POOL`] connections, each owned by a thread of its own. A call sends its work
//! to them and waits for the answer (at most [`ANSWER_TIMEOUT`]). The blocking `postgres` client
//! runs a small async runtime inside, which must not be entered from a thread that already
//! drives one: with the work on our own threads, the store can be called from anywhere (a
//! worker pool, `spawn_blocking`, or an async task). A connection that broke is reopened for
//! the next call; a call in flight when it broke fails with 500, and is not retried.
//!
//! TLS is not built in (`sslmode=require` fails to connect): reach a remote server over a
//! local tunnel or a private network.

use super::{
    fold_user_name, hash_column, AccessTokenRecord, LoginFailures, NewAccessToken, NewRecord,
    NewRequestToken, PostgresUrl, RequestTokenRecord, RequestTokenState, StoreError, TokenRecord, TokenStore,
};
use crate::tokens::TokenHash;
use ::postgres::{Client, IsolationLevel, NoTls, Row};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Each entry moves the schema from version `index` to `index + 1`. Never edit one that has
/// shipped: add another.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE tokens (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        lookup TEXT NOT NULL UNIQUE,
        secret_hash BYTEA NOT NULL CHECK (octet_length(secret_hash) = 32),
        description TEXT NOT NULL,
        user_key TEXT NOT NULL,
        created_by_user_key TEXT NOT NULL,
        created BIGINT NOT NULL,
        valid_until BIGINT NOT NULL,
        last_accessed BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX tokens_by_user ON tokens (user_key, id);
    CREATE INDEX tokens_by_valid_until ON tokens (valid_until, id);
",
    "
    CREATE TABLE failed_logins (
        user_name TEXT PRIMARY KEY,
        count INTEGER NOT NULL,
        last_failure_ms BIGINT NOT NULL
    );
",
    // OAuth 1.0a (issue 13): hashes only; every row names its consumer. A request token's
    // user and verifier are there exactly when it is authorized.
    "
    CREATE TABLE oauth_request_tokens (
        token_hash BYTEA NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
        secret_hash BYTEA NOT NULL CHECK (octet_length(secret_hash) = 32),
        consumer_key TEXT NOT NULL,
        callback TEXT NOT NULL,
        csrf_hash BYTEA NOT NULL CHECK (octet_length(csrf_hash) = 32),
        created BIGINT NOT NULL,
        expires BIGINT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'authorized', 'denied')),
        user_key TEXT,
        verifier_hash BYTEA CHECK (verifier_hash IS NULL OR octet_length(verifier_hash) = 32),
        CHECK ((state = 'authorized') = (user_key IS NOT NULL AND verifier_hash IS NOT NULL)),
        CHECK (state = 'authorized' OR (user_key IS NULL AND verifier_hash IS NULL))
    );
    CREATE INDEX oauth_request_tokens_by_expires ON oauth_request_tokens (expires);
    CREATE TABLE oauth_access_tokens (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        token_hash BYTEA NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
        secret_hash BYTEA NOT NULL CHECK (octet_length(secret_hash) = 32),
        session_hash BYTEA NOT NULL UNIQUE CHECK (octet_length(session_hash) = 32),
        consumer_key TEXT NOT NULL,
        user_key TEXT NOT NULL,
        created BIGINT NOT NULL,
        expires BIGINT NOT NULL,
        authorization_expires BIGINT NOT NULL,
        last_accessed BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX oauth_access_tokens_by_user ON oauth_access_tokens (user_key, id);
",
];

/// Connections (and threads) per replica.
pub const POOL: usize = 4;

/// How long a call waits for the database before it fails (the request then gets 500).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long opening a connection may take, unless the URL says `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The key of the advisory lock migrations hold ("tgmigr" in ASCII).
const MIGRATION_LOCK: i64 = 0x7467_6d69_6772;

const COLUMNS: &str = "id, description, user_key, created_by_user_key, created, valid_until, last_accessed";

type Job = Box<dyn FnOnce(Result<&mut Client, StoreError>) + Send>;

/// The PostgreSQL engine.
pub struct PostgresStore {
    jobs: Sender<Job>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresStore")
    }
}

impl From<::postgres::Error> for StoreError {
    fn from(e: ::postgres::Error) -> Self {
        StoreError(format!("database: {}", describe(&e)))
    }
}

/// The server's message (with its SQLSTATE) or the I/O failure; never the URL or a password
/// (the client does not put them in errors, and the server does not echo them).
fn describe(e: &::postgres::Error) -> String {
    match (e.as_db_error(), std::error::Error::source(e)) {
        (Some(db), _) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        (None, Some(source)) => format!("{e}: {source}"),
        (None, None) => e.to_string(),
    }
}

impl PostgresStore {
    /// Connects to `url` and migrates the database. Fails when the server cannot be reached.
    pub fn open(url: &PostgresUrl) -> Result<Self, StoreError> {
        let mut config: ::postgres::Config = url
            .secret()
            .parse()
            .map_err(|_| StoreError(format!("{url}: not a valid postgres:// URL")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("tokengate-tokens");
        }
        if config.get_options().is_none() {
            // A statement stuck behind a lock gives up when its caller has.
            config.options(&format!("-c statement_timeout={}", ANSWER_TIMEOUT.as_millis()));
        }
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..POOL {
            let (config, receiver) = (config.clone(), receiver.clone());
            std::thread::Builder::new()
                .name(format!("postgres-{n}"))
                .spawn(move || connection(&config, &receiver))
                .map_err(|e| StoreError(format!("cannot start a database thread: {e}")))?;
        }
        let store = Self { jobs: sender };
        store
            .run(migrate)
            .map_err(|e| StoreError(format!("{url}: {e}")))?;
        Ok(store)
    }

    /// Runs `work` on a pooled connection and waits for its answer.
    fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Client) -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, answered) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |client| {
            let _ = answer.send(client.and_then(work));
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError("database threads are gone".to_owned()))?;
        answered.recv_timeout(ANSWER_TIMEOUT).map_err(|e| match e {
            mpsc::RecvTimeoutError::Timeout => StoreError(format!(
                "the database did not answer within {} s",
                ANSWER_TIMEOUT.as_secs()
            )),
            mpsc::RecvTimeoutError::Disconnected => StoreError("a database thread died".to_owned()),
        })?
    }
}

/// One pooled connection: takes jobs until the store is dropped, (re)connecting on demand.
fn connection(config: &::postgres::Config, jobs: &Mutex<Receiver<Job>>) {
    let mut client: Option<Client> = None;
    loop {
        let job = match jobs.lock() {
            Ok(jobs) => jobs.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else {
            return; // the store was dropped
        };
        if client.as_ref().is_some_and(Client::is_closed) {
            client = None;
        }
        if client.is_none() {
            match config.connect(NoTls) {
                Ok(connected) => client = Some(connected),
                Err(e) => {
                    job(Err(StoreError(format!(
                        "cannot connect to the database: {}",
                        describe(&e)
                    ))));
                    continue;
                }
            }
        }
        match client.as_mut() {
            Some(client) => job(Ok(client)),
            None => job(Err(StoreError("no database connection".to_owned()))),
        }
    }
}

fn record(row: &Row) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        id: row.try_get(0)?,
        description: row.try_get(1)?,
        user_key: row.try_get(2)?,
        created_by_user_key: row.try_get(3)?,
        created: row.try_get(4)?,
        valid_until: row.try_get(5)?,
        last_accessed: row.try_get(6)?,
    })
}

const REQUEST_TOKEN_COLUMNS: &str =
    "consumer_key, callback, csrf_hash, created, expires, state, user_key, verifier_hash";

/// A request token row (its columns in [`REQUEST_TOKEN_COLUMNS`] order), checked.
fn request_token(row: &Row) -> Result<RequestTokenRecord, StoreError> {
    let csrf_hash: Vec<u8> = row.try_get(2)?;
    let state: String = row.try_get(5)?;
    Ok(RequestTokenRecord {
        consumer_key: row.try_get(0)?,
        callback: row.try_get(1)?,
        csrf_hash: hash_column(&csrf_hash, "csrf_hash")?,
        created: row.try_get(3)?,
        expires: row.try_get(4)?,
        state: RequestTokenState::from_columns(&state, row.try_get(6)?, row.try_get(7)?)?,
    })
}

const ACCESS_TOKEN_COLUMNS: &str =
    "id, consumer_key, user_key, created, expires, authorization_expires, last_accessed";

fn access_token(row: &Row) -> Result<AccessTokenRecord, StoreError> {
    Ok(AccessTokenRecord {
        id: row.try_get(0)?,
        consumer_key: row.try_get(1)?,
        user_key: row.try_get(2)?,
        created: row.try_get(3)?,
        expires: row.try_get(4)?,
        authorization_expires: row.try_get(5)?,
        last_accessed: row.try_get(6)?,
    })
}

fn failures(row: &Row) -> Result<LoginFailures, StoreError> {
    Ok(LoginFailures {
        count: u32::try_from(row.try_get::<_, i32>(0)?).unwrap_or(0),
        last_failure_ms: row.try_get(1)?,
    })
}

fn migrate(client: &mut Client) -> Result<u32, StoreError> {
    let mut tx = client.transaction()?;
    tx.batch_execute(&format!(
        "SELECT pg_advisory_xact_lock({MIGRATION_LOCK});
         CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY,
             applied_ms BIGINT NOT NULL
         );"
    ))?;
    let current: i32 = tx
        .query_one("SELECT COALESCE(max(version), 0) FROM schema_migrations", &[])?
        .try_get(0)?;
    let current = u32::try_from(current).unwrap_or(0);
    let known = u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX);
    if current > known {
        return Err(StoreError(format!(
            "the database is at schema version {current}, newer than this build knows ({known}): refusing to use it"
        )));
    }
    for (version, sql) in (current..).zip(MIGRATIONS.iter().skip(current as usize)) {
        let next = i32::try_from(version + 1).unwrap_or(i32::MAX);
        tx.batch_execute(sql)
            .map_err(|e| StoreError(format!("migration {next} failed: {e}")))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, (extract(epoch from now()) * 1000)::bigint)",
            &[&next],
        )?;
    }
    tx.commit()?;
    Ok(known)
}

impl TokenStore for PostgresStore {
    fn create(&self, new: &NewRecord<'_>) -> Result<TokenRecord, StoreError> {
        let (lookup, hash) = (new.lookup.to_owned(), new.hash.0.to_vec());
        let mut record = TokenRecord {
            id: 0,
            description: new.description.to_owned(),
            user_key: new.user_key.to_owned(),
            created_by_user_key: new.created_by_user_key.to_owned(),
            created: new.created,
            valid_until: new.valid_until,
            last_accessed: 0,
        };
        let row = record.clone();
        record.id = self.run(move |client| {
            Ok(client
                .query_one(
                    "INSERT INTO tokens (lookup, secret_hash, description, user_key, created_by_user_key, created, valid_until)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    &[
                        &lookup,
                        &hash,
                        &row.description,
                        &row.user_key,
                        &row.created_by_user_key,
                        &row.created,
                        &row.valid_until,
                    ],
                )?
                .try_get(0)?)
        })?;
        Ok(record)
    }

    fn list_for_user(&self, user_key: &str) -> Result<Vec<TokenRecord>, StoreError> {
        let user_key = user_key.to_owned();
        self.run(move |client| {
            client
                .query(
                    &format!("SELECT {COLUMNS} FROM tokens WHERE user_key = $1 ORDER BY id"),
                    &[&user_key],
                )?
                .iter()
                .map(record)
                .collect()
        })
    }

    fn rename(&self, id: i64, owner_key: &str, description: &str) -> Result<Option<TokenRecord>, StoreError> {
        let (owner_key, description) = (owner_key.to_owned(), description.to_owned());
        self.run(move |client| {
            client
                .query_opt(
                    &format!(
                        "UPDATE tokens SET description = $3 WHERE id = $1 AND user_key = $2 RETURNING {COLUMNS}"
                    ),
                    &[&id, &owner_key, &description],
                )?
                .as_ref()
                .map(record)
                .transpose()
        })
    }

    fn delete(&self, id: i64, owner_key: &str) -> Result<bool, StoreError> {
        let owner_key = owner_key.to_owned();
        self.run(move |client| {
            Ok(client.execute(
                "DELETE FROM tokens WHERE id = $1 AND user_key = $2",
                &[&id, &owner_key],
            )? > 0)
        })
    }

    fn delete_all_for(&self, user_key: &str) -> Result<usize, StoreError> {
        let user_key = user_key.to_owned();
        self.run(move |client| {
            let n = client.execute("DELETE FROM tokens WHERE user_key = $1", &[&user_key])?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn filter(
        &self,
        not_valid_after: Option<i64>,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<TokenRecord>, u64), StoreError> {
        let bound = not_valid_after.unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        self.run(move |client| {
            // One snapshot for the count and the page, so they agree under concurrent writes.
            let mut tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let total: i64 = tx
                .query_one("SELECT count(*) FROM tokens WHERE valid_until <= $1", &[&bound])?
                .try_get(0)?;
            let page = tx
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM tokens WHERE valid_until <= $1 ORDER BY valid_until, id LIMIT $2 OFFSET $3"
                    ),
                    &[&bound, &limit, &offset],
                )?
                .iter()
                .map(record)
                .collect::<Result<Vec<_>, _>>()?;
            tx.commit()?;
            Ok((page, u64::try_from(total).unwrap_or(0)))
        })
    }

    fn find_by_lookup(&self, lookup: &str) -> Result<Option<(TokenRecord, TokenHash)>, StoreError> {
        let lookup = lookup.to_owned();
        self.run(move |client| {
            let Some(row) = client.query_opt(
                &format!("SELECT {COLUMNS}, secret_hash FROM tokens WHERE lookup = $1"),
                &[&lookup],
            )?
            else {
                return Ok(None);
            };
            let record = record(&row)?;
            let hash: Vec<u8> = row.try_get(7)?;
            match TokenHash::from_slice(&hash) {
                Some(hash) => Ok(Some((record, hash))),
                None => Err(StoreError(format!(
                    "token {}: stored hash is not 32 bytes",
                    record.id
                ))),
            }
        })
    }

    fn touch(&self, id: i64, now: i64) -> Result<(), StoreError> {
        self.run(move |client| {
            client.execute(
                "UPDATE tokens SET last_accessed = $2 WHERE id = $1 AND last_accessed < $2",
                &[&id, &now],
            )?;
            Ok(())
        })
    }

    fn failed_logins(&self, user: &str) -> Result<LoginFailures, StoreError> {
        let user = fold_user_name(user);
        self.run(move |client| {
            client
                .query_opt(
                    "SELECT count, last_failure_ms FROM failed_logins WHERE user_name = $1",
                    &[&user],
                )?
                .as_ref()
                .map(failures)
                .transpose()
                .map(Option::unwrap_or_default)
        })
    }

    fn record_failed_login(
        &self,
        user: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<LoginFailures, StoreError> {
        let user = fold_user_name(user);
        let cutoff = now_ms.saturating_sub(window_ms);
        self.run(move |client| {
            // One statement: concurrent failures on any replica serialise on the row lock.
            let row = client.query_one(
                "INSERT INTO failed_logins (user_name, count, last_failure_ms) VALUES ($1, 1, $2)
                 ON CONFLICT (user_name) DO UPDATE SET
                     count = CASE WHEN failed_logins.last_failure_ms < $3 THEN 1
                                  ELSE LEAST(failed_logins.count, 2147483646) + 1 END,
                     last_failure_ms = GREATEST(failed_logins.last_failure_ms, $2)
                 RETURNING count, last_failure_ms",
                &[&user, &now_ms, &cutoff],
            )?;
            failures(&row)
        })
    }

    fn clear_failed_logins(&self, user: &str) -> Result<(), StoreError> {
        let user = fold_user_name(user);
        self.run(move |client| {
            client.execute("DELETE FROM failed_logins WHERE user_name = $1", &[&user])?;
            Ok(())
        })
    }

    fn schema_version(&self) -> Result<u32, StoreError> {
        self.run(|client| {
            let version: i32 = client
                .query_one("SELECT COALESCE(max(version), 0) FROM schema_migrations", &[])?
                .try_get(0)?;
            Ok(u32::try_from(version).unwrap_or(0))
        })
    }

    fn create_request_token(&self, new: &NewRequestToken<'_>) -> Result<(), StoreError> {
        let (hash, secret_hash, csrf_hash) = (
            new.hash.to_vec(),
            new.secret_hash.to_vec(),
            new.csrf_hash.to_vec(),
        );
        let (consumer_key, callback) = (new.consumer_key.to_owned(), new.callback.to_owned());
        let (created, expires) = (new.created, new.expires);
        self.run(move |client| {
            client.execute(
                "INSERT INTO oauth_request_tokens (token_hash, secret_hash, consumer_key, callback, csrf_hash, created, expires)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&hash, &secret_hash, &consumer_key, &callback, &csrf_hash, &created, &expires],
            )?;
            Ok(())
        })
    }

    fn find_request_token(&self, hash: &[u8; 32]) -> Result<Option<RequestTokenRecord>, StoreError> {
        let hash = hash.to_vec();
        self.run(move |client| {
            client
                .query_opt(
                    &format!(
                        "SELECT {REQUEST_TOKEN_COLUMNS} FROM oauth_request_tokens WHERE token_hash = $1"
                    ),
                    &[&hash],
                )?
                .as_ref()
                .map(request_token)
                .transpose()
        })
    }

    fn decide_request_token(
        &self,
        hash: &[u8; 32],
        decision: &RequestTokenState,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (user_key, verifier_hash): (Option<String>, Option<Vec<u8>>) = match decision {
            RequestTokenState::Pending => return Ok(false),
            RequestTokenState::Authorized {
                user_key,
                verifier_hash,
            } => (Some(user_key.clone()), Some(verifier_hash.to_vec())),
            RequestTokenState::Denied => (None, None),
        };
        let (hash, state) = (hash.to_vec(), decision.column());
        self.run(move |client| {
            // One statement: of two replicas deciding at once, the second finds it no longer
            // pending (READ COMMITTED re-checks the WHERE on the row the first one changed).
            let n = client.execute(
                "UPDATE oauth_request_tokens SET state = $2, user_key = $3, verifier_hash = $4
                 WHERE token_hash = $1 AND state = 'pending' AND expires > $5",
                &[&hash, &state, &user_key, &verifier_hash, &now],
            )?;
            Ok(n > 0)
        })
    }

    fn take_request_token(&self, hash: &[u8; 32]) -> Result<Option<RequestTokenRecord>, StoreError> {
        let hash = hash.to_vec();
        self.run(move |client| {
            // One statement: a second DELETE waits on the row lock, then finds nothing.
            client
                .query_opt(
                    &format!(
                        "DELETE FROM oauth_request_tokens WHERE token_hash = $1 RETURNING {REQUEST_TOKEN_COLUMNS}"
                    ),
                    &[&hash],
                )?
                .as_ref()
                .map(request_token)
                .transpose()
        })
    }

    fn create_access_token(&self, new: &NewAccessToken<'_>) -> Result<AccessTokenRecord, StoreError> {
        let (hash, secret_hash, session_hash) = (
            new.hash.to_vec(),
            new.secret_hash.to_vec(),
            new.session_hash.to_vec(),
        );
        let (consumer_key, user_key) = (new.consumer_key.to_owned(), new.user_key.to_owned());
        let (created, expires, authorization_expires) = (new.created, new.expires, new.authorization_expires);
        self.run(move |client| {
            let row = client.query_one(
                &format!(
                    "INSERT INTO oauth_access_tokens
                         (token_hash, secret_hash, session_hash, consumer_key, user_key, created, expires, authorization_expires)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {ACCESS_TOKEN_COLUMNS}"
                ),
                &[
                    &hash,
                    &secret_hash,
                    &session_hash,
                    &consumer_key,
                    &user_key,
                    &created,
                    &expires,
                    &authorization_expires,
                ],
            )?;
            access_token(&row)
        })
    }

    fn find_access_token(&self, hash: &[u8; 32]) -> Result<Option<AccessTokenRecord>, StoreError> {
        let hash = hash.to_vec();
        self.run(move |client| {
            client
                .query_opt(
                    &format!("SELECT {ACCESS_TOKEN_COLUMNS} FROM oauth_access_tokens WHERE token_hash = $1"),
                    &[&hash],
                )?
                .as_ref()
                .map(access_token)
                .transpose()
        })
    }

    fn list_access_tokens(&self, user_key: &str) -> Result<Vec<AccessTokenRecord>, StoreError> {
        let user_key = user_key.to_owned();
        self.run(move |client| {
            client
                .query(
                    &format!("SELECT {ACCESS_TOKEN_COLUMNS} FROM oauth_access_tokens WHERE user_key = $1 ORDER BY id"),
                    &[&user_key],
                )?
                .iter()
                .map(access_token)
                .collect()
        })
    }

    fn revoke_access_token(&self, id: i64, owner: Option<&str>) -> Result<bool, StoreError> {
        let owner = owner.map(str::to_owned);
        self.run(move |client| {
            let n = match &owner {
                Some(owner) => client.execute(
                    "DELETE FROM oauth_access_tokens WHERE id = $1 AND user_key = $2",
                    &[&id, owner],
                )?,
                None => client.execute("DELETE FROM oauth_access_tokens WHERE id = $1", &[&id])?,
            };
            Ok(n > 0)
        })
    }

    fn touch_access_token(&self, id: i64, now: i64) -> Result<(), StoreError> {
        self.run(move |client| {
            client.execute(
                "UPDATE oauth_access_tokens SET last_accessed = $2 WHERE id = $1 AND last_accessed < $2",
                &[&id, &now],
            )?;
            Ok(())
        })
    }

    fn purge_request_tokens(&self, now: i64) -> Result<usize, StoreError> {
        self.run(move |client| {
            let n = client.execute("DELETE FROM oauth_request_tokens WHERE expires <= $1", &[&now])?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }
}
