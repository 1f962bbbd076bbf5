//! Stage 4, decide: run a request through extract and verify, and say what happens to it.
//!
//! An allowed request is forwarded with the identity in the configured headers, every
//! client-sent copy of those headers removed, and no credential the application does not
//! need (the TISJWT `Authorization` header and the `tisjwt` query parameter).

use crate::clock::UnixSeconds;
use crate::config::Config;
use crate::extract::{self, Credential, ExtractError, Header, Location, Scheme, TISJWT_PARAM};
use crate::query;
use crate::tisjwt::{TisIdentity, TisjwtFailure};

/// The request as the shell sees it.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub path: String,
    pub headers: Vec<Header>,
}

/// Why a request is refused. Each reason has one response (see `respond`) and one counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {
    /// No TISJWT credential, an empty one, or one in the query string where that is disabled.
    MissingCredential,
    /// More than one credential or `Authorization` header.
    AmbiguousCredential,
    /// The TISJWT provider refused the token.
    Tisjwt(TisjwtFailure),
    /// The host would not hand over or rewrite the request; refused rather than passed.
    Internal,
}

impl DenyReason {
    /// Suffix of the `tokengate.denied.<reason>` counter.
    pub fn metric_name(&self) -> &'static str {
        match self {
            Self::MissingCredential => "missing_credential",
            Self::AmbiguousCredential => "ambiguous_credential",
            Self::Tisjwt(TisjwtFailure::Invalid(_)) => "invalid_token",
            Self::Tisjwt(TisjwtFailure::LicenseInvalid) => "invalid_license",
            Self::Tisjwt(TisjwtFailure::InactiveUser) => "inactive_user",
            Self::Internal => "internal_error",
        }
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(Forward),
    Deny(DenyReason),
}

/// Decides one request at time `now`.
pub fn decide(config: &Config, request: &RequestHead, now: UnixSeconds) -> Decision {
    match authenticate(config, request, now) {
        Ok((identity, location)) => Decision::Allow(forward(config, request, identity, location)),
        Err(reason) => Decision::Deny(reason),
    }
}

fn authenticate(
    config: &Config,
    request: &RequestHead,
    now: UnixSeconds,
) -> Result<(TisIdentity, Location), DenyReason> {
    let credential = match extract::extract(&request.headers, &request.path) {
        Ok(credential) => credential,
        Err(ExtractError::Malformed(_)) => {
            return Err(DenyReason::Tisjwt(TisjwtFailure::Invalid(
                crate::jwt::JwtError::Malformed,
            )))
        }
        Err(ExtractError::MultipleAuthorizationHeaders | ExtractError::MultipleCredentials) => {
            return Err(DenyReason::AmbiguousCredential)
        }
    };
    let token = tisjwt_token(config, credential)?;
    let identity = config
        .tisjwt
        .verify(&token.value, &config.directory, now)
        .map_err(DenyReason::Tisjwt)?;
    Ok((identity, token.location))
}

fn tisjwt_token(config: &Config, credential: Option<Credential>) -> Result<Credential, DenyReason> {
    match credential {
        Some(c) if c.scheme == Scheme::Tisjwt && !c.value.is_empty() => {
            if c.location == Location::QueryParameter && !config.tisjwt.allow_query_parameter {
                Err(DenyReason::MissingCredential)
            } else {
                Ok(c)
            }
        }
        _ => Err(DenyReason::MissingCredential),
    }
}

fn forward(config: &Config, request: &RequestHead, identity: TisIdentity, location: Location) -> Forward {
    let headers = &config.identity_headers;
    let mut remove_headers = vec![headers.user.clone(), headers.tenant.clone()];
    if location == Location::AuthorizationHeader {
        remove_headers.push("authorization".to_owned());
    }
    let mut set_headers = vec![(headers.user.clone(), identity.user)];
    if let Some(tenant) = identity.tenant {
        set_headers.push((headers.tenant.clone(), tenant));
    }
    let stripped = query::remove_param(&request.path, TISJWT_PARAM);
    let path = (stripped != request.path).then_some(stripped);
    Forward {
        remove_headers,
        set_headers,
        path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::tests::{sign_raw, SECRET};
    use crate::jwt::{Algorithm, JwtError};

    const NOW: UnixSeconds = 1_700_000_000;

    fn config(extra: &str) -> Config {
        let secret = std::str::from_utf8(SECRET).unwrap();
        let json = format!(
            r#"{{"tisjwt":{{"secret":"{secret}"{extra}}},"directory":{{"inactive_users":["gone"]}}}}"#
        );
        Config::from_json(json.as_bytes()).unwrap()
    }

    fn token(sub: &str) -> String {
        let claims = format!(r#"{{"sub":"{sub}","clientKey":"t1","exp":{}}}"#, NOW + 600);
        sign_raw(Algorithm::HS256, r#"{"alg":"HS256"}"#, &claims, SECRET)
    }

    fn request(path: &str, headers: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            path: path.to_owned(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
        }
    }

    #[test]
    fn a_header_token_is_allowed_and_stripped_with_spoofed_identity_headers() {
        let auth = format!("TISJWT {}", token("fred"));
        let req = request(
            "/rest/api/2/myself",
            &[("authorization", &auth), ("x-tokengate-user", "admin")],
        );
        assert_eq!(
            decide(&config(""), &req, NOW),
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
        let Decision::Allow(forward) = decide(&config(""), &request(&path, &[]), NOW) else {
            panic!("denied")
        };
        assert_eq!(forward.path.as_deref(), Some("/rest/export/status?a=1&b=2"));
        assert!(!forward.remove_headers.contains(&"authorization".to_string()));
    }

    #[test]
    fn query_tokens_can_be_disabled() {
        let path = format!("/x?tisjwt={}", token("fred"));
        let decision = decide(
            &config(r#","allow_query_parameter":false"#),
            &request(&path, &[]),
            NOW,
        );
        assert_eq!(decision, Decision::Deny(DenyReason::MissingCredential));
    }

    #[test]
    fn each_failure_has_its_reason() {
        let cfg = config(r#","licenses":[{"client_key":"t1","valid_until":"2099-01-01"}]"#);
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
                DenyReason::Tisjwt(TisjwtFailure::Invalid(JwtError::BadEncoding)),
            ),
            (
                request("/?tisjwt=%zz", &[]),
                DenyReason::Tisjwt(TisjwtFailure::Invalid(JwtError::Malformed)),
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
                request("/", &[("authorization", &format!("TISJWT {}", token("gone")))]),
                DenyReason::Tisjwt(TisjwtFailure::InactiveUser),
            ),
        ];
        for (req, reason) in cases {
            assert_eq!(decide(&cfg, &req, NOW), Decision::Deny(reason), "{req:?}");
        }
        let unlicensed = config(r#","licenses":[]"#);
        let req = request("/", &[("authorization", &format!("TISJWT {}", token("fred")))]);
        assert_eq!(
            decide(&unlicensed, &req, NOW),
            Decision::Deny(DenyReason::Tisjwt(TisjwtFailure::LicenseInvalid))
        );
    }
}
