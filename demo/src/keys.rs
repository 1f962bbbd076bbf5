//! Signing keys for demo and test identity providers: RS256 and ES256 key pairs generated at
//! start, their public JWKs, and tokens signed with them. Nothing here is for production.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_compact::alg::{Es256, Rsa};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{Algorithm as _, AlgorithmSignature as _};
use serde_json::{json, Value};

enum Signer {
    Rsa(Box<rsa::RsaPrivateKey>),
    P256(Box<p256::ecdsa::SigningKey>),
}

/// A private key with its `kid`.
pub struct TestKey {
    pub kid: String,
    signer: Signer,
}

impl TestKey {
    /// A fresh 2048-bit RSA key for RS256.
    pub fn rs256(kid: &str) -> Self {
        let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048)
            .unwrap_or_else(|e| panic!("rsa keygen: {e}"));
        Self {
            kid: kid.to_owned(),
            signer: Signer::Rsa(Box::new(key)),
        }
    }

    /// A fresh P-256 key for ES256.
    pub fn es256(kid: &str) -> Self {
        let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        Self {
            kid: kid.to_owned(),
            signer: Signer::P256(Box::new(key)),
        }
    }

    /// An ES256 key from its 32-byte secret scalar (the demo IdP keeps its key in a file).
    pub fn es256_from_secret(kid: &str, secret: &[u8]) -> Option<Self> {
        let key = p256::ecdsa::SigningKey::from_slice(secret).ok()?;
        Some(Self {
            kid: kid.to_owned(),
            signer: Signer::P256(Box::new(key)),
        })
    }

    /// The secret scalar of an ES256 key (`None` for RSA).
    pub fn es256_secret(&self) -> Option<Vec<u8>> {
        match &self.signer {
            Signer::P256(key) => Some(key.to_bytes().to_vec()),
            Signer::Rsa(_) => None,
        }
    }

    pub fn alg(&self) -> &'static str {
        match self.signer {
            Signer::Rsa(_) => "RS256",
            Signer::P256(_) => "ES256",
        }
    }

    /// The public JWK, with `kid`, `alg` and `use`.
    pub fn jwk(&self) -> Value {
        let public = match &self.signer {
            Signer::Rsa(key) => serde_json::to_value(JsonWebKey::from(&key.to_public_key())),
            Signer::P256(key) => serde_json::to_value(JsonWebKey::from(key.verifying_key())),
        };
        let mut jwk = public.unwrap_or(Value::Null);
        if let Some(object) = jwk.as_object_mut() {
            object.insert("kid".into(), json!(self.kid));
            object.insert("alg".into(), json!(self.alg()));
            object.insert("use".into(), json!("sig"));
        }
        jwk
    }

    /// Signs `claims` with the header `{"alg","typ":"JWT","kid"}`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(&json!({"alg": self.alg(), "typ": "JWT", "kid": self.kid}), claims)
    }

    /// Signs any header (tests use it to forge odd ones).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = match &self.signer {
            Signer::Rsa(key) => Rsa::rs256().sign(key, input.as_bytes()).as_bytes().into_owned(),
            Signer::P256(key) => Es256.sign(key, input.as_bytes()).as_bytes().into_owned(),
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// A JWKS document of the public halves of `keys`.
pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})
}
