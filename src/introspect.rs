//! Stage 3, verify: opaque OAuth tokens checked by their provider (seed 001's authorization
//! grant and client-credentials grant): RFC 7662 token introspection, or an OIDC UserInfo
//! style "who am I" endpoint for providers that have nothing else (GitHub).
//!
//! Pure: builds the callout and reads the answer; the shell sends it, the cache and the
//! decision live in `decide`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

use crate::apitoken::LockoutPolicy;
use crate::callout::{encode_component, Callout};
use crate::clock::UnixSeconds;

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
}

/// What makes a callout provider an API-token provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenSettings {
    pub lockout: LockoutPolicy,
    /// `DELETE <prefix><user>` answered 2xx by the token service resets `user`'s counter.
    pub reset_path_prefix: String,
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
}

/// Why the provider gave no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderFailure {
    /// The provider refused our own client credentials (401 from the introspection endpoint).
    ClientRejected,
    /// No answer: timeout, connection refused, reset.
    NoResponse,
    /// An unexpected status (5xx, ...).
    BadStatus,
    /// A 200 that is not the JSON object the protocol promises.
    Unparsable,
}

impl ProviderFailure {
    /// Suffix of the `tokengate.introspection.failed.<kind>` counter.
    pub fn metric_name(self) -> &'static str {
        match self {
            Self::ClientRejected => "client_rejected",
            Self::NoResponse => "no_response",
            Self::BadStatus => "bad_status",
            Self::Unparsable => "unparsable",
        }
    }
}

impl OAuthProvider {
    /// The request that checks `token` (and, for Basic, that it belongs to `user`).
    pub fn callout(&self, token: &str, user: Option<&str>) -> Callout {
        let mut headers = vec![("accept".to_owned(), "application/json".to_owned())];
        let (method, body) = match self.endpoint {
            Endpoint::Introspection => {
                let mut form = format!("token={}&token_type_hint=access_token", encode_component(token));
                if let Some(user) = user {
                    form.push_str(&format!("&username={}", encode_component(user)));
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
        let pair = format!(
            "{}:{}",
            encode_component(&self.client_id),
            encode_component(&self.client_secret)
        );
        format!("Basic {}", STANDARD.encode(pair))
    }

    /// Reads the provider's answer at time `now`.
    pub fn read_answer(
        &self,
        status: u32,
        body: &[u8],
        now: UnixSeconds,
    ) -> Result<TokenInfo, ProviderFailure> {
        match (self.endpoint, status) {
            (_, 200) => {}
            (Endpoint::Introspection, 401) => return Err(ProviderFailure::ClientRejected),
            (Endpoint::UserInfo, 401 | 403) => return Ok(TokenInfo::Inactive),
            _ => return Err(ProviderFailure::BadStatus),
        }
        let Ok(Value::Object(answer)) = serde_json::from_slice::<Value>(body) else {
            return Err(ProviderFailure::Unparsable);
        };
        if self.endpoint == Endpoint::Introspection {
            match answer.get("active") {
                Some(Value::Bool(true)) => {}
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
        Ok(self.map_user(&answer, exp))
    }

    /// The user field, or for a client-credentials token the client's service account.
    fn map_user(&self, answer: &Map<String, Value>, exp: Option<UnixSeconds>) -> TokenInfo {
        let text = |name: &str| answer.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        }
    }

    fn read(body: &str) -> Result<TokenInfo, ProviderFailure> {
        provider(Endpoint::Introspection).read_answer(200, body.as_bytes(), NOW)
    }

    #[test]
    fn introspection_posts_the_token_with_basic_client_authentication() {
        let callout = provider(Endpoint::Introspection).callout("a+b/c=", None);
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
        let body = String::from_utf8(post.callout("t", None).body.unwrap()).unwrap();
        assert!(body.ends_with("&client_id=tokengate&client_secret=s3cr%26t"));
        assert!(!post
            .callout("t", None)
            .headers
            .iter()
            .any(|(n, _)| n == "authorization"));
    }

    #[test]
    fn userinfo_sends_the_token_as_bearer() {
        let callout = provider(Endpoint::UserInfo).callout("opaque", None);
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
            p.read_answer(401, b"{}", NOW),
            Err(ProviderFailure::ClientRejected)
        );
        assert_eq!(p.read_answer(503, b"{}", NOW), Err(ProviderFailure::BadStatus));
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
        assert_eq!(userinfo.read_answer(401, b"", NOW), Ok(TokenInfo::Inactive));
        assert_eq!(
            userinfo.read_answer(200, br#"{"username":"fred"}"#, NOW),
            Ok(TokenInfo::Active {
                user: "fred".into(),
                scopes: vec![],
                exp: None
            })
        );
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
    fn debug_output_hides_the_client_secret() {
        assert!(!format!("{:?}", provider(Endpoint::Introspection)).contains("s3cr"));
    }
}
