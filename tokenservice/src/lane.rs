//! Which pool a request is answered on: [`Lane::Password`] for the requests whose credential is
//! checked with argon2 (a Basic password on a management endpoint), [`Lane::Fast`] for every
//! other one (`/introspect`, API tokens, anonymous calls).
//!
//! argon2 is slow on purpose (tens of milliseconds and 19 MiB per check). Answered on the same
//! threads as `/introspect`, password traffic (an attacker guessing, or a script logging in with
//! a password in a loop) made the filter's introspection callouts queue behind it, and a fresh
//! valid API token got 503 through Envoy. The server runs the two lanes on separate, bounded
//! pools, so introspection never waits for a password check.
//!
//! The decision mirrors [`crate::auth::authenticate`]: it checks a Basic secret with the
//! directory's password check exactly when the secret is not shaped like one of our tokens
//! ([`PresentedToken::parse`]), and `/introspect` compares its client secret in constant time
//! without hashing it.

use crate::api::{Request, PREFIX};
use crate::auth::{self, Credential};
use crate::tokens::PresentedToken;

/// Where a request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// No password hash to compute: answered on the general pool.
    Fast,
    /// Carries a password that the directory will hash: answered on the bounded password pool,
    /// or refused 503 when its queue is full.
    Password,
}

/// The lane of `request`, from its path and its `Authorization` header only (the body is not
/// needed, so the lane is known before the body is read).
pub fn lane(request: &Request) -> Lane {
    let path = request.url.split('?').next().unwrap_or_default();
    if !path.starts_with(PREFIX) {
        return Lane::Fast;
    }
    match auth::credential(&request.headers) {
        Ok(Credential::Basic { secret, .. }) if PresentedToken::parse(&secret).is_none() => Lane::Password,
        _ => Lane::Fast,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tests::{as_user, basic, request};

    const TOKEN: &str = "tgat_3bd0e41cc93f584d2cc8a60e_-l28L565KIsCpQ3oXu-Ybrb0zprThPP1NHM0ieBt6xY";

    #[test]
    fn only_a_basic_password_on_the_rest_api_takes_the_password_lane() {
        let api = |route: &str| format!("{PREFIX}{route}");
        let bearer = ("authorization".to_owned(), format!("Bearer {TOKEN}"));
        let cases = [
            ("GET", api("/user/token"), Some(as_user("fred")), Lane::Password),
            ("POST", api("/user/token"), Some(as_user("fred")), Lane::Password),
            (
                "DELETE",
                api("/user/failedLogins/fred"),
                Some(as_user("admin")),
                Lane::Password,
            ),
            // A Basic secret shaped like a token is checked as a token: no argon2.
            (
                "GET",
                api("/user/token"),
                Some(basic(&format!("fred:{TOKEN}"))),
                Lane::Fast,
            ),
            ("GET", api("/user/token"), Some(bearer.clone()), Lane::Fast),
            ("GET", api("/user/token"), None, Lane::Fast),
            // A malformed header is refused without a password check.
            (
                "GET",
                api("/user/token"),
                Some(("authorization".to_owned(), "Basic !!".to_owned())),
                Lane::Fast,
            ),
            // Introspection compares its client secret in constant time, never with argon2.
            (
                "POST",
                "/introspect".to_owned(),
                Some(basic("tokengate:some-secret")),
                Lane::Fast,
            ),
            (
                "POST",
                "/introspect".to_owned(),
                Some(as_user("fred")),
                Lane::Fast,
            ),
            // Paths that are not the REST API are 404 before any credential is looked at.
            ("GET", "/elsewhere".to_owned(), Some(as_user("fred")), Lane::Fast),
        ];
        for (method, url, auth, expected) in cases {
            let request = request(method, &url, auth, "");
            assert_eq!(lane(&request), expected, "{method} {url}");
        }
    }

    #[test]
    fn a_token_like_password_that_is_not_a_token_is_a_password() {
        // One character short: not one of our tokens, so authenticate checks it as a password.
        let almost = &TOKEN[..TOKEN.len() - 1];
        let request = request(
            "GET",
            &format!("{PREFIX}/user/token"),
            Some(basic(&format!("fred:{almost}"))),
            "",
        );
        assert_eq!(lane(&request), Lane::Password);
    }
}
