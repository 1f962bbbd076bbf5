//! The SQLite engine: one database file, the embedded default.
//!
//! Durability: the database runs in WAL mode with `synchronous=FULL`, so a transaction is on
//! disk (the WAL fsynced) before `COMMIT` returns, and the API answers only after that: a token
//! whose create was acknowledged survives `kill -9` or a power cut. Each create is one
//! transaction, so a crash leaves either the whole row or none of it.
//!
//! Concurrency: one connection behind a mutex, so one process. SQLite serialises writers anyway;
//! the slow part of a request (argon2 password checks) happens outside the lock. For more than
//! one replica, use [`super::postgres`].
//!
//! OAuth 1.0a request tokens are single use all the same: a take is one `DELETE ... RETURNING`
//! and a decision one conditional `UPDATE`, each its own transaction, so even two processes
//! on one file (which this engine does not promise to support) could not both succeed.
//!
//! Schema changes are numbered migrations applied on open, tracked in `PRAGMA user_version`.

use super::{
    fold_user_name, hash_column, AccessTokenRecord, LoginFailures, NewAccessToken, NewRecord,
    NewRequestToken, RequestTokenRecord, RequestTokenState, StoreError, TokenRecord, TokenStore,
};
use crate::tokens::TokenHash;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// Each entry moves the schema from version `index` to `index + 1`. Never edit one that has
/// shipped: add another.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE tokens (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        lookup TEXT NOT NULL UNIQUE,
        secret_hash BLOB NOT NULL CHECK (length(secret_hash) = 32),
        description TEXT NOT NULL,
        user_key TEXT NOT NULL,
        created_by_user_key TEXT NOT NULL,
        created INTEGER NOT NULL,
        valid_until INTEGER NOT NULL,
        last_accessed INTEGER NOT NULL DEFAULT 0
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
        token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
        secret_hash BLOB NOT NULL CHECK (length(secret_hash) = 32),
        consumer_key TEXT NOT NULL,
        callback TEXT NOT NULL,
        csrf_hash BLOB NOT NULL CHECK (length(csrf_hash) = 32),
        created INTEGER NOT NULL,
        expires INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'authorized', 'denied')),
        user_key TEXT,
        verifier_hash BLOB CHECK (verifier_hash IS NULL OR length(verifier_hash) = 32),
        CHECK ((state = 'authorized') = (user_key IS NOT NULL AND verifier_hash IS NOT NULL)),
        CHECK (state = 'authorized' OR (user_key IS NULL AND verifier_hash IS NULL))
    );
    CREATE INDEX oauth_request_tokens_by_expires ON oauth_request_tokens (expires);
    CREATE TABLE oauth_access_tokens (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
        secret_hash BLOB NOT NULL CHECK (length(secret_hash) = 32),
        session_hash BLOB NOT NULL UNIQUE CHECK (length(session_hash) = 32),
        consumer_key TEXT NOT NULL,
        user_key TEXT NOT NULL,
        created INTEGER NOT NULL,
        expires INTEGER NOT NULL,
        authorization_expires INTEGER NOT NULL,
        last_accessed INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX oauth_access_tokens_by_user ON oauth_access_tokens (user_key, id);
",
];

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(format!("database: {e}"))
    }
}

/// The SQLite engine.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

const COLUMNS: &str = "id, description, user_key, created_by_user_key, created, valid_until, last_accessed";

fn record(row: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        id: row.get(0)?,
        description: row.get(1)?,
        user_key: row.get(2)?,
        created_by_user_key: row.get(3)?,
        created: row.get(4)?,
        valid_until: row.get(5)?,
        last_accessed: row.get(6)?,
    })
}

const REQUEST_TOKEN_COLUMNS: &str =
    "consumer_key, callback, csrf_hash, created, expires, state, user_key, verifier_hash";

/// A request token row (its columns in [`REQUEST_TOKEN_COLUMNS`] order), checked: the outer
/// error is SQLite's, the inner one a row the schema should have made impossible.
fn request_token(row: &Row<'_>) -> rusqlite::Result<Result<RequestTokenRecord, StoreError>> {
    let (consumer_key, callback, created, expires) = (row.get(0)?, row.get(1)?, row.get(3)?, row.get(4)?);
    let csrf_hash = hash_column(&row.get::<_, Vec<u8>>(2)?, "csrf_hash");
    let state = RequestTokenState::from_columns(&row.get::<_, String>(5)?, row.get(6)?, row.get(7)?);
    Ok(csrf_hash.and_then(|csrf_hash| {
        Ok(RequestTokenRecord {
            consumer_key,
            callback,
            csrf_hash,
            created,
            expires,
            state: state?,
        })
    }))
}

const ACCESS_TOKEN_COLUMNS: &str =
    "id, consumer_key, user_key, created, expires, authorization_expires, last_accessed";

fn access_token(row: &Row<'_>) -> rusqlite::Result<AccessTokenRecord> {
    Ok(AccessTokenRecord {
        id: row.get(0)?,
        consumer_key: row.get(1)?,
        user_key: row.get(2)?,
        created: row.get(3)?,
        expires: row.get(4)?,
        authorization_expires: row.get(5)?,
        last_accessed: row.get(6)?,
    })
}

impl SqliteStore {
    /// Opens (creating when missing) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError(format!("{}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(|e| StoreError(format!("{}: {e}", path.display())))?;
        Self::setup(conn)
    }

    /// A private in-memory database (tests).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> Result<Self, StoreError> {
        // journal_mode answers with the mode it is now in ("memory" for in-memory databases).
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn
            .lock()
            .map_err(|_| StoreError("database lock poisoned".to_owned()))
    }
}

impl TokenStore for SqliteStore {
    /// Stores a new token in one transaction and returns it as stored.
    fn create(&self, new: &NewRecord<'_>) -> Result<TokenRecord, StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO tokens (lookup, secret_hash, description, user_key, created_by_user_key, created, valid_until)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                new.lookup,
                &new.hash.0[..],
                new.description,
                new.user_key,
                new.created_by_user_key,
                new.created,
                new.valid_until
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(TokenRecord {
            id,
            description: new.description.to_owned(),
            user_key: new.user_key.to_owned(),
            created_by_user_key: new.created_by_user_key.to_owned(),
            created: new.created,
            valid_until: new.valid_until,
            last_accessed: 0,
        })
    }

    /// The tokens of `user_key`, oldest first.
    fn list_for_user(&self, user_key: &str) -> Result<Vec<TokenRecord>, StoreError> {
        let conn = self.lock()?;
        let mut statement = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM tokens WHERE user_key = ?1 ORDER BY id"
        ))?;
        let rows = statement.query_map([user_key], record)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Renames token `id` if `owner_key` owns it; `None` when it does not (or no such token).
    fn rename(&self, id: i64, owner_key: &str, description: &str) -> Result<Option<TokenRecord>, StoreError> {
        let conn = self.lock()?;
        conn.execute(
            "UPDATE tokens SET description = ?3 WHERE id = ?1 AND user_key = ?2",
            params![id, owner_key, description],
        )?;
        Ok(conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM tokens WHERE id = ?1 AND user_key = ?2"),
                params![id, owner_key],
                record,
            )
            .optional()?)
    }

    /// Deletes token `id` if `owner_key` owns it; whether it did.
    fn delete(&self, id: i64, owner_key: &str) -> Result<bool, StoreError> {
        let conn = self.lock()?;
        let n = conn.execute(
            "DELETE FROM tokens WHERE id = ?1 AND user_key = ?2",
            params![id, owner_key],
        )?;
        Ok(n > 0)
    }

    /// Deletes every token of `user_key`; how many there were.
    fn delete_all_for(&self, user_key: &str) -> Result<usize, StoreError> {
        let conn = self.lock()?;
        Ok(conn.execute("DELETE FROM tokens WHERE user_key = ?1", [user_key])?)
    }

    /// One page of all tokens that are no longer valid after `not_valid_after` (their
    /// `validUntil` is at or before it; `None`: every token), soonest to expire first, and
    /// how many match in all.
    fn filter(
        &self,
        not_valid_after: Option<i64>,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<TokenRecord>, u64), StoreError> {
        let bound = not_valid_after.unwrap_or(i64::MAX);
        let conn = self.lock()?;
        let total: i64 = conn.query_row(
            "SELECT count(*) FROM tokens WHERE valid_until <= ?1",
            [bound],
            |row| row.get(0),
        )?;
        let mut statement = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM tokens WHERE valid_until <= ?1 ORDER BY valid_until, id LIMIT ?2 OFFSET ?3"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let rows = statement.query_map(params![bound, limit, offset], record)?;
        Ok((rows.collect::<Result<_, _>>()?, u64::try_from(total).unwrap_or(0)))
    }

    /// The token with this public lookup handle, with its stored hash.
    fn find_by_lookup(&self, lookup: &str) -> Result<Option<(TokenRecord, TokenHash)>, StoreError> {
        let conn = self.lock()?;
        let found = conn
            .query_row(
                &format!("SELECT {COLUMNS}, secret_hash FROM tokens WHERE lookup = ?1"),
                [lookup],
                |row| Ok((record(row)?, row.get::<_, Vec<u8>>(7)?)),
            )
            .optional()?;
        match found {
            Some((record, hash)) => match TokenHash::from_slice(&hash) {
                Some(hash) => Ok(Some((record, hash))),
                None => Err(StoreError(format!(
                    "token {}: stored hash is not 32 bytes",
                    record.id
                ))),
            },
            None => Ok(None),
        }
    }

    /// Records that token `id` was used at `now` (never moving `lastAccessed` backwards).
    fn touch(&self, id: i64, now: i64) -> Result<(), StoreError> {
        let conn = self.lock()?;
        conn.execute(
            "UPDATE tokens SET last_accessed = ?2 WHERE id = ?1 AND last_accessed < ?2",
            params![id, now],
        )?;
        Ok(())
    }

    fn failed_logins(&self, user: &str) -> Result<LoginFailures, StoreError> {
        let conn = self.lock()?;
        let found = conn
            .query_row(
                "SELECT count, last_failure_ms FROM failed_logins WHERE user_name = ?1",
                [fold_user_name(user)],
                failures,
            )
            .optional()?;
        Ok(found.unwrap_or_default())
    }

    fn record_failed_login(
        &self,
        user: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<LoginFailures, StoreError> {
        let conn = self.lock()?;
        // One statement: the streak restarts when the last failure is before `now - window`.
        Ok(conn.query_row(
            "INSERT INTO failed_logins (user_name, count, last_failure_ms) VALUES (?1, 1, ?2)
             ON CONFLICT (user_name) DO UPDATE SET
                 count = CASE WHEN failed_logins.last_failure_ms < ?3 THEN 1
                              ELSE min(failed_logins.count, 2147483646) + 1 END,
                 last_failure_ms = max(failed_logins.last_failure_ms, ?2)
             RETURNING count, last_failure_ms",
            params![fold_user_name(user), now_ms, now_ms.saturating_sub(window_ms)],
            failures,
        )?)
    }

    fn clear_failed_logins(&self, user: &str) -> Result<(), StoreError> {
        let conn = self.lock()?;
        conn.execute(
            "DELETE FROM failed_logins WHERE user_name = ?1",
            [fold_user_name(user)],
        )?;
        Ok(())
    }

    fn schema_version(&self) -> Result<u32, StoreError> {
        let conn = self.lock()?;
        Ok(conn.query_row("PRAGMA user_version", [], |row| row.get(0))?)
    }

    fn create_request_token(&self, new: &NewRequestToken<'_>) -> Result<(), StoreError> {
        let conn = self.lock()?;
        conn.execute(
            "INSERT INTO oauth_request_tokens (token_hash, secret_hash, consumer_key, callback, csrf_hash, created, expires)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                &new.hash[..],
                &new.secret_hash[..],
                new.consumer_key,
                new.callback,
                &new.csrf_hash[..],
                new.created,
                new.expires
            ],
        )?;
        Ok(())
    }

    fn find_request_token(&self, hash: &[u8; 32]) -> Result<Option<RequestTokenRecord>, StoreError> {
        let conn = self.lock()?;
        conn.query_row(
            &format!("SELECT {REQUEST_TOKEN_COLUMNS} FROM oauth_request_tokens WHERE token_hash = ?1"),
            [&hash[..]],
            request_token,
        )
        .optional()?
        .transpose()
    }

    fn decide_request_token(
        &self,
        hash: &[u8; 32],
        decision: &RequestTokenState,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (user_key, verifier_hash) = match decision {
            RequestTokenState::Pending => return Ok(false),
            RequestTokenState::Authorized {
                user_key,
                verifier_hash,
            } => (Some(user_key.as_str()), Some(&verifier_hash[..])),
            RequestTokenState::Denied => (None, None),
        };
        let conn = self.lock()?;
        // One statement: only a pending, unexpired token moves.
        let n = conn.execute(
            "UPDATE oauth_request_tokens SET state = ?2, user_key = ?3, verifier_hash = ?4
             WHERE token_hash = ?1 AND state = 'pending' AND expires > ?5",
            params![&hash[..], decision.column(), user_key, verifier_hash, now],
        )?;
        Ok(n > 0)
    }

    fn take_request_token(&self, hash: &[u8; 32]) -> Result<Option<RequestTokenRecord>, StoreError> {
        let conn = self.lock()?;
        // One statement: of two callers exactly one gets the row.
        conn.query_row(
            &format!(
                "DELETE FROM oauth_request_tokens WHERE token_hash = ?1 RETURNING {REQUEST_TOKEN_COLUMNS}"
            ),
            [&hash[..]],
            request_token,
        )
        .optional()?
        .transpose()
    }

    fn create_access_token(&self, new: &NewAccessToken<'_>) -> Result<AccessTokenRecord, StoreError> {
        let conn = self.lock()?;
        Ok(conn.query_row(
            &format!(
                "INSERT INTO oauth_access_tokens
                     (token_hash, secret_hash, session_hash, consumer_key, user_key, created, expires, authorization_expires)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING {ACCESS_TOKEN_COLUMNS}"
            ),
            params![
                &new.hash[..],
                &new.secret_hash[..],
                &new.session_hash[..],
                new.consumer_key,
                new.user_key,
                new.created,
                new.expires,
                new.authorization_expires
            ],
            access_token,
        )?)
    }

    fn find_access_token(&self, hash: &[u8; 32]) -> Result<Option<AccessTokenRecord>, StoreError> {
        let conn = self.lock()?;
        Ok(conn
            .query_row(
                &format!("SELECT {ACCESS_TOKEN_COLUMNS} FROM oauth_access_tokens WHERE token_hash = ?1"),
                [&hash[..]],
                access_token,
            )
            .optional()?)
    }

    fn list_access_tokens(&self, user_key: &str) -> Result<Vec<AccessTokenRecord>, StoreError> {
        let conn = self.lock()?;
        let mut statement = conn.prepare_cached(&format!(
            "SELECT {ACCESS_TOKEN_COLUMNS} FROM oauth_access_tokens WHERE user_key = ?1 ORDER BY id"
        ))?;
        let rows = statement.query_map([user_key], access_token)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn revoke_access_token(&self, id: i64, owner: Option<&str>) -> Result<bool, StoreError> {
        let conn = self.lock()?;
        let n = match owner {
            Some(owner) => conn.execute(
                "DELETE FROM oauth_access_tokens WHERE id = ?1 AND user_key = ?2",
                params![id, owner],
            )?,
            None => conn.execute("DELETE FROM oauth_access_tokens WHERE id = ?1", [id])?,
        };
        Ok(n > 0)
    }

    fn touch_access_token(&self, id: i64, now: i64) -> Result<(), StoreError> {
        let conn = self.lock()?;
        conn.execute(
            "UPDATE oauth_access_tokens SET last_accessed = ?2 WHERE id = ?1 AND last_accessed < ?2",
            params![id, now],
        )?;
        Ok(())
    }

    fn purge_request_tokens(&self, now: i64) -> Result<usize, StoreError> {
        let conn = self.lock()?;
        Ok(conn.execute("DELETE FROM oauth_request_tokens WHERE expires <= ?1", [now])?)
    }
}

fn failures(row: &Row<'_>) -> rusqlite::Result<LoginFailures> {
    Ok(LoginFailures {
        count: u32::try_from(row.get::<_, i64>(0)?).unwrap_or(0),
        last_failure_ms: row.get(1)?,
    })
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    let current: u32 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let known = u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX);
    if current > known {
        return Err(StoreError(format!(
            "the database is at schema version {current}, newer than this build knows ({known}): refusing to use it"
        )));
    }
    for (version, sql) in (current..).zip(MIGRATIONS.iter().skip(current as usize)) {
        tx.execute_batch(sql)
            .map_err(|e| StoreError(format!("migration {} failed: {e}", version + 1)))?;
        tx.pragma_update(None, "user_version", version + 1)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new<'a>(lookup: &'a str, hash: &'a TokenHash, user: &'a str) -> NewRecord<'a> {
        NewRecord {
            lookup,
            hash,
            description: "a token",
            user_key: user,
            created_by_user_key: user,
            created: 1,
            valid_until: 2,
        }
    }

    // The behaviour both engines share is pinned by tests/store.rs; these are SQLite's own.

    #[test]
    fn a_new_database_is_migrated_to_the_latest_version() {
        let store = SqliteStore::open_in_memory().unwrap();
        assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
    }

    #[test]
    fn a_file_database_keeps_tokens_across_reopen_and_refuses_a_newer_schema() {
        let dir = std::env::temp_dir().join(format!("tokengate-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokens.db");
        let _ = std::fs::remove_file(&path);
        {
            let store = SqliteStore::open(&path).unwrap();
            store.create(&new("a", &TokenHash::of("t"), "K1")).unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.list_for_user("K1").unwrap().len(), 1);
        let mode: String = store
            .lock()
            .unwrap()
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        store
            .lock()
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        drop(store);
        assert!(SqliteStore::open(&path).unwrap_err().0.contains("newer"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_version_2_database_keeps_its_tokens_and_gains_the_oauth_tables() {
        let mut conn = Connection::open_in_memory().unwrap();
        let tx = conn.transaction().unwrap();
        for sql in &MIGRATIONS[..2] {
            tx.execute_batch(sql).unwrap();
        }
        tx.pragma_update(None, "user_version", 2).unwrap();
        tx.commit().unwrap();
        conn.execute(
            "INSERT INTO tokens (lookup, secret_hash, description, user_key, created_by_user_key, created, valid_until)
             VALUES ('l', zeroblob(32), 'd', 'K1', 'K1', 1, 2)",
            [],
        )
        .unwrap();
        let store = SqliteStore::setup(conn).unwrap();
        assert_eq!(store.schema_version().unwrap(), 3);
        assert_eq!(store.list_for_user("K1").unwrap().len(), 1);
        assert!(store.list_access_tokens("K1").unwrap().is_empty());
        assert_eq!(store.purge_request_tokens(i64::MAX).unwrap(), 0);
    }

    #[test]
    fn the_schema_refuses_a_request_token_state_without_its_user_and_verifier() {
        let store = SqliteStore::open_in_memory().unwrap();
        let conn = store.lock().unwrap();
        let insert = |state: &str, user: Option<&str>, verifier: Option<Vec<u8>>| {
            conn.execute(
                "INSERT INTO oauth_request_tokens
                     (token_hash, secret_hash, consumer_key, callback, csrf_hash, created, expires, state, user_key, verifier_hash)
                 VALUES (randomblob(32), zeroblob(32), 'c', 'oob', zeroblob(32), 1, 2, ?1, ?2, ?3)",
                params![state, user, verifier],
            )
        };
        assert!(insert("authorized", None, None).is_err());
        assert!(insert("authorized", Some("K1"), None).is_err());
        assert!(insert("pending", Some("K1"), Some(vec![0; 32])).is_err());
        assert!(insert("denied", None, Some(vec![0; 32])).is_err());
        assert!(insert("authorized", Some("K1"), Some(vec![0; 31])).is_err());
        assert!(insert("approved", None, None).is_err());
        assert!(insert("authorized", Some("K1"), Some(vec![0; 32])).is_ok());
        assert!(insert("denied", None, None).is_ok());
    }

    #[test]
    fn a_version_1_database_gains_the_failed_logins_table() {
        let mut conn = Connection::open_in_memory().unwrap();
        let tx = conn.transaction().unwrap();
        tx.execute_batch(MIGRATIONS[0]).unwrap();
        tx.pragma_update(None, "user_version", 1).unwrap();
        tx.commit().unwrap();
        let store = SqliteStore::setup(conn).unwrap();
        assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
        assert_eq!(store.record_failed_login("fred", 10, 100).unwrap().count, 1);
    }
}
