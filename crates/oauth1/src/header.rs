//! The `Authorization: OAuth ...` header of a signed request (RFC 5849 section 3.5.1):
//! `OAuth` then comma-separated `name="value"` pairs, each name and value percent-encoded
//! (section 3.6). Parsed into the protocol parameters a verifier needs and the list of every
//! parameter but `realm` that the signature covers (section 3.4.1.3.1).
//!
//! Hostile input costs little: the header is refused above [`MAX_HEADER_LEN`] bytes or
//! [`MAX_PARAMETERS`] parameters before anything is decoded or stored, and one pass reads it.

use crate::encode::{decode_strict, encode_into};
use crate::problem::Problem;
use crate::signature::SignatureMethod;

/// The longest header read (bytes). A real one is about 600 (an RSA-2048 signature is 344
/// characters of base64, percent-encoded a few more).
pub const MAX_HEADER_LEN: usize = 8192;

/// The most parameters read, `realm` included. A request carries at most eight protocol ones.
pub const MAX_PARAMETERS: usize = 32;

/// Why a header is not a usable OAuth one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// Another scheme (`Basic`, `Bearer`, ...): not an OAuth request at all.
    NotOAuth,
    /// Longer than [`MAX_HEADER_LEN`].
    TooLong,
    /// More than [`MAX_PARAMETERS`] parameters.
    TooManyParameters,
    /// Not comma-separated `name="value"` pairs (an unquoted value, a stray character).
    Malformed,
    /// A name or value that is not percent-encoded per section 3.6 (a broken escape, or
    /// octets that are not UTF-8).
    BadEncoding,
    /// A protocol parameter (or `realm`) given twice (section 3.1: "MUST NOT appear more than
    /// once").
    Repeated(String),
    /// `oauth_version` present and not `1.0` (section 3.1).
    Version,
    /// `oauth_signature_method` is none of RSA-SHA1, HMAC-SHA1 and PLAINTEXT.
    UnknownSignatureMethod,
    /// A required protocol parameter is missing.
    Absent(&'static str),
    /// `oauth_timestamp` is not a number of seconds.
    BadTimestamp,
}

impl HeaderError {
    /// What the consumer is told; `None` for another scheme's header.
    pub fn problem(&self) -> Option<Problem> {
        Some(match self {
            Self::NotOAuth => return None,
            Self::TooLong
            | Self::TooManyParameters
            | Self::Malformed
            | Self::BadEncoding
            | Self::Repeated(_)
            | Self::BadTimestamp => Problem::ParameterRejected,
            Self::Version => Problem::VersionRejected,
            Self::UnknownSignatureMethod => Problem::SignatureMethodRejected,
            Self::Absent(_) => Problem::ParameterAbsent,
        })
    }
}

/// A parsed `Authorization: OAuth` header. Nothing in it is trusted until the signature
/// over [`Authorization::parameters`] verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// `realm`, as sent (not covered by the signature).
    pub realm: Option<String>,
    pub consumer_key: String,
    /// `oauth_token`; absent on a request-token request.
    pub token: Option<String>,
    pub signature_method: SignatureMethod,
    /// `oauth_signature`, decoded (base64 for RSA-SHA1 and HMAC-SHA1).
    pub signature: String,
    /// `oauth_timestamp` (seconds since the epoch); may be absent with PLAINTEXT only.
    pub timestamp: Option<u64>,
    /// `oauth_nonce`; may be absent with PLAINTEXT only.
    pub nonce: Option<String>,
    /// `oauth_callback` (request-token requests).
    pub callback: Option<String>,
    /// `oauth_verifier` (access-token requests).
    pub verifier: Option<String>,
    /// Every parameter but `realm`, decoded, in the header's order: what the signature base
    /// string takes from the header (section 3.4.1.3.1), `oauth_signature` included (the
    /// base string leaves it out).
    pub parameters: Vec<(String, String)>,
}

/// Parses an `Authorization` header value.
pub fn parse(value: &str) -> Result<Authorization, HeaderError> {
    let (scheme, rest) = match value.find([' ', '\t']) {
        Some(at) => value.split_at(at),
        None => (value, ""),
    };
    if !scheme.eq_ignore_ascii_case("OAuth") {
        return Err(HeaderError::NotOAuth);
    }
    parse_parameters(rest, value.len())
}

/// Parses what follows `OAuth ` in an `Authorization` value whose scheme a caller already read
/// (the filter's credential extraction): the same as [`parse`] of `OAuth <parameters>`.
pub fn parse_after_scheme(parameters: &str) -> Result<Authorization, HeaderError> {
    parse_parameters(parameters, "OAuth ".len() + parameters.len())
}

/// The parameters of a header value `header_len` bytes long (bounded by [`MAX_HEADER_LEN`]).
fn parse_parameters(rest: &str, header_len: usize) -> Result<Authorization, HeaderError> {
    if header_len > MAX_HEADER_LEN {
        return Err(HeaderError::TooLong);
    }
    let raw = split_pairs(rest)?;
    let mut realm = None;
    let mut parameters: Vec<(String, String)> = Vec::with_capacity(raw.len());
    for (name, value) in raw {
        if name == "realm" {
            if realm.replace(value.to_owned()).is_some() {
                return Err(HeaderError::Repeated("realm".into()));
            }
            continue;
        }
        // Encoded values have no spaces; only `realm` is a free quoted string.
        if value.contains(' ') {
            return Err(HeaderError::Malformed);
        }
        let name = decode_strict(name).ok_or(HeaderError::BadEncoding)?;
        let value = decode_strict(value).ok_or(HeaderError::BadEncoding)?;
        if name.starts_with("oauth_") && parameters.iter().any(|(seen, _)| *seen == name) {
            return Err(HeaderError::Repeated(name));
        }
        parameters.push((name, value));
    }
    let get = |wanted: &str| {
        parameters
            .iter()
            .find(|(name, _)| name == wanted)
            .map(|(_, value)| value.clone())
    };
    if get("oauth_version").is_some_and(|version| version != "1.0") {
        return Err(HeaderError::Version);
    }
    let signature_method = match get("oauth_signature_method") {
        Some(name) => SignatureMethod::from_name(&name).ok_or(HeaderError::UnknownSignatureMethod)?,
        None => return Err(HeaderError::Absent("oauth_signature_method")),
    };
    let consumer_key = get("oauth_consumer_key").ok_or(HeaderError::Absent("oauth_consumer_key"))?;
    let signature = get("oauth_signature").ok_or(HeaderError::Absent("oauth_signature"))?;
    let timestamp = match get("oauth_timestamp") {
        Some(seconds) => Some(parse_timestamp(&seconds)?),
        None => None,
    };
    let nonce = get("oauth_nonce");
    // Section 3.1: timestamp and nonce "MAY be omitted when using the PLAINTEXT method".
    if signature_method != SignatureMethod::Plaintext {
        if timestamp.is_none() {
            return Err(HeaderError::Absent("oauth_timestamp"));
        }
        if nonce.is_none() {
            return Err(HeaderError::Absent("oauth_nonce"));
        }
    }
    Ok(Authorization {
        realm,
        consumer_key,
        token: get("oauth_token"),
        signature_method,
        signature,
        timestamp,
        nonce,
        callback: get("oauth_callback"),
        verifier: get("oauth_verifier"),
        parameters,
    })
}

/// Digits only (no sign, no space), at most 12 of them (year 33658): a positive integer
/// (section 3.3).
fn parse_timestamp(seconds: &str) -> Result<u64, HeaderError> {
    if seconds.is_empty() || seconds.len() > 12 || !seconds.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeaderError::BadTimestamp);
    }
    seconds.parse().map_err(|_| HeaderError::BadTimestamp)
}

/// The raw `name="value"` pairs after the scheme: linear white space around each, commas
/// between (empty list elements allowed, as RFC 2617's `#rule` has them).
fn split_pairs(mut rest: &str) -> Result<Vec<(&str, &str)>, HeaderError> {
    let mut pairs = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return Ok(pairs);
        }
        if pairs.len() == MAX_PARAMETERS {
            return Err(HeaderError::TooManyParameters);
        }
        let (name, after) = rest.split_once('=').ok_or(HeaderError::Malformed)?;
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return Err(HeaderError::Malformed);
        }
        let quoted = after.strip_prefix('"').ok_or(HeaderError::Malformed)?;
        let (value, after) = quoted.split_once('"').ok_or(HeaderError::Malformed)?;
        if !value.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'\\') {
            return Err(HeaderError::Malformed);
        }
        pairs.push((name, value));
        rest = after.trim_start_matches([' ', '\t']);
        match rest.strip_prefix(',') {
            Some(after) => rest = after,
            None if rest.is_empty() => return Ok(pairs),
            None => return Err(HeaderError::Malformed),
        }
    }
}

/// RFC 7230 `tchar`.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl Authorization {
    /// The header value that carries the same parameters (`realm` first), each encoded per
    /// section 3.6: what a client would send.
    pub fn to_header_value(&self) -> String {
        let mut out = String::from("OAuth ");
        let mut first = true;
        let mut put = |name: &str, value: &str, encoded: bool| {
            if !std::mem::take(&mut first) {
                out.push_str(", ");
            }
            encode_into(name.as_bytes(), &mut out);
            out.push_str("=\"");
            match encoded {
                true => encode_into(value.as_bytes(), &mut out),
                false => out.push_str(value),
            }
            out.push('"');
        };
        if let Some(realm) = &self.realm {
            put("realm", realm, false);
        }
        for (name, value) in &self.parameters {
            put(name, value, true);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 5849 section 3.5.1's example.
    const RFC_EXAMPLE: &str = r#"OAuth realm="Example",
        oauth_consumer_key="0685bd9184jfhq22",
        oauth_token="ad180jjd733klru7",
        oauth_signature_method="HMAC-SHA1",
        oauth_signature="wOJIO9A2W5mFwDgiDvZbTSMK%2FPY%3D",
        oauth_timestamp="137131200",
        oauth_nonce="4572616e48616d6d65724c61686176",
        oauth_version="1.0""#;

    #[test]
    fn the_rfc_example_header_is_read() {
        let auth = parse(&RFC_EXAMPLE.replace('\n', "")).unwrap();
        assert_eq!(auth.realm.as_deref(), Some("Example"));
        assert_eq!(auth.consumer_key, "0685bd9184jfhq22");
        assert_eq!(auth.token.as_deref(), Some("ad180jjd733klru7"));
        assert_eq!(auth.signature_method, SignatureMethod::HmacSha1);
        assert_eq!(auth.signature, "wOJIO9A2W5mFwDgiDvZbTSMK/PY=");
        assert_eq!(auth.timestamp, Some(137131200));
        assert_eq!(auth.nonce.as_deref(), Some("4572616e48616d6d65724c61686176"));
        assert_eq!(auth.parameters.len(), 7, "realm is not a signed parameter");
        assert_eq!(auth.parameters[0].0, "oauth_consumer_key");
    }

    fn header(extra: &str) -> String {
        format!(
            r#"OAuth oauth_consumer_key="c", oauth_signature_method="RSA-SHA1", oauth_signature="s", oauth_timestamp="1", oauth_nonce="n"{extra}"#
        )
    }

    #[test]
    fn each_refusal_names_its_problem() {
        let many = (0..MAX_PARAMETERS)
            .map(|i| format!(r#", x{i}="1""#))
            .collect::<String>();
        let table: [(String, HeaderError, Option<&str>); 18] = [
            ("Basic YTpi".into(), HeaderError::NotOAuth, None),
            ("Bearer x".into(), HeaderError::NotOAuth, None),
            ("OAuthx a=\"b\"".into(), HeaderError::NotOAuth, None),
            (
                header(&" ".repeat(MAX_HEADER_LEN)),
                HeaderError::TooLong,
                Some("parameter_rejected"),
            ),
            (
                header(&many),
                HeaderError::TooManyParameters,
                Some("parameter_rejected"),
            ),
            (
                header(", oauth_token=t"),
                HeaderError::Malformed,
                Some("parameter_rejected"),
            ),
            (
                header(r#", oauth_token="t"#),
                HeaderError::Malformed,
                Some("parameter_rejected"),
            ),
            (
                header(r#" oauth_token="t""#),
                HeaderError::Malformed,
                Some("parameter_rejected"),
            ),
            (
                header(r#", ="t""#),
                HeaderError::Malformed,
                Some("parameter_rejected"),
            ),
            (
                header(r#", oauth_token="a b""#),
                HeaderError::Malformed,
                Some("parameter_rejected"),
            ),
            (
                header(r#", oauth_token="%zz""#),
                HeaderError::BadEncoding,
                Some("parameter_rejected"),
            ),
            (
                header(r#", oauth_nonce="m""#),
                HeaderError::Repeated("oauth_nonce".into()),
                Some("parameter_rejected"),
            ),
            (
                header(r#", realm="a", realm="b""#),
                HeaderError::Repeated("realm".into()),
                Some("parameter_rejected"),
            ),
            (
                header(r#", oauth_version="2.0""#),
                HeaderError::Version,
                Some("version_rejected"),
            ),
            (
                header("").replace("RSA-SHA1", "RSA-SHA256"),
                HeaderError::UnknownSignatureMethod,
                Some("signature_method_rejected"),
            ),
            (
                header("").replace(r#"oauth_nonce="n""#, ""),
                HeaderError::Absent("oauth_nonce"),
                Some("parameter_absent"),
            ),
            (
                "OAuth".into(),
                HeaderError::Absent("oauth_signature_method"),
                Some("parameter_absent"),
            ),
            (
                header("").replace(r#"oauth_timestamp="1""#, r#"oauth_timestamp="-1""#),
                HeaderError::BadTimestamp,
                Some("parameter_rejected"),
            ),
        ];
        for (value, error, problem) in table {
            let got = parse(&value).unwrap_err();
            assert_eq!(got, error, "{value}");
            assert_eq!(got.problem().map(Problem::name), problem, "{value}");
        }
    }

    #[test]
    fn plaintext_may_leave_out_timestamp_and_nonce_and_others_may_not() {
        let plaintext =
            r#"OAuth oauth_consumer_key="c", oauth_signature_method="PLAINTEXT", oauth_signature="a%26b""#;
        let auth = parse(plaintext).unwrap();
        assert_eq!(
            (auth.timestamp, auth.nonce, auth.signature.as_str()),
            (None, None, "a&b")
        );
        let rsa = plaintext.replace("PLAINTEXT", "RSA-SHA1");
        assert_eq!(parse(&rsa), Err(HeaderError::Absent("oauth_timestamp")));
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_white_space_and_empty_elements_are_allowed() {
        let value = header(r#",, oauth_version="1.0" ,"#).replace("OAuth ", "oauth \t");
        let auth = parse(&value).unwrap();
        assert_eq!(auth.parameters.len(), 6);
        // Non-protocol parameters are signed like the others and may repeat.
        let auth = parse(&header(r#", x="1", x="2""#)).unwrap();
        assert_eq!(auth.parameters.len(), 7);
    }

    fn parameter() -> impl Strategy<Value = (String, String)> {
        ("(oauth_)?[a-z_]{1,8}|[\\PC]{1,4}", "\\PC{0,12}")
    }

    proptest! {
        #[test]
        fn the_parameters_after_the_scheme_parse_as_the_whole_header_does(
            parameters in "[\"=, %\\a-z_0-9]{0,120}",
            long in 8180usize..8200,
        ) {
            prop_assert_eq!(parse_after_scheme(&parameters), parse(&format!("OAuth {parameters}")));
            let valid = header("");
            let padded = format!("{}{}", valid.trim_start_matches("OAuth "), " ".repeat(long.saturating_sub(valid.len())));
            prop_assert_eq!(parse_after_scheme(&padded), parse(&format!("OAuth {padded}")));
        }

        #[test]
        fn no_input_panics(value in "(OAuth |oauth )?[ -~]{0,200}", any in "(OAuth )?\\PC{0,80}") {
            let _ = parse(&value);
            let _ = parse(&any);
        }

        #[test]
        fn no_input_near_a_valid_header_panics(cut in 0usize..200, junk in "[\"=, %\\\\a-z]{0,6}") {
            let valid = header("");
            let mut value = valid.chars().take(cut).collect::<String>();
            value.push_str(&junk);
            value.push_str(&valid.chars().skip(cut).collect::<String>());
            let _ = parse(&value);
        }

        #[test]
        fn what_parses_reserialises_to_the_same_parameters(
            extra in proptest::collection::vec(parameter(), 0..6),
            realm in proptest::option::of("[a-zA-Z ]{0,8}"),
        ) {
            let mut value = header("");
            for (name, v) in &extra {
                value.push_str(", ");
                value.push_str(&crate::encode::encode(name.as_bytes()));
                value.push_str("=\"");
                value.push_str(&crate::encode::encode(v.as_bytes()));
                value.push('"');
            }
            if let Some(realm) = &realm {
                value.push_str(&format!(", realm=\"{realm}\""));
            }
            if let Ok(auth) = parse(&value) {
                let again = parse(&auth.to_header_value()).unwrap();
                prop_assert_eq!(again, auth);
            }
        }
    }
}
