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
//! `POST /plugins/servlet/oauth/authorize` (the OAuth 1.0a authorize form, whose body holds a
//! password or an API token) always takes the password lane.
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
    // The OAuth 1.0a authorize form carries a password (or an API token) in its body: always
    // the password lane, whichever it is (the lane is no secret check, only a pool).
    if path == crate::oauth1_page::AUTHORIZE_PATH && request.method == "POST" {
        return Lane::Password;
    }
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
            // The OAuth 1.0a authorize form posts a password in its body; its page does not.
            (
                "POST",
                "/plugins/servlet/oauth/authorize".to_owned(),
                None,
                Lane::Password,
            ),
            (
                "GET",
                "/plugins/servlet/oauth/authorize?oauth_token=x".to_owned(),
                None,
                Lane::Fast,
            ),
            (
                "POST",
                "/plugins/servlet/oauth/request-token".to_owned(),
                None,
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

    /// A directory that counts its password checks.
    struct Counting {
        inner: &'static crate::users::FileDirectory,
        checks: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    impl crate::users::Directory for Counting {
        fn by_name(&self, name: &str) -> Option<crate::users::User> {
            self.inner.by_name(name)
        }
        fn by_key(&self, key: &str) -> Option<crate::users::User> {
            self.inner.by_key(key)
        }
        fn check_password(&self, name: &str, password: &str) -> Option<crate::users::User> {
            self.checks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.check_password(name, password)
        }
    }

    fn authorization() -> impl proptest::strategy::Strategy<Value = Option<(String, String)>> {
        use base64::engine::general_purpose::STANDARD;
        use base64::Engine as _;
        use proptest::prelude::*;
        let secret = prop_oneof![
            Just(TOKEN.to_owned()),
            Just(TOKEN[..TOKEN.len() - 1].to_owned()),
            Just("fred-password".to_owned()),
            "[ -~]{0,80}",
            "tgat_[0-9a-f]{24}_[A-Za-z0-9_-]{43}",
        ];
        let user = prop_oneof![Just("fred".to_owned()), Just("FRED".to_owned()), "[ -~]{0,12}"];
        let value = prop_oneof![
            (user, secret.clone())
                .prop_map(|(u, s)| format!("Basic {}", STANDARD.encode(format!("{u}:{s}")))),
            secret.clone().prop_map(|s| format!("Bearer {s}")),
            secret.prop_map(|s| format!("bAsIc {}", STANDARD.encode(s))),
            "[ -~]{0,40}",
        ];
        proptest::option::of(value.prop_map(|v| ("authorization".to_owned(), v)))
    }

    fn url() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let route = prop_oneof![
            Just("/user/token".to_owned()),
            Just("/user/token/".to_owned()),
            Just("/user/token/1".to_owned()),
            Just("/user/tokensByFilter?page=0".to_owned()),
            Just("/user/token/deleteAllFor/JIRAUSER10004".to_owned()),
            Just("/user/failedLogins/fred".to_owned()),
            "/[ -~&&[^?#]]{0,20}",
        ];
        prop_oneof![
            route.prop_map(|r| format!("{PREFIX}{r}")),
            Just("/introspect".to_owned()),
            "/[a-z/]{0,20}",
        ]
    }

    proptest::proptest! {
        /// The property the server's lanes rest on: a request the fast lane answers never
        /// runs a password check, whatever its method, path, credential and body.
        #[test]
        fn a_request_on_the_fast_lane_never_checks_a_password(
            method in proptest::sample::select(vec!["GET", "POST", "PATCH", "DELETE", "PUT"]),
            url in url(),
            auth in authorization(),
            body in proptest::prop_oneof![
                proptest::strategy::Just(String::new()),
                proptest::strategy::Just(r#"{"tokenDescription":"d"}"#.to_owned()),
                proptest::strategy::Just(format!("token={TOKEN}&username=fred")),
                "[ -~]{0,40}",
            ],
        ) {
            let request = request(method, &url, auth, &body);
            if lane(&request) == Lane::Password {
                // Answered on the password pool: allowed to check (and too slow to run here).
                return Ok(());
            }
            let checks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            // Built once: the demo directory hashes its passwords with argon2.
            static DEMO: std::sync::OnceLock<crate::users::FileDirectory> = std::sync::OnceLock::new();
            let service = crate::api::Service::new(
                crate::config::Config::for_tests(),
                crate::store::Store::open_in_memory().unwrap(),
                Box::new(Counting {
                    inner: DEMO.get_or_init(crate::users::tests::demo_directory),
                    checks: checks.clone(),
                }),
            );
            let _ = crate::api::handle(&service, &request, crate::api::tests::NOW);
            proptest::prop_assert_eq!(checks.load(std::sync::atomic::Ordering::SeqCst), 0);
        }
    }
}
