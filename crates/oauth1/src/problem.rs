//! What a consumer is told went wrong, by the names of OAuth Problem Reporting
//! (<https://wiki.oauth.net/w/page/12238543/ProblemReporting>), which Jira sends as
//! `WWW-Authenticate: OAuth realm="...", oauth_problem="NAME"`. A leaf module: every stage's
//! error maps to one of these, and the filter's renderer writes it.

/// A Problem Reporting name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Problem {
    /// A required parameter is missing.
    ParameterAbsent,
    /// A parameter is malformed, repeated, or sent where it may not be.
    ParameterRejected,
    /// `oauth_version` is present and not `1.0`.
    VersionRejected,
    /// The signature method is unknown, or not one this consumer may use.
    SignatureMethodRejected,
    /// The signature does not verify.
    SignatureInvalid,
    /// `oauth_timestamp` is outside the accepted window.
    TimestampRefused,
    /// `oauth_nonce` was already used with this consumer, token and a timestamp in the window.
    NonceUsed,
    /// No consumer is registered under `oauth_consumer_key`.
    ConsumerKeyUnknown,
    /// The token is unknown, of the wrong kind, or bound to another consumer.
    TokenRejected,
    /// The token has expired.
    TokenExpired,
    /// The user denied the consumer access.
    PermissionDenied,
}

impl Problem {
    /// The name as it goes in `oauth_problem`.
    pub fn name(self) -> &'static str {
        match self {
            Self::ParameterAbsent => "parameter_absent",
            Self::ParameterRejected => "parameter_rejected",
            Self::VersionRejected => "version_rejected",
            Self::SignatureMethodRejected => "signature_method_rejected",
            Self::SignatureInvalid => "signature_invalid",
            Self::TimestampRefused => "timestamp_refused",
            Self::NonceUsed => "nonce_used",
            Self::ConsumerKeyUnknown => "consumer_key_unknown",
            Self::TokenRejected => "token_rejected",
            Self::TokenExpired => "token_expired",
            Self::PermissionDenied => "permission_denied",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Problem;

    #[test]
    fn names_are_the_problem_reporting_ones() {
        let table = [
            (Problem::ParameterAbsent, "parameter_absent"),
            (Problem::ParameterRejected, "parameter_rejected"),
            (Problem::VersionRejected, "version_rejected"),
            (Problem::SignatureMethodRejected, "signature_method_rejected"),
            (Problem::SignatureInvalid, "signature_invalid"),
            (Problem::TimestampRefused, "timestamp_refused"),
            (Problem::NonceUsed, "nonce_used"),
            (Problem::ConsumerKeyUnknown, "consumer_key_unknown"),
            (Problem::TokenRejected, "token_rejected"),
            (Problem::TokenExpired, "token_expired"),
            (Problem::PermissionDenied, "permission_denied"),
        ];
        for (problem, name) in table {
            assert_eq!(problem.name(), name);
        }
    }
}
