//! The signature base string (RFC 5849 section 3.4.1): the method, the base string URI and
//! the normalised request parameters, each encoded per section 3.6, joined by `&`.
//!
//! The base string URI is what the *client* signed: behind a TLS-terminating proxy the
//! scheme and host differ from what Envoy's listener sees, so the caller hands in the
//! scheme and authority it decided on (a configured public base URL, or the request's
//! `:authority` and scheme) with the path as sent.

use crate::encode::{encode, encode_into, form_pairs};
use crate::header::Authorization;
use crate::problem::Problem;

/// The most parameters (query, header and body together) a base string is built from. A
/// form body is bounded by the caller; this bounds the sort.
pub const MAX_PARAMETERS: usize = 1024;

/// Why no base string can be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BaseStringError {
    /// The scheme is not `http` or `https`.
    Scheme,
    /// The authority is empty, has user information, a bad port, or characters no host has.
    Authority,
    /// The path does not start with `/` (an absolute URL or `*`).
    Path,
    /// An `oauth_` parameter in the query or the body of a request that carries them in its
    /// `Authorization` header (section 3.5: one transmission method per request).
    ProtocolParameterOutsideHeader,
    /// More than [`MAX_PARAMETERS`] parameters.
    TooManyParameters,
}

impl BaseStringError {
    pub fn problem(&self) -> Problem {
        Problem::ParameterRejected
    }
}

/// A base string URI (section 3.4.1.2): scheme and host lower-case, the port only when it is
/// not the scheme's default, the path as sent, no query or fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUri(String);

impl BaseUri {
    /// From a scheme (`http` or `https`, any case), an authority (`host[:port]`, as in
    /// `:authority` or a configured public base URL) and the request's path (`:path`, whose
    /// query is cut off here).
    pub fn new(scheme: &str, authority: &str, path: &str) -> Result<Self, BaseStringError> {
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => "80",
            "https" => "443",
            _ => return Err(BaseStringError::Scheme),
        };
        let (host, port) = split_authority(authority).ok_or(BaseStringError::Authority)?;
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let path = match path {
            "" => "/",
            path if path.starts_with('/') => path,
            _ => return Err(BaseStringError::Path),
        };
        let mut uri = format!("{scheme}://{}", host.to_ascii_lowercase());
        if !port.is_empty() && port != default_port {
            uri.push(':');
            uri.push_str(port);
        }
        uri.push_str(path);
        Ok(Self(uri))
    }

    /// From an absolute URL, `scheme://authority/path?query` (RFC 5849's examples, or a
    /// public base URL joined with the path).
    pub fn from_url(url: &str) -> Result<Self, BaseStringError> {
        let (scheme, rest) = url.split_once("://").ok_or(BaseStringError::Scheme)?;
        let at = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(at);
        Self::new(scheme, authority, path)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `host` and `port` (empty when absent) of an authority; an IPv6 literal keeps its brackets.
fn split_authority(authority: &str) -> Option<(&str, &str)> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let end = rest.find(']')?;
            let host = authority.get(..end + 2)?;
            let after = rest.get(end + 1..)?;
            match after {
                "" => (host, ""),
                _ => (host, after.strip_prefix(':')?),
            }
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, port),
            None => (authority, ""),
        },
    };
    // A registered name (RFC 3986 section 3.2.2, no user information) or a bracketed IPv6
    // literal.
    let host_ok = match host.strip_prefix('[') {
        Some(literal) => literal.strip_suffix(']').is_some_and(|inner| {
            !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b":.".contains(&b))
        }),
        None => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&b))
        }
    };
    let port_ok = port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().map_or(port.is_empty(), |p| p <= 65535);
    (host_ok && port_ok).then_some((host, port))
}

/// The normalised parameters of section 3.4.1.3.2: each name and value encoded, sorted by
/// name then value (byte order), `name=value` joined by `&`.
pub fn normalize<'a>(parameters: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> String {
    let mut encoded: Vec<(String, String)> = parameters
        .into_iter()
        .map(|(name, value)| (encode(name), encode(value)))
        .collect();
    encoded.sort_unstable();
    let length = encoded
        .iter()
        .map(|(name, value)| name.len() + value.len() + 2)
        .sum();
    let mut out = String::with_capacity(length);
    for (i, (name, value)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// The base string of a request signed in its `Authorization` header: `method`, `uri`, the
/// raw `query` (after `?`, empty when none), the header's parameters but `oauth_signature`,
/// and the pairs of `form_body` when the request is `application/x-www-form-urlencoded`
/// (section 3.4.1.3.1: the caller decides whether it is, from the content type).
pub fn base_string(
    method: &str,
    uri: &BaseUri,
    query: &[u8],
    authorization: &Authorization,
    form_body: Option<&[u8]>,
) -> Result<String, BaseStringError> {
    let mut outside: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for pair in form_pairs(query).chain(form_body.into_iter().flat_map(form_pairs)) {
        if pair.0.starts_with(b"oauth_") {
            return Err(BaseStringError::ProtocolParameterOutsideHeader);
        }
        if outside.len() + authorization.parameters.len() >= MAX_PARAMETERS {
            return Err(BaseStringError::TooManyParameters);
        }
        outside.push(pair);
    }
    let header = authorization
        .parameters
        .iter()
        .filter(|(name, _)| name != "oauth_signature")
        .map(|(name, value)| (name.as_bytes(), value.as_bytes()));
    let parameters = normalize(
        outside
            .iter()
            .map(|(name, value)| (name.as_slice(), value.as_slice()))
            .chain(header),
    );
    // The parameters are encoded again: most of their `%`, `=` and `&` become three bytes.
    let mut out = String::with_capacity(method.len() + 3 * uri.as_str().len() + 2 * parameters.len() + 2);
    encode_into(method.to_ascii_uppercase().as_bytes(), &mut out);
    out.push('&');
    encode_into(uri.as_str().as_bytes(), &mut out);
    out.push('&');
    encode_into(parameters.as_bytes(), &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::parse;

    /// RFC 5849 section 3.4.1.1's request (the `Authorization` header of its example, with
    /// the body `c2&a3=2+q`).
    const HEADER: &str = r#"OAuth realm="Example", oauth_consumer_key="9djdj82h48djs9d2", oauth_token="kkk9d7dh3k39sjv7", oauth_signature_method="HMAC-SHA1", oauth_timestamp="137131201", oauth_nonce="7d8f3e4a", oauth_signature="bYT5CMsGcbgUdFHObYMEfcx6bsw%3D""#;
    const BASE: &str = "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7";

    #[test]
    fn the_rfc_5849_section_3_4_1_1_base_string_is_built() {
        let auth = parse(HEADER).unwrap();
        let uri = BaseUri::new("http", "example.com", "/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b").unwrap();
        let query = b"b5=%3D%253D&a3=a&c%40=&a2=r%20b";
        let base = base_string("POST", &uri, query, &auth, Some(b"c2&a3=2+q")).unwrap();
        assert_eq!(base, BASE);
        // The method is upper-cased.
        assert_eq!(
            base_string("post", &uri, query, &auth, Some(b"c2&a3=2+q")).unwrap(),
            BASE
        );
    }

    #[test]
    fn the_rfc_5849_section_3_4_1_3_2_normalisation_is_made() {
        let parameters: [(&[u8], &[u8]); 12] = [
            (b"b5", b"=%3D"),
            (b"a3", b"a"),
            (b"c@", b""),
            (b"a2", b"r b"),
            (b"oauth_consumer_key", b"9djdj82h48djs9d2"),
            (b"oauth_token", b"kkk9d7dh3k39sjv7"),
            (b"oauth_signature_method", b"HMAC-SHA1"),
            (b"oauth_timestamp", b"137131201"),
            (b"oauth_nonce", b"7d8f3e4a"),
            (b"c2", b""),
            (b"a3", b"2 q"),
            (b"c2", b""),
        ];
        // Without the repeated c2 it is the RFC's string; a repeat stays, sorted by value.
        assert_eq!(
            normalize(parameters[..11].iter().copied()),
            "a2=r%20b&a3=2%20q&a3=a&b5=%3D%253D&c%40=&c2=&oauth_consumer_key=9djdj82h48djs9d2&oauth_nonce=7d8f3e4a&oauth_signature_method=HMAC-SHA1&oauth_timestamp=137131201&oauth_token=kkk9d7dh3k39sjv7"
        );
        assert!(normalize(parameters).contains("&c2=&c2=&"));
    }

    #[test]
    fn base_string_uris_are_those_of_rfc_5849_section_3_4_1_2() {
        let table = [
            (
                "http://EXAMPLE.COM:80/r%20v/X?id=123",
                "http://example.com/r%20v/X",
            ),
            (
                "https://www.example.net:8080/?q=1",
                "https://www.example.net:8080/",
            ),
            ("HTTPS://Jira.Example.com:443", "https://jira.example.com/"),
            ("http://example.com:443/a", "http://example.com:443/a"),
            ("https://example.com:80/a#frag", "https://example.com:80/a"),
            ("http://[::1]:8080/A/b", "http://[::1]:8080/A/b"),
            ("http://[::1]:80/", "http://[::1]/"),
            ("http://h:/x", "http://h/x"),
        ];
        for (url, expected) in table {
            assert_eq!(BaseUri::from_url(url).unwrap().as_str(), expected, "{url}");
        }
        let refused = [
            ("ftp://example.com/", BaseStringError::Scheme),
            ("example.com/", BaseStringError::Scheme),
            ("http:///x", BaseStringError::Authority),
            ("http://user@example.com/", BaseStringError::Authority),
            ("http://example.com:99999/", BaseStringError::Authority),
            ("http://example.com:8a/", BaseStringError::Authority),
            ("http://exa mple.com/", BaseStringError::Authority),
            ("http://[::1/", BaseStringError::Authority),
            ("http://[::1]x/", BaseStringError::Authority),
            ("http://a:b:80/", BaseStringError::Authority),
            ("http://[]/", BaseStringError::Authority),
            ("http://[v1.x]/", BaseStringError::Authority),
        ];
        for (url, error) in refused {
            assert_eq!(BaseUri::from_url(url), Err(error), "{url}");
        }
        assert_eq!(BaseUri::new("http", "h", "*"), Err(BaseStringError::Path));
    }

    proptest::proptest! {
        #[test]
        fn no_url_panics(url in "(https?://)?\\PC{0,40}") {
            let _ = BaseUri::from_url(&url);
        }
    }

    #[test]
    fn oauth_parameters_outside_the_header_and_too_many_parameters_are_refused() {
        let auth = parse(HEADER).unwrap();
        let uri = BaseUri::from_url("http://example.com/request").unwrap();
        for (query, body) in [
            (&b"oauth_nonce=x"[..], None),
            (b"", Some(&b"a=1&oauth_token=t"[..])),
        ] {
            assert_eq!(
                base_string("POST", &uri, query, &auth, body),
                Err(BaseStringError::ProtocolParameterOutsideHeader)
            );
        }
        let many = "a=1&".repeat(MAX_PARAMETERS);
        assert_eq!(
            base_string("GET", &uri, many.as_bytes(), &auth, None),
            Err(BaseStringError::TooManyParameters)
        );
        let fewer = "a=1&".repeat(MAX_PARAMETERS - auth.parameters.len());
        assert!(base_string("GET", &uri, fewer.as_bytes(), &auth, None).is_ok());
    }
}
