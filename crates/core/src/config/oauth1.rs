//! `oauth1_providers.<name>`: compiled into an [`OAuth1Provider`] (OAuth 1.0a application
//! links, whose access tokens the token service's introspection answers for).

use serde::Deserialize;

use super::common::{default_timeout_ms, error, ConfigError, TISJWT_PROVIDER};
use super::oauth::{default_oauth_negative_ttl, RawIntrospection, TokenService};
use crate::cache::Scope;
use crate::oauth1_question::{nonce_prefix, FormBody, NonceSettings, OAuth1Provider, PublicBase};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOAuth1Provider {
    introspection: RawIntrospection,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default = "default_oauth1_ttl")]
    cache_ttl_seconds: u32,
    #[serde(default = "default_oauth_negative_ttl")]
    negative_cache_ttl_seconds: u32,
    public_base_url: Option<String>,
    realm: Option<String>,
    #[serde(default = "default_window")]
    timestamp_window_seconds: u32,
    #[serde(default)]
    nonce_store: RawNonceStore,
    #[serde(default)]
    form_body: RawFormBody,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNonceStore {
    #[serde(default = "default_buckets")]
    buckets: u32,
    #[serde(default = "default_per_bucket")]
    per_bucket: u32,
}

impl Default for RawNonceStore {
    fn default() -> Self {
        Self {
            buckets: default_buckets(),
            per_bucket: default_per_bucket(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFormBody {
    #[serde(default = "default_max_bytes")]
    max_bytes: u32,
    #[serde(default = "default_body_timeout_ms")]
    timeout_ms: u64,
}

impl Default for RawFormBody {
    fn default() -> Self {
        Self {
            max_bytes: default_max_bytes(),
            timeout_ms: default_body_timeout_ms(),
        }
    }
}

/// Short, as for API tokens: a revoked access token works at most this long on an Envoy
/// that cached the token service's answer.
fn default_oauth1_ttl() -> u32 {
    10
}

/// Jira's (net.oauth's) five minutes.
fn default_window() -> u32 {
    300
}

/// With 32 records a bucket: about 260,000 signed requests in one window (a bucket fills
/// first at about half the capacity), some 870 a second over the default five minutes, in at
/// most 12.6 MB of shared data, taken as buckets are first written.
fn default_buckets() -> u32 {
    16_384
}

fn default_per_bucket() -> u32 {
    32
}

fn default_max_bytes() -> u32 {
    65_536
}

fn default_body_timeout_ms() -> u64 {
    5_000
}

/// The widest timestamp window accepted: a day. Each nonce is kept for the window, and a
/// captured request replays on another Envoy within it.
const MAX_WINDOW_SECONDS: u32 = 86_400;

/// Buckets and records per bucket: each bucket is one shared-data entry of 24-byte records.
const MAX_BUCKETS: u32 = 1 << 20;
const MAX_PER_BUCKET: u32 = 1024;

/// The largest form body read: Envoy buffers it whole, and a buffer over Envoy's own limit
/// (`per_connection_buffer_limit_bytes`, 1 MiB by default) is Envoy's 413 before the module
/// sees it: at most 1 MiB, so the filter's bound (its 413 in the OAuth 1.0a family) comes first.
const MAX_FORM_BYTES: u32 = 1 << 20;

impl RawOAuth1Provider {
    pub(super) fn compile(
        self,
        name: String,
        scope: Scope,
        top_realm: &str,
    ) -> Result<OAuth1Provider, ConfigError> {
        let field = |f: &str| format!("oauth1_providers.{name}.{f}");
        if name.is_empty() || name == TISJWT_PROVIDER {
            return Err(error(
                "oauth1_providers",
                format!("`{name}` cannot name an OAuth 1.0a provider"),
            ));
        }
        let public_base = self
            .public_base_url
            .as_deref()
            .map(|url| {
                PublicBase::parse(url).ok_or_else(|| {
                    error(
                        &field("public_base_url"),
                        format!("`{url}` is not an http or https scheme://host[:port] without a path"),
                    )
                })
            })
            .transpose()?;
        let realm = match (self.realm, &self.public_base_url) {
            (Some(realm), _) => realm,
            (None, Some(url)) => url.trim_end_matches('/').to_owned(),
            (None, None) => top_realm.to_owned(),
        };
        if !realm
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ')
        {
            return Err(error(
                &field("realm"),
                "must be printable ASCII without quotes or backslashes",
            ));
        }
        if !(1..=MAX_WINDOW_SECONDS).contains(&self.timestamp_window_seconds) {
            return Err(error(
                &field("timestamp_window_seconds"),
                format!("must be between 1 and {MAX_WINDOW_SECONDS}"),
            ));
        }
        if !(1..=MAX_BUCKETS).contains(&self.nonce_store.buckets) {
            return Err(error(
                &field("nonce_store.buckets"),
                format!("must be between 1 and {MAX_BUCKETS}"),
            ));
        }
        if !(1..=MAX_PER_BUCKET).contains(&self.nonce_store.per_bucket) {
            return Err(error(
                &field("nonce_store.per_bucket"),
                format!("must be between 1 and {MAX_PER_BUCKET}"),
            ));
        }
        if !(1..=MAX_FORM_BYTES).contains(&self.form_body.max_bytes) {
            return Err(error(
                &field("form_body.max_bytes"),
                format!("must be between 1 and {MAX_FORM_BYTES}"),
            ));
        }
        // The introspection endpoint and our client credentials, checked as an OAuth
        // provider's are; never a provider of its own (it is in no list rules name).
        let introspection = TokenService {
            introspection: self.introspection,
            timeout_ms: self.timeout_ms,
            cache_ttl_seconds: self.cache_ttl_seconds,
            negative_cache_ttl_seconds: self.negative_cache_ttl_seconds,
        }
        .compile("oauth1_providers", name.clone(), scope)?;
        let nonces = NonceSettings {
            buckets: self.nonce_store.buckets,
            per_bucket: usize::try_from(self.nonce_store.per_bucket).unwrap_or(usize::MAX),
        };
        Ok(OAuth1Provider {
            nonce_prefix: nonce_prefix(&introspection, nonces),
            introspection,
            cache_ttl_seconds: i64::from(self.cache_ttl_seconds),
            negative_cache_ttl_seconds: i64::from(self.negative_cache_ttl_seconds),
            public_base,
            realm,
            timestamp_window_seconds: u64::from(self.timestamp_window_seconds),
            nonces,
            form_body: FormBody {
                max_bytes: usize::try_from(self.form_body.max_bytes).unwrap_or(usize::MAX),
                timeout_ms: self.form_body.timeout_ms.clamp(1, 60_000),
            },
            name,
            scope,
        })
    }
}
