//! OAuth 1.0a signed requests (RFC 5849), pure: no proxy-wasm, no I/O. What the filter and
//! the token service both need to check a request signed by an application link (Jira's
//! OAuth 1.0a consumers, RSA-SHA1):
//!
//! 1. [`header::parse`] reads `Authorization: OAuth ...` (section 3.5.1);
//! 2. [`base_string::base_string`] builds the signature base string (section 3.4.1) from the
//!    method, the [`base_string::BaseUri`] the client saw, the query, the header's parameters
//!    and a form body;
//! 3. [`signature::verify`] checks the signature with the consumer's [`signature::ConsumerKey`];
//! 4. [`freshness::check_timestamp`] and a [`freshness::NonceStore`] refuse replays
//!    ([`shared_nonces::SharedNonces`] over Envoy's shared data, [`freshness::MemoryNonces`]
//!    in one process).
//!
//! Every failure maps to a [`problem::Problem`], the `oauth_problem` name Jira answers with.
//!
//! The order a caller checks in matters: parse, the signature method against the consumer's
//! allowed ones, the timestamp window (cheap), the consumer's key, the signature, and only
//! then the nonce. A nonce is recorded for signed requests only, so nobody without the
//! consumer's private key can use up nonces or fill the store.

pub mod base_string;
pub mod encode;
pub mod freshness;
pub mod header;
pub mod problem;
pub mod shared_nonces;
pub mod signature;

pub use base_string::{base_string, BaseStringError, BaseUri};
pub use freshness::{check_timestamp, MemoryNonces, NonceKey, NonceRefusal, NonceStore};
pub use header::{parse, Authorization, HeaderError};
pub use problem::Problem;
pub use shared_nonces::{SharedNonces, VersionedStore};
pub use signature::{
    verify, verify_with_host, ConsumerKey, Credentials, KeyError, SignatureError, SignatureMethod,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::encode;
    use crate::signature::tests::{key_pair, sign};
    use crate::signature::DEFAULT_MIN_BITS;

    /// A signed request as a client sends it: method, URL, header, form body.
    struct Signed {
        method: String,
        url: String,
        header: String,
        body: Option<String>,
    }

    fn signed(method: &str, url: &str, body: Option<&str>) -> Signed {
        let params = [
            ("oauth_consumer_key", "jira-cli"),
            ("oauth_token", "t0k3n"),
            ("oauth_signature_method", "RSA-SHA1"),
            ("oauth_timestamp", "1764590000"),
            ("oauth_nonce", "a9f3 c/="),
            ("oauth_version", "1.0"),
        ];
        let mut header = String::from("OAuth realm=\"Jira\"");
        for (name, value) in params {
            header.push_str(&format!(", {name}=\"{}\"", encode(value.as_bytes())));
        }
        // The base string leaves the signature out: any value stands in for it.
        let unsigned = parse(&format!("{header}, oauth_signature=\"\"")).unwrap();
        let base = base_string_of(method, url, &unsigned, body).unwrap();
        header.push_str(&format!(
            ", oauth_signature=\"{}\"",
            encode(sign(&base).as_bytes())
        ));
        Signed {
            method: method.into(),
            url: url.into(),
            header,
            body: body.map(Into::into),
        }
    }

    fn base_string_of(
        method: &str,
        url: &str,
        auth: &Authorization,
        body: Option<&str>,
    ) -> Result<String, BaseStringError> {
        let uri = BaseUri::from_url(url)?;
        let query = url.split_once('?').map_or("", |(_, query)| query);
        base_string(method, &uri, query.as_bytes(), auth, body.map(str::as_bytes))
    }

    /// What the filter will do with a request: parse, build, verify (RSA-SHA1 only).
    fn check(request: &Signed) -> Result<(), Problem> {
        let auth = parse(&request.header).map_err(|e| e.problem().unwrap())?;
        let base = base_string_of(&request.method, &request.url, &auth, request.body.as_deref())
            .map_err(|e| e.problem())?;
        let key = ConsumerKey::from_pem(&key_pair().1, DEFAULT_MIN_BITS).unwrap();
        verify(
            auth.signature_method,
            &auth.signature,
            &base,
            &[SignatureMethod::RsaSha1],
            Credentials::Rsa(&key),
        )
        .map_err(SignatureError::problem)
    }

    #[test]
    fn a_signed_request_verifies_and_any_change_after_signing_is_refused() {
        let url = "https://jira.example.com/rest/api/2/issue/DEMO-1/comment?expand=renderedBody&a=1";
        let good = signed("POST", url, Some("body=Hello+world&visibility=all"));
        assert_eq!(check(&good), Ok(()));
        let invalid = Err(Problem::SignatureInvalid);
        let header_changes = [
            ("jira-cli", "jira-cl1"),
            ("t0k3n", "t0k3m"),
            ("1764590000", "1764590001"),
            ("a9f3%20c%2F%3D", "a9f3%20c%2F%3E"),
            ("oauth_version=\"1.0\"", "oauth_version=\"1.0\", x=\"1\""),
        ];
        for (from, to) in header_changes {
            let tampered = Signed {
                header: good.header.replace(from, to),
                ..signed("POST", url, good.body.as_deref())
            };
            assert_eq!(check(&tampered), invalid, "{from} -> {to}");
        }
        let changes = [
            ("PUT", url.to_owned(), good.body.clone()),
            ("POST", url.replace("DEMO-1", "DEMO-2"), good.body.clone()),
            ("POST", url.replace("https", "http"), good.body.clone()),
            ("POST", url.replace(".com", ".com:8443"), good.body.clone()),
            ("POST", url.replace("a=1", "a=2"), good.body.clone()),
            ("POST", format!("{url}&b=1"), good.body.clone()),
            (
                "POST",
                url.to_owned(),
                Some("body=Hello+world&visibility=none".into()),
            ),
            ("POST", url.to_owned(), None),
        ];
        for (method, url, body) in changes {
            let tampered = Signed {
                method: method.into(),
                url: url.clone(),
                header: good.header.clone(),
                body: body.clone(),
            };
            assert_eq!(check(&tampered), invalid, "{method} {url} {body:?}");
        }
        // What the base string leaves out may change: the realm, the host's case, a default port.
        let other_realm = Signed {
            header: good.header.replace("realm=\"Jira\"", "realm=\"Other\""),
            ..signed("POST", url, good.body.as_deref())
        };
        assert_eq!(check(&other_realm), Ok(()));
        for url in [
            url.replace("jira.example.com", "JIRA.example.COM"),
            url.replace(".com", ".com:443"),
        ] {
            let same = Signed {
                url,
                ..signed(
                    "POST",
                    "https://jira.example.com/rest/api/2/issue/DEMO-1/comment?expand=renderedBody&a=1",
                    good.body.as_deref(),
                )
            };
            assert_eq!(check(&same), Ok(()));
        }
        // Another signature method named after signing: refused as a method, not as a signature.
        let hmac = Signed {
            header: good.header.replace("RSA-SHA1", "HMAC-SHA1"),
            ..signed("POST", url, good.body.as_deref())
        };
        assert_eq!(check(&hmac), Err(Problem::SignatureMethodRejected));
    }
}
