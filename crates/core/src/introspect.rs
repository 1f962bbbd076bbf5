//! Stage 3, verify: opaque OAuth tokens checked by their provider (seed 001's authorization
//! grant and client-credentials grant): RFC 7662 token introspection, or an OIDC UserInfo
//! style "who am I" endpoint for providers that have nothing else (GitHub).
//!
//! Pure: builds the callout and reads the answer; the shell sends it, the cache and the
//! decision live in `decide`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

use crate::cache::Scope;
use crate::callout::{encode_component, Callout};
use crate::clock::UnixSeconds;
use crate::jwt::{JwtError, UntrustedJwt};
use crate::username::email_unverified;

/// Which kind of endpoint the provider has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// RFC 7662: `POST token=...`, answer `{"active": ...}`.
    Introspection,
    /// `GET` with the token as Bearer; 200 means the token is good.
    UserInfo,
}

/// How the provider authenticates us at the introspection endpoint (RFC 6749 section 2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `Authorization: Basic base64(urlencode(id):urlencode(secret))`.
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
}

/// A callout provider, by name in rules.
#[derive(Clone)]
pub struct OAuthProvider {
    pub name: String,
    pub endpoint: Endpoint,
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub client_id: String,
    pub client_secret: String,
    pub client_auth: ClientAuth,
    pub timeout_ms: u64,
    /// The response field naming the user (`username`, `email`, `sub`, `login`, ...).
    pub user_field: String,
    /// Client-credentials tokens (no user field): client id -> service account user.
    pub service_accounts: BTreeMap<String, String>,
    pub cache_ttl_seconds: i64,
    pub negative_cache_ttl_seconds: i64,
    /// Set for an API-token provider (the token service): Jira's error format and lockout.
    pub api_tokens: Option<ApiTokenSettings>,
    /// The answer's `aud` must contain one of these (RFC 7662 section 2.2); empty: not checked.
    pub audiences: Vec<String>,
    /// JWT-shaped Bearer tokens whose unverified `iss` is one of these are introspected; any
    /// other JWT is the JWT providers' to judge (an unclaimed one is refused locally).
    pub jwt_issuers: Vec<String>,
    /// The digest of the section this provider was compiled from: its answers, their
    /// coalesced questions and its locked users are keyed under it.
    pub scope: Scope,
}

/// What makes a callout provider an API-token provider. The failed-login counter and its
/// reset are the token service's; the filter renders and briefly remembers its "locked".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenSettings {
    /// The login URL of `X-Authentication-Denied-Reason` when the service's answer has none.
    pub login_url: String,
    /// How long a "locked" answer about a user is believed without asking again.
    pub locked_cache_ttl_seconds: i64,
}

impl fmt::Debug for OAuthProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OAuthProvider({} {:?} via {})",
            self.name, self.endpoint, self.cluster
        )
    }
}

/// What the provider said about a token, as cached (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenInfo {
    /// Active, with the user it maps to.
    Active {
        user: String,
        scopes: Vec<String>,
        exp: Option<UnixSeconds>,
    },
    /// Inactive, expired or unknown to the provider.
    Inactive,
    /// Active, but a client-credentials token of a client no service account is mapped to.
    UnmappedClient,
    /// The token service's lockout: `{"active": false, "locked": true}` with the locked
    /// `username` (absent when the client's address, not a user, is throttled) and the
    /// `login_url` of the CAPTCHA. Never kept in the answer cache.
    Locked {
        user: Option<String>,
        login_url: Option<String>,
    },
    /// A failed login that locked its user (`{"active": false, "now_locked": true}`): refused
    /// as a wrong token is, and from then on the user is refused as locked. Never cached.
    LockingFailure { user: String, login_url: Option<String> },
}

/// Why the provider gave no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderFailure {
    /// The provider refused our own client credentials: 401 from the introspection endpoint,
    /// or an OAuth error `invalid_client` / `unauthorized_client` (RFC 6749 section 5.2).
    ClientRejected,
    /// No answer: timeout, connection refused, reset.
    NoResponse,
    /// An unexpected status (5xx, ...).
    BadStatus,
    /// A 200 that is not the JSON object the protocol promises.
    Unparsable,
}

impl OAuthProvider {
    /// The request that checks `token` (and, for Basic, that it belongs to `user`). For an
    /// API-token provider, `count_failures: false` (a route whose Basic secret may be a
    /// password the application checks) asks the token service not to count a failed login,
    /// and `client_address` is sent for its per-address throttling.
    pub fn callout(
        &self,
        token: &str,
        user: Option<&str>,
        count_failures: bool,
        client_address: Option<&str>,
    ) -> Callout {
        let mut headers = vec![("accept".to_owned(), "application/json".to_owned())];
        let (method, body) = match self.endpoint {
            Endpoint::Introspection => {
                let mut form = format!("token={}&token_type_hint=access_token", encode_component(token));
                if let Some(user) = user {
                    form.push_str(&format!("&username={}", encode_component(user)));
                }
                if self.api_tokens.is_some() {
                    if !count_failures {
                        form.push_str("&count_failures=false");
                    }
                    if let Some(address) = client_address {
                        form.push_str(&format!("&client_address={}", encode_component(address)));
                    }
                }
                match self.client_auth {
                    ClientAuth::Basic => headers.push(("authorization".to_owned(), self.basic_credentials())),
                    ClientAuth::Post => form.push_str(&format!(
                        "&client_id={}&client_secret={}",
                        encode_component(&self.client_id),
                        encode_component(&self.client_secret)
                    )),
                }
                headers.push((
                    "content-type".to_owned(),
                    "application/x-www-form-urlencoded".to_owned(),
                ));
                ("POST", Some(form.into_bytes()))
            }
            Endpoint::UserInfo => {
                headers.push(("authorization".to_owned(), format!("Bearer {token}")));
                ("GET", None)
            }
        };
        Callout {
            cluster: self.cluster.clone(),
            method,
            path: self.path.clone(),
            authority: self.authority.clone(),
            headers,
            body,
            timeout_ms: self.timeout_ms,
        }
    }

    fn basic_credentials(&self) -> String {
        basic_auth::encode_client(&self.client_id, &self.client_secret)
    }

    /// Reads the provider's answer at time `now`: its status, its `WWW-Authenticate` header
    /// (if any) and its body.
    ///
    /// A 4xx that is an OAuth error about the token (RFC 6749 section 5.2, RFC 6750 section
    /// 3.1: `invalid_request`, `invalid_token`, `unsupported_token_type`) is an answer, not an
    /// outage: the token is not valid for us ([`TokenInfo::Inactive`]). Only no answer, an
    /// unexpected status or garbage is a [`ProviderFailure`].
    pub fn read_answer(
        &self,
        status: u32,
        challenge: Option<&str>,
        body: &[u8],
        now: UnixSeconds,
    ) -> Result<TokenInfo, ProviderFailure> {
        match (self.endpoint, status) {
            (_, 200) => {}
            // RFC 7662 section 2.3: a 401 is about our client authentication, never the token.
            (Endpoint::Introspection, 401) => return Err(ProviderFailure::ClientRejected),
            // RFC 6750 section 3.1: the resource server (UserInfo) refuses a bad token with
            // 401 (`invalid_token`) or 403 (`insufficient_scope`).
            (Endpoint::UserInfo, 401 | 403) => return Ok(TokenInfo::Inactive),
            (_, 400..=499) => return self.read_error(challenge, body),
            _ => return Err(ProviderFailure::BadStatus),
        }
        let Ok(Value::Object(answer)) = serde_json::from_slice::<Value>(body) else {
            return Err(ProviderFailure::Unparsable);
        };
        if self.endpoint == Endpoint::Introspection {
            match answer.get("active") {
                Some(Value::Bool(true)) => {}
                Some(Value::Bool(false)) if self.api_tokens.is_some() => {
                    let text = |name: &str| {
                        answer
                            .get(name)
                            .and_then(Value::as_str)
                            .filter(|s| !s.is_empty() && !s.chars().any(char::is_control))
                            .map(str::to_owned)
                    };
                    let flag = |name: &str| answer.get(name) == Some(&Value::Bool(true));
                    let login_url = text("login_url").filter(|url| !url.contains(';'));
                    return Ok(match (flag("locked"), flag("now_locked"), text("username")) {
                        (true, _, user) => TokenInfo::Locked { user, login_url },
                        (false, true, Some(user)) => TokenInfo::LockingFailure { user, login_url },
                        _ => TokenInfo::Inactive,
                    });
                }
                Some(Value::Bool(false)) => return Ok(TokenInfo::Inactive),
                _ => return Err(ProviderFailure::Unparsable),
            }
        }
        let exp = match answer.get("exp") {
            None => None,
            Some(Value::Number(n)) => n.as_f64().map(|exp| exp.floor() as i64),
            Some(_) => return Err(ProviderFailure::Unparsable),
        };
        if exp.is_some_and(|exp| exp <= now) {
            return Ok(TokenInfo::Inactive);
        }
        if !self.audience_matches(answer.get("aud"))? {
            return Ok(TokenInfo::Inactive);
        }
        Ok(self.map_user(&answer, exp))
    }

    /// A 4xx other than the ones the protocol gives a meaning: the OAuth error it names, from
    /// the JSON body (`{"error": "..."}`) or, for UserInfo, the Bearer challenge.
    fn read_error(&self, challenge: Option<&str>, body: &[u8]) -> Result<TokenInfo, ProviderFailure> {
        let from_body = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(answer)) => answer.get("error").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        };
        let from_challenge = match self.endpoint {
            Endpoint::UserInfo => challenge.and_then(bearer_error),
            Endpoint::Introspection => None,
        };
        match from_body.or(from_challenge).as_deref().map(OAuthError::from_code) {
            Some(OAuthError::AboutTheToken) => Ok(TokenInfo::Inactive),
            Some(OAuthError::AboutOurClient) => Err(ProviderFailure::ClientRejected),
            Some(OAuthError::Other) | None => Err(ProviderFailure::BadStatus),
        }
    }

    /// Whether the answer's `aud` (a string or a list of strings, RFC 7662 section 2.2)
    /// contains a configured audience. Without configured audiences nothing is checked; an
    /// introspection answer without `aud` fails, a UserInfo answer (OIDC UserInfo has no `aud`
    /// unless it is a signed one) is checked only when it has one. An `aud` of another type is
    /// garbage.
    fn audience_matches(&self, aud: Option<&Value>) -> Result<bool, ProviderFailure> {
        if self.audiences.is_empty() {
            return Ok(true);
        }
        let listed: Vec<&str> = match aud {
            None => return Ok(self.endpoint == Endpoint::UserInfo),
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many
                .iter()
                .map(Value::as_str)
                .collect::<Option<Vec<&str>>>()
                .ok_or(ProviderFailure::Unparsable)?,
            Some(_) => return Err(ProviderFailure::Unparsable),
        };
        Ok(listed
            .iter()
            .any(|aud| self.audiences.iter().any(|ours| ours == aud)))
    }

    /// Whether this provider checks a Bearer token no JWT provider of the route claimed: every
    /// opaque token; a JWT only when its unverified `iss` is one of `jwt_issuers` (the provider
    /// verifies it; the claim only picks who is asked).
    pub fn checks(&self, shape: &BearerShape) -> bool {
        match shape {
            BearerShape::Opaque => true,
            BearerShape::Jwt { issuer: Some(issuer) } => self.jwt_issuers.iter().any(|i| i == issuer),
            BearerShape::Jwt { issuer: None } | BearerShape::BrokenJwt(_) => false,
        }
    }

    /// The user field, or for a client-credentials token the client's service account. A user
    /// named by an address the answer says is not verified is nobody ([`email_unverified`]).
    fn map_user(&self, answer: &Map<String, Value>, exp: Option<UnixSeconds>) -> TokenInfo {
        let text = |name: &str| answer.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
        if self.user_field == "email" && email_unverified(answer) {
            return TokenInfo::Inactive;
        }
        let user = match text(&self.user_field) {
            Some(user) => Some(user.to_owned()),
            None => text("client_id").and_then(|client| self.service_accounts.get(client).cloned()),
        };
        let scopes = text("scope")
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        match user {
            Some(user) if !user.chars().any(char::is_control) => TokenInfo::Active { user, scopes, exp },
            _ => TokenInfo::UnmappedClient,
        }
    }

    /// Until when an answer may be served from the cache: a positive one never past `exp`.
    pub fn cache_until(&self, info: &TokenInfo, now: UnixSeconds) -> UnixSeconds {
        match info {
            TokenInfo::Active { exp, .. } => {
                let until = now.saturating_add(self.cache_ttl_seconds);
                exp.map_or(until, |exp| exp.min(until))
            }
            TokenInfo::Inactive | TokenInfo::UnmappedClient => {
                now.saturating_add(self.negative_cache_ttl_seconds)
            }
            TokenInfo::Locked { .. } | TokenInfo::LockingFailure { .. } => now,
        }
    }
}

/// What kind of OAuth error code (RFC 6749 section 5.2, RFC 6750 section 3.1, RFC 7662
/// section 2.3) a provider answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OAuthError {
    /// `invalid_request`, `invalid_token`, `unsupported_token_type`: the token is not one the
    /// provider vouches for.
    AboutTheToken,
    /// `invalid_client`, `unauthorized_client`: the provider refuses us.
    AboutOurClient,
    /// Anything else (`server_error`, `temporarily_unavailable`, unknown codes).
    Other,
}

impl OAuthError {
    fn from_code(code: &str) -> Self {
        match code {
            "invalid_request" | "invalid_token" | "unsupported_token_type" => Self::AboutTheToken,
            "invalid_client" | "unauthorized_client" => Self::AboutOurClient,
            _ => Self::Other,
        }
    }
}

/// The `error` parameter of a `Bearer` challenge (RFC 6750 section 3), e.g.
/// `Bearer realm="x", error="invalid_token"`.
fn bearer_error(challenge: &str) -> Option<String> {
    let (scheme, params) = challenge.trim().split_once(' ').unwrap_or((challenge.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    params.split(',').find_map(|param| {
        let (name, value) = param.split_once('=')?;
        (name.trim().eq_ignore_ascii_case("error")).then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// A Bearer token as a callout provider sees it, before any verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerShape {
    /// Not shaped like a compact JWS (RFC 7515 section 7.1): three dot-separated base64url
    /// segments.
    Opaque,
    /// A JWT that parses, with its unverified `iss` if it is a string.
    Jwt { issuer: Option<String> },
    /// Shaped like a JWT but not one: refused as an invalid JWT, never sent to a provider.
    BrokenJwt(JwtError),
}

impl BearerShape {
    pub fn of(token: &str) -> Self {
        let segments: Vec<&str> = token.split('.').collect();
        let base64url = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        };
        let jws_shaped = matches!(segments.as_slice(), [header, payload, signature]
            if !header.is_empty() && !payload.is_empty() && [header, payload, signature].iter().all(|s| base64url(s)));
        if !jws_shaped {
            return Self::Opaque;
        }
        match UntrustedJwt::parse(token) {
            Ok(jwt) => Self::Jwt {
                issuer: jwt.claims().get("iss").and_then(Value::as_str).map(str::to_owned),
            },
            Err(error) => Self::BrokenJwt(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    const NOW: UnixSeconds = 1_700_000_000;

    fn provider(endpoint: Endpoint) -> OAuthProvider {
        OAuthProvider {
            name: "kc".into(),
            endpoint,
            cluster: "keycloak".into(),
            authority: "keycloak".into(),
            path: "/introspect".into(),
            client_id: "tokengate".into(),
            client_secret: "s3cr&t".into(),
            client_auth: ClientAuth::Basic,
            timeout_ms: 500,
            user_field: "username".into(),
            service_accounts: [("reporting".to_string(), "svc-reports".to_string())].into(),
            cache_ttl_seconds: 300,
            negative_cache_ttl_seconds: 10,
            api_tokens: None,
            audiences: vec![],
            jwt_issuers: vec![],
            scope: [0; 32],
        }
    }

    fn with_audiences(endpoint: Endpoint) -> OAuthProvider {
        OAuthProvider {
            audiences: vec!["https://jira.example".into(), "jira".into()],
            ..provider(endpoint)
        }
    }

    fn fred() -> TokenInfo {
        TokenInfo::Active {
            user: "fred".into(),
            scopes: vec![],
            exp: None,
        }
    }

    fn read(body: &str) -> Result<TokenInfo, ProviderFailure> {
        provider(Endpoint::Introspection).read_answer(200, None, body.as_bytes(), NOW)
    }

    #[test]
    fn introspection_posts_the_token_with_basic_client_authentication() {
        let callout = provider(Endpoint::Introspection).callout("a+b/c=", None, true, None);
        assert_eq!(callout.method, "POST");
        assert_eq!(
            callout.body.as_deref(),
            Some(&b"token=a%2Bb%2Fc%3D&token_type_hint=access_token"[..])
        );
        // base64("tokengate:s3cr%26t")
        assert!(callout
            .headers
            .contains(&("authorization".into(), "Basic dG9rZW5nYXRlOnMzY3IlMjZ0".into())));
        let post = OAuthProvider {
            client_auth: ClientAuth::Post,
            ..provider(Endpoint::Introspection)
        };
        let body = String::from_utf8(post.callout("t", None, true, None).body.unwrap()).unwrap();
        assert!(body.ends_with("&client_id=tokengate&client_secret=s3cr%26t"));
        assert!(!post
            .callout("t", None, true, None)
            .headers
            .iter()
            .any(|(n, _)| n == "authorization"));
    }

    #[test]
    fn userinfo_sends_the_token_as_bearer() {
        let callout = provider(Endpoint::UserInfo).callout("opaque", None, true, None);
        assert_eq!((callout.method, callout.body), ("GET", None));
        assert!(callout
            .headers
            .contains(&("authorization".into(), "Bearer opaque".into())));
    }

    #[test]
    fn active_tokens_map_to_their_user_and_scopes() {
        let exp = NOW + 100;
        assert_eq!(
            read(&format!(
                r#"{{"active":true,"username":"fred","scope":"read write","exp":{exp}}}"#
            )),
            Ok(TokenInfo::Active {
                user: "fred".into(),
                scopes: vec!["read".into(), "write".into()],
                exp: Some(exp)
            })
        );
    }

    #[test]
    fn client_credentials_tokens_map_to_service_accounts_or_are_refused() {
        assert_eq!(
            read(r#"{"active":true,"client_id":"reporting"}"#),
            Ok(TokenInfo::Active {
                user: "svc-reports".into(),
                scopes: vec![],
                exp: None
            })
        );
        assert_eq!(
            read(r#"{"active":true,"client_id":"stranger"}"#),
            Ok(TokenInfo::UnmappedClient)
        );
    }

    #[test]
    fn inactive_and_expired_tokens_are_inactive() {
        assert_eq!(read(r#"{"active":false}"#), Ok(TokenInfo::Inactive));
        assert_eq!(
            read(&format!(r#"{{"active":true,"username":"fred","exp":{NOW}}}"#)),
            Ok(TokenInfo::Inactive)
        );
    }

    #[test]
    fn failures_are_named() {
        let p = provider(Endpoint::Introspection);
        assert_eq!(
            p.read_answer(401, None, b"{}", NOW),
            Err(ProviderFailure::ClientRejected)
        );
        assert_eq!(
            p.read_answer(503, None, b"{}", NOW),
            Err(ProviderFailure::BadStatus)
        );
        for garbage in [
            "<html>",
            "[]",
            r#"{"active":"yes"}"#,
            r#"{"username":"fred"}"#,
            r#"{"active":true,"exp":"soon"}"#,
        ] {
            assert_eq!(read(garbage), Err(ProviderFailure::Unparsable), "{garbage}");
        }
        let userinfo = provider(Endpoint::UserInfo);
        assert_eq!(userinfo.read_answer(401, None, b"", NOW), Ok(TokenInfo::Inactive));
        assert_eq!(
            userinfo.read_answer(200, None, br#"{"username":"fred"}"#, NOW),
            Ok(TokenInfo::Active {
                user: "fred".into(),
                scopes: vec![],
                exp: None
            })
        );
    }

    #[test]
    fn an_answer_for_another_audience_is_an_inactive_token() {
        let p = with_audiences(Endpoint::Introspection);
        let read = |body: &str| p.read_answer(200, None, body.as_bytes(), NOW);
        for (body, expected) in [
            (r#"{"active":true,"username":"fred","aud":"jira"}"#, Ok(fred())),
            (
                r#"{"active":true,"username":"fred","aud":["other","https://jira.example"]}"#,
                Ok(fred()),
            ),
            (
                r#"{"active":true,"username":"fred","aud":"https://other.example"}"#,
                Ok(TokenInfo::Inactive),
            ),
            (
                r#"{"active":true,"username":"fred","aud":["a","b"]}"#,
                Ok(TokenInfo::Inactive),
            ),
            (
                r#"{"active":true,"username":"fred","aud":[]}"#,
                Ok(TokenInfo::Inactive),
            ),
            (
                r#"{"active":true,"username":"fred","aud":"JIRA"}"#,
                Ok(TokenInfo::Inactive),
            ),
            (r#"{"active":true,"username":"fred"}"#, Ok(TokenInfo::Inactive)),
            (
                r#"{"active":true,"username":"fred","aud":7}"#,
                Err(ProviderFailure::Unparsable),
            ),
            (
                r#"{"active":true,"username":"fred","aud":["jira",7]}"#,
                Err(ProviderFailure::Unparsable),
            ),
        ] {
            assert_eq!(read(body), expected, "{body}");
        }
        let unchecked = provider(Endpoint::Introspection);
        assert_eq!(
            unchecked.read_answer(200, None, br#"{"active":true,"username":"fred","aud":"x"}"#, NOW),
            Ok(fred()),
            "no audiences configured: aud is not looked at"
        );
    }

    #[test]
    fn an_email_the_provider_has_not_verified_names_no_user() {
        // OIDC Core section 5.1: anyone may register any address at many providers; only
        // `email_verified` says it is theirs. By e-mail, the directory maps it to a Jira user.
        let p = OAuthProvider {
            user_field: "email".into(),
            ..provider(Endpoint::UserInfo)
        };
        let read = |body: &str| p.read_answer(200, None, body.as_bytes(), NOW);
        let victim = TokenInfo::Active {
            user: "boss@example.com".into(),
            scopes: vec![],
            exp: None,
        };
        assert_eq!(read(r#"{"email":"boss@example.com"}"#), Ok(victim.clone()));
        assert_eq!(
            read(r#"{"email":"boss@example.com","email_verified":true}"#),
            Ok(victim.clone())
        );
        // Cognito sends the claim as a string.
        let cognito = r#"{"email":"boss@example.com","email_verified":"true","client_id":"reporting"}"#;
        assert_eq!(read(cognito), Ok(victim));
        assert_eq!(
            read(r#"{"email":"boss@example.com","email_verified":false,"client_id":"reporting"}"#),
            Ok(TokenInfo::Inactive),
            "not the service account of its client either"
        );
        for unverified in [r#"false"#, r#""false""#, r#"null"#, r#"0"#] {
            let body = format!(r#"{{"email":"boss@example.com","email_verified":{unverified}}}"#);
            assert_eq!(read(&body), Ok(TokenInfo::Inactive), "{body}");
        }
        let by_name = provider(Endpoint::UserInfo);
        assert_eq!(
            by_name.read_answer(200, None, br#"{"username":"fred","email_verified":false}"#, NOW),
            Ok(TokenInfo::Active {
                user: "fred".into(),
                scopes: vec![],
                exp: None
            }),
            "only a user named by e-mail needs a verified address"
        );
    }

    #[test]
    fn a_userinfo_answer_is_audience_checked_only_when_it_names_one() {
        let p = with_audiences(Endpoint::UserInfo);
        let read = |body: &str| p.read_answer(200, None, body.as_bytes(), NOW);
        assert_eq!(read(r#"{"username":"fred"}"#), Ok(fred()));
        assert_eq!(read(r#"{"username":"fred","aud":"jira"}"#), Ok(fred()));
        assert_eq!(
            read(r#"{"username":"fred","aud":"other"}"#),
            Ok(TokenInfo::Inactive)
        );
    }

    #[test]
    fn an_oauth_error_about_the_token_is_an_inactive_token_not_an_outage() {
        let p = provider(Endpoint::Introspection);
        for (status, body, expected) in [
            (
                400,
                r#"{"error":"unsupported_token_type"}"#,
                Ok(TokenInfo::Inactive),
            ),
            (
                400,
                r#"{"error":"invalid_token","error_description":"x"}"#,
                Ok(TokenInfo::Inactive),
            ),
            (400, r#"{"error":"invalid_request"}"#, Ok(TokenInfo::Inactive)),
            (403, r#"{"error":"invalid_token"}"#, Ok(TokenInfo::Inactive)),
            (
                400,
                r#"{"error":"invalid_client"}"#,
                Err(ProviderFailure::ClientRejected),
            ),
            (
                400,
                r#"{"error":"unauthorized_client"}"#,
                Err(ProviderFailure::ClientRejected),
            ),
            (
                401,
                r#"{"error":"invalid_token"}"#,
                Err(ProviderFailure::ClientRejected),
            ),
            (
                400,
                r#"{"error":"server_error"}"#,
                Err(ProviderFailure::BadStatus),
            ),
            (
                429,
                r#"{"error":"temporarily_unavailable"}"#,
                Err(ProviderFailure::BadStatus),
            ),
            (
                400,
                r#"{"error":["invalid_token"]}"#,
                Err(ProviderFailure::BadStatus),
            ),
            (400, "unsupported_token_type", Err(ProviderFailure::BadStatus)),
            (404, "", Err(ProviderFailure::BadStatus)),
            (
                500,
                r#"{"error":"invalid_token"}"#,
                Err(ProviderFailure::BadStatus),
            ),
            (
                503,
                r#"{"error":"unsupported_token_type"}"#,
                Err(ProviderFailure::BadStatus),
            ),
        ] {
            assert_eq!(
                p.read_answer(status, None, body.as_bytes(), NOW),
                expected,
                "{status} {body}"
            );
        }
        let challenge = Some(r#"Bearer realm="x", error="invalid_token""#);
        assert_eq!(
            p.read_answer(400, challenge, b"", NOW),
            Err(ProviderFailure::BadStatus),
            "introspection errors are read from the body only"
        );
    }

    #[test]
    fn userinfo_reads_the_bearer_challenge_of_a_4xx() {
        let p = provider(Endpoint::UserInfo);
        let read = |status, challenge, body: &str| p.read_answer(status, challenge, body.as_bytes(), NOW);
        assert_eq!(read(401, None, ""), Ok(TokenInfo::Inactive));
        assert_eq!(read(403, None, "<html>"), Ok(TokenInfo::Inactive));
        assert_eq!(
            read(400, Some(r#"Bearer realm="x", error="invalid_request""#), ""),
            Ok(TokenInfo::Inactive)
        );
        assert_eq!(
            read(400, Some(r#"bearer error=invalid_token"#), ""),
            Ok(TokenInfo::Inactive)
        );
        assert_eq!(
            read(400, None, r#"{"error":"invalid_token"}"#),
            Ok(TokenInfo::Inactive)
        );
        assert_eq!(
            read(400, Some(r#"Basic realm="x", error="invalid_token""#), ""),
            Err(ProviderFailure::BadStatus)
        );
        assert_eq!(read(400, Some("Bearer"), ""), Err(ProviderFailure::BadStatus));
        assert_eq!(read(404, None, ""), Err(ProviderFailure::BadStatus));
    }

    #[test]
    fn only_jwts_of_listed_issuers_are_introspected() {
        let p = OAuthProvider {
            jwt_issuers: vec!["https://kc/realms/jira".into()],
            ..provider(Endpoint::Introspection)
        };
        let jwt = |claims: &str| {
            let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
            format!("{}.{}.c2ln", b64(r#"{"alg":"RS256"}"#), b64(claims))
        };
        let listed = jwt(r#"{"iss":"https://kc/realms/jira"}"#);
        let other = jwt(r#"{"iss":"https://elsewhere"}"#);
        let none = jwt(r#"{"sub":"fred"}"#);
        for (token, checked) in [
            ("opaque-token", true),
            ("ya29.a0AfH6SMBx", true),
            ("a.b.c.d.e", true),
            (listed.as_str(), true),
            (other.as_str(), false),
            (none.as_str(), false),
            ("not.a.jwt", false),
        ] {
            assert_eq!(p.checks(&BearerShape::of(token)), checked, "{token}");
            assert_eq!(
                provider(Endpoint::Introspection).checks(&BearerShape::of(token)),
                matches!(BearerShape::of(token), BearerShape::Opaque),
                "without jwt_issuers only opaque tokens: {token}"
            );
        }
        assert!(matches!(BearerShape::of("not.a.jwt"), BearerShape::BrokenJwt(_)));
    }

    #[test]
    fn positive_answers_are_cached_no_longer_than_exp() {
        let p = provider(Endpoint::Introspection);
        let soon = TokenInfo::Active {
            user: "u".into(),
            scopes: vec![],
            exp: Some(NOW + 30),
        };
        assert_eq!(p.cache_until(&soon, NOW), NOW + 30);
        let later = TokenInfo::Active {
            user: "u".into(),
            scopes: vec![],
            exp: Some(NOW + 3000),
        };
        assert_eq!(p.cache_until(&later, NOW), NOW + 300);
        assert_eq!(p.cache_until(&TokenInfo::Inactive, NOW), NOW + 10);
    }

    #[test]
    fn the_token_services_locked_answer_is_read_only_from_an_api_token_provider() {
        let mut p = provider(Endpoint::Introspection);
        let read = |p: &OAuthProvider, body: &str| p.read_answer(200, None, body.as_bytes(), NOW);
        let locked = r#"{"active":false,"locked":true,"username":"fred","login_url":"https://j/login.jsp"}"#;
        assert_eq!(
            read(&p, locked),
            Ok(TokenInfo::Inactive),
            "an OAuth provider: just inactive"
        );
        p.api_tokens = Some(ApiTokenSettings {
            login_url: "/login.jsp".into(),
            locked_cache_ttl_seconds: 5,
        });
        assert_eq!(
            read(&p, locked),
            Ok(TokenInfo::Locked {
                user: Some("fred".into()),
                login_url: Some("https://j/login.jsp".into())
            })
        );
        for (body, user, url) in [
            (r#"{"active":false,"locked":true}"#, None, None),
            (
                r#"{"active":false,"locked":true,"username":"","login_url":"a;b"}"#,
                None,
                None,
            ),
            (
                r#"{"active":false,"locked":true,"username":"fr\ned","login_url":7}"#,
                None,
                None,
            ),
        ] {
            assert_eq!(
                read(&p, body),
                Ok(TokenInfo::Locked { user, login_url: url }),
                "{body}"
            );
        }
        assert_eq!(
            read(&p, r#"{"active":false,"locked":"yes"}"#),
            Ok(TokenInfo::Inactive)
        );
        assert_eq!(
            read(&p, r#"{"active":false,"now_locked":true,"username":"fred"}"#),
            Ok(TokenInfo::LockingFailure {
                user: "fred".into(),
                login_url: None
            })
        );
        assert_eq!(
            read(&p, r#"{"active":false,"now_locked":true}"#),
            Ok(TokenInfo::Inactive),
            "nobody to remember"
        );
        let locked = TokenInfo::Locked {
            user: None,
            login_url: None,
        };
        assert_eq!(p.cache_until(&locked, NOW), NOW, "never in the answer cache");
    }

    #[test]
    fn debug_output_hides_the_client_secret() {
        assert!(!format!("{:?}", provider(Endpoint::Introspection)).contains("s3cr"));
    }
}
