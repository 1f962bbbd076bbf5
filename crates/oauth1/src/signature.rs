//! The signature of a request (RFC 5849 section 3.4): RSA-SHA1 (section 3.4.3,
//! RSASSA-PKCS1-v1_5 with SHA-1 over the base string) with the consumer's registered public
//! key, which is what Jira's application links use. HMAC-SHA1 (3.4.2) and PLAINTEXT (3.4.4)
//! are recognised, so a client that tries them is told `signature_method_rejected`, and are
//! checked only where the caller lists them as accepted.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use rsa::pkcs1::DecodeRsaPublicKey as _;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::{DecodePublicKey as _, EncodePublicKey as _};
use rsa::signature::Verifier as _;
use rsa::traits::PublicKeyParts as _;
use rsa::RsaPublicKey;
use sha1::Sha1;
use subtle::ConstantTimeEq as _;

use crate::encode::encode;
use crate::problem::Problem;

/// `oauth_signature_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureMethod {
    RsaSha1,
    HmacSha1,
    Plaintext,
}

impl SignatureMethod {
    /// The method a name stands for (exact, as section 3.4 spells them).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "RSA-SHA1" => Some(Self::RsaSha1),
            "HMAC-SHA1" => Some(Self::HmacSha1),
            "PLAINTEXT" => Some(Self::Plaintext),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::RsaSha1 => "RSA-SHA1",
            Self::HmacSha1 => "HMAC-SHA1",
            Self::Plaintext => "PLAINTEXT",
        }
    }
}

/// The smallest consumer key accepted unless configured otherwise (bits). Jira's own
/// tutorial makes 1024-bit keys; a configuration should warn below [`WEAK_BELOW_BITS`].
pub const DEFAULT_MIN_BITS: usize = 1024;

/// Keys smaller than this (bits) deserve a warning at start.
pub const WEAK_BELOW_BITS: usize = 2048;

/// Why a consumer's public key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// Not PEM, or a PEM label other than `PUBLIC KEY`, `RSA PUBLIC KEY` and `CERTIFICATE`.
    NotPem,
    /// PEM whose content is not an RSA public key (or a certificate that does not hold one).
    NotRsa,
    /// Smaller than the configured minimum.
    TooSmall { bits: usize, min_bits: usize },
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotPem => f.write_str("not a PEM public key (PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)"),
            Self::NotRsa => f.write_str("not an RSA public key"),
            Self::TooSmall { bits, min_bits } => {
                write!(f, "an RSA key of {bits} bits, under the minimum of {min_bits}")
            }
        }
    }
}

/// A consumer's registered RSA public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerKey {
    key: RsaPublicKey,
    spki_der: Vec<u8>,
}

impl ConsumerKey {
    /// Reads a PEM public key: SubjectPublicKeyInfo (`PUBLIC KEY`, what `openssl x509
    /// -pubkey` prints in Jira's tutorial), PKCS#1 (`RSA PUBLIC KEY`), or the key of an
    /// X.509 `CERTIFICATE`. Refused under `min_bits`.
    pub fn from_pem(pem: &str, min_bits: usize) -> Result<Self, KeyError> {
        let (label, der) = pem_rfc7468::decode_vec(pem.trim().as_bytes()).map_err(|_| KeyError::NotPem)?;
        let key = match label {
            "PUBLIC KEY" => RsaPublicKey::from_public_key_der(&der),
            "RSA PUBLIC KEY" => RsaPublicKey::from_pkcs1_der(&der).map_err(Into::into),
            "CERTIFICATE" => {
                let spki = certificate_spki(&der).ok_or(KeyError::NotRsa)?;
                RsaPublicKey::from_public_key_der(spki)
            }
            _ => return Err(KeyError::NotPem),
        }
        .map_err(|_| KeyError::NotRsa)?;
        let bits = key.n().bits();
        if bits < min_bits {
            return Err(KeyError::TooSmall { bits, min_bits });
        }
        let spki_der = key.to_public_key_der().map_err(|_| KeyError::NotRsa)?.into_vec();
        Ok(Self { key, spki_der })
    }

    /// The modulus's size in bits.
    pub fn bits(&self) -> usize {
        self.key.n().bits()
    }

    /// The key as SubjectPublicKeyInfo DER, the form Envoy's `verify_signature` reads.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }
}

/// The SubjectPublicKeyInfo inside an X.509 certificate (RFC 5280 section 4.1):
/// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
/// signature, issuer, validity, subject, subjectPublicKeyInfo, ... }, ... }`. Nothing else
/// of the certificate is read or checked: the operator registers the key, not a trust chain.
fn certificate_spki(der: &[u8]) -> Option<&[u8]> {
    let (certificate, _) = tlv(der, 0x30)?;
    let (tbs, _) = tlv(content(certificate)?, 0x30)?;
    let mut rest = content(tbs)?;
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest, 0xa0)?.1;
    }
    for tag in [0x02, 0x30, 0x30, 0x30, 0x30] {
        rest = tlv(rest, tag)?.1;
    }
    Some(tlv(rest, 0x30)?.0)
}

/// The first DER element of `input` if its tag is `tag`: (the whole element, what follows).
fn tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let (len, header) = match len {
        0..=0x7f => (usize::from(len), 2),
        0x81..=0x84 => {
            let count = usize::from(len & 0x7f);
            let digits = rest.get(..count)?;
            let len = digits.iter().fold(0_usize, |acc, &d| acc << 8 | usize::from(d));
            (len, 2 + count)
        }
        _ => return None,
    };
    if first != tag {
        return None;
    }
    let end = header.checked_add(len)?;
    Some((input.get(..end)?, input.get(end..)?))
}

/// The content of a DER element that [`tlv`] returned.
fn content(element: &[u8]) -> Option<&[u8]> {
    let len = *element.get(1)?;
    let header = match len {
        0..=0x7f => 2,
        _ => 2 + usize::from(len & 0x7f),
    };
    element.get(header..)
}

/// What a request's signature is checked against.
#[derive(Debug, Clone, Copy)]
pub enum Credentials<'a> {
    /// RSA-SHA1: the consumer's public key.
    Rsa(&'a ConsumerKey),
    /// HMAC-SHA1 and PLAINTEXT: the consumer's and the token's shared secrets (the token's
    /// empty when there is none).
    Shared {
        consumer_secret: &'a str,
        token_secret: &'a str,
    },
}

/// Why a signature is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// The method is not among those accepted, or the credentials are not for it.
    MethodRejected,
    /// The signature is not base64 of the right length, or does not verify.
    Invalid,
}

impl SignatureError {
    pub fn problem(self) -> Problem {
        match self {
            Self::MethodRejected => Problem::SignatureMethodRejected,
            Self::Invalid => Problem::SignatureInvalid,
        }
    }
}

/// Checks `signature` (as sent, decoded from the header) of `base_string` by `method`, which
/// must be in `accepted`.
pub fn verify(
    method: SignatureMethod,
    signature: &str,
    base_string: &str,
    accepted: &[SignatureMethod],
    credentials: Credentials<'_>,
) -> Result<(), SignatureError> {
    verify_with_host(
        method,
        signature,
        base_string,
        accepted,
        credentials,
        &|_, _, _| None,
    )
}

/// A host that checks RSASSA-PKCS1-v1_5 with SHA-1 for the module (Envoy's
/// `verify_signature` with `sha1`, once its start-up self-test of SHA-1 passed, and for a key
/// under 2048 bits only if its 1024-bit vector passed too: the filter's worker decides): given
/// the key as SubjectPublicKeyInfo DER, the base string and the signature's octets, whether it
/// is good, or `None` when it cannot tell and the module checks itself.
pub type RsaSha1Host<'a> = &'a dyn Fn(&[u8], &[u8], &[u8]) -> Option<bool>;

/// [`verify`], an RSA-SHA1 signature checked by `host` where it answers. The module still
/// decides the method, the key and the signature's length; the host only does the
/// arithmetic.
pub fn verify_with_host(
    method: SignatureMethod,
    signature: &str,
    base_string: &str,
    accepted: &[SignatureMethod],
    credentials: Credentials<'_>,
    host: RsaSha1Host<'_>,
) -> Result<(), SignatureError> {
    if !accepted.contains(&method) {
        return Err(SignatureError::MethodRejected);
    }
    let good = match (method, credentials) {
        (SignatureMethod::RsaSha1, Credentials::Rsa(key)) => {
            let bytes = rsa_signature_bytes(key, signature).ok_or(SignatureError::Invalid)?;
            match host(key.spki_der(), base_string.as_bytes(), &bytes) {
                Some(answer) => answer,
                None => {
                    let signature =
                        Signature::try_from(bytes.as_slice()).map_err(|_| SignatureError::Invalid)?;
                    VerifyingKey::<Sha1>::new(key.key.clone())
                        .verify(base_string.as_bytes(), &signature)
                        .is_ok()
                }
            }
        }
        (
            SignatureMethod::HmacSha1,
            Credentials::Shared {
                consumer_secret,
                token_secret,
            },
        ) => {
            let bytes = STANDARD.decode(signature).map_err(|_| SignatureError::Invalid)?;
            let key = shared_key(consumer_secret, token_secret);
            let mut mac =
                Hmac::<Sha1>::new_from_slice(key.as_bytes()).map_err(|_| SignatureError::Invalid)?;
            mac.update(base_string.as_bytes());
            // Constant time: `verify_slice` compares with `subtle`.
            mac.verify_slice(&bytes).is_ok()
        }
        (
            SignatureMethod::Plaintext,
            Credentials::Shared {
                consumer_secret,
                token_secret,
            },
        ) => {
            let expected = shared_key(consumer_secret, token_secret);
            bool::from(expected.as_bytes().ct_eq(signature.as_bytes()))
        }
        _ => return Err(SignatureError::MethodRejected),
    };
    good.then_some(()).ok_or(SignatureError::Invalid)
}

/// An RSA-SHA1 signature's octets: base64 (section 3.4.3.1: RFC 2045 section 6.8, padded),
/// exactly the key's size. `None` otherwise. What Envoy's `verify_signature` is handed, with
/// [`ConsumerKey::spki_der`] and the base string, `sha1`.
pub fn rsa_signature_bytes(key: &ConsumerKey, signature: &str) -> Option<Vec<u8>> {
    let bytes = STANDARD.decode(signature).ok()?;
    (bytes.len() == key.key.size()).then_some(bytes)
}

/// Section 3.4.2 and 3.4.4: the encoded consumer secret, `&`, the encoded token secret.
fn shared_key(consumer_secret: &str, token_secret: &str) -> String {
    format!(
        "{}&{}",
        encode(consumer_secret.as_bytes()),
        encode(token_secret.as_bytes())
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rsa::pkcs1v15::SigningKey;
    use rsa::pkcs8::LineEnding;
    use rsa::signature::{SignatureEncoding as _, Signer as _};
    use rsa::RsaPrivateKey;
    use std::sync::OnceLock;

    /// One 1024-bit key pair for the crate's tests (the size Jira's tutorial makes).
    pub(crate) fn key_pair() -> &'static (RsaPrivateKey, String) {
        static PAIR: OnceLock<(RsaPrivateKey, String)> = OnceLock::new();
        PAIR.get_or_init(|| {
            let private = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
            let pem = private.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
            (private, pem)
        })
    }

    pub(crate) fn sign(base_string: &str) -> String {
        let signing = SigningKey::<Sha1>::new(key_pair().0.clone());
        STANDARD.encode(signing.sign(base_string.as_bytes()).to_bytes())
    }

    const RSA: &[SignatureMethod] = &[SignatureMethod::RsaSha1];

    #[test]
    fn an_rsa_sha1_signature_by_the_consumer_verifies_and_any_change_is_refused() {
        let key = ConsumerKey::from_pem(&key_pair().1, DEFAULT_MIN_BITS).unwrap();
        assert_eq!(key.bits(), 1024);
        let signature = sign("GET&base");
        let check = |signature: &str, base: &str| {
            verify(
                SignatureMethod::RsaSha1,
                signature,
                base,
                RSA,
                Credentials::Rsa(&key),
            )
        };
        assert_eq!(check(&signature, "GET&base"), Ok(()));
        assert_eq!(check(&signature, "GET&basf"), Err(SignatureError::Invalid));
        let mut bytes = STANDARD.decode(&signature).unwrap();
        bytes[10] ^= 1;
        assert_eq!(
            check(&STANDARD.encode(&bytes), "GET&base"),
            Err(SignatureError::Invalid)
        );
        for broken in ["", "not base64!", "AAAA", &signature[4..]] {
            assert_eq!(
                check(broken, "GET&base"),
                Err(SignatureError::Invalid),
                "{broken}"
            );
        }
    }

    #[test]
    fn a_host_that_answers_decides_and_one_that_cannot_leaves_it_to_the_module() {
        use std::cell::RefCell;
        let key = ConsumerKey::from_pem(&key_pair().1, DEFAULT_MIN_BITS).unwrap();
        let good = sign("GET&base");
        let asked = RefCell::new(vec![]);
        let host = |answer: Option<bool>| {
            let asked = &asked;
            move |spki: &[u8], input: &[u8], signature: &[u8]| {
                asked
                    .borrow_mut()
                    .push((spki.to_vec(), input.to_vec(), signature.to_vec()));
                answer
            }
        };
        let check = |signature: &str, base: &str, answer: Option<bool>| {
            verify_with_host(
                SignatureMethod::RsaSha1,
                signature,
                base,
                RSA,
                Credentials::Rsa(&key),
                &host(answer),
            )
        };
        assert_eq!(check(&good, "GET&base", Some(true)), Ok(()));
        assert_eq!(
            asked.borrow()[0],
            (
                key.spki_der().to_vec(),
                b"GET&base".to_vec(),
                STANDARD.decode(&good).unwrap()
            )
        );
        assert_eq!(
            check(&good, "GET&base", Some(false)),
            Err(SignatureError::Invalid)
        );
        // No answer: the module checks, right both ways.
        assert_eq!(check(&good, "GET&base", None), Ok(()));
        assert_eq!(check(&good, "GET&other", None), Err(SignatureError::Invalid));
        // A signature of the wrong length never reaches the host.
        asked.borrow_mut().clear();
        assert_eq!(
            check("AAAA", "GET&base", Some(true)),
            Err(SignatureError::Invalid)
        );
        assert!(asked.borrow().is_empty());
    }

    #[test]
    fn methods_not_accepted_are_rejected_before_anything_is_checked() {
        let key = ConsumerKey::from_pem(&key_pair().1, DEFAULT_MIN_BITS).unwrap();
        let shared = Credentials::Shared {
            consumer_secret: "kd94hf93k423kf44",
            token_secret: "pfkkdhi9sl3r4s00",
        };
        let plaintext = "kd94hf93k423kf44&pfkkdhi9sl3r4s00";
        assert_eq!(
            verify(SignatureMethod::Plaintext, plaintext, "", RSA, shared),
            Err(SignatureError::MethodRejected)
        );
        assert_eq!(
            verify(SignatureMethod::HmacSha1, "x", "", RSA, Credentials::Rsa(&key)),
            Err(SignatureError::MethodRejected)
        );
        // RSA-SHA1 with shared secrets, or the other way round: the wrong credentials.
        let all = [
            SignatureMethod::RsaSha1,
            SignatureMethod::HmacSha1,
            SignatureMethod::Plaintext,
        ];
        assert_eq!(
            verify(SignatureMethod::RsaSha1, "x", "", &all, shared),
            Err(SignatureError::MethodRejected)
        );
        assert_eq!(
            verify(
                SignatureMethod::Plaintext,
                plaintext,
                "",
                &all,
                Credentials::Rsa(&key)
            ),
            Err(SignatureError::MethodRejected)
        );
        assert_eq!(
            verify(SignatureMethod::Plaintext, plaintext, "", &all, shared),
            Ok(())
        );
        assert_eq!(
            verify(SignatureMethod::Plaintext, "kd94hf93k423kf44&", "", &all, shared),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn hmac_sha1_checks_the_rfc_5849_photos_example_when_accepted() {
        // RFC 5849 section 3.4.1.1's request, whose signature section 3.4.2 computes with the
        // consumer secret "j49sk3j29djd" and the token secret "dh893hdasih9".
        let base = "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7";
        let shared = Credentials::Shared {
            consumer_secret: "j49sk3j29djd",
            token_secret: "dh893hdasih9",
        };
        let hmac = [SignatureMethod::HmacSha1];
        assert_eq!(
            verify(
                SignatureMethod::HmacSha1,
                "r6/TJjbCOr97/+UU0NsvSne7s5g=",
                base,
                &hmac,
                shared
            ),
            Ok(())
        );
        assert_eq!(
            verify(
                SignatureMethod::HmacSha1,
                "r6/TJjbCOr97/+UU0NsvSne7s5h=",
                base,
                &hmac,
                shared
            ),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn keys_are_read_from_spki_pkcs1_and_certificates_and_small_ones_refused() {
        use rsa::pkcs1::EncodeRsaPublicKey as _;
        let (private, spki_pem) = key_pair();
        let key = ConsumerKey::from_pem(spki_pem, 1024).unwrap();
        let pkcs1 = private.to_public_key().to_pkcs1_pem(LineEnding::LF).unwrap();
        assert_eq!(ConsumerKey::from_pem(&pkcs1, 1024), Ok(key.clone()));
        assert_eq!(
            ConsumerKey::from_pem(spki_pem, 2048),
            Err(KeyError::TooSmall {
                bits: 1024,
                min_bits: 2048
            })
        );
        assert_eq!(ConsumerKey::from_pem("hello", 1024), Err(KeyError::NotPem));
        let other_label = spki_pem.replace("PUBLIC KEY", "PRIVATE KEY");
        assert_eq!(ConsumerKey::from_pem(&other_label, 1024), Err(KeyError::NotPem));
        let not_rsa = "-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n";
        assert_eq!(ConsumerKey::from_pem(not_rsa, 1024), Err(KeyError::NotRsa));
        // `openssl req -x509 -newkey rsa:1024` as in Jira's tutorial, then its key.
        let certificate = include_str!("testdata/certificate.pem");
        let from_certificate = ConsumerKey::from_pem(certificate, 1024).unwrap();
        let public = include_str!("testdata/certificate_public_key.pem");
        assert_eq!(Ok(from_certificate), ConsumerKey::from_pem(public, 1024));
        assert_eq!(
            key.spki_der(),
            private.to_public_key().to_public_key_der().unwrap().as_bytes()
        );
    }

    #[test]
    fn certificates_that_are_cut_short_are_refused_without_panicking() {
        let certificate = include_str!("testdata/certificate.pem");
        let (_, der) = pem_rfc7468::decode_vec(certificate.as_bytes()).unwrap();
        for len in 0..der.len() {
            assert_eq!(certificate_spki(&der[..len]).map(|_| ()), None, "{len}");
        }
        assert!(certificate_spki(&der).is_some());
    }
}
