//! Percent-encoding as RFC 5849 section 3.6 defines it (every octet but the unreserved
//! `ALPHA DIGIT - . _ ~` as `%XX`, upper-case hex), and the two decodings a signed request
//! needs: the strict one of the `Authorization` header's values, and the
//! `application/x-www-form-urlencoded` one of the query and a form body (section 3.4.1.3.1).
//! The encoder and the hex digits are tokengate-basic-auth's, the one copy of each.

use basic_auth::hex_value as hex;

/// Appends `input` encoded per RFC 5849 section 3.6 to `out`: RFC 3986's unreserved set,
/// the same rule as the filter's callouts and OAuth 2.0 client credentials, so one function.
pub use basic_auth::percent_encode_into as encode_into;

/// `input` encoded per RFC 5849 section 3.6.
pub fn encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len());
    encode_into(input, &mut out);
    out
}

/// A header value decoded: every `%` must start two hex digits (`None` otherwise), and
/// the octets must be UTF-8. Other characters stand for themselves (clients that leave
/// `/` or `=` unencoded still sign what they send).
pub fn decode_strict(input: &str) -> Option<String> {
    let mut rest = input.as_bytes();
    let Some(first) = rest.iter().position(|&b| b == b'%') else {
        // Nothing escaped (most names and values): already UTF-8.
        return Some(input.to_owned());
    };
    let mut out = Vec::with_capacity(input.len());
    let mut at = first;
    loop {
        let (plain, tail) = rest.split_at(at);
        out.extend_from_slice(plain);
        let [_, high, low, after @ ..] = tail else {
            return None;
        };
        out.push(hex(*high)? << 4 | hex(*low)?);
        rest = after;
        match rest.iter().position(|&b| b == b'%') {
            Some(next) => at = next,
            None => break,
        }
    }
    out.extend_from_slice(rest);
    String::from_utf8(out).ok()
}

/// A form name or value decoded as browsers and Python's `parse_qsl` do (WHATWG URL,
/// `application/x-www-form-urlencoded` parsing): `+` is a space, a `%` that does not
/// start two hex digits stands for itself. Octets, since a query need not be UTF-8.
pub fn decode_form(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut rest = input;
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        match byte {
            b'+' => out.push(b' '),
            b'%' => match tail {
                [high, low, after @ ..] => match (hex(*high), hex(*low)) {
                    (Some(high), Some(low)) => {
                        out.push(high << 4 | low);
                        rest = after;
                    }
                    _ => out.push(b'%'),
                },
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
    }
    out
}

/// The name/value pairs of a query or a form body, decoded, in order: split on `&`, empty
/// pieces skipped, a piece without `=` is a name with an empty value. Each name and value is
/// then read as UTF-8 with U+FFFD for what is not (WHATWG's "UTF-8 decode without BOM",
/// oauthlib's and Tomcat's reading), so `%E9` is signed as the client's library signed it.
pub fn form_pairs(input: &[u8]) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    let decode = |raw: &[u8]| utf8_lossy(decode_form(raw));
    input
        .split(|&b| b == b'&')
        .filter(|piece| !piece.is_empty())
        .map(move |piece| match piece.iter().position(|&b| b == b'=') {
            Some(at) => {
                let (name, value) = piece.split_at(at);
                (decode(name), decode(value.get(1..).unwrap_or_default()))
            }
            None => (decode(piece), Vec::new()),
        })
}

/// `bytes` unchanged when they are UTF-8, else with U+FFFD for each invalid sequence.
fn utf8_lossy(bytes: Vec<u8>) -> Vec<u8> {
    match String::from_utf8(bytes) {
        Ok(text) => text.into_bytes(),
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encoding_is_the_one_of_rfc_5849_section_3_6() {
        let table: [(&[u8], &str); 7] = [
            (b"abcABC123", "abcABC123"),
            (b"-._~", "-._~"),
            (b"%", "%25"),
            (b"+", "%2B"),
            (b"&=*", "%26%3D%2A"),
            (b" \n", "%20%0A"),
            ("\u{2713} caf\u{e9}".as_bytes(), "%E2%9C%93%20caf%C3%A9"),
        ];
        for (input, encoded) in table {
            assert_eq!(encode(input), encoded, "{input:?}");
        }
        // Upper-case hex, every octet outside the unreserved set.
        assert_eq!(encode(&[0x00, 0x7f, 0xff]), "%00%7F%FF");
    }

    #[test]
    fn header_values_with_a_broken_escape_or_not_utf8_are_refused() {
        assert_eq!(decode_strict("a%20b%2Bc").as_deref(), Some("a b+c"));
        assert_eq!(decode_strict("a/b=").as_deref(), Some("a/b="));
        assert_eq!(decode_strict("a+b").as_deref(), Some("a+b"));
        for broken in ["%", "%2", "%zz", "a%g0", "%FF"] {
            assert_eq!(decode_strict(broken), None, "{broken}");
        }
    }

    #[test]
    fn forms_are_decoded_as_python_and_browsers_do() {
        assert_eq!(decode_form(b"a+b%20c"), b"a b c");
        assert_eq!(decode_form(b"100%"), b"100%");
        assert_eq!(decode_form(b"%zz%4"), b"%zz%4");
        assert_eq!(decode_form(b"%e2%9C%93"), "\u{2713}".as_bytes());
        let pairs: Vec<_> = form_pairs(b"a=1&&b&c=&=d&e=x=y").collect();
        let expected: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), vec![]),
            (b"c".to_vec(), vec![]),
            (vec![], b"d".to_vec()),
            (b"e".to_vec(), b"x=y".to_vec()),
        ];
        assert_eq!(pairs, expected);
    }

    /// This crate's own encoder before it became tokengate-basic-auth's: the oracle that
    /// shows the shared one encodes every input the same way.
    fn decode_strict_as_before(input: &str) -> Option<String> {
        let mut out = Vec::with_capacity(input.len());
        let mut bytes = input.bytes();
        while let Some(byte) = bytes.next() {
            if byte == b'%' {
                let high = hex(bytes.next()?)?;
                let low = hex(bytes.next()?)?;
                out.push(high << 4 | low);
            } else {
                out.push(byte);
            }
        }
        String::from_utf8(out).ok()
    }

    fn encode_as_before(input: &[u8]) -> String {
        let mut out = String::new();
        for &byte in input {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(byte));
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
        out
    }

    proptest! {
        #[test]
        fn the_shared_encoder_encodes_as_this_crate_did(input in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(encode(&input), encode_as_before(&input));
        }
    }

    proptest! {
        #[test]
        fn the_strict_decoder_decodes_as_it_did(input in "[a-zA-Z0-9%+=/ ]{0,24}|(%[0-9A-Fa-f]{2}|[a-z%])*") {
            prop_assert_eq!(decode_strict(&input), decode_strict_as_before(&input));
        }

        #[test]
        fn what_is_encoded_decodes_back(input in proptest::collection::vec(any::<u8>(), 0..64)) {
            let encoded = encode(&input);
            prop_assert_eq!(decode_form(encoded.as_bytes()), input.clone());
            if let Ok(text) = String::from_utf8(input) {
                prop_assert_eq!(decode_strict(&encoded), Some(text));
            }
        }
    }
}
