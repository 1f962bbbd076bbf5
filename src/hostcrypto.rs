//! Signature checks the host does for the module. Envoy (since 1.36) offers BoringSSL's
//! `EVP_DigestVerify` to Wasm modules as the foreign function `verify_signature`, whose
//! arguments and answer are the protobuf messages `VerifySignatureArguments` and
//! `VerifySignatureResult` (envoy `source/extensions/common/wasm/ext/verify_signature.proto`).
//! RSASSA-PKCS1-v1_5 there costs a few microseconds; the module's own big-integer code under V8
//! costs hundreds, so RS256/384/512 go to the host when it passes [`host_verifies`] at start.
//!
//! The module still decides everything else: which key may check which token, the algorithm
//! (from the allow-list, never `none`), the signature's length. The host only answers "is this
//! a PKCS#1 v1.5 signature of these bytes by this key with this hash", and when it cannot answer
//! the module checks the signature itself.

/// The hash of an RSASSA-PKCS1-v1_5 signature, as the host names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }
}

/// A host that may check signatures for the module.
pub trait SignatureHost {
    /// Whether `signature` is the RSASSA-PKCS1-v1_5 signature of `input` with `hash` by the RSA
    /// key `spki_der` (SubjectPublicKeyInfo, RFC 5280 section 4.1); `None` when the host
    /// cannot tell, and the module checks instead.
    fn rsa_pkcs1(&self, hash: Hash, spki_der: &[u8], input: &[u8], signature: &[u8]) -> Option<bool>;
}

/// The module checks every signature itself (tests, hosts without `verify_signature`).
pub struct ModuleOnly;

impl SignatureHost for ModuleOnly {
    fn rsa_pkcs1(&self, _: Hash, _: &[u8], _: &[u8], _: &[u8]) -> Option<bool> {
        None
    }
}

/// Envoy's `verify_signature` through `call`: the serialized arguments in, the serialized
/// answer out (`None` when the call failed).
pub struct ForeignVerifier<F>(pub F);

/// The foreign function's name in Envoy.
pub const VERIFY_SIGNATURE: &str = "verify_signature";

impl<F: Fn(&[u8]) -> Option<Vec<u8>>> SignatureHost for ForeignVerifier<F> {
    fn rsa_pkcs1(&self, hash: Hash, spki_der: &[u8], input: &[u8], signature: &[u8]) -> Option<bool> {
        let answer = (self.0)(&verify_arguments(hash, spki_der, input, signature))?;
        verify_result(&answer)
    }
}

/// Whether `host` checks RSASSA-PKCS1-v1_5 signatures right: it must accept a known good
/// signature and refuse the same signature with one bit changed. Anything else (no such
/// function, an error, a yes to the bad one) and the module checks signatures itself.
pub fn host_verifies(host: &dyn SignatureHost) -> bool {
    let mut tampered = SELF_TEST_SIGNATURE.to_vec();
    if let Some(last) = tampered.last_mut() {
        *last ^= 1;
    }
    let check = |signature: &[u8]| host.rsa_pkcs1(Hash::Sha256, SELF_TEST_KEY, SELF_TEST_MESSAGE, signature);
    check(SELF_TEST_SIGNATURE) == Some(true) && check(&tampered) == Some(false)
}

// A 2048-bit key made for this test only (its private half was thrown away), and its signature
// (SHA-256) of the message.
const SELF_TEST_KEY: &[u8] = include_bytes!("hostcrypto/self_test_key.der");
const SELF_TEST_MESSAGE: &[u8] = include_bytes!("hostcrypto/self_test_message.txt");
const SELF_TEST_SIGNATURE: &[u8] = include_bytes!("hostcrypto/self_test_signature.bin");

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
        assert_eq!(fields[0], (1, b"sha256".to_vec()));
        let key = RsaPublicKey::from_public_key_der(&fields[1].1).ok()?;
        let signature = Signature::try_from(fields[2].1.as_slice()).ok()?;
        let good = VerifyingKey::<Sha256>::new(key)
            .verify(&fields[3].1, &signature)
            .is_ok();
        // What Envoy sends: `result: true`, or no result and an error message.
        Some(match good {
            true => vec![0x08, 0x01],
            false => [&[0x12, 0x05][..], b"wrong"].concat(),
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

    #[test]
    fn the_self_test_vector_is_a_good_signature() {
        assert!(host_verifies(&ForeignVerifier(honest)));
    }

    #[test]
    fn a_host_that_says_yes_to_everything_or_cannot_answer_is_not_used() {
        let yes = |_: &[u8]| Some(vec![0x08, 0x01]);
        let no = |_: &[u8]| Some(vec![]);
        let absent = |_: &[u8]| None;
        let garbage = |_: &[u8]| Some(vec![0x0f, 0xff]);
        assert!(!host_verifies(&ForeignVerifier(yes)));
        assert!(!host_verifies(&ForeignVerifier(no)));
        assert!(!host_verifies(&ForeignVerifier(absent)));
        assert!(!host_verifies(&ForeignVerifier(garbage)));
        assert!(!host_verifies(&ModuleOnly));
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
        let good = host.rsa_pkcs1(
            Hash::Sha256,
            SELF_TEST_KEY,
            SELF_TEST_MESSAGE,
            SELF_TEST_SIGNATURE,
        );
        let other_text = host.rsa_pkcs1(Hash::Sha256, SELF_TEST_KEY, b"other", SELF_TEST_SIGNATURE);
        assert_eq!((good, other_text, calls.get()), (Some(true), Some(false), 2));
    }
}
