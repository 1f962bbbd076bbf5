//! The one HTTP Basic parser of tokengate: the filter (API tokens as `Basic user:token`), the
//! token service's callers and its introspection clients all read `Authorization: Basic` here.
//!
//! - [`decode`] reads RFC 7617's `base64(user-id ":" password)`: standard base64 with its `=`
//!   padding (RFC 4648 section 4, as RFC 7617 says; surrounding blanks ignored), UTF-8 (the `charset="UTF-8"` RFC 7617 section 2.1
//!   defines), split at the first `:` (a user-id cannot contain one, a password may). A user-id
//!   that is empty or holds a control character names nobody and is refused.
//! - [`decode_client`] and [`encode_client`] are OAuth 2.0 client authentication (RFC 6749
//!   section 2.3.1): the client id and secret are `application/x-www-form-urlencoded` *before*
//!   they are put in the Basic pair, so a secret may hold `:`, `%`, `+` or any UTF-8.
//! - [`percent_encode_into`] is the one percent-encoder of the workspace (RFC 3986's unreserved
//!   set, which is RFC 5849 section 3.6's): the filter's callouts and OAuth 1.0a use it too.
//!
//! No dependency beyond `base64`, no allocation beyond the decoded pair, and no panic on any
//! input: it runs in the filter's Wasm VM, where a panic would take every request after it.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

/// The two halves of a Basic credential. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user-id (or, for [`decode_client`], the client id).
    pub user: String,
    /// The password, API token or client secret.
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}:<secret>)", self.user)
    }
}

/// Why a Basic credential could not be read. None of them reveals the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BasicError {
    /// Not the `Basic` scheme, or no credentials after it ([`from_header`] only).
    NotBasic,
    /// The credentials are not base64.
    NotBase64,
    /// The decoded pair is not UTF-8.
    NotUtf8,
    /// No `:` between user-id and password.
    NoColon,
    /// The user-id is empty or holds a control character.
    BadUser,
    /// A client id or secret is not valid `application/x-www-form-urlencoded` UTF-8
    /// ([`decode_client`] only).
    NotFormEncoded,
}

/// Decodes the credentials part of `Basic <credentials>` (RFC 7617 section 2).
pub fn decode(credentials: &str) -> Result<Credentials, BasicError> {
    let bytes = BASE64
        .decode(credentials.trim())
        .map_err(|_| BasicError::NotBase64)?;
    let pair = String::from_utf8(bytes).map_err(|_| BasicError::NotUtf8)?;
    let (user, secret) = pair.split_once(':').ok_or(BasicError::NoColon)?;
    if user.is_empty() || user.chars().any(char::is_control) {
        return Err(BasicError::BadUser);
    }
    Ok(Credentials {
        user: user.to_owned(),
        secret: secret.to_owned(),
    })
}

/// Reads a whole `Authorization` value that must be `Basic <credentials>`; the scheme name is
/// case-insensitive (RFC 9110 section 11.1).
pub fn from_header(value: &str) -> Result<Credentials, BasicError> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').ok_or(BasicError::NotBasic)?;
    if !scheme.eq_ignore_ascii_case("basic") || rest.trim().is_empty() {
        return Err(BasicError::NotBasic);
    }
    decode(rest)
}

/// `Basic base64(user:secret)`, as RFC 7617 writes it (no form-encoding: API tokens and
/// passwords go as they are).
pub fn encode(user: &str, secret: &str) -> String {
    format!("Basic {}", BASE64.encode(format!("{user}:{secret}")))
}

/// Decodes OAuth client credentials (RFC 6749 section 2.3.1): Basic, then each half
/// form-decoded (`+` is a space, `%XX` a byte, and the result UTF-8).
pub fn decode_client(credentials: &str) -> Result<Credentials, BasicError> {
    let raw = decode(credentials)?;
    let user = form_decode(&raw.user).ok_or(BasicError::NotFormEncoded)?;
    let secret = form_decode(&raw.secret).ok_or(BasicError::NotFormEncoded)?;
    if user.is_empty() || user.chars().any(char::is_control) {
        return Err(BasicError::BadUser);
    }
    Ok(Credentials { user, secret })
}

/// [`decode_client`] of a whole `Authorization` value.
pub fn client_from_header(value: &str) -> Result<Credentials, BasicError> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').ok_or(BasicError::NotBasic)?;
    if !scheme.eq_ignore_ascii_case("basic") || rest.trim().is_empty() {
        return Err(BasicError::NotBasic);
    }
    decode_client(rest)
}

/// `Basic base64(form(id):form(secret))`: OAuth client authentication (RFC 6749 section 2.3.1).
pub fn encode_client(client_id: &str, client_secret: &str) -> String {
    encode(&form_encode(client_id), &form_encode(client_secret))
}

/// `application/x-www-form-urlencoded` encoding (RFC 6749 Appendix B) that keeps only RFC 3986's
/// unreserved characters (`A-Z a-z 0-9 - . _ ~`) and writes every other byte as `%XX`; any form
/// decoder reads it back unchanged.
pub fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    percent_encode_into(value.as_bytes(), &mut out);
    out
}

/// The one percent-encoder of tokengate: appends `input` to `out` with RFC 3986's unreserved
/// characters (`A-Z a-z 0-9 - . _ ~`, section 2.3) as they are and every other byte as `%XX`
/// in upper-case hex (a space is `%20`, never `+`). RFC 5849 section 3.6 (OAuth 1.0a) defines
/// the same set, so the OAuth signature base string, the filter's callout paths and forms and
/// the client credentials above all encode with it.
pub fn percent_encode_into(input: &[u8], out: &mut String) {
    let unreserved = |byte: &u8| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~');
    out.reserve(input.len());
    let mut rest = input;
    // Runs of unreserved characters are copied whole (an OAuth base string encodes ~1 KiB twice
    // per signed request), each other byte escaped.
    while !rest.is_empty() {
        let run = rest
            .iter()
            .position(|byte| !unreserved(byte))
            .unwrap_or(rest.len());
        let (plain, tail) = rest.split_at(run);
        // Unreserved characters are ASCII: always UTF-8.
        out.push_str(std::str::from_utf8(plain).unwrap_or_default());
        let Some((&byte, after)) = tail.split_first() else {
            break;
        };
        out.push('%');
        out.push(hex_digit(byte >> 4));
        out.push(hex_digit(byte & 0x0f));
        rest = after;
    }
}

/// `application/x-www-form-urlencoded` decoding of one name or value: `+` is a space, `%XX` a
/// byte; `None` for a `%` without two hex digits or bytes that are not UTF-8 (refused rather
/// than guessed at: a secret that decodes two ways would compare two ways).
pub fn form_decode(value: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(value.len());
    let mut input = value.bytes();
    while let Some(byte) = input.next() {
        match byte {
            b'+' => bytes.push(b' '),
            b'%' => {
                let high = hex_value(input.next()?)?;
                let low = hex_value(input.next()?)?;
                bytes.push(high << 4 | low);
            }
            other => bytes.push(other),
        }
    }
    String::from_utf8(bytes).ok()
}

fn hex_digit(nibble: u8) -> char {
    char::from(match nibble {
        0..=9 => b'0' + nibble,
        _ => b'A' + (nibble & 0x0f).saturating_sub(10),
    })
}

/// The value of one hexadecimal digit (`0-9`, `a-f`, `A-F`, nothing else: no sign, as
/// `u8::from_str_radix` would take); the filter's query decoding uses it too.
pub fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &[u8]) -> String {
        BASE64.encode(text)
    }

    #[test]
    fn a_pair_is_split_at_the_first_colon_so_secrets_may_hold_colons() {
        assert_eq!(
            decode(&b64(b"fred:pa:ss")),
            Ok(Credentials {
                user: "fred".to_owned(),
                secret: "pa:ss".to_owned()
            })
        );
        assert_eq!(decode(&b64(b"fred:")).map(|c| c.secret), Ok(String::new()));
    }

    #[test]
    fn padding_is_required_and_blanks_around_the_credentials_are_ignored() {
        let padded = b64(b"fred:xy");
        assert!(padded.ends_with('='));
        assert_eq!(
            decode(&format!("  {padded} ")).map(|c| c.user),
            Ok("fred".to_owned())
        );
        let bare = padded.trim_end_matches('=');
        assert_eq!(decode(bare), Err(BasicError::NotBase64));
    }

    #[test]
    fn what_is_not_a_pair_is_refused_with_its_reason() {
        let cases: [(String, BasicError); 6] = [
            ("!!!".to_owned(), BasicError::NotBase64),
            (String::new(), BasicError::NoColon),
            (b64(b"fred"), BasicError::NoColon),
            (b64(&[0xff, b':', b'x']), BasicError::NotUtf8),
            (b64(b":secret"), BasicError::BadUser),
            (b64(b"fr\x07ed:secret"), BasicError::BadUser),
        ];
        for (input, why) in cases {
            assert_eq!(decode(&input), Err(why), "{input}");
        }
    }

    #[test]
    fn the_scheme_name_is_case_insensitive_and_other_schemes_are_not_basic() {
        let value = format!("bAsIc {}", b64(b"fred:x"));
        assert_eq!(from_header(&value).map(|c| c.user), Ok("fred".to_owned()));
        for value in ["Basic", "Basic   ", "Bearer abc", "Digest x", ""] {
            assert_eq!(from_header(value), Err(BasicError::NotBasic), "{value}");
        }
    }

    #[test]
    fn client_credentials_are_form_decoded_after_base64() {
        // RFC 6749 section 2.3.1: id and secret are form-encoded inside the Basic pair.
        let header = encode_client("my client", "s3cr%t:+/é&=");
        assert_eq!(
            client_from_header(&header),
            Ok(Credentials {
                user: "my client".to_owned(),
                secret: "s3cr%t:+/é&=".to_owned()
            })
        );
        // A plus is a space, as every form decoder reads it.
        assert_eq!(
            decode_client(&b64(b"id:a+b%2Bc")).map(|c| c.secret),
            Ok("a b+c".to_owned())
        );
        for bad in [&b"id:%zz"[..], b"id:%4", b"id:%FF", b"%00:x"] {
            assert!(decode_client(&b64(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn form_encoding_keeps_only_unreserved_characters() {
        assert_eq!(form_encode("Az09-._~"), "Az09-._~");
        assert_eq!(form_encode("a&b=c d/é:%+"), "a%26b%3Dc%20d%2F%C3%A9%3A%25%2B");
        assert_eq!(form_decode("a%26b%3dc%20d"), Some("a&b=c d".to_owned()));
    }

    #[test]
    fn every_byte_outside_the_unreserved_set_is_percent_encoded_in_upper_case_hex() {
        for byte in 0..=u8::MAX {
            let expected = match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(byte).to_string()
                }
                other => format!("%{other:02X}"),
            };
            let mut out = String::from("x");
            percent_encode_into(&[byte], &mut out);
            assert_eq!(out, format!("x{expected}"), "{byte}");
        }
    }

    #[test]
    fn encode_writes_what_decode_reads() {
        assert_eq!(encode("fred", "x:y"), format!("Basic {}", b64(b"fred:x:y")));
        assert_eq!(
            from_header(&encode("fred", "x:y")).map(|c| c.secret),
            Ok("x:y".to_owned())
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let text = format!("{:?}", decode(&b64(b"fred:hunter2")));
        assert!(text.contains("fred") && !text.contains("hunter2"), "{text}");
    }
}
