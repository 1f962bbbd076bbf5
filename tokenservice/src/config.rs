//! The service's JSON configuration (`--config path`), validated into [`Config`].
//!
//! Unknown fields are errors, and every error names the field. Relative paths are resolved
//! against the directory of the configuration file, so a configuration and its users file can
//! move together.

use crate::links::BaseUrl;
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    listen: String,
    database: String,
    users_file: PathBuf,
    introspection: RawIntrospection,
    max_validity_months: u32,
    default_validity_months: u32,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    public_base_urls: Vec<String>,
    #[serde(default)]
    threads: Option<usize>,
    #[serde(default)]
    password_threads: Option<usize>,
    #[serde(default)]
    password_queue: Option<usize>,
    #[serde(default)]
    lockout: RawLockout,
    #[serde(default)]
    oauth1: Option<RawOAuth1>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOAuth1 {
    consumers: Vec<RawConsumer>,
    #[serde(default = "default_min_key_bits")]
    min_key_bits: usize,
    #[serde(default = "default_timestamp_window")]
    timestamp_window_seconds: u64,
    #[serde(default = "default_request_token_ttl")]
    request_token_ttl_seconds: u64,
    #[serde(default = "default_access_token_ttl")]
    access_token_ttl_seconds: u64,
    #[serde(default = "default_authorization_ttl")]
    authorization_ttl_seconds: u64,
}

fn default_min_key_bits() -> usize {
    oauth1::signature::DEFAULT_MIN_BITS
}
fn default_timestamp_window() -> u64 {
    300
}
fn default_request_token_ttl() -> u64 {
    600
}
/// Jira's `oauth_expires_in`: 5 years.
fn default_access_token_ttl() -> u64 {
    157_680_000
}
/// Jira's `oauth_authorization_expires_in`.
fn default_authorization_ttl() -> u64 {
    160_704_000
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConsumer {
    consumer_key: String,
    name: String,
    #[serde(default)]
    public_key_file: Option<PathBuf>,
    #[serde(default)]
    public_key: Option<String>,
    #[serde(default)]
    callbacks: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLockout {
    max_failures: u32,
    window_seconds: u32,
    login_url: String,
    max_failures_per_address: u32,
    client_address_header: String,
    trusted_proxies: u32,
}

impl Default for RawLockout {
    fn default() -> Self {
        Self {
            max_failures: 3,
            window_seconds: 1800,
            login_url: "/login.jsp".to_owned(),
            max_failures_per_address: 30,
            client_address_header: "x-envoy-external-address".to_owned(),
            trusted_proxies: 1,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntrospection {
    client_id: String,
    client_secret: String,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free port (the bound address is printed on start).
    pub listen: SocketAddr,
    /// The SQLite file (created when missing), or a PostgreSQL URL (`postgres://...`, shared
    /// by every replica). Its `Debug` hides a password.
    pub database: crate::store::Database,
    /// The user directory file (see [`crate::users`]).
    pub users_file: PathBuf,
    pub introspection: Introspection,
    /// The administrator's maximum token validity: longer requests are shortened to it.
    pub max_validity_months: u32,
    /// The validity of a token created without `tokenValidityTimeInMonths`.
    pub default_validity_months: u32,
    /// The canonical public base URL for links (`paginationLinks`): used when the request did
    /// not come through one of `public_base_urls` (see [`crate::links`]).
    pub base_url: Option<BaseUrl>,
    /// Every base URL clients reach the service under (through any Envoy); a request's
    /// `Host`/`X-Forwarded-*` choose among them and nothing else.
    pub public_base_urls: Vec<BaseUrl>,
    /// Worker threads serving requests.
    pub threads: usize,
    /// Threads answering requests with a password check (argon2), apart from `threads` (which
    /// answer every other request: introspection, API tokens).
    pub password_threads: usize,
    /// Password requests that may wait for one of `password_threads`; more are refused 503.
    pub password_queue: usize,
    /// The failed-login lockout (see [`crate::lockout`]).
    pub lockout: Lockout,
    /// OAuth 1.0a application links: the consumers and the dance's lifetimes. `None`: no
    /// dance endpoints (404), and every OAuth 1.0a introspection question is answered
    /// `consumer_key_unknown`.
    pub oauth1: Option<OAuth1>,
}

/// The OAuth 1.0a section: the registered consumers (application links) and the lifetimes
/// of what the dance hands out. Times in milliseconds, as everywhere in the store.
#[derive(Debug, Clone)]
pub struct OAuth1 {
    pub consumers: Vec<Consumer>,
    /// `oauth_timestamp` may be this far from now, either way (seconds).
    pub timestamp_window_seconds: u64,
    pub request_token_ttl_ms: i64,
    pub access_token_ttl_ms: i64,
    pub authorization_ttl_ms: i64,
}

impl OAuth1 {
    /// The consumer registered under `consumer_key` (compared exactly: a key is an identifier,
    /// not a secret).
    pub fn consumer(&self, consumer_key: &str) -> Option<&Consumer> {
        self.consumers.iter().find(|c| c.consumer_key == consumer_key)
    }
}

/// One application link: who signs, with which key, and where its users may be sent back to.
#[derive(Debug, Clone)]
pub struct Consumer {
    pub consumer_key: String,
    /// Shown to the user on the authorize page.
    pub name: String,
    pub key: oauth1::ConsumerKey,
    /// Allowed `oauth_callback` prefixes (see [`crate::oauth1_callback`]); `oob` is always
    /// allowed.
    pub callbacks: Vec<String>,
}

/// Jira's failed-login rule, per user (in the store, for the fleet) and per client address
/// (in memory, per replica).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockout {
    /// Consecutive failures after which a user is refused (Jira's CAPTCHA state).
    pub max_failures: u32,
    /// How long after the last failure the lock lasts, in milliseconds.
    pub window_ms: i64,
    /// Sent in `X-Authentication-Denied-Reason: CAPTCHA_CHALLENGE; login-url=<login_url>`.
    pub login_url: String,
    /// Failures from one client address within `window_ms` after which that address is
    /// refused (0: no limit per address).
    pub max_failures_per_address: u32,
    /// The header (lower case) whose entries name the client's address, and how many of its
    /// rightmost entries were written by proxies we trust (0: the header is ignored and the
    /// peer address is the client).
    pub client_address_header: String,
    pub trusted_proxies: u32,
}

/// The client the filter introspects as (RFC 7662 section 2.1: the caller authenticates).
#[derive(Clone)]
pub struct Introspection {
    pub client_id: String,
    pub client_secret: String,
}

impl fmt::Debug for Introspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Introspection")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A configuration that cannot be used; the message names the field, never a secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The most months a token may be valid for, whatever the configuration says (100 years).
const MONTHS_LIMIT: u32 = 1200;

/// The longest OAuth 1.0a lifetime accepted, in seconds (100 years).
const OAUTH1_TTL_LIMIT: u64 = 3_155_760_000;

/// The largest `oauth1.min_key_bits` accepted: the `rsa` crate reads keys of up to 4096 bits.
const OAUTH1_MAX_KEY_BITS: usize = 4096;

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Self::parse(&text, base)
    }

    /// Parses `text`; relative paths are taken relative to `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let raw: Raw = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            ConfigError(format!(
                "invalid configuration: field `{}`: {}",
                e.path(),
                e.inner()
            ))
        })?;
        let listen = raw
            .listen
            .parse()
            .map_err(|_| ConfigError(format!("field `listen`: not an address:port: {:?}", raw.listen)))?;
        if raw.max_validity_months == 0 || raw.max_validity_months > MONTHS_LIMIT {
            return Err(ConfigError(format!(
                "field `max_validity_months`: must be 1..={MONTHS_LIMIT}"
            )));
        }
        if raw.default_validity_months == 0 || raw.default_validity_months > raw.max_validity_months {
            return Err(ConfigError(
                "field `default_validity_months`: must be 1..=max_validity_months".to_owned(),
            ));
        }
        if raw.introspection.client_id.is_empty() || raw.introspection.client_id.contains(':') {
            return Err(ConfigError(
                "field `introspection.client_id`: must be non-empty, without `:`".to_owned(),
            ));
        }
        if raw.introspection.client_secret.len() < 16 {
            return Err(ConfigError(
                "field `introspection.client_secret`: must be at least 16 bytes".to_owned(),
            ));
        }
        let bad_url = |field: &str| {
            ConfigError(format!(
                "field `{field}`: must be http(s)://host[:port][/path], without query, user or spaces"
            ))
        };
        let base_url = match raw.base_url {
            Some(url) => Some(BaseUrl::parse(&url).ok_or_else(|| bad_url("base_url"))?),
            None => None,
        };
        let public_base_urls = raw
            .public_base_urls
            .iter()
            .enumerate()
            .map(|(i, url)| BaseUrl::parse(url).ok_or_else(|| bad_url(&format!("public_base_urls[{i}]"))))
            .collect::<Result<Vec<_>, _>>()?;
        let threads = raw.threads.unwrap_or(8);
        if !(1..=256).contains(&threads) {
            return Err(ConfigError("field `threads`: must be 1..=256".to_owned()));
        }
        let database = crate::store::Database::parse(&raw.database, base)
            .map_err(|e| ConfigError(format!("field `database`: {e}")))?;
        // Half the cores by default: argon2 never takes every core from introspection.
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        let password_threads = raw.password_threads.unwrap_or((cores / 2).max(1));
        if !(1..=256).contains(&password_threads) {
            return Err(ConfigError(
                "field `password_threads`: must be 1..=256".to_owned(),
            ));
        }
        let password_queue = raw.password_queue.unwrap_or(64);
        if password_queue > 100_000 {
            return Err(ConfigError(
                "field `password_queue`: must be 0..=100000".to_owned(),
            ));
        }
        let lockout = raw.lockout;
        if lockout.max_failures == 0 {
            return Err(ConfigError(
                "field `lockout.max_failures`: must be at least 1".to_owned(),
            ));
        }
        if lockout.window_seconds == 0 {
            return Err(ConfigError(
                "field `lockout.window_seconds`: must be at least 1".to_owned(),
            ));
        }
        if lockout.login_url.chars().any(|c| c.is_control() || c == ';') {
            return Err(ConfigError(
                "field `lockout.login_url`: must not contain control characters or `;`".to_owned(),
            ));
        }
        let header = lockout.client_address_header.to_ascii_lowercase();
        if header.is_empty() || !header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(ConfigError(
                "field `lockout.client_address_header`: must be a header name".to_owned(),
            ));
        }
        let lockout = Lockout {
            max_failures: lockout.max_failures,
            window_ms: i64::from(lockout.window_seconds) * 1000,
            login_url: lockout.login_url,
            max_failures_per_address: lockout.max_failures_per_address,
            client_address_header: header,
            trusted_proxies: lockout.trusted_proxies.min(64),
        };
        let oauth1 = match raw.oauth1 {
            Some(raw) => Some(oauth1_section(raw, base)?),
            None => None,
        };
        Ok(Self {
            lockout,
            oauth1,
            listen,
            database,
            users_file: base.join(raw.users_file),
            introspection: Introspection {
                client_id: raw.introspection.client_id,
                client_secret: raw.introspection.client_secret,
            },
            max_validity_months: raw.max_validity_months,
            default_validity_months: raw.default_validity_months,
            base_url,
            public_base_urls,
            threads,
            password_threads,
            password_queue,
        })
    }

    /// What an operator should hear at start: consumer keys under 2048 bits (Jira's own
    /// tutorial makes 1024-bit keys, so they are accepted down to `oauth1.min_key_bits`).
    pub fn warnings(&self) -> Vec<String> {
        let consumers = self.oauth1.iter().flat_map(|o| o.consumers.iter());
        consumers
            .filter(|c| c.key.bits() < oauth1::signature::WEAK_BELOW_BITS)
            .map(|c| {
                format!(
                    "warning: oauth1 consumer `{}` has a {}-bit RSA key; keys under {} bits are weak, replace it",
                    c.consumer_key,
                    c.key.bits(),
                    oauth1::signature::WEAK_BELOW_BITS
                )
            })
            .collect()
    }

    /// A configuration for unit tests: 12 months at most, 6 by default.
    #[cfg(test)]
    pub fn for_tests() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database: crate::store::Database::Sqlite(PathBuf::from(":memory:")),
            users_file: PathBuf::from("users.json"),
            introspection: Introspection {
                client_id: "tokengate".to_owned(),
                client_secret: "introspection-secret-0123".to_owned(),
            },
            max_validity_months: 12,
            default_validity_months: 6,
            base_url: BaseUrl::parse("https://your-jira-or-confluence"),
            public_base_urls: Vec::new(),
            threads: 2,
            password_threads: 1,
            password_queue: 4,
            lockout: Lockout {
                max_failures: 3,
                window_ms: 600_000,
                login_url: "https://jira.test/login.jsp".to_owned(),
                max_failures_per_address: 10,
                client_address_header: "x-envoy-external-address".to_owned(),
                trusted_proxies: 1,
            },
            oauth1: None,
        }
    }
}

/// A lifetime in seconds, 1 to [`OAUTH1_TTL_LIMIT`], as milliseconds.
fn ttl_ms(seconds: u64, field: &str) -> Result<i64, ConfigError> {
    if !(1..=OAUTH1_TTL_LIMIT).contains(&seconds) {
        return Err(ConfigError(format!(
            "field `oauth1.{field}`: must be 1..={OAUTH1_TTL_LIMIT} seconds"
        )));
    }
    i64::try_from(seconds.saturating_mul(1000))
        .map_err(|_| ConfigError(format!("field `oauth1.{field}`: too large")))
}

/// The `oauth1` section, validated: every consumer's key read and checked against
/// `min_key_bits`, keys unique, callbacks prefixes that name their host whole.
fn oauth1_section(raw: RawOAuth1, base: &Path) -> Result<OAuth1, ConfigError> {
    let min_bits = raw.min_key_bits;
    if !(oauth1::signature::DEFAULT_MIN_BITS..=OAUTH1_MAX_KEY_BITS).contains(&min_bits) {
        return Err(ConfigError(format!(
            "field `oauth1.min_key_bits`: must be {}..={OAUTH1_MAX_KEY_BITS}",
            oauth1::signature::DEFAULT_MIN_BITS
        )));
    }
    if raw.timestamp_window_seconds == 0 || raw.timestamp_window_seconds > 86_400 {
        return Err(ConfigError(
            "field `oauth1.timestamp_window_seconds`: must be 1..=86400".to_owned(),
        ));
    }
    if raw.request_token_ttl_seconds > 86_400 {
        return Err(ConfigError(
            "field `oauth1.request_token_ttl_seconds`: must be 1..=86400 (request tokens are short lived)"
                .to_owned(),
        ));
    }
    let request_token_ttl_ms = ttl_ms(raw.request_token_ttl_seconds, "request_token_ttl_seconds")?;
    let access_token_ttl_ms = ttl_ms(raw.access_token_ttl_seconds, "access_token_ttl_seconds")?;
    let authorization_ttl_ms = ttl_ms(raw.authorization_ttl_seconds, "authorization_ttl_seconds")?;
    let mut consumers: Vec<Consumer> = Vec::with_capacity(raw.consumers.len());
    for (i, consumer) in raw.consumers.into_iter().enumerate() {
        let field = |name: &str| format!("oauth1.consumers[{i}].{name}");
        let key = consumer.consumer_key;
        if key.is_empty() || key.len() > 255 || key.chars().any(char::is_control) {
            return Err(ConfigError(format!(
                "field `{}`: must be 1 to 255 bytes, without control characters",
                field("consumer_key")
            )));
        }
        if consumers.iter().any(|c| c.consumer_key == key) {
            return Err(ConfigError(format!(
                "field `{}`: `{key}` is registered twice",
                field("consumer_key")
            )));
        }
        let name = consumer.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 255 || name.chars().any(char::is_control) {
            return Err(ConfigError(format!(
                "field `{}`: must be 1 to 255 characters, without control characters",
                field("name")
            )));
        }
        let (pem, key_field) = match (consumer.public_key_file, consumer.public_key) {
            (Some(path), None) => {
                let path = base.join(path);
                let pem = std::fs::read_to_string(&path).map_err(|e| {
                    ConfigError(format!(
                        "field `{}`: cannot read {}: {e}",
                        field("public_key_file"),
                        path.display()
                    ))
                })?;
                (pem, field("public_key_file"))
            }
            (None, Some(pem)) => (pem, field("public_key")),
            _ => {
                return Err(ConfigError(format!(
                    "field `{}`: give exactly one of `public_key_file` and `public_key`",
                    field("public_key")
                )))
            }
        };
        let public = oauth1::ConsumerKey::from_pem(&pem, min_bits)
            .map_err(|e| ConfigError(format!("field `{key_field}`: {e}")))?;
        let mut callbacks = Vec::with_capacity(consumer.callbacks.len());
        for (j, prefix) in consumer.callbacks.into_iter().enumerate() {
            if prefix == crate::oauth1_callback::OOB {
                continue;
            }
            if !crate::oauth1_callback::valid_prefix(&prefix) {
                return Err(ConfigError(format!(
                    "field `{}[{j}]`: must be \"oob\" or http(s)://host[:port]/... (the `/` after the host included), URL characters only",
                    field("callbacks")
                )));
            }
            callbacks.push(prefix);
        }
        consumers.push(Consumer {
            consumer_key: key,
            name,
            key: public,
            callbacks,
        });
    }
    Ok(OAuth1 {
        consumers,
        timestamp_window_seconds: raw.timestamp_window_seconds,
        request_token_ttl_ms,
        access_token_ttl_ms,
        authorization_ttl_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Database;

    const GOOD: &str = r#"{
        "listen": "127.0.0.1:9090",
        "database": "tokens.db",
        "users_file": "users.json",
        "introspection": {"client_id": "tokengate", "client_secret": "0123456789abcdef"},
        "max_validity_months": 12,
        "default_validity_months": 6
    }"#;

    #[test]
    fn a_good_configuration_resolves_paths_against_its_directory() {
        let config = Config::parse(GOOD, Path::new("/etc/tokengate")).unwrap();
        assert_eq!(
            config.database,
            Database::Sqlite(PathBuf::from("/etc/tokengate/tokens.db"))
        );
        assert_eq!(config.users_file, PathBuf::from("/etc/tokengate/users.json"));
        assert_eq!(config.listen.port(), 9090);
        assert_eq!(config.threads, 8);
        assert_eq!(config.base_url, None);
    }

    #[test]
    fn password_pool_sizes_are_checked() {
        let with = |fields: &str| {
            GOOD.replace(
                "\"default_validity_months\": 6",
                &format!("\"default_validity_months\": 6, {fields}"),
            )
        };
        let config = Config::parse(
            &with(r#""password_threads": 3, "password_queue": 0"#),
            Path::new("."),
        )
        .unwrap();
        assert_eq!((config.password_threads, config.password_queue), (3, 0));
        let config = Config::parse(GOOD, Path::new(".")).unwrap();
        assert!(config.password_threads >= 1);
        assert_eq!(config.password_queue, 64);
        for (fields, named) in [
            (r#""password_threads": 0"#, "password_threads"),
            (r#""password_threads": 257"#, "password_threads"),
            (r#""password_queue": 100001"#, "password_queue"),
        ] {
            let err = Config::parse(&with(fields), Path::new(".")).unwrap_err();
            assert!(err.0.contains(named), "{fields}: {err}");
        }
    }

    #[test]
    fn absolute_paths_stay_absolute() {
        let text = GOOD.replace("\"tokens.db\"", "\"/var/lib/tokens.db\"");
        let config = Config::parse(&text, Path::new("/etc")).unwrap();
        assert_eq!(
            config.database,
            Database::Sqlite(PathBuf::from("/var/lib/tokens.db"))
        );
    }

    #[test]
    fn a_postgres_url_is_kept_and_its_password_never_shown() {
        let text = GOOD.replace(
            "\"tokens.db\"",
            "\"postgres://tg:pg-s3cret@127.0.0.1:5432/tokens\"",
        );
        let config = Config::parse(&text, Path::new("/etc")).unwrap();
        let Database::Postgres(url) = &config.database else {
            panic!("{:?}", config.database);
        };
        assert_eq!(url.secret(), "postgres://tg:pg-s3cret@127.0.0.1:5432/tokens");
        assert!(!format!("{config:?}").contains("pg-s3cret"), "{config:?}");
        let bad = GOOD.replace("\"tokens.db\"", "\"postgres://tg:pg-s3cret@db:port/x\"");
        let err = Config::parse(&bad, Path::new(".")).unwrap_err();
        assert!(
            err.0.contains("database") && !err.0.contains("pg-s3cret"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_field_is_named() {
        let text = GOOD
            .replace("\"threads\"", "x")
            .replace("\"listen\"", "\"listne\"");
        let err = Config::parse(&text, Path::new(".")).unwrap_err();
        assert!(err.0.contains("listne"), "{err}");
    }

    #[test]
    fn a_default_longer_than_the_maximum_is_refused() {
        let text = GOOD.replace(
            "\"default_validity_months\": 6",
            "\"default_validity_months\": 13",
        );
        let err = Config::parse(&text, Path::new(".")).unwrap_err();
        assert!(err.0.contains("default_validity_months"), "{err}");
    }

    #[test]
    fn a_short_client_secret_is_refused_without_showing_it() {
        let text = GOOD.replace("0123456789abcdef", "short-secret");
        let err = Config::parse(&text, Path::new(".")).unwrap_err();
        assert!(
            err.0.contains("client_secret") && !err.0.contains("short-secret"),
            "{err}"
        );
    }

    #[test]
    fn a_wrongly_typed_field_is_named() {
        let text = GOOD.replace("\"max_validity_months\": 12", "\"max_validity_months\": \"12\"");
        let err = Config::parse(&text, Path::new(".")).unwrap_err();
        assert!(err.0.contains("max_validity_months"), "{err}");
    }

    #[test]
    fn the_lockout_has_jiras_defaults_and_its_fields_are_checked() {
        let config = Config::parse(GOOD, Path::new(".")).unwrap();
        assert_eq!(config.lockout.max_failures, 3);
        assert_eq!(config.lockout.window_ms, 1_800_000);
        assert_eq!(config.lockout.client_address_header, "x-envoy-external-address");
        let text = GOOD.replace(
            "\"listen\"",
            "\"lockout\": {\"max_failures\": 5, \"client_address_header\": \"X-Forwarded-For\", \"trusted_proxies\": 2}, \"listen\"",
        );
        let config = Config::parse(&text, Path::new(".")).unwrap();
        assert_eq!(config.lockout.max_failures, 5);
        assert_eq!(config.lockout.client_address_header, "x-forwarded-for");
        assert_eq!(config.lockout.trusted_proxies, 2);
        for (bad, field) in [
            ("{\"max_failures\": 0}", "lockout.max_failures"),
            ("{\"window_seconds\": 0}", "lockout.window_seconds"),
            ("{\"login_url\": \"/a;b\"}", "lockout.login_url"),
            (
                "{\"client_address_header\": \"a b\"}",
                "lockout.client_address_header",
            ),
            ("{\"max_falures\": 1}", "max_falures"),
        ] {
            let text = GOOD.replace("\"listen\"", &format!("\"lockout\": {bad}, \"listen\""));
            let err = Config::parse(&text, Path::new(".")).unwrap_err();
            assert!(err.0.contains(field), "{bad}: {err}");
        }
    }

    #[test]
    fn base_url_loses_its_trailing_slash() {
        let text = GOOD.replace(
            "\"listen\"",
            "\"base_url\": \"https://jira.example.com/\", \"listen\"",
        );
        let config = Config::parse(&text, Path::new(".")).unwrap();
        assert_eq!(
            config.base_url.as_ref().map(BaseUrl::as_str),
            Some("https://jira.example.com")
        );
    }

    #[test]
    fn public_base_urls_are_checked_and_a_bad_one_is_named() {
        let text = GOOD.replace(
            "\"listen\"",
            "\"public_base_urls\": [\"https://jira.example.com\", \"http://127.0.0.1:8080\"], \"listen\"",
        );
        let config = Config::parse(&text, Path::new(".")).unwrap();
        assert_eq!(config.public_base_urls.len(), 2);
        let text = GOOD.replace(
            "\"listen\"",
            "\"public_base_urls\": [\"https://jira.example.com\", \"https://evil\\\"<>\"], \"listen\"",
        );
        let err = Config::parse(&text, Path::new(".")).unwrap_err();
        assert!(err.0.contains("public_base_urls[1]"), "{err}");
        let text = GOOD.replace("\"listen\"", "\"base_url\": \"jira.example.com\", \"listen\"");
        let err = Config::parse(&text, Path::new(".")).unwrap_err();
        assert!(err.0.contains("base_url"), "{err}");
    }

    /// `GOOD` with an `oauth1` section of `consumers` (JSON text) and `extra` fields.
    fn with_oauth1(consumers: &str, extra: &str) -> String {
        GOOD.replace(
            "\"listen\"",
            &format!("\"oauth1\": {{\"consumers\": {consumers}{extra}}}, \"listen\""),
        )
    }

    /// The directory of this crate's `config/` (the demo consumer's public key).
    fn config_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
    }

    const DEMO_CONSUMER: &str = r#"{"consumer_key": "tokengate-demo", "name": "Demo application link",
        "public_key_file": "demo-consumer.pub", "callbacks": ["http://127.0.0.1:8765/"]}"#;

    #[test]
    fn without_an_oauth1_section_there_are_no_consumers() {
        let config = Config::parse(GOOD, Path::new(".")).unwrap();
        assert!(config.oauth1.is_none());
        assert!(config.warnings().is_empty());
    }

    #[test]
    fn a_consumer_is_read_with_its_key_file_relative_to_the_configuration_and_jiras_lifetimes() {
        let config = Config::parse(&with_oauth1(&format!("[{DEMO_CONSUMER}]"), ""), &config_dir()).unwrap();
        let oauth1 = config.oauth1.as_ref().unwrap();
        let demo = oauth1.consumer("tokengate-demo").unwrap();
        assert_eq!(demo.name, "Demo application link");
        assert_eq!(demo.key.bits(), 2048);
        assert_eq!(demo.callbacks, vec!["http://127.0.0.1:8765/".to_owned()]);
        assert!(oauth1.consumer("Tokengate-demo").is_none());
        assert_eq!(oauth1.timestamp_window_seconds, 300);
        assert_eq!(oauth1.request_token_ttl_ms, 600_000);
        assert_eq!(oauth1.access_token_ttl_ms, 157_680_000_000);
        assert_eq!(oauth1.authorization_ttl_ms, 160_704_000_000);
        assert!(config.warnings().is_empty(), "{:?}", config.warnings());
    }

    #[test]
    fn an_inline_key_of_1024_bits_is_accepted_with_a_warning_and_refused_under_a_higher_minimum() {
        let pem = include_str!("testdata/consumer-1024.pub");
        let consumer = serde_json::json!({"consumer_key": "jira-tutorial", "name": "Tutorial",
            "public_key": pem, "callbacks": ["oob"]})
        .to_string();
        let config = Config::parse(&with_oauth1(&format!("[{consumer}]"), ""), Path::new(".")).unwrap();
        let tutorial = config.oauth1.as_ref().unwrap().consumer("jira-tutorial").unwrap();
        assert_eq!(tutorial.key.bits(), 1024);
        assert!(tutorial.callbacks.is_empty(), "oob needs no prefix");
        let warnings = config.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("jira-tutorial") && warnings[0].contains("1024"),
            "{warnings:?}"
        );
        let stricter = with_oauth1(&format!("[{consumer}]"), ", \"min_key_bits\": 2048");
        let err = Config::parse(&stricter, Path::new(".")).unwrap_err();
        assert!(
            err.0.contains("oauth1.consumers[0].public_key") && err.0.contains("1024"),
            "{err}"
        );
    }

    #[test]
    fn every_bad_oauth1_field_is_named() {
        let small = serde_json::json!(include_str!("testdata/consumer-512.pub")).to_string();
        let demo_pem = serde_json::json!(include_str!("../config/demo-consumer.pub")).to_string();
        let consumer = |fields: &str| {
            format!(r#"[{{"consumer_key": "c", "name": "C", "public_key": {demo_pem}{fields}}}]"#)
        };
        let table = [
            (
                format!(r#"[{{"consumer_key": "c", "name": "C", "public_key": {small}}}]"#),
                String::new(),
                "oauth1.consumers[0].public_key",
            ),
            (
                r#"[{"consumer_key": "c", "name": "C", "public_key_file": "missing.pub"}]"#.to_owned(),
                String::new(),
                "oauth1.consumers[0].public_key_file",
            ),
            (
                r#"[{"consumer_key": "c", "name": "C", "public_key": "not a key"}]"#.to_owned(),
                String::new(),
                "oauth1.consumers[0].public_key",
            ),
            (
                r#"[{"consumer_key": "c", "name": "C"}]"#.to_owned(),
                String::new(),
                "oauth1.consumers[0].public_key",
            ),
            (
                format!(
                    r#"[{{"consumer_key": "c", "name": "C", "public_key": {demo_pem}, "public_key_file": "demo-consumer.pub"}}]"#
                ),
                String::new(),
                "oauth1.consumers[0].public_key",
            ),
            (
                format!(
                    r#"[{{"consumer_key": "c", "name": "C", "public_key": {demo_pem}}}, {{"consumer_key": "c", "name": "D", "public_key": {demo_pem}}}]"#
                ),
                String::new(),
                "oauth1.consumers[1].consumer_key",
            ),
            (
                consumer(r#", "callbacks": ["http://127.0.0.1:8765/", "http://127.0.0.1:8765"]"#),
                String::new(),
                "oauth1.consumers[0].callbacks[1]",
            ),
            (
                consumer(r#", "callbacks": ["javascript:alert(1)//"]"#),
                String::new(),
                "oauth1.consumers[0].callbacks[0]",
            ),
            (
                r#"[{"consumer_key": "", "name": "C", "public_key": "x"}]"#.to_owned(),
                String::new(),
                "oauth1.consumers[0].consumer_key",
            ),
            (
                r#"[{"consumer_key": "c", "name": " ", "public_key": "x"}]"#.to_owned(),
                String::new(),
                "oauth1.consumers[0].name",
            ),
            (
                consumer(""),
                ", \"min_key_bits\": 512".to_owned(),
                "oauth1.min_key_bits",
            ),
            (
                consumer(""),
                ", \"timestamp_window_seconds\": 0".to_owned(),
                "oauth1.timestamp_window_seconds",
            ),
            (
                consumer(""),
                ", \"request_token_ttl_seconds\": 0".to_owned(),
                "oauth1.request_token_ttl_seconds",
            ),
            (
                consumer(""),
                ", \"request_token_ttl_seconds\": 86401".to_owned(),
                "oauth1.request_token_ttl_seconds",
            ),
            (
                consumer(""),
                ", \"access_token_ttl_seconds\": 0".to_owned(),
                "oauth1.access_token_ttl_seconds",
            ),
            (
                consumer(""),
                ", \"authorization_ttl_seconds\": 99999999999".to_owned(),
                "oauth1.authorization_ttl_seconds",
            ),
            (consumer(", \"secret\": \"x\""), String::new(), "secret"),
            (consumer(""), ", \"consumer\": []".to_owned(), "consumer"),
        ];
        for (consumers, extra, field) in table {
            let text = with_oauth1(&consumers, &extra);
            let err = Config::parse(&text, &config_dir()).unwrap_err();
            assert!(err.0.contains(field), "{consumers} {extra}: {err}");
        }
    }
}
