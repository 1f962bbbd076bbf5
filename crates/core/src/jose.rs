//! The JOSE names the verifier and the key parser share: the JWS algorithms this build
//! verifies ([`Algorithm`], RFC 7518 section 3.1), the kind of key each needs ([`KeyKind`]),
//! and an HMAC secret ([`HmacSecret`]). A leaf: it imports nothing of the crate.

use std::fmt;

/// JWS algorithms this build verifies (RFC 7518 section 3.1, RFC 8037 section 3.1, RFC 9864
/// section 2.2), compared case-sensitively with the header's `alg`. `none` is not one of them,
/// nor is `Ed448` (no Ed448 keys are supported).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    ES512,
    /// EdDSA over Ed25519 under its polymorphic RFC 8037 name.
    EdDSA,
    /// EdDSA over Ed25519 under its fully-specified RFC 9864 name; the same signatures as
    /// [`Algorithm::EdDSA`], but a JWK bound to one name does not verify the other.
    Ed25519,
    HS256,
    HS384,
    HS512,
}

impl Algorithm {
    pub const ALL: [Algorithm; 14] = [
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
        Self::ES512,
        Self::EdDSA,
        Self::Ed25519,
        Self::HS256,
        Self::HS384,
        Self::HS512,
    ];

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// The `alg` header value.
    pub fn name(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::ES512 => "ES512",
            Self::EdDSA => "EdDSA",
            Self::Ed25519 => "Ed25519",
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
        }
    }

    /// The only kind of key that can check this algorithm's signatures.
    pub fn key_kind(self) -> KeyKind {
        match self {
            Self::RS256 | Self::RS384 | Self::RS512 => KeyKind::Rsa,
            Self::PS256 | Self::PS384 | Self::PS512 => KeyKind::Rsa,
            Self::ES256 => KeyKind::P256,
            Self::ES384 => KeyKind::P384,
            Self::ES512 => KeyKind::P521,
            Self::EdDSA | Self::Ed25519 => KeyKind::Ed25519,
            Self::HS256 | Self::HS384 | Self::HS512 => KeyKind::Hmac,
        }
    }

    /// For HS*, the shortest secret that may be used: RFC 7518 section 3.2, "a key of the same
    /// size as the hash output ... or larger MUST be used". `None` for the other algorithms.
    pub fn min_hmac_secret_bytes(self) -> Option<usize> {
        match self {
            Self::HS256 => Some(32),
            Self::HS384 => Some(48),
            Self::HS512 => Some(64),
            _ => None,
        }
    }
}

/// The family of key an algorithm needs; a key fits an algorithm only if the kinds are equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    P256,
    P384,
    P521,
    Ed25519,
    Hmac,
}

/// A shared secret for HS256/384/512. Debug output never shows it.
#[derive(Clone)]
pub struct HmacSecret(Vec<u8>);

impl HmacSecret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The secret's length in bytes (not secret: RFC 7518 section 3.2 bounds it).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The secret itself, for the MAC check.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HmacSecret(<{} bytes>)", self.0.len())
    }
}
