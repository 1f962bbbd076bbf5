//! OAuth 1.0a token values (issue 13): request tokens, access tokens, token secrets, verifiers,
//! session handles and the authorize form's CSRF value.
//!
//! Each is 32 random bytes from the operating system's CSPRNG (as API tokens' secrets, see
//! [`crate::tokens`]), written as unpadded base64url: 43 URL-safe characters that travel
//! unchanged in an `OAuth` header, a form body or a query. The store keeps only SHA-256 of a
//! value ([`hash`]): with 256 random bits a fast hash is enough (the reasoning of
//! [`TokenHash`]), and someone who reads the database still cannot use a token. Where a
//! presented value is checked against a stored hash, [`hashes_equal`] compares in constant time.

use crate::tokens::{RandomUnavailable, TokenHash};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use std::fmt;

const VALUE_BYTES: usize = 32;
/// The length of every value: 32 bytes in unpadded base64.
pub const VALUE_CHARS: usize = 43;

/// A freshly made value and its hash. `Debug` does not print the value.
pub struct FreshValue {
    /// The value, for the one answer that hands it out.
    pub plain: String,
    /// SHA-256 of `plain`: what the store keeps.
    pub hash: [u8; 32],
}

impl fmt::Debug for FreshValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FreshValue(..)")
    }
}

/// Makes a fresh value from the OS random source (`getrandom`).
pub fn generate() -> Result<FreshValue, RandomUnavailable> {
    let mut bytes = [0u8; VALUE_BYTES];
    getrandom::getrandom(&mut bytes).map_err(|_| RandomUnavailable)?;
    Ok(from_bytes(&bytes))
}

/// The value for given random bytes (tests use fixed ones).
fn from_bytes(bytes: &[u8; VALUE_BYTES]) -> FreshValue {
    let plain = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&plain);
    FreshValue { plain, hash }
}

/// SHA-256 of a value as presented (any text: a value we never made simply finds no row).
pub fn hash(value: &str) -> [u8; 32] {
    TokenHash::of(value).0
}

/// Constant-time equality of two hashes: the time taken does not depend on where they differ.
pub fn hashes_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    TokenHash(*a).ct_eq(&TokenHash(*b))
}

/// Whether `text` could be a value of ours: 43 characters of canonical unpadded base64url.
/// A cheap check before a store lookup; never a substitute for finding the hash.
pub fn is_well_formed(text: &str) -> bool {
    text.len() == VALUE_CHARS
        && URL_SAFE_NO_PAD
            .decode(text)
            .is_ok_and(|bytes| bytes.len() == VALUE_BYTES && URL_SAFE_NO_PAD.encode(&bytes) == text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn a_fresh_value_is_43_url_safe_characters_and_well_formed() {
        let value = generate().unwrap();
        assert_eq!(value.plain.len(), VALUE_CHARS);
        assert!(value
            .plain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
        assert!(is_well_formed(&value.plain));
    }

    #[test]
    fn a_fresh_value_comes_with_the_sha256_of_its_text() {
        let value = generate().unwrap();
        let expected: [u8; 32] = Sha256::digest(value.plain.as_bytes()).into();
        assert_eq!(value.hash, expected);
        assert_eq!(hash(&value.plain), expected);
    }

    #[test]
    fn two_fresh_values_differ() {
        let (a, b) = (generate().unwrap(), generate().unwrap());
        assert_ne!(a.plain, b.plain);
        assert!(!hashes_equal(&a.hash, &b.hash));
    }

    #[test]
    fn fixed_bytes_give_the_known_base64url() {
        // 32 bytes of 0xff: 42 `_` and a last character holding the 4 remaining bits (111100: `8`).
        let value = from_bytes(&[0xff; 32]);
        assert_eq!(value.plain, format!("{}8", "_".repeat(42)));
        assert_eq!(from_bytes(&[0; 32]).plain, "A".repeat(43));
    }

    #[test]
    fn hashes_compare_equal_only_when_every_byte_is() {
        let a = hash("one");
        let mut b = a;
        assert!(hashes_equal(&a, &b));
        for at in [0, 15, 31] {
            b = a;
            b[at] ^= 1;
            assert!(!hashes_equal(&a, &b), "differs at byte {at}");
        }
    }

    #[test]
    fn malformed_values_are_not_well_formed() {
        let good = from_bytes(&[0; 32]).plain;
        for case in [
            String::new(),
            good[..42].to_owned(),
            format!("{good}A"),
            format!("{}=", &good[..42]),
            format!("{}+", &good[..42]),
            // 2 spare bits in the last character: only 0s are canonical.
            format!("{}B", &good[..42]),
            "tgat_0123".to_owned(),
        ] {
            assert!(!is_well_formed(&case), "{case}");
        }
    }

    #[test]
    fn debug_never_shows_the_value() {
        let value = generate().unwrap();
        assert!(!format!("{value:?}").contains(&value.plain));
    }
}
