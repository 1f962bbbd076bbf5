//! API tokens: generation, parsing and hashing.
//!
//! A token reads `tgat_<lookup>_<secret>`:
//!
//! - `tgat_` says what it is (so it can be told from a JWT or a password at a glance, and found
//!   by secret scanners);
//! - `<lookup>` is 24 lower-case hex digits (96 random bits): a public handle the store finds
//!   the row by, so checking a token is one indexed lookup and one hash comparison;
//! - `<secret>` is 43 characters of unpadded base64url: 256 random bits from the OS.
//!
//! Every character is URL-safe and none is `:`, so a token travels unchanged in a Basic
//! `user:token` pair, a `Bearer` header or a form body. The store keeps only SHA-256 of the
//! whole token (see [`TokenHash`]); the token itself is shown once, in the create response.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// Every token starts with this.
pub const PREFIX: &str = "tgat_";
const LOOKUP_BYTES: usize = 12;
const LOOKUP_CHARS: usize = LOOKUP_BYTES * 2;
const SECRET_BYTES: usize = 32;
const SECRET_CHARS: usize = 43;

/// A newly generated token. `Debug` does not print it.
pub struct NewToken {
    /// The whole token, for the create response only.
    pub plain: String,
    pub lookup: String,
    pub hash: TokenHash,
}

impl fmt::Debug for NewToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewToken")
            .field("lookup", &self.lookup)
            .finish_non_exhaustive()
    }
}

/// The OS random source failed; no token can be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomUnavailable;

/// Generates a token from the operating system's CSPRNG (`getrandom`).
pub fn generate() -> Result<NewToken, RandomUnavailable> {
    let mut lookup = [0u8; LOOKUP_BYTES];
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::getrandom(&mut lookup).map_err(|_| RandomUnavailable)?;
    getrandom::getrandom(&mut secret).map_err(|_| RandomUnavailable)?;
    Ok(from_parts(&lookup, &secret))
}

/// Builds the token for given random bytes (tests use fixed ones).
fn from_parts(lookup: &[u8; LOOKUP_BYTES], secret: &[u8; SECRET_BYTES]) -> NewToken {
    let lookup: String = lookup.iter().map(|b| format!("{b:02x}")).collect();
    let plain = format!("{PREFIX}{lookup}_{}", URL_SAFE_NO_PAD.encode(secret));
    let hash = TokenHash::of(&plain);
    NewToken { plain, lookup, hash }
}

/// A token as presented by a client, parsed but not checked. `Debug` does not print it.
pub struct PresentedToken<'a> {
    plain: &'a str,
    lookup: &'a str,
}

impl fmt::Debug for PresentedToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresentedToken")
            .field("lookup", &self.lookup)
            .finish_non_exhaustive()
    }
}

impl<'a> PresentedToken<'a> {
    /// Parses `text` strictly: the prefix, 24 lower-case hex digits, `_`, and 43 characters
    /// of canonical unpadded base64url. Anything else is not a token of ours.
    pub fn parse(text: &'a str) -> Option<Self> {
        let rest = text.strip_prefix(PREFIX)?;
        let (lookup, secret) = rest.split_once('_')?;
        let lookup_ok = lookup.len() == LOOKUP_CHARS
            && lookup
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let secret_ok = secret.len() == SECRET_CHARS
            && URL_SAFE_NO_PAD
                .decode(secret)
                .is_ok_and(|bytes| bytes.len() == SECRET_BYTES && URL_SAFE_NO_PAD.encode(&bytes) == secret);
        (lookup_ok && secret_ok).then_some(Self { plain: text, lookup })
    }

    /// The public lookup handle.
    pub fn lookup(&self) -> &'a str {
        self.lookup
    }

    /// Whether this token hashes to `stored`, compared in constant time.
    pub fn matches(&self, stored: &TokenHash) -> bool {
        TokenHash::of(self.plain).ct_eq(stored)
    }
}

/// SHA-256 of a whole token: what the store keeps instead of the token.
///
/// A plain, fast hash is enough here, unlike for passwords: the secret part has 256 bits from
/// the OS CSPRNG, so there is no dictionary to try and a brute-force search of 2^256 values is
/// out of reach however fast each guess is. A slow hash (argon2, bcrypt) protects guessable
/// secrets; for these it would only cost CPU on every check, which is the hot path of the
/// filter's introspection calls. Someone who reads the database still cannot use a token.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

impl TokenHash {
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Reads a stored hash; `None` unless exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// Constant-time equality: the time taken does not depend on where the hashes differ.
    pub fn ct_eq(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// Compares two secrets (such as the introspection client secret) in constant time, without
/// leaking their lengths either: both are hashed to 32 bytes first.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    TokenHash::of(a).ct_eq(&TokenHash::of(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_parses_and_matches_its_hash() {
        let token = generate().unwrap();
        assert_eq!(token.plain.len(), PREFIX.len() + LOOKUP_CHARS + 1 + SECRET_CHARS);
        let presented = PresentedToken::parse(&token.plain).unwrap();
        assert_eq!(presented.lookup(), token.lookup);
        assert!(presented.matches(&token.hash));
    }

    #[test]
    fn two_generated_tokens_differ() {
        let (a, b) = (generate().unwrap(), generate().unwrap());
        assert_ne!(a.plain, b.plain);
        assert_ne!(a.lookup, b.lookup);
    }

    #[test]
    fn tokens_are_url_safe_and_have_no_colon() {
        let token = generate().unwrap();
        assert!(token
            .plain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
    }

    #[test]
    fn a_token_with_one_changed_character_does_not_match() {
        let token = from_parts(&[7; 12], &[9; 32]);
        // A character in the middle of the secret, so the base64 stays canonical.
        let at = token.plain.len() - 10;
        let old = &token.plain[at..=at];
        let changed = format!(
            "{}{}{}",
            &token.plain[..at],
            if old == "Z" { "Y" } else { "Z" },
            &token.plain[at + 1..]
        );
        let presented = PresentedToken::parse(&changed).unwrap();
        assert!(!presented.matches(&token.hash));
    }

    #[test]
    fn malformed_tokens_are_not_parsed() {
        let good = from_parts(&[1; 12], &[2; 32]).plain;
        let cases = [
            String::new(),
            "tgat_".to_owned(),
            good.replacen("tgat_", "tgax_", 1),
            good.to_uppercase(),
            format!("{good}A"),
            good[..good.len() - 1].to_owned(),
            good.replacen('_', ":", 2),
            "password".to_owned(),
            "eyJhbGciOiJIUzI1NiJ9.e30.sig".to_owned(),
        ];
        for case in cases {
            assert!(PresentedToken::parse(&case).is_none(), "{case}");
        }
    }

    #[test]
    fn non_canonical_base64_is_not_parsed() {
        // 32 bytes in 43 characters leave 2 spare bits in the last one; only 0s are canonical.
        let good = from_parts(&[1; 12], &[0; 32]).plain;
        assert!(good.ends_with('A'));
        let odd = format!("{}B", &good[..good.len() - 1]);
        assert!(PresentedToken::parse(&odd).is_none());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let token = from_parts(&[1; 12], &[2; 32]);
        let secret = token.plain.rsplit('_').next().unwrap().to_owned();
        assert!(!format!("{token:?}").contains(&secret));
        let presented = PresentedToken::parse(&token.plain).unwrap();
        assert!(!format!("{presented:?}").contains(&secret));
    }

    #[test]
    fn secrets_compare_by_content_only() {
        assert!(secrets_equal("s3cret", "s3cret"));
        assert!(!secrets_equal("s3cret", "s3cre"));
        assert!(!secrets_equal("", "x"));
    }
}
