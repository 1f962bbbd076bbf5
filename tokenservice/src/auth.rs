//! Who is calling a management endpoint, and whether an API token is good.
//!
//! The REST API accepts what the application accepts (seed 003): `Authorization: Basic
//! base64(user:password)`, `Basic base64(user:api-token)`, or `Bearer <api-token>`.
//!
//! Failures are typed ([`AuthFailure`]) so that the failed-login lockout
//! ([`crate::lockout`], applied around this in `api::with_caller`) counts guesses only: a
//! missing credential, or the right one of an inactive user, is not a failed login.

use crate::store::{Store, StoreError, TokenRecord};
use crate::tokens::PresentedToken;
use crate::users::{Directory, User};

/// A credential from an `Authorization` header. `Debug` does not print secrets.
#[derive(PartialEq, Eq)]
pub enum Credential {
    /// `Basic`: a name and a password or API token.
    Basic { user: String, secret: String },
    /// `Bearer`: an API token alone.
    Bearer(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Basic { user, .. } => write!(f, "Basic({user}, ..)"),
            Credential::Bearer(_) => f.write_str("Bearer(..)"),
        }
    }
}

/// Why a caller is not authenticated. Every one of them is a 401 to the client, with the
/// same message: which one it was is for the log and the failed-login counter only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthFailure {
    /// No `Authorization` header.
    Missing,
    /// Two headers, an unknown scheme, bad base64, no `:` in a Basic pair, not UTF-8.
    Malformed,
    /// Unknown user, wrong password, or an API token that is unknown, expired, or not the
    /// named user's.
    BadCredentials,
    /// Right credentials of a user who is not active.
    Inactive,
}

/// Authentication failed, or could not be decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    Failed(AuthFailure),
    Store(StoreError),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        AuthError::Store(e)
    }
}

/// Reads the one `Authorization` header (header names lower-case). Scheme names are
/// case-insensitive (RFC 9110 section 11.1).
pub fn credential(headers: &[(String, String)]) -> Result<Credential, AuthFailure> {
    let mut values = headers.iter().filter(|(name, _)| name == "authorization");
    let value = match (values.next(), values.next()) {
        (None, _) => return Err(AuthFailure::Missing),
        (Some(_), Some(_)) => return Err(AuthFailure::Malformed),
        (Some((_, value)), None) => value.trim(),
    };
    let (scheme, rest) = value.split_once(' ').ok_or(AuthFailure::Malformed)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        // The project's one Basic parser (RFC 7617; the filter reads the pair the same way).
        let pair = basic_auth::decode(rest).map_err(|_| AuthFailure::Malformed)?;
        Ok(Credential::Basic {
            user: pair.user,
            secret: pair.secret,
        })
    } else if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        Ok(Credential::Bearer(rest.to_owned()))
    } else {
        Err(AuthFailure::Malformed)
    }
}

/// The stored token `plain` stands for, if it is one of ours, matches its hash, and has not
/// expired at `now`. Says nothing about its owner: see [`token_owner`].
pub fn check_token(store: &Store, plain: &str, now: i64) -> Result<Option<TokenRecord>, StoreError> {
    let Some(presented) = PresentedToken::parse(plain) else {
        return Ok(None);
    };
    let Some((record, hash)) = store.find_by_lookup(presented.lookup())? else {
        return Ok(None);
    };
    Ok((presented.matches(&hash) && now < record.valid_until).then_some(record))
}

/// The directory's user owning `record`, if they still exist.
pub fn token_owner(directory: &dyn Directory, record: &TokenRecord) -> Option<User> {
    directory.by_key(&record.user_key)
}

/// An authenticated caller of a management endpoint.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    /// When the call came with an API token (Basic `user:token` or Bearer): that token's
    /// `validUntil`. A token made in this call expires no later (so a stolen token cannot
    /// mint itself a longer life). `None` for a password.
    pub token_valid_until: Option<i64>,
}

impl std::ops::Deref for Caller {
    type Target = User;

    fn deref(&self) -> &User {
        &self.user
    }
}

/// Authenticates a management call from its headers; records the use of an API token.
pub fn authenticate(
    headers: &[(String, String)],
    directory: &dyn Directory,
    store: &Store,
    now: i64,
) -> Result<Caller, AuthError> {
    let failed = |why| Err(AuthError::Failed(why));
    let (user, token) = match credential(headers).map_err(AuthError::Failed)? {
        // A secret shaped like one of our tokens is only ever checked as a token: a password
        // cannot look like that by accident, and tokens skip the slow argon2 check.
        Credential::Basic { user, secret } if PresentedToken::parse(&secret).is_some() => {
            let Some(record) = check_token(store, &secret, now)? else {
                return failed(AuthFailure::BadCredentials);
            };
            match token_owner(directory, &record) {
                Some(owner) if crate::users::same_user(&owner.name, &user) => (owner, Some(record)),
                _ => return failed(AuthFailure::BadCredentials),
            }
        }
        Credential::Basic { user, secret } => match directory.check_password(&user, &secret) {
            Some(user) => (user, None),
            None => return failed(AuthFailure::BadCredentials),
        },
        Credential::Bearer(token) => {
            let Some(record) = check_token(store, &token, now)? else {
                return failed(AuthFailure::BadCredentials);
            };
            match token_owner(directory, &record) {
                Some(owner) => (owner, Some(record)),
                None => return failed(AuthFailure::BadCredentials),
            }
        }
    };
    if !user.active {
        return failed(AuthFailure::Inactive);
    }
    if let Some(record) = &token {
        store.touch(record.id, now)?;
    }
    Ok(Caller {
        user,
        token_valid_until: token.map(|record| record.valid_until),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(pair: &str) -> Vec<(String, String)> {
        let (user, secret) = pair.split_once(':').unwrap_or((pair, ""));
        let value = if pair.contains(':') {
            basic_auth::encode(user, secret)
        } else {
            format!(
                "Basic {}",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, pair)
            )
        };
        vec![("authorization".to_owned(), value)]
    }

    #[test]
    fn basic_splits_at_the_first_colon() {
        assert_eq!(
            credential(&basic("fred:pa:ss")).unwrap(),
            Credential::Basic {
                user: "fred".to_owned(),
                secret: "pa:ss".to_owned()
            }
        );
    }

    #[test]
    fn scheme_names_are_case_insensitive() {
        let headers = vec![("authorization".to_owned(), "bEaReR abc".to_owned())];
        assert_eq!(
            credential(&headers).unwrap(),
            Credential::Bearer("abc".to_owned())
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        let cases = [
            "Basic",
            "Basic !!!",
            "Basic ZnJlZA==",     // "fred", no colon
            "Basic OnNlY3JldA==", // ":secret", no user
            "Bearer ",
            "Digest abc",
            "TISJWT abc",
        ];
        for case in cases {
            let headers = vec![("authorization".to_owned(), case.to_owned())];
            assert_eq!(credential(&headers), Err(AuthFailure::Malformed), "{case}");
        }
    }

    #[test]
    fn two_authorization_headers_are_refused_and_none_is_missing() {
        let mut headers = basic("a:b");
        headers.extend(basic("c:d"));
        assert_eq!(credential(&headers), Err(AuthFailure::Malformed));
        assert_eq!(credential(&[]), Err(AuthFailure::Missing));
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let text = format!("{:?}", credential(&basic("fred:hunter2")).unwrap());
        assert!(!text.contains("hunter2"));
        let text = format!("{:?}", Credential::Bearer("tgat_secret".to_owned()));
        assert!(!text.contains("secret"));
    }
}
