//! What every provider's configuration shares: the error type and the defaults and checks
//! more than one section uses.

use std::fmt;

/// Shortest HMAC secret accepted: RFC 7518 section 3.2 asks for a key at least as long as the
/// hash output, and HS256's is 32 bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// The name rules use for the TISJWT provider.
pub const TISJWT_PROVIDER: &str = "tisjwt";

/// A configuration error: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid configuration: field `{}`: {}",
            self.field, self.problem
        )
    }
}

pub(super) fn error(field: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.to_owned(),
        problem: problem.into(),
    }
}

pub(super) fn default_token_cache_ttl() -> u32 {
    300
}

pub(super) fn default_timeout_ms() -> u64 {
    1000
}

pub(super) fn default_clock_skew() -> u32 {
    60
}

pub(super) fn yes() -> bool {
    true
}

/// Longest clock skew accepted: more than a day would make `exp` meaningless.
pub(super) const MAX_CLOCK_SKEW_SECONDS: u32 = 86_400;

/// Header names the filter may set: lower-case RFC 9110 tokens, and never one that carries
/// routing or credentials.
pub(super) fn header_name(field: &str, name: String) -> Result<String, ConfigError> {
    let is_token_char =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(is_token_char) {
        return Err(error(field, format!("`{name}` is not a lower-case header name")));
    }
    const RESERVED: [&str; 5] = [
        "authorization",
        "host",
        "cookie",
        "content-length",
        "transfer-encoding",
    ];
    if RESERVED.contains(&name.as_str()) {
        return Err(error(
            field,
            format!("`{name}` cannot be used as an identity header"),
        ));
    }
    Ok(name)
}
