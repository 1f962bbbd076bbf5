//! `api_token_providers.<name>`: compiled into an [`OAuthProvider`] with API-token settings
//! (the token service's introspection).

use serde::Deserialize;

use super::common::{default_timeout_ms, error, ConfigError};
use super::oauth::{default_oauth_negative_ttl, RawIntrospection, TokenService};
use crate::cache::Scope;
use crate::introspect::{ApiTokenSettings, OAuthProvider};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApiTokenProvider {
    introspection: RawIntrospection,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default = "default_api_token_ttl")]
    cache_ttl_seconds: u32,
    #[serde(default = "default_oauth_negative_ttl")]
    negative_cache_ttl_seconds: u32,
    #[serde(default)]
    pub(super) lockout: RawLockout,
    /// Deprecated, ignored: the token service honours its own reset (issue 11).
    #[serde(default)]
    pub(super) reset_path_prefix: Option<String>,
    #[serde(default = "default_locked_ttl")]
    locked_cache_ttl_seconds: u32,
}

/// Of the lockout, only `login_url` is still read (when the token service's "locked" answer
/// has none); the counter and its rule are the token service's, so `max_failures` and
/// `window_seconds` are accepted and ignored (deprecated), for configurations written before.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLockout {
    #[serde(default)]
    pub(super) max_failures: Option<u32>,
    #[serde(default)]
    pub(super) window_seconds: Option<u32>,
    #[serde(default = "default_login_url")]
    login_url: String,
}

impl Default for RawLockout {
    fn default() -> Self {
        Self {
            max_failures: None,
            window_seconds: None,
            login_url: default_login_url(),
        }
    }
}

/// Short, because it bounds how long an Envoy that never heard of a lock keeps admitting a
/// token it cached as valid (README: "What holds across Envoy processes").
fn default_api_token_ttl() -> u32 {
    10
}

fn default_locked_ttl() -> u32 {
    5
}

fn default_login_url() -> String {
    "/login.jsp".to_owned()
}

impl RawApiTokenProvider {
    pub(super) fn compile(self, name: String, scope: Scope) -> Result<OAuthProvider, ConfigError> {
        let field = |f: &str| format!("api_token_providers.{name}.{f}");
        if self.lockout.login_url.chars().any(|c| c.is_control() || c == ';') {
            return Err(error(
                &field("lockout.login_url"),
                "must not contain control characters or `;`",
            ));
        }
        let settings = ApiTokenSettings {
            login_url: self.lockout.login_url,
            locked_cache_ttl_seconds: i64::from(self.locked_cache_ttl_seconds.min(300)),
        };
        let mut provider = TokenService {
            introspection: self.introspection,
            timeout_ms: self.timeout_ms,
            cache_ttl_seconds: self.cache_ttl_seconds,
            negative_cache_ttl_seconds: self.negative_cache_ttl_seconds,
        }
        .compile("api_token_providers", name.clone(), scope)?;
        provider.api_tokens = Some(settings);
        Ok(provider)
    }
}
