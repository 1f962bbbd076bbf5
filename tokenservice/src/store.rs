//! The token store: one SQLite database file.
//!
//! Durability: the database runs in WAL mode with `synchronous=FULL`, so a transaction is on
//! disk (the WAL fsynced) before `COMMIT` returns, and the API answers only after that: a token
//! whose create was acknowledged survives `kill -9` or a power cut. Each create is one
//! transaction, so a crash leaves either the whole row or none of it.
//!
//! Concurrency: one connection behind a mutex. SQLite serialises writers anyway; the slow part
//! of a request (argon2 password checks) happens outside the lock.
//!
//! Schema changes are numbered migrations applied on open, tracked in `PRAGMA user_version`.

use crate::tokens::TokenHash;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::fmt;
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
];

/// Consecutive failed logins of one user (name folded with username fold = str::to_lowercase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginFailures {
    pub count: u32,
    pub last_failure_ms: i64,
}

/// A stored token, without its hash: what the REST API shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: i64,
    pub description: String,
    /// Whose token it is.
    pub user_key: String,
    /// Who created it (an administrator may create tokens for others).
    pub created_by_user_key: String,
    /// Epoch milliseconds, as every time here.
    pub created: i64,
    pub valid_until: i64,
    /// 0 until the token is first used.
    pub last_accessed: i64,
}

/// What a create stores.
pub struct NewRecord<'a> {
    pub lookup: &'a str,
    pub hash: &'a TokenHash,
    pub description: &'a str,
    pub user_key: &'a str,
    pub created_by_user_key: &'a str,
    pub created: i64,
    pub valid_until: i64,
}

/// The database failed; the message is for the log, never for a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(format!("database: {e}"))
    }
}

#[derive(Debug)]
pub struct Store {
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

impl Store {
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

    /// Stores a new token in one transaction and returns it as stored.
    pub fn create(&self, new: &NewRecord<'_>) -> Result<TokenRecord, StoreError> {
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
    pub fn list_for_user(&self, user_key: &str) -> Result<Vec<TokenRecord>, StoreError> {
        let conn = self.lock()?;
        let mut statement = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM tokens WHERE user_key = ?1 ORDER BY id"
        ))?;
        let rows = statement.query_map([user_key], record)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Renames token `id` if `owner_key` owns it; `None` when it does not (or no such token).
    pub fn rename(
        &self,
        id: i64,
        owner_key: &str,
        description: &str,
    ) -> Result<Option<TokenRecord>, StoreError> {
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
    pub fn delete(&self, id: i64, owner_key: &str) -> Result<bool, StoreError> {
        let conn = self.lock()?;
        let n = conn.execute(
            "DELETE FROM tokens WHERE id = ?1 AND user_key = ?2",
            params![id, owner_key],
        )?;
        Ok(n > 0)
    }

    /// Deletes every token of `user_key`; how many there were.
    pub fn delete_all_for(&self, user_key: &str) -> Result<usize, StoreError> {
        let conn = self.lock()?;
        Ok(conn.execute("DELETE FROM tokens WHERE user_key = ?1", [user_key])?)
    }

    /// One page of all tokens that are no longer valid after `not_valid_after` (their
    /// `validUntil` is at or before it; `None`: every token), soonest to expire first, and
    /// how many match in all.
    pub fn filter(
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
    pub fn find_by_lookup(&self, lookup: &str) -> Result<Option<(TokenRecord, TokenHash)>, StoreError> {
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
    pub fn touch(&self, id: i64, now: i64) -> Result<(), StoreError> {
        let conn = self.lock()?;
        conn.execute(
            "UPDATE tokens SET last_accessed = ?2 WHERE id = ?1 AND last_accessed < ?2",
            params![id, now],
        )?;
        Ok(())
    }

    /// `user`'s consecutive failed logins; `(0, 0)` when there are none. `user` is folded
    /// here, so every caller may pass the name as the client spelled it.
    pub fn failed_logins(&self, user: &str) -> Result<LoginFailures, StoreError> {
        let conn = self.lock()?;
        let found = conn
            .query_row(
                "SELECT count, last_failure_ms FROM failed_logins WHERE user_name = ?1",
                [crate::users::fold(user)],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
            )
            .optional()?;
        Ok(
            found.map_or_else(LoginFailures::default, |(count, last_failure_ms)| LoginFailures {
                count: u32::try_from(count).unwrap_or(u32::MAX),
                last_failure_ms,
            }),
        )
    }

    /// Counts one more failed login of `user` at `now_ms`, atomically (one statement, so two
    /// replicas or workers never lose a failure): a streak whose last failure is `window_ms`
    /// or more before `now_ms` restarts at 1. Returns the count after it.
    pub fn record_failed_login(
        &self,
        user: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<LoginFailures, StoreError> {
        let conn = self.lock()?;
        let (count, last_failure_ms) = conn.query_row(
            "INSERT INTO failed_logins (user_name, count, last_failure_ms) VALUES (?1, 1, ?2)
             ON CONFLICT (user_name) DO UPDATE SET
                 count = CASE WHEN failed_logins.last_failure_ms <= ?2 - ?3 THEN 1
                              ELSE min(failed_logins.count + 1, 2147483647) END,
                 last_failure_ms = max(failed_logins.last_failure_ms, ?2)
             RETURNING count, last_failure_ms",
            params![crate::users::fold(user), now_ms, window_ms],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
        )?;
        Ok(LoginFailures {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            last_failure_ms,
        })
    }

    /// Forgets `user`'s failed logins (a successful login, or an administrator's reset).
    pub fn clear_failed_logins(&self, user: &str) -> Result<(), StoreError> {
        let conn = self.lock()?;
        conn.execute(
            "DELETE FROM failed_logins WHERE user_name = ?1",
            [crate::users::fold(user)],
        )?;
        Ok(())
    }

    /// The schema version the database is at.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        let conn = self.lock()?;
        Ok(conn.query_row("PRAGMA user_version", [], |row| row.get(0))?)
    }
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

    #[test]
    fn a_new_database_is_migrated_to_the_latest_version() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
    }

    #[test]
    fn a_created_token_is_listed_and_found_by_lookup() {
        let store = Store::open_in_memory().unwrap();
        let hash = TokenHash::of("t1");
        let created = store.create(&new("l1", &hash, "K1", 1000, 2000)).unwrap();
        assert_eq!(created.id, 1);
        assert_eq!(store.list_for_user("K1").unwrap(), vec![created.clone()]);
        assert!(store.list_for_user("K2").unwrap().is_empty());
        let (found, stored) = store.find_by_lookup("l1").unwrap().unwrap();
        assert_eq!(found, created);
        assert!(stored.ct_eq(&hash));
        assert!(store.find_by_lookup("l2").unwrap().is_none());
    }

    #[test]
    fn only_the_owner_renames_or_deletes() {
        let store = Store::open_in_memory().unwrap();
        let hash = TokenHash::of("t1");
        let id = store.create(&new("l1", &hash, "K1", 1000, 2000)).unwrap().id;
        assert!(store.rename(id, "K2", "mine now").unwrap().is_none());
        assert!(!store.delete(id, "K2").unwrap());
        assert_eq!(
            store.rename(id, "K1", "renamed").unwrap().unwrap().description,
            "renamed"
        );
        assert!(store.delete(id, "K1").unwrap());
        assert!(!store.delete(id, "K1").unwrap());
    }

    #[test]
    fn ids_are_not_reused_after_a_delete() {
        let store = Store::open_in_memory().unwrap();
        let hash = TokenHash::of("t");
        let first = store.create(&new("l1", &hash, "K1", 1, 2)).unwrap().id;
        store.delete(first, "K1").unwrap();
        assert_eq!(store.create(&new("l2", &hash, "K1", 1, 2)).unwrap().id, first + 1);
    }

    #[test]
    fn filter_pages_soonest_expiry_first_and_counts_all_matches() {
        let store = Store::open_in_memory().unwrap();
        let hash = TokenHash::of("t");
        for (lookup, valid_until) in [("a", 300), ("b", 100), ("c", 200), ("d", 900)] {
            store.create(&new(lookup, &hash, "K", 1, valid_until)).unwrap();
        }
        let (page, total) = store.filter(Some(300), 0, 2).unwrap();
        assert_eq!(total, 3);
        assert_eq!(page.iter().map(|r| r.valid_until).collect::<Vec<_>>(), [100, 200]);
        let (page, _) = store.filter(Some(300), 2, 2).unwrap();
        assert_eq!(page.iter().map(|r| r.valid_until).collect::<Vec<_>>(), [300]);
        let (page, total) = store.filter(None, 0, 50).unwrap();
        assert_eq!((page.len(), total), (4, 4));
    }

    #[test]
    fn delete_all_for_removes_only_that_users_tokens() {
        let store = Store::open_in_memory().unwrap();
        let hash = TokenHash::of("t");
        store.create(&new("a", &hash, "K1", 1, 2)).unwrap();
        store.create(&new("b", &hash, "K1", 1, 2)).unwrap();
        store.create(&new("c", &hash, "K2", 1, 2)).unwrap();
        assert_eq!(store.delete_all_for("K1").unwrap(), 2);
        assert_eq!(store.filter(None, 0, 50).unwrap().1, 1);
    }

    #[test]
    fn failed_logins_count_a_streak_that_restarts_after_the_window() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(store.failed_logins("fred").unwrap(), LoginFailures::default());
        let counts: Vec<u32> = [1_000, 2_000, 3_000]
            .into_iter()
            .map(|now| store.record_failed_login("fred", now, 10_000).unwrap().count)
            .collect();
        assert_eq!(counts, [1, 2, 3]);
        assert_eq!(
            store.failed_logins("fred").unwrap(),
            LoginFailures {
                count: 3,
                last_failure_ms: 3_000
            }
        );
        let restarted = store.record_failed_login("fred", 13_000, 10_000).unwrap();
        assert_eq!(
            restarted,
            LoginFailures {
                count: 1,
                last_failure_ms: 13_000
            },
            "a failure a whole window after the last one starts again"
        );
        assert_eq!(store.failed_logins("jsmith").unwrap(), LoginFailures::default());
    }

    #[test]
    fn failed_logins_are_one_counter_under_every_case_of_the_name_and_are_cleared() {
        let store = Store::open_in_memory().unwrap();
        for name in ["fred", "FRED", "Fred"] {
            store.record_failed_login(name, 1_000, 10_000).unwrap();
        }
        assert_eq!(store.failed_logins("fReD").unwrap().count, 3);
        store.clear_failed_logins("FRED").unwrap();
        assert_eq!(store.failed_logins("fred").unwrap(), LoginFailures::default());
        store.clear_failed_logins("nobody").unwrap();
    }

    #[test]
    fn failed_logins_survive_a_reopen() {
        let dir = std::env::temp_dir().join(format!("tokengate-failed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokens.db");
        let _ = std::fs::remove_file(&path);
        Store::open(&path)
            .unwrap()
            .record_failed_login("fred", 1_000, 10_000)
            .unwrap();
        assert_eq!(
            Store::open(&path).unwrap().failed_logins("fred").unwrap().count,
            1
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn touch_never_moves_last_accessed_backwards() {
        let store = Store::open_in_memory().unwrap();
        let hash = TokenHash::of("t");
        let id = store.create(&new("a", &hash, "K1", 1, 2)).unwrap().id;
        store.touch(id, 500).unwrap();
        store.touch(id, 400).unwrap();
        assert_eq!(store.list_for_user("K1").unwrap()[0].last_accessed, 500);
    }

    #[test]
    fn a_file_database_keeps_tokens_across_reopen_and_refuses_a_newer_schema() {
        let dir = std::env::temp_dir().join(format!("tokengate-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokens.db");
        let _ = std::fs::remove_file(&path);
        {
            let store = Store::open(&path).unwrap();
            store.create(&new("a", &TokenHash::of("t"), "K1", 1, 2)).unwrap();
        }
        let store = Store::open(&path).unwrap();
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
        assert!(Store::open(&path).unwrap_err().0.contains("newer"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
