//! One login, checked as every login of the service is: the failed-login lockout first (a
//! locked user or address is refused before any secret is checked), a password counted
//! before its argon2 check, the credential through [`crate::auth::authenticate`] (a password,
//! or an API token of that user), a failure counted against the named user and the client's
//! address, a success ending the user's streak. The REST API's `Authorization` header and the
//! OAuth 1.0a authorize form (`os_username`, `os_password`) both come through here, so a
//! password guessed on the form counts exactly as one guessed on the API.

use crate::auth::{self, AuthError, AuthFailure, Caller, Credential};
use crate::lockout::Attempt;
use crate::service::Service;
use crate::store::StoreError;
use crate::tokens;
use std::net::IpAddr;

/// Why a login is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The named user, or the client's address, is over its failed-login limit (403, Jira's
    /// CAPTCHA state).
    Locked,
    /// No credential, or a wrong one (401).
    Unauthenticated,
    /// The store failed (500).
    Store(StoreError),
}

/// Authenticates the `Authorization` header in `headers` from `address` at `now`.
pub fn login(
    service: &Service,
    headers: &[(String, String)],
    address: Option<IpAddr>,
    now: i64,
) -> Result<Caller, Refused> {
    let (named, password) = match auth::credential(headers) {
        Ok(Credential::Basic { user, secret }) => {
            let password = tokens::PresentedToken::parse(&secret).is_none();
            (Some(user), password)
        }
        _ => (None, false),
    };
    let attempt = Attempt {
        user: named.as_deref(),
        address,
    };
    let gate = service.gate();
    match gate.check(attempt, now) {
        Ok(None) => {}
        Ok(Some(_)) => return Err(Refused::Locked),
        Err(e) => return Err(Refused::Store(e)),
    }
    // A password is counted before its argon2 check, which takes long enough for many
    // parallel guesses to pass the check above before any of them failed.
    let reserved = match (&named, password) {
        (Some(name), true) => match gate.reserve(name, now) {
            Ok(true) => true,
            Ok(false) => return Err(Refused::Locked),
            Err(e) => return Err(Refused::Store(e)),
        },
        _ => false,
    };
    match auth::authenticate(headers, service.directory.as_ref(), &service.store, now) {
        Ok(user) => {
            let settled = match &named {
                Some(name) => gate.succeeded(name).map(|()| false),
                None => gate.user_is_locked(&user.name, now),
            };
            match settled {
                Ok(false) => Ok(user),
                Ok(true) => Err(Refused::Locked),
                Err(e) => Err(Refused::Store(e)),
            }
        }
        Err(AuthError::Failed(why)) => {
            // No credential, or the right one of an inactive user, is no guess.
            match (why, &named) {
                (AuthFailure::Missing, _) => {}
                (AuthFailure::Inactive, Some(name)) if reserved => {
                    gate.succeeded(name).map_err(Refused::Store)?;
                }
                (AuthFailure::Inactive, _) => {}
                _ if reserved => gate.failed_address(address, now),
                _ => {
                    gate.failed(attempt, now).map_err(Refused::Store)?;
                }
            }
            Err(Refused::Unauthenticated)
        }
        Err(AuthError::Store(e)) => Err(Refused::Store(e)),
    }
}
