//! Signature checks the host does for the module. Envoy (1.40 here) offers BoringSSL's
//! `EVP_DigestVerify` to Wasm modules as the foreign function `verify_signature`, whose
//! arguments and answer are the protobuf messages `VerifySignatureArguments` and
//! `VerifySignatureResult` (envoy `source/extensions/common/wasm/ext/verify_signature.proto`).
//! An RSA or ECDSA check there costs microseconds; the module's own big-integer and field
//! arithmetic under V8 costs hundreds, so RS256/384/512 and ES256/384/512 go to the host when
//! it passes [`host_checks`] at start (each hash on its own).
//!
//! The module still decides everything else: which key may check which token, the algorithm
//! (from the allow-list, never `none`), the signature's length. The host only answers "is this
//! a signature of these bytes by this key with this hash" (RSASSA-PKCS1-v1_5 for an RSA key,
//! ECDSA for an EC key), and when it cannot answer the module checks the signature itself.
//! The key and signature encodings the host reads (SubjectPublicKeyInfo, DER `ECDSA-Sig-Value`)
//! are written here.

use spki::ObjectIdentifier;

/// The SubjectPublicKeyInfo algorithms of the keys the host is handed (RFC 8017 appendix C,
/// RFC 5480 section 2.1.1).
pub(crate) const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
pub(crate) const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// The hash of a signature, as the host names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    /// OAuth 1.0a's RSA-SHA1 (RFC 5849 section 3.4.3).
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    /// Every hash, in [`HostChecks`]' order.
    pub const ALL: [Self; 4] = [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512];

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }
}

/// A host that may check signatures for the module.
pub trait SignatureHost {
    /// Whether `signature` is a signature of `input` with `hash` by `spki_der`
    /// (SubjectPublicKeyInfo, RFC 5280 section 4.1): RSASSA-PKCS1-v1_5 for an RSA key, ECDSA
    /// with a DER signature ([`ecdsa_signature_der`]) for an EC key. `None` when the host
    /// cannot tell, and the module checks instead.
    fn verify(&self, hash: Hash, spki_der: &[u8], input: &[u8], signature: &[u8]) -> Option<bool>;
}

/// The module checks every signature itself (tests, hosts without `verify_signature`).
pub struct ModuleOnly;

impl SignatureHost for ModuleOnly {
    fn verify(&self, _: Hash, _: &[u8], _: &[u8], _: &[u8]) -> Option<bool> {
        None
    }
}

/// Envoy's `verify_signature` through `call`: the serialized arguments in, the serialized
/// answer out (`None` when the call failed).
pub struct ForeignVerifier<F>(pub F);

/// The foreign function's name in Envoy.
pub const VERIFY_SIGNATURE: &str = "verify_signature";

impl<F: Fn(&[u8]) -> Option<Vec<u8>>> SignatureHost for ForeignVerifier<F> {
    fn verify(&self, hash: Hash, spki_der: &[u8], input: &[u8], signature: &[u8]) -> Option<bool> {
        let answer = (self.0)(&verify_arguments(hash, spki_der, input, signature))?;
        verify_result(&answer)
    }
}

/// What a host checks right, by [`host_checks`]' start-up self-test: each hash on its own
/// (a host without SHA-1 still checks RS256), and RSA keys under [`SMALL_RSA_BITS`] apart
/// (Jira's tutorial makes 1024-bit consumer keys; a host that refuses them would call a good
/// signature bad, not "cannot tell"). What the host does not check, the module does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostChecks {
    /// By [`Hash::ALL`]'s order.
    hashes: [bool; 4],
    small_rsa: bool,
}

/// RSA keys below this many bits are handed to the host only if it passed the 1024-bit
/// vector too.
pub const SMALL_RSA_BITS: usize = 2048;

impl HostChecks {
    /// The host checks nothing (no self-test run, or none passed).
    pub const NONE: Self = Self {
        hashes: [false; 4],
        small_rsa: false,
    };

    /// Whether the host may be asked about a signature with `hash` by `spki_der`.
    pub fn covers(self, hash: Hash, spki_der: &[u8]) -> bool {
        self.hash(hash)
            && (self.small_rsa || rsa_key_bits(spki_der).is_none_or(|bits| bits >= SMALL_RSA_BITS))
    }

    /// Whether the host checks `hash` (for keys of [`SMALL_RSA_BITS`] and more).
    pub fn hash(self, hash: Hash) -> bool {
        (Hash::ALL.iter().zip(self.hashes)).any(|(h, ok)| *h == hash && ok)
    }

    /// Whether the host checks RSA keys under [`SMALL_RSA_BITS`] too.
    pub fn small_rsa(self) -> bool {
        self.small_rsa
    }

    /// Whether the host checks anything.
    pub fn any(self) -> bool {
        self.hashes.contains(&true)
    }
}

/// Which checks `host` does right: for each hash, it must accept each known good signature
/// with it and refuse the same signature with one bit changed (SHA-256: an RSA-2048 and a P-256
/// key; SHA-384 and SHA-512: an RSA-2048 key, and the P-256 vector, as the JWT algorithms hand
/// the host EC keys with every SHA-2 hash; SHA-1, OAuth 1.0a's RSA-SHA1: an RSA-2048 key). Small
/// RSA keys: a 1024-bit key with SHA-1 (only OAuth 1.0a consumers have keys that small). No
/// such function, an error, a yes to a bad signature: that check stays in the module.
pub fn host_checks(host: &dyn SignatureHost) -> HostChecks {
    let passes = |vectors: &[(Hash, &[u8], &[u8])]| {
        vectors.iter().all(|&(hash, key, good)| {
            let mut tampered = good.to_vec();
            if let Some(last) = tampered.last_mut() {
                *last ^= 1;
            }
            let check = |signature: &[u8]| host.verify(hash, key, SELF_TEST_MESSAGE, signature);
            check(good) == Some(true) && check(&tampered) == Some(false)
        })
    };
    let ecdsa = (Hash::Sha256, SELF_TEST_P256_KEY, SELF_TEST_P256_SIGNATURE);
    let ecdsa = passes(&[ecdsa]);
    let sha1 = (Hash::Sha1, SELF_TEST_RSA_SHA1_KEY, SELF_TEST_RSA_SHA1_SIGNATURE);
    let sha1 = passes(&[sha1]);
    let hashes = Hash::ALL.map(|hash| match hash {
        Hash::Sha1 => sha1,
        Hash::Sha256 => ecdsa && passes(&[(hash, SELF_TEST_RSA_KEY, SELF_TEST_RSA_SIGNATURE)]),
        Hash::Sha384 => ecdsa && passes(&[(hash, SELF_TEST_RSA_SHA2_KEY, SELF_TEST_RSA_SHA384_SIGNATURE)]),
        Hash::Sha512 => ecdsa && passes(&[(hash, SELF_TEST_RSA_SHA2_KEY, SELF_TEST_RSA_SHA512_SIGNATURE)]),
    });
    let small = (
        Hash::Sha1,
        SELF_TEST_RSA_1024_KEY,
        SELF_TEST_RSA_1024_SHA1_SIGNATURE,
    );
    HostChecks {
        hashes,
        small_rsa: passes(&[small]),
    }
}

// Keys made for this test only (their private halves were thrown away) and their signatures
// of the message (`openssl dgst -sha<n> -sign`): RSA-2048 PKCS#1 v1.5 with SHA-256, another
// RSA-2048 key's with SHA-1, a third one's with SHA-384 and SHA-512, an RSA-1024 key's with
// SHA-1, and ECDSA P-256 with SHA-256 in DER.
const SELF_TEST_MESSAGE: &[u8] = include_bytes!("hostcrypto/self_test_message.txt");
const SELF_TEST_RSA_KEY: &[u8] = include_bytes!("hostcrypto/self_test_rsa_key.der");
const SELF_TEST_RSA_SIGNATURE: &[u8] = include_bytes!("hostcrypto/self_test_rsa_signature.bin");
const SELF_TEST_RSA_SHA1_KEY: &[u8] = include_bytes!("hostcrypto/self_test_rsa_sha1_key.der");
const SELF_TEST_RSA_SHA1_SIGNATURE: &[u8] = include_bytes!("hostcrypto/self_test_rsa_sha1_signature.bin");
const SELF_TEST_RSA_SHA2_KEY: &[u8] = include_bytes!("hostcrypto/self_test_rsa_sha2_key.der");
const SELF_TEST_RSA_SHA384_SIGNATURE: &[u8] = include_bytes!("hostcrypto/self_test_rsa_sha384_signature.bin");
const SELF_TEST_RSA_SHA512_SIGNATURE: &[u8] = include_bytes!("hostcrypto/self_test_rsa_sha512_signature.bin");
const SELF_TEST_RSA_1024_KEY: &[u8] = include_bytes!("hostcrypto/self_test_rsa_1024_key.der");
const SELF_TEST_RSA_1024_SHA1_SIGNATURE: &[u8] =
    include_bytes!("hostcrypto/self_test_rsa_1024_sha1_signature.bin");
const SELF_TEST_P256_KEY: &[u8] = include_bytes!("hostcrypto/self_test_p256_key.der");
const SELF_TEST_P256_SIGNATURE: &[u8] = include_bytes!("hostcrypto/self_test_p256_signature.der");

/// The modulus size in bits of an RSA SubjectPublicKeyInfo (`SEQUENCE { SEQUENCE { rsaEncryption,
/// NULL }, BIT STRING { SEQUENCE { INTEGER n, INTEGER e } } }`); `None` for any other key.
pub fn rsa_key_bits(spki_der: &[u8]) -> Option<usize> {
    let spki = der_content(spki_der, 0x30)?.0;
    let (algorithm, rest) = der_content(spki, 0x30)?;
    let oid = der_content(algorithm, 0x06)?.0;
    if oid != RSA_ENCRYPTION.as_bytes() {
        return None;
    }
    let bits = der_content(rest, 0x03)?.0;
    let (0, key) = bits.split_first()? else {
        return None;
    };
    let modulus = der_content(der_content(key, 0x30)?.0, 0x02)?.0;
    let digits = modulus.get(modulus.iter().position(|&b| b != 0)?..)?;
    let top = usize::try_from(digits.first()?.leading_zeros()).ok()?;
    digits.len().checked_mul(8)?.checked_sub(top)
}

/// The content of the DER element with `tag` at the start of `input`, and what follows it.
fn der_content(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let (len, rest) = match len {
        0..=0x7f => (usize::from(len), rest),
        0x81..=0x84 => {
            let (digits, rest) = rest.split_at_checked(usize::from(len & 0x7f))?;
            let len = digits.iter().fold(0_usize, |acc, &d| acc << 8 | usize::from(d));
            (len, rest)
        }
        _ => return None,
    };
    if first != tag {
        return None;
    }
    rest.split_at_checked(len)
}

/// SubjectPublicKeyInfo DER of an RSA key (RFC 3279 section 2.3.1), the form BoringSSL's
/// `EVP_parse_public_key` reads. Written here: the DER encoders of the `rsa` crate cost the
/// module more than this.
pub fn rsa_spki_der(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    const NULL: [u8; 2] = [0x05, 0x00];
    let algorithm = der(0x30, &[der_oid(RSA_ENCRYPTION), NULL.to_vec()].concat());
    let rsa_public_key = der(0x30, &[der_integer(modulus), der_integer(exponent)].concat());
    spki_der(&algorithm, &rsa_public_key)
}

/// SubjectPublicKeyInfo DER of an EC key on the named `curve` (RFC 5480 section 2): `point`
/// is its SEC1 encoding.
pub fn ec_spki_der(curve: ObjectIdentifier, point: &[u8]) -> Vec<u8> {
    let algorithm = der(0x30, &[der_oid(EC_PUBLIC_KEY), der_oid(curve)].concat());
    spki_der(&algorithm, point)
}

/// `SEQUENCE { algorithm, BIT STRING key }`, the key's bits whole (no unused bits).
fn spki_der(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
    let bit_string = der(0x03, &[&[0][..], key].concat());
    der(0x30, &[algorithm, &bit_string].concat())
}

fn der_oid(oid: ObjectIdentifier) -> Vec<u8> {
    der(0x06, oid.as_bytes())
}

/// A JWS ECDSA signature (R || S, each the curve's size: RFC 7518 section 3.4) as the DER
/// `ECDSA-Sig-Value` BoringSSL reads (RFC 3279 section 2.2.3). The caller checks the length.
pub fn ecdsa_signature_der(fixed: &[u8]) -> Vec<u8> {
    let (r, s) = fixed.split_at(fixed.len() / 2);
    der(0x30, &[der_integer(r), der_integer(s)].concat())
}

/// A non-negative INTEGER: no leading zero bytes, one zero byte if the top bit is set.
fn der_integer(big_endian: &[u8]) -> Vec<u8> {
    let digits = match big_endian.iter().position(|&b| b != 0) {
        Some(first) => big_endian.get(first..).unwrap_or_default(),
        None => &[0],
    };
    let sign = match digits.first() {
        Some(top) if top & 0x80 != 0 => &[0][..],
        _ => &[],
    };
    der(0x02, &[sign, digits].concat())
}

/// Tag, definite length (short form below 128, else long form), content.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len().to_be_bytes();
    let len = match len.iter().position(|&b| b != 0) {
        Some(first) => len.get(first..).unwrap_or_default(),
        None => &[0],
    };
    let mut out = vec![tag];
    if content.len() >= 0x80 {
        out.push(0x80 | len.len() as u8);
    }
    out.extend_from_slice(len);
    out.extend_from_slice(content);
    out
}

// Protobuf wire format (https://protobuf.dev/programming-guides/encoding/): each field is a
// varint key `field << 3 | wire type`, then a varint (type 0) or a varint length and bytes
// (type 2).
const VARINT: u64 = 0;
const LENGTH_DELIMITED: u64 = 2;

/// `VerifySignatureArguments { hash_function = 1; public_key = 2; signature = 3; text = 4 }`.
fn verify_arguments(hash: Hash, spki_der: &[u8], input: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(spki_der.len() + input.len() + signature.len() + 24);
    for (field, bytes) in [
        (1, hash.name().as_bytes()),
        (2, spki_der),
        (3, signature),
        (4, input),
    ] {
        put_varint(&mut message, field << 3 | LENGTH_DELIMITED);
        put_varint(&mut message, bytes.len() as u64);
        message.extend_from_slice(bytes);
    }
    message
}

/// `VerifySignatureResult { bool result = 1; string error = 2 }`: `None` if it is not one.
/// proto3 leaves out default values, so a refusal may carry only the error.
fn verify_result(message: &[u8]) -> Option<bool> {
    let mut rest = message;
    let mut result = false;
    while !rest.is_empty() {
        let key = take_varint(&mut rest)?;
        match (key >> 3, key & 7) {
            (1, VARINT) => result = take_varint(&mut rest)? != 0,
            (_, VARINT) => {
                take_varint(&mut rest)?;
            }
            (_, LENGTH_DELIMITED) => {
                let len = usize::try_from(take_varint(&mut rest)?).ok()?;
                rest = rest.get(len..)?;
            }
            _ => return None,
        }
    }
    Some(result)
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn take_varint(input: &mut &[u8]) -> Option<u64> {
    let mut value = 0_u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::pkcs8::DecodePublicKey as _;
    use rsa::signature::Verifier as _;
    use rsa::RsaPublicKey;
    use sha2::Sha256;
    use std::cell::Cell;

    /// A host that checks with the `rsa` crate, reading the arguments back from the wire.
    fn honest(arguments: &[u8]) -> Option<Vec<u8>> {
        let fields = fields(arguments);
        assert_eq!(fields[0].0, 1);
        let key = RsaPublicKey::from_public_key_der(&fields[1].1).ok();
        let Some(key) = key else {
            assert_eq!(fields[0].1, b"sha256");
            return p256_check(&fields);
        };
        let signature = Signature::try_from(fields[2].1.as_slice()).ok()?;
        let good = match fields[0].1.as_slice() {
            b"sha256" => VerifyingKey::<Sha256>::new(key).verify(&fields[3].1, &signature),
            b"sha1" => VerifyingKey::<sha1::Sha1>::new(key).verify(&fields[3].1, &signature),
            b"sha384" => VerifyingKey::<sha2::Sha384>::new(key).verify(&fields[3].1, &signature),
            b"sha512" => VerifyingKey::<sha2::Sha512>::new(key).verify(&fields[3].1, &signature),
            other => panic!("hash {other:?}"),
        }
        .is_ok();
        // What Envoy sends: `result: true`, or no result and an error message.
        Some(match good {
            true => vec![0x08, 0x01],
            false => [&[0x12, 0x05][..], b"wrong"].concat(),
        })
    }

    fn p256_check(fields: &[(u64, Vec<u8>)]) -> Option<Vec<u8>> {
        use p256::ecdsa::signature::Verifier as _;
        let key = p256::ecdsa::VerifyingKey::from_public_key_der(&fields[1].1).ok()?;
        let signature = p256::ecdsa::Signature::from_der(&fields[2].1).ok()?;
        Some(match key.verify(&fields[3].1, &signature).is_ok() {
            true => vec![0x08, 0x01],
            false => vec![0x12, 0x01, b'x'],
        })
    }

    fn fields(mut message: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let mut out = vec![];
        while !message.is_empty() {
            let key = take_varint(&mut message).unwrap();
            let len = take_varint(&mut message).unwrap() as usize;
            out.push((key >> 3, message[..len].to_vec()));
            message = &message[len..];
        }
        out
    }

    const ALL: HostChecks = HostChecks {
        hashes: [true; 4],
        small_rsa: true,
    };

    /// `honest`, except that it answers "bad signature" for `refused` (hash, key) pairs, as
    /// BoringSSL does for what it cannot parse or digest.
    fn refusing(refused: impl Fn(&[u8], &[u8]) -> bool) -> impl Fn(&[u8]) -> Option<Vec<u8>> {
        move |arguments: &[u8]| {
            let fields = fields(arguments);
            match refused(&fields[0].1, &fields[1].1) {
                true => Some([&[0x12, 0x03][..], b"bad"].concat()),
                false => honest(arguments),
            }
        }
    }

    #[test]
    fn every_self_test_vector_is_a_good_signature() {
        assert_eq!(host_checks(&ForeignVerifier(honest)), ALL);
    }

    #[test]
    fn a_host_without_sha1_still_checks_the_sha2_hashes() {
        let checks = host_checks(&ForeignVerifier(refusing(|hash, _| hash == b"sha1")));
        let expected = HostChecks {
            hashes: [false, true, true, true],
            small_rsa: false,
        };
        assert_eq!(checks, expected);
        assert!(!checks.covers(Hash::Sha1, SELF_TEST_RSA_SHA1_KEY));
        assert!(checks.covers(Hash::Sha256, SELF_TEST_RSA_KEY));
        assert!(checks.covers(Hash::Sha256, SELF_TEST_P256_KEY));
    }

    #[test]
    fn each_hash_is_checked_by_the_host_only_if_its_own_vectors_pass() {
        let cases = [
            (&b"sha384"[..], [true, true, false, true]),
            (b"sha512", [true, true, true, false]),
            // The ECDSA vector is SHA-256's: without it, no EC key goes to the host.
            (b"sha256", [true, false, false, false]),
        ];
        for (missing, hashes) in cases {
            let checks = host_checks(&ForeignVerifier(refusing(|hash, _| hash == missing)));
            let small_rsa = true;
            assert_eq!(checks, HostChecks { hashes, small_rsa }, "{missing:?}");
        }
        // Without ECDSA no SHA-2 hash goes to the host (JWT hands it EC keys with each).
        let no_ec = refusing(|_, key| rsa_key_bits(key).is_none());
        let checks = host_checks(&ForeignVerifier(no_ec));
        let expected = HostChecks {
            hashes: [true, false, false, false],
            small_rsa: true,
        };
        assert_eq!(checks, expected);
    }

    #[test]
    fn a_host_that_refuses_small_rsa_keys_gets_none_of_them() {
        let small = |key: &[u8]| rsa_key_bits(key).is_some_and(|bits| bits < SMALL_RSA_BITS);
        let checks = host_checks(&ForeignVerifier(refusing(|_, key| small(key))));
        assert_eq!(
            checks,
            HostChecks {
                small_rsa: false,
                ..ALL
            }
        );
        assert!(checks.covers(Hash::Sha1, SELF_TEST_RSA_SHA1_KEY));
        assert!(!checks.covers(Hash::Sha1, SELF_TEST_RSA_1024_KEY));
        assert!(ALL.covers(Hash::Sha1, SELF_TEST_RSA_1024_KEY));
        assert!(!HostChecks::NONE.covers(Hash::Sha256, SELF_TEST_RSA_KEY));
    }

    #[test]
    fn a_host_that_says_yes_to_everything_or_cannot_answer_is_not_used() {
        let yes = |_: &[u8]| Some(vec![0x08, 0x01]);
        let no = |_: &[u8]| Some(vec![]);
        let absent = |_: &[u8]| None;
        let garbage = |_: &[u8]| Some(vec![0x0f, 0xff]);
        assert_eq!(host_checks(&ForeignVerifier(yes)), HostChecks::NONE);
        assert_eq!(host_checks(&ForeignVerifier(no)), HostChecks::NONE);
        assert_eq!(host_checks(&ForeignVerifier(absent)), HostChecks::NONE);
        assert_eq!(host_checks(&ForeignVerifier(garbage)), HostChecks::NONE);
        assert_eq!(host_checks(&ModuleOnly), HostChecks::NONE);
        assert!(!HostChecks::NONE.any() && ALL.any());
    }

    #[test]
    fn rsa_key_sizes_are_read_from_the_key_and_anything_else_is_not_rsa() {
        assert_eq!(rsa_key_bits(SELF_TEST_RSA_1024_KEY), Some(1024));
        assert_eq!(rsa_key_bits(SELF_TEST_RSA_KEY), Some(2048));
        assert_eq!(
            rsa_key_bits(&rsa_spki_der(&[0, 0, 0x01, 0xff], &[1, 0, 1])),
            Some(9)
        );
        assert_eq!(rsa_key_bits(SELF_TEST_P256_KEY), None);
        for len in 0..SELF_TEST_RSA_KEY.len() {
            assert_eq!(rsa_key_bits(&SELF_TEST_RSA_KEY[..len]), None, "{len}");
        }
    }

    #[test]
    fn arguments_are_the_protobuf_envoy_parses() {
        let message = verify_arguments(Hash::Sha384, b"key", b"text", &[0xaa; 200]);
        assert_eq!(&message[..8], [0x0a, 6, b's', b'h', b'a', b'3', b'8', b'4']);
        assert_eq!(&message[8..13], [0x12, 3, b'k', b'e', b'y']);
        // 200 bytes: a two-byte length.
        assert_eq!(&message[13..16], [0x1a, 0xc8, 0x01]);
        assert_eq!(&message[216..], [0x22, 4, b't', b'e', b'x', b't']);
    }

    #[test]
    fn results_are_read_as_proto3_writes_them() {
        assert_eq!(verify_result(&[0x08, 0x01]), Some(true));
        assert_eq!(verify_result(&[]), Some(false));
        assert_eq!(verify_result(&[0x12, 0x02, b'n', b'o']), Some(false));
        // Unknown fields are skipped; the last `result` wins.
        assert_eq!(
            verify_result(&[0x18, 0x05, 0x08, 0x00, 0x2a, 0x00, 0x08, 0x01]),
            Some(true)
        );
        for broken in [&[0x08][..], &[0x12, 0x05, b'x'], &[0x0b], &[0x80; 11]] {
            assert_eq!(verify_result(broken), None, "{broken:?}");
        }
    }

    #[test]
    fn the_call_carries_the_signature_and_the_answer_comes_back() {
        let calls = Cell::new(0);
        let host = ForeignVerifier(|arguments: &[u8]| {
            calls.set(calls.get() + 1);
            honest(arguments)
        });
        let good = host.verify(
            Hash::Sha256,
            SELF_TEST_RSA_KEY,
            SELF_TEST_MESSAGE,
            SELF_TEST_RSA_SIGNATURE,
        );
        let other_text = host.verify(Hash::Sha256, SELF_TEST_RSA_KEY, b"other", SELF_TEST_RSA_SIGNATURE);
        assert_eq!((good, other_text, calls.get()), (Some(true), Some(false), 2));
    }
}

#[cfg(test)]
mod encoding_tests {
    use super::*;
    use p256::pkcs8::DecodePublicKey as _;

    #[test]
    fn ec_keys_and_signatures_are_encoded_as_the_p256_crate_reads_them() {
        let key = p256::ecdsa::VerifyingKey::from_public_key_der(SELF_TEST_P256_KEY).unwrap();
        let point = key.to_encoded_point(false);
        assert_eq!(
            ec_spki_der(crate::jwk::SECP256R1, point.as_bytes()),
            SELF_TEST_P256_KEY
        );
        let signature = p256::ecdsa::Signature::from_der(SELF_TEST_P256_SIGNATURE).unwrap();
        assert_eq!(
            ecdsa_signature_der(&signature.to_bytes()),
            SELF_TEST_P256_SIGNATURE
        );
    }

    #[test]
    fn der_integers_are_minimal_and_non_negative() {
        // Leading zeros go, a set top bit gets a zero byte, zero is one zero byte.
        let mut fixed = [0_u8; 64];
        fixed[31] = 0x7f;
        fixed[32] = 0x80;
        let encoded = ecdsa_signature_der(&fixed);
        assert_eq!(&encoded[..5], [0x30, 0x26, 0x02, 0x01, 0x7f]);
        assert_eq!(&encoded[5..8], [0x02, 0x21, 0x00]);
        assert_eq!(
            ecdsa_signature_der(&[0; 64]),
            [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]
        );
        assert_eq!(der(0x04, &[7; 0x80])[..3], [0x04, 0x81, 0x80]);
        assert_eq!(der(0x04, &[7; 0x100])[..4], [0x04, 0x82, 0x01, 0x00]);
    }
}
