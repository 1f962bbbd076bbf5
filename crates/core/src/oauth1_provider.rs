//! Stage 3, verify: OAuth 1.0a signed requests (RFC 5849) of Jira application links,
//! `Authorization: OAuth ...` signed with RSA-SHA1 by a consumer the token service knows.
//!
//! The order of checks: parse (`oauth1::parse`: the parameters, `oauth_version`), the
//! access token's presence, the signature method (RSA-SHA1 only: HMAC-SHA1 and PLAINTEXT
//! need shared secrets the filter never has, and a refused method is never a question), the
//! timestamp window, the form body (read when the request is
//! `application/x-www-form-urlencoded` and has one: its pairs are signed), the base string,
//! then the token service's word on the access token (cached in shared data under the
//! provider's scope), the signature with the consumer's key from that word (on every
//! request, cached word or not), the nonce (shared by the Envoy process's workers), and the
//! user through the directory as for every scheme. A request that gets as far as the nonce
//! was signed by the consumer: nobody else can use up nonces or fill the store.
//!
//! The base string URI is the configured `public_base_url`, or `:scheme` and `:authority`
//! as Envoy received them (`x-forwarded-proto` is not read: behind a TLS-terminating proxy,
//! configure the public URL), with the raw `:path` as Envoy handed it.

use oauth1::{Credentials, NonceKey, NonceRefusal, NonceStore as _, Problem, SharedNonces, SignatureMethod};

use crate::admit::look_up;
use crate::cache::SharedStore;
use crate::challenge::Challenges;
use crate::clock::UnixSeconds;
use crate::config::Config;
use crate::extract::{Credential, Header, Location};
use crate::host::Env;
use crate::hostcrypto::Hash;
use crate::introspect::ProviderFailure;
use crate::metrics::Metric;
use crate::oauth1_question::{
    answer_key, cached, remember, AccessTokenInfo, OAuth1Provider, MAX_TOKEN_BYTES,
};
use crate::outcome::{
    deny, DenyReason, Family, Identity, Pending, PendingSigned, RequestHead, SignedRequest, Step,
};
use crate::policy::Rule;

fn refuse(problem: Problem) -> Step {
    deny(Family::OAuth1, DenyReason::OAuth1(problem))
}

/// Checks an `Authorization: OAuth` request (`credential`) on a rule listing `provider`, as
/// far as it can without asking: a denial, a [`Step::ReadBody`] for its form body, a
/// [`Step::AskOAuth1`] for its access token, or (with the token service's word cached) what
/// the signature, the nonce and the directory say.
#[allow(clippy::too_many_arguments)]
pub fn verify_signed(
    config: &Config,
    provider: &OAuth1Provider,
    rule: &Rule,
    request: &RequestHead,
    credential: &Credential,
    challenges: Challenges,
    env: &Env<'_>,
    now: UnixSeconds,
) -> Step {
    let authorization = match oauth1::header::parse_after_scheme(&credential.value) {
        Ok(authorization) => authorization,
        Err(error) => return refuse(error.problem().unwrap_or(Problem::ParameterRejected)),
    };
    // A resource request carries an access token (request-token and access-token requests
    // go to the token service, on a rule without providers).
    let Some(token) = authorization.token.clone().filter(|t| !t.is_empty()) else {
        return refuse(Problem::ParameterAbsent);
    };
    if authorization.signature_method != SignatureMethod::RsaSha1 {
        return refuse(Problem::SignatureMethodRejected);
    }
    let (Some(timestamp), Some(nonce)) = (authorization.timestamp, authorization.nonce.clone()) else {
        return refuse(Problem::ParameterAbsent);
    };
    let now_seconds = u64::try_from(now).unwrap_or(0);
    if let Err(problem) = oauth1::check_timestamp(timestamp, now_seconds, provider.timestamp_window_seconds) {
        return refuse(problem);
    }
    // An access token grants no OAuth 2 scopes: a rule that requires some refuses it.
    if !rule.scopes.is_empty() {
        return deny(Family::OAuth1, DenyReason::InsufficientScope(rule.scopes.clone()));
    }
    if token.len() > MAX_TOKEN_BYTES {
        // No token of the service is that long: not worth a question.
        return refuse(Problem::TokenRejected);
    }
    let form = is_form(&request.headers);
    let body = match &request.body {
        None if form && request.has_body => {
            return Step::ReadBody {
                max_bytes: provider.form_body.max_bytes,
                timeout_ms: provider.form_body.timeout_ms,
            }
        }
        Some(body) if form => Some(body.as_slice()),
        _ => None,
    };
    let Some(uri) = base_uri(provider, request) else {
        return deny(Family::OAuth1, DenyReason::Internal);
    };
    let uri = match uri {
        Ok(uri) => uri,
        Err(error) => return refuse(error.problem()),
    };
    let query = query_of(&request.path);
    let base_string = match oauth1::base_string(&request.method, &uri, query.as_bytes(), &authorization, body)
    {
        Ok(base_string) => base_string,
        Err(error) => return refuse(error.problem()),
    };
    let signed = SignedRequest {
        consumer_key: authorization.consumer_key,
        token,
        nonce,
        timestamp,
        signature: authorization.signature,
        base_string,
    };
    let key = answer_key(provider, &signed.consumer_key, &signed.token);
    match cached(env.store, &key, now) {
        Some(info) => {
            env.count.count(Metric::IntrospectionCacheHit);
            settle(config, provider, &signed, info, challenges, env, now)
        }
        None => {
            env.count.count(Metric::IntrospectionCacheMiss);
            let callout = provider.callout(&signed.token, &signed.consumer_key);
            let pending = PendingSigned {
                provider: provider.name.clone(),
                signed,
                challenges,
            };
            Step::AskOAuth1 {
                pending,
                callout,
                key,
            }
        }
    }
}

/// Continues a signed request after the token service answered (or failed to), caching the
/// answer. Its denials challenge with the schemes of the request's rule.
pub fn after_answer(
    config: &Config,
    pending: PendingSigned,
    answer: Result<AccessTokenInfo, ProviderFailure>,
    env: &Env<'_>,
    now: UnixSeconds,
) -> Step {
    let challenges = pending.challenges;
    answered(config, pending, answer, env, now).challenging(challenges)
}

fn answered(
    config: &Config,
    pending: PendingSigned,
    answer: Result<AccessTokenInfo, ProviderFailure>,
    env: &Env<'_>,
    now: UnixSeconds,
) -> Step {
    let Some(provider) = config
        .oauth1_providers
        .iter()
        .find(|p| p.name == pending.provider)
    else {
        return deny(Family::OAuth1, DenyReason::Internal);
    };
    let info = match answer {
        Ok(info) => {
            let key = answer_key(provider, &pending.signed.consumer_key, &pending.signed.token);
            remember(env.store, provider, &key, &info, now);
            info
        }
        Err(ProviderFailure::ClientRejected) => {
            return deny(Family::OAuth1, DenyReason::ProviderRejectedClient)
        }
        Err(_) => return deny(Family::OAuth1, DenyReason::ProviderUnavailable),
    };
    settle(
        config,
        provider,
        &pending.signed,
        info,
        pending.challenges,
        env,
        now,
    )
}

/// A signed request's fate once the token service's word is known: the signature with the
/// consumer's key, then the nonce, then the directory.
fn settle(
    config: &Config,
    provider: &OAuth1Provider,
    signed: &SignedRequest,
    info: AccessTokenInfo,
    challenges: Challenges,
    env: &Env<'_>,
    now: UnixSeconds,
) -> Step {
    let (user, consumer_key) = match info {
        AccessTokenInfo::Refused(problem) => return refuse(problem),
        AccessTokenInfo::Active {
            user, consumer_key, ..
        } => (user, consumer_key),
    };
    let host = |spki: &[u8], input: &[u8], signature: &[u8]| {
        env.signatures.verify(Hash::Sha1, spki, input, signature)
    };
    if let Err(error) = oauth1::verify_with_host(
        SignatureMethod::RsaSha1,
        &signed.signature,
        &signed.base_string,
        &[SignatureMethod::RsaSha1],
        Credentials::Rsa(&consumer_key),
        &host,
    ) {
        return refuse(error.problem());
    }
    let key = NonceKey {
        consumer_key: &signed.consumer_key,
        token: &signed.token,
        nonce: &signed.nonce,
    };
    let now_seconds = u64::try_from(now).unwrap_or(0);
    match nonces(provider, env.store).insert(key, signed.timestamp, now_seconds) {
        Ok(()) => {}
        Err(NonceRefusal::Used) => return refuse(Problem::NonceUsed),
        Err(_) => return deny(Family::OAuth1, DenyReason::NonceStoreFull),
    }
    let identity = Identity {
        family: Family::OAuth1,
        user,
        tenant: None,
        claim_headers: Vec::new(),
        forward_token: false,
    };
    look_up(
        config,
        Pending {
            identity,
            location: Location::AuthorizationHeader,
            forwarded_path: None,
            challenges,
        },
    )
}

/// The core's shared data as the `oauth1` crate's versioned store.
struct SharedShelf<'a>(&'a dyn SharedStore);

impl oauth1::VersionedStore for SharedShelf<'_> {
    fn get_versioned(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.0.get_versioned(key)
    }

    fn set_versioned(&self, key: &str, value: &[u8], cas: u32) -> bool {
        self.0.set_versioned(key, value, cas)
    }
}

/// The nonces of `provider` in `store`, under its [`OAuth1Provider::nonce_prefix`].
fn nonces<'a>(provider: &OAuth1Provider, store: &'a dyn SharedStore) -> SharedNonces<SharedShelf<'a>> {
    let layout = &provider.nonces;
    SharedNonces::new(
        SharedShelf(store),
        &provider.nonce_prefix,
        layout.buckets,
        layout.per_bucket,
        provider.timestamp_window_seconds,
    )
}

/// The base string URI: the configured public URL, or `:scheme` and `:authority` as Envoy
/// received them, with the raw `:path`. `None` when Envoy handed over no scheme or authority.
fn base_uri(
    provider: &OAuth1Provider,
    request: &RequestHead,
) -> Option<Result<oauth1::BaseUri, oauth1::BaseStringError>> {
    if let Some(public) = &provider.public_base {
        return Some(oauth1::BaseUri::new(
            &public.scheme,
            &public.authority,
            &request.path,
        ));
    }
    let pseudo = |name: &str| {
        let (_, value) = request.headers.iter().find(|(n, _)| n == name)?;
        std::str::from_utf8(value).ok()
    };
    Some(oauth1::BaseUri::new(
        pseudo(":scheme")?,
        pseudo(":authority")?,
        &request.path,
    ))
}

/// The raw query of a `:path` (after `?`, before any `#`), empty when there is none.
fn query_of(path: &str) -> &str {
    let query = path.split_once('?').map_or("", |(_, query)| query);
    query.split('#').next().unwrap_or_default()
}

/// Whether the request's one `Content-Type` is `application/x-www-form-urlencoded` (any
/// case, any parameters): then its body's pairs are in the base string (RFC 5849 section
/// 3.4.1.3.1).
pub fn is_form(headers: &[Header]) -> bool {
    let mut types = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("content-type"));
    let (Some((_, value)), None) = (types.next(), types.next()) else {
        return false;
    };
    let media = value.split(|b| *b == b';').next().unwrap_or_default();
    media
        .trim_ascii()
        .eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
}

#[cfg(test)]
pub(crate) mod tests;
