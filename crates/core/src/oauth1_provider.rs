//! Stage 3, verify: OAuth 1.0a signed requests (RFC 5849) of Jira application links,
//! `Authorization: OAuth ...` signed with RSA-SHA1 by a consumer the token service knows.

use oauth1::{Problem, SignatureMethod};

use crate::cache::Scope;
use crate::clock::UnixSeconds;
use crate::extract::{Credential, Header};
use crate::host::Env;
use crate::introspect::OAuthProvider;
use crate::outcome::{deny, DenyReason, Family, RequestHead, Step};
use crate::policy::Rule;

/// Checks an `Authorization: OAuth` request on a rule listing `provider`, in the order of
/// the design: parse, signature method, version, timestamp window, the form body, the
/// question, the signature, the nonce, the user.
pub fn verify_signed(
    provider: &OAuth1Provider,
    rule: &Rule,
    request: &RequestHead,
    credential: &Credential,
    env: &Env<'_>,
    now: UnixSeconds,
) -> Step {
    let _ = (rule, env);
    let refuse = |problem| deny(Family::OAuth1, DenyReason::OAuth1(problem));
    let authorization = match oauth1::parse(&format!("OAuth {}", credential.value)) {
        Ok(authorization) => authorization,
        Err(error) => return refuse(error.problem().unwrap_or(Problem::ParameterRejected)),
    };
    if authorization.token.is_none() {
        return refuse(Problem::ParameterAbsent);
    }
    // HMAC-SHA1 and PLAINTEXT need shared secrets the filter never has.
    if authorization.signature_method != SignatureMethod::RsaSha1 {
        return refuse(Problem::SignatureMethodRejected);
    }
    let Some(timestamp) = authorization.timestamp else {
        return refuse(Problem::ParameterAbsent);
    };
    let now_seconds = u64::try_from(now).unwrap_or(0);
    if let Err(problem) = oauth1::check_timestamp(timestamp, now_seconds, provider.timestamp_window_seconds) {
        return refuse(problem);
    }
    if request.body.is_none() && request.has_body && is_form(&request.headers) {
        return Step::ReadBody {
            max_bytes: provider.form_body.max_bytes,
            timeout_ms: provider.form_body.timeout_ms,
        };
    }
    // The question, the signature and the nonce come next.
    deny(Family::OAuth1, DenyReason::Internal)
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
