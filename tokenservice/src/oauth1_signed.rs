//! The signature of a request to the dance's own endpoints (request-token, access-token),
//! checked with the `oauth1` crate in the order its documentation gives: the header parsed
//! (RFC 5849 section 3.5.1) and the step's parameters present, the signature method (RSA-SHA1
//! only: HMAC-SHA1 and PLAINTEXT need a shared secret, and an application link has none), the
//! timestamp window, the consumer, the signature over the base string (section 3.4.1), and
//! only then the nonce, so that nobody without the consumer's private key can use up nonces.
//!
//! The base string URI is the one the client used: the public base URL chosen among the
//! configured ones exactly as for paging links ([`crate::links`]), followed by the request's
//! path. With no base URL configured at all, the request's `X-Forwarded-Proto` (else `http`)
//! and `Host` stand in: that only decides which URL a signature must cover, and the client
//! signs whatever URL it sends to, so it gains nothing by choosing.
//!
//! Nonces are remembered per replica ([`oauth1::MemoryNonces`], bounded): a request token and
//! a verifier are single use in the shared store anyway, so a replay to another replica
//! within the window gets nothing a first request did not.

use crate::config::{Consumer, OAuth1};
use crate::http::Request;
use oauth1::{
    Authorization, BaseUri, Credentials, NonceKey, NonceRefusal, NonceStore, Problem, SignatureMethod,
};

/// The nonces one replica remembers at most; past it (all within the window), a signed
/// request is refused 503 rather than a nonce forgotten.
pub const NONCE_CAPACITY: usize = 65_536;

/// The longest `oauth_nonce` accepted (bytes): the store holds each one for the window.
pub const MAX_NONCE: usize = 255;

/// Which dance request is checked: what it must and must not carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `oauth_callback` required, no `oauth_token`.
    RequestToken,
    /// `oauth_token` (the request token) and `oauth_verifier` required.
    AccessToken,
}

/// Why a signed request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Told to the consumer as `oauth_problem`.
    Problem(Problem),
    /// The nonce store is full or unusable: 503, try again.
    Busy,
}

impl From<Problem> for Refusal {
    fn from(problem: Problem) -> Self {
        Refusal::Problem(problem)
    }
}

/// A request whose signature verified: its consumer and its (now trusted) parameters.
#[derive(Debug)]
pub struct Signed<'a> {
    pub consumer: &'a Consumer,
    pub authorization: Authorization,
}

/// The first entry of the one header `name`.
fn one_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let mut values = headers.iter().filter(|(n, _)| n == name);
    match (values.next(), values.next()) {
        (Some((_, value)), None) => value.split(',').next().map(str::trim),
        _ => None,
    }
}

/// The public base URL (`scheme://host[:port][/path]`) the client used: see the module
/// documentation. `None` when nothing names one.
pub fn base_url(config: &crate::config::Config, headers: &[(String, String)]) -> Option<String> {
    let chosen = crate::links::base_for(&config.public_base_urls, config.base_url.as_ref(), headers);
    if !chosen.is_empty() {
        return Some(chosen.to_owned());
    }
    let scheme = match one_header(headers, "x-forwarded-proto") {
        Some(proto) if proto.eq_ignore_ascii_case("https") => "https",
        Some(proto) if proto.eq_ignore_ascii_case("http") => "http",
        Some(_) => return None,
        None => "http",
    };
    let host = one_header(headers, "host").filter(|h| !h.is_empty())?;
    Some(format!("{scheme}://{host}"))
}

/// Whether the request's body is a form (RFC 5849 section 3.4.1.3.1: only then is it signed).
fn is_form(request: &Request) -> bool {
    request.header("content-type").is_some_and(|value| {
        value
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    })
}

/// Checks the signed `request` for `step` at `now_ms`, as the client saw it under `base`
/// (see [`base_url`]).
pub fn check<'a>(
    oauth1: &'a OAuth1,
    nonces: &dyn NonceStore,
    base: &str,
    request: &Request,
    step: Step,
    now_ms: i64,
) -> Result<Signed<'a>, Refusal> {
    let mut values = request.headers.iter().filter(|(name, _)| name == "authorization");
    let header = match (values.next(), values.next()) {
        (Some((_, value)), None) => value,
        (None, _) => return Err(Problem::ParameterAbsent.into()),
        (Some(_), Some(_)) => return Err(Problem::ParameterRejected.into()),
    };
    let authorization = oauth1::parse(header).map_err(|e| e.problem().unwrap_or(Problem::ParameterAbsent))?;
    // An empty value is no value (RFC 5849 section 3.1 lets a client send `oauth_token=""`
    // when it has no token).
    let given = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.is_empty());
    match step {
        Step::RequestToken => {
            if given(&authorization.token) {
                return Err(Problem::ParameterRejected.into());
            }
            if !given(&authorization.callback) {
                return Err(Problem::ParameterAbsent.into());
            }
        }
        Step::AccessToken => {
            if !given(&authorization.token) || !given(&authorization.verifier) {
                return Err(Problem::ParameterAbsent.into());
            }
        }
    }
    if authorization.signature_method != SignatureMethod::RsaSha1 {
        return Err(Problem::SignatureMethodRejected.into());
    }
    // RSA-SHA1 has both (the parser requires them for every method but PLAINTEXT).
    let (Some(timestamp), Some(nonce)) = (authorization.timestamp, authorization.nonce.as_deref()) else {
        return Err(Problem::ParameterAbsent.into());
    };
    if nonce.is_empty() || nonce.len() > MAX_NONCE {
        return Err(Problem::ParameterRejected.into());
    }
    let now = u64::try_from(now_ms.div_euclid(1000)).unwrap_or(0);
    oauth1::check_timestamp(timestamp, now, oauth1.timestamp_window_seconds)?;
    let consumer = oauth1
        .consumer(&authorization.consumer_key)
        .ok_or(Problem::ConsumerKeyUnknown)?;
    let (path, query) = request.url.split_once('?').unwrap_or((request.url.as_str(), ""));
    let uri = BaseUri::from_url(&format!("{base}{path}")).map_err(|e| e.problem())?;
    let body = (is_form(request) && !request.body.is_empty()).then_some(request.body.as_slice());
    let base_string = oauth1::base_string(&request.method, &uri, query.as_bytes(), &authorization, body)
        .map_err(|e| e.problem())?;
    oauth1::verify(
        authorization.signature_method,
        &authorization.signature,
        &base_string,
        &[SignatureMethod::RsaSha1],
        Credentials::Rsa(&consumer.key),
    )
    .map_err(oauth1::SignatureError::problem)?;
    let key = NonceKey {
        consumer_key: &consumer.consumer_key,
        token: authorization.token.as_deref().unwrap_or_default(),
        nonce,
    };
    nonces
        .insert(key, timestamp, now)
        .map_err(|refusal| match refusal {
            NonceRefusal::Used => Refusal::Problem(Problem::NonceUsed),
            _ => Refusal::Busy,
        })?;
    Ok(Signed {
        consumer,
        authorization,
    })
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::config::Config;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use oauth1::MemoryNonces;
    use rsa::pkcs1v15::SigningKey;
    use rsa::pkcs8::DecodePrivateKey as _;
    use rsa::signature::{SignatureEncoding as _, Signer as _};
    use sha1::Sha1;

    /// The demo consumer's private key (demo only: committed for `make run` and tests).
    pub const DEMO_PRIVATE_KEY: &str = include_str!("../../demo/oauth-consumer.pem");

    /// 2026-12-01T14:00:00Z in milliseconds.
    pub const NOW_MS: i64 = 1_796_133_600_000;

    pub const BASE: &str = "http://127.0.0.1:9090";

    /// The test configuration with the demo consumer `tokengate-demo` (callback prefix
    /// `http://127.0.0.1:8765/`) and a second consumer `other` with the same key, reached
    /// under [`BASE`].
    pub fn config() -> Config {
        let text = r#"{"listen": "127.0.0.1:0", "database": "t.db", "users_file": "users.json",
            "introspection": {"client_id": "tokengate", "client_secret": "introspection-secret-0123"},
            "max_validity_months": 12, "default_validity_months": 6,
            "oauth1": {"consumers": [
              {"consumer_key": "tokengate-demo", "name": "Demo application link",
                "public_key_file": "demo-consumer.pub", "callbacks": ["http://127.0.0.1:8765/"]},
              {"consumer_key": "other", "name": "Another link", "public_key_file": "demo-consumer.pub"}
            ]}}"#;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let mut config = Config::for_tests();
        config.oauth1 = Config::parse(text, &dir).unwrap().oauth1;
        config.public_base_urls = vec![crate::links::BaseUrl::parse(BASE).unwrap()];
        config
    }

    /// An RSA-SHA1 signed request, as requests-oauthlib sends it: `params` (name, value) in
    /// the header besides the consumer key, method, timestamp, nonce and version.
    pub struct Signer<'a> {
        pub consumer_key: &'a str,
        pub method: &'a str,
        pub timestamp: i64,
        pub nonce: &'a str,
        pub signature_method: &'a str,
    }

    impl Default for Signer<'_> {
        fn default() -> Self {
            Self {
                consumer_key: "tokengate-demo",
                method: "POST",
                timestamp: NOW_MS / 1000,
                nonce: "n0nce",
                signature_method: "RSA-SHA1",
            }
        }
    }

    impl Signer<'_> {
        /// The request `POST {BASE}{url}` with `params` and `body` (a form when not empty).
        pub fn request(&self, url: &str, params: &[(&str, &str)], body: &str) -> Request {
            let enc = |s: &str| oauth1::encode::encode(s.as_bytes());
            let timestamp = self.timestamp.to_string();
            let mut all: Vec<(&str, &str)> = vec![
                ("oauth_consumer_key", self.consumer_key),
                ("oauth_signature_method", self.signature_method),
                ("oauth_timestamp", &timestamp),
                ("oauth_nonce", self.nonce),
                ("oauth_version", "1.0"),
            ];
            all.extend_from_slice(params);
            let mut header = String::from("OAuth ");
            for (name, value) in &all {
                header.push_str(&format!("{name}=\"{}\", ", enc(value)));
            }
            let unsigned = oauth1::parse(&format!("{header}oauth_signature=\"x\"")).unwrap();
            let uri = BaseUri::from_url(&format!("{BASE}{url}")).unwrap();
            let query = url.split_once('?').map_or("", |(_, q)| q);
            let form = (!body.is_empty()).then_some(body.as_bytes());
            let base = oauth1::base_string("POST", &uri, query.as_bytes(), &unsigned, form).unwrap();
            let key = rsa::RsaPrivateKey::from_pkcs8_pem(DEMO_PRIVATE_KEY).unwrap();
            let signature = STANDARD.encode(SigningKey::<Sha1>::new(key).sign(base.as_bytes()).to_bytes());
            header.push_str(&format!("oauth_signature=\"{}\"", enc(&signature)));
            let mut headers = vec![
                ("authorization".to_owned(), header),
                ("host".to_owned(), "127.0.0.1:9090".to_owned()),
            ];
            if !body.is_empty() {
                headers.push((
                    "content-type".to_owned(),
                    "application/x-www-form-urlencoded".to_owned(),
                ));
            }
            Request {
                method: self.method.to_owned(),
                url: url.to_owned(),
                headers,
                body: body.as_bytes().to_vec(),
            }
        }
    }

    const RT_URL: &str = "/plugins/servlet/oauth/request-token";
    const CALLBACK: (&str, &str) = ("oauth_callback", "http://127.0.0.1:8765/");

    fn checked(request: &Request, step: Step, nonces: &MemoryNonces) -> Result<String, Refusal> {
        let config = config();
        let oauth1 = config.oauth1.as_ref().unwrap();
        check(oauth1, nonces, BASE, request, step, NOW_MS).map(|s| s.consumer.consumer_key.clone())
    }

    #[test]
    fn a_request_signed_by_the_consumer_is_accepted_once() {
        let nonces = MemoryNonces::new(300, 16);
        let request = Signer::default().request(RT_URL, &[CALLBACK], "");
        assert_eq!(
            checked(&request, Step::RequestToken, &nonces),
            Ok("tokengate-demo".to_owned())
        );
        assert_eq!(
            checked(&request, Step::RequestToken, &nonces),
            Err(Refusal::Problem(Problem::NonceUsed))
        );
        // A form body and a query are signed too.
        let with_body = Signer {
            nonce: "n2",
            ..Signer::default()
        }
        .request(&format!("{RT_URL}?a=1"), &[CALLBACK], "b=2&c=3");
        assert_eq!(
            checked(&with_body, Step::RequestToken, &nonces),
            Ok("tokengate-demo".to_owned())
        );
    }

    #[test]
    fn every_refusal_names_its_problem_and_only_signed_requests_use_up_nonces() {
        let problem = |p| Err(Refusal::Problem(p));
        let nonces = MemoryNonces::new(300, 16);
        let good = Signer::default();
        let mut tampered = good.request(RT_URL, &[CALLBACK], "");
        tampered.url = format!("{RT_URL}?extra=1");
        let mut body_added = good.request(RT_URL, &[CALLBACK], "");
        body_added.body = b"x=1".to_vec();
        body_added.headers.push((
            "content-type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        ));
        let mut version_two = good.request(RT_URL, &[CALLBACK], "");
        version_two.headers[0].1 = version_two.headers[0]
            .1
            .replace("oauth_version=\"1.0\"", "oauth_version=\"2.0\"");
        let mut two_headers = good.request(RT_URL, &[CALLBACK], "");
        two_headers.headers.push(two_headers.headers[0].clone());
        let table = [
            (
                good.request(RT_URL, &[], ""),
                Step::RequestToken,
                problem(Problem::ParameterAbsent),
            ),
            (
                good.request(RT_URL, &[CALLBACK, ("oauth_token", "t")], ""),
                Step::RequestToken,
                problem(Problem::ParameterRejected),
            ),
            (
                good.request(RT_URL, &[("oauth_token", "t")], ""),
                Step::AccessToken,
                problem(Problem::ParameterAbsent),
            ),
            (
                good.request(RT_URL, &[("oauth_token", "t"), ("oauth_verifier", "")], ""),
                Step::AccessToken,
                problem(Problem::ParameterAbsent),
            ),
            (
                good.request(RT_URL, &[("oauth_callback", "")], ""),
                Step::RequestToken,
                problem(Problem::ParameterAbsent),
            ),
            (
                Signer {
                    signature_method: "HMAC-SHA1",
                    ..Signer::default()
                }
                .request(RT_URL, &[CALLBACK], ""),
                Step::RequestToken,
                problem(Problem::SignatureMethodRejected),
            ),
            (
                Signer {
                    signature_method: "PLAINTEXT",
                    ..Signer::default()
                }
                .request(RT_URL, &[CALLBACK], ""),
                Step::RequestToken,
                problem(Problem::SignatureMethodRejected),
            ),
            (
                Signer {
                    timestamp: NOW_MS / 1000 - 301,
                    ..Signer::default()
                }
                .request(RT_URL, &[CALLBACK], ""),
                Step::RequestToken,
                problem(Problem::TimestampRefused),
            ),
            (
                Signer {
                    timestamp: NOW_MS / 1000 + 301,
                    ..Signer::default()
                }
                .request(RT_URL, &[CALLBACK], ""),
                Step::RequestToken,
                problem(Problem::TimestampRefused),
            ),
            (
                Signer {
                    consumer_key: "nobody",
                    ..Signer::default()
                }
                .request(RT_URL, &[CALLBACK], ""),
                Step::RequestToken,
                problem(Problem::ConsumerKeyUnknown),
            ),
            (
                Signer {
                    nonce: &"n".repeat(MAX_NONCE + 1),
                    ..Signer::default()
                }
                .request(RT_URL, &[CALLBACK], ""),
                Step::RequestToken,
                problem(Problem::ParameterRejected),
            ),
            (tampered, Step::RequestToken, problem(Problem::SignatureInvalid)),
            (body_added, Step::RequestToken, problem(Problem::SignatureInvalid)),
            (
                two_headers,
                Step::RequestToken,
                problem(Problem::ParameterRejected),
            ),
            (
                Request {
                    headers: vec![("authorization".to_owned(), "Basic Zm9vOmJhcg==".to_owned())],
                    ..Request::default()
                },
                Step::RequestToken,
                problem(Problem::ParameterAbsent),
            ),
            (
                Request::default(),
                Step::RequestToken,
                problem(Problem::ParameterAbsent),
            ),
        ];
        for (i, (request, step, expected)) in table.into_iter().enumerate() {
            assert_eq!(checked(&request, step, &nonces), expected, "case {i}");
        }
        // None of them recorded its nonce: the good request still goes through.
        assert!(nonces.is_empty());
        assert!(checked(
            &good.request(RT_URL, &[CALLBACK], ""),
            Step::RequestToken,
            &nonces
        )
        .is_ok());
    }

    #[test]
    fn a_full_nonce_store_refuses_rather_than_forgets() {
        let nonces = MemoryNonces::new(300, 1);
        let first = Signer::default().request(RT_URL, &[CALLBACK], "");
        assert!(checked(&first, Step::RequestToken, &nonces).is_ok());
        let second = Signer {
            nonce: "another",
            ..Signer::default()
        }
        .request(RT_URL, &[CALLBACK], "");
        assert_eq!(checked(&second, Step::RequestToken, &nonces), Err(Refusal::Busy));
    }

    #[test]
    fn the_base_url_is_a_configured_one_or_else_the_requests_own() {
        let headers = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect()
        };
        let mut config = Config::for_tests();
        config.base_url = None;
        let table = [
            (
                headers(&[("host", "127.0.0.1:9090")]),
                Some("http://127.0.0.1:9090"),
            ),
            (
                headers(&[("host", "jira.example.com"), ("x-forwarded-proto", "https")]),
                Some("https://jira.example.com"),
            ),
            (headers(&[("host", "h"), ("x-forwarded-proto", "gopher")]), None),
            (headers(&[]), None),
        ];
        for (h, expected) in table {
            assert_eq!(base_url(&config, &h).as_deref(), expected, "{h:?}");
        }
        config.public_base_urls = vec![crate::links::BaseUrl::parse("https://jira.example.com").unwrap()];
        assert_eq!(
            base_url(&config, &headers(&[("host", "evil.example")])).as_deref(),
            Some("https://jira.example.com")
        );
    }
}
