//! Stage 3, verify: Bearer JWT providers (seed 001), the counterpart of a `jwt_authn`
//! provider: issuer, audiences, algorithms, keys (inline, PEM, HMAC or a remote JWKS), claim
//! checks with clock skew, and which claims become headers for the application.

use serde_json::{Map, Value};

use crate::clock::UnixSeconds;
use std::rc::Rc;

use crate::cache::{CacheKey, SharedStore, SlotCache};
use crate::host::Env;
use crate::hostcrypto::SignatureHost;
use crate::jwk::KeySet;
use crate::jwks_cache::RefreshPolicy;
use crate::jwt::{check_claims, Algorithm, ClaimRules, JwtError, UntrustedJwt};
use crate::outcome::{Denial, DenyReason, Family, Refusal};
use crate::policy::granted_scopes;

/// Where a provider's verification keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Keys from the configuration: an inline JWKS, PEM public keys or an HMAC secret.
    Static(Rc<KeySet>),
    /// A JWKS fetched from an Envoy cluster by the root context and refreshed in the background.
    Remote(RemoteJwks),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJwks {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub timeout_ms: u64,
    pub refresh: RefreshPolicy,
    /// How long a request may wait for the first JWKS (or a refetch for an unknown `kid`).
    pub wait_ms: u64,
}

/// A claim forwarded to the application as a request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimHeader {
    pub claim: String,
    pub header: String,
}

#[derive(Debug, Clone)]
pub struct JwtProvider {
    pub name: String,
    pub issuer: Option<String>,
    pub algorithms: Vec<Algorithm>,
    pub keys: KeySource,
    pub rules: ClaimRules,
    /// Longest accepted `exp - iat`; tokens without both claims fail when set.
    pub max_lifetime_seconds: Option<i64>,
    /// The claim that names the user (`sub`, `preferred_username`, `email`, ...).
    pub user_claim: String,
    pub claim_headers: Vec<ClaimHeader>,
    /// Keep the `Authorization` header for the application (default: removed).
    pub forward_token: bool,
    /// Seconds a verified token is remembered (never past its `exp`); 0 disables the cache.
    pub cache_ttl_seconds: i64,
}

/// What a verified JWT says, as the rest of the pipeline needs it (and as the cache stores it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JwtIdentity {
    /// The provider that verified the token.
    pub provider: String,
    pub user: String,
    pub scopes: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub expires_at: Option<UnixSeconds>,
}

impl JwtProvider {
    /// Whether this provider should try `token`: its issuer is unset or equals the token's
    /// unverified `iss` (verification checks it again).
    pub fn may_accept(&self, unverified_issuer: Option<&str>) -> bool {
        self.issuer
            .as_deref()
            .is_none_or(|issuer| Some(issuer) == unverified_issuer)
    }

    /// Verifies `token` with `keys` at `now`.
    pub fn verify(
        &self,
        jwt: &UntrustedJwt<'_>,
        keys: &KeySet,
        now: UnixSeconds,
        host: &dyn SignatureHost,
    ) -> Result<JwtIdentity, JwtError> {
        jwt.verify_with(keys, &self.algorithms, host)?;
        let claims = jwt.claims();
        check_claims(claims, &self.rules, now)?;
        self.check_lifetime(claims)?;
        let user = header_value(claims.get(&self.user_claim)).ok_or(JwtError::BadClaimType("user claim"))?;
        if self.user_claim == "email" && crate::username::email_unverified(claims) {
            return Err(JwtError::BadClaimType("email_verified"));
        }
        Ok(JwtIdentity {
            provider: self.name.clone(),
            user,
            scopes: granted_scopes(claims),
            headers: self.forwarded_claims(claims),
            expires_at: claims
                .get("exp")
                .and_then(Value::as_f64)
                .map(|exp| exp.floor() as i64),
        })
    }

    fn check_lifetime(&self, claims: &Map<String, Value>) -> Result<(), JwtError> {
        let Some(max) = self.max_lifetime_seconds else {
            return Ok(());
        };
        let number = |name| claims.get(name).and_then(Value::as_f64);
        match (number("iat"), number("exp")) {
            (Some(iat), Some(exp)) if exp - iat <= max as f64 => Ok(()),
            _ => Err(JwtError::LifetimeTooLong),
        }
    }

    fn forwarded_claims(&self, claims: &Map<String, Value>) -> Vec<(String, String)> {
        self.claim_headers
            .iter()
            .filter_map(|ch| Some((ch.header.clone(), header_value(claims.get(&ch.claim))?)))
            .collect()
    }
}

// The verification flow of a route's JWT providers: the shared verified-token cache first,
// then the providers whose issuer matches.

/// Slots of the shared verified-token cache.
pub const TOKEN_CACHE_SLOTS: u32 = 32_768;

fn token_cache() -> SlotCache {
    SlotCache::new("jwt", TOKEN_CACHE_SLOTS)
}

pub(crate) fn invalid_bearer(error: JwtError) -> Refusal {
    let reason = match error {
        JwtError::Expired => DenyReason::ExpiredToken,
        other => DenyReason::InvalidToken(other),
    };
    Refusal::Deny(Denial::new(Family::OAuth, reason))
}

/// What the JWT providers of a route made of a Bearer token.
pub(crate) enum BearerJwt {
    Verified(JwtIdentity),
    /// Not a JWT, or no provider of the route for its issuer: a callout provider may know it.
    NotOurs(JwtError),
    Refused(Box<Refusal>),
}

/// Verifies a Bearer JWT with the route's providers: a cached verification first, then each
/// provider whose issuer matches the token's unverified `iss`, in rule order.
pub(crate) fn verify_bearer(
    providers: &[&JwtProvider],
    token: &str,
    env: &Env<'_>,
    now: UnixSeconds,
) -> BearerJwt {
    match verify_jwt(providers, token, env, now) {
        Ok(identity) => BearerJwt::Verified(identity),
        Err(refusal) => refusal,
    }
}

fn verify_jwt(
    providers: &[&JwtProvider],
    token: &str,
    env: &Env<'_>,
    now: UnixSeconds,
) -> Result<JwtIdentity, BearerJwt> {
    let cache = token_cache();
    // Providers with `cache_ttl_seconds: 0` neither read nor write the cache (nor hash for it).
    let key = providers
        .iter()
        .any(|p| p.cache_ttl_seconds > 0)
        .then(|| cache.key(token.as_bytes()));
    if let Some(hit) = key
        .and_then(|key| cache.get(env.store, &key, now))
        .and_then(|bytes| serde_json::from_slice::<JwtIdentity>(&bytes).ok())
        .filter(|hit| providers.iter().any(|p| p.name == hit.provider))
    {
        return Ok(hit);
    }
    // A token shaped like a compact JWS (it has dots) is JWT territory when the route has JWT
    // providers: a broken one is an invalid JWT, not something to send to a callout provider.
    let jwt = UntrustedJwt::parse(token).map_err(|e| match token.contains('.') && !providers.is_empty() {
        true => BearerJwt::Refused(Box::new(invalid_bearer(e))),
        false => BearerJwt::NotOurs(e),
    })?;
    let issuer = jwt.claims().get("iss").and_then(serde_json::Value::as_str);
    let candidates: Vec<&&JwtProvider> = providers.iter().filter(|p| p.may_accept(issuer)).collect();
    if candidates.is_empty() {
        return Err(BearerJwt::NotOurs(JwtError::WrongIssuer));
    }
    let mut first_error = JwtError::WrongIssuer;
    for (i, provider) in candidates.into_iter().enumerate() {
        let remote = matches!(provider.keys, KeySource::Remote(_));
        let keys = match &provider.keys {
            KeySource::Static(keys) => keys.clone(),
            KeySource::Remote(_) => match env.keyring.remote_keys(&provider.name) {
                Some(keys) => keys,
                None => {
                    let wait = Refusal::WaitForKeys {
                        provider: provider.name.clone(),
                        refetch: false,
                    };
                    return Err(BearerJwt::Refused(Box::new(wait)));
                }
            },
        };
        match provider.verify(&jwt, &keys, now, env.signatures) {
            Ok(identity) => {
                if let Some(key) = &key {
                    remember(&cache, env.store, key, &identity, provider.cache_ttl_seconds, now);
                }
                return Ok(identity);
            }
            Err(JwtError::NoMatchingKey) if remote && jwt.kid().is_some() => {
                let refetch = Refusal::WaitForKeys {
                    provider: provider.name.clone(),
                    refetch: true,
                };
                return Err(BearerJwt::Refused(Box::new(refetch)));
            }
            Err(e) if i == 0 => first_error = e,
            Err(_) => {}
        }
    }
    Err(BearerJwt::Refused(Box::new(invalid_bearer(first_error))))
}

/// Caches a verification for `ttl`, never past the token's own `exp`.
fn remember(
    cache: &SlotCache,
    store: &dyn SharedStore,
    key: &CacheKey,
    identity: &JwtIdentity,
    ttl: i64,
    now: UnixSeconds,
) {
    let until = identity.expires_at.map_or(now + ttl, |exp| exp.min(now + ttl));
    if ttl > 0 && until > now {
        if let Ok(bytes) = serde_json::to_vec(identity) {
            cache.insert(store, key, &bytes, until);
        }
    }
}

/// A claim as a header value: strings as they are, numbers and booleans printed, arrays of
/// those joined with `,`; `None` for objects, empty values and anything with a control
/// character (which could split or forge headers).
pub fn header_value(value: Option<&Value>) -> Option<String> {
    let text = match value? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Some(s.clone()),
                Value::Number(_) | Value::Bool(_) => Some(item.to_string()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?
            .join(","),
        _ => return None,
    };
    (!text.is_empty() && !text.chars().any(char::is_control)).then_some(text)
}
