//! Stage 3, verify: Bearer JWT providers (seed 001), the counterpart of a `jwt_authn`
//! provider: issuer, audiences, algorithms, keys (inline, PEM, HMAC or a remote JWKS), claim
//! checks with clock skew, and which claims become headers for the application.

use serde_json::{Map, Value};

use crate::clock::UnixSeconds;
use std::rc::Rc;

use crate::jwk::KeySet;
use crate::jwks_cache::RefreshPolicy;
use crate::jwt::{check_claims, Algorithm, ClaimRules, JwtError, UntrustedJwt};
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
    ) -> Result<JwtIdentity, JwtError> {
        jwt.verify(keys, &self.algorithms)?;
        let claims = jwt.claims();
        check_claims(claims, &self.rules, now)?;
        self.check_lifetime(claims)?;
        let user = header_value(claims.get(&self.user_claim)).ok_or(JwtError::BadClaimType("user claim"))?;
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
