//! Stage 1, extract: find the one credential a request carries.
//!
//! Sources are the `Authorization` header (scheme names compared case-insensitively, RFC 7235
//! section 2.1) and the `tisjwt` query parameter, under every spelling the application would
//! decode to it ([`is_tisjwt_name`]). Two credentials, two `Authorization` headers or a repeated
//! parameter (in any spellings) are refused rather than guessed between (RFC 6750 section 2: a
//! client "MUST NOT use more than one method to transmit the token in each request").

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
    /// `Authorization: OAuth realm="...", oauth_consumer_key="...", ...` (OAuth 1.0a, RFC 5849
    /// section 3.5.1): the value is the parameter list after the scheme.
    OAuth,
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
    let from_query = tisjwt_parameter(path, names_read_as_utf8(headers))?;
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
    // OAuth's parameters are comma-separated: its parser refuses what is not one of them.
    if !matches!(scheme, Scheme::Other | Scheme::OAuth) && value.contains(',') {
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
    } else if name.eq_ignore_ascii_case("oauth") {
        Scheme::OAuth
    } else {
        Scheme::Other
    }
}

/// Whether the raw (percent-encoded) query parameter name `raw` is a spelling of `tisjwt`:
/// what it decodes to as Tomcat decodes names ([`query::decode_name`]) equals `tisjwt` as
/// Java's `equalsIgnoreCase` compares (ASCII case, and the three letters whose simple case
/// mapping is an ASCII letter of `tisjwt`: `İ` U+0130 and `ı` U+0131 for `i`, `ſ` U+017F for
/// `s`).
///
/// Jira reads the parameter with the case-sensitive `getParameter("tisjwt")`, but a plugin or
/// servlet that compares names case-insensitively would still be handed `TISJWT=<token>`: a
/// credential must never reach the application, so every case is the parameter.
pub fn is_tisjwt_name(raw: &str) -> bool {
    // Most names have nothing to decode: compare them as they are, without allocating.
    if !raw.contains(['%', '+']) {
        return spells_tisjwt(raw);
    }
    query::decode_name(raw).is_some_and(|name| spells_tisjwt(&name))
}

/// Whether a name Tomcat would drop as undecodable (a broken `%` escape) still reads
/// `tisjwt` to a reader that skips what it cannot decode (`tis%jwt`, `tisjwt%`): such a
/// parameter is refused like a broken value, never forwarded. Other broken names are left
/// alone (a reader that keeps `%zz` as text cannot read `tisjwt`, which has no `%`).
fn is_broken_tisjwt_name(raw: &str) -> bool {
    // Only a `%` can break a name (`+` always decodes).
    raw.contains('%')
        && query::decode_name(raw).is_none()
        && spells_tisjwt(&query::decode_name_leniently(raw))
}

fn spells_tisjwt(name: &str) -> bool {
    let mut chars = name.chars();
    let same = TISJWT_PARAM.chars().all(|letter| {
        chars.next().is_some_and(|c| match letter {
            'i' => matches!(c, 'i' | 'I' | '\u{130}' | '\u{131}'),
            's' => matches!(c, 's' | 'S' | '\u{17F}'),
            _ => c.eq_ignore_ascii_case(&letter),
        })
    });
    same && chars.next().is_none()
}

/// `path` without any `tisjwt` parameter (every spelling, every copy), the rest untouched.
pub fn without_tisjwt(path: &str) -> String {
    query::remove_params(path, is_tisjwt_name)
}

/// Charsets in which every `%XX` escape of a name reads as in UTF-8 or Latin-1, neither of
/// which can spell `tisjwt` from bytes that [`is_tisjwt_name`] does not catch.
const NAME_CHARSETS: [&str; 10] = [
    "utf-8",
    "utf8",
    "us-ascii",
    "ascii",
    "iso-8859-1",
    "iso8859-1",
    "iso_8859-1",
    "latin1",
    "windows-1252",
    "cp1252",
];

/// Whether Tomcat reads escaped query names as this filter does. Jira's `server.xml` sets
/// `useBodyEncodingForURI="true"`: Tomcat then decodes the query in the charset of the
/// request's `Content-Type`, whatever the method, and in UTF-16BE `%00t%00i%00s%00j%00w%00t`
/// is `tisjwt`, in ISO-8859-9 `t%FDsjwt` is `tısjwt`, in IBM037 `%A3%89%A2%91%A6%A3` is.
fn names_read_as_utf8(headers: &[Header]) -> bool {
    headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .all(|(_, value)| {
            let Ok(value) = std::str::from_utf8(value) else {
                return false;
            };
            value.split(';').skip(1).all(|param| {
                let (name, charset) = param.split_once('=').unwrap_or((param, ""));
                let charset = charset.trim().trim_matches('"').to_ascii_lowercase();
                !name.trim().eq_ignore_ascii_case("charset") || NAME_CHARSETS.contains(&charset.as_str())
            })
        })
}

/// The `tisjwt` parameter; `names_as_utf8` is false when Tomcat would decode escaped names in
/// another charset ([`names_read_as_utf8`]): then a name with an escape is refused, since it
/// could be `tisjwt` to the application.
fn tisjwt_parameter(path: &str, names_as_utf8: bool) -> Result<Option<Credential>, ExtractError> {
    let mut found = None;
    for pair in query::pairs(path) {
        let foreign = !names_as_utf8 && pair.name.contains('%');
        if foreign || is_broken_tisjwt_name(pair.name) {
            return Err(ExtractError::Malformed(Scheme::Tisjwt));
        }
        if !is_tisjwt_name(pair.name) {
            continue;
        }
        if found.is_some() {
            // Two copies, in any spellings, are two credentials.
            return Err(ExtractError::MultipleCredentials);
        }
        found = Some(pair.value);
    }
    let Some(raw) = found else {
        return Ok(None);
    };
    let value = query::percent_decode(raw).ok_or(ExtractError::Malformed(Scheme::Tisjwt))?;
    Ok(Some(Credential {
        scheme: Scheme::Tisjwt,
        location: Location::QueryParameter,
        value,
    }))
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
    fn an_oauth_header_keeps_its_comma_separated_parameters() {
        let header = r#"OAuth realm="jira", oauth_consumer_key="a%20b", oauth_token="t""#;
        for spelling in [header.to_owned(), header.replacen("OAuth", "oauth", 1)] {
            assert_eq!(
                extract(&auth(&spelling), "/"),
                Ok(credential(
                    Scheme::OAuth,
                    Location::AuthorizationHeader,
                    r#"realm="jira", oauth_consumer_key="a%20b", oauth_token="t""#
                )),
                "{spelling}"
            );
        }
        // Another scheme's comma is still two headers Envoy folded into one.
        assert_eq!(
            extract(&auth("Bearer a, OAuth b=\"c\""), "/"),
            Err(ExtractError::MultipleAuthorizationHeaders)
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
    fn every_spelling_of_the_parameter_is_the_parameter() {
        for name in [
            "tisjwt",
            "TISJWT",
            "TisJwt",
            "%74isjwt",
            "%74%69%73%6a%77%74",
            "%54%49%53%4A%57%54",
            "tis%4Awt",
            "t%C4%B0sjwt",
            "t%C4%B1sjwt",
            "ti%C5%BFjwt",
        ] {
            assert_eq!(
                extract(&[], &format!("/x?a=1&{name}=tok&b=2")),
                Ok(credential(Scheme::Tisjwt, Location::QueryParameter, "tok")),
                "{name}"
            );
            assert!(is_tisjwt_name(name), "{name}");
        }
        for name in [
            "tisjwtx",
            "xtisjwt",
            "tisjwt+",
            "tis+jwt",
            "tisjw",
            "tis%00jwt",
            "t%C3%ACsjwt",
            "tis%zzjwt",
            "tisjwt%ff",
            "",
        ] {
            assert!(!is_tisjwt_name(name), "{name}");
        }
    }

    #[test]
    fn two_copies_in_any_spellings_are_two_credentials() {
        for path in [
            "/?tisjwt=a&%74isjwt=b",
            "/?tisjwt=a&TISJWT=b",
            "/?TisJwt=a&x=1&tis%6Awt",
            "/?tisjwt=&tisjwt=b",
        ] {
            assert_eq!(
                extract(&[], path),
                Err(ExtractError::MultipleCredentials),
                "{path}"
            );
        }
        assert_eq!(
            extract(&auth("Bearer x"), "/?TISJWT=b"),
            Err(ExtractError::MultipleCredentials)
        );
    }

    #[test]
    fn a_broken_name_is_refused_only_if_it_could_read_tisjwt() {
        for path in ["/?tis%jwt=a", "/?tisjwt%=a", "/?%74isjwt%=a", "/?TIS%JWT"] {
            assert_eq!(
                extract(&[], path),
                Err(ExtractError::Malformed(Scheme::Tisjwt)),
                "{path}"
            );
        }
        for path in ["/?tis%zzjwt=a", "/?%zz=a", "/?tisjwt%ff=a", "/?a%=1"] {
            assert_eq!(extract(&[], path), Ok(None), "{path}");
        }
    }

    #[test]
    fn escaped_names_under_a_charset_tomcat_would_decode_them_with_are_refused() {
        // Jira's server.xml sets `useBodyEncodingForURI="true"`: Tomcat decodes query names
        // in the charset of the request's Content-Type. In UTF-16BE, `%00t%00i%00s%00j%00w%00t`
        // is `tisjwt`; in ISO-8859-9, `t%FDsjwt` is `tısjwt`; in IBM037, `%A3%89%A2%91%A6%A3`.
        let with_type =
            |content_type: &str| vec![("content-type".to_owned(), content_type.as_bytes().to_vec())];
        for (content_type, path) in [
            ("text/plain; charset=UTF-16BE", "/x?%00t%00i%00s%00j%00w%00t=tok"),
            ("application/json;charset=ISO-8859-9", "/x?t%FDsjwt=tok"),
            ("text/plain; charset=\"IBM037\"", "/x?%A3%89%A2%91%A6%A3=tok"),
            ("text/plain; charset=utf-32", "/x?a=1&%00%00%00t=tok"),
        ] {
            assert_eq!(
                extract(&with_type(content_type), path),
                Err(ExtractError::Malformed(Scheme::Tisjwt)),
                "{content_type} {path}"
            );
        }
        // Charsets that read every escape as UTF-8 or Latin-1 would, and unescaped names.
        for (content_type, path) in [
            ("application/json;charset=UTF-8", "/x?%C3%A9t%C3%A9=1"),
            ("application/json; charset=iso-8859-1", "/x?caf%E9=1"),
            ("application/json", "/x?%61=1"),
            ("text/plain; charset=UTF-16BE", "/x?jql=project%3DX&startAt=0"),
        ] {
            assert_eq!(
                extract(&with_type(content_type), path),
                Ok(None),
                "{content_type} {path}"
            );
        }
    }

    #[test]
    fn every_copy_is_removed_and_the_rest_kept_byte_for_byte() {
        assert_eq!(
            without_tisjwt("/x?a=%2F&tisjwt=t&TISJWT=u&%74isjwt=v&b=+&tisjwtx=1"),
            "/x?a=%2F&b=+&tisjwtx=1"
        );
        assert_eq!(without_tisjwt("/x?TisJwt=t"), "/x");
        assert_eq!(without_tisjwt("/x?a=1"), "/x?a=1");
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
