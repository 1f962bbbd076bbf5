//! `jwt_providers.<name>`: compiled into a [`JwtProvider`].

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde::Deserialize;
use std::rc::Rc;

use super::common::{
    default_clock_skew, default_timeout_ms, default_token_cache_ttl, error, header_name, ConfigError,
    MAX_CLOCK_SKEW_SECONDS, MIN_SECRET_BYTES, TISJWT_PROVIDER,
};
use crate::bearer::{ClaimHeader, JwtProvider, KeySource, RemoteJwks};
use crate::cache::Scope;
use crate::jwk::{KeyError, KeyKind, KeySet, SymmetricKeys};
use crate::jwks_cache::RefreshPolicy;
use crate::jwt::{Algorithm, ClaimRules};

/// `hmac_secret_base64url`: the URL-safe alphabet, with or without `=` padding.
const SECRET_BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJwtProvider {
    issuer: Option<String>,
    audiences: Option<Vec<String>>,
    algorithms: Option<Vec<String>>,
    local_jwks: Option<serde_json::Value>,
    pem: Option<String>,
    hmac_secret: Option<String>,
    hmac_secret_base64url: Option<String>,
    remote_jwks: Option<RawRemoteJwks>,
    #[serde(default = "default_clock_skew")]
    clock_skew_seconds: u32,
    #[serde(default)]
    require_exp: bool,
    max_lifetime_seconds: Option<u32>,
    #[serde(default = "default_user_claim")]
    user_claim: String,
    #[serde(default)]
    claims_to_headers: Vec<RawClaimHeader>,
    #[serde(default)]
    forward_token: bool,
    #[serde(default = "default_token_cache_ttl")]
    cache_ttl_seconds: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRemoteJwks {
    cluster: String,
    path: String,
    authority: Option<String>,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default = "default_refresh_interval")]
    refresh_interval_seconds: u32,
    #[serde(default = "default_initial_backoff_ms")]
    initial_backoff_ms: u64,
    #[serde(default = "default_unknown_kid_gap")]
    unknown_kid_refetch_gap_seconds: u32,
    #[serde(default = "default_wait_ms")]
    wait_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClaimHeader {
    claim: String,
    header: String,
}

fn default_user_claim() -> String {
    "sub".to_owned()
}

fn default_refresh_interval() -> u32 {
    300
}

fn default_initial_backoff_ms() -> u64 {
    1000
}

fn default_unknown_kid_gap() -> u32 {
    30
}

fn default_wait_ms() -> u64 {
    3000
}

impl RawJwtProvider {
    pub(super) fn compile(self, name: String, scope: Scope) -> Result<JwtProvider, ConfigError> {
        let field = |f: &str| format!("jwt_providers.{name}.{f}");
        if name.is_empty() || name == TISJWT_PROVIDER {
            return Err(error(
                "jwt_providers",
                format!("`{name}` cannot name a JWT provider"),
            ));
        }
        let keys = self.key_source(&field)?;
        let algorithms = self.algorithms(&keys, &field)?;
        if algorithms.is_empty() {
            return Err(error(&field("algorithms"), "must name at least one algorithm"));
        }
        if self.audiences.as_ref().is_some_and(Vec::is_empty) {
            return Err(error(
                &field("audiences"),
                "must not be empty (omit it to skip the audience check)",
            ));
        }
        if self.clock_skew_seconds > MAX_CLOCK_SKEW_SECONDS {
            return Err(error(
                &field("clock_skew_seconds"),
                format!("must be at most {MAX_CLOCK_SKEW_SECONDS}"),
            ));
        }
        if self.user_claim.is_empty() {
            return Err(error(&field("user_claim"), "must name a claim"));
        }
        let claim_headers = self
            .claims_to_headers
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let header = header_name(&field(&format!("claims_to_headers[{i}].header")), c.header)?;
                Ok(ClaimHeader {
                    claim: c.claim,
                    header,
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        Ok(JwtProvider {
            issuer: self.issuer.clone(),
            algorithms,
            keys,
            rules: ClaimRules {
                issuer: self.issuer,
                audiences: self.audiences,
                clock_skew_seconds: i64::from(self.clock_skew_seconds),
                require_exp: self.require_exp,
            },
            max_lifetime_seconds: self.max_lifetime_seconds.map(i64::from),
            user_claim: self.user_claim,
            claim_headers,
            forward_token: self.forward_token,
            cache_ttl_seconds: i64::from(self.cache_ttl_seconds),
            name,
            scope,
        })
    }

    /// The accepted algorithms: the configured list, or by default every asymmetric one (not
    /// for an HMAC secret) and every HS* a key of a static set may check (an HMAC secret long
    /// enough for it, an `oct` key of `local_jwks` bound to it). A listed algorithm no key
    /// source of this kind could check is an error, so HS* is never accepted on public keys
    /// or a remote JWKS, and RS*/PS*/ES*/EdDSA/Ed25519 never on an HMAC secret.
    fn algorithms(
        &self,
        keys: &KeySource,
        field: &dyn Fn(&str) -> String,
    ) -> Result<Vec<Algorithm>, ConfigError> {
        let hmac_only = self.hmac_secret.is_some() || self.hmac_secret_base64url.is_some();
        let checkable = |alg: Algorithm| match keys {
            KeySource::Static(set) if alg.key_kind() == KeyKind::Hmac => set.can_check(alg),
            _ => !hmac_only && alg.key_kind() != KeyKind::Hmac,
        };
        let Some(names) = &self.algorithms else {
            return Ok(Algorithm::ALL.into_iter().filter(|alg| checkable(*alg)).collect());
        };
        let field = field("algorithms");
        let algorithms = names
            .iter()
            .map(|name| {
                let alg = Algorithm::from_name(name).ok_or_else(|| match name.as_str() {
                    "Ed448" => error(&field, "`Ed448` is not supported (Ed25519 is: `Ed25519` or `EdDSA`)"),
                    _ => error(&field, format!("`{name}` is not a supported signature algorithm")),
                })?;
                if checkable(alg) {
                    return Ok(alg);
                }
                let why = match (alg.key_kind(), keys) {
                    (KeyKind::Hmac, KeySource::Static(_)) if hmac_only => {
                        let min = alg.min_hmac_secret_bytes().unwrap_or_default();
                        format!("`{name}` needs an HMAC secret of at least {min} bytes (RFC 7518 section 3.2)")
                    }
                    (KeyKind::Hmac, KeySource::Static(_)) if self.local_jwks.is_some() => {
                        format!("`{name}` needs an `oct` key with `\"alg\": \"{name}\"` in local_jwks")
                    }
                    (KeyKind::Hmac, _) => format!(
                        "`{name}` cannot be verified with public keys (HS* needs hmac_secret, \
                         hmac_secret_base64url or `oct` keys in local_jwks; a remote JWKS never supplies them)"
                    ),
                    _ => format!("`{name}` cannot be verified with an HMAC secret"),
                };
                Err(error(&field, why))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(algorithms)
    }

    /// Exactly one of `local_jwks`, `pem`, `hmac_secret`, `hmac_secret_base64url`, `remote_jwks`.
    fn key_source(&self, field: &dyn Fn(&str) -> String) -> Result<KeySource, ConfigError> {
        let sources = [
            self.local_jwks.is_some(),
            self.pem.is_some(),
            self.hmac_secret.is_some(),
            self.hmac_secret_base64url.is_some(),
            self.remote_jwks.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err(error(
                &field("keys"),
                "give exactly one of local_jwks, pem, hmac_secret, hmac_secret_base64url, remote_jwks",
            ));
        }
        let loaded = |f: &str, keys: Result<KeySet, crate::jwk::KeyError>| {
            keys.map(|k| KeySource::Static(Rc::new(k))).map_err(|e| match e {
                // A broken `oct` key: name it, `local_jwks.keys[2]`.
                KeyError::InKey { index, .. } => error(&field(&format!("{f}.keys[{index}]")), e.to_string()),
                e => error(&field(f), e.to_string()),
            })
        };
        if let Some(jwks) = &self.local_jwks {
            // Inline keys are the operator's own, so `oct` (HMAC) JWKs are allowed here.
            return loaded(
                "local_jwks",
                KeySet::from_jwks_with(jwks.to_string().as_bytes(), SymmetricKeys::Allow),
            );
        }
        if let Some(pem) = &self.pem {
            return loaded("pem", KeySet::from_pem(pem));
        }
        let secret = match (&self.hmac_secret, &self.hmac_secret_base64url) {
            (Some(text), _) => Some(("hmac_secret", text.clone().into_bytes())),
            // RFC 4648 section 5, the alphabet of JWK `k`; padding optional. Never echoed.
            (None, Some(encoded)) => Some((
                "hmac_secret_base64url",
                SECRET_BASE64URL.decode(encoded).map_err(|_| {
                    error(
                        &field("hmac_secret_base64url"),
                        "is not base64url (RFC 4648 section 5)",
                    )
                })?,
            )),
            (None, None) => None,
        };
        if let Some((name, secret)) = secret {
            if secret.len() < MIN_SECRET_BYTES {
                return Err(error(
                    &field(name),
                    format!("must be at least {MIN_SECRET_BYTES} bytes"),
                ));
            }
            return loaded(name, KeySet::from_hmac_secret(secret));
        }
        match &self.remote_jwks {
            Some(remote) => remote.compile(&|f| field(&format!("remote_jwks.{f}"))),
            None => Err(error(&field("keys"), "no key source")),
        }
    }
}

impl RawRemoteJwks {
    pub(super) fn compile(&self, field: &dyn Fn(&str) -> String) -> Result<KeySource, ConfigError> {
        if self.cluster.is_empty() {
            return Err(error(&field("cluster"), "must name an Envoy cluster"));
        }
        if !self.path.starts_with('/') {
            return Err(error(&field("path"), "must start with `/`"));
        }
        if self.refresh_interval_seconds == 0 {
            return Err(error(&field("refresh_interval_seconds"), "must be at least 1"));
        }
        Ok(KeySource::Remote(RemoteJwks {
            cluster: self.cluster.clone(),
            authority: self.authority.clone().unwrap_or_else(|| self.cluster.clone()),
            path: self.path.clone(),
            timeout_ms: self.timeout_ms.clamp(1, 60_000),
            refresh: RefreshPolicy {
                interval_ms: u64::from(self.refresh_interval_seconds) * 1000,
                initial_backoff_ms: self.initial_backoff_ms.max(1),
                unknown_kid_gap_ms: u64::from(self.unknown_kid_refetch_gap_seconds) * 1000,
            },
            wait_ms: self.wait_ms.min(60_000),
        }))
    }
}

/// `jwt_providers` keys: `oct` keys, binary HMAC secrets, Ed25519.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const HS: [Algorithm; 3] = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

    fn provider(fields: serde_json::Value) -> Result<JwtProvider, ConfigError> {
        let json = serde_json::json!({ "jwt_providers": { "p": fields } });
        Config::from_json(json.to_string().as_bytes()).map(|mut c| c.jwt_providers.remove(0))
    }

    fn provider_error(fields: serde_json::Value) -> ConfigError {
        provider(fields).unwrap_err()
    }

    fn oct(alg: &str, bytes: usize) -> serde_json::Value {
        let k = URL_SAFE_NO_PAD.encode(vec![9_u8; bytes]);
        serde_json::json!({"kty": "oct", "kid": alg, "alg": alg, "k": k})
    }

    fn asymmetric() -> Vec<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .filter(|alg| alg.key_kind() != KeyKind::Hmac)
            .collect()
    }

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    #[test]
    fn the_default_algorithms_add_the_hs_algorithms_the_oct_keys_of_local_jwks_name() {
        let rsa = crate::jwk::tests::TestKeys::issuer().jwk(Algorithm::RS256, "r");
        let with = |keys: serde_json::Value| {
            provider(json!({"local_jwks": {"keys": keys}}))
                .unwrap()
                .algorithms
        };
        assert_eq!(with(json!([rsa.clone()])), asymmetric());
        let mut expected = asymmetric();
        expected.push(Algorithm::HS256);
        assert_eq!(with(json!([rsa, oct("HS256", 32)])), expected);
        let mut expected = asymmetric();
        expected.extend([Algorithm::HS384, Algorithm::HS512]);
        assert_eq!(with(json!([oct("HS512", 64), oct("HS384", 48)])), expected);
        assert!(asymmetric().contains(&Algorithm::Ed25519) && asymmetric().contains(&Algorithm::EdDSA));
    }

    #[test]
    fn the_default_algorithms_of_an_hmac_secret_are_those_it_is_long_enough_for() {
        for (bytes, expected) in [(32, &HS[..1]), (48, &HS[..2]), (64, &HS[..]), (100, &HS[..])] {
            let text = "s".repeat(bytes);
            assert_eq!(
                provider(json!({"hmac_secret": text})).unwrap().algorithms,
                expected,
                "{bytes}"
            );
            let binary = URL_SAFE_NO_PAD.encode(vec![0xff_u8; bytes]);
            let p = provider(json!({"hmac_secret_base64url": binary})).unwrap();
            assert_eq!(p.algorithms, expected, "{bytes}");
        }
    }

    #[test]
    fn listed_algorithms_must_be_ones_the_key_source_can_check() {
        let ed = crate::jwk::tests::TestKeys::issuer().jwk(Algorithm::EdDSA, "ed");
        let jwks = json!({"keys": [ed, oct("HS256", 32)]});
        let pem = crate::jwk::tests::p256_public_pem();
        let remote = json!({"cluster": "idp", "path": "/jwks"});
        let secret = "s".repeat(32);
        let ok = [
            json!({"local_jwks": jwks, "algorithms": ["HS256", "Ed25519", "EdDSA"]}),
            json!({"pem": pem, "algorithms": ["Ed25519", "ES256"]}),
            json!({"remote_jwks": remote, "algorithms": ["Ed25519"]}),
            json!({"hmac_secret": secret, "algorithms": ["HS256"]}),
        ];
        for fields in ok {
            assert!(provider(fields.clone()).is_ok(), "{fields}");
        }
        let refused = [
            (
                json!({"local_jwks": jwks, "algorithms": ["HS384"]}),
                "needs an `oct` key with `\"alg\": \"HS384\"`",
            ),
            (
                json!({"pem": pem, "algorithms": ["HS256"]}),
                "cannot be verified with public keys",
            ),
            (
                json!({"remote_jwks": remote, "algorithms": ["HS256"]}),
                "a remote JWKS never supplies them",
            ),
            (
                json!({"hmac_secret": secret, "algorithms": ["HS512"]}),
                "at least 64 bytes",
            ),
            (
                json!({"hmac_secret": secret, "algorithms": ["RS256"]}),
                "cannot be verified with an HMAC secret",
            ),
            (
                json!({"hmac_secret": secret, "algorithms": ["Ed25519"]}),
                "cannot be verified with an HMAC secret",
            ),
            (
                json!({"pem": pem, "algorithms": ["Ed448"]}),
                "`Ed448` is not supported",
            ),
            (
                json!({"pem": pem, "algorithms": ["none"]}),
                "`none` is not a supported signature algorithm",
            ),
            (
                json!({"pem": pem, "algorithms": ["ed25519"]}),
                "`ed25519` is not a supported",
            ),
            (
                json!({"pem": pem, "algorithms": []}),
                "must name at least one algorithm",
            ),
        ];
        for (fields, problem) in refused {
            let e = provider_error(fields.clone());
            assert_eq!(e.field, "jwt_providers.p.algorithms", "{fields}");
            assert!(e.problem.contains(problem), "{fields}: {}", e.problem);
        }
    }

    #[test]
    fn every_key_configuration_error_names_its_field() {
        let short = URL_SAFE_NO_PAD.encode([1_u8; 31]);
        let rsa = crate::jwk::tests::TestKeys::issuer().jwk(Algorithm::RS256, "r");
        let mut no_alg = oct("HS256", 32);
        no_alg.as_object_mut().unwrap().remove("alg");
        let cases = [
            (
                json!({"hmac_secret_base64url": "not base64url!"}),
                "jwt_providers.p.hmac_secret_base64url",
                "is not base64url",
            ),
            (
                json!({"hmac_secret_base64url": "a+b/"}),
                "jwt_providers.p.hmac_secret_base64url",
                "is not base64url",
            ),
            (
                json!({"hmac_secret_base64url": short}),
                "jwt_providers.p.hmac_secret_base64url",
                "at least 32 bytes",
            ),
            (
                json!({"hmac_secret": "short"}),
                "jwt_providers.p.hmac_secret",
                "at least 32 bytes",
            ),
            (
                json!({"hmac_secret": "s".repeat(32), "hmac_secret_base64url": URL_SAFE_NO_PAD.encode([1_u8; 32])}),
                "jwt_providers.p.keys",
                "exactly one of",
            ),
            (
                json!({"hmac_secret_base64url": 5}),
                "jwt_providers.p.hmac_secret_base64url",
                "expected a string",
            ),
            (
                json!({"hmac_secret_base64": "x"}),
                "jwt_providers.p.hmac_secret_base64",
                "unknown field",
            ),
            (
                json!({"local_jwks": {"keys": [rsa, no_alg]}}),
                "jwt_providers.p.local_jwks.keys[1]",
                "must name its `alg`",
            ),
            (
                json!({"local_jwks": {"keys": [oct("HS384", 47)]}}),
                "jwt_providers.p.local_jwks.keys[0]",
                "`k` has 47 bytes; HS384 needs at least 48",
            ),
            (
                json!({"local_jwks": {"keys": [oct("RS256", 64)]}}),
                "jwt_providers.p.local_jwks.keys[0]",
                "`RS256` cannot be used with this key type",
            ),
            (
                json!({"local_jwks": {"keys": [{"kty": "OKP", "crv": "Ed448", "x": "AA"}]}}),
                "jwt_providers.p.local_jwks",
                "unsupported curve `Ed448`",
            ),
        ];
        for (fields, field, problem) in cases {
            let e = provider_error(fields.clone());
            assert_eq!(e.field, field, "{fields}");
            assert!(e.problem.contains(problem), "{fields}: {}", e.problem);
        }
    }

    #[test]
    fn no_secret_appears_in_a_key_configuration_error() {
        let secret = "Zm9yZ2V0LW1lLW5vdC10aGlzLWlzLXNlY3JldA";
        for fields in [
            json!({"hmac_secret_base64url": format!("{secret}!")}),
            json!({"hmac_secret_base64url": "c2VjcmV0"}),
            json!({"local_jwks": {"keys": [{"kty": "oct", "kid": "h", "k": secret}]}}),
            json!({"local_jwks": {"keys": [{"kty": "oct", "kid": "h", "alg": "HS512", "k": secret}]}}),
        ] {
            let e = provider_error(fields.clone());
            assert!(
                !e.to_string().contains(secret) && !e.to_string().contains("c2VjcmV0"),
                "{e}"
            );
        }
    }

    #[test]
    fn the_rfc_7515_a1_binary_key_verifies_its_example_through_a_configured_provider() {
        use crate::jwt::tests::{RFC7515_A1_KEY, RFC7515_A1_TOKEN};
        use crate::jwt::{JwtError, UntrustedJwt};
        let jwt = UntrustedJwt::parse(RFC7515_A1_TOKEN).unwrap();
        // Its claims have no `sub`; `iss` ("joe") names the user here.
        let common = json!({"issuer": "joe", "user_claim": "iss", "clock_skew_seconds": 0});
        let mut binary = common.clone();
        binary["hmac_secret_base64url"] = json!(RFC7515_A1_KEY);
        let mut jwks = common;
        jwks["local_jwks"] = json!({"keys": [{"kty": "oct", "alg": "HS256", "k": RFC7515_A1_KEY}]});
        for fields in [binary, jwks] {
            let p = provider(fields).unwrap();
            let KeySource::Static(keys) = &p.keys else {
                panic!("static keys")
            };
            let host = crate::hostcrypto::ModuleOnly;
            let identity = p.verify(&jwt, keys, 1_300_819_379, &host).unwrap();
            assert_eq!(
                (identity.user.as_str(), identity.expires_at),
                ("joe", Some(1_300_819_380))
            );
            assert_eq!(
                p.verify(&jwt, keys, 1_300_819_380, &host).err(),
                Some(JwtError::Expired)
            );
        }
        // Padding is optional; the standard alphabet's `+` and `/` are not base64url.
        let padded = format!("{RFC7515_A1_KEY}==");
        assert!(provider(json!({"hmac_secret_base64url": padded})).is_ok());
    }
}
