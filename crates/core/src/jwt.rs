//! Compact JWS tokens: strict parsing of untrusted input, signature checks and claim checks.
//!
//! Parsing follows the rules of `tests/conformance/jwt/README.md`: three segments of
//! unpadded canonical base64url, JSON objects without duplicate members, no `crit`, no
//! unencoded payloads, at most 64 KiB. Nothing in the header supplies a key: the caller
//! passes the [`KeySet`] its configuration allows, `kid` only narrows the choice among those,
//! and `alg` must be one the caller accepts.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_compact::alg::{Ed25519, Es256, Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key, Rsa};
use jwt_compact::AlgorithmSignature;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

use crate::alg::{Es384, Es512};
use crate::clock::UnixSeconds;
use crate::hostcrypto::{ecdsa_signature_der, Hash, ModuleOnly, SignatureHost};
pub use crate::jose::{Algorithm, HmacSecret};
use crate::jwk::{KeyMaterial, KeySet, RsaKey, VerificationKey};
use rsa::traits::PublicKeyParts as _;

/// Longest token accepted, in bytes; larger input is refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// Why a token was refused. The variants are for logs and metrics; every one of them is
/// "invalid token" to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwtError {
    /// Longer than [`MAX_TOKEN_BYTES`].
    TooLarge,
    /// Not three `.`-separated segments, an empty header or payload, or a byte outside base64url.
    Malformed,
    /// A segment is not canonical unpadded base64url.
    BadEncoding,
    /// Header or payload is not a JSON object, or repeats a member name.
    BadJson,
    /// `alg` is missing, `none`, or not among the algorithms configured for this provider.
    AlgorithmNotAllowed,
    /// The header carries `crit` or `b64`: no extension is understood, so none is accepted.
    UnsupportedExtension,
    /// The header's `kid` is not a string.
    BadKeyId,
    /// No configured key may check this token: none has its `kid`, or none fits its `alg`.
    /// With a `kid`, the issuer may have rotated keys: refetching its JWKS can help.
    NoMatchingKey,
    /// No candidate key verified the signature.
    BadSignature,
    /// `exp` is in the past (beyond the allowed clock skew).
    Expired,
    /// `nbf` is in the future (beyond the allowed clock skew).
    NotYetValid,
    /// `exp` is required and absent.
    MissingExpiry,
    /// A registered claim has the wrong JSON type (`exp` not a number, `iss` not a string, ...).
    BadClaimType(&'static str),
    /// `iss` differs from the configured issuer.
    WrongIssuer,
    /// `aud` shares nothing with the configured audiences, or is absent.
    WrongAudience,
    /// `exp - iat` is over the configured maximum lifetime, or either claim is missing.
    LifetimeTooLong,
}

/// A token that parsed cleanly but whose signature and claims are not yet checked.
#[derive(Debug)]
pub struct UntrustedJwt<'a> {
    algorithm_name: String,
    key_id: Option<String>,
    claims: Map<String, Value>,
    signing_input: &'a str,
    signature: Vec<u8>,
}

impl<'a> UntrustedJwt<'a> {
    pub fn parse(token: &'a str) -> Result<Self, JwtError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwtError::TooLarge);
        }
        if !token
            .bytes()
            .all(|b| COMPACT_JWS_BYTES.get(usize::from(b)) == Some(&true))
        {
            return Err(JwtError::Malformed);
        }
        let mut segments = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (segments.next(), segments.next(), segments.next(), segments.next())
        else {
            return Err(JwtError::Malformed);
        };
        if header.is_empty() || payload.is_empty() {
            return Err(JwtError::Malformed);
        }
        let header = decode_object(header)?;
        let claims = decode_object(payload)?;
        if header.contains_key("crit") || header.contains_key("b64") {
            return Err(JwtError::UnsupportedExtension);
        }
        let algorithm_name = match header.get("alg") {
            Some(Value::String(alg)) => alg.clone(),
            _ => return Err(JwtError::AlgorithmNotAllowed),
        };
        let key_id = match header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err(JwtError::BadKeyId),
        };
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| JwtError::BadEncoding)?;
        let signing_input_len = token.len() - signature_len(token);
        let signing_input = token.get(..signing_input_len).ok_or(JwtError::Malformed)?;
        Ok(Self {
            algorithm_name,
            key_id,
            claims,
            signing_input,
            signature,
        })
    }

    /// The algorithm, if it is one of `allowed`; `none` in any spelling is never allowed.
    pub fn algorithm(&self, allowed: &[Algorithm]) -> Result<Algorithm, JwtError> {
        Algorithm::from_name(&self.algorithm_name)
            .filter(|alg| allowed.contains(alg))
            .ok_or(JwtError::AlgorithmNotAllowed)
    }

    /// The header's `kid` (RFC 7515 section 4.1.4), if any.
    pub fn kid(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// Checks the signature with the keys of `keys` that may check it, and returns the
    /// algorithm. Candidates: with a `kid`, only keys with exactly that `kid` (no fallback to
    /// others); without, every key. A candidate must also be of the algorithm's key kind and,
    /// if its JWK named an `alg`, of this one. Header keys (`jwk`, `jku`, `x5u`, `x5c`) are
    /// never read.
    pub fn verify(&self, keys: &KeySet, allowed: &[Algorithm]) -> Result<Algorithm, JwtError> {
        self.verify_with(keys, allowed, &ModuleOnly)
    }

    /// [`UntrustedJwt::verify`], letting `host` check RSASSA-PKCS1-v1_5 (RS256, RS384, RS512)
    /// and ECDSA (ES256, ES384, ES512) signatures when it can; everything before that is
    /// decided here either way.
    pub fn verify_with(
        &self,
        keys: &KeySet,
        allowed: &[Algorithm],
        host: &dyn SignatureHost,
    ) -> Result<Algorithm, JwtError> {
        let algorithm = self.algorithm(allowed)?;
        let mut candidates = keys
            .iter()
            .filter(|key| self.may_check(key, algorithm))
            .peekable();
        if candidates.peek().is_none() {
            return Err(JwtError::NoMatchingKey);
        }
        let input = self.signing_input.as_bytes();
        if candidates.any(|key| signature_verifies(algorithm, key.material(), input, &self.signature, host)) {
            Ok(algorithm)
        } else {
            Err(JwtError::BadSignature)
        }
    }

    fn may_check(&self, key: &VerificationKey, algorithm: Algorithm) -> bool {
        let kid_matches = self.kid().is_none_or(|kid| key.kid() == Some(kid));
        kid_matches && key.fits(algorithm)
    }

    /// Checks the signature with one HMAC secret; any other algorithm is a bad signature.
    pub fn verify_hmac(&self, algorithm: Algorithm, secret: &HmacSecret) -> Result<(), JwtError> {
        hmac_matches(algorithm, secret, self.signing_input.as_bytes(), &self.signature)
            .then_some(())
            .ok_or(JwtError::BadSignature)
    }

    /// The claims, for checking with [`check_claims`] once the signature is verified.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }
}

/// The bytes of a compact JWS: the base64url alphabet and `.` (a table: this runs over every
/// byte of every token that is not in the cache).
#[allow(clippy::indexing_slicing)] // b < 256: the loop's bound
static COMPACT_JWS_BYTES: [bool; 256] = {
    let mut allowed = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        allowed[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.';
        b += 1;
    }
    allowed
};

fn signature_len(token: &str) -> usize {
    token.rsplit_once('.').map_or(0, |(_, sig)| sig.len() + 1)
}

/// Whether `key` verifies `signature` over `input` under `algorithm`; false when the key is
/// of another kind. RSASSA-PSS uses a salt as long as the hash (RFC 7518 section 3.5), which
/// jwt-compact sets and the `rsa` crate enforces.
fn signature_verifies(
    algorithm: Algorithm,
    key: &KeyMaterial,
    input: &[u8],
    signature: &[u8],
    host: &dyn SignatureHost,
) -> bool {
    let pkcs1 = |hash, rsa: &Rsa, key: &RsaKey| {
        // RFC 8017 section 8.2.2 step 1: the signature is exactly as long as the modulus.
        if signature.len() != key.public.size() {
            return false;
        }
        host.verify(hash, &key.spki_der, input, signature)
            .unwrap_or_else(|| signature_matches(rsa, &key.public, input, signature))
    };
    // RFC 7518 section 3.4: R || S, each exactly the curve's size.
    let ecdsa = |hash, field_bytes: usize, spki_der: &[u8], module: &dyn Fn() -> bool| {
        if signature.len() != 2 * field_bytes {
            return false;
        }
        host.verify(hash, spki_der, input, &ecdsa_signature_der(signature))
            .unwrap_or_else(module)
    };
    match (algorithm, key) {
        (Algorithm::RS256, KeyMaterial::Rsa(key)) => pkcs1(Hash::Sha256, &Rsa::rs256(), key),
        (Algorithm::RS384, KeyMaterial::Rsa(key)) => pkcs1(Hash::Sha384, &Rsa::rs384(), key),
        (Algorithm::RS512, KeyMaterial::Rsa(key)) => pkcs1(Hash::Sha512, &Rsa::rs512(), key),
        (Algorithm::PS256, KeyMaterial::Rsa(key)) => {
            signature_matches(&Rsa::ps256(), &key.public, input, signature)
        }
        (Algorithm::PS384, KeyMaterial::Rsa(key)) => {
            signature_matches(&Rsa::ps384(), &key.public, input, signature)
        }
        (Algorithm::PS512, KeyMaterial::Rsa(key)) => {
            signature_matches(&Rsa::ps512(), &key.public, input, signature)
        }
        (Algorithm::ES256, KeyMaterial::P256(key)) => ecdsa(Hash::Sha256, 32, &key.spki_der, &|| {
            signature_matches(&Es256, &key.public, input, signature)
        }),
        (Algorithm::ES384, KeyMaterial::P384(key)) => ecdsa(Hash::Sha384, 48, &key.spki_der, &|| {
            signature_matches(&Es384, &key.public, input, signature)
        }),
        (Algorithm::ES512, KeyMaterial::P521(key)) => ecdsa(Hash::Sha512, 66, &key.spki_der, &|| {
            signature_matches(&Es512, &key.public, input, signature)
        }),
        (Algorithm::EdDSA | Algorithm::Ed25519, KeyMaterial::Ed25519(key)) => {
            signature_matches(&Ed25519, key, input, signature)
        }
        (_, KeyMaterial::Hmac(secret)) => hmac_matches(algorithm, secret, input, signature),
        _ => false,
    }
}

fn hmac_matches(algorithm: Algorithm, secret: &HmacSecret, input: &[u8], signature: &[u8]) -> bool {
    match algorithm {
        Algorithm::HS256 => signature_matches(&Hs256, &Hs256Key::new(secret.as_bytes()), input, signature),
        Algorithm::HS384 => signature_matches(&Hs384, &Hs384Key::new(secret.as_bytes()), input, signature),
        Algorithm::HS512 => signature_matches(&Hs512, &Hs512Key::new(secret.as_bytes()), input, signature),
        _ => false,
    }
}

/// Verifies with any jwt-compact algorithm. The length check comes first because some
/// `try_from_slice` implementations assume the length is already right.
fn signature_matches<A: jwt_compact::Algorithm>(
    algorithm: &A,
    key: &A::VerifyingKey,
    input: &[u8],
    signature: &[u8],
) -> bool {
    if A::Signature::LENGTH.is_some_and(|len| len.get() != signature.len()) {
        return false;
    }
    A::Signature::try_from_slice(signature)
        .is_ok_and(|signature| algorithm.verify_signature(&signature, key, input))
}

/// What the registered claims must satisfy (RFC 7519 section 4.1).
#[derive(Debug, Clone, Default)]
pub struct ClaimRules {
    pub issuer: Option<String>,
    pub audiences: Option<Vec<String>>,
    pub clock_skew_seconds: i64,
    pub require_exp: bool,
}

/// Checks `exp`, `nbf`, `iat` types, `iss` and `aud` against `rules` at time `now`.
pub fn check_claims(
    claims: &Map<String, Value>,
    rules: &ClaimRules,
    now: UnixSeconds,
) -> Result<(), JwtError> {
    let now = now as f64;
    let skew = rules.clock_skew_seconds as f64;
    match number_claim(claims, "exp")? {
        Some(exp) if now >= exp + skew => return Err(JwtError::Expired),
        None if rules.require_exp => return Err(JwtError::MissingExpiry),
        _ => {}
    }
    if number_claim(claims, "nbf")?.is_some_and(|nbf| now + skew < nbf) {
        return Err(JwtError::NotYetValid);
    }
    number_claim(claims, "iat")?;
    check_issuer(claims, rules.issuer.as_deref())?;
    check_audience(claims, rules.audiences.as_deref())
}

fn number_claim(claims: &Map<String, Value>, name: &'static str) -> Result<Option<f64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or(JwtError::BadClaimType(name)),
        Some(_) => Err(JwtError::BadClaimType(name)),
    }
}

fn check_issuer(claims: &Map<String, Value>, expected: Option<&str>) -> Result<(), JwtError> {
    let issuer = match claims.get("iss") {
        None => None,
        Some(Value::String(iss)) => Some(iss.as_str()),
        Some(_) => return Err(JwtError::BadClaimType("iss")),
    };
    match expected {
        Some(expected) if issuer != Some(expected) => Err(JwtError::WrongIssuer),
        _ => Ok(()),
    }
}

fn check_audience(claims: &Map<String, Value>, allowed: Option<&[String]>) -> Result<(), JwtError> {
    let audiences: Vec<&str> = match claims.get("aud") {
        None => Vec::new(),
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().ok_or(JwtError::BadClaimType("aud")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(JwtError::BadClaimType("aud")),
    };
    match allowed {
        Some(allowed) if !audiences.iter().any(|aud| allowed.iter().any(|a| a == aud)) => {
            Err(JwtError::WrongAudience)
        }
        _ => Ok(()),
    }
}

fn decode_object(segment: &str) -> Result<Map<String, Value>, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| JwtError::BadEncoding)?;
    match serde_json::from_slice::<StrictValue>(&bytes) {
        Ok(StrictValue(Value::Object(map))) => Ok(map),
        _ => Err(JwtError::BadJson),
    }
}

/// A JSON value whose objects, at any depth, never repeat a member name: different JSON
/// parsers keep different copies of a repeated name, which is a classic way to talk past a
/// verifier.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value without duplicate object members")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(name) = access.next_key::<String>()? {
            if map.contains_key(&name) {
                return Err(de::Error::custom("duplicate member"));
            }
            let StrictValue(value) = access.next_value()?;
            map.insert(name, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::jwk::tests::{hex, p256_public_pem, rsa_public_pem, TestKeys};
    use crate::jwk::{KeyKind, SymmetricKeys};
    use jwt_compact::Algorithm as _;
    use serde_json::json;

    pub const SECRET: &[u8] = b"a-demo-secret-that-is-32-bytes!!";

    /// Signs `header` and `claims` (raw JSON text, so tests can build malformed objects).
    pub fn sign_raw(alg: Algorithm, header: &str, claims: &str, secret: &[u8]) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let sig = match alg {
            Algorithm::HS256 => Hs256
                .sign(&Hs256Key::new(secret), input.as_bytes())
                .as_bytes()
                .to_vec(),
            Algorithm::HS384 => Hs384
                .sign(&Hs384Key::new(secret), input.as_bytes())
                .as_bytes()
                .to_vec(),
            Algorithm::HS512 => Hs512
                .sign(&Hs512Key::new(secret), input.as_bytes())
                .as_bytes()
                .to_vec(),
            other => panic!("sign_raw signs with HMAC secrets only, not {other:?}"),
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn hs256(claims: &str) -> String {
        sign_raw(Algorithm::HS256, r#"{"alg":"HS256","typ":"JWT"}"#, claims, SECRET)
    }

    fn verify(token: &str, allowed: &[Algorithm]) -> Result<(), JwtError> {
        let jwt = UntrustedJwt::parse(token)?;
        let alg = jwt.algorithm(allowed)?;
        jwt.verify_hmac(alg, &HmacSecret::new(SECRET.to_vec()))
    }

    #[test]
    fn a_correctly_signed_token_verifies_with_each_hmac_size() {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let header = format!(r#"{{"alg":"{alg:?}"}}"#);
            let token = sign_raw(alg, &header, r#"{"sub":"fred"}"#, SECRET);
            assert_eq!(verify(&token, &[alg]), Ok(()), "{alg:?}");
        }
    }

    #[test]
    fn a_token_signed_with_another_secret_has_a_bad_signature() {
        let token = sign_raw(
            Algorithm::HS256,
            r#"{"alg":"HS256"}"#,
            "{}",
            b"another-secret-another-secret-xx",
        );
        assert_eq!(verify(&token, &[Algorithm::HS256]), Err(JwtError::BadSignature));
    }

    #[test]
    fn truncated_or_empty_signatures_are_bad_signatures_not_panics() {
        let token = hs256("{}");
        let (input, sig) = token.rsplit_once('.').unwrap();
        for cut in [
            format!("{input}."),
            format!("{input}.{}", &sig[..8]),
            format!("{input}.{sig}AAAA"),
        ] {
            assert_eq!(
                verify(&cut, &[Algorithm::HS256]),
                Err(JwtError::BadSignature),
                "{cut}"
            );
        }
    }

    #[test]
    fn none_and_unconfigured_algorithms_are_refused() {
        for alg in ["none", "None", "NONE", "nOnE", "hs256", "RS256", ""] {
            let header = format!(r#"{{"alg":"{alg}"}}"#);
            let token = sign_raw(Algorithm::HS256, &header, "{}", SECRET);
            assert_eq!(
                verify(&token, &[Algorithm::HS256]),
                Err(JwtError::AlgorithmNotAllowed),
                "{alg}"
            );
        }
        let hs512 = sign_raw(Algorithm::HS512, r#"{"alg":"HS512"}"#, "{}", SECRET);
        assert_eq!(
            verify(&hs512, &[Algorithm::HS256]),
            Err(JwtError::AlgorithmNotAllowed)
        );
        let no_alg = sign_raw(Algorithm::HS256, r#"{"typ":"JWT"}"#, "{}", SECRET);
        assert_eq!(
            verify(&no_alg, &[Algorithm::HS256]),
            Err(JwtError::AlgorithmNotAllowed)
        );
    }

    #[test]
    fn structural_garbage_is_malformed() {
        let cases = [
            "",
            ".",
            "..",
            "a.b",
            "a.b.c.d",
            ".e30.",
            "e30..",
            "e30.e30.sig=",
            "e30.e30.a+b",
            "e30 .e30.x",
            "é.e30.x",
            "e30.e30.x\0",
        ];
        for token in cases {
            assert_eq!(
                UntrustedJwt::parse(token).err(),
                Some(JwtError::Malformed),
                "{token:?}"
            );
        }
    }

    #[test]
    fn non_canonical_or_non_json_segments_are_refused() {
        // "e31" decodes to the same bytes as "e30" only if trailing bits are ignored.
        assert_eq!(UntrustedJwt::parse("e31.e30.").err(), Some(JwtError::BadEncoding));
        assert_eq!(UntrustedJwt::parse("e.e30.").err(), Some(JwtError::BadEncoding));
        let not_object = format!("{}.e30.", URL_SAFE_NO_PAD.encode("[1]"));
        assert_eq!(UntrustedJwt::parse(&not_object).err(), Some(JwtError::BadJson));
        let not_json = format!("{}.e30.", URL_SAFE_NO_PAD.encode("{alg"));
        assert_eq!(UntrustedJwt::parse(&not_json).err(), Some(JwtError::BadJson));
    }

    #[test]
    fn duplicate_members_are_refused_at_any_depth() {
        let dup_header = sign_raw(Algorithm::HS256, r#"{"alg":"none","alg":"HS256"}"#, "{}", SECRET);
        assert_eq!(UntrustedJwt::parse(&dup_header).err(), Some(JwtError::BadJson));
        let dup_nested = hs256(r#"{"x":{"a":1,"a":2}}"#);
        assert_eq!(UntrustedJwt::parse(&dup_nested).err(), Some(JwtError::BadJson));
    }

    #[test]
    fn crit_and_b64_headers_are_refused() {
        let crit = sign_raw(
            Algorithm::HS256,
            r#"{"alg":"HS256","crit":["exp"]}"#,
            "{}",
            SECRET,
        );
        assert_eq!(
            UntrustedJwt::parse(&crit).err(),
            Some(JwtError::UnsupportedExtension)
        );
        let b64 = sign_raw(Algorithm::HS256, r#"{"alg":"HS256","b64":false}"#, "{}", SECRET);
        assert_eq!(
            UntrustedJwt::parse(&b64).err(),
            Some(JwtError::UnsupportedExtension)
        );
    }

    #[test]
    fn oversized_and_deeply_nested_tokens_are_refused() {
        let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(UntrustedJwt::parse(&huge).err(), Some(JwtError::TooLarge));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let token = hs256(&format!(r#"{{"x":{deep}}}"#));
        assert_eq!(UntrustedJwt::parse(&token).err(), Some(JwtError::BadJson));
    }

    fn rules() -> ClaimRules {
        ClaimRules {
            clock_skew_seconds: 60,
            require_exp: true,
            ..ClaimRules::default()
        }
    }

    fn claims(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn expiry_and_not_before_allow_the_clock_skew() {
        let c = claims(r#"{"exp":1000,"nbf":500}"#);
        assert_eq!(check_claims(&c, &rules(), 1059), Ok(()));
        assert_eq!(check_claims(&c, &rules(), 1060), Err(JwtError::Expired));
        assert_eq!(check_claims(&c, &rules(), 440), Ok(()));
        assert_eq!(check_claims(&c, &rules(), 439), Err(JwtError::NotYetValid));
        let fractional = claims(r#"{"exp":1000.5}"#);
        assert_eq!(
            check_claims(
                &fractional,
                &ClaimRules {
                    require_exp: true,
                    ..Default::default()
                },
                1000
            ),
            Ok(())
        );
    }

    #[test]
    fn expiry_can_be_required() {
        let c = claims(r#"{"sub":"x"}"#);
        assert_eq!(check_claims(&c, &rules(), 0), Err(JwtError::MissingExpiry));
        assert_eq!(check_claims(&c, &ClaimRules::default(), 0), Ok(()));
    }

    #[test]
    fn registered_claims_of_the_wrong_type_are_refused() {
        for (json, name) in [
            (r#"{"exp":"1000"}"#, "exp"),
            (r#"{"exp":1e9,"nbf":true}"#, "nbf"),
            (r#"{"exp":1e9,"iat":null}"#, "iat"),
            (r#"{"exp":1e9,"iss":1}"#, "iss"),
            (r#"{"exp":1e9,"aud":[1]}"#, "aud"),
        ] {
            assert_eq!(
                check_claims(&claims(json), &rules(), 0),
                Err(JwtError::BadClaimType(name)),
                "{json}"
            );
        }
    }

    #[test]
    fn issuer_and_audience_must_match_when_configured() {
        let strict = ClaimRules {
            issuer: Some("tis".into()),
            audiences: Some(vec!["a".into(), "b".into()]),
            ..rules()
        };
        assert_eq!(
            check_claims(&claims(r#"{"exp":1e9,"iss":"tis","aud":"b"}"#), &strict, 0),
            Ok(())
        );
        assert_eq!(
            check_claims(&claims(r#"{"exp":1e9,"iss":"tis","aud":["x","a"]}"#), &strict, 0),
            Ok(())
        );
        assert_eq!(
            check_claims(&claims(r#"{"exp":1e9,"iss":"TIS","aud":"a"}"#), &strict, 0),
            Err(JwtError::WrongIssuer)
        );
        assert_eq!(
            check_claims(&claims(r#"{"exp":1e9,"aud":"a"}"#), &strict, 0),
            Err(JwtError::WrongIssuer)
        );
        assert_eq!(
            check_claims(&claims(r#"{"exp":1e9,"iss":"tis"}"#), &strict, 0),
            Err(JwtError::WrongAudience)
        );
        assert_eq!(
            check_claims(&claims(r#"{"exp":1e9,"iss":"tis","aud":[]}"#), &strict, 0),
            Err(JwtError::WrongAudience)
        );
    }

    /// `header` and `claims` (raw JSON text) signed by `keys` under `alg`.
    fn signed(keys: &TestKeys, alg: Algorithm, header: &str, claims: &str) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let signature = keys.sign(alg, input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn with_signature(token: &str, signature: &[u8]) -> String {
        let (input, _) = token.rsplit_once('.').unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn verify_with(token: &str, keys: &KeySet) -> Result<Algorithm, JwtError> {
        UntrustedJwt::parse(token)?.verify(keys, &Algorithm::ALL)
    }

    fn alg_header(alg: Algorithm) -> String {
        format!(r#"{{"alg":"{}"}}"#, alg.name())
    }

    #[test]
    fn every_algorithm_verifies_a_token_signed_by_a_configured_key() {
        let issuer = TestKeys::issuer();
        let keys = issuer.key_set();
        for alg in Algorithm::ALL {
            let token = signed(&issuer, alg, &alg_header(alg), r#"{"sub":"fred"}"#);
            assert_eq!(verify_with(&token, &keys), Ok(alg), "{alg:?}");
            assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
        }
    }

    /// A host that records what it was asked and answers `answer`.
    struct RecordingHost {
        answer: Option<bool>,
        asked: std::cell::RefCell<Vec<Hash>>,
    }

    impl SignatureHost for RecordingHost {
        fn verify(&self, hash: Hash, spki_der: &[u8], _: &[u8], signature: &[u8]) -> Option<bool> {
            assert_eq!(spki_der.first(), Some(&0x30), "SubjectPublicKeyInfo");
            // RSA: the modulus' length; ECDSA: a DER SEQUENCE, not R || S.
            assert!(signature.len() == 256 || signature.first() == Some(&0x30));
            self.asked.borrow_mut().push(hash);
            self.answer
        }
    }

    fn host(answer: Option<bool>) -> RecordingHost {
        RecordingHost {
            answer,
            asked: Default::default(),
        }
    }

    fn flipped(token: &str, byte: usize) -> String {
        let mut signature = URL_SAFE_NO_PAD.decode(token.rsplit_once('.').unwrap().1).unwrap();
        signature[byte] ^= 1;
        with_signature(token, &signature)
    }

    #[test]
    fn the_host_checks_pkcs1_and_ecdsa_signatures_and_only_after_every_other_check() {
        let issuer = TestKeys::issuer();
        let keys = issuer.key_set();
        let verify = |token: &str, host: &RecordingHost| {
            UntrustedJwt::parse(token)?.verify_with(&keys, &Algorithm::ALL, host)
        };
        // The host's answer is the answer for these (whatever the module would say).
        let hashes = [
            (Algorithm::RS256, Hash::Sha256),
            (Algorithm::RS384, Hash::Sha384),
            (Algorithm::RS512, Hash::Sha512),
            (Algorithm::ES256, Hash::Sha256),
            (Algorithm::ES384, Hash::Sha384),
            (Algorithm::ES512, Hash::Sha512),
        ];
        for (alg, hash) in hashes {
            let token = signed(&issuer, alg, &alg_header(alg), "{}");
            let (yes, no) = (host(Some(true)), host(Some(false)));
            assert_eq!(verify(&token, &yes), Ok(alg));
            assert_eq!(verify(&token, &no), Err(JwtError::BadSignature));
            assert_eq!(
                (yes.asked.into_inner(), no.asked.into_inner()),
                (vec![hash], vec![hash])
            );
            // A host that cannot tell leaves the module to check: good passes, tampered fails.
            let unsure = host(None);
            assert_eq!(verify(&token, &unsure), Ok(alg), "{alg:?}");
            assert_eq!(
                verify(&flipped(&token, 10), &unsure),
                Err(JwtError::BadSignature),
                "{alg:?}"
            );
        }
        // Never asked: other algorithms, a signature of the wrong length, `none`, an unknown kid.
        let yes = host(Some(true));
        let asked_never = [
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
            Algorithm::EdDSA,
            Algorithm::HS256,
        ];
        for alg in asked_never {
            let token = signed(&issuer, alg, &alg_header(alg), "{}");
            assert_eq!(
                verify(&flipped(&token, 10), &yes),
                Err(JwtError::BadSignature),
                "{alg:?}"
            );
        }
        let rs256 = signed(&issuer, Algorithm::RS256, &alg_header(Algorithm::RS256), "{}");
        let es256 = signed(&issuer, Algorithm::ES256, &alg_header(Algorithm::ES256), "{}");
        let none = signed(&issuer, Algorithm::RS256, r#"{"alg":"none"}"#, "{}");
        let none = format!("{}.", none.rsplit_once('.').unwrap().0);
        let unknown_kid = signed(
            &issuer,
            Algorithm::RS256,
            r#"{"alg":"RS256","kid":"nobody"}"#,
            "{}",
        );
        for token in [
            with_signature(&rs256, &[7; 255]),
            with_signature(&es256, &[7; 65]),
            none,
            unknown_kid,
        ] {
            assert!(verify(&token, &yes).is_err(), "{token}");
        }
        assert_eq!(yes.asked.into_inner(), vec![]);
    }

    #[test]
    fn a_token_signed_by_another_key_has_a_bad_signature_for_every_algorithm() {
        let keys = TestKeys::issuer().key_set();
        let attacker = TestKeys::attacker();
        for alg in Algorithm::ALL
            .into_iter()
            .filter(|alg| alg.key_kind() != KeyKind::Rsa)
        {
            let token = signed(&attacker, alg, &alg_header(alg), "{}");
            assert_eq!(verify_with(&token, &keys), Err(JwtError::BadSignature), "{alg:?}");
        }
    }

    #[test]
    fn only_algorithms_the_caller_allows_are_verified() {
        let issuer = TestKeys::issuer();
        let token = signed(&issuer, Algorithm::ES256, &alg_header(Algorithm::ES256), "{}");
        let jwt = UntrustedJwt::parse(&token).unwrap();
        assert_eq!(
            jwt.verify(&issuer.key_set(), &[Algorithm::RS256, Algorithm::HS256]),
            Err(JwtError::AlgorithmNotAllowed)
        );
    }

    #[test]
    fn alg_none_in_any_spelling_is_refused_even_with_every_algorithm_allowed() {
        let issuer = TestKeys::issuer();
        for alg in ["none", "None", "NONE", "nOnE", "none ", "es256", "HS256\u{0}"] {
            let header = json!({ "alg": alg }).to_string();
            let unsigned = format!("{}.e30.", URL_SAFE_NO_PAD.encode(&header));
            let hmac = signed(&issuer, Algorithm::HS256, &header, "{}");
            for token in [unsigned, hmac] {
                assert_eq!(
                    verify_with(&token, &issuer.key_set()),
                    Err(JwtError::AlgorithmNotAllowed),
                    "{alg:?}"
                );
            }
        }
    }

    #[test]
    fn rsa_and_ec_public_keys_are_never_used_as_hmac_secrets() {
        // The classic confusion: the attacker HMAC-signs with the verifier's public key bytes.
        for pem in [rsa_public_pem(), p256_public_pem()] {
            let from_pem = KeySet::from_pem(&pem).unwrap();
            for secret in [pem.as_bytes(), pem.trim_end().as_bytes()] {
                for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
                    let token = sign_raw(alg, &alg_header(alg), "{}", secret);
                    assert_eq!(verify_with(&token, &from_pem), Err(JwtError::NoMatchingKey));
                }
            }
        }
        let issuer = TestKeys::issuer();
        for alg in [
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
        ] {
            let jwk = issuer.jwk(alg, "k");
            let jwks = serde_json::to_vec(&json!({ "keys": [jwk] })).unwrap();
            let keys = KeySet::from_jwks_with(&jwks, SymmetricKeys::Allow).unwrap();
            for secret in [jwk.to_string().into_bytes(), jwks.clone()] {
                let token = sign_raw(Algorithm::HS256, r#"{"alg":"HS256","kid":"k"}"#, "{}", &secret);
                assert_eq!(
                    verify_with(&token, &keys),
                    Err(JwtError::NoMatchingKey),
                    "{alg:?}"
                );
            }
        }
    }

    fn local_set(keys: Value) -> KeySet {
        let jwks = serde_json::to_vec(&json!({ "keys": keys })).unwrap();
        KeySet::from_jwks_with(&jwks, SymmetricKeys::Allow).unwrap()
    }

    #[test]
    fn an_oct_key_bound_to_hs256_refuses_other_hs_sizes_and_every_public_key_algorithm() {
        let issuer = TestKeys::issuer();
        let keys = local_set(json!([issuer.jwk(Algorithm::HS256, "h")]));
        let hs256 = signed(&issuer, Algorithm::HS256, &alg_header(Algorithm::HS256), "{}");
        assert_eq!(verify_with(&hs256, &keys), Ok(Algorithm::HS256));
        // The same secret under HS384/HS512, and every asymmetric algorithm with the key's kid.
        for alg in Algorithm::ALL.into_iter().filter(|alg| *alg != Algorithm::HS256) {
            for header in [
                alg_header(alg),
                json!({"alg": alg.name(), "kid": "h"}).to_string(),
            ] {
                let token = signed(&issuer, alg, &header, "{}");
                assert_eq!(
                    verify_with(&token, &keys),
                    Err(JwtError::NoMatchingKey),
                    "{alg:?}"
                );
            }
        }
    }

    #[test]
    fn an_rsa_key_bound_to_rs256_refuses_hs256_even_beside_an_oct_key() {
        let issuer = TestKeys::issuer();
        let mut rsa = issuer.jwk(Algorithm::RS256, "r");
        rsa["alg"] = json!("RS256");
        let keys = local_set(json!([rsa.clone(), issuer.jwk(Algorithm::HS256, "h")]));
        let rs256 = signed(&issuer, Algorithm::RS256, r#"{"alg":"RS256","kid":"r"}"#, "{}");
        assert_eq!(verify_with(&rs256, &keys), Ok(Algorithm::RS256));
        // The RSA key's bytes (modulus, JWK text, PEM) as an HMAC secret, with and without
        // its kid: with it, no key fits; without, only the oct key is tried, and fails.
        let modulus = URL_SAFE_NO_PAD.decode(rsa["n"].as_str().unwrap()).unwrap();
        for secret in [
            modulus,
            rsa.to_string().into_bytes(),
            rsa_public_pem().into_bytes(),
        ] {
            let with_kid = sign_raw(Algorithm::HS256, r#"{"alg":"HS256","kid":"r"}"#, "{}", &secret);
            assert_eq!(verify_with(&with_kid, &keys), Err(JwtError::NoMatchingKey));
            let without = sign_raw(Algorithm::HS256, r#"{"alg":"HS256"}"#, "{}", &secret);
            assert_eq!(verify_with(&without, &keys), Err(JwtError::BadSignature));
        }
    }

    #[test]
    fn ed25519_is_eddsa_under_its_fully_specified_name_and_only_with_an_ed25519_key() {
        let issuer = TestKeys::issuer();
        let ed = |header: &str| signed(&issuer, Algorithm::Ed25519, header, "{}");
        let (named, polymorphic) = (ed(r#"{"alg":"Ed25519"}"#), ed(r#"{"alg":"EdDSA"}"#));
        // An OKP key without `alg` checks both names; one bound to a name checks that one.
        let unbound = local_set(json!([issuer.jwk(Algorithm::EdDSA, "ed")]));
        assert_eq!(verify_with(&named, &unbound), Ok(Algorithm::Ed25519));
        assert_eq!(verify_with(&polymorphic, &unbound), Ok(Algorithm::EdDSA));
        for (bound, accepted, refused) in [("Ed25519", &named, &polymorphic), ("EdDSA", &polymorphic, &named)]
        {
            let mut jwk = issuer.jwk(Algorithm::EdDSA, "ed");
            jwk["alg"] = json!(bound);
            let keys = local_set(json!([jwk]));
            assert!(verify_with(accepted, &keys).is_ok(), "{bound}");
            assert_eq!(
                verify_with(refused, &keys),
                Err(JwtError::NoMatchingKey),
                "{bound}"
            );
        }
        // No other key type checks it, and a tampered or foreign signature fails.
        let others = local_set(json!([
            issuer.jwk(Algorithm::RS256, "r"),
            issuer.jwk(Algorithm::ES256, "e"),
            issuer.jwk(Algorithm::HS256, "h"),
        ]));
        assert_eq!(verify_with(&named, &others), Err(JwtError::NoMatchingKey));
        assert_eq!(
            verify_with(&flipped(&named, 10), &unbound),
            Err(JwtError::BadSignature)
        );
        let foreign = signed(
            &TestKeys::attacker(),
            Algorithm::Ed25519,
            r#"{"alg":"Ed25519"}"#,
            "{}",
        );
        assert_eq!(verify_with(&foreign, &unbound), Err(JwtError::BadSignature));
        // Ed448 is not an algorithm here, whatever the key.
        let ed448 = ed(r#"{"alg":"Ed448"}"#);
        assert_eq!(verify_with(&ed448, &unbound), Err(JwtError::AlgorithmNotAllowed));
        assert_eq!(Algorithm::from_name("Ed448"), None);
    }

    /// RFC 7515 appendix A.1: the HS256 example, its 64-byte binary key as a JWK `k`.
    pub const RFC7515_A1_KEY: &str =
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
    /// Header `{"typ":"JWT",\r\n "alg":"HS256"}`; claims
    /// `{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}`.
    pub const RFC7515_A1_TOKEN: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    #[test]
    fn the_rfc_7515_a1_example_verifies_with_its_binary_key_before_its_exp() {
        let secret = URL_SAFE_NO_PAD.decode(RFC7515_A1_KEY).unwrap();
        assert_eq!(secret.len(), 64);
        assert!(String::from_utf8(secret.clone()).is_err(), "a binary key");
        let jwt = UntrustedJwt::parse(RFC7515_A1_TOKEN).unwrap();
        let keys = [
            KeySet::from_hmac_secret(secret).unwrap(),
            local_set(json!([{"kty": "oct", "alg": "HS256", "k": RFC7515_A1_KEY}])),
        ];
        for keys in &keys {
            assert_eq!(jwt.verify(keys, &Algorithm::ALL), Ok(Algorithm::HS256));
        }
        let exact = ClaimRules::default();
        assert_eq!(check_claims(jwt.claims(), &exact, 1_300_819_379), Ok(()));
        assert_eq!(
            check_claims(jwt.claims(), &exact, 1_300_819_380),
            Err(JwtError::Expired)
        );
        let tampered = flipped(RFC7515_A1_TOKEN, 3);
        assert_eq!(verify_with(&tampered, &keys[0]), Err(JwtError::BadSignature));
    }

    #[test]
    fn ecdsa_signatures_with_r_and_s_zero_or_equal_to_the_group_order_are_refused() {
        const P256_ORDER: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
        const P384_ORDER: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";
        const P521_ORDER: &str = "01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409";
        let issuer = TestKeys::issuer();
        let keys = issuer.key_set();
        for (alg, order) in [
            (Algorithm::ES256, P256_ORDER),
            (Algorithm::ES384, P384_ORDER),
            (Algorithm::ES512, P521_ORDER),
        ] {
            let n = hex(order);
            let token = signed(&issuer, alg, &alg_header(alg), "{}");
            let zeros = vec![0; 2 * n.len()];
            let one_and_zero = [vec![0; n.len() - 1], vec![1], vec![0; n.len()]].concat();
            let order_twice = [n.clone(), n.clone()].concat();
            let all_ones = vec![0xff; 2 * n.len()];
            for signature in [zeros, one_and_zero, order_twice, all_ones] {
                assert_eq!(
                    verify_with(&with_signature(&token, &signature), &keys),
                    Err(JwtError::BadSignature),
                    "{alg:?}"
                );
            }
        }
    }

    #[test]
    fn signatures_of_any_wrong_length_are_bad_signatures_not_panics() {
        let issuer = TestKeys::issuer();
        let keys = issuer.key_set();
        for alg in Algorithm::ALL {
            let token = signed(&issuer, alg, &alg_header(alg), "{}");
            let good = URL_SAFE_NO_PAD.decode(token.rsplit_once('.').unwrap().1).unwrap();
            let mut lengths = vec![0, 1, good.len() - 1, good.len() + 1, 2 * good.len(), 1024];
            lengths.extend([32, 48, 64, 66, 96, 132, 256].map(|len| len + 1));
            for len in lengths {
                let mut signature = good.clone();
                signature.resize(len, 0);
                assert_eq!(
                    verify_with(&with_signature(&token, &signature), &keys),
                    Err(JwtError::BadSignature),
                    "{alg:?} {len}"
                );
            }
        }
    }

    #[test]
    fn keys_named_in_the_header_are_ignored() {
        let attacker = TestKeys::attacker();
        let issuer = TestKeys::issuer();
        for alg in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::HS256] {
            let header = json!({
                "alg": alg.name(),
                "jwk": attacker.jwk(alg, "evil"),
                "jku": "https://attacker.example/jwks.json",
                "x5u": "https://attacker.example/cert.pem",
                "x5c": ["MIIBszCCAVmgAwIBAgIUTEST"],
            })
            .to_string();
            let forged = signed(&attacker, alg, &header, r#"{"sub":"admin"}"#);
            assert_eq!(
                verify_with(&forged, &issuer.key_set()),
                Err(JwtError::BadSignature),
                "{alg:?}"
            );
            // The same header on a token the issuer signed changes nothing either.
            let genuine = signed(&issuer, alg, &header, r#"{"sub":"admin"}"#);
            assert_eq!(verify_with(&genuine, &issuer.key_set()), Ok(alg), "{alg:?}");
        }
    }

    #[test]
    fn a_kid_selects_only_keys_with_exactly_that_kid() {
        // The test set's kids are the key kinds: "Rsa", "P256", "P384", "P521", "Ed25519", "Hmac".
        let issuer = TestKeys::issuer();
        let keys = issuer.key_set();
        let with_kid = |kid: &str| {
            let header = json!({"alg": "ES256", "kid": kid}).to_string();
            verify_with(&signed(&issuer, Algorithm::ES256, &header, "{}"), &keys)
        };
        assert_eq!(with_kid("P256"), Ok(Algorithm::ES256));
        for other in ["p256", "P256 ", "P384", "Rsa", "Hmac"] {
            assert_eq!(with_kid(other), Err(JwtError::NoMatchingKey), "{other}");
        }
        let token = signed(&issuer, Algorithm::ES256, &alg_header(Algorithm::ES256), "{}");
        assert_eq!(UntrustedJwt::parse(&token).unwrap().kid(), None);
    }

    #[test]
    fn kid_injection_just_finds_no_key() {
        let issuer = TestKeys::issuer();
        let keys = issuer.key_set();
        for kid in [
            "../../dev/null",
            "' OR 1=1 --",
            "P256\u{0}",
            "\u{0}",
            "",
            "*",
            "P256/../P256",
        ] {
            let header = json!({"alg": "ES256", "kid": kid}).to_string();
            let token = signed(&issuer, Algorithm::ES256, &header, "{}");
            let jwt = UntrustedJwt::parse(&token).unwrap();
            assert_eq!(jwt.kid(), Some(kid));
            assert_eq!(
                jwt.verify(&keys, &Algorithm::ALL),
                Err(JwtError::NoMatchingKey),
                "{kid:?}"
            );
        }
    }

    #[test]
    fn a_kid_that_is_not_a_string_is_refused() {
        for kid in [json!(7), json!(null), json!(["P256"]), json!({})] {
            let header = json!({"alg": "HS256", "kid": kid}).to_string();
            let token = sign_raw(Algorithm::HS256, &header, "{}", SECRET);
            assert_eq!(
                UntrustedJwt::parse(&token).err(),
                Some(JwtError::BadKeyId),
                "{kid}"
            );
        }
    }

    #[test]
    fn a_jwk_alg_limits_its_key_to_that_algorithm() {
        let issuer = TestKeys::issuer();
        let mut jwk = issuer.jwk(Algorithm::RS256, "r");
        jwk["alg"] = json!("RS256");
        let keys = KeySet::from_jwks(&serde_json::to_vec(&json!({ "keys": [jwk] })).unwrap()).unwrap();
        let rs256 = signed(&issuer, Algorithm::RS256, &alg_header(Algorithm::RS256), "{}");
        assert_eq!(verify_with(&rs256, &keys), Ok(Algorithm::RS256));
        for alg in [Algorithm::RS512, Algorithm::PS256] {
            let token = signed(&issuer, alg, &alg_header(alg), "{}");
            assert_eq!(
                verify_with(&token, &keys),
                Err(JwtError::NoMatchingKey),
                "{alg:?}"
            );
        }
    }

    #[test]
    fn a_key_of_another_curve_is_no_candidate() {
        let issuer = TestKeys::issuer();
        let jwks = json!({ "keys": [issuer.jwk(Algorithm::ES384, "k")] });
        let keys = KeySet::from_jwks(&serde_json::to_vec(&jwks).unwrap()).unwrap();
        for alg in [Algorithm::ES256, Algorithm::ES512] {
            let token = signed(&issuer, alg, &alg_header(alg), "{}");
            assert_eq!(
                verify_with(&token, &keys),
                Err(JwtError::NoMatchingKey),
                "{alg:?}"
            );
        }
    }
}
