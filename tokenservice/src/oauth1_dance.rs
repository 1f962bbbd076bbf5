//! The consumer's two steps of the OAuth 1.0a dance, on Jira's paths (the user's step between
//! them is [`crate::oauth1_authorize`]):
//!
//! - `POST /plugins/servlet/oauth/request-token`: signed by the consumer with `oauth_callback`
//!   (`oob` or under one of its callback prefixes); answers a fresh request token, single use
//!   and short lived, bound to the consumer, its callback and the authorize form's CSRF value;
//! - `POST /plugins/servlet/oauth/access-token`: signed by the consumer with the request token
//!   and `oauth_verifier`; the request token is taken (deleted) once the signature verified,
//!   whatever happens next, so it is single use across replicas, and an access token of the
//!   user who approved it is answered.
//!
//! Answers are `application/x-www-form-urlencoded` as Jira's; refusals as Jira's OAuth
//! servlets (net.oauth) write them: 401 with `WWW-Authenticate: OAuth realm="<base url>",
//! oauth_problem="<problem>"` and the body `oauth_problem=<problem>&oauth_problem_advice=<text>`.
//! Every answer is `cache-control: no-store`. Values are 43 characters of base64url (32 random
//! bytes) and stored only as SHA-256 ([`crate::oauth_tokens`]).

use crate::config::OAuth1;
use crate::http::{Request, Response};
use crate::oauth1_signed::{self, Refusal, Step};
use crate::oauth_tokens;
use crate::service::Service;
use crate::store::{NewAccessToken, NewRequestToken, RequestTokenState, StoreError};
use oauth1::Problem;

pub const REQUEST_TOKEN_PATH: &str = "/plugins/servlet/oauth/request-token";
pub const ACCESS_TOKEN_PATH: &str = "/plugins/servlet/oauth/access-token";

/// What the consumer is told, beside the problem's name.
pub fn advice(problem: Problem) -> &'static str {
    match problem {
        Problem::ParameterAbsent => "A required OAuth parameter is missing.",
        Problem::ParameterRejected => "An OAuth parameter is malformed, repeated, or not allowed here.",
        Problem::VersionRejected => "Only OAuth 1.0 is supported.",
        Problem::SignatureMethodRejected => "Only RSA-SHA1 signatures are accepted.",
        Problem::SignatureInvalid => "The signature does not verify with the consumer's public key.",
        Problem::TimestampRefused => "oauth_timestamp is too far from the server's time.",
        Problem::NonceUsed => "This oauth_nonce has already been used.",
        Problem::ConsumerKeyUnknown => "No application link is registered with this consumer key.",
        Problem::TokenRejected => "The token is unknown, already used, or not this consumer's.",
        Problem::TokenExpired => "The token has expired.",
        Problem::PermissionDenied => "The user denied access.",
        _ => "The request was refused.",
    }
}

/// The realm of a refusal: the public base URL the client used (as `links.rs` chooses it),
/// else the service's name.
pub fn realm(service: &Service, request: &Request) -> String {
    oauth1_signed::base_url(&service.config, &request.headers).unwrap_or_else(|| "tokengate".to_owned())
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        out.append_pair(name, value);
    }
    out.finish()
}

/// A form answer.
fn form_response(status: u16, body: String) -> Response {
    Response {
        status,
        headers: vec![
            (
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            ),
            ("cache-control".to_owned(), "no-store".to_owned()),
        ],
        body,
    }
}

/// The refusal of a dance request with `problem`, under `realm`.
pub fn problem_response(realm: &str, problem: Problem) -> Response {
    // The realm is a configured URL or `host` as validated by the base string's URI check:
    // neither holds a `"` or `\`; they are dropped all the same.
    let realm: String = realm.chars().filter(|c| *c != '"' && *c != '\\').collect();
    form_response(
        401,
        form(&[
            ("oauth_problem", problem.name()),
            ("oauth_problem_advice", advice(problem)),
        ]),
    )
    .with_header(
        "www-authenticate",
        &format!("OAuth realm=\"{realm}\", oauth_problem=\"{}\"", problem.name()),
    )
}

fn refusal_response(service: &Service, request: &Request, refusal: Refusal) -> Response {
    match refusal {
        Refusal::Problem(problem) => problem_response(&realm(service, request), problem),
        Refusal::Busy => Response::error(503, "Too many signed requests at once. Please try again later.")
            .with_header("retry-after", "1"),
    }
}

fn internal(e: &StoreError) -> Response {
    eprintln!("tokengate-tokens: {e}");
    Response::error(500, crate::api::messages::INTERNAL)
}

fn random_failed() -> Response {
    eprintln!("tokengate-tokens: the OS random source failed");
    Response::error(500, crate::api::messages::INTERNAL)
}

/// The signature check of `request` for `step` with this service's base URL and nonces.
fn signed<'a>(
    service: &'a Service,
    oauth1: &'a OAuth1,
    request: &Request,
    step: Step,
    now: i64,
) -> Result<oauth1_signed::Signed<'a>, Response> {
    let Some(base) = oauth1_signed::base_url(&service.config, &request.headers) else {
        return Err(refusal_response(
            service,
            request,
            Refusal::Problem(Problem::ParameterRejected),
        ));
    };
    oauth1_signed::check(oauth1, &service.oauth1_nonces, &base, request, step, now)
        .map_err(|refusal| refusal_response(service, request, refusal))
}

/// `POST /plugins/servlet/oauth/request-token`.
pub fn request_token(service: &Service, oauth1: &OAuth1, request: &Request, now: i64) -> Response {
    let signed = match signed(service, oauth1, request, Step::RequestToken, now) {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let callback = signed.authorization.callback.as_deref().unwrap_or_default();
    if !crate::oauth1_callback::allowed(callback, &signed.consumer.callbacks) {
        return problem_response(&realm(service, request), Problem::ParameterRejected);
    }
    let (Ok(token), Ok(secret)) = (oauth_tokens::generate(), oauth_tokens::generate()) else {
        return random_failed();
    };
    let csrf = crate::oauth1_csrf::value(&service.config.introspection.client_secret, &token.plain);
    // Expired request tokens go now and then (here: whenever one is made), so the table stays
    // bounded by the rate of the dance times the request tokens' lifetime.
    if let Err(e) = service.store.purge_request_tokens(now) {
        return internal(&e);
    }
    let created = service.store.create_request_token(&NewRequestToken {
        hash: &token.hash,
        secret_hash: &secret.hash,
        consumer_key: &signed.consumer.consumer_key,
        callback,
        csrf_hash: &crate::oauth1_csrf::hash(&csrf),
        created: now,
        expires: now.saturating_add(oauth1.request_token_ttl_ms),
    });
    if let Err(e) = created {
        return internal(&e);
    }
    form_response(
        200,
        form(&[
            ("oauth_token", &token.plain),
            ("oauth_token_secret", &secret.plain),
            ("oauth_callback_confirmed", "true"),
        ]),
    )
}

/// `POST /plugins/servlet/oauth/access-token`.
pub fn access_token(service: &Service, oauth1: &OAuth1, request: &Request, now: i64) -> Response {
    let signed = match signed(service, oauth1, request, Step::AccessToken, now) {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let refuse = |problem| problem_response(&realm(service, request), problem);
    let presented = signed.authorization.token.as_deref().unwrap_or_default();
    let verifier = signed.authorization.verifier.as_deref().unwrap_or_default();
    // Taken once the signature verified, whatever follows: a request token is exchanged at
    // most once, and a wrong verifier cannot be retried.
    let taken = match service.store.take_request_token(&oauth_tokens::hash(presented)) {
        Ok(taken) => taken,
        Err(e) => return internal(&e),
    };
    let Some(record) = taken else {
        return refuse(Problem::TokenRejected);
    };
    if record.consumer_key != signed.consumer.consumer_key {
        return refuse(Problem::TokenRejected);
    }
    if now >= record.expires {
        return refuse(Problem::TokenExpired);
    }
    let user_key = match record.state {
        RequestTokenState::Denied => return refuse(Problem::PermissionDenied),
        RequestTokenState::Pending => return refuse(Problem::TokenRejected),
        RequestTokenState::Authorized {
            user_key,
            verifier_hash,
        } => {
            if !oauth_tokens::hashes_equal(&oauth_tokens::hash(verifier), &verifier_hash) {
                return refuse(Problem::TokenRejected);
            }
            user_key
        }
    };
    // The user who approved may have gone, or been deactivated, since.
    if !service
        .directory
        .by_key(&user_key)
        .is_some_and(|user| user.active)
    {
        return refuse(Problem::PermissionDenied);
    }
    let (Ok(token), Ok(secret), Ok(session)) = (
        oauth_tokens::generate(),
        oauth_tokens::generate(),
        oauth_tokens::generate(),
    ) else {
        return random_failed();
    };
    let created = service.store.create_access_token(&NewAccessToken {
        hash: &token.hash,
        secret_hash: &secret.hash,
        session_hash: &session.hash,
        consumer_key: &signed.consumer.consumer_key,
        user_key: &user_key,
        created: now,
        expires: now.saturating_add(oauth1.access_token_ttl_ms),
        authorization_expires: now.saturating_add(oauth1.authorization_ttl_ms),
    });
    if let Err(e) = created {
        return internal(&e);
    }
    let expires_in = (oauth1.access_token_ttl_ms / 1000).to_string();
    let authorization_expires_in = (oauth1.authorization_ttl_ms / 1000).to_string();
    form_response(
        200,
        form(&[
            ("oauth_token", &token.plain),
            ("oauth_token_secret", &secret.plain),
            ("oauth_expires_in", &expires_in),
            ("oauth_session_handle", &session.plain),
            ("oauth_authorization_expires_in", &authorization_expires_in),
        ]),
    )
}
