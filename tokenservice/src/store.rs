//! The token store: one trait, [`TokenStore`], and two engines behind it.
//!
//! - [`sqlite`]: one embedded SQLite file, the default (what `make run` uses). One process.
//! - [`postgres`]: a PostgreSQL database that any number of replicas share.
//!
//! Each engine has its own numbered migrations, applied on open; both are run by the same store
//! test suite (`tests/store.rs`), and a property test holds both to one model of this contract
//! (`tests/store_model.rs`). Durability is the same promise on both: an operation returns
//! only after its transaction is committed and on disk, so an acknowledged create survives
//! `kill -9` of the service. Operations that must be atomic across replicas (a create with its
//! unique lookup handle, [`TokenStore::record_failed_login`]) are single statements.
//!
//! OAuth 1.0a (issue 13) adds two tables, request tokens and access tokens: every row names its
//! consumer, and only SHA-256 hashes of the token values are stored. Single use of a request
//! token is one `DELETE ... RETURNING`, and its decision one conditional `UPDATE`, so replicas
//! sharing a database never both succeed.
//!
//! [`Store`] is what the service holds: whichever engine [`Database`] names, behind the trait.

pub mod postgres;
pub mod sqlite;

use crate::tokens::TokenHash;
use std::fmt;
use std::ops::Deref;
use std::path::{Path, PathBuf};

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

/// Consecutive failed logins of one user (name folded with [`fold_user_name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginFailures {
    pub count: u32,
    pub last_failure_ms: i64,
}

/// The key of the failed-login counter: Jira folds user names to lower case (English locale
/// rules), so `FRED` and `fred` are one user with one counter.
pub fn fold_user_name(name: &str) -> String {
    // One fold for the whole service: the directory's, so a counter key is the user's name.
    crate::users::fold(name)
}

/// The database failed; the message is for the log, never for a client. It never holds a
/// password (connection errors name the host, not the URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

/// A new OAuth 1.0a request token (issue 13), as `POST /plugins/servlet/oauth/request-token`
/// stores it. Only hashes of the 43-character values are kept (see [`crate::oauth_tokens`]).
pub struct NewRequestToken<'a> {
    /// SHA-256 of the request token: how the row is found (unique).
    pub hash: &'a [u8; 32],
    /// SHA-256 of its token secret (RSA-SHA1 signatures never use it; kept hashed all the same).
    pub secret_hash: &'a [u8; 32],
    /// The consumer that asked for it: the token is bound to it.
    pub consumer_key: &'a str,
    /// The `oauth_callback` (`oob` or an allowed URL), checked before it is stored.
    pub callback: &'a str,
    /// SHA-256 of the CSRF value bound to this token (the authorize form's `atl_token`).
    pub csrf_hash: &'a [u8; 32],
    /// Epoch milliseconds, as every time in the store.
    pub created: i64,
    pub expires: i64,
}

/// Where a request token is in the dance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestTokenState {
    /// Issued, not yet approved or denied by a user.
    Pending,
    /// A user approved it: the access-token step must present the verifier hashing to
    /// `verifier_hash`, and the access token will be this user's.
    Authorized {
        user_key: String,
        verifier_hash: [u8; 32],
    },
    /// A user denied it: the access-token step answers `permission_denied`.
    Denied,
}

impl RequestTokenState {
    /// The `state` column's value.
    pub(crate) fn column(&self) -> &'static str {
        match self {
            RequestTokenState::Pending => "pending",
            RequestTokenState::Authorized { .. } => "authorized",
            RequestTokenState::Denied => "denied",
        }
    }

    /// Reads the `state`, `user_key` and `verifier_hash` columns back; an inconsistent row is
    /// an error (the schema's CHECK makes one impossible, short of a hand edit).
    pub(crate) fn from_columns(
        state: &str,
        user_key: Option<String>,
        verifier_hash: Option<Vec<u8>>,
    ) -> Result<Self, StoreError> {
        match (state, user_key, verifier_hash) {
            ("pending", None, None) => Ok(RequestTokenState::Pending),
            ("denied", None, None) => Ok(RequestTokenState::Denied),
            ("authorized", Some(user_key), Some(verifier_hash)) => Ok(RequestTokenState::Authorized {
                user_key,
                verifier_hash: hash_column(&verifier_hash, "verifier_hash")?,
            }),
            (state, _, _) => Err(StoreError(format!(
                "oauth request token: inconsistent state {state:?} in the database"
            ))),
        }
    }
}

/// A stored request token, without its hash and secret hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTokenRecord {
    pub consumer_key: String,
    pub callback: String,
    pub csrf_hash: [u8; 32],
    pub created: i64,
    /// Epoch milliseconds; the token is usable while `now < expires`.
    pub expires: i64,
    pub state: RequestTokenState,
}

/// A new OAuth 1.0a access token, as the access-token step stores it. Hashes only.
pub struct NewAccessToken<'a> {
    /// SHA-256 of the access token: how introspection finds the row (unique).
    pub hash: &'a [u8; 32],
    /// SHA-256 of its token secret.
    pub secret_hash: &'a [u8; 32],
    /// SHA-256 of its `oauth_session_handle` (unique).
    pub session_hash: &'a [u8; 32],
    /// The consumer whose request token it was exchanged for: the token is bound to it.
    pub consumer_key: &'a str,
    /// The user who authorised it.
    pub user_key: &'a str,
    pub created: i64,
    /// When the token stops working (`oauth_expires_in` after `created`).
    pub expires: i64,
    /// When the authorisation (the session) ends (`oauth_authorization_expires_in`).
    pub authorization_expires: i64,
}

/// A stored access token, without its hashes: what listing shows and introspection answers from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenRecord {
    /// Never reused, so a revoke by id never hits a later token.
    pub id: i64,
    pub consumer_key: String,
    pub user_key: String,
    pub created: i64,
    pub expires: i64,
    pub authorization_expires: i64,
    /// 0 until the token is first used.
    pub last_accessed: i64,
}

/// Reads a stored 32-byte hash column.
pub(crate) fn hash_column(bytes: &[u8], column: &str) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| StoreError(format!("stored {column} is not 32 bytes")))
}

/// Everything the service keeps. Every method is one committed transaction (or a read).
pub trait TokenStore: Send + Sync {
    /// Stores a new token and returns it as stored, with its id (ids are never reused).
    fn create(&self, new: &NewRecord<'_>) -> Result<TokenRecord, StoreError>;

    /// The tokens of `user_key`, oldest first.
    fn list_for_user(&self, user_key: &str) -> Result<Vec<TokenRecord>, StoreError>;

    /// Renames token `id` if `owner_key` owns it; `None` when it does not (or no such token).
    fn rename(&self, id: i64, owner_key: &str, description: &str) -> Result<Option<TokenRecord>, StoreError>;

    /// Deletes token `id` if `owner_key` owns it; whether it did.
    fn delete(&self, id: i64, owner_key: &str) -> Result<bool, StoreError>;

    /// Deletes every token of `user_key`; how many there were.
    fn delete_all_for(&self, user_key: &str) -> Result<usize, StoreError>;

    /// One page of all tokens that are no longer valid after `not_valid_after` (their
    /// `validUntil` is at or before it; `None`: every token), soonest to expire first, and
    /// how many match in all.
    fn filter(
        &self,
        not_valid_after: Option<i64>,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<TokenRecord>, u64), StoreError>;

    /// The token with this public lookup handle, with its stored hash.
    fn find_by_lookup(&self, lookup: &str) -> Result<Option<(TokenRecord, TokenHash)>, StoreError>;

    /// Records that token `id` was used at `now` (never moving `lastAccessed` backwards).
    fn touch(&self, id: i64, now: i64) -> Result<(), StoreError>;

    /// The failed-login streak of `user` (folded here); `(0, 0)` when there is none.
    fn failed_logins(&self, user: &str) -> Result<LoginFailures, StoreError>;

    /// Counts one failed login of `user` (folded here) at `now_ms`, atomically (one statement,
    /// so replicas sharing a database never lose a count): when the last failure is older than
    /// `window_ms` the streak restarts at 1, else it grows by one. `last_failure_ms` never
    /// moves backwards (replicas' clocks may differ a little). Returns the new streak.
    fn record_failed_login(
        &self,
        user: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<LoginFailures, StoreError>;

    /// Ends the failed-login streak of `user` (folded here).
    fn clear_failed_logins(&self, user: &str) -> Result<(), StoreError>;

    /// The schema version the database is at (the number of migrations applied).
    fn schema_version(&self) -> Result<u32, StoreError>;

    // OAuth 1.0a (issue 13). Every token row names its consumer; only hashes are stored.

    /// Stores a new request token, [`RequestTokenState::Pending`]. A hash already stored is an
    /// error (and stores nothing).
    fn create_request_token(&self, new: &NewRequestToken<'_>) -> Result<(), StoreError>;

    /// The request token with this hash, expired or not (the caller tells `token_expired` from
    /// `token_rejected`).
    fn find_request_token(&self, hash: &[u8; 32]) -> Result<Option<RequestTokenRecord>, StoreError>;

    /// Pending and unexpired at `now` (`now < expires`) -> `decision` (Authorized or Denied);
    /// false if it was not (no such token, already decided, expired). One conditional
    /// statement, so of two replicas deciding at once exactly one succeeds. `Pending` is not a
    /// decision: it answers false and changes nothing.
    fn decide_request_token(
        &self,
        hash: &[u8; 32],
        decision: &RequestTokenState,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Deletes the request token and returns it as it was, expired or not (single use: one
    /// `DELETE ... RETURNING`, so of two callers exactly one gets it).
    fn take_request_token(&self, hash: &[u8; 32]) -> Result<Option<RequestTokenRecord>, StoreError>;

    /// Stores a new access token and returns it as stored, with its id (ids are never reused).
    /// A token or session hash already stored is an error (and stores nothing).
    fn create_access_token(&self, new: &NewAccessToken<'_>) -> Result<AccessTokenRecord, StoreError>;

    /// The access token with this hash, expired or not.
    fn find_access_token(&self, hash: &[u8; 32]) -> Result<Option<AccessTokenRecord>, StoreError>;

    /// The access tokens of `user_key`, oldest first.
    fn list_access_tokens(&self, user_key: &str) -> Result<Vec<AccessTokenRecord>, StoreError>;

    /// Deletes (revokes) access token `id` if `owner` is None (an administrator) or owns it;
    /// whether it did.
    fn revoke_access_token(&self, id: i64, owner: Option<&str>) -> Result<bool, StoreError>;

    /// Records that access token `id` was used at `now` (never moving `last_accessed` backwards).
    fn touch_access_token(&self, id: i64, now: i64) -> Result<(), StoreError>;

    /// Removes the request tokens expired at `now` (`expires <= now`: none of them can be
    /// decided or exchanged any more); how many.
    /// Called now and then, so abandoned dances do not grow the table without bound.
    fn purge_request_tokens(&self, now: i64) -> Result<usize, StoreError>;
}

/// Where the tokens are kept: the configuration's `database`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file (created when missing).
    Sqlite(PathBuf),
    /// A PostgreSQL database, shared by every replica.
    Postgres(PostgresUrl),
}

impl Database {
    /// `postgres://...` or `postgresql://...` names a PostgreSQL database; anything else is an
    /// SQLite path, relative to `base` unless absolute. The error never repeats the URL.
    pub fn parse(text: &str, base: &Path) -> Result<Self, String> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            PostgresUrl::parse(text).map(Database::Postgres)
        } else if text.is_empty() {
            Err("must be an SQLite path or a postgres:// URL".to_owned())
        } else {
            Ok(Database::Sqlite(base.join(text)))
        }
    }
}

/// A PostgreSQL connection URL. `Debug` and `Display` show it with the password replaced by
/// `***`, so it can be logged; only [`PostgresUrl::secret`] gives the whole URL.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(String);

impl PostgresUrl {
    /// Checks the URL the way the client will read it (without saying what it holds).
    pub fn parse(text: &str) -> Result<Self, String> {
        text.parse::<::postgres::Config>()
            .map_err(|_| "not a valid postgres:// URL (see libpq's connection URIs)".to_owned())?;
        Ok(Self(text.to_owned()))
    }

    /// The URL with its password: for the client only, never for a log line.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        let Some((scheme, rest)) = self.0.split_once("://") else {
            return "***".to_owned();
        };
        // The userinfo ends at the last `@` before the path; its password after the first `:`.
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => match userinfo.split_once(':') {
                Some((user, _password)) => format!("{scheme}://{user}:***@{hosts}{}", redact_query(tail)),
                None => format!("{scheme}://{userinfo}@{hosts}{}", redact_query(tail)),
            },
            None => format!("{scheme}://{authority}{}", redact_query(tail)),
        }
    }
}

/// `password=` may also come as a query parameter.
fn redact_query(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresUrl({})", self.redacted())
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// The store the service holds: one engine behind [`TokenStore`] (calls go through `Deref`).
pub struct Store(Box<dyn TokenStore>);

impl Store {
    /// Opens the database the configuration names and migrates it.
    pub fn open(database: &Database) -> Result<Self, StoreError> {
        Ok(match database {
            Database::Sqlite(path) => Self(Box::new(sqlite::SqliteStore::open(path)?)),
            Database::Postgres(url) => Self(Box::new(postgres::PostgresStore::open(url)?)),
        })
    }

    /// A private in-memory SQLite database (tests).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Ok(Self(Box::new(sqlite::SqliteStore::open_in_memory()?)))
    }

    /// Any engine.
    pub fn new(engine: Box<dyn TokenStore>) -> Self {
        Self(engine)
    }
}

impl Deref for Store {
    type Target = dyn TokenStore;

    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Store")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_is_shown_without_its_password() {
        for (url, shown) in [
            (
                "postgres://tg:s3cret@127.0.0.1:5432/tokens",
                "postgres://tg:***@127.0.0.1:5432/tokens",
            ),
            (
                "postgresql://tg:p%40ss@db/tokens?sslmode=disable",
                "postgresql://tg:***@db/tokens?sslmode=disable",
            ),
            (
                "postgres://tg@db/tokens?password=s3cret&connect_timeout=5",
                "postgres://tg@db/tokens?password=***&connect_timeout=5",
            ),
            ("postgres://db:5432/tokens", "postgres://db:5432/tokens"),
        ] {
            let parsed = PostgresUrl::parse(url).unwrap();
            assert_eq!(parsed.to_string(), shown);
            assert_eq!(format!("{parsed:?}"), format!("PostgresUrl({shown})"));
            assert_eq!(parsed.secret(), url);
        }
    }

    #[test]
    fn database_names_postgres_by_its_scheme_and_anything_else_as_an_sqlite_path() {
        let base = Path::new("/etc/tokengate");
        assert_eq!(
            Database::parse("tokens.db", base).unwrap(),
            Database::Sqlite(PathBuf::from("/etc/tokengate/tokens.db"))
        );
        assert_eq!(
            Database::parse("/var/lib/tokens.db", base).unwrap(),
            Database::Sqlite(PathBuf::from("/var/lib/tokens.db"))
        );
        assert!(matches!(
            Database::parse("postgresql://tg@db/tokens", base).unwrap(),
            Database::Postgres(_)
        ));
        assert!(Database::parse("", base).is_err());
    }

    #[test]
    fn a_bad_postgres_url_is_refused_without_repeating_it() {
        let err = Database::parse("postgres://tg:s3cret@db:notaport/tokens", Path::new(".")).unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn a_request_token_state_reads_back_only_from_consistent_columns() {
        let verifier = Some(vec![7; 32]);
        for (state, user, hash, read) in [
            ("pending", None, None, Some(RequestTokenState::Pending)),
            ("denied", None, None, Some(RequestTokenState::Denied)),
            (
                "authorized",
                Some("K1"),
                verifier.clone(),
                Some(RequestTokenState::Authorized {
                    user_key: "K1".to_owned(),
                    verifier_hash: [7; 32],
                }),
            ),
            ("authorized", None, verifier.clone(), None),
            ("authorized", Some("K1"), None, None),
            ("authorized", Some("K1"), Some(vec![7; 31]), None),
            ("pending", Some("K1"), verifier.clone(), None),
            ("denied", Some("K1"), None, None),
            ("approved", None, None, None),
        ] {
            let got = RequestTokenState::from_columns(state, user.map(str::to_owned), hash.clone());
            assert_eq!(got.ok(), read, "{state} {user:?} {hash:?}");
        }
        for state in [
            RequestTokenState::Pending,
            RequestTokenState::Denied,
            RequestTokenState::Authorized {
                user_key: "K1".to_owned(),
                verifier_hash: [0; 32],
            },
        ] {
            let (user, hash) = match &state {
                RequestTokenState::Authorized {
                    user_key,
                    verifier_hash,
                } => (Some(user_key.clone()), Some(verifier_hash.to_vec())),
                _ => (None, None),
            };
            assert_eq!(
                RequestTokenState::from_columns(state.column(), user, hash),
                Ok(state)
            );
        }
    }

    #[test]
    fn user_names_fold_to_lower_case() {
        assert_eq!(fold_user_name("FRED"), "fred");
        assert_eq!(fold_user_name("Ölaf"), "ölaf");
    }
}
