//! Verification keys from configuration: JWK sets ([RFC 7517]), PEM public keys and HMAC secrets.
//!
//! [RFC 7517]: https://www.rfc-editor.org/rfc/rfc7517
//!
//! A [`KeySet`] is the only place a token's signature key can come from: nothing in a token's
//! header (`jwk`, `jku`, `x5u`, `x5c`) ever adds to it.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use rsa::traits::PublicKeyParts as _;
use rsa::{BigUint, RsaPublicKey};
use serde::Deserialize;
use serde_json::Value;
use spki::der::Decode as _;
use spki::{ObjectIdentifier, SubjectPublicKeyInfoRef};
use std::fmt;

use crate::hostcrypto::{ec_spki_der, rsa_spki_der, EC_PUBLIC_KEY, RSA_ENCRYPTION};
pub use crate::jose::KeyKind;
use crate::jose::{Algorithm, HmacSecret};

/// RFC 7518 section 3.3: "A key of size 2048 bits or larger MUST be used".
const MIN_RSA_BITS: usize = 2048;
/// Larger moduli only cost verification time; nobody issues them.
const MAX_RSA_BITS: usize = 8192;

pub(crate) const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
pub(crate) const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
pub(crate) const SECP521R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// RFC 7517 asks for unpadded base64url; padded values are common enough in the wild to accept.
const JWK_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why keys could not be loaded; for configuration error messages (never contains key bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The JWKS is not JSON, or not an object with a `keys` array.
    MalformedJwks,
    /// The set would be empty: no key given, or every key was skipped (see the other variants).
    NoUsableKey,
    /// A JWK's `kty` is not `RSA`, `EC`, `OKP` or (when allowed) `oct`.
    UnsupportedKeyType(String),
    /// A JWK's `crv` is not P-256, P-384, P-521 (for `EC`) or Ed25519 (for `OKP`).
    UnsupportedCurve(String),
    /// A JWK's `use` is not `sig`.
    NotForSignatures,
    /// A `kty: oct` JWK in a set that may not carry HMAC secrets (a remote JWKS never may).
    SymmetricKeyNotAllowed,
    /// A JWK lacks a member its key type needs, or it is not a string.
    MissingMember(&'static str),
    /// A JWK member is not base64url, has the wrong length, or does not make a valid key.
    BadMember(&'static str),
    /// An RSA modulus shorter than 2048 or longer than 8192 bits.
    RsaKeySize(usize),
    /// A PEM block is unterminated or its body is not base64, or the text holds no block.
    MalformedPem,
    /// A PEM block is not `PUBLIC KEY` or `RSA PUBLIC KEY`.
    UnsupportedPemLabel(String),
    /// A public key's DER structure does not parse.
    MalformedDer,
    /// An SPKI public key of an algorithm or curve other than RSA, P-256/384/521 or Ed25519.
    UnsupportedSpkiAlgorithm,
    /// An HMAC secret of zero bytes.
    EmptySecret,
    /// A JWK's `alg` is not an algorithm this build verifies with (`Ed448`, `RSA-OAEP`,
    /// `A128KW`, a typo): the key is for something else, or for nothing here.
    UnsupportedAlgorithm(String),
    /// A JWK's `alg` is a signature algorithm of another key type (`ES256` on an RSA key,
    /// `HS256` on an EC key, `RS256` on an `oct` key): never a key for that algorithm.
    AlgorithmNotForKeyType(Algorithm),
    /// An `oct` JWK without `alg`: an HMAC secret is bound to exactly one of HS256, HS384,
    /// HS512, so that one secret never serves two hash functions.
    HmacAlgorithmMissing,
    /// An HMAC secret shorter than its algorithm's hash (RFC 7518 section 3.2).
    HmacSecretTooShort { algorithm: Algorithm, bytes: usize },
    /// The problem of one key of a local JWKS, which may not be skipped: an `oct` key is the
    /// operator's own secret, so a broken one is a configuration error, not noise.
    InKey {
        index: usize,
        kid: Option<String>,
        problem: Box<KeyError>,
    },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MalformedJwks => f.write_str("not a JWKS: expected JSON {\"keys\": [...]}"),
            Self::NoUsableKey => f.write_str("no usable verification key"),
            Self::UnsupportedKeyType(kty) => write!(f, "unsupported key type `{}`", shown(kty)),
            Self::UnsupportedCurve(crv) => write!(f, "unsupported curve `{}`", shown(crv)),
            Self::NotForSignatures => f.write_str("key `use` is not `sig`"),
            Self::SymmetricKeyNotAllowed => f.write_str("symmetric (oct) keys are not allowed here"),
            Self::MissingMember(name) => write!(f, "key member `{name}` is missing or not a string"),
            Self::BadMember(name) => write!(f, "key member `{name}` is invalid"),
            Self::RsaKeySize(bits) => write!(f, "RSA key of {bits} bits (2048 to 8192 allowed)"),
            Self::MalformedPem => f.write_str("malformed PEM"),
            Self::UnsupportedPemLabel(label) => write!(f, "unsupported PEM block `{}`", shown(label)),
            Self::MalformedDer => f.write_str("malformed public key DER"),
            Self::UnsupportedSpkiAlgorithm => f.write_str("unsupported public key algorithm"),
            Self::EmptySecret => f.write_str("empty HMAC secret"),
            Self::UnsupportedAlgorithm(alg) if alg == "Ed448" => {
                f.write_str("`alg` `Ed448` is not supported (Ed25519 is, as `Ed25519` or `EdDSA`)")
            }
            Self::UnsupportedAlgorithm(alg) => {
                write!(f, "`alg` `{}` is not a supported signature algorithm", shown(alg))
            }
            Self::AlgorithmNotForKeyType(alg) => {
                write!(f, "`alg` `{}` cannot be used with this key type", alg.name())
            }
            Self::HmacAlgorithmMissing => {
                f.write_str("an `oct` key must name its `alg`: HS256, HS384 or HS512")
            }
            Self::HmacSecretTooShort { algorithm, bytes } => write!(
                f,
                "`k` has {bytes} bytes; {} needs at least {} (RFC 7518 section 3.2)",
                algorithm.name(),
                algorithm.min_hmac_secret_bytes().unwrap_or_default()
            ),
            Self::InKey { index, kid, problem } => match kid {
                Some(kid) => write!(f, "key {index} (`kid` `{}`): {problem}", shown(kid)),
                None => write!(f, "key {index}: {problem}"),
            },
        }
    }
}

impl std::error::Error for KeyError {}

/// A member value of a (possibly remote, untrusted) key as a log can show it: control
/// characters as `?`, at most 40 characters.
fn shown(text: &str) -> String {
    let mut chars = text.chars();
    let mut shown: String = chars
        .by_ref()
        .take(40)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if chars.next().is_some() {
        shown.push_str("...");
    }
    shown
}

/// Whether `kty: oct` JWKs may become HMAC secrets. Only a JWKS from local configuration may
/// allow it: a remote JWKS that could add an HMAC secret could let anyone mint tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymmetricKeys {
    Refuse,
    Allow,
}

/// The key itself. An RSA or EC public key is never an HMAC secret: only [`KeyMaterial::Hmac`]
/// can check an HS* token.
#[derive(Clone)]
#[non_exhaustive]
pub enum KeyMaterial {
    Rsa(RsaKey),
    P256(EcKey<p256::ecdsa::VerifyingKey>),
    P384(EcKey<p384::ecdsa::VerifyingKey>),
    P521(EcKey<p521::ecdsa::VerifyingKey>),
    Ed25519(ed25519_compact::PublicKey),
    Hmac(HmacSecret),
}

/// An RSA public key, and the same key as SubjectPublicKeyInfo DER for a host that checks
/// signatures ([`crate::hostcrypto`]).
#[derive(Clone)]
pub struct RsaKey {
    pub public: RsaPublicKey,
    pub spki_der: Vec<u8>,
}

impl RsaKey {
    fn new(public: RsaPublicKey) -> Self {
        let spki_der = rsa_spki_der(&public.n().to_bytes_be(), &public.e().to_bytes_be());
        Self { public, spki_der }
    }
}

/// An EC public key, and the same key as SubjectPublicKeyInfo DER for a host that checks
/// signatures ([`crate::hostcrypto`]).
#[derive(Clone)]
pub struct EcKey<K> {
    pub public: K,
    pub spki_der: Vec<u8>,
}

impl<K> EcKey<K> {
    /// `point` is `public` uncompressed (SEC 1 section 2.3.3), the form the host reads.
    fn new(public: K, curve: ObjectIdentifier, point: &[u8]) -> Self {
        let spki_der = ec_spki_der(curve, point);
        Self { public, spki_der }
    }
}

impl KeyMaterial {
    pub fn kind(&self) -> KeyKind {
        match self {
            Self::Rsa(_) => KeyKind::Rsa,
            Self::P256(_) => KeyKind::P256,
            Self::P384(_) => KeyKind::P384,
            Self::P521(_) => KeyKind::P521,
            Self::Ed25519(_) => KeyKind::Ed25519,
            Self::Hmac(_) => KeyKind::Hmac,
        }
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rsa(key) => write!(f, "Rsa(<{} bits>)", key.public.n().bits()),
            Self::Hmac(secret) => write!(f, "{secret:?}"),
            other => write!(f, "{:?}", other.kind()),
        }
    }
}

/// One configured key, with the JWK's `kid` and `alg` when it had them. A key's `alg` is
/// always one this build verifies and always of the key's own type (checked when it is built).
#[derive(Debug, Clone)]
pub struct VerificationKey {
    kid: Option<String>,
    alg: Option<Algorithm>,
    material: KeyMaterial,
}

impl VerificationKey {
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
    /// The JWK's own `alg`: when present, the only algorithm this key may verify. Always
    /// present on an HMAC secret from a JWKS.
    pub fn alg(&self) -> Option<Algorithm> {
        self.alg
    }
    pub fn material(&self) -> &KeyMaterial {
        &self.material
    }

    /// Whether this key may check `algorithm`'s signatures: the key type is the algorithm's
    /// (an RSA, EC or OKP key is never an HMAC secret, an HMAC secret never checks RS*, PS*,
    /// ES*, EdDSA or Ed25519), its own `alg` (if any) is this one, and an HMAC secret is at
    /// least as long as the hash (RFC 7518 section 3.2).
    pub fn fits(&self, algorithm: Algorithm) -> bool {
        let long_enough = match &self.material {
            KeyMaterial::Hmac(secret) => algorithm
                .min_hmac_secret_bytes()
                .is_some_and(|min| secret.len() >= min),
            _ => true,
        };
        self.alg.is_none_or(|alg| alg == algorithm)
            && self.material.kind() == algorithm.key_kind()
            && long_enough
    }
}

/// The keys a provider verifies with, in configuration order. Never empty when built by a
/// constructor.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<VerificationKey>,
}

impl KeySet {
    /// A JWKS (RFC 7517 section 5) that may not carry HMAC secrets; see [`KeySet::from_jwks_with`].
    pub fn from_jwks(bytes: &[u8]) -> Result<Self, KeyError> {
        Self::from_jwks_with(bytes, SymmetricKeys::Refuse)
    }

    /// A JWKS. Keys this build cannot use (unknown `kty`, `crv` or `alg`, an `alg` of another
    /// key type, `use` other than `sig`, refused `oct`, malformed members) are skipped, as RFC
    /// 7517 section 5 asks for unknown key types; if none is left, the first key's problem is
    /// the error. Where `oct` keys are allowed, a broken `oct` key is an error
    /// ([`KeyError::InKey`]) rather than skipped: it can only be the operator's mistake.
    pub fn from_jwks_with(bytes: &[u8], symmetric: SymmetricKeys) -> Result<Self, KeyError> {
        let raw_keys = match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(mut set)) => match set.remove("keys") {
                Some(Value::Array(keys)) => keys,
                _ => return Err(KeyError::MalformedJwks),
            },
            _ => return Err(KeyError::MalformedJwks),
        };
        let mut keys = Vec::new();
        let mut first_problem = None;
        for (index, raw) in raw_keys.into_iter().enumerate() {
            let local_secret =
                symmetric == SymmetricKeys::Allow && raw.get("kty") == Some(&Value::from("oct"));
            let kid = raw.get("kid").and_then(Value::as_str).map(str::to_owned);
            match key_from_jwk(raw, symmetric) {
                Ok(key) => keys.push(key),
                Err(problem) if local_secret => {
                    let problem = Box::new(problem);
                    return Err(KeyError::InKey { index, kid, problem });
                }
                Err(problem) => {
                    first_problem.get_or_insert(problem);
                }
            }
        }
        Self::non_empty(keys, first_problem)
    }

    /// One or more PEM blocks: `PUBLIC KEY` (SPKI, RFC 5280 section 4.1) holding an RSA, EC or
    /// Ed25519 key, or `RSA PUBLIC KEY` (PKCS#1, RFC 8017 appendix A.1.1). Every block must be
    /// usable; the keys have no `kid` or `alg`.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let keys = pem_blocks(pem)?
            .into_iter()
            .map(|(label, der)| {
                let material = match label {
                    "PUBLIC KEY" => key_from_spki(&der)?,
                    "RSA PUBLIC KEY" => KeyMaterial::Rsa(rsa_from_pkcs1(&der)?),
                    other => return Err(KeyError::UnsupportedPemLabel(other.to_owned())),
                };
                Ok(anonymous(material))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::non_empty(keys, Some(KeyError::MalformedPem))
    }

    /// A single HMAC secret for HS256/384/512, without `kid` or `alg`.
    pub fn from_hmac_secret(secret: Vec<u8>) -> Result<Self, KeyError> {
        if secret.is_empty() {
            return Err(KeyError::EmptySecret);
        }
        Ok(Self {
            keys: vec![anonymous(KeyMaterial::Hmac(HmacSecret::new(secret)))],
        })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a key has exactly this `kid`; a token whose `kid` is unknown may mean the
    /// issuer rotated keys and the JWKS is worth fetching again.
    pub fn contains_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid() == Some(kid))
    }

    /// Adds `other`'s keys after this set's.
    pub fn extend(&mut self, other: KeySet) {
        self.keys.extend(other.keys);
    }

    pub fn iter(&self) -> impl Iterator<Item = &VerificationKey> {
        self.keys.iter()
    }

    /// Whether some key of the set may check `algorithm` ([`VerificationKey::fits`]).
    pub fn can_check(&self, algorithm: Algorithm) -> bool {
        self.keys.iter().any(|key| key.fits(algorithm))
    }

    fn non_empty(keys: Vec<VerificationKey>, problem: Option<KeyError>) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(problem.unwrap_or(KeyError::NoUsableKey));
        }
        Ok(Self { keys })
    }
}

fn anonymous(material: KeyMaterial) -> VerificationKey {
    VerificationKey {
        kid: None,
        alg: None,
        material,
    }
}

/// The JWK members this module reads (RFC 7517 section 4, RFC 7518 section 6, RFC 8037
/// section 2); all are strings, and a member of another type makes the key unusable.
#[derive(Deserialize)]
struct Jwk {
    kty: Option<String>,
    #[serde(rename = "use")]
    public_key_use: Option<String>,
    alg: Option<String>,
    kid: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
    k: Option<String>,
}

fn key_from_jwk(raw: Value, symmetric: SymmetricKeys) -> Result<VerificationKey, KeyError> {
    let jwk: Jwk = serde_json::from_value(raw).map_err(|_| KeyError::MalformedJwks)?;
    if jwk.public_key_use.as_deref().is_some_and(|u| u != "sig") {
        return Err(KeyError::NotForSignatures);
    }
    // RFC 7517 section 4.4: `alg` names the algorithm the key is intended for; one this build
    // does not verify (Ed448 among them) makes the key useless here, whatever its type.
    let alg = jwk
        .alg
        .as_deref()
        .map(|name| Algorithm::from_name(name).ok_or_else(|| KeyError::UnsupportedAlgorithm(name.to_owned())))
        .transpose()?;
    let material = match jwk.kty.as_deref() {
        Some("RSA") => KeyMaterial::Rsa(rsa_from_jwk(&jwk)?),
        Some("EC") => ec_from_jwk(&jwk)?,
        Some("OKP") => ed25519_from_jwk(&jwk)?,
        Some("oct") if symmetric == SymmetricKeys::Allow => hmac_from_jwk(&jwk, alg)?,
        Some("oct") => return Err(KeyError::SymmetricKeyNotAllowed),
        Some(other) => return Err(KeyError::UnsupportedKeyType(other.to_owned())),
        None => return Err(KeyError::MissingMember("kty")),
    };
    if let Some(alg) = alg.filter(|alg| alg.key_kind() != material.kind()) {
        return Err(KeyError::AlgorithmNotForKeyType(alg));
    }
    Ok(VerificationKey {
        kid: jwk.kid,
        alg,
        material,
    })
}

fn member(value: &Option<String>, name: &'static str) -> Result<Vec<u8>, KeyError> {
    let text = value.as_deref().ok_or(KeyError::MissingMember(name))?;
    JWK_BASE64.decode(text).map_err(|_| KeyError::BadMember(name))
}

/// RFC 7518 section 6.3.1.
fn rsa_from_jwk(jwk: &Jwk) -> Result<RsaKey, KeyError> {
    rsa_from_parts(&member(&jwk.n, "n")?, &member(&jwk.e, "e")?)
}

fn rsa_from_parts(modulus: &[u8], exponent: &[u8]) -> Result<RsaKey, KeyError> {
    let n = BigUint::from_bytes_be(modulus);
    let bits = n.bits();
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(KeyError::RsaKeySize(bits));
    }
    let public = RsaPublicKey::new_with_max_size(n, BigUint::from_bytes_be(exponent), MAX_RSA_BITS)
        .map_err(|_| KeyError::BadMember("e"))?;
    Ok(RsaKey::new(public))
}

/// RFC 7518 section 6.2.1: `x` and `y` are the full field size; a P-521 coordinate one byte
/// short is left-padded because some issuers (and jwt_verify_lib) drop a leading zero.
fn ec_from_jwk(jwk: &Jwk) -> Result<KeyMaterial, KeyError> {
    let crv = jwk.crv.as_deref().ok_or(KeyError::MissingMember("crv"))?;
    let field_bytes = match crv {
        "P-256" => 32,
        "P-384" => 48,
        "P-521" => 66,
        other => return Err(KeyError::UnsupportedCurve(other.to_owned())),
    };
    let x = coordinate(member(&jwk.x, "x")?, field_bytes, crv).ok_or(KeyError::BadMember("x"))?;
    let y = coordinate(member(&jwk.y, "y")?, field_bytes, crv).ok_or(KeyError::BadMember("y"))?;
    let mut point = vec![0x04];
    point.extend(x);
    point.extend(y);
    ec_from_sec1(crv, &point).ok_or(KeyError::BadMember("x"))
}

fn coordinate(mut bytes: Vec<u8>, field_bytes: usize, crv: &str) -> Option<Vec<u8>> {
    if crv == "P-521" && bytes.len() == field_bytes - 1 {
        bytes.insert(0, 0);
    }
    (bytes.len() == field_bytes).then_some(bytes)
}

/// A SEC1 point (SEC 1 section 2.3.3) on the named curve; `None` if it is not on it.
fn ec_from_sec1(crv: &str, point: &[u8]) -> Option<KeyMaterial> {
    // Uncompressed for the host: a PEM key may hold a compressed point.
    match crv {
        "P-256" => p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
            .ok()
            .map(|public| {
                let point = public.to_encoded_point(false);
                KeyMaterial::P256(EcKey::new(public, SECP256R1, point.as_bytes()))
            }),
        "P-384" => p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
            .ok()
            .map(|public| {
                let point = public.to_encoded_point(false);
                KeyMaterial::P384(EcKey::new(public, SECP384R1, point.as_bytes()))
            }),
        "P-521" => p521::ecdsa::VerifyingKey::from_sec1_bytes(point)
            .ok()
            .map(|public| {
                let point = public.to_encoded_point(false);
                KeyMaterial::P521(EcKey::new(public, SECP521R1, point.as_bytes()))
            }),
        _ => None,
    }
}

/// RFC 8037 section 2; only Ed25519, since the JWS algorithms here have no Ed448.
fn ed25519_from_jwk(jwk: &Jwk) -> Result<KeyMaterial, KeyError> {
    match jwk.crv.as_deref() {
        Some("Ed25519") => {}
        Some(other) => return Err(KeyError::UnsupportedCurve(other.to_owned())),
        None => return Err(KeyError::MissingMember("crv")),
    }
    ed25519_compact::PublicKey::from_slice(&member(&jwk.x, "x")?)
        .map(KeyMaterial::Ed25519)
        .map_err(|_| KeyError::BadMember("x"))
}

/// RFC 7518 section 6.4.1. The key must name its HS* `alg` (the caller checks that it is an
/// HMAC one) and be at least as long as that hash (RFC 7518 section 3.2).
fn hmac_from_jwk(jwk: &Jwk, alg: Option<Algorithm>) -> Result<KeyMaterial, KeyError> {
    let algorithm = alg.ok_or(KeyError::HmacAlgorithmMissing)?;
    let secret = member(&jwk.k, "k")?;
    if secret.is_empty() {
        return Err(KeyError::EmptySecret);
    }
    if let Some(min) = algorithm.min_hmac_secret_bytes() {
        if secret.len() < min {
            let bytes = secret.len();
            return Err(KeyError::HmacSecretTooShort { algorithm, bytes });
        }
    }
    Ok(KeyMaterial::Hmac(HmacSecret::new(secret)))
}

/// The `(label, DER)` of every PEM block (RFC 7468 section 2) in `text`.
fn pem_blocks(text: &str) -> Result<Vec<(&str, Vec<u8>)>, KeyError> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some((_, after_begin)) = rest.split_once("-----BEGIN ") {
        let (label, after_label) = after_begin.split_once("-----").ok_or(KeyError::MalformedPem)?;
        let end = format!("-----END {label}-----");
        let (body, after_end) = after_label.split_once(&end).ok_or(KeyError::MalformedPem)?;
        let body: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let der = STANDARD.decode(body).map_err(|_| KeyError::MalformedPem)?;
        blocks.push((label, der));
        rest = after_end;
    }
    Ok(blocks)
}

/// An SPKI (RFC 5280 section 4.1.2.7) public key: RSA (RFC 3279 section 2.3.1), EC on a named
/// curve (RFC 5480 section 2) or Ed25519 (RFC 8410 section 4).
fn key_from_spki(der: &[u8]) -> Result<KeyMaterial, KeyError> {
    let spki = SubjectPublicKeyInfoRef::from_der(der).map_err(|_| KeyError::MalformedDer)?;
    let key = spki.subject_public_key.as_bytes().ok_or(KeyError::MalformedDer)?;
    let algorithm = spki.algorithm.oid;
    if algorithm == RSA_ENCRYPTION {
        return rsa_from_pkcs1(key).map(KeyMaterial::Rsa);
    }
    if algorithm == ED25519 {
        return ed25519_compact::PublicKey::from_slice(key)
            .map(KeyMaterial::Ed25519)
            .map_err(|_| KeyError::MalformedDer);
    }
    if algorithm != EC_PUBLIC_KEY {
        return Err(KeyError::UnsupportedSpkiAlgorithm);
    }
    let crv = match spki.algorithm.parameters_oid() {
        Ok(SECP256R1) => "P-256",
        Ok(SECP384R1) => "P-384",
        Ok(SECP521R1) => "P-521",
        _ => return Err(KeyError::UnsupportedSpkiAlgorithm),
    };
    ec_from_sec1(crv, key).ok_or(KeyError::MalformedDer)
}

/// PKCS#1 `RSAPublicKey` (RFC 8017 appendix A.1.1).
fn rsa_from_pkcs1(der: &[u8]) -> Result<RsaKey, KeyError> {
    let key = rsa::pkcs1::RsaPublicKey::from_der(der).map_err(|_| KeyError::MalformedDer)?;
    rsa_from_parts(key.modulus.as_bytes(), key.public_exponent.as_bytes())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::alg::{Es384, Es512};
    use crate::jwt::Algorithm;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jwt_compact::alg::{Ed25519, Es256, Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key, Rsa};
    use jwt_compact::{Algorithm as _, AlgorithmSignature as _};
    use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
    use rsa::RsaPrivateKey;
    use serde_json::json;
    use std::sync::OnceLock;

    /// TEST-ONLY RSA primes: generating a 2048-bit key takes seconds in a debug build.
    const TEST_ONLY_RSA_P: &str = "f878730efdbd27fcb5713780d8ebc88f50f7b74185efb42e896182e997f8c3570d75be382519b74957bbcba87a068c58d31fdc0d7e9c9252efda546f16e5979c169a0b695b0f0b6f7d192864fba84c699ee9dd23fac76d80030894a51a7bc0bb6a32188237dd2bb6c20645d09e9a1799ed4738e7348b07af565553280054e0d7";
    const TEST_ONLY_RSA_Q: &str = "f1c6c841a70406698dea6ad6c38d034d68f949fa288eea956009f50c1681d0bd73fd2357d8ea2f4773d369da4e0272dbf1a94d94a4e520375109cd84fecf13c9c5a7adffe60e0fbd4f636e7dcb8039e32e2f52381546bcf10fc25f9b1f67c7975fa6f3a2b320c95d70a43e66247a98210f34f9718345a39b689ec9595eb37aad";

    pub fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    fn test_rsa_key() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| {
            let p = BigUint::from_bytes_be(&hex(TEST_ONLY_RSA_P));
            let q = BigUint::from_bytes_be(&hex(TEST_ONLY_RSA_Q));
            RsaPrivateKey::from_p_q(p, q, BigUint::from(65_537_u32)).unwrap()
        })
    }

    /// Private keys made at test time from a seed byte, so an "attacker" can have its own.
    /// The RSA key is the same for every seed; give RSA attacks another key type.
    pub struct TestKeys {
        seed: u8,
    }

    impl TestKeys {
        pub fn issuer() -> Self {
            Self { seed: 1 }
        }
        pub fn attacker() -> Self {
            Self { seed: 2 }
        }

        fn scalar(&self, len: usize) -> Vec<u8> {
            let mut bytes = vec![self.seed; len];
            bytes[0] = 0; // below every curve order
            bytes
        }
        pub fn p256(&self) -> p256::ecdsa::SigningKey {
            p256::ecdsa::SigningKey::from_slice(&self.scalar(32)).unwrap()
        }
        pub fn p384(&self) -> p384::ecdsa::SigningKey {
            p384::ecdsa::SigningKey::from_slice(&self.scalar(48)).unwrap()
        }
        pub fn p521(&self) -> p521::ecdsa::SigningKey {
            p521::ecdsa::SigningKey::from_slice(&self.scalar(66)).unwrap()
        }
        pub fn ed25519(&self) -> ed25519_compact::KeyPair {
            ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([self.seed; 32]))
        }
        pub fn hmac_secret(&self) -> Vec<u8> {
            vec![self.seed; 64]
        }

        /// The JWS signature of `input` under `alg` with this set's key of the fitting kind.
        pub fn sign(&self, alg: Algorithm, input: &[u8]) -> Vec<u8> {
            let secret = self.hmac_secret();
            let rsa = test_rsa_key();
            match alg {
                Algorithm::RS256 => Rsa::rs256().sign(rsa, input).as_bytes().to_vec(),
                Algorithm::RS384 => Rsa::rs384().sign(rsa, input).as_bytes().to_vec(),
                Algorithm::RS512 => Rsa::rs512().sign(rsa, input).as_bytes().to_vec(),
                Algorithm::PS256 => Rsa::ps256().sign(rsa, input).as_bytes().to_vec(),
                Algorithm::PS384 => Rsa::ps384().sign(rsa, input).as_bytes().to_vec(),
                Algorithm::PS512 => Rsa::ps512().sign(rsa, input).as_bytes().to_vec(),
                Algorithm::ES256 => Es256.sign(&self.p256(), input).as_bytes().to_vec(),
                Algorithm::ES384 => Es384.sign(&self.p384(), input).as_bytes().to_vec(),
                Algorithm::ES512 => Es512.sign(&self.p521(), input).as_bytes().to_vec(),
                Algorithm::EdDSA | Algorithm::Ed25519 => {
                    Ed25519.sign(&self.ed25519().sk, input).as_bytes().to_vec()
                }
                Algorithm::HS256 => Hs256.sign(&Hs256Key::new(&secret), input).as_bytes().to_vec(),
                Algorithm::HS384 => Hs384.sign(&Hs384Key::new(&secret), input).as_bytes().to_vec(),
                Algorithm::HS512 => Hs512.sign(&Hs512Key::new(&secret), input).as_bytes().to_vec(),
            }
        }

        /// The public JWK that checks `alg`, with `kid`, without `alg`; or the `oct` secret,
        /// with `kid` and `alg` (an `oct` key must name its algorithm).
        pub fn jwk(&self, alg: Algorithm, kid: &str) -> Value {
            let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
            let ec = |crv: &str, point: &[u8]| {
                let half = (point.len() - 1) / 2;
                json!({"kty": "EC", "crv": crv, "x": b64(&point[1..=half]), "y": b64(&point[half + 1..])})
            };
            let mut jwk = match alg.key_kind() {
                KeyKind::Rsa => {
                    let key = test_rsa_key();
                    json!({"kty": "RSA", "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be())})
                }
                KeyKind::P256 => ec(
                    "P-256",
                    self.p256().verifying_key().to_encoded_point(false).as_bytes(),
                ),
                KeyKind::P384 => ec(
                    "P-384",
                    self.p384().verifying_key().to_encoded_point(false).as_bytes(),
                ),
                KeyKind::P521 => ec(
                    "P-521",
                    p521::ecdsa::VerifyingKey::from(&self.p521())
                        .to_encoded_point(false)
                        .as_bytes(),
                ),
                KeyKind::Ed25519 => json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&self.ed25519().pk[..])}),
                KeyKind::Hmac => json!({"kty": "oct", "alg": alg.name(), "k": b64(&self.hmac_secret())}),
            };
            jwk["kid"] = json!(kid);
            jwk
        }

        /// A JWKS with one key per kind, each with `kid` = the kind's name, and three `oct`
        /// keys (kid `Hmac`), one per HS* algorithm; HMAC allowed.
        pub fn key_set(&self) -> KeySet {
            let keys: Vec<Value> = Algorithm::ALL
                .into_iter()
                .filter(|alg| {
                    matches!(
                        alg,
                        Algorithm::RS256
                            | Algorithm::ES256
                            | Algorithm::ES384
                            | Algorithm::ES512
                            | Algorithm::EdDSA
                            | Algorithm::HS256
                            | Algorithm::HS384
                            | Algorithm::HS512
                    )
                })
                .map(|alg| self.jwk(alg, &format!("{:?}", alg.key_kind())))
                .collect();
            let jwks = serde_json::to_vec(&json!({ "keys": keys })).unwrap();
            KeySet::from_jwks_with(&jwks, SymmetricKeys::Allow).unwrap()
        }
    }

    /// The test RSA public key as SPKI PEM.
    pub fn rsa_public_pem() -> String {
        test_rsa_key()
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
    }

    /// The issuer's P-256 public key as SPKI PEM.
    pub fn p256_public_pem() -> String {
        p256::PublicKey::from(TestKeys::issuer().p256().verifying_key())
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
    }

    fn jwks(keys: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({ "keys": keys })).unwrap()
    }

    #[test]
    fn a_jwks_yields_one_key_per_supported_entry_with_kid_and_alg() {
        let keys = TestKeys::issuer();
        let mut rsa = keys.jwk(Algorithm::RS256, "r1");
        rsa["alg"] = json!("RS256");
        rsa["use"] = json!("sig");
        let set = KeySet::from_jwks(&jwks(json!([rsa, keys.jwk(Algorithm::ES512, "e1")]))).unwrap();
        assert_eq!(set.len(), 2);
        assert!(set.contains_kid("r1") && set.contains_kid("e1") && !set.contains_kid("R1"));
        let first = set.iter().next().unwrap();
        assert_eq!((first.kid(), first.alg()), (Some("r1"), Some(Algorithm::RS256)));
        assert_eq!(first.material().kind(), KeyKind::Rsa);
    }

    #[test]
    fn oct_keys_become_hmac_secrets_only_when_explicitly_allowed() {
        let keys = TestKeys::issuer();
        let only_oct = jwks(json!([keys.jwk(Algorithm::HS256, "h")]));
        assert_eq!(
            KeySet::from_jwks(&only_oct).err(),
            Some(KeyError::SymmetricKeyNotAllowed)
        );
        let mixed = jwks(json!([
            keys.jwk(Algorithm::HS256, "h"),
            keys.jwk(Algorithm::ES256, "e")
        ]));
        let remote = KeySet::from_jwks(&mixed).unwrap();
        assert!(!remote.contains_kid("h") && remote.contains_kid("e"));
        let local = KeySet::from_jwks_with(&mixed, SymmetricKeys::Allow).unwrap();
        assert_eq!(local.len(), 2);
    }

    fn local(keys: Value) -> Result<KeySet, KeyError> {
        KeySet::from_jwks_with(&jwks(keys), SymmetricKeys::Allow)
    }

    fn oct(alg: Option<&str>, bytes: usize) -> Value {
        let mut key = json!({"kty": "oct", "kid": "h", "k": URL_SAFE_NO_PAD.encode(vec![7_u8; bytes])});
        if let Some(alg) = alg {
            key["alg"] = json!(alg);
        }
        key
    }

    fn in_key(index: usize, kid: Option<&str>, problem: KeyError) -> Option<KeyError> {
        let kid = kid.map(str::to_owned);
        let problem = Box::new(problem);
        Some(KeyError::InKey { index, kid, problem })
    }

    #[test]
    fn an_oct_key_is_bound_to_the_hs_algorithm_it_names_and_checks_no_other() {
        let set = local(json!([oct(Some("HS384"), 48)])).unwrap();
        let key = set.iter().next().unwrap();
        assert_eq!((key.kid(), key.alg()), (Some("h"), Some(Algorithm::HS384)));
        for alg in Algorithm::ALL {
            assert_eq!(key.fits(alg), alg == Algorithm::HS384, "{alg:?}");
            assert_eq!(set.can_check(alg), alg == Algorithm::HS384, "{alg:?}");
        }
    }

    #[test]
    fn a_local_oct_key_without_alg_is_a_configuration_error_naming_the_key() {
        let rsa = TestKeys::issuer().jwk(Algorithm::RS256, "r");
        // RFC 7515 appendix A.1's key is published without `alg`: it must be given one.
        let error = local(json!([rsa, oct(None, 64)])).err();
        assert_eq!(error, in_key(1, Some("h"), KeyError::HmacAlgorithmMissing));
        let text = error.unwrap().to_string();
        assert_eq!(
            text,
            "key 1 (`kid` `h`): an `oct` key must name its `alg`: HS256, HS384 or HS512"
        );
    }

    #[test]
    fn a_local_oct_key_shorter_than_its_hash_is_refused_and_one_as_long_is_accepted() {
        for (alg, algorithm, min) in [
            ("HS256", Algorithm::HS256, 32),
            ("HS384", Algorithm::HS384, 48),
            ("HS512", Algorithm::HS512, 64),
        ] {
            assert!(local(json!([oct(Some(alg), min)])).is_ok(), "{alg}");
            let short = KeyError::HmacSecretTooShort {
                algorithm,
                bytes: min - 1,
            };
            assert_eq!(
                local(json!([oct(Some(alg), min - 1)])).err(),
                in_key(0, Some("h"), short)
            );
        }
        let mut unnamed = oct(Some("HS256"), 0);
        unnamed.as_object_mut().unwrap().remove("kid");
        assert_eq!(
            local(json!([unnamed])).err(),
            in_key(0, None, KeyError::EmptySecret)
        );
    }

    #[test]
    fn a_local_oct_key_naming_another_algorithm_or_use_is_refused() {
        for (alg, problem) in [
            ("RS256", KeyError::AlgorithmNotForKeyType(Algorithm::RS256)),
            ("EdDSA", KeyError::AlgorithmNotForKeyType(Algorithm::EdDSA)),
            ("A128KW", KeyError::UnsupportedAlgorithm("A128KW".into())),
            ("hs256", KeyError::UnsupportedAlgorithm("hs256".into())),
            ("none", KeyError::UnsupportedAlgorithm("none".into())),
        ] {
            assert_eq!(
                local(json!([oct(Some(alg), 64)])).err(),
                in_key(0, Some("h"), problem),
                "{alg}"
            );
        }
        let mut encryption = oct(Some("HS256"), 64);
        encryption["use"] = json!("enc");
        assert_eq!(
            local(json!([encryption])).err(),
            in_key(0, Some("h"), KeyError::NotForSignatures)
        );
        let mut broken = oct(Some("HS256"), 64);
        broken["k"] = json!("not base64!");
        assert_eq!(
            local(json!([broken])).err(),
            in_key(0, Some("h"), KeyError::BadMember("k"))
        );
    }

    #[test]
    fn a_remote_jwks_never_yields_an_hmac_secret_even_one_with_alg() {
        let ec = TestKeys::issuer().jwk(Algorithm::ES256, "e");
        for alg in [Some("HS256"), Some("HS512"), None] {
            let set = KeySet::from_jwks(&jwks(json!([oct(alg, 64), ec.clone()]))).unwrap();
            assert!(
                set.iter().all(|key| key.material().kind() != KeyKind::Hmac),
                "{alg:?}"
            );
            assert_eq!(
                KeySet::from_jwks(&jwks(json!([oct(alg, 64)]))).err(),
                Some(KeyError::SymmetricKeyNotAllowed)
            );
        }
    }

    #[test]
    fn a_public_key_whose_alg_is_of_another_type_or_unknown_is_skipped() {
        let keys = TestKeys::issuer();
        let with_alg = |alg: Algorithm, name: &str| {
            let mut jwk = keys.jwk(alg, name);
            jwk["alg"] = json!(name);
            jwk
        };
        for (jwk, problem) in [
            (
                with_alg(Algorithm::RS256, "ES256"),
                KeyError::AlgorithmNotForKeyType(Algorithm::ES256),
            ),
            (
                with_alg(Algorithm::ES256, "HS256"),
                KeyError::AlgorithmNotForKeyType(Algorithm::HS256),
            ),
            (
                with_alg(Algorithm::ES256, "ES384"),
                KeyError::AlgorithmNotForKeyType(Algorithm::ES384),
            ),
            (
                with_alg(Algorithm::EdDSA, "Ed448"),
                KeyError::UnsupportedAlgorithm("Ed448".into()),
            ),
            (
                with_alg(Algorithm::RS256, "RSA-OAEP"),
                KeyError::UnsupportedAlgorithm("RSA-OAEP".into()),
            ),
        ] {
            let only = jwks(json!([jwk.clone()]));
            assert_eq!(KeySet::from_jwks(&only).err(), Some(problem.clone()), "{jwk}");
            assert_eq!(
                KeySet::from_jwks_with(&only, SymmetricKeys::Allow).err(),
                Some(problem),
                "{jwk}"
            );
            let with_good = jwks(json!([jwk, keys.jwk(Algorithm::EdDSA, "ok")]));
            let set = KeySet::from_jwks(&with_good).unwrap();
            assert_eq!(set.len(), 1);
            assert!(set.contains_kid("ok"));
        }
        assert!(KeyError::UnsupportedAlgorithm("Ed448".into())
            .to_string()
            .contains("`Ed448` is not supported"));
    }

    #[test]
    fn member_values_in_errors_are_escaped_and_shortened_for_logs() {
        let forged = format!("x\nwasm log tokengate: all good{}", "y".repeat(100));
        let text = KeyError::UnsupportedAlgorithm(forged).to_string();
        assert!(
            !text.contains('\n') && text.contains("x?wasm") && text.len() < 120,
            "{text}"
        );
        assert_eq!(
            KeyError::UnsupportedKeyType("PQC".into()).to_string(),
            "unsupported key type `PQC`"
        );
    }

    #[test]
    fn an_okp_key_may_be_bound_to_ed25519_or_eddsa() {
        let keys = TestKeys::issuer();
        for (name, alg) in [("Ed25519", Algorithm::Ed25519), ("EdDSA", Algorithm::EdDSA)] {
            let mut jwk = keys.jwk(Algorithm::EdDSA, "ed");
            jwk["alg"] = json!(name);
            let set = KeySet::from_jwks(&jwks(json!([jwk]))).unwrap();
            let key = set.iter().next().unwrap();
            assert_eq!(key.alg(), Some(alg));
            assert!(key.fits(alg));
            assert!(!key.fits(if alg == Algorithm::EdDSA {
                Algorithm::Ed25519
            } else {
                Algorithm::EdDSA
            }));
        }
        let unbound = KeySet::from_jwks(&jwks(json!([keys.jwk(Algorithm::EdDSA, "ed")]))).unwrap();
        assert!(unbound.can_check(Algorithm::EdDSA) && unbound.can_check(Algorithm::Ed25519));
    }

    #[test]
    fn unknown_types_curves_and_encryption_keys_are_skipped() {
        let keys = TestKeys::issuer();
        let mut enc = keys.jwk(Algorithm::ES256, "enc");
        enc["use"] = json!("enc");
        let mut x25519 = keys.jwk(Algorithm::EdDSA, "x");
        x25519["crv"] = json!("X25519");
        let set = KeySet::from_jwks(&jwks(json!([
            {"kty": "PQC", "kid": "new"},
            enc,
            x25519,
            {"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"},
            {"kty": 7},
            "not an object",
            keys.jwk(Algorithm::EdDSA, "ed"),
        ])))
        .unwrap();
        assert_eq!(set.len(), 1);
        assert!(set.contains_kid("ed"));
    }

    #[test]
    fn a_jwks_without_a_usable_key_names_the_first_problem() {
        for (json, error) in [
            (json!([]), KeyError::NoUsableKey),
            (
                json!([{"kty": "PQC"}]),
                KeyError::UnsupportedKeyType("PQC".into()),
            ),
            (
                json!([{"kty": "EC", "crv": "P-256", "x": "AA"}]),
                KeyError::BadMember("x"),
            ),
            (json!([{"kty": "RSA", "e": "AQAB"}]), KeyError::MissingMember("n")),
            (
                json!([{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]),
                KeyError::RsaKeySize(17),
            ),
            (
                json!([{"kty": "OKP", "crv": "Ed448", "x": "AA"}]),
                KeyError::UnsupportedCurve("Ed448".into()),
            ),
        ] {
            assert_eq!(
                KeySet::from_jwks(&jwks(json.clone())).err(),
                Some(error),
                "{json}"
            );
        }
    }

    #[test]
    fn malformed_jwks_documents_are_errors() {
        for text in ["", "{", "[]", "{}", r#"{"keys":{}}"#, r#"{"keys":"x"}"#] {
            assert_eq!(
                KeySet::from_jwks(text.as_bytes()).err(),
                Some(KeyError::MalformedJwks),
                "{text}"
            );
        }
    }

    #[test]
    fn a_point_off_the_curve_is_refused() {
        let mut jwk = TestKeys::issuer().jwk(Algorithm::ES256, "e");
        jwk["y"] = jwk["x"].clone();
        assert_eq!(
            KeySet::from_jwks(&jwks(json!([jwk]))).err(),
            Some(KeyError::BadMember("x"))
        );
    }

    #[test]
    fn a_p521_coordinate_one_byte_short_is_left_padded() {
        // About one seed in 256 gives a P-521 x coordinate whose first byte is zero.
        let short = (1..=255_u8)
            .map(|seed| TestKeys { seed }.jwk(Algorithm::ES512, "p"))
            .find(|jwk| {
                let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
                x[0] == 0
            })
            .unwrap();
        let mut trimmed = short.clone();
        let x = URL_SAFE_NO_PAD.decode(short["x"].as_str().unwrap()).unwrap();
        trimmed["x"] = json!(URL_SAFE_NO_PAD.encode(&x[1..]));
        assert_eq!(KeySet::from_jwks(&jwks(json!([trimmed]))).unwrap().len(), 1);
        let mut two_short = short;
        two_short["x"] = json!(URL_SAFE_NO_PAD.encode(&x[2..]));
        assert!(KeySet::from_jwks(&jwks(json!([two_short]))).is_err());
    }

    #[test]
    fn pem_text_may_hold_several_public_keys() {
        let both = format!("{}\n{}", rsa_public_pem(), p256_public_pem());
        let set = KeySet::from_pem(&both).unwrap();
        let kinds: Vec<KeyKind> = set.iter().map(|key| key.material().kind()).collect();
        assert_eq!(kinds, [KeyKind::Rsa, KeyKind::P256]);
        assert!(set.iter().all(|key| key.kid().is_none() && key.alg().is_none()));
    }

    #[test]
    fn a_pkcs1_rsa_public_key_block_is_accepted() {
        use rsa::pkcs1::EncodeRsaPublicKey as _;
        let pem = test_rsa_key()
            .to_public_key()
            .to_pkcs1_pem(LineEnding::LF)
            .unwrap();
        assert!(pem.starts_with("-----BEGIN RSA PUBLIC KEY-----"));
        assert_eq!(KeySet::from_pem(&pem).unwrap().len(), 1);
    }

    #[test]
    fn keys_carry_the_spki_der_the_host_reads() {
        let key = test_rsa_key().to_public_key();
        let expected = key.to_public_key_der().unwrap();
        assert_eq!(RsaKey::new(key).spki_der, expected.as_bytes());
        // Short and long lengths, a leading zero byte kept off, a sign byte put on.
        let n = [&[0x00, 0x00, 0xc1][..], &[0x5b; 300]].concat();
        let small =
            RsaPublicKey::new_with_max_size(BigUint::from_bytes_be(&n), BigUint::from(3_u32), 8192).unwrap();
        let expected = small.to_public_key_der().unwrap();
        assert_eq!(rsa_spki_der(&n, &[3]), expected.as_bytes());
        let issuer = TestKeys::issuer();
        let ec = [
            (
                Algorithm::ES256,
                issuer.p256().verifying_key().to_public_key_der().unwrap(),
            ),
            (
                Algorithm::ES384,
                issuer.p384().verifying_key().to_public_key_der().unwrap(),
            ),
        ];
        for (alg, expected) in ec {
            let jwks = json!({"keys": [issuer.jwk(alg, "k")]}).to_string();
            let keys = KeySet::from_jwks(jwks.as_bytes()).unwrap();
            let spki = match keys.iter().next().unwrap().material() {
                KeyMaterial::P256(key) => key.spki_der.clone(),
                KeyMaterial::P384(key) => key.spki_der.clone(),
                other => panic!("{other:?}"),
            };
            assert_eq!(spki, expected.as_bytes(), "{alg:?}");
        }
        let jwks = json!({"keys": [issuer.jwk(Algorithm::ES512, "k")]}).to_string();
        let keys = KeySet::from_jwks(jwks.as_bytes()).unwrap();
        let KeyMaterial::P521(key) = keys.iter().next().unwrap().material() else {
            panic!("not P-521")
        };
        // SEQUENCE, algorithm (ecPublicKey, secp521r1), BIT STRING of 0x00 0x04 X Y.
        assert_eq!(&key.spki_der[..3], [0x30, 0x81, 0x9b]);
        assert_eq!(
            &key.spki_der[5..25],
            [
                0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00,
                0x23, 0x03, 0x81, 0x86, 0x00
            ]
        );
        assert_eq!(key.spki_der.len(), 158);
    }

    #[test]
    fn broken_or_foreign_pem_is_an_error() {
        let good = rsa_public_pem();
        let private_label = good.replace("PUBLIC KEY", "PRIVATE KEY");
        let cases = [
            ("", KeyError::MalformedPem),
            ("just text", KeyError::MalformedPem),
            ("-----BEGIN PUBLIC KEY-----\nAAAA", KeyError::MalformedPem),
            (
                "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----",
                KeyError::MalformedPem,
            ),
            (
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
                KeyError::MalformedDer,
            ),
            (
                private_label.as_str(),
                KeyError::UnsupportedPemLabel("PRIVATE KEY".into()),
            ),
        ];
        for (pem, error) in cases {
            assert_eq!(KeySet::from_pem(pem).err(), Some(error), "{pem}");
        }
    }

    #[test]
    fn sets_combine_and_an_empty_secret_is_refused() {
        let mut set = KeySet::from_hmac_secret(b"secret".to_vec()).unwrap();
        set.extend(KeySet::from_pem(&p256_public_pem()).unwrap());
        assert_eq!(set.len(), 2);
        assert!(!set.is_empty() && KeySet::default().is_empty());
        assert_eq!(
            KeySet::from_hmac_secret(Vec::new()).err(),
            Some(KeyError::EmptySecret)
        );
    }

    #[test]
    fn debug_output_never_shows_secret_bytes() {
        let keys = TestKeys::issuer();
        let mut set = KeySet::from_hmac_secret(b"hunter2-hunter2".to_vec()).unwrap();
        set.extend(keys.key_set());
        let debug = format!("{set:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(
            !debug.contains(&URL_SAFE_NO_PAD.encode(keys.hmac_secret())),
            "{debug}"
        );
        assert!(!debug.contains("[1, 1, 1"), "{debug}");
        assert!(debug.contains("HmacSecret(<15 bytes>)"), "{debug}");
    }
}
