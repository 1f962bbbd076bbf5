//! `tisjwt`: compiled into the [`TisjwtProvider`].

use serde::Deserialize;

use super::common::{default_clock_skew, error, yes, ConfigError, MAX_CLOCK_SKEW_SECONDS, MIN_SECRET_BYTES};
use crate::clock::end_of_day;
use crate::jwt::{Algorithm, ClaimRules, HmacSecret};
use crate::tisjwt::{License, TisjwtProvider};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTisjwt {
    secret: String,
    #[serde(default = "default_algorithms")]
    algorithms: Vec<String>,
    issuer: Option<String>,
    audiences: Option<Vec<String>>,
    #[serde(default = "default_clock_skew")]
    clock_skew_seconds: u32,
    #[serde(default = "yes")]
    require_exp: bool,
    #[serde(default = "yes")]
    allow_query_parameter: bool,
    licenses: Option<Vec<RawLicense>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLicense {
    client_key: String,
    valid_until: String,
}

fn default_algorithms() -> Vec<String> {
    vec!["HS256".to_owned()]
}

impl RawTisjwt {
    pub(super) fn compile(self) -> Result<TisjwtProvider, ConfigError> {
        if self.secret.len() < MIN_SECRET_BYTES {
            return Err(error(
                "tisjwt.secret",
                format!("must be at least {MIN_SECRET_BYTES} bytes"),
            ));
        }
        if self.algorithms.is_empty() {
            return Err(error("tisjwt.algorithms", "must name at least one algorithm"));
        }
        let algorithms = self
            .algorithms
            .iter()
            .map(|name| match Algorithm::from_name(name) {
                Some(alg @ (Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)) => {
                    // RFC 7518 section 3.2: the secret is at least as long as the hash output.
                    let needed = alg.min_hmac_secret_bytes().unwrap_or(MIN_SECRET_BYTES);
                    if self.secret.len() < needed {
                        return Err(error(
                            "tisjwt.algorithms",
                            format!("`{name}` needs a secret of at least {needed} bytes"),
                        ));
                    }
                    Ok(alg)
                }
                _ => Err(error(
                    "tisjwt.algorithms",
                    format!("`{name}` is not one of HS256, HS384, HS512"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.clock_skew_seconds > MAX_CLOCK_SKEW_SECONDS {
            return Err(error(
                "tisjwt.clock_skew_seconds",
                format!("must be at most {MAX_CLOCK_SKEW_SECONDS}"),
            ));
        }
        if self.audiences.as_ref().is_some_and(Vec::is_empty) {
            return Err(error(
                "tisjwt.audiences",
                "must not be empty (omit it to skip the audience check)",
            ));
        }
        let licenses = self.licenses.map(compile_licenses).transpose()?;
        Ok(TisjwtProvider {
            secret: HmacSecret::new(self.secret.into_bytes()),
            algorithms,
            rules: ClaimRules {
                issuer: self.issuer,
                audiences: self.audiences,
                clock_skew_seconds: i64::from(self.clock_skew_seconds),
                require_exp: self.require_exp,
            },
            allow_query_parameter: self.allow_query_parameter,
            licenses,
        })
    }
}

fn compile_licenses(raw: Vec<RawLicense>) -> Result<Vec<License>, ConfigError> {
    raw.into_iter()
        .enumerate()
        .map(|(i, license)| {
            let field = format!("tisjwt.licenses[{i}].valid_until");
            let valid_until = end_of_day(&license.valid_until).ok_or_else(|| {
                error(
                    &field,
                    format!("`{}` is not a date YYYY-MM-DD", license.valid_until),
                )
            })?;
            Ok(License {
                client_key: license.client_key,
                valid_until,
            })
        })
        .collect()
}
