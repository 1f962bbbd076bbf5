//! Stage 4, decide: run a request through extract, policy and verify, and say what happens
//! to it. A request that needs the user directory pauses as a [`Step::LookUpUser`]; the shell
//! answers it and [`finish`] completes the decision.
//!
//! What an allowed request forwards (identity headers, no credential the application does not
//! need) is [`crate::admit`]'s.

use crate::admit::{anonymous, look_up};
use crate::apitoken::parse_basic;
use crate::bearer::{invalid_bearer, verify_bearer, BearerJwt, JwtProvider};
use crate::challenge::{AuthScheme, Challenges};
use crate::clock::UnixSeconds;
use crate::config::{Config, TISJWT_PROVIDER};
use crate::extract::{self, Credential, ExtractError, Location, Scheme};
use crate::introspect::BearerShape;
use crate::jwt::JwtError;
use crate::oauth1_provider::verify_signed;
use crate::oauth1_question::OAuth1Provider;
use crate::opaque::{family_of, lockout, verify_opaque};
use crate::outcome::{deny, Refusal, TokenContext};
use crate::path::{self, AmbiguousPath};
use crate::policy::{missing_scopes, Rule};
use crate::tisjwt::TisjwtFailure;

pub use crate::admit::finish;
pub use crate::outcome::{keys_unavailable, unknown_key};

// The outcome types and host traits, moved to their leaf modules, are re-exported here so
// that the shell, the benches and the other stages' tests keep naming them `decide::...`.
pub use crate::host::{Counter, Env, Keyring, NoCount};
pub use crate::outcome::{
    Decision, Denial, DenyReason, Family, Forward, Identity, Pending, PendingToken, RequestHead, Step,
};

/// Decides a request as far as it can without asking anyone.
pub fn begin(config: &Config, request: &RequestHead, env: &Env<'_>, now: UnixSeconds) -> Step {
    // No rule owns a path without one meaning, so its answer is in the default family, as
    // for a path no rule matches.
    let path = match path::canonical(&request.path) {
        Ok(path) => path,
        Err(ambiguous) => return deny(default_family(config), DenyReason::AmbiguousPath(ambiguous)),
    };
    let Some(rule) = config.policy.route(&request.method, &path) else {
        return deny(default_family(config), DenyReason::NoRule);
    };
    if rule.providers.is_empty() {
        // A rule without providers is not the filter's to authenticate (the token service
        // checks its own callers): only the identity headers are stripped. Its credentials
        // pass unchecked, so only to the upstream Envoy routes the prefix's own spelling to.
        if !rule.prefix_spelled_in(&request.path) {
            let respelled = DenyReason::AmbiguousPath(AmbiguousPath::RespelledPrefix);
            return deny(default_family(config), respelled);
        }
        return Step::Done(Decision::Allow(anonymous(config)));
    }
    let owner = rule_family(config, rule);
    let challenges = accepted_schemes(config, rule);
    let credential = match extract::extract(&request.headers, &request.path) {
        Ok(credential) => credential,
        Err(ExtractError::Malformed(_)) => {
            return deny(owner, DenyReason::InvalidToken(JwtError::Malformed)).challenging(challenges)
        }
        Err(_) => return deny(owner, DenyReason::AmbiguousCredential).challenging(challenges),
    };
    let credential = match credential {
        Some(c) if !c.value.is_empty() => c,
        _ if rule.allow_anonymous => return Step::Done(Decision::Allow(anonymous(config))),
        _ => return deny(owner, DenyReason::MissingCredential).challenging(challenges),
    };
    let challenges = challenges.used(auth_scheme(&credential.scheme));
    // A signed request needs the whole request (method, URI, body), not only its credential.
    if credential.scheme == Scheme::OAuth {
        let listed = |p: &&OAuth1Provider| rule.providers.contains(&p.name);
        if let Some(provider) = config.oauth1_providers.iter().find(listed) {
            return verify_signed(config, provider, rule, request, &credential, challenges, env, now)
                .challenging(challenges);
        }
    }
    let identity = match verify(
        config,
        rule,
        &credential,
        request.client_address.as_deref(),
        env,
        now,
    ) {
        Ok(identity) => identity,
        Err(Refusal::Deny(denial)) => return Step::Done(Decision::Deny(denial.challenging(challenges))),
        Err(Refusal::WaitForKeys { provider, refetch }) => return Step::WaitForKeys { provider, refetch },
        Err(Refusal::PassThrough) => return Step::Done(Decision::Allow(anonymous(config))),
        Err(Refusal::AskProvider {
            provider,
            key,
            callout,
            basic_user,
        }) => {
            let forwarded_path = forwarded_path(&request.path, credential.location);
            let context = TokenContext {
                scopes: rule.scopes.clone(),
                basic_user,
                basic_passwords: rule.basic_passwords,
            };
            let pending = PendingToken {
                provider,
                key,
                context,
                location: credential.location,
                forwarded_path,
                challenges,
            };
            return Step::AskProvider {
                pending,
                callout: *callout,
                key,
            };
        }
    };
    let forwarded_path = forwarded_path(&request.path, credential.location);
    look_up(
        config,
        Pending {
            identity,
            location: credential.location,
            forwarded_path,
            challenges,
        },
    )
}

fn provider_family(config: &Config, name: &str) -> Family {
    if name == TISJWT_PROVIDER {
        return Family::Tisjwt;
    }
    if config.oauth1_providers.iter().any(|p| p.name == name) {
        return Family::OAuth1;
    }
    match config.oauth_providers.iter().find(|p| p.name == name) {
        Some(provider) => family_of(provider),
        None => Family::OAuth,
    }
}

/// The schemes a rule's providers accept, in its order: what its 401s challenge with.
fn accepted_schemes(config: &Config, rule: &Rule) -> Challenges {
    rule.providers
        .iter()
        .fold(Challenges::UNKNOWN, |challenges, name| {
            match provider_family(config, name) {
                Family::Tisjwt => challenges.accepting(AuthScheme::Tisjwt),
                Family::OAuth => challenges.accepting(AuthScheme::Bearer),
                // API tokens come as the password of Basic or as Bearer (seed 003).
                Family::ApiToken => challenges
                    .accepting(AuthScheme::Basic)
                    .accepting(AuthScheme::Bearer),
                Family::OAuth1 => {
                    let index = config.oauth1_providers.iter().position(|p| &p.name == name);
                    match index.and_then(|i| u16::try_from(i).ok()) {
                        Some(index) => challenges.accepting_oauth1(index),
                        None => challenges.accepting(AuthScheme::OAuth),
                    }
                }
            }
        })
}

/// The challenge scheme of a credential's scheme.
fn auth_scheme(scheme: &Scheme) -> Option<AuthScheme> {
    match scheme {
        Scheme::Tisjwt => Some(AuthScheme::Tisjwt),
        Scheme::Bearer => Some(AuthScheme::Bearer),
        Scheme::Basic => Some(AuthScheme::Basic),
        Scheme::OAuth => Some(AuthScheme::OAuth),
        Scheme::Other => None,
    }
}

/// The first provider of a rule owns the answer to a request with no usable credential.
fn rule_family(config: &Config, rule: &Rule) -> Family {
    rule.providers
        .first()
        .map_or(Family::OAuth, |p| provider_family(config, p))
}

/// The family of answers that belong to no rule (no rule matched, the host failed).
pub fn default_family(config: &Config) -> Family {
    if config.tisjwt.is_some() {
        Family::Tisjwt
    } else {
        Family::OAuth
    }
}

fn verify(
    config: &Config,
    rule: &Rule,
    credential: &Credential,
    client_address: Option<&str>,
    env: &Env<'_>,
    now: UnixSeconds,
) -> Result<Identity, Refusal> {
    let missing = Denial::new(rule_family(config, rule), DenyReason::MissingCredential);
    let accepts = |name: &str| rule.providers.iter().any(|p| p == name);
    match credential.scheme {
        Scheme::Tisjwt if accepts(TISJWT_PROVIDER) => Ok(verify_tisjwt(config, rule, credential, now)?),
        Scheme::Bearer => {
            // In the rule's order (the configuration's maps are sorted by name): the first
            // provider that accepts a token names its user.
            let in_rule_order = |name: &String| config.jwt_providers.iter().find(|p| &p.name == name);
            let providers: Vec<&JwtProvider> = rule.providers.iter().filter_map(in_rule_order).collect();
            let callout_in_rule_order =
                |name: &String| config.oauth_providers.iter().find(|p| &p.name == name);
            let mut callout_providers = rule.providers.iter().filter_map(callout_in_rule_order).peekable();
            let has_callout = callout_providers.peek().is_some();
            let identity = match verify_bearer(&providers, &credential.value, env, now) {
                BearerJwt::Verified(identity) => identity,
                // A JWT goes to a callout provider only if that provider introspects its issuer;
                // otherwise it is an invalid JWT, refused here without a callout.
                BearerJwt::NotOurs(error) if has_callout => {
                    let shape = BearerShape::of(&credential.value);
                    return match callout_providers.find(|p| p.checks(&shape)) {
                        Some(provider) => {
                            verify_opaque(provider, rule, &credential.value, None, client_address, env, now)
                        }
                        None => Err(invalid_bearer(match shape {
                            BearerShape::BrokenJwt(broken) => broken,
                            BearerShape::Jwt { .. } | BearerShape::Opaque => error,
                        })),
                    };
                }
                BearerJwt::NotOurs(_) if providers.is_empty() => return Err(missing.into()),
                BearerJwt::NotOurs(error) => return Err(invalid_bearer(error)),
                BearerJwt::Refused(refusal) => return Err(*refusal),
            };
            require_scopes(rule, &identity.scopes, Family::OAuth)?;
            let forward_token = providers
                .iter()
                .any(|p| p.name == identity.provider && p.forward_token);
            Ok(Identity {
                family: Family::OAuth,
                user: identity.user,
                tenant: None,
                claim_headers: identity.headers,
                forward_token,
            })
        }
        Scheme::Basic => {
            let api_tokens = config
                .oauth_providers
                .iter()
                .find(|p| p.api_tokens.is_some() && accepts(&p.name));
            let Some(provider) = api_tokens else {
                return Err(missing.into());
            };
            let Some(basic) = parse_basic(&credential.value) else {
                return Err(Denial::new(Family::ApiToken, DenyReason::MalformedBasic).into());
            };
            if let Some(locked) = lockout(provider, &basic.user, env, now) {
                return Err(locked.into());
            }
            verify_opaque(
                provider,
                rule,
                &basic.secret,
                Some(&basic.user),
                client_address,
                env,
                now,
            )
        }
        _ => Err(missing.into()),
    }
}

fn verify_tisjwt(
    config: &Config,
    rule: &Rule,
    credential: &Credential,
    now: UnixSeconds,
) -> Result<Identity, Denial> {
    let missing = Denial::new(Family::Tisjwt, DenyReason::MissingCredential);
    let provider = config.tisjwt.as_ref().ok_or(missing.clone())?;
    if credential.location == Location::QueryParameter && !provider.allow_query_parameter {
        return Err(missing);
    }
    let identity = provider.verify(&credential.value, now).map_err(|failure| {
        Denial::new(
            Family::Tisjwt,
            match failure {
                TisjwtFailure::Invalid(JwtError::Expired) => DenyReason::ExpiredToken,
                TisjwtFailure::Invalid(e) => DenyReason::InvalidToken(e),
                TisjwtFailure::LicenseInvalid => DenyReason::LicenseInvalid,
            },
        )
    })?;
    // TISJWT tokens carry no OAuth scopes: a route that needs scopes refuses them.
    require_scopes(rule, &[], Family::Tisjwt)?;
    Ok(Identity {
        family: Family::Tisjwt,
        user: identity.user,
        tenant: identity.tenant,
        claim_headers: Vec::new(),
        forward_token: false,
    })
}

fn require_scopes(rule: &Rule, granted: &[String], family: Family) -> Result<(), Denial> {
    let missing = missing_scopes(&rule.scopes, granted);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Denial::new(
            family,
            DenyReason::InsufficientScope(rule.scopes.clone()),
        ))
    }
}

fn forwarded_path(path: &str, location: Location) -> Option<String> {
    (location == Location::QueryParameter).then(|| extract::without_tisjwt(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::MapStore;
    use crate::cache::SharedStore;
    use crate::directory::{DirectoryError, UserStatus};
    use crate::hostcrypto::ModuleOnly;
    use crate::introspect::{ProviderFailure, TokenInfo};
    use crate::jwk::KeySet;
    use crate::jwks_cache::Generation;
    use crate::jwt::tests::{sign_raw, SECRET};
    use crate::jwt::Algorithm;
    use crate::opaque::after_provider;
    use std::rc::Rc;
    use tokengate_demo::keys::TestKey;

    const NOW: UnixSeconds = 1_700_000_000;

    fn config_with(tisjwt_extra: &str, rest: &str) -> Config {
        let secret = std::str::from_utf8(SECRET).unwrap();
        let json = format!(r#"{{"tisjwt":{{"secret":"{secret}"{tisjwt_extra}}}{rest}}}"#);
        Config::from_json(json.as_bytes()).unwrap()
    }

    fn config(extra: &str) -> Config {
        config_with(extra, r#","directory":{"inactive_users":["gone"]}"#)
    }

    fn token(sub: &str) -> String {
        let claims = format!(r#"{{"sub":"{sub}","clientKey":"t1","exp":{}}}"#, NOW + 600);
        sign_raw(Algorithm::HS256, r#"{"alg":"HS256"}"#, &claims, SECRET)
    }

    fn request(path: &str, headers: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            method: "GET".into(),
            path: path.to_owned(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
            client_address: None,
            body: None,
            has_body: false,
        }
    }

    fn env_with(store: &MapStore) -> Env<'_> {
        crate::test_support::env_over(store)
    }

    /// The decision on `request`, its challenges left out (they have their own tests).
    fn decide(config: &Config, request: &RequestHead) -> Decision {
        match begin(config, request, &env_with(&MapStore::default()), NOW) {
            Step::Done(decision) => plain(decision),
            other => panic!("not done: {other:?}"),
        }
    }

    /// `decision` without the challenges of its rule, to compare reasons and families.
    fn plain(decision: Decision) -> Decision {
        match decision {
            Decision::Deny(denial) => Decision::Deny(denial.challenging(Challenges::UNKNOWN)),
            allow => allow,
        }
    }

    fn tis_denial(reason: DenyReason) -> Decision {
        Decision::Deny(Denial::new(Family::Tisjwt, reason))
    }

    #[test]
    fn a_header_token_is_allowed_and_stripped_with_spoofed_identity_headers() {
        let auth = format!("TISJWT {}", token("fred"));
        let req = request(
            "/rest/api/2/myself",
            &[("authorization", &auth), ("x-tokengate-user", "admin")],
        );
        assert_eq!(
            decide(&config(""), &req),
            Decision::Allow(Forward {
                remove_headers: vec![
                    "x-tokengate-user".into(),
                    "x-tokengate-tenant".into(),
                    "authorization".into()
                ],
                set_headers: vec![
                    ("x-tokengate-user".into(), "fred".into()),
                    ("x-tokengate-tenant".into(), "t1".into())
                ],
                path: None,
            })
        );
    }

    #[test]
    fn a_query_token_is_removed_from_the_path_and_authorization_is_kept() {
        let path = format!("/rest/export/status?a=1&tisjwt={}&b=2", token("fred"));
        let Decision::Allow(forward) = decide(&config(""), &request(&path, &[])) else {
            panic!("denied")
        };
        assert_eq!(forward.path.as_deref(), Some("/rest/export/status?a=1&b=2"));
        assert!(!forward.remove_headers.contains(&"authorization".to_string()));
    }

    #[test]
    fn a_query_token_under_another_spelling_is_used_and_removed() {
        let token = token("fred");
        for name in ["TISJWT", "%74isjwt", "TisJwt"] {
            let path = format!("/rest/x?a=%2F&{name}={token}&b=+");
            let Decision::Allow(forward) = decide(&config(""), &request(&path, &[])) else {
                panic!("{name}: denied")
            };
            assert_eq!(forward.path.as_deref(), Some("/rest/x?a=%2F&b=+"), "{name}");
        }
        let smuggled = format!("/rest/x?tisjwt={token}&%74isjwt=anything");
        assert_eq!(
            decide(&config(""), &request(&smuggled, &[])),
            tis_denial(DenyReason::AmbiguousCredential)
        );
    }

    #[test]
    fn query_tokens_can_be_disabled() {
        let path = format!("/x?tisjwt={}", token("fred"));
        let decision = decide(&config(r#","allow_query_parameter":false"#), &request(&path, &[]));
        assert_eq!(decision, tis_denial(DenyReason::MissingCredential));
    }

    #[test]
    fn each_failure_has_its_reason() {
        let cfg = config(r#","licenses":[{"client_key":"t1","valid_until":"2099-01-01"}]"#);
        let gone = format!("TISJWT {}", token("gone"));
        let cases: Vec<(RequestHead, DenyReason)> = vec![
            (request("/", &[]), DenyReason::MissingCredential),
            (request("/?tisjwt=", &[]), DenyReason::MissingCredential),
            (
                request("/", &[("authorization", "TISJWT")]),
                DenyReason::MissingCredential,
            ),
            (
                request("/", &[("authorization", "Bearer abc")]),
                DenyReason::MissingCredential,
            ),
            (
                request("/", &[("authorization", "TISJWT a.b.c")]),
                DenyReason::InvalidToken(JwtError::BadEncoding),
            ),
            (
                request("/?tisjwt=%zz", &[]),
                DenyReason::InvalidToken(JwtError::Malformed),
            ),
            (
                request("/?tisjwt=a", &[("authorization", "TISJWT a")]),
                DenyReason::AmbiguousCredential,
            ),
            (
                request(
                    "/",
                    &[("authorization", "TISJWT a"), ("authorization", "TISJWT b")],
                ),
                DenyReason::AmbiguousCredential,
            ),
            (
                request("/", &[("authorization", &gone)]),
                DenyReason::InactiveUser,
            ),
        ];
        for (req, reason) in cases {
            assert_eq!(decide(&cfg, &req), tis_denial(reason), "{req:?}");
        }
        let unlicensed = config(r#","licenses":[]"#);
        let req = request("/", &[("authorization", &format!("TISJWT {}", token("fred")))]);
        assert_eq!(decide(&unlicensed, &req), tis_denial(DenyReason::LicenseInvalid));
    }

    #[test]
    fn an_expired_token_has_its_own_reason() {
        let claims = format!(r#"{{"sub":"fred","exp":{}}}"#, NOW - 600);
        let expired = sign_raw(Algorithm::HS256, r#"{"alg":"HS256"}"#, &claims, SECRET);
        let req = request("/", &[("authorization", &format!("TISJWT {expired}"))]);
        assert_eq!(decide(&config(""), &req), tis_denial(DenyReason::ExpiredToken));
    }

    #[test]
    fn rules_choose_anonymous_access_scopes_and_refuse_unmatched_paths() {
        let rules = r#","rules":[
            {"path_prefix":"/public/","providers":[],"allow_anonymous":true},
            {"path_prefix":"/rest/scoped/","providers":["tisjwt"],"scopes":["read:jira-work"]},
            {"path_prefix":"/rest/","providers":["tisjwt"]}]"#;
        let cfg = config_with("", rules);
        let auth = format!("TISJWT {}", token("fred"));
        let public = decide(&cfg, &request("/public/logo", &[("x-tokengate-user", "admin")]));
        assert_eq!(
            public,
            Decision::Allow(Forward {
                remove_headers: vec!["x-tokengate-user".into(), "x-tokengate-tenant".into()],
                ..Forward::default()
            })
        );
        assert_eq!(
            decide(&cfg, &request("/public/../rest/x", &[])),
            tis_denial(DenyReason::MissingCredential)
        );
        assert_eq!(
            decide(&cfg, &request("/rest/scoped/x", &[("authorization", &auth)])),
            tis_denial(DenyReason::InsufficientScope(vec!["read:jira-work".into()]))
        );
        assert!(matches!(
            decide(&cfg, &request("/rest/x", &[("authorization", &auth)])),
            Decision::Allow(_)
        ));
        assert_eq!(
            decide(&cfg, &request("/other", &[])),
            tis_denial(DenyReason::NoRule)
        );
    }

    #[test]
    fn rules_see_the_path_tomcat_resolves_and_an_ambiguous_path_is_refused_first() {
        let rules = r#","rules":[
            {"path_prefix":"/public/","providers":[],"allow_anonymous":true},
            {"path_prefix":"/rest/scoped/","providers":["tisjwt"],"scopes":["read:jira-work"]},
            {"path_prefix":"/rest/","providers":["tisjwt"]}]"#;
        let cfg = config_with("", rules);
        let auth = format!("TISJWT {}", token("fred"));
        for path in [
            "/public/..;/rest/x",
            "/public;x/%2e%2e/rest/x",
            "/p%75blic/../rest/x",
        ] {
            assert_eq!(
                decide(&cfg, &request(path, &[])),
                tis_denial(DenyReason::MissingCredential),
                "{path}"
            );
        }
        for path in ["/rest/scoped;x/y", "/rest/%73coped/y", "/rest/x/..;/scoped/y"] {
            assert_eq!(
                decide(&cfg, &request(path, &[("authorization", &auth)])),
                tis_denial(DenyReason::InsufficientScope(vec!["read:jira-work".into()])),
                "{path}"
            );
        }
        // Even on a route that needs no credential, and before the credential is looked at.
        for (path, form) in [
            ("/public/%2F", AmbiguousPath::EncodedSlash),
            ("/public/a%5Cb", AmbiguousPath::Backslash),
            ("/public/x./", AmbiguousPath::DotSegment),
            ("/..;/public/", AmbiguousPath::AboveRoot),
        ] {
            let two_credentials = [("authorization", auth.as_str()), ("authorization", auth.as_str())];
            assert_eq!(
                decide(&cfg, &request(path, &two_credentials)),
                tis_denial(DenyReason::AmbiguousPath(form)),
                "{path}"
            );
        }
    }

    #[test]
    fn a_rule_without_providers_passes_only_its_prefix_as_written() {
        let rules = r#","rules":[
            {"path_prefix":"/rest/tokens/","providers":[],"allow_anonymous":true},
            {"path_prefix":"/","providers":["tisjwt"]}]"#;
        let cfg = config_with("", rules);
        for path in [
            "/rest/tokens/latest/user",
            "/rest/tokens/latest/user?x=1",
            "/rest/tokens/admin/lockout/fred%40example.com",
            "/rest/tokens/a/..;/b",
        ] {
            assert!(
                matches!(decide(&cfg, &request(path, &[])), Decision::Allow(_)),
                "{path}"
            );
        }
        // Envoy's `prefix: /rest/tokens/` route matches none of these spellings: they would
        // reach the application, with the Authorization header the rule passes unchecked.
        for path in [
            "/rest;x/tokens/latest/user",
            "/rest/tokens;x/latest/user",
            "/rest/tok%65ns/latest/user",
            "//rest/tokens/latest/user",
            "/rest/./tokens/latest/user",
            "/x/../rest/tokens/latest/user",
        ] {
            assert_eq!(
                decide(&cfg, &request(path, &[])),
                tis_denial(DenyReason::AmbiguousPath(AmbiguousPath::RespelledPrefix)),
                "{path}"
            );
        }
    }

    #[test]
    fn a_callout_directory_pauses_the_request_and_its_answer_decides() {
        let cfg = config_with("", r#","directory":{"callout":{"cluster":"jira"}}"#);
        let req = request("/x", &[("authorization", &format!("TISJWT {}", token("fred")))]);
        let store = MapStore::default();
        let Step::LookUpUser { pending, callout } = begin(&cfg, &req, &env_with(&store), NOW) else {
            panic!("no lookup")
        };
        assert_eq!(callout.path, "/rest/api/2/user?username=fred");
        assert!(matches!(
            finish(&cfg, pending.clone(), Ok(UserStatus::Active)),
            Decision::Allow(_)
        ));
        assert_eq!(
            plain(finish(&cfg, pending.clone(), Ok(UserStatus::Unknown))),
            tis_denial(DenyReason::InactiveUser)
        );
        assert_eq!(
            plain(finish(&cfg, pending, Err(DirectoryError::Unavailable))),
            tis_denial(DenyReason::DirectoryUnavailable)
        );
    }

    /// Two HS256 providers (so tests need no key generation) and one remote JWKS provider.
    fn bearer_config() -> Config {
        let json = r#"{
            "jwt_providers": {
                "a": {"issuer": "https://a", "hmac_secret": "secret-of-provider-a-0123456789abcdef",
                      "claims_to_headers": [{"claim": "groups", "header": "x-groups"}]},
                "b": {"issuer": "https://b", "hmac_secret": "secret-of-provider-b-0123456789abcdef",
                      "forward_token": true, "user_claim": "email"},
                "remote": {"issuer": "https://r", "remote_jwks": {"cluster": "idp", "path": "/jwks"}}
            },
            "rules": [
                {"path_prefix": "/scoped/", "providers": ["a"], "scopes": ["read:jira-work"]},
                {"path_prefix": "/", "providers": ["a", "b", "remote"]}
            ]
        }"#;
        Config::from_json(json.as_bytes()).unwrap()
    }

    fn hs256(secret: &str, claims: &str) -> String {
        sign_raw(Algorithm::HS256, r#"{"alg":"HS256"}"#, claims, secret.as_bytes())
    }

    fn bearer(token: &str) -> RequestHead {
        request("/rest/x", &[("authorization", &format!("Bearer {token}"))])
    }

    fn oauth_denial(reason: DenyReason) -> Decision {
        Decision::Deny(Denial::new(Family::OAuth, reason))
    }

    #[test]
    fn providers_of_one_issuer_are_tried_in_the_rules_order_not_by_name() {
        // `z` and `a` trust the same issuer and secret but name the user from other claims: the
        // rule lists `z` first, so `z` names the user (the configuration's maps sort by name).
        let json = r#"{
            "jwt_providers": {
                "a": {"issuer": "https://same", "hmac_secret": "secret-of-provider-a-0123456789abcdef",
                      "user_claim": "email"},
                "z": {"issuer": "https://same", "hmac_secret": "secret-of-provider-a-0123456789abcdef"}
            },
            "rules": [{"path_prefix": "/", "providers": ["z", "a"]}]
        }"#;
        let cfg = Config::from_json(json.as_bytes()).unwrap();
        let claims = format!(
            r#"{{"iss":"https://same","sub":"fred","email":"other@example.com","exp":{}}}"#,
            NOW + 60
        );
        let decision = decide(
            &cfg,
            &bearer(&hs256("secret-of-provider-a-0123456789abcdef", &claims)),
        );
        let Decision::Allow(forward) = decision else {
            panic!("denied: {decision:?}")
        };
        let user = forward
            .set_headers
            .iter()
            .find(|(name, _)| name == "x-tokengate-user");
        assert_eq!(user.map(|(_, value)| value.as_str()), Some("fred"), "{forward:?}");
    }

    #[test]
    fn the_provider_is_chosen_by_issuer_and_its_settings_apply() {
        let cfg = bearer_config();
        let from_a = hs256(
            "secret-of-provider-a-0123456789abcdef",
            &format!(
                r#"{{"iss":"https://a","sub":"fred","groups":["g1","g2"],"exp":{}}}"#,
                NOW + 60
            ),
        );
        let decision = decide(&cfg, &bearer(&from_a));
        let Decision::Allow(forward) = decision else {
            panic!("a denied: {decision:?}")
        };
        assert!(forward.set_headers.contains(&("x-groups".into(), "g1,g2".into())));
        assert!(forward.remove_headers.contains(&"authorization".into()));
        assert!(
            forward.remove_headers.contains(&"x-groups".into()),
            "client copies of claim headers go"
        );

        let from_b = hs256(
            "secret-of-provider-b-0123456789abcdef",
            &format!(
                r#"{{"iss":"https://b","sub":"u1","email":"jo@example.com","exp":{}}}"#,
                NOW + 60
            ),
        );
        let Decision::Allow(forward) = decide(&cfg, &bearer(&from_b)) else {
            panic!("b denied")
        };
        assert!(forward
            .set_headers
            .contains(&("x-tokengate-user".into(), "jo@example.com".into())));
        assert!(
            !forward.remove_headers.contains(&"authorization".into()),
            "b forwards the token"
        );

        let b_token_claiming_a = hs256(
            "secret-of-provider-b-0123456789abcdef",
            &format!(r#"{{"iss":"https://a","sub":"fred","exp":{}}}"#, NOW + 60),
        );
        assert_eq!(
            decide(&cfg, &bearer(&b_token_claiming_a)),
            oauth_denial(DenyReason::InvalidToken(JwtError::BadSignature))
        );
        let unknown_issuer = hs256("x".repeat(40).as_str(), r#"{"iss":"https://nobody","sub":"x"}"#);
        assert_eq!(
            decide(&cfg, &bearer(&unknown_issuer)),
            oauth_denial(DenyReason::InvalidToken(JwtError::WrongIssuer))
        );
    }

    #[test]
    fn only_headers_the_request_has_are_removed() {
        let forward = Forward {
            remove_headers: vec![
                "authorization".into(),
                "x-tokengate-user".into(),
                "x-groups".into(),
            ],
            set_headers: vec![("x-tokengate-user".into(), "fred".into())],
            path: None,
        };
        let headers = request("/", &[("Authorization", "Bearer t"), ("X-Groups", "admins")]).headers;
        assert_eq!(
            forward.only_removing_present(&headers).remove_headers,
            ["authorization", "x-groups"]
        );
    }

    #[test]
    fn verified_tokens_are_cached_only_by_providers_that_cache() {
        let config = |ttl: u32| {
            let json = format!(
                r#"{{"jwt_providers": {{"a": {{"issuer": "https://a",
                    "hmac_secret": "secret-of-provider-a-0123456789abcdef", "cache_ttl_seconds": {ttl}}}}}}}"#
            );
            Config::from_json(json.as_bytes()).unwrap()
        };
        let claims = format!(r#"{{"iss":"https://a","sub":"fred","exp":{}}}"#, NOW + 60);
        let request = bearer(&hs256("secret-of-provider-a-0123456789abcdef", &claims));
        /// Counts reads, so a cache that is off is seen not to be looked at either.
        #[derive(Default)]
        struct CountingStore(MapStore, std::cell::Cell<usize>);
        impl SharedStore for CountingStore {
            fn get(&self, key: &str) -> Option<Vec<u8>> {
                self.1.set(self.1.get() + 1);
                self.0.get(key)
            }
            fn set(&self, key: &str, value: &[u8]) {
                self.0.set(key, value);
            }
        }
        // (cache_ttl_seconds, entries stored, shared-data reads: the lookup, then the insert's)
        for (ttl, entries, reads) in [(300, 1, 2), (0, 0, 0)] {
            let store = CountingStore::default();
            let env = Env {
                store: &store,
                ..env_with(&store.0)
            };
            let step = begin(&config(ttl), &request, &env, NOW);
            assert!(matches!(step, Step::Done(Decision::Allow(_))), "{step:?}");
            let seen = (store.0 .0.borrow().len(), store.1.get());
            assert_eq!(seen, (entries, reads), "cache_ttl_seconds {ttl}");
        }
    }

    #[test]
    fn scopes_come_from_the_token() {
        let cfg = bearer_config();
        let token = |scope: &str| {
            let claims = format!(
                r#"{{"iss":"https://a","sub":"fred","scope":"{scope}","exp":{}}}"#,
                NOW + 60
            );
            let mut req = bearer(&hs256("secret-of-provider-a-0123456789abcdef", &claims));
            req.path = "/scoped/issue".into();
            req
        };
        assert!(matches!(
            decide(&cfg, &token("read:jira-work write:jira-work")),
            Decision::Allow(_)
        ));
        assert_eq!(
            decide(&cfg, &token("write:jira-work")),
            oauth_denial(DenyReason::InsufficientScope(vec!["read:jira-work".into()]))
        );
    }

    struct FixedKeys(Option<(Rc<KeySet>, Generation)>);
    impl Keyring for FixedKeys {
        fn remote_keys(&self, _provider: &str) -> Option<(Rc<KeySet>, Generation)> {
            self.0.clone()
        }
    }

    fn remote_keys(keys: &[&TestKey]) -> FixedKeys {
        let jwks = tokengate_demo::keys::jwks(keys).to_string();
        FixedKeys(Some((Rc::new(KeySet::from_jwks(jwks.as_bytes()).unwrap()), 1)))
    }

    #[test]
    fn remote_keys_are_waited_for_and_unknown_kids_ask_for_a_refetch() {
        let cfg = bearer_config();
        let store = MapStore::default();
        let key = TestKey::es256("new");
        let token = key.sign(&serde_json::json!({"iss": "https://r", "sub": "fred", "exp": NOW + 60}));
        let no_keys = Env {
            keyring: &FixedKeys(None),
            store: &store,
            count: &NoCount,
            signatures: &ModuleOnly,
        };
        assert_eq!(
            begin(&cfg, &bearer(&token), &no_keys, NOW),
            Step::WaitForKeys {
                provider: "remote".into(),
                refetch: false
            }
        );
        let old = remote_keys(&[&TestKey::es256("old")]);
        let stale = Env {
            keyring: &old,
            store: &store,
            count: &NoCount,
            signatures: &ModuleOnly,
        };
        assert_eq!(
            begin(&cfg, &bearer(&token), &stale, NOW),
            Step::WaitForKeys {
                provider: "remote".into(),
                refetch: true
            }
        );
    }

    #[test]
    fn a_verified_token_is_served_from_the_cache_but_never_past_its_exp() {
        let cfg = bearer_config();
        let store = MapStore::default();
        let key = TestKey::es256("k1");
        let token = key.sign(&serde_json::json!({"iss": "https://r", "sub": "fred", "exp": NOW + 60}));
        let keys = remote_keys(&[&key]);
        let loaded = Env {
            keyring: &keys,
            store: &store,
            count: &NoCount,
            signatures: &ModuleOnly,
        };
        assert!(matches!(
            begin(&cfg, &bearer(&token), &loaded, NOW),
            Step::Done(Decision::Allow(_))
        ));
        // Under the same generation, the cached verification answers (keys that could not
        // verify the token show that nothing verified it again)...
        let same_generation = remote_keys(&[&TestKey::es256("other")]);
        let cached = Env {
            keyring: &same_generation,
            store: &store,
            count: &NoCount,
            signatures: &ModuleOnly,
        };
        assert!(matches!(
            begin(&cfg, &bearer(&token), &cached, NOW + 59),
            Step::Done(Decision::Allow(_))
        ));
        // ...but not once the token has expired.
        assert!(matches!(
            begin(&cfg, &bearer(&token), &cached, NOW + 60),
            Step::WaitForKeys { .. }
        ));
        assert!(store
            .0
            .borrow()
            .values()
            .all(|v| !v.windows(token.len()).any(|w| w == token.as_bytes())));
    }

    #[test]
    fn a_jwt_user_named_by_an_unverified_email_is_refused() {
        let json = r#"{
            "jwt_providers": {"a": {"issuer": "https://a", "hmac_secret": "secret-of-provider-a-0123456789abcdef",
                                    "user_claim": "email"}},
            "rules": [{"path_prefix": "/", "providers": ["a"]}]
        }"#;
        let cfg = Config::from_json(json.as_bytes()).unwrap();
        let secret = "secret-of-provider-a-0123456789abcdef";
        let exp = NOW + 600;
        let store = MapStore::default();
        for (verified, allowed) in [
            ("", true),
            (r#","email_verified":true"#, true),
            (r#","email_verified":false"#, false),
        ] {
            let claims = format!(r#"{{"iss":"https://a","email":"boss@example.com","exp":{exp}{verified}}}"#);
            let req = request(
                "/x",
                &[("authorization", &format!("Bearer {}", hs256(secret, &claims)))],
            );
            let step = begin(&cfg, &req, &env_with(&store), NOW);
            assert_eq!(
                matches!(step, Step::Done(Decision::Allow(_))),
                allowed,
                "{claims}: {step:?}"
            );
        }
    }

    fn opaque_config() -> Config {
        let json = r#"{
            "jwt_providers": {"a": {"issuer": "https://a", "hmac_secret": "secret-of-provider-a-0123456789abcdef"}},
            "oauth_providers": {"kc": {"introspection": {"cluster": "kc", "path": "/introspect",
                                       "client_id": "tg", "client_secret": "s"}}},
            "rules": [{"path_prefix": "/", "providers": ["a", "kc"]}]
        }"#;
        Config::from_json(json.as_bytes()).unwrap()
    }

    fn introspecting_jwts_of(issuer: &str) -> Config {
        let json = format!(
            r#"{{
            "jwt_providers": {{"a": {{"issuer": "https://a", "hmac_secret": "secret-of-provider-a-0123456789abcdef"}}}},
            "oauth_providers": {{"kc": {{"introspection": {{"cluster": "kc", "path": "/introspect",
                                       "client_id": "tg", "client_secret": "s"}}, "jwt_issuers": ["{issuer}"]}}}},
            "rules": [{{"path_prefix": "/", "providers": ["a", "kc"]}}]
        }}"#
        );
        Config::from_json(json.as_bytes()).unwrap()
    }

    fn only_introspection(extra: &str) -> Config {
        let json = format!(
            r#"{{
            "oauth_providers": {{"kc": {{"introspection": {{"cluster": "kc", "path": "/introspect",
                                       "client_id": "tg", "client_secret": "s"}}{extra}}}}},
            "rules": [{{"path_prefix": "/", "providers": ["kc"]}}]
        }}"#
        );
        Config::from_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn a_route_with_only_an_introspection_provider_sends_it_only_the_jwts_it_introspects() {
        let store = MapStore::default();
        let keycloak = hs256(
            "some-secret-0123456789abcdef-0123456",
            r#"{"iss":"https://kc/realms/jira","sub":"x"}"#,
        );
        let stranger = hs256(
            "some-secret-0123456789abcdef-0123456",
            r#"{"iss":"https://stranger","sub":"x"}"#,
        );
        let plain = only_introspection("");
        let keycloak_jwts = only_introspection(r#","jwt_issuers":["https://kc/realms/jira"]"#);
        for (cfg, token, asks) in [
            (&plain, "opaque-token", true),
            (&plain, keycloak.as_str(), false),
            (&plain, "not.a.jwt", false),
            (&keycloak_jwts, "opaque-token", true),
            (&keycloak_jwts, keycloak.as_str(), true),
            (&keycloak_jwts, stranger.as_str(), false),
        ] {
            let step = ask(cfg, &store, token);
            if asks {
                assert!(matches!(step, Step::AskProvider { .. }), "{token}: {step:?}");
            } else {
                let Step::Done(Decision::Deny(denial)) = &step else {
                    panic!("{token}: {step:?}");
                };
                assert_eq!(denial.family, Family::OAuth);
                assert!(
                    matches!(denial.reason, DenyReason::InvalidToken(_)),
                    "{token}: {step:?}"
                );
            }
        }
    }

    fn ask(cfg: &Config, store: &MapStore, token: &str) -> Step {
        begin(cfg, &bearer(token), &env_with(store), NOW).challenging(Challenges::UNKNOWN)
    }

    #[test]
    fn tokens_no_jwt_provider_claims_go_to_the_callout_provider() {
        let (cfg, store) = (opaque_config(), MapStore::default());
        assert!(matches!(
            ask(&cfg, &store, "opaque-token"),
            Step::AskProvider { .. }
        ));
        assert_eq!(
            ask(&cfg, &store, "not.a.jwt"),
            Step::Done(oauth_denial(DenyReason::InvalidToken(JwtError::BadEncoding))),
            "something shaped like a JWT stays with the JWT providers"
        );
        let other_issuer = hs256(
            "some-secret-0123456789abcdef-0123456",
            r#"{"iss":"https://kc","sub":"x"}"#,
        );
        assert_eq!(
            ask(&cfg, &store, &other_issuer),
            Step::Done(oauth_denial(DenyReason::InvalidToken(JwtError::WrongIssuer))),
            "kc does not introspect JWTs: an unclaimed JWT is refused without a callout"
        );
        assert!(matches!(
            ask(&introspecting_jwts_of("https://kc"), &store, &other_issuer),
            Step::AskProvider { .. }
        ));
        let forged_a = hs256(
            "not-the-secret-of-a-0123456789abcdef",
            r#"{"iss":"https://a","sub":"x"}"#,
        );
        assert_eq!(
            ask(&cfg, &store, &forged_a),
            Step::Done(oauth_denial(DenyReason::InvalidToken(JwtError::BadSignature))),
            "a JWT of a local provider is never sent to the callout provider"
        );
    }

    fn answer(
        cfg: &Config,
        store: &MapStore,
        token: &str,
        reply: Result<TokenInfo, ProviderFailure>,
    ) -> Step {
        let Step::AskProvider { pending, callout, .. } = ask(cfg, store, token) else {
            panic!("not asked")
        };
        assert_eq!(callout.cluster, "kc");
        after_provider(cfg, pending, reply, &env_with(store), NOW).challenging(Challenges::UNKNOWN)
    }

    #[test]
    fn provider_answers_decide_and_are_cached_but_failures_are_not() {
        let (cfg, store) = (opaque_config(), MapStore::default());
        let active = TokenInfo::Active {
            user: "fred".into(),
            scopes: vec![],
            exp: Some(NOW + 60),
        };
        assert!(matches!(
            answer(&cfg, &store, "t1", Ok(active)),
            Step::Done(Decision::Allow(_))
        ));
        assert!(
            matches!(ask(&cfg, &store, "t1"), Step::Done(Decision::Allow(_))),
            "served from the cache"
        );
        let bucket = format!(
            "tokengate.oauth.{}",
            crate::opaque::answer_bucket(&cfg.oauth_providers[0], "t1")
        );
        assert!(
            store.0.borrow().contains_key(&bucket),
            "the bench replays this layout"
        );

        assert_eq!(
            answer(&cfg, &store, "t2", Ok(TokenInfo::Inactive)),
            Step::Done(oauth_denial(DenyReason::TokenInactive))
        );
        assert_eq!(
            ask(&cfg, &store, "t2"),
            Step::Done(oauth_denial(DenyReason::TokenInactive))
        );
        assert_eq!(
            answer(&cfg, &store, "t3", Ok(TokenInfo::UnmappedClient)),
            Step::Done(oauth_denial(DenyReason::UnmappedClient))
        );

        for (failure, reason) in [
            (
                ProviderFailure::ClientRejected,
                DenyReason::ProviderRejectedClient,
            ),
            (ProviderFailure::BadStatus, DenyReason::ProviderUnavailable),
            (ProviderFailure::NoResponse, DenyReason::ProviderUnavailable),
            (ProviderFailure::Unparsable, DenyReason::ProviderUnavailable),
        ] {
            assert_eq!(
                answer(&cfg, &store, "t4", Err(failure)),
                Step::Done(oauth_denial(reason))
            );
            assert!(
                matches!(ask(&cfg, &store, "t4"), Step::AskProvider { .. }),
                "{failure:?} was cached"
            );
        }
    }

    /// A rule of every family: TISJWT, a JWT provider and an API-token provider.
    fn mixed_config() -> Config {
        let secret = std::str::from_utf8(SECRET).unwrap();
        let json = format!(
            r#"{{
            "tisjwt": {{"secret": "{secret}"}},
            "jwt_providers": {{"a": {{"issuer": "https://a", "hmac_secret": "secret-of-provider-a-0123456789abcdef"}}}},
            "api_token_providers": {{"apitokens": {{"introspection": {{"cluster": "tokens", "path": "/introspect",
                                     "client_id": "tg", "client_secret": "s"}}}}}},
            "directory": {{"inactive_users": ["gone"]}},
            "rules": [
                {{"path_prefix": "/tis/", "providers": ["tisjwt"]}},
                {{"path_prefix": "/", "providers": ["tisjwt", "a", "apitokens"]}}
            ]
        }}"#
        );
        Config::from_json(json.as_bytes()).unwrap()
    }

    fn challenges_of(step: Step) -> Challenges {
        match step {
            Step::Done(Decision::Deny(denial)) => denial.challenges,
            other => panic!("not denied: {other:?}"),
        }
    }

    #[test]
    fn denials_carry_the_schemes_of_their_rule_and_the_scheme_the_client_used() {
        use AuthScheme::{Basic, Bearer, Tisjwt};
        let cfg = mixed_config();
        let every = Challenges::UNKNOWN
            .accepting(Tisjwt)
            .accepting(Bearer)
            .accepting(Basic);
        let gone = format!("TISJWT {}", token("gone"));
        let cases: Vec<(RequestHead, Challenges)> = vec![
            (request("/x", &[]), every),
            (request("/x", &[("authorization", "Bearer")]), every),
            (
                request("/x", &[("authorization", "TISJWT a.b.c")]),
                every.used(Some(Tisjwt)),
            ),
            (
                request("/x", &[("authorization", &gone)]),
                every.used(Some(Tisjwt)),
            ),
            (
                request("/x", &[("authorization", "Bearer a.b.c")]),
                every.used(Some(Bearer)),
            ),
            (
                request("/x", &[("authorization", "Basic %%%")]),
                every.used(Some(Basic)),
            ),
            (request("/x", &[("authorization", "Negotiate abc")]), every),
            (
                request("/tis/x", &[("authorization", "Bearer a.b.c")]),
                Challenges::UNKNOWN.accepting(Tisjwt),
            ),
        ];
        for (req, expected) in cases {
            let step = begin(&cfg, &req, &env_with(&MapStore::default()), NOW);
            assert_eq!(challenges_of(step), expected, "{req:?}");
        }
    }

    #[test]
    fn a_denial_after_the_token_provider_answers_keeps_the_rules_challenges() {
        use AuthScheme::{Basic, Bearer, Tisjwt};
        let (cfg, store) = (mixed_config(), MapStore::default());
        let every = Challenges::UNKNOWN
            .accepting(Tisjwt)
            .accepting(Bearer)
            .accepting(Basic);
        let basic = format!("Basic {}", base64_std("fred:wrong-token"));
        for (auth, used) in [("Bearer wrong-token", Bearer), (basic.as_str(), Basic)] {
            let req = request("/x", &[("authorization", auth)]);
            let Step::AskProvider { pending, .. } = begin(&cfg, &req, &env_with(&store), NOW) else {
                panic!("not asked: {auth}")
            };
            let step = after_provider(&cfg, pending, Ok(TokenInfo::Inactive), &env_with(&store), NOW);
            let Step::Done(Decision::Deny(denial)) = step else {
                panic!("not denied: {step:?}")
            };
            assert_eq!(
                (denial.family, denial.reason, denial.challenges),
                (
                    Family::ApiToken,
                    DenyReason::InvalidApiToken,
                    every.used(Some(used))
                )
            );
        }
    }

    fn base64_std(text: &str) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(text)
    }
}
