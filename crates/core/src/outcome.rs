//! The outcomes of the pipeline, as plain data: what a request is (`RequestHead`), who a
//! verified credential speaks for ([`Identity`]), why a request is refused ([`DenyReason`],
//! [`Denial`] in its provider's [`Family`]) and where a request stands ([`Step`]: decided, or
//! waiting on a question). Every stage returns these; none of them decides anything.

use crate::apitoken::BasicPasswords;
use crate::cache::CacheKey;
use crate::callout::Callout;
use crate::challenge::Challenges;
use crate::extract::{Header, Location};
use crate::jwt::JwtError;
use crate::path::AmbiguousPath;

/// The request as the shell sees it.
#[derive(Debug, Clone, Default)]
pub struct RequestHead {
    pub method: String,
    pub path: String,
    pub headers: Vec<Header>,
    /// The client's address as Envoy determined it (`source.address`: the downstream remote
    /// address, after `use_remote_address` / `xff_num_trusted_hops`), sent to the token
    /// service for its per-address throttling.
    pub client_address: Option<String>,
    /// The request body, once read (`None`: not read). Only an OAuth 1.0a request with a form
    /// body asks for it ([`Step::ReadBody`]): the signature covers the form's parameters.
    pub body: Option<Vec<u8>>,
    /// The request has a body: its headers did not end the stream.
    pub has_body: bool,
}

impl RequestHead {
    /// The request of `headers` (the whole head, pseudo-headers too); `None` without a UTF-8
    /// `:method` and `:path`.
    pub fn of(headers: Vec<Header>, client_address: Option<String>) -> Option<Self> {
        let pseudo = |name: &str| {
            let (_, value) = headers.iter().find(|(n, _)| n == name)?;
            String::from_utf8(value.clone()).ok()
        };
        let (method, path) = (pseudo(":method")?, pseudo(":path")?);
        Some(Self {
            method,
            path,
            headers,
            client_address,
            body: None,
            has_body: false,
        })
    }
}

/// Whose error format a denial uses: the provider that owns the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Seed 000: `{"status":401,"message":...,"messages":[...],"pluginVersion":...,"time":...}`.
    Tisjwt,
    /// Seed 001: `{"error":{"status":"ERROR","message":...}}`.
    OAuth,
    /// API tokens (seed 004): Jira's `{"errorMessages":[...],"errors":{}}`.
    ApiToken,
    /// OAuth 1.0a application links: Jira's error collection, and every OAuth problem a 401
    /// with `WWW-Authenticate: OAuth realm="...", oauth_problem="..."` first.
    OAuth1,
}

/// Why a request is refused. Each reason has one response per family and one counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {
    /// No credential a provider of the route accepts, or an empty one.
    MissingCredential,
    /// More than one credential or `Authorization` header.
    AmbiguousCredential,
    /// Malformed, badly signed, wrong issuer/audience/algorithm, not yet valid.
    InvalidToken(JwtError),
    /// Past its `exp`.
    ExpiredToken,
    /// The TISJWT tenant has no valid licence.
    LicenseInvalid,
    /// The directory says the user is deactivated.
    InactiveUser,
    /// The directory does not know the user.
    UnknownUser,
    /// The token lacks scopes the route requires (listed).
    InsufficientScope(Vec<String>),
    /// The user directory did not answer usably.
    DirectoryUnavailable,
    /// The token provider says the token is not active (revoked, expired, unknown).
    TokenInactive,
    /// A client-credentials token of a client no service account is mapped to.
    UnmappedClient,
    /// The token provider refused our own client credentials.
    ProviderRejectedClient,
    /// The token provider did not answer usably (down, slow, 5xx, garbage).
    ProviderUnavailable,
    /// `Authorization: Basic` that is not base64 of `user:secret`.
    MalformedBasic,
    /// The API token (Basic password or Bearer) is wrong, expired, or not the user's.
    InvalidApiToken,
    /// Too many failed logins for this user: Jira's CAPTCHA state.
    LockedOut { login_url: String },
    /// A provider's remote JWKS was not loaded within the wait bound.
    KeysUnavailable,
    /// No rule of the route policy matches the request.
    NoRule,
    /// The path has no single meaning (`%2F`, `\`, `%3B`, `%25`, a control byte, a dot
    /// segment with a suffix, `..` above the root, ...): refused before anything else.
    AmbiguousPath(AmbiguousPath),
    /// The host would not hand over or rewrite the request; refused rather than passed.
    Internal,
    /// An OAuth 1.0a signed request refused, with the Problem Reporting name it is told.
    OAuth1(oauth1::Problem),
    /// The form body an OAuth 1.0a signature covers is over `form_body.max_bytes` (413).
    BodyTooLarge,
    /// The form body did not arrive within `form_body.timeout_ms` (408).
    BodyTimeout,
    /// The nonce store is full or could not be written: refused (503) rather than forgetting
    /// a nonce that could still be replayed.
    NonceStoreFull,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub family: Family,
    pub reason: DenyReason,
    /// What a 401 challenges with: the schemes of the matched rule and the one the client used.
    pub challenges: Challenges,
}

impl Denial {
    /// A denial without its rule's challenges ([`Challenges::UNKNOWN`]).
    /// [`begin`](crate::decide::begin), [`finish`](crate::decide::finish) and
    /// [`after_provider`](crate::opaque::after_provider) add them to every denial they return;
    /// the others ([`unknown_key`](crate::decide::unknown_key),
    /// [`keys_unavailable`](crate::decide::keys_unavailable), no rule, host failures) are never
    /// 401s.
    pub fn new(family: Family, reason: DenyReason) -> Self {
        Denial {
            family,
            reason,
            challenges: Challenges::UNKNOWN,
        }
    }

    #[must_use]
    pub fn challenging(self, challenges: Challenges) -> Self {
        Denial { challenges, ..self }
    }
}

/// What to change on a request before it goes upstream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Forward {
    /// Headers to delete (every instance).
    pub remove_headers: Vec<String>,
    /// Headers to set, replacing any existing value.
    pub set_headers: Vec<(String, String)>,
    /// The new `:path`, when the query string changed.
    pub path: Option<String>,
}

impl Forward {
    /// Drops removals of headers `headers` (the whole request) does not have: each removal is
    /// a host call, and a client rarely sends the identity headers it may not set.
    pub fn only_removing_present(mut self, headers: &[Header]) -> Self {
        self.remove_headers.retain(|name| {
            headers
                .iter()
                .any(|(present, _)| present.eq_ignore_ascii_case(name))
        });
        self
    }

    /// The host calls that carry the plan out: `(name, Some(value))` sets a header (every copy
    /// replaced; `:path` last, for a new path), `(name, None)` removes every copy. A header
    /// about to be set is not removed first: the set replaces it whole, so a removal would only
    /// cost a host call.
    pub fn edits(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        let set = |name: &String| self.set_headers.iter().any(|(set, _)| set == name);
        let removed = (self.remove_headers.iter()).filter(move |name| !set(name));
        let removed = removed.map(|name| (name.as_str(), None));
        let set = (self.set_headers.iter()).map(|(name, value)| (name.as_str(), Some(value.as_str())));
        let path = self.path.as_deref().map(|path| (":path", Some(path)));
        removed.chain(set).chain(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_head_needs_its_method_and_path() {
        let header = |n: &str, v: &[u8]| (n.to_owned(), v.to_vec());
        let head = RequestHead::of(vec![header(":method", b"GET"), header(":path", b"/x")], None);
        assert_eq!(
            head.map(|h| (h.method, h.path)),
            Some(("GET".into(), "/x".into()))
        );
        assert!(RequestHead::of(vec![header(":path", b"/x")], None).is_none());
        assert!(RequestHead::of(vec![header(":method", b"GET"), header(":path", b"\xff")], None).is_none());
    }

    #[test]
    fn a_forward_removes_what_it_does_not_set_then_sets_then_changes_the_path() {
        let forward = Forward {
            remove_headers: vec!["x-user".into(), "authorization".into()],
            set_headers: vec![("x-user".into(), "fred".into())],
            path: Some("/y".into()),
        };
        let edits: Vec<_> = forward.edits().collect();
        assert_eq!(
            edits,
            [
                ("authorization", None),
                ("x-user", Some("fred")),
                (":path", Some("/y"))
            ]
        );
        assert_eq!(Forward::default().edits().count(), 0);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(Forward),
    Deny(Denial),
}

/// Who a verified credential speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub family: Family,
    pub user: String,
    pub tenant: Option<String>,
    /// Claims forwarded as headers (JWT providers).
    pub claim_headers: Vec<(String, String)>,
    /// Keep the `Authorization` header for the application.
    pub forward_token: bool,
}

/// A verified request waiting for the directory's word on its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub(crate) identity: Identity,
    pub(crate) location: Location,
    pub(crate) forwarded_path: Option<String>,
    pub(crate) challenges: Challenges,
}

impl Pending {
    pub fn user(&self) -> &str {
        &self.identity.user
    }
}

/// Where a request stands after [`begin`](crate::decide::begin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Done(Decision),
    /// Ask the directory about `pending.user()` (the shell consults its cache first).
    LookUpUser {
        pending: Pending,
        callout: Callout,
    },
    /// Wait for `provider`'s remote JWKS: not loaded yet, or (`refetch`) the token names a
    /// `kid` the loaded keys lack. The worker decides again once keys arrive or the wait ends.
    WaitForKeys {
        provider: String,
        refetch: bool,
    },
    /// Ask the token provider about an opaque token; requests with the same `key` share one
    /// callout. Continue with [`after_provider`](crate::opaque::after_provider).
    AskProvider {
        pending: PendingToken,
        callout: Callout,
        key: CacheKey,
    },
    /// The decision needs the request body (an OAuth 1.0a signature over a form): the worker
    /// reads at most `max_bytes` of it within `timeout_ms` and decides again with
    /// [`RequestHead::body`] set (more: [`DenyReason::BodyTooLarge`]; too late:
    /// [`DenyReason::BodyTimeout`]).
    ReadBody {
        max_bytes: usize,
        timeout_ms: u64,
    },
    /// Ask the token service about an OAuth 1.0a access token; requests with the same `key`
    /// share one callout. Continue with
    /// [`after_answer`](crate::oauth1_provider::after_answer).
    AskOAuth1 {
        pending: PendingSigned,
        callout: Callout,
        key: CacheKey,
    },
}

impl Step {
    /// Gives a denial the challenges of the request's rule.
    #[must_use]
    pub(crate) fn challenging(self, challenges: Challenges) -> Self {
        match self {
            Step::Done(Decision::Deny(denial)) => Step::Done(Decision::Deny(denial.challenging(challenges))),
            other => other,
        }
    }
}

/// Why verification did not produce an identity.
pub(crate) enum Refusal {
    Deny(Denial),
    WaitForKeys {
        provider: String,
        refetch: bool,
    },
    AskProvider {
        provider: String,
        key: CacheKey,
        callout: Box<Callout>,
        basic_user: Option<String>,
    },
    /// `Basic user:password` on a route that lets the application check passwords.
    PassThrough,
}

impl From<Denial> for Refusal {
    fn from(denial: Denial) -> Self {
        Refusal::Deny(denial)
    }
}

pub(crate) fn deny(family: Family, reason: DenyReason) -> Step {
    Step::Done(Decision::Deny(Denial::new(family, reason)))
}

/// An opaque token waiting for its provider's answer (the token itself is not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingToken {
    pub(crate) provider: String,
    pub(crate) key: CacheKey,
    pub(crate) context: TokenContext,
    pub(crate) location: Location,
    pub(crate) forwarded_path: Option<String>,
    /// The schemes of the request's rule, for the challenges of a denial after the answer.
    pub(crate) challenges: Challenges,
}

/// What the route asks of an opaque token beyond the provider's word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenContext {
    pub(crate) scopes: Vec<String>,
    /// The user of `Basic user:token`: the token must be theirs.
    pub(crate) basic_user: Option<String>,
    pub(crate) basic_passwords: BasicPasswords,
}

impl PendingToken {
    pub fn provider(&self) -> &str {
        &self.provider
    }
}

/// An OAuth 1.0a signed request waiting for the token service's word on its access token:
/// what its signature and nonce are checked with once the consumer's key is known.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingSigned {
    pub(crate) provider: String,
    pub(crate) signed: SignedRequest,
    /// The schemes of the request's rule, for the challenges of a denial after the answer.
    pub(crate) challenges: Challenges,
}

impl PendingSigned {
    pub fn provider(&self) -> &str {
        &self.provider
    }

    pub fn consumer_key(&self) -> &str {
        &self.signed.consumer_key
    }
}

/// The token and the base string (which holds it) are not printed.
impl std::fmt::Debug for PendingSigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PendingSigned({} consumer {:?})",
            self.provider, self.signed.consumer_key
        )
    }
}

/// What an OAuth 1.0a request's signature and nonce are checked with.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SignedRequest {
    pub(crate) consumer_key: String,
    pub(crate) token: String,
    pub(crate) nonce: String,
    pub(crate) timestamp: u64,
    /// `oauth_signature`, decoded.
    pub(crate) signature: String,
    /// The signature base string (RFC 5849 section 3.4.1) of the request as received.
    pub(crate) base_string: String,
}

/// A refetch for an unknown `kid` was refused (rate limit) or brought no such key.
pub fn unknown_key() -> Decision {
    Decision::Deny(Denial::new(
        Family::OAuth,
        DenyReason::InvalidToken(JwtError::NoMatchingKey),
    ))
}

/// The wait for a provider's JWKS ran out with no keys.
pub fn keys_unavailable() -> Decision {
    Decision::Deny(Denial::new(Family::OAuth, DenyReason::KeysUnavailable))
}
