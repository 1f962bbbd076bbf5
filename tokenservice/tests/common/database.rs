//! The database a test's services run on: an SQLite file in the test's scratch directory, or a
//! fresh database in the shared throw-away PostgreSQL cluster; and a way for a test to change
//! rows behind the service's back (to expire a token, say).

use super::postgres::Postgres;
use super::Scratch;
use std::path::PathBuf;

pub enum TestDatabase {
    Sqlite(PathBuf),
    /// The URL, with the cluster's password.
    Postgres(String),
}

impl TestDatabase {
    pub fn sqlite(scratch: &Scratch) -> TestDatabase {
        TestDatabase::Sqlite(scratch.database())
    }

    pub fn postgres() -> TestDatabase {
        TestDatabase::Postgres(Postgres::shared().fresh_database())
    }

    /// The configuration's `database`.
    pub fn spec(&self) -> String {
        match self {
            TestDatabase::Sqlite(path) => path.to_string_lossy().into_owned(),
            TestDatabase::Postgres(url) => url.clone(),
        }
    }

    /// Runs one statement with one integer parameter, `$1` (both engines read that spelling);
    /// how many rows it changed.
    pub fn execute(&self, sql: &str, value: i64) -> u64 {
        match self {
            TestDatabase::Sqlite(path) => {
                let connection = rusqlite::Connection::open(path).unwrap();
                connection.execute(sql, [value]).unwrap() as u64
            }
            TestDatabase::Postgres(url) => Postgres::client_for(url).execute(sql, &[&value]).unwrap(),
        }
    }

    /// One integer a query answers (`count(*)` and the like), with no parameters.
    pub fn count(&self, sql: &str) -> i64 {
        match self {
            TestDatabase::Sqlite(path) => {
                let connection = rusqlite::Connection::open(path).unwrap();
                connection.query_row(sql, [], |row| row.get(0)).unwrap()
            }
            TestDatabase::Postgres(url) => Postgres::client_for(url).query_one(sql, &[]).unwrap().get(0),
        }
    }

    /// The engine's own consistency check: SQLite's `PRAGMA integrity_check`; PostgreSQL's
    /// `amcheck` (shipped with the server): the heap of `tokens` and every index of it, with
    /// every heap row found in each index.
    pub fn assert_intact(&self) {
        match self {
            TestDatabase::Sqlite(path) => {
                let connection = rusqlite::Connection::open(path).unwrap();
                let check: String = connection
                    .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                    .unwrap();
                assert_eq!(check, "ok");
            }
            TestDatabase::Postgres(url) => {
                let mut client = Postgres::client_for(url);
                client
                    .batch_execute("CREATE EXTENSION IF NOT EXISTS amcheck")
                    .unwrap();
                let corrupt = client
                    .query("SELECT blkno, offnum, msg FROM verify_heapam('tokens')", &[])
                    .unwrap();
                assert!(corrupt.is_empty(), "the tokens heap is corrupt: {corrupt:?}");
                let indexes: i64 = client
                    .query_one(
                        "SELECT count(bt_index_check(i.indexrelid, true)) FROM pg_index i
                         WHERE i.indrelid = 'tokens'::regclass",
                        &[],
                    )
                    .unwrap()
                    .get(0);
                assert!(indexes >= 3, "checked {indexes} indexes");
            }
        }
    }
}
