//! JWS algorithms that jwt-compact lacks: ES384 (P-384) and ES512 (P-521), per
//! [RFC 7518 section 3.4](https://www.rfc-editor.org/rfc/rfc7518#section-3.4).
//!
//! Signatures are the fixed-size `R || S` form, never ASN.1 DER. Parsing goes through
//! `ecdsa::Signature::from_slice`, which refuses a wrong length and any `r` or `s` outside
//! `[1, n-1]` with an error, never a panic.

use jwt_compact::{Algorithm, AlgorithmSignature};
use std::borrow::Cow;
use std::num::NonZeroUsize;

/// Defines a unit struct implementing jwt-compact's [`Algorithm`] for one NIST curve crate.
/// A newtype signature is needed because both the trait and the curve's type are foreign.
macro_rules! ecdsa_algorithm {
    ($alg:ident, $signature:ident, $name:literal, $curve:ident, $len:literal) => {
        #[doc = concat!("`", $name, "`: ECDSA on `", stringify!($curve), "` with its standard SHA-2 hash.")]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $alg;

        #[doc = concat!("An `", $name, "` signature: `R || S`, ", stringify!($len), " bytes.")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $signature($curve::ecdsa::Signature);

        impl AlgorithmSignature for $signature {
            const LENGTH: Option<NonZeroUsize> = NonZeroUsize::new($len);

            fn try_from_slice(bytes: &[u8]) -> anyhow::Result<Self> {
                $curve::ecdsa::Signature::from_slice(bytes)
                    .map(Self)
                    .map_err(|_| anyhow::anyhow!(concat!("invalid ", $name, " signature")))
            }

            fn as_bytes(&self) -> Cow<'_, [u8]> {
                Cow::Owned(self.0.to_bytes().to_vec())
            }
        }

        impl Algorithm for $alg {
            type SigningKey = $curve::ecdsa::SigningKey;
            type VerifyingKey = $curve::ecdsa::VerifyingKey;
            type Signature = $signature;

            fn name(&self) -> Cow<'static, str> {
                Cow::Borrowed($name)
            }

            fn sign(&self, signing_key: &Self::SigningKey, message: &[u8]) -> Self::Signature {
                use $curve::ecdsa::signature::Signer as _;
                $signature(signing_key.sign(message))
            }

            fn verify_signature(
                &self,
                signature: &Self::Signature,
                verifying_key: &Self::VerifyingKey,
                message: &[u8],
            ) -> bool {
                use $curve::ecdsa::signature::Verifier as _;
                verifying_key.verify(message, &signature.0).is_ok()
            }
        }
    };
}

ecdsa_algorithm!(Es384, Es384Signature, "ES384", p384, 96);
ecdsa_algorithm!(Es512, Es512Signature, "ES512", p521, 132);
