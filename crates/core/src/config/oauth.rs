//! `oauth_providers.<name>`: compiled into an [`OAuthProvider`] (RFC 7662 introspection or
//! OpenID Connect UserInfo).

use serde::Deserialize;
use std::collections::BTreeMap;

use super::common::{default_timeout_ms, default_token_cache_ttl, error, ConfigError, TISJWT_PROVIDER};
use crate::cache::Scope;
use crate::introspect::{ClientAuth, Endpoint, OAuthProvider};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOAuthProvider {
    pub(super) introspection: Option<RawIntrospection>,
    pub(super) userinfo: Option<RawEndpoint>,
    #[serde(default = "default_timeout_ms")]
    pub(super) timeout_ms: u64,
    pub(super) user_field: Option<String>,
    #[serde(default)]
    pub(super) service_accounts: BTreeMap<String, String>,
    #[serde(default = "default_token_cache_ttl")]
    pub(super) cache_ttl_seconds: u32,
    #[serde(default = "default_oauth_negative_ttl")]
    pub(super) negative_cache_ttl_seconds: u32,
    pub(super) audiences: Option<Vec<String>>,
    #[serde(default)]
    pub(super) jwt_issuers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIntrospection {
    cluster: String,
    path: String,
    authority: Option<String>,
    client_id: String,
    client_secret: String,
    #[serde(default = "default_client_auth")]
    client_auth: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEndpoint {
    cluster: String,
    path: String,
    authority: Option<String>,
}

fn default_client_auth() -> String {
    "basic".to_owned()
}

pub(super) fn default_oauth_negative_ttl() -> u32 {
    10
}

/// The token service's introspection endpoint (for API tokens and OAuth 1.0a access tokens),
/// compiled as an `oauth_providers` entry with `username` as its user field; its errors name
/// the field under `section` (`api_token_providers`, `oauth1_providers`).
pub(super) struct TokenService {
    pub(super) introspection: RawIntrospection,
    pub(super) timeout_ms: u64,
    pub(super) cache_ttl_seconds: u32,
    pub(super) negative_cache_ttl_seconds: u32,
}

impl TokenService {
    pub(super) fn compile(
        self,
        section: &str,
        name: String,
        scope: Scope,
    ) -> Result<OAuthProvider, ConfigError> {
        let as_oauth = RawOAuthProvider {
            introspection: Some(self.introspection),
            userinfo: None,
            timeout_ms: self.timeout_ms,
            user_field: Some("username".to_owned()),
            service_accounts: BTreeMap::new(),
            cache_ttl_seconds: self.cache_ttl_seconds,
            negative_cache_ttl_seconds: self.negative_cache_ttl_seconds,
            audiences: None,
            jwt_issuers: Vec::new(),
        };
        as_oauth.compile(name, scope).map_err(|e| ConfigError {
            field: e.field.replacen("oauth_providers", section, 1),
            problem: e.problem,
        })
    }
}

impl RawOAuthProvider {
    pub(super) fn compile(self, name: String, scope: Scope) -> Result<OAuthProvider, ConfigError> {
        let field = |f: &str| format!("oauth_providers.{name}.{f}");
        if name.is_empty() || name == TISJWT_PROVIDER {
            return Err(error(
                "oauth_providers",
                format!("`{name}` cannot name an OAuth provider"),
            ));
        }
        let (endpoint, target, credentials) = match (self.introspection, self.userinfo) {
            (Some(i), None) => {
                let auth = match i.client_auth.as_str() {
                    "basic" => ClientAuth::Basic,
                    "post" => ClientAuth::Post,
                    other => {
                        let problem = format!("`{other}` is not `basic` or `post`");
                        return Err(error(&field("introspection.client_auth"), problem));
                    }
                };
                if i.client_id.is_empty() || i.client_secret.is_empty() {
                    return Err(error(
                        &field("introspection"),
                        "client_id and client_secret are required",
                    ));
                }
                let target = RawEndpoint {
                    cluster: i.cluster,
                    path: i.path,
                    authority: i.authority,
                };
                (
                    Endpoint::Introspection,
                    target,
                    (i.client_id, i.client_secret, auth),
                )
            }
            (None, Some(u)) => (
                Endpoint::UserInfo,
                u,
                (String::new(), String::new(), ClientAuth::Basic),
            ),
            _ => {
                return Err(error(
                    &format!("oauth_providers.{name}"),
                    "give exactly one of introspection, userinfo",
                ))
            }
        };
        if target.cluster.is_empty() || !target.path.starts_with('/') {
            return Err(error(
                &field("path"),
                "needs a cluster and a path starting with `/`",
            ));
        }
        if self.audiences.as_ref().is_some_and(Vec::is_empty) {
            return Err(error(
                &field("audiences"),
                "must not be empty (omit it to skip the audience check)",
            ));
        }
        if self.jwt_issuers.iter().any(String::is_empty) {
            return Err(error(&field("jwt_issuers"), "must not contain an empty issuer"));
        }
        let default_user_field = if endpoint == Endpoint::Introspection {
            "username"
        } else {
            "sub"
        };
        Ok(OAuthProvider {
            endpoint,
            authority: target.authority.unwrap_or_else(|| target.cluster.clone()),
            cluster: target.cluster,
            path: target.path,
            client_id: credentials.0,
            client_secret: credentials.1,
            client_auth: credentials.2,
            timeout_ms: self.timeout_ms.clamp(1, 60_000),
            user_field: self.user_field.unwrap_or_else(|| default_user_field.to_owned()),
            service_accounts: self.service_accounts,
            cache_ttl_seconds: i64::from(self.cache_ttl_seconds),
            negative_cache_ttl_seconds: i64::from(self.negative_cache_ttl_seconds),
            api_tokens: None,
            audiences: self.audiences.unwrap_or_default(),
            jwt_issuers: self.jwt_issuers,
            name,
            scope,
        })
    }
}
