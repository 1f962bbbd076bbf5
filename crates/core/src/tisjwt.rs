//! Stage 3, verify: the TISJWT provider of seed 000.
//!
//! A token is HS256 (or HS384/HS512 where configured) signed with the app secret; `sub` is the
//! user, `clientKey` the tenant whose licence must be valid. Checks run in the order the
//! seed lists its errors: token, then licence here, then the user in the directory stage.

use serde_json::Value;

use crate::clock::UnixSeconds;
use crate::jwt::{check_claims, Algorithm, ClaimRules, HmacSecret, JwtError, UntrustedJwt};

/// Why a TISJWT credential was refused; each maps to one of seed 000's messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TisjwtFailure {
    /// Malformed, badly signed, not yet active or expired (the detail is for logs only).
    Invalid(JwtError),
    /// The `clientKey` tenant has no licence, or it has run out.
    LicenseInvalid,
}

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TisIdentity {
    pub user: String,
    pub tenant: Option<String>,
}

/// A tenant's licence: valid while `now < valid_until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct License {
    pub client_key: String,
    pub valid_until: UnixSeconds,
}

#[derive(Debug, Clone)]
pub struct TisjwtProvider {
    pub secret: HmacSecret,
    pub algorithms: Vec<Algorithm>,
    pub rules: ClaimRules,
    pub allow_query_parameter: bool,
    /// `None`: licences are not checked. `Some(list)`: only listed, unexpired tenants pass.
    pub licenses: Option<Vec<License>>,
}

impl TisjwtProvider {
    pub fn verify(&self, token: &str, now: UnixSeconds) -> Result<TisIdentity, TisjwtFailure> {
        let identity = self.verify_token(token, now).map_err(TisjwtFailure::Invalid)?;
        if !self.license_is_valid(identity.tenant.as_deref(), now) {
            return Err(TisjwtFailure::LicenseInvalid);
        }
        Ok(identity)
    }

    fn verify_token(&self, token: &str, now: UnixSeconds) -> Result<TisIdentity, JwtError> {
        let jwt = UntrustedJwt::parse(token)?;
        let algorithm = jwt.algorithm(&self.algorithms)?;
        jwt.verify_hmac(algorithm, &self.secret)?;
        check_claims(jwt.claims(), &self.rules, now)?;
        let user = header_safe_string(jwt.claims().get("sub")).ok_or(JwtError::BadClaimType("sub"))?;
        let tenant = match jwt.claims().get("clientKey") {
            None => None,
            value => Some(header_safe_string(value).ok_or(JwtError::BadClaimType("clientKey"))?),
        };
        Ok(TisIdentity { user, tenant })
    }

    fn license_is_valid(&self, tenant: Option<&str>, now: UnixSeconds) -> bool {
        let Some(licenses) = &self.licenses else {
            return true;
        };
        tenant.is_some_and(|tenant| {
            licenses
                .iter()
                .any(|license| license.client_key == tenant && now < license.valid_until)
        })
    }
}

/// A non-empty string that can travel in an HTTP header: no control characters, so a signed
/// claim can never split or forge headers on its way to the application.
fn header_safe_string(value: Option<&Value>) -> Option<String> {
    match value {
        Some(Value::String(s)) if !s.is_empty() && !s.chars().any(char::is_control) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::tests::{sign_raw, SECRET};

    const NOW: UnixSeconds = 1_700_000_000;

    fn provider() -> TisjwtProvider {
        TisjwtProvider {
            secret: HmacSecret::new(SECRET.to_vec()),
            algorithms: vec![Algorithm::HS256],
            rules: ClaimRules {
                clock_skew_seconds: 60,
                require_exp: true,
                ..ClaimRules::default()
            },
            allow_query_parameter: true,
            licenses: Some(vec![
                License {
                    client_key: "tenant-a".into(),
                    valid_until: NOW + 1000,
                },
                License {
                    client_key: "tenant-old".into(),
                    valid_until: NOW,
                },
            ]),
        }
    }

    fn token(claims: &str) -> String {
        sign_raw(Algorithm::HS256, r#"{"alg":"HS256","typ":"JWT"}"#, claims, SECRET)
    }

    fn verify(claims: &str) -> Result<TisIdentity, TisjwtFailure> {
        provider().verify(&token(claims), NOW)
    }

    #[test]
    fn a_valid_token_yields_user_and_tenant() {
        // {"sub":"557058:0d9","clientKey":"tenant-a","exp":NOW+3600}
        let claims = format!(
            r#"{{"sub":"557058:0d9","clientKey":"tenant-a","exp":{}}}"#,
            NOW + 3600
        );
        assert_eq!(
            verify(&claims),
            Ok(TisIdentity {
                user: "557058:0d9".into(),
                tenant: Some("tenant-a".into())
            })
        );
    }

    #[test]
    fn an_expired_token_is_invalid() {
        let claims = format!(r#"{{"sub":"u","clientKey":"tenant-a","exp":{}}}"#, NOW - 61);
        assert_eq!(verify(&claims), Err(TisjwtFailure::Invalid(JwtError::Expired)));
    }

    #[test]
    fn licence_is_checked_after_the_token() {
        let exp = NOW + 3600;
        for tenant in [r#""clientKey":"tenant-old","#, r#""clientKey":"unknown","#, ""] {
            let claims = format!(r#"{{"sub":"gone",{tenant}"exp":{exp}}}"#);
            assert_eq!(verify(&claims), Err(TisjwtFailure::LicenseInvalid), "{claims}");
        }
        let expired = format!(r#"{{"sub":"gone","clientKey":"unknown","exp":{}}}"#, NOW - 100);
        assert_eq!(verify(&expired), Err(TisjwtFailure::Invalid(JwtError::Expired)));
    }

    #[test]
    fn without_a_licence_list_any_tenant_passes() {
        let unlicensed = TisjwtProvider {
            licenses: None,
            ..provider()
        };
        let claims = format!(r#"{{"sub":"u","exp":{}}}"#, NOW + 10);
        assert!(unlicensed.verify(&token(&claims), NOW).is_ok());
    }

    #[test]
    fn subjects_that_cannot_be_a_header_value_are_invalid() {
        let exp = NOW + 10;
        for sub in [r#""sub":"","#, r#""sub":"a\r\nx-evil: 1","#, r#""sub":42,"#, ""] {
            let claims = format!(r#"{{{sub}"clientKey":"tenant-a","exp":{exp}}}"#);
            assert_eq!(
                verify(&claims),
                Err(TisjwtFailure::Invalid(JwtError::BadClaimType("sub"))),
                "{claims}"
            );
        }
        let claims = format!(r#"{{"sub":"u","clientKey":"a\u0000b","exp":{exp}}}"#);
        assert_eq!(
            verify(&claims),
            Err(TisjwtFailure::Invalid(JwtError::BadClaimType("clientKey")))
        );
    }

    #[test]
    fn the_seed_example_token_is_invalid() {
        // Seed 000's sample token is deliberately broken ("ThisIsaFakeJWT" inside the payload).
        let seed = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJjb20ub2JThisIsaFakeJWTltZS1pbi1zdGF0dXMiLCJzdWIiOiI1NTcwNTg6MGQ5MDM3N2YtMTNlZS00MzEzLTlmNjYtMDA1NTVhYTI4MGUzIiwiY2xpZW50S2V5IjoiMThlNWViY2MtM2QyZC0zNzg5LWExODAtYzQ5NzgwOWM1ZTdlIiwiaXNzIjoiY29tLm9ic3MucGx1Z2luLnRpbWUtaW4tc3RhdHVzIiwiZXhwIjo0MTAyNDQ0NzQwLCJpYXQiOjE1ODMzMDgzMzB9.Nlinm0tNgM9pSk0Dd4FeNZVzLHAPabgfDEcVxdWuJGE";
        assert!(matches!(
            provider().verify(seed, NOW),
            Err(TisjwtFailure::Invalid(_))
        ));
    }
}
