//! The plugin configuration: JSON from Envoy's `configuration` field, parsed once into
//! validated types. Unknown fields and invalid values are errors naming the field, so that
//! `on_configure` fails and Envoy refuses the configuration instead of running half-configured.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde::Deserialize;
use std::fmt;

use crate::apitoken::BasicPasswords;
use crate::bearer::{ClaimHeader, JwtProvider, KeySource, RemoteJwks};
use crate::clock::end_of_day;
use crate::directory::{Directory, DirectoryCallout, StaticUser};
use crate::introspect::{ApiTokenSettings, ClientAuth, Endpoint, OAuthProvider};
use crate::jwk::{KeyError, KeyKind, KeySet, SymmetricKeys};
use crate::jwks_cache::RefreshPolicy;
use crate::jwt::{Algorithm, ClaimRules, HmacSecret};
use crate::policy::{Policy, Rule};
use crate::tisjwt::{License, TisjwtProvider};
use std::collections::BTreeMap;
use std::rc::Rc;

/// `hmac_secret_base64url`: the URL-safe alphabet, with or without `=` padding.
const SECRET_BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Shortest HMAC secret accepted: RFC 7518 section 3.2 asks for a key at least as long as the
/// hash output, and HS256's is 32 bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// A configuration the filter can run with.
#[derive(Debug, Clone)]
pub struct Config {
    /// `pluginVersion` in TISJWT error bodies.
    pub plugin_version: String,
    /// `realm` of `WWW-Authenticate` challenges.
    pub realm: String,
    pub identity_headers: IdentityHeaders,
    /// The TISJWT provider, named `tisjwt` in rules.
    pub tisjwt: Option<TisjwtProvider>,
    /// Bearer JWT providers, by name, in configuration order.
    pub jwt_providers: Vec<JwtProvider>,
    /// Opaque-token providers checked by a callout (introspection, UserInfo).
    pub oauth_providers: Vec<OAuthProvider>,
    pub policy: Policy,
    pub directory: Directory,
    /// Deprecated fields this configuration sets, which do nothing now (the shell logs a
    /// warning for each, so that an operator's `max_failures` is not dropped silently).
    pub ignored: Vec<String>,
}

/// The name rules use for the TISJWT provider.
pub const TISJWT_PROVIDER: &str = "tisjwt";

/// Request headers the filter sets for the application; client-sent copies are always removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeaders {
    pub user: String,
    pub tenant: String,
}

/// A configuration error: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid configuration: field `{}`: {}",
            self.field, self.problem
        )
    }
}

fn error(field: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.to_owned(),
        problem: problem.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_plugin_version")]
    plugin_version: String,
    #[serde(default = "default_realm")]
    realm: String,
    #[serde(default)]
    identity_headers: RawIdentityHeaders,
    tisjwt: Option<RawTisjwt>,
    #[serde(default)]
    jwt_providers: std::collections::BTreeMap<String, RawJwtProvider>,
    #[serde(default)]
    oauth_providers: std::collections::BTreeMap<String, RawOAuthProvider>,
    #[serde(default)]
    api_token_providers: std::collections::BTreeMap<String, RawApiTokenProvider>,
    rules: Option<Vec<RawRule>>,
    #[serde(default)]
    directory: RawDirectory,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJwtProvider {
    issuer: Option<String>,
    audiences: Option<Vec<String>>,
    algorithms: Option<Vec<String>>,
    local_jwks: Option<serde_json::Value>,
    pem: Option<String>,
    hmac_secret: Option<String>,
    hmac_secret_base64url: Option<String>,
    remote_jwks: Option<RawRemoteJwks>,
    #[serde(default = "default_clock_skew")]
    clock_skew_seconds: u32,
    #[serde(default)]
    require_exp: bool,
    max_lifetime_seconds: Option<u32>,
    #[serde(default = "default_user_claim")]
    user_claim: String,
    #[serde(default)]
    claims_to_headers: Vec<RawClaimHeader>,
    #[serde(default)]
    forward_token: bool,
    #[serde(default = "default_token_cache_ttl")]
    cache_ttl_seconds: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOAuthProvider {
    introspection: Option<RawIntrospection>,
    userinfo: Option<RawEndpoint>,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    user_field: Option<String>,
    #[serde(default)]
    service_accounts: BTreeMap<String, String>,
    #[serde(default = "default_token_cache_ttl")]
    cache_ttl_seconds: u32,
    #[serde(default = "default_oauth_negative_ttl")]
    negative_cache_ttl_seconds: u32,
    audiences: Option<Vec<String>>,
    #[serde(default)]
    jwt_issuers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntrospection {
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
struct RawEndpoint {
    cluster: String,
    path: String,
    authority: Option<String>,
}

fn default_client_auth() -> String {
    "basic".to_owned()
}
fn default_oauth_negative_ttl() -> u32 {
    10
}

impl RawOAuthProvider {
    fn compile(self, name: String) -> Result<OAuthProvider, ConfigError> {
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
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApiTokenProvider {
    introspection: RawIntrospection,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default = "default_api_token_ttl")]
    cache_ttl_seconds: u32,
    #[serde(default = "default_oauth_negative_ttl")]
    negative_cache_ttl_seconds: u32,
    #[serde(default)]
    lockout: RawLockout,
    /// Deprecated, ignored: the token service honours its own reset (issue 11).
    #[serde(default)]
    reset_path_prefix: Option<String>,
    #[serde(default = "default_locked_ttl")]
    locked_cache_ttl_seconds: u32,
}

/// Of the lockout, only `login_url` is still read (when the token service's "locked" answer
/// has none); the counter and its rule are the token service's, so `max_failures` and
/// `window_seconds` are accepted and ignored (deprecated), for configurations written before.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLockout {
    #[serde(default)]
    max_failures: Option<u32>,
    #[serde(default)]
    window_seconds: Option<u32>,
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
    fn compile(self, name: String) -> Result<OAuthProvider, ConfigError> {
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
        let mut provider = as_oauth.compile(name.clone()).map_err(|e| ConfigError {
            field: e.field.replacen("oauth_providers", "api_token_providers", 1),
            problem: e.problem,
        })?;
        provider.api_tokens = Some(settings);
        Ok(provider)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRemoteJwks {
    cluster: String,
    path: String,
    authority: Option<String>,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default = "default_refresh_interval")]
    refresh_interval_seconds: u32,
    #[serde(default = "default_initial_backoff_ms")]
    initial_backoff_ms: u64,
    #[serde(default = "default_unknown_kid_gap")]
    unknown_kid_refetch_gap_seconds: u32,
    #[serde(default = "default_wait_ms")]
    wait_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaimHeader {
    claim: String,
    header: String,
}

fn default_user_claim() -> String {
    "sub".to_owned()
}
fn default_token_cache_ttl() -> u32 {
    300
}
fn default_refresh_interval() -> u32 {
    300
}
fn default_initial_backoff_ms() -> u64 {
    1000
}
fn default_unknown_kid_gap() -> u32 {
    30
}
fn default_wait_ms() -> u64 {
    3000
}

impl RawJwtProvider {
    fn compile(self, name: String) -> Result<JwtProvider, ConfigError> {
        let field = |f: &str| format!("jwt_providers.{name}.{f}");
        if name.is_empty() || name == TISJWT_PROVIDER {
            return Err(error(
                "jwt_providers",
                format!("`{name}` cannot name a JWT provider"),
            ));
        }
        let keys = self.key_source(&field)?;
        let algorithms = self.algorithms(&keys, &field)?;
        if algorithms.is_empty() {
            return Err(error(&field("algorithms"), "must name at least one algorithm"));
        }
        if self.audiences.as_ref().is_some_and(Vec::is_empty) {
            return Err(error(
                &field("audiences"),
                "must not be empty (omit it to skip the audience check)",
            ));
        }
        if self.clock_skew_seconds > MAX_CLOCK_SKEW_SECONDS {
            return Err(error(
                &field("clock_skew_seconds"),
                format!("must be at most {MAX_CLOCK_SKEW_SECONDS}"),
            ));
        }
        if self.user_claim.is_empty() {
            return Err(error(&field("user_claim"), "must name a claim"));
        }
        let claim_headers = self
            .claims_to_headers
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let header = header_name(&field(&format!("claims_to_headers[{i}].header")), c.header)?;
                Ok(ClaimHeader {
                    claim: c.claim,
                    header,
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        Ok(JwtProvider {
            issuer: self.issuer.clone(),
            algorithms,
            keys,
            rules: ClaimRules {
                issuer: self.issuer,
                audiences: self.audiences,
                clock_skew_seconds: i64::from(self.clock_skew_seconds),
                require_exp: self.require_exp,
            },
            max_lifetime_seconds: self.max_lifetime_seconds.map(i64::from),
            user_claim: self.user_claim,
            claim_headers,
            forward_token: self.forward_token,
            cache_ttl_seconds: i64::from(self.cache_ttl_seconds),
            name,
        })
    }

    /// The accepted algorithms: the configured list, or by default every asymmetric one (not
    /// for an HMAC secret) and every HS* a key of a static set may check (an HMAC secret long
    /// enough for it, an `oct` key of `local_jwks` bound to it). A listed algorithm no key
    /// source of this kind could check is an error, so HS* is never accepted on public keys
    /// or a remote JWKS, and RS*/PS*/ES*/EdDSA/Ed25519 never on an HMAC secret.
    fn algorithms(
        &self,
        keys: &KeySource,
        field: &dyn Fn(&str) -> String,
    ) -> Result<Vec<Algorithm>, ConfigError> {
        let hmac_only = self.hmac_secret.is_some() || self.hmac_secret_base64url.is_some();
        let checkable = |alg: Algorithm| match keys {
            KeySource::Static(set) if alg.key_kind() == KeyKind::Hmac => set.can_check(alg),
            _ => !hmac_only && alg.key_kind() != KeyKind::Hmac,
        };
        let Some(names) = &self.algorithms else {
            return Ok(Algorithm::ALL.into_iter().filter(|alg| checkable(*alg)).collect());
        };
        let field = field("algorithms");
        let algorithms = names
            .iter()
            .map(|name| {
                let alg = Algorithm::from_name(name).ok_or_else(|| match name.as_str() {
                    "Ed448" => error(&field, "`Ed448` is not supported (Ed25519 is: `Ed25519` or `EdDSA`)"),
                    _ => error(&field, format!("`{name}` is not a supported signature algorithm")),
                })?;
                if checkable(alg) {
                    return Ok(alg);
                }
                let why = match (alg.key_kind(), keys) {
                    (KeyKind::Hmac, KeySource::Static(_)) if hmac_only => {
                        let min = alg.min_hmac_secret_bytes().unwrap_or_default();
                        format!("`{name}` needs an HMAC secret of at least {min} bytes (RFC 7518 section 3.2)")
                    }
                    (KeyKind::Hmac, KeySource::Static(_)) if self.local_jwks.is_some() => {
                        format!("`{name}` needs an `oct` key with `\"alg\": \"{name}\"` in local_jwks")
                    }
                    (KeyKind::Hmac, _) => format!(
                        "`{name}` cannot be verified with public keys (HS* needs hmac_secret, \
                         hmac_secret_base64url or `oct` keys in local_jwks; a remote JWKS never supplies them)"
                    ),
                    _ => format!("`{name}` cannot be verified with an HMAC secret"),
                };
                Err(error(&field, why))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(algorithms)
    }

    /// Exactly one of `local_jwks`, `pem`, `hmac_secret`, `hmac_secret_base64url`, `remote_jwks`.
    fn key_source(&self, field: &dyn Fn(&str) -> String) -> Result<KeySource, ConfigError> {
        let sources = [
            self.local_jwks.is_some(),
            self.pem.is_some(),
            self.hmac_secret.is_some(),
            self.hmac_secret_base64url.is_some(),
            self.remote_jwks.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err(error(
                &field("keys"),
                "give exactly one of local_jwks, pem, hmac_secret, hmac_secret_base64url, remote_jwks",
            ));
        }
        let loaded = |f: &str, keys: Result<KeySet, crate::jwk::KeyError>| {
            keys.map(|k| KeySource::Static(Rc::new(k))).map_err(|e| match e {
                // A broken `oct` key: name it, `local_jwks.keys[2]`.
                KeyError::InKey { index, .. } => error(&field(&format!("{f}.keys[{index}]")), e.to_string()),
                e => error(&field(f), e.to_string()),
            })
        };
        if let Some(jwks) = &self.local_jwks {
            // Inline keys are the operator's own, so `oct` (HMAC) JWKs are allowed here.
            return loaded(
                "local_jwks",
                KeySet::from_jwks_with(jwks.to_string().as_bytes(), SymmetricKeys::Allow),
            );
        }
        if let Some(pem) = &self.pem {
            return loaded("pem", KeySet::from_pem(pem));
        }
        let secret = match (&self.hmac_secret, &self.hmac_secret_base64url) {
            (Some(text), _) => Some(("hmac_secret", text.clone().into_bytes())),
            // RFC 4648 section 5, the alphabet of JWK `k`; padding optional. Never echoed.
            (None, Some(encoded)) => Some((
                "hmac_secret_base64url",
                SECRET_BASE64URL.decode(encoded).map_err(|_| {
                    error(
                        &field("hmac_secret_base64url"),
                        "is not base64url (RFC 4648 section 5)",
                    )
                })?,
            )),
            (None, None) => None,
        };
        if let Some((name, secret)) = secret {
            if secret.len() < MIN_SECRET_BYTES {
                return Err(error(
                    &field(name),
                    format!("must be at least {MIN_SECRET_BYTES} bytes"),
                ));
            }
            return loaded(name, KeySet::from_hmac_secret(secret));
        }
        match &self.remote_jwks {
            Some(remote) => remote.compile(&|f| field(&format!("remote_jwks.{f}"))),
            None => Err(error(&field("keys"), "no key source")),
        }
    }
}

impl RawRemoteJwks {
    fn compile(&self, field: &dyn Fn(&str) -> String) -> Result<KeySource, ConfigError> {
        if self.cluster.is_empty() {
            return Err(error(&field("cluster"), "must name an Envoy cluster"));
        }
        if !self.path.starts_with('/') {
            return Err(error(&field("path"), "must start with `/`"));
        }
        if self.refresh_interval_seconds == 0 {
            return Err(error(&field("refresh_interval_seconds"), "must be at least 1"));
        }
        Ok(KeySource::Remote(RemoteJwks {
            cluster: self.cluster.clone(),
            authority: self.authority.clone().unwrap_or_else(|| self.cluster.clone()),
            path: self.path.clone(),
            timeout_ms: self.timeout_ms.clamp(1, 60_000),
            refresh: RefreshPolicy {
                interval_ms: u64::from(self.refresh_interval_seconds) * 1000,
                initial_backoff_ms: self.initial_backoff_ms.max(1),
                unknown_kid_gap_ms: u64::from(self.unknown_kid_refetch_gap_seconds) * 1000,
            },
            wait_ms: self.wait_ms.min(60_000),
        }))
    }
}

/// `jwt_providers` keys: `oct` keys, binary HMAC secrets, Ed25519.
#[cfg(test)]
mod jwt_provider_key_tests {
    use super::*;

    const HS: [Algorithm; 3] = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

    fn provider(fields: serde_json::Value) -> Result<JwtProvider, ConfigError> {
        let json = serde_json::json!({ "jwt_providers": { "p": fields } });
        Config::from_json(json.to_string().as_bytes()).map(|mut c| c.jwt_providers.remove(0))
    }

    fn provider_error(fields: serde_json::Value) -> ConfigError {
        provider(fields).unwrap_err()
    }

    fn oct(alg: &str, bytes: usize) -> serde_json::Value {
        let k = URL_SAFE_NO_PAD.encode(vec![9_u8; bytes]);
        serde_json::json!({"kty": "oct", "kid": alg, "alg": alg, "k": k})
    }

    fn asymmetric() -> Vec<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .filter(|alg| alg.key_kind() != KeyKind::Hmac)
            .collect()
    }

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    #[test]
    fn the_default_algorithms_add_the_hs_algorithms_the_oct_keys_of_local_jwks_name() {
        let rsa = crate::jwk::tests::TestKeys::issuer().jwk(Algorithm::RS256, "r");
        let with = |keys: serde_json::Value| {
            provider(json!({"local_jwks": {"keys": keys}}))
                .unwrap()
                .algorithms
        };
        assert_eq!(with(json!([rsa.clone()])), asymmetric());
        let mut expected = asymmetric();
        expected.push(Algorithm::HS256);
        assert_eq!(with(json!([rsa, oct("HS256", 32)])), expected);
        let mut expected = asymmetric();
        expected.extend([Algorithm::HS384, Algorithm::HS512]);
        assert_eq!(with(json!([oct("HS512", 64), oct("HS384", 48)])), expected);
        assert!(asymmetric().contains(&Algorithm::Ed25519) && asymmetric().contains(&Algorithm::EdDSA));
    }

    #[test]
    fn the_default_algorithms_of_an_hmac_secret_are_those_it_is_long_enough_for() {
        for (bytes, expected) in [(32, &HS[..1]), (48, &HS[..2]), (64, &HS[..]), (100, &HS[..])] {
            let text = "s".repeat(bytes);
            assert_eq!(
                provider(json!({"hmac_secret": text})).unwrap().algorithms,
                expected,
                "{bytes}"
            );
            let binary = URL_SAFE_NO_PAD.encode(vec![0xff_u8; bytes]);
            let p = provider(json!({"hmac_secret_base64url": binary})).unwrap();
            assert_eq!(p.algorithms, expected, "{bytes}");
        }
    }

    #[test]
    fn listed_algorithms_must_be_ones_the_key_source_can_check() {
        let ed = crate::jwk::tests::TestKeys::issuer().jwk(Algorithm::EdDSA, "ed");
        let jwks = json!({"keys": [ed, oct("HS256", 32)]});
        let pem = crate::jwk::tests::p256_public_pem();
        let remote = json!({"cluster": "idp", "path": "/jwks"});
        let secret = "s".repeat(32);
        let ok = [
            json!({"local_jwks": jwks, "algorithms": ["HS256", "Ed25519", "EdDSA"]}),
            json!({"pem": pem, "algorithms": ["Ed25519", "ES256"]}),
            json!({"remote_jwks": remote, "algorithms": ["Ed25519"]}),
            json!({"hmac_secret": secret, "algorithms": ["HS256"]}),
        ];
        for fields in ok {
            assert!(provider(fields.clone()).is_ok(), "{fields}");
        }
        let refused = [
            (
                json!({"local_jwks": jwks, "algorithms": ["HS384"]}),
                "needs an `oct` key with `\"alg\": \"HS384\"`",
            ),
            (
                json!({"pem": pem, "algorithms": ["HS256"]}),
                "cannot be verified with public keys",
            ),
            (
                json!({"remote_jwks": remote, "algorithms": ["HS256"]}),
                "a remote JWKS never supplies them",
            ),
            (
                json!({"hmac_secret": secret, "algorithms": ["HS512"]}),
                "at least 64 bytes",
            ),
            (
                json!({"hmac_secret": secret, "algorithms": ["RS256"]}),
                "cannot be verified with an HMAC secret",
            ),
            (
                json!({"hmac_secret": secret, "algorithms": ["Ed25519"]}),
                "cannot be verified with an HMAC secret",
            ),
            (
                json!({"pem": pem, "algorithms": ["Ed448"]}),
                "`Ed448` is not supported",
            ),
            (
                json!({"pem": pem, "algorithms": ["none"]}),
                "`none` is not a supported signature algorithm",
            ),
            (
                json!({"pem": pem, "algorithms": ["ed25519"]}),
                "`ed25519` is not a supported",
            ),
            (
                json!({"pem": pem, "algorithms": []}),
                "must name at least one algorithm",
            ),
        ];
        for (fields, problem) in refused {
            let e = provider_error(fields.clone());
            assert_eq!(e.field, "jwt_providers.p.algorithms", "{fields}");
            assert!(e.problem.contains(problem), "{fields}: {}", e.problem);
        }
    }

    #[test]
    fn every_key_configuration_error_names_its_field() {
        let short = URL_SAFE_NO_PAD.encode([1_u8; 31]);
        let rsa = crate::jwk::tests::TestKeys::issuer().jwk(Algorithm::RS256, "r");
        let mut no_alg = oct("HS256", 32);
        no_alg.as_object_mut().unwrap().remove("alg");
        let cases = [
            (
                json!({"hmac_secret_base64url": "not base64url!"}),
                "jwt_providers.p.hmac_secret_base64url",
                "is not base64url",
            ),
            (
                json!({"hmac_secret_base64url": "a+b/"}),
                "jwt_providers.p.hmac_secret_base64url",
                "is not base64url",
            ),
            (
                json!({"hmac_secret_base64url": short}),
                "jwt_providers.p.hmac_secret_base64url",
                "at least 32 bytes",
            ),
            (
                json!({"hmac_secret": "short"}),
                "jwt_providers.p.hmac_secret",
                "at least 32 bytes",
            ),
            (
                json!({"hmac_secret": "s".repeat(32), "hmac_secret_base64url": URL_SAFE_NO_PAD.encode([1_u8; 32])}),
                "jwt_providers.p.keys",
                "exactly one of",
            ),
            (
                json!({"hmac_secret_base64url": 5}),
                "jwt_providers.p.hmac_secret_base64url",
                "expected a string",
            ),
            (
                json!({"hmac_secret_base64": "x"}),
                "jwt_providers.p.hmac_secret_base64",
                "unknown field",
            ),
            (
                json!({"local_jwks": {"keys": [rsa, no_alg]}}),
                "jwt_providers.p.local_jwks.keys[1]",
                "must name its `alg`",
            ),
            (
                json!({"local_jwks": {"keys": [oct("HS384", 47)]}}),
                "jwt_providers.p.local_jwks.keys[0]",
                "`k` has 47 bytes; HS384 needs at least 48",
            ),
            (
                json!({"local_jwks": {"keys": [oct("RS256", 64)]}}),
                "jwt_providers.p.local_jwks.keys[0]",
                "`RS256` cannot be used with this key type",
            ),
            (
                json!({"local_jwks": {"keys": [{"kty": "OKP", "crv": "Ed448", "x": "AA"}]}}),
                "jwt_providers.p.local_jwks",
                "unsupported curve `Ed448`",
            ),
        ];
        for (fields, field, problem) in cases {
            let e = provider_error(fields.clone());
            assert_eq!(e.field, field, "{fields}");
            assert!(e.problem.contains(problem), "{fields}: {}", e.problem);
        }
    }

    #[test]
    fn no_secret_appears_in_a_key_configuration_error() {
        let secret = "Zm9yZ2V0LW1lLW5vdC10aGlzLWlzLXNlY3JldA";
        for fields in [
            json!({"hmac_secret_base64url": format!("{secret}!")}),
            json!({"hmac_secret_base64url": "c2VjcmV0"}),
            json!({"local_jwks": {"keys": [{"kty": "oct", "kid": "h", "k": secret}]}}),
            json!({"local_jwks": {"keys": [{"kty": "oct", "kid": "h", "alg": "HS512", "k": secret}]}}),
        ] {
            let e = provider_error(fields.clone());
            assert!(
                !e.to_string().contains(secret) && !e.to_string().contains("c2VjcmV0"),
                "{e}"
            );
        }
    }

    #[test]
    fn the_rfc_7515_a1_binary_key_verifies_its_example_through_a_configured_provider() {
        use crate::jwt::tests::{RFC7515_A1_KEY, RFC7515_A1_TOKEN};
        use crate::jwt::{JwtError, UntrustedJwt};
        let jwt = UntrustedJwt::parse(RFC7515_A1_TOKEN).unwrap();
        // Its claims have no `sub`; `iss` ("joe") names the user here.
        let common = json!({"issuer": "joe", "user_claim": "iss", "clock_skew_seconds": 0});
        let mut binary = common.clone();
        binary["hmac_secret_base64url"] = json!(RFC7515_A1_KEY);
        let mut jwks = common;
        jwks["local_jwks"] = json!({"keys": [{"kty": "oct", "alg": "HS256", "k": RFC7515_A1_KEY}]});
        for fields in [binary, jwks] {
            let p = provider(fields).unwrap();
            let KeySource::Static(keys) = &p.keys else {
                panic!("static keys")
            };
            let host = crate::hostcrypto::ModuleOnly;
            let identity = p.verify(&jwt, keys, 1_300_819_379, &host).unwrap();
            assert_eq!(
                (identity.user.as_str(), identity.expires_at),
                ("joe", Some(1_300_819_380))
            );
            assert_eq!(
                p.verify(&jwt, keys, 1_300_819_380, &host).err(),
                Some(JwtError::Expired)
            );
        }
        // Padding is optional; the standard alphabet's `+` and `/` are not base64url.
        let padded = format!("{RFC7515_A1_KEY}==");
        assert!(provider(json!({"hmac_secret_base64url": padded})).is_ok());
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    path_prefix: String,
    methods: Option<Vec<String>>,
    providers: Vec<String>,
    #[serde(default)]
    allow_anonymous: bool,
    #[serde(default)]
    scopes: Vec<String>,
    basic_passwords: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentityHeaders {
    #[serde(default = "default_user_header")]
    user: String,
    #[serde(default = "default_tenant_header")]
    tenant: String,
}

impl Default for RawIdentityHeaders {
    fn default() -> Self {
        Self {
            user: default_user_header(),
            tenant: default_tenant_header(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTisjwt {
    secret: String,
    #[serde(default = "default_algorithms")]
    algorithms: Vec<String>,
    issuer: Option<String>,
    audiences: Option<Vec<String>>,
    #[serde(default = "default_clock_skew")]
    clock_skew_seconds: u32,
    #[serde(default = "yes")]
    require_exp: bool,
    #[serde(default = "yes")]
    allow_query_parameter: bool,
    licenses: Option<Vec<RawLicense>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLicense {
    client_key: String,
    valid_until: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDirectory {
    #[serde(default)]
    inactive_users: Vec<String>,
    users: Option<Vec<RawUser>>,
    callout: Option<RawDirectoryCallout>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: String,
    email: Option<String>,
    #[serde(default = "yes")]
    active: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirectoryCallout {
    cluster: String,
    authority: Option<String>,
    #[serde(default = "default_directory_path")]
    path: String,
    authorization: Option<String>,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default = "default_directory_ttl")]
    cache_ttl_seconds: u32,
    #[serde(default = "default_negative_ttl")]
    negative_cache_ttl_seconds: u32,
}

fn default_directory_path() -> String {
    "/rest/api/2/user?username={user}".to_owned()
}
fn default_timeout_ms() -> u64 {
    1000
}
fn default_directory_ttl() -> u32 {
    300
}
fn default_negative_ttl() -> u32 {
    30
}

fn default_plugin_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}
fn default_realm() -> String {
    "tokengate".to_owned()
}
fn default_user_header() -> String {
    "x-tokengate-user".to_owned()
}
fn default_tenant_header() -> String {
    "x-tokengate-tenant".to_owned()
}
fn default_algorithms() -> Vec<String> {
    vec!["HS256".to_owned()]
}
fn default_clock_skew() -> u32 {
    60
}
fn yes() -> bool {
    true
}

/// Longest clock skew accepted: more than a day would make `exp` meaningless.
const MAX_CLOCK_SKEW_SECONDS: u32 = 86_400;

impl Config {
    /// A configuration under which no request passes: no provider, no rule. Used only if the
    /// host asks for a filter before a configuration was accepted.
    pub fn refuse_everything() -> Self {
        Config {
            plugin_version: default_plugin_version(),
            realm: default_realm(),
            identity_headers: IdentityHeaders {
                user: default_user_header(),
                tenant: default_tenant_header(),
            },
            tisjwt: None,
            jwt_providers: Vec::new(),
            oauth_providers: Vec::new(),
            policy: Policy::default(),
            directory: Directory::default(),
            ignored: Vec::new(),
        }
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
        let raw: RawConfig = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            // `?`: a syntax error before the first key (serde_path_to_error knows no field yet).
            let at_root = path == "." || path == "?";
            error(if at_root { "(root)" } else { &path }, e.inner().to_string())
        })?;
        raw.compile()
    }
}

impl RawConfig {
    fn compile(self) -> Result<Config, ConfigError> {
        if !self
            .realm
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ')
        {
            return Err(error(
                "realm",
                "must be printable ASCII without quotes or backslashes",
            ));
        }
        if self.plugin_version.chars().any(char::is_control) {
            return Err(error("plugin_version", "must not contain control characters"));
        }
        let identity_headers = IdentityHeaders {
            user: header_name("identity_headers.user", self.identity_headers.user)?,
            tenant: header_name("identity_headers.tenant", self.identity_headers.tenant)?,
        };
        if identity_headers.user == identity_headers.tenant {
            return Err(error(
                "identity_headers.tenant",
                "must differ from identity_headers.user",
            ));
        }
        let tisjwt = self.tisjwt.map(RawTisjwt::compile).transpose()?;
        let ignored = self
            .api_token_providers
            .iter()
            .flat_map(|(name, raw)| {
                [
                    (raw.lockout.max_failures.is_some(), "lockout.max_failures"),
                    (raw.lockout.window_seconds.is_some(), "lockout.window_seconds"),
                    (raw.reset_path_prefix.is_some(), "reset_path_prefix"),
                ]
                .into_iter()
                .filter(|(set, _)| *set)
                .map(move |(_, field)| format!("api_token_providers.{name}.{field}"))
            })
            .collect();
        let jwt_providers = self
            .jwt_providers
            .into_iter()
            .map(|(name, raw)| raw.compile(name))
            .collect::<Result<Vec<_>, _>>()?;
        let api_token_providers = self
            .api_token_providers
            .into_iter()
            .map(|(name, raw)| raw.compile(name));
        let oauth_providers = self
            .oauth_providers
            .into_iter()
            .map(|(name, raw)| raw.compile(name))
            .chain(api_token_providers)
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(twice) = oauth_providers
            .iter()
            .enumerate()
            .find_map(|(i, p)| oauth_providers.iter().skip(i + 1).find(|q| q.name == p.name))
        {
            return Err(error(
                "api_token_providers",
                format!("`{}` is also an oauth provider's name", twice.name),
            ));
        }
        let providers: Vec<&str> = tisjwt
            .iter()
            .map(|_| TISJWT_PROVIDER)
            .chain(jwt_providers.iter().map(|p| p.name.as_str()))
            .chain(oauth_providers.iter().map(|p| p.name.as_str()))
            .collect();
        if providers.is_empty() {
            return Err(error(
                "tisjwt",
                "at least one provider (tisjwt, jwt_providers, oauth_providers) must be configured",
            ));
        }
        if let Some(twice) = oauth_providers
            .iter()
            .find(|o| jwt_providers.iter().any(|j| j.name == o.name))
        {
            return Err(error(
                "oauth_providers",
                format!("`{}` is also the name of a JWT provider", twice.name),
            ));
        }
        let claim_headers = jwt_providers
            .iter()
            .flat_map(|p| p.claim_headers.iter().map(|c| c.header.as_str()));
        let identity_names = [identity_headers.user.as_str(), identity_headers.tenant.as_str()];
        if let Some(clash) = claim_headers.clone().find(|h| identity_names.contains(h)) {
            return Err(error(
                "jwt_providers",
                format!("claim header `{clash}` is also an identity header"),
            ));
        }
        Ok(Config {
            plugin_version: self.plugin_version,
            realm: self.realm,
            identity_headers,
            policy: compile_rules(self.rules, &providers)?,
            tisjwt,
            jwt_providers,
            oauth_providers,
            directory: self.directory.compile()?,
            ignored,
        })
    }
}

/// Without `rules`, one rule: every path, every configured provider, no anonymous access.
fn compile_rules(raw: Option<Vec<RawRule>>, providers: &[&str]) -> Result<Policy, ConfigError> {
    let Some(raw) = raw else {
        let everything = Rule {
            path_prefix: "/".to_owned(),
            methods: None,
            providers: providers.iter().map(|p| (*p).to_owned()).collect(),
            allow_anonymous: false,
            scopes: Vec::new(),
            basic_passwords: BasicPasswords::Refuse,
        };
        return Ok(Policy {
            rules: vec![everything],
        });
    };
    let rules = raw
        .into_iter()
        .enumerate()
        .map(|(i, rule)| compile_rule(i, rule, providers))
        .collect::<Result<_, _>>()?;
    Ok(Policy { rules })
}

fn compile_rule(i: usize, rule: RawRule, providers: &[&str]) -> Result<Rule, ConfigError> {
    let field = |name: &str| format!("rules[{i}].{name}");
    if !rule.path_prefix.starts_with('/') {
        return Err(error(&field("path_prefix"), "must start with `/`"));
    }
    if !crate::path::can_start_a_canonical_path(&rule.path_prefix) {
        return Err(error(
            &field("path_prefix"),
            "can never match: rules match the decoded path without `;` parameters, `//` or dot segments",
        ));
    }
    if rule.providers.is_empty() && !rule.allow_anonymous {
        return Err(error(
            &field("providers"),
            "must name a provider unless allow_anonymous is true",
        ));
    }
    if let Some(unknown) = rule.providers.iter().find(|p| !providers.contains(&p.as_str())) {
        return Err(error(
            &field("providers"),
            format!("`{unknown}` is not a configured provider"),
        ));
    }
    let methods = rule
        .methods
        .map(|methods| methods.iter().map(|m| m.to_ascii_uppercase()).collect());
    let basic_passwords = match rule.basic_passwords.as_deref() {
        None | Some("refuse") => BasicPasswords::Refuse,
        Some("pass") => BasicPasswords::Pass,
        Some(other) => {
            return Err(error(
                &field("basic_passwords"),
                format!("`{other}` is not `refuse` or `pass`"),
            ))
        }
    };
    Ok(Rule {
        path_prefix: rule.path_prefix,
        methods,
        providers: rule.providers,
        allow_anonymous: rule.allow_anonymous,
        scopes: rule.scopes,
        basic_passwords,
    })
}

impl RawDirectory {
    fn compile(self) -> Result<Directory, ConfigError> {
        let Some(callout) = self.callout else {
            let users = self.users.map(|users| {
                users
                    .into_iter()
                    .map(|u| StaticUser {
                        name: u.name,
                        email: u.email,
                        active: u.active,
                    })
                    .collect()
            });
            return Ok(Directory::static_lists(users, self.inactive_users));
        };
        if self.users.is_some() || !self.inactive_users.is_empty() {
            return Err(error(
                "directory.callout",
                "cannot be combined with directory.users or inactive_users",
            ));
        }
        if !callout.path.starts_with('/') || !callout.path.contains("{user}") {
            return Err(error(
                "directory.callout.path",
                "must start with `/` and contain `{user}`",
            ));
        }
        if callout.cluster.is_empty() {
            return Err(error("directory.callout.cluster", "must name an Envoy cluster"));
        }
        Ok(Directory::Callout(DirectoryCallout {
            authority: callout.authority.unwrap_or_else(|| callout.cluster.clone()),
            cluster: callout.cluster,
            path_template: callout.path,
            authorization: callout.authorization,
            timeout_ms: callout.timeout_ms.clamp(1, 60_000),
            cache_ttl_seconds: i64::from(callout.cache_ttl_seconds),
            negative_cache_ttl_seconds: i64::from(callout.negative_cache_ttl_seconds),
        }))
    }
}

impl RawTisjwt {
    fn compile(self) -> Result<TisjwtProvider, ConfigError> {
        if self.secret.len() < MIN_SECRET_BYTES {
            return Err(error(
                "tisjwt.secret",
                format!("must be at least {MIN_SECRET_BYTES} bytes"),
            ));
        }
        if self.algorithms.is_empty() {
            return Err(error("tisjwt.algorithms", "must name at least one algorithm"));
        }
        let algorithms = self
            .algorithms
            .iter()
            .map(|name| match Algorithm::from_name(name) {
                Some(alg @ (Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)) => {
                    // RFC 7518 section 3.2: the secret is at least as long as the hash output.
                    let needed = alg.min_hmac_secret_bytes().unwrap_or(MIN_SECRET_BYTES);
                    if self.secret.len() < needed {
                        return Err(error(
                            "tisjwt.algorithms",
                            format!("`{name}` needs a secret of at least {needed} bytes"),
                        ));
                    }
                    Ok(alg)
                }
                _ => Err(error(
                    "tisjwt.algorithms",
                    format!("`{name}` is not one of HS256, HS384, HS512"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.clock_skew_seconds > MAX_CLOCK_SKEW_SECONDS {
            return Err(error(
                "tisjwt.clock_skew_seconds",
                format!("must be at most {MAX_CLOCK_SKEW_SECONDS}"),
            ));
        }
        if self.audiences.as_ref().is_some_and(Vec::is_empty) {
            return Err(error(
                "tisjwt.audiences",
                "must not be empty (omit it to skip the audience check)",
            ));
        }
        let licenses = self.licenses.map(compile_licenses).transpose()?;
        Ok(TisjwtProvider {
            secret: HmacSecret::new(self.secret.into_bytes()),
            algorithms,
            rules: ClaimRules {
                issuer: self.issuer,
                audiences: self.audiences,
                clock_skew_seconds: i64::from(self.clock_skew_seconds),
                require_exp: self.require_exp,
            },
            allow_query_parameter: self.allow_query_parameter,
            licenses,
        })
    }
}

fn compile_licenses(raw: Vec<RawLicense>) -> Result<Vec<License>, ConfigError> {
    raw.into_iter()
        .enumerate()
        .map(|(i, license)| {
            let field = format!("tisjwt.licenses[{i}].valid_until");
            let valid_until = end_of_day(&license.valid_until).ok_or_else(|| {
                error(
                    &field,
                    format!("`{}` is not a date YYYY-MM-DD", license.valid_until),
                )
            })?;
            Ok(License {
                client_key: license.client_key,
                valid_until,
            })
        })
        .collect()
}

/// Header names the filter may set: lower-case RFC 9110 tokens, and never one that carries
/// routing or credentials.
fn header_name(field: &str, name: String) -> Result<String, ConfigError> {
    let is_token_char =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(is_token_char) {
        return Err(error(field, format!("`{name}` is not a lower-case header name")));
    }
    const RESERVED: [&str; 5] = [
        "authorization",
        "host",
        "cookie",
        "content-length",
        "transfer-encoding",
    ];
    if RESERVED.contains(&name.as_str()) {
        return Err(error(
            field,
            format!("`{name}` cannot be used as an identity header"),
        ));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn parse(json: &str) -> Result<Config, ConfigError> {
        Config::from_json(json.as_bytes())
    }

    fn field_of(json: &str) -> String {
        parse(json).unwrap_err().field
    }

    #[test]
    fn a_minimal_configuration_gets_the_documented_defaults() {
        let config = parse(&format!(r#"{{"tisjwt":{{"secret":"{SECRET}"}}}}"#)).unwrap();
        assert_eq!(config.identity_headers.user, "x-tokengate-user");
        assert_eq!(config.identity_headers.tenant, "x-tokengate-tenant");
        assert_eq!(config.realm, "tokengate");
        let tisjwt = config.tisjwt.unwrap();
        assert_eq!(tisjwt.algorithms, vec![Algorithm::HS256]);
        assert_eq!(tisjwt.rules.clock_skew_seconds, 60);
        assert!(tisjwt.rules.require_exp);
        assert!(tisjwt.allow_query_parameter);
        assert_eq!(tisjwt.licenses, None);
        assert_eq!(config.policy.rules.len(), 1);
        assert_eq!(config.policy.rules[0].providers, ["tisjwt"]);
    }

    #[test]
    fn unknown_fields_are_named() {
        assert_eq!(
            field_of(&format!(r#"{{"tisjwt":{{"secret":"{SECRET}","secrett":1}}}}"#)),
            "tisjwt.secrett"
        );
        let err = parse(&format!(r#"{{"tisjwt":{{"secret":"{SECRET}"}},"colour":1}}"#)).unwrap_err();
        assert!(err.problem.contains("unknown field `colour`"), "{err}");
    }

    #[test]
    fn invalid_values_are_named() {
        let cases = [
            (r#"{"tisjwt":{"secret":"short"}}"#.to_string(), "tisjwt.secret"),
            (
                format!(r#"{{"tisjwt":{{"secret":"{SECRET}","algorithms":["RS256"]}}}}"#),
                "tisjwt.algorithms",
            ),
            (
                format!(r#"{{"tisjwt":{{"secret":"{SECRET}","algorithms":["none"]}}}}"#),
                "tisjwt.algorithms",
            ),
            (
                format!(r#"{{"tisjwt":{{"secret":"{SECRET}","algorithms":[]}}}}"#),
                "tisjwt.algorithms",
            ),
            (
                format!(r#"{{"tisjwt":{{"secret":"{SECRET}","algorithms":["HS256","HS512"]}}}}"#),
                "tisjwt.algorithms",
            ),
            (
                format!(r#"{{"tisjwt":{{"secret":"{SECRET}","clock_skew_seconds":-1}}}}"#),
                "tisjwt.clock_skew_seconds",
            ),
            (
                format!(r#"{{"tisjwt":{{"secret":"{SECRET}","clock_skew_seconds":86401}}}}"#),
                "tisjwt.clock_skew_seconds",
            ),
            (
                format!(r#"{{"tisjwt":{{"secret":"{SECRET}","audiences":[]}}}}"#),
                "tisjwt.audiences",
            ),
            (
                format!(
                    r#"{{"tisjwt":{{"secret":"{SECRET}","licenses":[{{"client_key":"a","valid_until":"2027-02-30"}}]}}}}"#
                ),
                "tisjwt.licenses[0].valid_until",
            ),
            (
                format!(r#"{{"tisjwt":{{"secret":"{SECRET}"}},"identity_headers":{{"user":"X-User"}}}}"#),
                "identity_headers.user",
            ),
            (
                format!(
                    r#"{{"tisjwt":{{"secret":"{SECRET}"}},"identity_headers":{{"tenant":"authorization"}}}}"#
                ),
                "identity_headers.tenant",
            ),
            (
                format!(
                    r#"{{"tisjwt":{{"secret":"{SECRET}"}},"identity_headers":{{"user":"a","tenant":"a"}}}}"#
                ),
                "identity_headers.tenant",
            ),
            (
                format!(r#"{{"tisjwt":{{"secret":"{SECRET}"}},"realm":"a\"b"}}"#),
                "realm",
            ),
            (r#"{}"#.to_string(), "tisjwt"),
            (
                format!(
                    r#"{{"tisjwt":{{"secret":"{SECRET}"}},"rules":[{{"path_prefix":"/","providers":["x"]}}]}}"#
                ),
                "rules[0].providers",
            ),
            (
                format!(
                    r#"{{"tisjwt":{{"secret":"{SECRET}"}},"rules":[{{"path_prefix":"/","providers":[]}}]}}"#
                ),
                "rules[0].providers",
            ),
            (
                format!(
                    r#"{{"tisjwt":{{"secret":"{SECRET}"}},"rules":[{{"path_prefix":"x","providers":["tisjwt"]}}]}}"#
                ),
                "rules[0].path_prefix",
            ),
            (
                format!(
                    r#"{{"tisjwt":{{"secret":"{SECRET}"}},"rules":[{{"path_prefix":"/rest/api/%33/","providers":["tisjwt"]}}]}}"#
                ),
                "rules[0].path_prefix",
            ),
            (
                format!(
                    r#"{{"tisjwt":{{"secret":"{SECRET}"}},"directory":{{"callout":{{"cluster":"jira","path":"/u"}}}}}}"#
                ),
                "directory.callout.path",
            ),
            (
                format!(
                    r#"{{"tisjwt":{{"secret":"{SECRET}"}},"directory":{{"inactive_users":["a"],"callout":{{"cluster":"jira"}}}}}}"#
                ),
                "directory.callout",
            ),
        ];
        for (json, field) in cases {
            assert_eq!(field_of(&json), field, "{json}");
        }
    }

    #[test]
    fn the_fallback_configuration_has_no_rule_to_pass_by() {
        assert!(Config::refuse_everything()
            .policy
            .route("GET", &crate::path::canonical("/").unwrap())
            .is_none());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for junk in ["", "null", "[]", "{", "\u{0}", "{\"tisjwt\":null}"] {
            assert!(parse(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn licences_are_compiled_to_end_of_day() {
        let config = parse(&format!(
            r#"{{"tisjwt":{{"secret":"{SECRET}","licenses":[{{"client_key":"t","valid_until":"1970-01-01"}}]}}}}"#
        ))
        .unwrap();
        assert_eq!(
            config.tisjwt.unwrap().licenses,
            Some(vec![License {
                client_key: "t".into(),
                valid_until: 86_400
            }])
        );
    }

    #[test]
    fn oauth_providers_take_audiences_and_the_jwt_issuers_they_introspect() {
        let provider = |extra: &str| {
            format!(
                r#"{{"oauth_providers":{{"kc":{{"introspection":{{"cluster":"kc","path":"/i","client_id":"a","client_secret":"b"}}{extra}}}}}}}"#
            )
        };
        let config = parse(&provider(
            r#","audiences":["https://jira.example"],"jwt_issuers":["https://kc/realms/jira"]"#,
        ))
        .unwrap();
        assert_eq!(config.oauth_providers[0].audiences, ["https://jira.example"]);
        assert_eq!(config.oauth_providers[0].jwt_issuers, ["https://kc/realms/jira"]);
        let defaults = parse(&provider("")).unwrap();
        assert!(defaults.oauth_providers[0].audiences.is_empty());
        assert!(defaults.oauth_providers[0].jwt_issuers.is_empty());
        assert_eq!(
            field_of(&provider(r#","audiences":[]"#)),
            "oauth_providers.kc.audiences"
        );
        assert_eq!(
            field_of(&provider(r#","jwt_issuers":[""]"#)),
            "oauth_providers.kc.jwt_issuers"
        );
    }

    #[test]
    fn api_token_providers_keep_no_counter_and_accept_the_old_lockout_fields_as_no_ops() {
        let provider = |extra: &str| {
            format!(
                r#"{{"api_token_providers":{{"t":{{"introspection":{{"cluster":"t","path":"/i","client_id":"a","client_secret":"b"}}{extra}}}}}}}"#
            )
        };
        let defaults = parse(&provider("")).unwrap();
        let settings = defaults.oauth_providers[0].api_tokens.clone().unwrap();
        assert_eq!(settings.login_url, "/login.jsp");
        assert_eq!(settings.locked_cache_ttl_seconds, 5);
        assert_eq!(defaults.oauth_providers[0].cache_ttl_seconds, 10);
        let old = parse(&provider(
            r#","lockout":{"max_failures":0,"window_seconds":60,"login_url":"https://j/login.jsp"},"reset_path_prefix":"nope","locked_cache_ttl_seconds":100000"#,
        ))
        .unwrap();
        let settings = old.oauth_providers[0].api_tokens.clone().unwrap();
        assert_eq!(
            old.ignored,
            [
                "api_token_providers.t.lockout.max_failures",
                "api_token_providers.t.lockout.window_seconds",
                "api_token_providers.t.reset_path_prefix"
            ],
            "deprecated fields are named, to be logged"
        );
        assert!(defaults.ignored.is_empty());
        assert_eq!(settings.login_url, "https://j/login.jsp");
        assert_eq!(settings.locked_cache_ttl_seconds, 300, "at most 5 minutes");
        assert_eq!(
            field_of(&provider(r#","lockout":{"login_url":"a;b"}"#)),
            "api_token_providers.t.lockout.login_url"
        );
    }
}
