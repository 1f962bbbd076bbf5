//! Stage 1, extract: find the one credential a request carries.
//!
//! Sources are the `Authorization` header (scheme names compared case-insensitively, RFC 7235
//! section 2.1) and the `tisjwt` query parameter. Two credentials, two `Authorization` headers or
//! a repeated parameter are refused rather than guessed between (RFC 6750 section 2: a client
//! "MUST NOT use more than one method to transmit the token in each request").

use crate::query;

/// Name of the query parameter seed 000 allows the TISJWT token in.
pub const TISJWT_PARAM: &str = "tisjwt";

/// Which kind of credential the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// `Authorization: TISJWT <token>` or `?tisjwt=<token>`.
    Tisjwt,
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `Authorization: Basic <base64(user:secret)>`.
    Basic,
    /// Any other scheme; no provider accepts it.
    Other,
}

/// Where the credential was found; the query parameter must be stripped before forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    AuthorizationHeader,
    QueryParameter,
}

/// A credential as the client sent it: nothing about it is trusted yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub scheme: Scheme,
    pub location: Location,
    /// The token (after the scheme, or the decoded parameter). May be empty.
    pub value: String,
}

/// Why no single credential could be taken from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtractError {
    /// More than one `Authorization` header, or one that Envoy folded from several (`a, b`).
    MultipleAuthorizationHeaders,
    /// A credential in the `Authorization` header and another in the query string, or the
    /// `tisjwt` parameter more than once.
    MultipleCredentials,
    /// The `Authorization` value is not UTF-8 or has no scheme; the `tisjwt` parameter has a
    /// broken percent escape.
    Malformed(Scheme),
}

/// A request header as the host hands it over: lower-case name, raw value bytes.
pub type Header = (String, Vec<u8>);

/// Finds the request's credential, `Ok(None)` when there is none at all.
pub fn extract(headers: &[Header], path: &str) -> Result<Option<Credential>, ExtractError> {
    let from_header = authorization(headers)?;
    let from_query = tisjwt_parameter(path)?;
    match (from_header, from_query) {
        (Some(_), Some(_)) => Err(ExtractError::MultipleCredentials),
        (header, query) => Ok(header.or(query)),
    }
}

fn authorization(headers: &[Header]) -> Result<Option<Credential>, ExtractError> {
    let mut values = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        .map(|(_, value)| value);
    let Some(raw) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ExtractError::MultipleAuthorizationHeaders);
    }
    parse_authorization(raw).map(Some)
}

fn parse_authorization(raw: &[u8]) -> Result<Credential, ExtractError> {
    let text = std::str::from_utf8(raw).map_err(|_| ExtractError::Malformed(Scheme::Other))?;
    let text = text.trim_matches(|c| c == ' ' || c == '\t');
    let (name, rest) = text.split_once([' ', '\t']).unwrap_or((text, ""));
    let scheme = scheme_named(name);
    if name.is_empty() {
        return Err(ExtractError::Malformed(Scheme::Other));
    }
    let value = rest.trim_start_matches([' ', '\t']);
    // token68 (RFC 7235) has no comma; a comma means Envoy joined two headers into one.
    if scheme != Scheme::Other && value.contains(',') {
        return Err(ExtractError::MultipleAuthorizationHeaders);
    }
    Ok(Credential {
        scheme,
        location: Location::AuthorizationHeader,
        value: value.to_owned(),
    })
}

fn scheme_named(name: &str) -> Scheme {
    if name.eq_ignore_ascii_case("tisjwt") {
        Scheme::Tisjwt
    } else if name.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if name.eq_ignore_ascii_case("basic") {
        Scheme::Basic
    } else {
        Scheme::Other
    }
}

fn tisjwt_parameter(path: &str) -> Result<Option<Credential>, ExtractError> {
    match query::raw_values(path, TISJWT_PARAM).as_slice() {
        [] => Ok(None),
        [raw] => {
            let value = query::percent_decode(raw).ok_or(ExtractError::Malformed(Scheme::Tisjwt))?;
            Ok(Some(Credential {
                scheme: Scheme::Tisjwt,
                location: Location::QueryParameter,
                value,
            }))
        }
        _ => Err(ExtractError::MultipleCredentials),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(value: &str) -> Vec<Header> {
        vec![("authorization".into(), value.as_bytes().to_vec())]
    }

    fn credential(scheme: Scheme, location: Location, value: &str) -> Option<Credential> {
        Some(Credential {
            scheme,
            location,
            value: value.into(),
        })
    }

    #[test]
    fn scheme_names_are_case_insensitive() {
        for header in ["TISJWT abc", "tisjwt abc", "TisJwt  abc", "TISJWT\tabc "] {
            assert_eq!(
                extract(&auth(header), "/"),
                Ok(credential(Scheme::Tisjwt, Location::AuthorizationHeader, "abc")),
                "{header:?}"
            );
        }
        assert_eq!(
            extract(&auth("bearer x"), "/").unwrap().unwrap().scheme,
            Scheme::Bearer
        );
        assert_eq!(
            extract(&auth("BASIC eA=="), "/").unwrap().unwrap().scheme,
            Scheme::Basic
        );
        assert_eq!(
            extract(&auth("Digest a=b, c=d"), "/").unwrap().unwrap().scheme,
            Scheme::Other
        );
    }

    #[test]
    fn a_scheme_without_a_token_is_an_empty_credential() {
        assert_eq!(
            extract(&auth("TISJWT"), "/"),
            Ok(credential(Scheme::Tisjwt, Location::AuthorizationHeader, ""))
        );
        assert_eq!(
            extract(&auth("TISJWT    "), "/"),
            Ok(credential(Scheme::Tisjwt, Location::AuthorizationHeader, ""))
        );
    }

    #[test]
    fn query_parameter_is_found_and_decoded() {
        assert_eq!(
            extract(&[], "/x?a=1&tisjwt=a%2Eb.c&b=2"),
            Ok(credential(Scheme::Tisjwt, Location::QueryParameter, "a.b.c"))
        );
        assert_eq!(
            extract(&[], "/x?tisjwt="),
            Ok(credential(Scheme::Tisjwt, Location::QueryParameter, ""))
        );
        assert_eq!(
            extract(&[], "/x?tisjwt=%zz"),
            Err(ExtractError::Malformed(Scheme::Tisjwt))
        );
    }

    #[test]
    fn nothing_is_none() {
        assert_eq!(
            extract(&[("x-other".into(), b"1".to_vec())], "/x?a=tisjwt"),
            Ok(None)
        );
    }

    #[test]
    fn ambiguity_is_refused() {
        let two = vec![
            ("authorization".into(), b"TISJWT a".to_vec()),
            ("Authorization".into(), b"TISJWT b".to_vec()),
        ];
        assert_eq!(
            extract(&two, "/"),
            Err(ExtractError::MultipleAuthorizationHeaders)
        );
        assert_eq!(
            extract(&auth("TISJWT a,TISJWT b"), "/"),
            Err(ExtractError::MultipleAuthorizationHeaders)
        );
        assert_eq!(
            extract(&auth("TISJWT a"), "/?tisjwt=b"),
            Err(ExtractError::MultipleCredentials)
        );
        assert_eq!(
            extract(&[], "/?tisjwt=a&tisjwt=b"),
            Err(ExtractError::MultipleCredentials)
        );
    }

    #[test]
    fn garbage_headers_are_malformed_not_panics() {
        for raw in [&b"\xff\xfe TISJWT"[..], b"", b"   ", b"\t"] {
            let headers = vec![("authorization".into(), raw.to_vec())];
            assert_eq!(
                extract(&headers, "/"),
                Err(ExtractError::Malformed(Scheme::Other)),
                "{raw:?}"
            );
        }
        let unicode = auth("TISJWT \u{202e}\u{0}é😀");
        assert_eq!(extract(&unicode, "/").unwrap().unwrap().value, "\u{202e}\u{0}é😀");
    }
}
