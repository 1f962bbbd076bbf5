//! Stage 3, verify: Bearer JWT providers (seed 001), the counterpart of a `jwt_authn`
//! provider: issuer, audiences, algorithms, keys (inline, PEM, HMAC or a remote JWKS), claim
//! checks with clock skew, and which claims become headers for the application.

use serde_json::{Map, Value};

use crate::clock::UnixSeconds;
use std::rc::Rc;

use crate::cache::{CacheKey, Scope, SharedStore, SlotCache};
use crate::host::Env;
use crate::hostcrypto::SignatureHost;
use crate::jwk::KeySet;
use crate::jwks_cache::{Generation, RefreshPolicy};
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
    /// The digest of the section this provider was compiled from: its verified tokens are
    /// cached under it, so another configuration's `corp` never vouches for this one's.
    pub scope: Scope,
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
    // Each provider's verdicts are cached under its own scope; providers with
    // `cache_ttl_seconds: 0` neither read nor write the cache (nor hash for it).
    // A later provider's verdict is the route's only when no provider before it would try the
    // token (verification goes in rule order, and the first that accepts it names the user):
    // else the identity would depend on which route saw the token first.
    let first_to_try = |earlier: &[&JwtProvider]| {
        earlier.is_empty()
            || UntrustedJwt::parse(token).is_ok_and(|jwt| {
                let issuer = jwt.claims().get("iss").and_then(serde_json::Value::as_str);
                !earlier.iter().any(|p| p.may_accept(issuer))
            })
    };
    if let Some(hit) = providers.iter().enumerate().find_map(|(i, provider)| {
        let key = token_key(&cache, provider, token)?;
        serde_json::from_slice::<CachedVerification>(&cache.get(env.store, &key, now)?)
            .ok()
            .filter(|hit| hit.still_holds(provider, env))
            .filter(|_| first_to_try(providers.get(..i).unwrap_or_default()))
    }) {
        return Ok(hit.identity);
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
        let (keys, generation) = match &provider.keys {
            KeySource::Static(keys) => (keys.clone(), None),
            KeySource::Remote(_) => match env.keyring.remote_keys(&provider.name) {
                Some((keys, generation)) => (keys, Some(generation)),
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
                let verified = CachedVerification { identity, generation };
                if let Some(key) = token_key(&cache, provider, token) {
                    remember(
                        &cache,
                        env.store,
                        &key,
                        &verified,
                        provider.cache_ttl_seconds,
                        now,
                    );
                }
                return Ok(verified.identity);
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

/// A verified token as the cache keeps it: with the generation of the remote key set that
/// verified it (`None` for keys from the configuration).
#[derive(serde::Serialize, serde::Deserialize)]
struct CachedVerification {
    identity: JwtIdentity,
    generation: Option<Generation>,
}

impl CachedVerification {
    /// Whether the verdict still holds: it is `provider`'s, and a remote provider's keys are
    /// still of the generation that verified the token (a key removed from the JWKS then stops
    /// verifying everywhere, cached verdicts included).
    fn still_holds(&self, provider: &JwtProvider, env: &Env<'_>) -> bool {
        if self.identity.provider != provider.name {
            return false;
        }
        match &provider.keys {
            KeySource::Static(_) => self.generation.is_none(),
            KeySource::Remote(_) => env
                .keyring
                .remote_keys(&provider.name)
                .is_some_and(|(_, current)| self.generation == Some(current)),
        }
    }
}

/// Where `provider`'s verdict on `token` is cached: `None` when it caches nothing.
fn token_key(cache: &SlotCache, provider: &JwtProvider, token: &str) -> Option<CacheKey> {
    (provider.cache_ttl_seconds > 0).then(|| cache.key(&provider.scope, token.as_bytes()))
}

/// Caches a verification for `ttl`, never past the token's own `exp`.
fn remember(
    cache: &SlotCache,
    store: &dyn SharedStore,
    key: &CacheKey,
    verified: &CachedVerification,
    ttl: i64,
    now: UnixSeconds,
) {
    let until = verified
        .identity
        .expires_at
        .map_or(now + ttl, |exp| exp.min(now + ttl));
    if ttl > 0 && until > now {
        if let Ok(bytes) = serde_json::to_vec(verified) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::MapStore;
    use crate::config::Config;
    use crate::decide::{Keyring, NoCount};
    use crate::hostcrypto::ModuleOnly;
    use crate::jwk::tests::TestKeys;
    use crate::jwt::tests::{sign_raw, SECRET};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    const NOW: UnixSeconds = 1_700_000_000;
    const CORP: &str = r#"{"issuer": "https://corp", "hmac_secret": "a-demo-secret-that-is-32-bytes!!"}"#;
    const OTHER_SECRET: &str = "another-secret-of-at-least-32-bytes";
    const REMOTE: &str = r#"{"issuer": "https://remote", "algorithms": ["ES256"],
                             "remote_jwks": {"cluster": "idp", "path": "/jwks"}}"#;

    /// The JWT providers of `{"jwt_providers": {...}}`.
    fn providers(json: &str) -> Vec<JwtProvider> {
        let json = format!(r#"{{"jwt_providers": {json}}}"#);
        Config::from_json(json.as_bytes()).unwrap().jwt_providers
    }

    /// `{"iss": issuer, "sub": "fred", "exp": NOW + 600}`, HS256 with [`SECRET`].
    fn hs256(issuer: &str) -> String {
        let claims = format!(r#"{{"iss":"{issuer}","sub":"fred","exp":{}}}"#, NOW + 600);
        sign_raw(Algorithm::HS256, r#"{"alg":"HS256"}"#, &claims, SECRET)
    }

    /// `{"iss": "https://remote", "sub": "fred"}`, ES256 with the issuer's key, `kid` as given.
    fn es256(kid: &str) -> String {
        let encode = |text: &str| URL_SAFE_NO_PAD.encode(text);
        let header = format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#);
        let input = format!(
            "{}.{}",
            encode(&header),
            encode(r#"{"iss":"https://remote","sub":"fred"}"#)
        );
        let signature = TestKeys::issuer().sign(Algorithm::ES256, input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// The remote keys loaded so far: none, or the issuer's ES256 key as `k1`.
    struct Loaded(Option<Rc<KeySet>>);
    impl Keyring for Loaded {
        fn remote_keys(&self, _provider: &str) -> Option<(Rc<KeySet>, Generation)> {
            self.0.clone().map(|keys| (keys, 1))
        }
    }

    fn k1() -> Loaded {
        let jwks = serde_json::json!({"keys": [TestKeys::issuer().jwk(Algorithm::ES256, "k1")]});
        Loaded(Some(Rc::new(
            KeySet::from_jwks(jwks.to_string().as_bytes()).unwrap(),
        )))
    }

    /// What the route's providers made of `token`, in words a test can compare.
    #[derive(Debug, PartialEq)]
    enum Seen {
        Verified { provider: String, user: String },
        NotOurs(JwtError),
        Wait { refetch: bool },
        Denied(DenyReason),
        Other,
    }

    fn verify(providers: &[JwtProvider], token: &str, store: &MapStore, keys: &Loaded) -> Seen {
        let env = Env {
            keyring: keys,
            store,
            count: &NoCount,
            signatures: &ModuleOnly,
        };
        let route: Vec<&JwtProvider> = providers.iter().collect();
        match verify_bearer(&route, token, &env, NOW) {
            BearerJwt::Verified(identity) => Seen::Verified {
                provider: identity.provider,
                user: identity.user,
            },
            BearerJwt::NotOurs(error) => Seen::NotOurs(error),
            BearerJwt::Refused(refusal) => match *refusal {
                Refusal::WaitForKeys { refetch, .. } => Seen::Wait { refetch },
                Refusal::Deny(denial) => Seen::Denied(denial.reason),
                _ => Seen::Other,
            },
        }
    }

    fn verified(provider: &str) -> Seen {
        Seen::Verified {
            provider: provider.into(),
            user: "fred".into(),
        }
    }

    /// `providers` with every static key replaced by the attacker's: only a cached verdict
    /// can still verify a token of the issuer.
    fn keys_lost(mut providers: Vec<JwtProvider>) -> Vec<JwtProvider> {
        for provider in &mut providers {
            provider.keys = KeySource::Static(Rc::new(TestKeys::attacker().key_set()));
        }
        providers
    }

    #[test]
    fn a_token_of_the_provider_is_verified_and_its_verdict_cached() {
        let (corp, store) = (providers(&format!(r#"{{"corp": {CORP}}}"#)), MapStore::default());
        assert_eq!(
            verify(&corp, &hs256("https://corp"), &store, &Loaded(None)),
            verified("corp")
        );
        assert_eq!(store.0.borrow().len(), 1, "one cache entry");
    }

    #[test]
    fn a_cached_verdict_is_served_without_verifying_again() {
        let (corp, store) = (providers(&format!(r#"{{"corp": {CORP}}}"#)), MapStore::default());
        let token = hs256("https://corp");
        verify(&corp, &token, &store, &Loaded(None));
        assert_eq!(
            verify(&keys_lost(corp), &token, &store, &Loaded(None)),
            verified("corp")
        );
    }

    #[test]
    fn a_verdict_cached_by_another_provider_of_the_route_is_served_and_only_on_its_routes() {
        let both = providers(&format!(
            r#"{{"corp": {CORP}, "b": {{"issuer": "https://b", "hmac_secret": "a-demo-secret-that-is-32-bytes!!"}}}}"#
        ));
        let (store, token) = (MapStore::default(), hs256("https://b"));
        assert_eq!(verify(&both, &token, &store, &Loaded(None)), verified("b"));
        let both = keys_lost(both);
        assert_eq!(
            verify(&both, &token, &store, &Loaded(None)),
            verified("b"),
            "b's verdict, from the cache"
        );
        let corp_only = vec![both[1].clone()];
        assert_eq!(corp_only[0].name, "corp");
        assert_eq!(
            verify(&corp_only, &token, &store, &Loaded(None)),
            Seen::NotOurs(JwtError::WrongIssuer),
            "b's verdict does not vouch for a route without b"
        );
    }

    #[test]
    fn a_route_gets_the_verdict_of_its_first_provider_that_accepts_whatever_another_route_cached() {
        // Two providers of one issuer (say, one mapping `sub`, one `email`): a route with both
        // gets the first's identity, as verification in rule order gives it.
        let json = format!(r#"{{"corp": {CORP}, "mail": {CORP}}}"#);
        let (all, store, token) = (providers(&json), MapStore::default(), hs256("https://corp"));
        let by_name = |name: &str| all.iter().find(|p| p.name == name).unwrap().clone();
        let (corp, mail) = (by_name("corp"), by_name("mail"));
        let both = vec![corp.clone(), mail.clone()];
        assert_eq!(
            verify(&both, &token, &MapStore::default(), &Loaded(None)),
            verified("corp")
        );
        // The token is first seen on a route of `mail` only: `mail`'s verdict is cached.
        assert_eq!(verify(&[mail], &token, &store, &Loaded(None)), verified("mail"));
        assert_eq!(
            verify(&both, &token, &store, &Loaded(None)),
            verified("corp"),
            "the route's verdict does not depend on which route saw the token first"
        );
        assert_eq!(
            verify(&both, &token, &store, &Loaded(None)),
            verified("corp"),
            "and is cached"
        );
    }

    #[test]
    fn a_token_of_another_issuer_is_not_ours() {
        let corp = providers(&format!(r#"{{"corp": {CORP}}}"#));
        let seen = verify(
            &corp,
            &hs256("https://elsewhere"),
            &MapStore::default(),
            &Loaded(None),
        );
        assert_eq!(seen, Seen::NotOurs(JwtError::WrongIssuer));
    }

    #[test]
    fn a_remote_provider_without_keys_yet_waits_for_them() {
        let remote = providers(&format!(r#"{{"remote": {REMOTE}}}"#));
        let seen = verify(&remote, &es256("k1"), &MapStore::default(), &Loaded(None));
        assert_eq!(seen, Seen::Wait { refetch: false });
        assert_eq!(
            verify(&remote, &es256("k1"), &MapStore::default(), &k1()),
            verified("remote")
        );
    }

    #[test]
    fn an_unknown_kid_of_a_remote_provider_asks_for_a_refetch() {
        let remote = providers(&format!(r#"{{"remote": {REMOTE}}}"#));
        let seen = verify(&remote, &es256("k2"), &MapStore::default(), &k1());
        assert_eq!(seen, Seen::Wait { refetch: true });
    }

    #[test]
    fn a_bad_signature_is_an_invalid_token_and_is_not_cached() {
        let other = format!(r#"{{"corp": {{"issuer": "https://corp", "hmac_secret": "{OTHER_SECRET}"}}}}"#);
        let store = MapStore::default();
        let seen = verify(&providers(&other), &hs256("https://corp"), &store, &Loaded(None));
        assert!(
            matches!(seen, Seen::Denied(DenyReason::InvalidToken(_))),
            "{seen:?}"
        );
        assert!(store.0.borrow().is_empty());
    }

    #[test]
    fn a_provider_with_cache_ttl_0_neither_writes_nor_reads_the_cache() {
        let json = r#"{"corp": {"issuer": "https://corp", "hmac_secret": "a-demo-secret-that-is-32-bytes!!", "cache_ttl_seconds": 0}}"#;
        let (corp, store) = (providers(json), MapStore::default());
        let token = hs256("https://corp");
        assert_eq!(verify(&corp, &token, &store, &Loaded(None)), verified("corp"));
        assert!(store.0.borrow().is_empty(), "nothing written");
        // An entry under its own scope, as if written: a provider that caches nothing does
        // not look.
        let identity = JwtIdentity {
            provider: "corp".into(),
            user: "fred".into(),
            scopes: vec![],
            headers: vec![],
            expires_at: None,
        };
        let cache = token_cache();
        let key = cache.key(&corp[0].scope, token.as_bytes());
        let verified = CachedVerification {
            identity,
            generation: None,
        };
        remember(&cache, &store, &key, &verified, 300, NOW);
        let seen = verify(&keys_lost(corp), &token, &store, &Loaded(None));
        assert!(
            matches!(seen, Seen::Denied(DenyReason::InvalidToken(_))),
            "nothing read: {seen:?}"
        );
    }

    #[test]
    fn another_configurations_corp_never_vouches_for_this_ones() {
        let store = MapStore::default();
        let listener_1 = providers(&format!(r#"{{"corp": {CORP}}}"#));
        let listener_2 = providers(&format!(
            r#"{{"corp": {{"issuer": "https://corp", "hmac_secret": "{OTHER_SECRET}"}}}}"#
        ));
        let token = hs256("https://corp");
        assert_eq!(
            verify(&listener_1, &token, &store, &Loaded(None)),
            verified("corp")
        );
        assert_ne!(listener_1[0].scope, listener_2[0].scope);
        let seen = verify(&listener_2, &token, &store, &Loaded(None));
        assert!(
            matches!(seen, Seen::Denied(DenyReason::InvalidToken(_))),
            "{seen:?}"
        );
        // In the other order too: what listener 2 verified is not listener 1's.
        let token_2 = sign_raw(
            Algorithm::HS256,
            r#"{"alg":"HS256"}"#,
            &format!(r#"{{"iss":"https://corp","sub":"fred","exp":{}}}"#, NOW + 600),
            OTHER_SECRET.as_bytes(),
        );
        assert_eq!(
            verify(&listener_2, &token_2, &store, &Loaded(None)),
            verified("corp")
        );
        let seen = verify(&listener_1, &token_2, &store, &Loaded(None));
        assert!(
            matches!(seen, Seen::Denied(DenyReason::InvalidToken(_))),
            "{seen:?}"
        );
    }

    #[test]
    fn the_same_section_in_two_configurations_shares_its_verdicts() {
        let store = MapStore::default();
        let listener_1 = providers(&format!(r#"{{"corp": {CORP}}}"#));
        let listener_2 = providers(&format!(r#"{{"corp": {CORP}, "zz": {REMOTE}}}"#));
        let token = hs256("https://corp");
        verify(&listener_1, &token, &store, &Loaded(None));
        assert_eq!(listener_1[0].scope, listener_2[0].scope);
        assert_eq!(
            verify(&keys_lost(listener_2), &token, &store, &Loaded(None)),
            verified("corp")
        );
    }
}

#[cfg(test)]
mod generation_tests {
    use super::*;
    use crate::cache::tests::MapStore;
    use crate::config::Config;
    use crate::decide::{Keyring, NoCount};
    use crate::hostcrypto::ModuleOnly;
    use tokengate_demo::keys::{jwks, TestKey};

    const NOW: UnixSeconds = 1_700_000_000;

    /// The process's remote keys as one worker sees them at one moment.
    struct Keys(Option<(Rc<KeySet>, Generation)>);

    impl Keyring for Keys {
        fn remote_keys(&self, _provider: &str) -> Option<(Rc<KeySet>, Generation)> {
            self.0.clone()
        }
    }

    fn keys(of: &[&TestKey], generation: Generation) -> Keys {
        let set = KeySet::from_jwks(jwks(of).to_string().as_bytes()).unwrap();
        Keys(Some((Rc::new(set), generation)))
    }

    fn providers() -> Config {
        let json = r#"{"jwt_providers": {
            "remote": {"issuer": "https://r", "remote_jwks": {"cluster": "idp", "path": "/jwks"}},
            "local": {"issuer": "https://l", "hmac_secret": "secret-of-provider-l-0123456789abcdef"}
        }}"#;
        Config::from_json(json.as_bytes()).unwrap()
    }

    fn verify(config: &Config, token: &str, keyring: &Keys, store: &MapStore, now: UnixSeconds) -> BearerJwt {
        let env = Env {
            keyring,
            store,
            count: &NoCount,
            signatures: &ModuleOnly,
        };
        let providers: Vec<&JwtProvider> = config.jwt_providers.iter().collect();
        verify_bearer(&providers, token, &env, now)
    }

    fn outcome(verdict: &BearerJwt) -> &'static str {
        match verdict {
            BearerJwt::Verified(_) => "verified",
            BearerJwt::NotOurs(_) => "not ours",
            BearerJwt::Refused(refusal) => match **refusal {
                Refusal::WaitForKeys { refetch: true, .. } => "refetch",
                Refusal::WaitForKeys { refetch: false, .. } => "wait",
                Refusal::Deny(_) => "denied",
                _ => "other refusal",
            },
        }
    }

    #[test]
    fn a_token_verified_under_one_generation_is_refused_once_its_key_left_the_set() {
        let config = providers();
        let store = MapStore::default();
        let (k1, k2) = (TestKey::es256("k1"), TestKey::es256("k2"));
        let token = k1.sign(&serde_json::json!({"iss": "https://r", "sub": "fred", "exp": NOW + 600}));
        let before = keys(&[&k1, &k2], 1);
        assert_eq!(
            outcome(&verify(&config, &token, &before, &store, NOW)),
            "verified"
        );
        assert_eq!(
            outcome(&verify(&config, &token, &before, &store, NOW + 1)),
            "verified"
        );
        // Generation 2 dropped k1: the cached verdict is not served, and the token's key is
        // unknown (the core asks for a refetch; with keys as they are it is refused).
        let rotated = keys(&[&k2], 2);
        assert_eq!(
            outcome(&verify(&config, &token, &rotated, &store, NOW + 2)),
            "refetch"
        );
        assert_eq!(
            outcome(&verify(&config, &token, &rotated, &store, NOW + 3)),
            "refetch"
        );
        let kept = k2.sign(&serde_json::json!({"iss": "https://r", "sub": "fred", "exp": NOW + 600}));
        assert_eq!(
            outcome(&verify(&config, &kept, &rotated, &store, NOW + 3)),
            "verified"
        );
    }

    #[test]
    fn a_cached_verdict_is_served_while_the_generation_is_the_same_and_checked_again_after() {
        let config = providers();
        let store = MapStore::default();
        let (k1, other) = (TestKey::es256("k1"), TestKey::es256("other"));
        let token = k1.sign(&serde_json::json!({"iss": "https://r", "sub": "fred", "exp": NOW + 600}));
        assert_eq!(
            outcome(&verify(&config, &token, &keys(&[&k1], 1), &store, NOW)),
            "verified"
        );
        // Keys that cannot verify the token show where the answer comes from: the cache.
        let (same, next) = (keys(&[&other], 1), keys(&[&other], 2));
        assert_eq!(
            outcome(&verify(&config, &token, &same, &store, NOW + 1)),
            "verified"
        );
        assert_eq!(
            outcome(&verify(&config, &token, &next, &store, NOW + 1)),
            "refetch"
        );
        assert_eq!(
            outcome(&verify(&config, &token, &Keys(None), &store, NOW + 1)),
            "wait"
        );
        // A new generation that still has the key verifies the token again, and caches that.
        assert_eq!(
            outcome(&verify(&config, &token, &keys(&[&k1], 3), &store, NOW + 2)),
            "verified"
        );
        let same3 = keys(&[&other], 3);
        assert_eq!(
            outcome(&verify(&config, &token, &same3, &store, NOW + 3)),
            "verified"
        );
    }

    #[test]
    fn verdicts_of_configured_keys_do_not_depend_on_remote_generations() {
        let config = providers();
        let store = MapStore::default();
        let claims = format!(r#"{{"iss":"https://l","sub":"fred","exp":{}}}"#, NOW + 600);
        let token = crate::jwt::tests::sign_raw(
            crate::jwt::Algorithm::HS256,
            r#"{"alg":"HS256"}"#,
            &claims,
            b"secret-of-provider-l-0123456789abcdef",
        );
        for keyring in [Keys(None), keys(&[&TestKey::es256("k")], 7)] {
            assert_eq!(
                outcome(&verify(&config, &token, &keyring, &store, NOW)),
                "verified"
            );
        }
    }

    /// The keyring the shell builds over the shared key set: one `SharedJwks` per worker.
    struct SharedKeyring<'a> {
        jwks: crate::jwks_shared::SharedJwks,
        store: &'a dyn SharedStore,
    }

    impl Keyring for SharedKeyring<'_> {
        fn remote_keys(&self, _provider: &str) -> Option<(Rc<KeySet>, Generation)> {
            self.jwks.current(self.store)
        }
    }

    #[test]
    fn an_rs256_request_reads_the_key_set_head_once_and_its_body_once_per_generation() {
        use crate::callout::CalloutResult;
        use crate::test_support::EnvoyLikeStore;
        let config = providers();
        let remote = config.jwt_providers.iter().find(|p| p.name == "remote").unwrap();
        let KeySource::Remote(settings) = &remote.keys else {
            panic!("`remote` has remote keys");
        };
        let key = TestKey::rs256("k1");
        let store = EnvoyLikeStore::default();
        let leader = crate::jwks_shared::SharedJwks::new(settings, 1);
        leader.create_in_advance(&store);
        assert!(leader.take_fetch(&store, 0).is_some());
        let body = jwks(&[&key]).to_string().into_bytes();
        leader.fetched(&store, CalloutResult::Response { status: 200, body }, 0);
        let worker = SharedKeyring {
            jwks: crate::jwks_shared::SharedJwks::new(settings, 2),
            store: &store,
        };
        let env = Env {
            keyring: &worker,
            store: &store,
            count: &NoCount,
            signatures: &ModuleOnly,
        };
        // A route of the remote provider only (each provider of a route is one cache read).
        let providers: Vec<&JwtProvider> = vec![remote];
        let claims = |sub: &str| serde_json::json!({"iss": "https://r", "sub": sub, "exp": NOW + 600});
        let (first, second) = (key.sign(&claims("fred")), key.sign(&claims("barney")));
        let gets_and_sets = |token: &str| {
            let (reads, writes) = (store.reads.get(), store.writes.borrow().len());
            let verdict = verify_bearer(&providers, token, &env, NOW);
            assert_eq!(outcome(&verdict), "verified");
            (store.reads.get() - reads, store.writes.borrow().len() - writes)
        };
        // (token, shared-data gets, sets): the cache bucket, the head, the body on this worker's
        // first look at generation 1, and the insert's bucket read and write.
        for (token, gets, sets, what) in [
            (
                &first,
                4,
                1,
                "uncached, first request of the worker under this generation",
            ),
            (&second, 3, 1, "uncached"),
            (&first, 2, 0, "cached"),
        ] {
            assert_eq!(gets_and_sets(token), (gets, sets), "{what}");
        }
    }
}
