//! OAuth 1.0a application links: the configured provider ([`OAuth1Provider`]), its question
//! to the token service about an access token (the callout), the answer read strictly
//! ([`AccessTokenInfo`]), and the shared cache of answers. Pure, as `introspect` is for
//! OAuth tokens; what an answer means for a request is [`crate::oauth1_provider`]'s.
//!
//! The wire format (design, fixed): `POST <introspection path>` with our client
//! authentication, `token=<access token>&token_type_hint=oauth1_access_token&
//! oauth_consumer_key=<consumer key>`; the answer `{"active":true,"token_type":
//! "oauth1_access_token","username":...,"client_id":<consumer key>,"exp":<unix seconds>,
//! "consumer_public_key":<base64 DER SubjectPublicKeyInfo>}` or `{"active":false,
//! "oauth_problem":"consumer_key_unknown"|"token_rejected"|"token_expired"}`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use oauth1::{ConsumerKey, Problem};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cache::{CacheKey, Scope, SharedStore, SlotCache};
use crate::callout::{encode_component, Callout};
use crate::clock::UnixSeconds;
use crate::introspect::{ClientAuth, OAuthProvider, ProviderFailure};

/// An `oauth1_providers.<name>`, by name in rules.
#[derive(Debug, Clone)]
pub struct OAuth1Provider {
    pub name: String,
    /// The token service's introspection endpoint and our client credentials (compiled as an
    /// introspection provider's; not itself a provider rules can name).
    pub introspection: OAuthProvider,
    pub cache_ttl_seconds: i64,
    pub negative_cache_ttl_seconds: i64,
    /// The `scheme://host[:port]` clients sign; `None`: `:scheme` and `:authority` as Envoy
    /// received them.
    pub public_base: Option<PublicBase>,
    /// The `realm` of `WWW-Authenticate: OAuth realm="..."`.
    pub realm: String,
    pub timestamp_window_seconds: u64,
    pub nonces: NonceSettings,
    pub form_body: FormBody,
    /// The digest of the section: its answers and its nonces are keyed under it.
    pub scope: Scope,
}

/// The configured public base URL, as the base string URI takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicBase {
    pub scheme: String,
    pub authority: String,
}

impl PublicBase {
    /// `scheme://host[:port]` (a trailing `/` allowed), `http` or `https`; `None` otherwise.
    pub fn parse(url: &str) -> Option<Self> {
        let (scheme, rest) = url.split_once("://")?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return None;
        }
        oauth1::BaseUri::new(scheme, authority, "/").ok()?;
        Some(Self {
            scheme: scheme.to_ascii_lowercase(),
            authority: authority.to_owned(),
        })
    }
}

/// The shared nonce store's size: `buckets * per_bucket` nonces inside their window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceSettings {
    pub buckets: u32,
    pub per_bucket: usize,
}

/// The bounds of the form body read for a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormBody {
    pub max_bytes: usize,
    pub timeout_ms: u64,
}

/// What the token service said about an access token used with a consumer key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessTokenInfo {
    /// The token is the user's, for this consumer, until `exp`; the consumer's key checks
    /// the request's signature.
    Active {
        user: String,
        exp: UnixSeconds,
        consumer_key: ConsumerKey,
    },
    /// `consumer_key_unknown`, `token_rejected` or `token_expired`.
    Refused(Problem),
}

/// The longest access token asked about (bytes): the token service's are 43 characters.
pub const MAX_TOKEN_BYTES: usize = 1024;

impl OAuth1Provider {
    /// The question about `token` used with `consumer_key`.
    pub fn callout(&self, token: &str, consumer_key: &str) -> Callout {
        let endpoint = &self.introspection;
        let mut headers = vec![
            ("accept".to_owned(), "application/json".to_owned()),
            (
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            ),
        ];
        let mut form = format!(
            "token={}&token_type_hint=oauth1_access_token&oauth_consumer_key={}",
            encode_component(token),
            encode_component(consumer_key)
        );
        match endpoint.client_auth {
            ClientAuth::Basic => headers.push((
                "authorization".to_owned(),
                basic_auth::encode_client(&endpoint.client_id, &endpoint.client_secret),
            )),
            ClientAuth::Post => form.push_str(&format!(
                "&client_id={}&client_secret={}",
                encode_component(&endpoint.client_id),
                encode_component(&endpoint.client_secret)
            )),
        }
        Callout {
            cluster: endpoint.cluster.clone(),
            method: "POST",
            path: endpoint.path.clone(),
            authority: endpoint.authority.clone(),
            headers,
            body: Some(form.into_bytes()),
            timeout_ms: endpoint.timeout_ms,
        }
    }

    /// Reads the token service's answer about a token used with `consumer_key`, strictly:
    /// anything but the documented shapes (a field missing or of another type, a `client_id`
    /// other than `consumer_key`, a key that is not an RSA public key) is no usable answer.
    pub fn read_answer(
        &self,
        status: u32,
        body: &[u8],
        consumer_key: &str,
        now: UnixSeconds,
    ) -> Result<AccessTokenInfo, ProviderFailure> {
        match status {
            200 => {}
            401 => return Err(ProviderFailure::ClientRejected),
            _ => return Err(ProviderFailure::BadStatus),
        }
        let Ok(Value::Object(answer)) = serde_json::from_slice::<Value>(body) else {
            return Err(ProviderFailure::Unparsable);
        };
        let text = |name: &str| answer.get(name).and_then(Value::as_str);
        match answer.get("active") {
            Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => {
                return refusal_named(text("oauth_problem").unwrap_or_default())
                    .map(AccessTokenInfo::Refused)
                    .ok_or(ProviderFailure::Unparsable)
            }
            _ => return Err(ProviderFailure::Unparsable),
        }
        if text("token_type") != Some("oauth1_access_token") || text("client_id") != Some(consumer_key) {
            return Err(ProviderFailure::Unparsable);
        }
        let user = text("username")
            .filter(|user| usable_user(user))
            .ok_or(ProviderFailure::Unparsable)?;
        let exp = answer
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or(ProviderFailure::Unparsable)?;
        let key = text("consumer_public_key")
            .and_then(|key| STANDARD.decode(key).ok())
            .and_then(|der| consumer_key_of(&der))
            .ok_or(ProviderFailure::Unparsable)?;
        if exp <= now {
            return Ok(AccessTokenInfo::Refused(Problem::TokenExpired));
        }
        Ok(AccessTokenInfo::Active {
            user: user.to_owned(),
            exp,
            consumer_key: key,
        })
    }

    /// Until when an answer may be served from the cache: a positive one for
    /// `cache_ttl_seconds` and never past its `exp`, a refusal for `negative_cache_ttl_seconds`.
    pub fn cache_until(&self, info: &AccessTokenInfo, now: UnixSeconds) -> UnixSeconds {
        match info {
            AccessTokenInfo::Active { exp, .. } => now.saturating_add(self.cache_ttl_seconds).min(*exp),
            AccessTokenInfo::Refused(_) => now.saturating_add(self.negative_cache_ttl_seconds),
        }
    }
}

/// The refusals the token service answers with.
fn refusal_named(name: &str) -> Option<Problem> {
    [
        Problem::ConsumerKeyUnknown,
        Problem::TokenRejected,
        Problem::TokenExpired,
    ]
    .into_iter()
    .find(|problem| problem.name() == name)
}

/// A user name that can be a header value.
fn usable_user(user: &str) -> bool {
    !user.is_empty() && !user.chars().any(char::is_control)
}

/// The RSA public key of a DER SubjectPublicKeyInfo (read by the `oauth1` crate, which takes
/// PEM), at least [`oauth1::signature::DEFAULT_MIN_BITS`]: the token service enforces its own
/// minimum when it loads the consumer.
pub fn consumer_key_of(spki_der: &[u8]) -> Option<ConsumerKey> {
    let base64 = STANDARD.encode(spki_der);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in base64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).ok()?);
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    ConsumerKey::from_pem(&pem, oauth1::signature::DEFAULT_MIN_BITS).ok()
}

/// Slots of the shared cache of the token service's answers about access tokens.
pub const ANSWER_CACHE_SLOTS: u32 = 32_768;

fn answer_cache() -> SlotCache {
    SlotCache::new("oauth1", ANSWER_CACHE_SLOTS)
}

/// The key of `provider`'s answer about `token` used with `consumer_key`, in the provider's
/// scope: also the coalescing key of the question that asks it.
pub fn answer_key(provider: &OAuth1Provider, consumer_key: &str, token: &str) -> CacheKey {
    let raw = format!("{consumer_key}\0{token}");
    answer_cache().key(&provider.scope, raw.as_bytes())
}

/// An answer as cached: never the token; the consumer's key as DER.
#[derive(Serialize, Deserialize)]
enum Cached {
    Active {
        user: String,
        exp: UnixSeconds,
        key: String,
    },
    Refused(String),
}

/// Keeps `info` under `key` until [`OAuth1Provider::cache_until`].
pub fn remember(
    store: &dyn SharedStore,
    provider: &OAuth1Provider,
    key: &CacheKey,
    info: &AccessTokenInfo,
    now: UnixSeconds,
) {
    let cached = match info {
        AccessTokenInfo::Active {
            user,
            exp,
            consumer_key,
        } => Cached::Active {
            user: user.clone(),
            exp: *exp,
            key: STANDARD.encode(consumer_key.spki_der()),
        },
        AccessTokenInfo::Refused(problem) => Cached::Refused(problem.name().to_owned()),
    };
    if let Ok(bytes) = serde_json::to_vec(&cached) {
        answer_cache().insert(store, key, &bytes, provider.cache_until(info, now));
    }
}

/// The cached answer under `key` at `now`: one any writer may have stored, so read as
/// strictly as the token service's (an unusable entry is a miss).
pub fn cached(store: &dyn SharedStore, key: &CacheKey, now: UnixSeconds) -> Option<AccessTokenInfo> {
    let bytes = answer_cache().get(store, key, now)?;
    match serde_json::from_slice::<Cached>(&bytes).ok()? {
        Cached::Active { user, exp, key } => {
            let consumer_key = consumer_key_of(&STANDARD.decode(key).ok()?)?;
            (usable_user(&user) && exp > now).then_some(AccessTokenInfo::Active {
                user,
                exp,
                consumer_key,
            })
        }
        Cached::Refused(name) => refusal_named(&name).map(AccessTokenInfo::Refused),
    }
}
