//! Every counter the filter defines, as one typed table: [`Metric`] names each, [`Metric::name`]
//! is its Envoy stat name (under the `wasmcustom.` prefix Envoy gives proxy-wasm metrics), and
//! [`Metric::ALL`] (and [`Gauge::ALL`]) is what the shell defines at configuration. A refusal counts under its reason
//! ([`Metric::denied`]), a failed token-provider callout under its kind
//! ([`Metric::introspection_failed`]); the compiler sees to it that every reason and kind has one.

use crate::introspect::ProviderFailure;
use crate::outcome::DenyReason;

/// One gauge. Every VM adds its own share (see [`crate::worker::Worker`]): Envoy shows the sum
/// over the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gauge {
    /// Questions asked and not answered yet.
    QuestionsInFlight,
    /// Requests waiting on a question or parked.
    QuestionsWaiting,
}

impl Gauge {
    pub const ALL: [Gauge; 2] = [Self::QuestionsInFlight, Self::QuestionsWaiting];

    pub fn name(self) -> &'static str {
        match self {
            Self::QuestionsInFlight => "tokengate.questions.in_flight",
            Self::QuestionsWaiting => "tokengate.questions.waiting",
        }
    }
}

/// One counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Requests forwarded.
    Allowed,
    /// RS256/384/512 and ES256/384/512 signatures Envoy checked for the module.
    SignaturesCheckedByHost,
    /// Token-provider callouts sent.
    IntrospectionCallouts,
    /// Requests that waited for another request's token-provider callout.
    IntrospectionCoalesced,
    /// Token-provider answers found in the shared cache.
    IntrospectionCacheHit,
    /// Token-provider answers missing from the shared cache.
    IntrospectionCacheMiss,
    /// The provider refused our own client credentials.
    IntrospectionFailedClientRejected,
    /// No answer from the provider (timeout, connection refused, reset).
    IntrospectionFailedNoResponse,
    /// An unexpected status from the provider.
    IntrospectionFailedBadStatus,
    /// A 200 from the provider that is not the JSON object the protocol promises.
    IntrospectionFailedUnparsable,
    /// Users found in the directory cache.
    DirectoryCacheHit,
    /// Users missing from the directory cache.
    DirectoryCacheMiss,
    /// Directory lookups that gave no usable answer.
    DirectoryCalloutFailed,
    /// Remote JWKS fetches that brought keys.
    JwksFetchOk,
    /// Remote JWKS fetches that failed.
    JwksFetchFailed,
    /// Requests that waited for keys (first load or unknown `kid`).
    JwksWaited,
    DeniedMissingCredential,
    DeniedAmbiguousCredential,
    DeniedInvalidToken,
    DeniedExpiredToken,
    DeniedInvalidLicense,
    DeniedInactiveUser,
    DeniedUnknownUser,
    DeniedInsufficientScope,
    DeniedDirectoryUnavailable,
    DeniedTokenInactive,
    DeniedUnmappedClient,
    DeniedProviderRejectedClient,
    DeniedProviderUnavailable,
    DeniedMalformedBasic,
    DeniedInvalidApiToken,
    DeniedLockedOut,
    DeniedKeysUnavailable,
    DeniedNoRule,
    DeniedAmbiguousPath,
    DeniedInternalError,
    DeniedBodyTooLarge,
    DeniedBodyTimeout,
    DeniedNonceStoreFull,
    /// OAuth 1.0a requests refused, one counter per Problem Reporting name.
    DeniedOAuth1ParameterAbsent,
    DeniedOAuth1ParameterRejected,
    DeniedOAuth1VersionRejected,
    DeniedOAuth1SignatureMethodRejected,
    DeniedOAuth1SignatureInvalid,
    DeniedOAuth1TimestampRefused,
    DeniedOAuth1NonceUsed,
    DeniedOAuth1ConsumerKeyUnknown,
    DeniedOAuth1TokenRejected,
    DeniedOAuth1TokenExpired,
    DeniedOAuth1PermissionDenied,
}

impl Metric {
    /// Every counter, in the order the README lists them.
    pub const ALL: [Metric; 50] = [
        Self::Allowed,
        Self::DeniedMissingCredential,
        Self::DeniedAmbiguousCredential,
        Self::DeniedInvalidToken,
        Self::DeniedExpiredToken,
        Self::DeniedInvalidLicense,
        Self::DeniedInactiveUser,
        Self::DeniedUnknownUser,
        Self::DeniedInsufficientScope,
        Self::DeniedDirectoryUnavailable,
        Self::DeniedTokenInactive,
        Self::DeniedUnmappedClient,
        Self::DeniedProviderRejectedClient,
        Self::DeniedProviderUnavailable,
        Self::DeniedMalformedBasic,
        Self::DeniedInvalidApiToken,
        Self::DeniedLockedOut,
        Self::DeniedKeysUnavailable,
        Self::DeniedNoRule,
        Self::DeniedAmbiguousPath,
        Self::DeniedInternalError,
        Self::DeniedBodyTooLarge,
        Self::DeniedBodyTimeout,
        Self::DeniedNonceStoreFull,
        Self::DeniedOAuth1ParameterAbsent,
        Self::DeniedOAuth1ParameterRejected,
        Self::DeniedOAuth1VersionRejected,
        Self::DeniedOAuth1SignatureMethodRejected,
        Self::DeniedOAuth1SignatureInvalid,
        Self::DeniedOAuth1TimestampRefused,
        Self::DeniedOAuth1NonceUsed,
        Self::DeniedOAuth1ConsumerKeyUnknown,
        Self::DeniedOAuth1TokenRejected,
        Self::DeniedOAuth1TokenExpired,
        Self::DeniedOAuth1PermissionDenied,
        Self::DirectoryCacheHit,
        Self::DirectoryCacheMiss,
        Self::DirectoryCalloutFailed,
        Self::JwksFetchOk,
        Self::JwksFetchFailed,
        Self::JwksWaited,
        Self::SignaturesCheckedByHost,
        Self::IntrospectionCallouts,
        Self::IntrospectionCoalesced,
        Self::IntrospectionCacheHit,
        Self::IntrospectionCacheMiss,
        Self::IntrospectionFailedClientRejected,
        Self::IntrospectionFailedNoResponse,
        Self::IntrospectionFailedBadStatus,
        Self::IntrospectionFailedUnparsable,
    ];

    /// The counter's name as the filter defines it (`tokengate.denied.no_rule`); Envoy shows it
    /// as `wasmcustom.<name>`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Allowed => "tokengate.allowed",
            Self::SignaturesCheckedByHost => "tokengate.jwt.signatures_checked_by_host",
            Self::IntrospectionCallouts => "tokengate.introspection.callouts",
            Self::IntrospectionCoalesced => "tokengate.introspection.coalesced",
            Self::IntrospectionCacheHit => "tokengate.introspection.cache_hit",
            Self::IntrospectionCacheMiss => "tokengate.introspection.cache_miss",
            Self::IntrospectionFailedClientRejected => "tokengate.introspection.failed.client_rejected",
            Self::IntrospectionFailedNoResponse => "tokengate.introspection.failed.no_response",
            Self::IntrospectionFailedBadStatus => "tokengate.introspection.failed.bad_status",
            Self::IntrospectionFailedUnparsable => "tokengate.introspection.failed.unparsable",
            Self::DirectoryCacheHit => "tokengate.directory.cache_hit",
            Self::DirectoryCacheMiss => "tokengate.directory.cache_miss",
            Self::DirectoryCalloutFailed => "tokengate.directory.callout_failed",
            Self::JwksFetchOk => "tokengate.jwks.fetch_ok",
            Self::JwksFetchFailed => "tokengate.jwks.fetch_failed",
            Self::JwksWaited => "tokengate.jwks.waited",
            Self::DeniedMissingCredential => "tokengate.denied.missing_credential",
            Self::DeniedAmbiguousCredential => "tokengate.denied.ambiguous_credential",
            Self::DeniedInvalidToken => "tokengate.denied.invalid_token",
            Self::DeniedExpiredToken => "tokengate.denied.expired_token",
            Self::DeniedInvalidLicense => "tokengate.denied.invalid_license",
            Self::DeniedInactiveUser => "tokengate.denied.inactive_user",
            Self::DeniedUnknownUser => "tokengate.denied.unknown_user",
            Self::DeniedInsufficientScope => "tokengate.denied.insufficient_scope",
            Self::DeniedDirectoryUnavailable => "tokengate.denied.directory_unavailable",
            Self::DeniedTokenInactive => "tokengate.denied.token_inactive",
            Self::DeniedUnmappedClient => "tokengate.denied.unmapped_client",
            Self::DeniedProviderRejectedClient => "tokengate.denied.provider_rejected_client",
            Self::DeniedProviderUnavailable => "tokengate.denied.provider_unavailable",
            Self::DeniedMalformedBasic => "tokengate.denied.malformed_basic",
            Self::DeniedInvalidApiToken => "tokengate.denied.invalid_api_token",
            Self::DeniedLockedOut => "tokengate.denied.locked_out",
            Self::DeniedKeysUnavailable => "tokengate.denied.keys_unavailable",
            Self::DeniedNoRule => "tokengate.denied.no_rule",
            Self::DeniedAmbiguousPath => "tokengate.denied.ambiguous_path",
            Self::DeniedInternalError => "tokengate.denied.internal_error",
            Self::DeniedBodyTooLarge => "tokengate.denied.body_too_large",
            Self::DeniedBodyTimeout => "tokengate.denied.body_timeout",
            Self::DeniedNonceStoreFull => "tokengate.denied.nonce_store_full",
            Self::DeniedOAuth1ParameterAbsent => "tokengate.denied.oauth1.parameter_absent",
            Self::DeniedOAuth1ParameterRejected => "tokengate.denied.oauth1.parameter_rejected",
            Self::DeniedOAuth1VersionRejected => "tokengate.denied.oauth1.version_rejected",
            Self::DeniedOAuth1SignatureMethodRejected => "tokengate.denied.oauth1.signature_method_rejected",
            Self::DeniedOAuth1SignatureInvalid => "tokengate.denied.oauth1.signature_invalid",
            Self::DeniedOAuth1TimestampRefused => "tokengate.denied.oauth1.timestamp_refused",
            Self::DeniedOAuth1NonceUsed => "tokengate.denied.oauth1.nonce_used",
            Self::DeniedOAuth1ConsumerKeyUnknown => "tokengate.denied.oauth1.consumer_key_unknown",
            Self::DeniedOAuth1TokenRejected => "tokengate.denied.oauth1.token_rejected",
            Self::DeniedOAuth1TokenExpired => "tokengate.denied.oauth1.token_expired",
            Self::DeniedOAuth1PermissionDenied => "tokengate.denied.oauth1.permission_denied",
        }
    }

    /// The counter with this name without its `tokengate.` prefix (`jwks.waited`), for callers
    /// that still name counters by string.
    pub fn named(short: &str) -> Option<Metric> {
        Self::ALL
            .into_iter()
            .find(|metric| metric.name().strip_prefix("tokengate.") == Some(short))
    }

    /// The `tokengate.denied.<reason>` counter of a refusal.
    pub fn denied(reason: &DenyReason) -> Metric {
        match reason {
            DenyReason::MissingCredential => Self::DeniedMissingCredential,
            DenyReason::AmbiguousCredential => Self::DeniedAmbiguousCredential,
            DenyReason::InvalidToken(_) => Self::DeniedInvalidToken,
            DenyReason::ExpiredToken => Self::DeniedExpiredToken,
            DenyReason::LicenseInvalid => Self::DeniedInvalidLicense,
            DenyReason::InactiveUser => Self::DeniedInactiveUser,
            DenyReason::UnknownUser => Self::DeniedUnknownUser,
            DenyReason::InsufficientScope(_) => Self::DeniedInsufficientScope,
            DenyReason::DirectoryUnavailable => Self::DeniedDirectoryUnavailable,
            DenyReason::TokenInactive => Self::DeniedTokenInactive,
            DenyReason::UnmappedClient => Self::DeniedUnmappedClient,
            DenyReason::ProviderRejectedClient => Self::DeniedProviderRejectedClient,
            DenyReason::ProviderUnavailable => Self::DeniedProviderUnavailable,
            DenyReason::MalformedBasic => Self::DeniedMalformedBasic,
            DenyReason::InvalidApiToken => Self::DeniedInvalidApiToken,
            DenyReason::LockedOut { .. } => Self::DeniedLockedOut,
            DenyReason::KeysUnavailable => Self::DeniedKeysUnavailable,
            DenyReason::NoRule => Self::DeniedNoRule,
            DenyReason::AmbiguousPath(_) => Self::DeniedAmbiguousPath,
            DenyReason::Internal => Self::DeniedInternalError,
            DenyReason::BodyTooLarge => Self::DeniedBodyTooLarge,
            DenyReason::BodyTimeout => Self::DeniedBodyTimeout,
            DenyReason::NonceStoreFull => Self::DeniedNonceStoreFull,
            DenyReason::OAuth1(problem) => Self::oauth1_problem(*problem),
        }
    }

    /// The `tokengate.introspection.failed.<kind>` counter of a failed token-provider callout.
    /// The `tokengate.denied.oauth1.<problem>` counter of an OAuth 1.0a refusal.
    pub fn oauth1_problem(problem: oauth1::Problem) -> Metric {
        use oauth1::Problem;
        match problem {
            Problem::ParameterAbsent => Self::DeniedOAuth1ParameterAbsent,
            Problem::VersionRejected => Self::DeniedOAuth1VersionRejected,
            Problem::SignatureMethodRejected => Self::DeniedOAuth1SignatureMethodRejected,
            Problem::SignatureInvalid => Self::DeniedOAuth1SignatureInvalid,
            Problem::TimestampRefused => Self::DeniedOAuth1TimestampRefused,
            Problem::NonceUsed => Self::DeniedOAuth1NonceUsed,
            Problem::ConsumerKeyUnknown => Self::DeniedOAuth1ConsumerKeyUnknown,
            Problem::TokenRejected => Self::DeniedOAuth1TokenRejected,
            Problem::TokenExpired => Self::DeniedOAuth1TokenExpired,
            Problem::PermissionDenied => Self::DeniedOAuth1PermissionDenied,
            // A problem a later `oauth1` names (the enum is non-exhaustive) counts as the
            // catch-all it would otherwise be.
            Problem::ParameterRejected | _ => Self::DeniedOAuth1ParameterRejected,
        }
    }

    pub fn introspection_failed(failure: ProviderFailure) -> Metric {
        match failure {
            ProviderFailure::ClientRejected => Self::IntrospectionFailedClientRejected,
            ProviderFailure::NoResponse => Self::IntrospectionFailedNoResponse,
            ProviderFailure::BadStatus => Self::IntrospectionFailedBadStatus,
            ProviderFailure::Unparsable => Self::IntrospectionFailedUnparsable,
        }
    }

    /// The last segment of the name (`no_rule` of `tokengate.denied.no_rule`).
    pub fn suffix(self) -> &'static str {
        let name = self.name();
        name.rsplit_once('.').map_or(name, |(_, last)| last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::JwtError;
    use crate::path::AmbiguousPath;
    use std::collections::HashSet;

    /// One value of every reason (the compiler checks [`Metric::denied`] covers them; this
    /// list is checked against the enum by the exhaustive match in `reason_index`).
    fn every_reason() -> Vec<DenyReason> {
        vec![
            DenyReason::MissingCredential,
            DenyReason::AmbiguousCredential,
            DenyReason::InvalidToken(JwtError::Malformed),
            DenyReason::ExpiredToken,
            DenyReason::LicenseInvalid,
            DenyReason::InactiveUser,
            DenyReason::UnknownUser,
            DenyReason::InsufficientScope(vec!["read".to_owned()]),
            DenyReason::DirectoryUnavailable,
            DenyReason::TokenInactive,
            DenyReason::UnmappedClient,
            DenyReason::ProviderRejectedClient,
            DenyReason::ProviderUnavailable,
            DenyReason::MalformedBasic,
            DenyReason::InvalidApiToken,
            DenyReason::LockedOut {
                login_url: "https://jira.example.com/login.jsp".to_owned(),
            },
            DenyReason::KeysUnavailable,
            DenyReason::NoRule,
            DenyReason::AmbiguousPath(AmbiguousPath::EncodedSlash),
            DenyReason::Internal,
            DenyReason::BodyTooLarge,
            DenyReason::BodyTimeout,
            DenyReason::NonceStoreFull,
            DenyReason::OAuth1(oauth1::Problem::ParameterAbsent),
            DenyReason::OAuth1(oauth1::Problem::ParameterRejected),
            DenyReason::OAuth1(oauth1::Problem::VersionRejected),
            DenyReason::OAuth1(oauth1::Problem::SignatureMethodRejected),
            DenyReason::OAuth1(oauth1::Problem::SignatureInvalid),
            DenyReason::OAuth1(oauth1::Problem::TimestampRefused),
            DenyReason::OAuth1(oauth1::Problem::NonceUsed),
            DenyReason::OAuth1(oauth1::Problem::ConsumerKeyUnknown),
            DenyReason::OAuth1(oauth1::Problem::TokenRejected),
            DenyReason::OAuth1(oauth1::Problem::TokenExpired),
            DenyReason::OAuth1(oauth1::Problem::PermissionDenied),
        ]
    }

    /// Where a reason stands in `every_reason`: adding a reason fails to compile here until it
    /// is listed there too.
    fn reason_index(reason: &DenyReason) -> usize {
        match reason {
            DenyReason::MissingCredential => 0,
            DenyReason::AmbiguousCredential => 1,
            DenyReason::InvalidToken(_) => 2,
            DenyReason::ExpiredToken => 3,
            DenyReason::LicenseInvalid => 4,
            DenyReason::InactiveUser => 5,
            DenyReason::UnknownUser => 6,
            DenyReason::InsufficientScope(_) => 7,
            DenyReason::DirectoryUnavailable => 8,
            DenyReason::TokenInactive => 9,
            DenyReason::UnmappedClient => 10,
            DenyReason::ProviderRejectedClient => 11,
            DenyReason::ProviderUnavailable => 12,
            DenyReason::MalformedBasic => 13,
            DenyReason::InvalidApiToken => 14,
            DenyReason::LockedOut { .. } => 15,
            DenyReason::KeysUnavailable => 16,
            DenyReason::NoRule => 17,
            DenyReason::AmbiguousPath(_) => 18,
            DenyReason::Internal => 19,
            DenyReason::BodyTooLarge => 20,
            DenyReason::BodyTimeout => 21,
            DenyReason::NonceStoreFull => 22,
            DenyReason::OAuth1(problem) => {
                let every = [
                    oauth1::Problem::ParameterAbsent,
                    oauth1::Problem::ParameterRejected,
                    oauth1::Problem::VersionRejected,
                    oauth1::Problem::SignatureMethodRejected,
                    oauth1::Problem::SignatureInvalid,
                    oauth1::Problem::TimestampRefused,
                    oauth1::Problem::NonceUsed,
                    oauth1::Problem::ConsumerKeyUnknown,
                    oauth1::Problem::TokenRejected,
                    oauth1::Problem::TokenExpired,
                    oauth1::Problem::PermissionDenied,
                ];
                23 + every.iter().position(|p| p == problem).unwrap_or(every.len())
            }
        }
    }

    const EVERY_FAILURE: [ProviderFailure; 4] = [
        ProviderFailure::ClientRejected,
        ProviderFailure::NoResponse,
        ProviderFailure::BadStatus,
        ProviderFailure::Unparsable,
    ];

    #[test]
    fn every_gauge_has_its_row_in_the_readme_metrics_table() {
        let readme = include_str!("../../../README.md");
        for gauge in Gauge::ALL {
            let row = format!("| `wasmcustom.{}` (gauge) |", gauge.name());
            assert!(readme.contains(&row), "no row {row}");
        }
    }

    #[test]
    fn every_counter_has_its_own_name_under_tokengate() {
        let names: HashSet<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names.len(), Metric::ALL.len(), "two counters share a name");
        for metric in Metric::ALL {
            assert!(metric.name().starts_with("tokengate."), "{metric:?}");
            let short = metric.name().strip_prefix("tokengate.").unwrap();
            assert_eq!(Metric::named(short), Some(metric));
        }
        assert_eq!(Metric::named("no_such.counter"), None);
    }

    #[test]
    fn every_deny_reason_counts_under_its_own_defined_counter() {
        let reasons = every_reason();
        for (i, reason) in reasons.iter().enumerate() {
            assert_eq!(
                reason_index(reason),
                i,
                "every_reason is out of order at {reason:?}"
            );
        }
        let counters: HashSet<Metric> = reasons.iter().map(Metric::denied).collect();
        assert_eq!(counters.len(), reasons.len(), "two reasons share a counter");
        for counter in &counters {
            assert!(Metric::ALL.contains(counter), "{counter:?} is not defined");
            assert!(counter.name().starts_with("tokengate.denied."), "{counter:?}");
        }
    }

    #[test]
    fn every_provider_failure_counts_under_its_own_defined_counter() {
        let counters: HashSet<Metric> = EVERY_FAILURE
            .into_iter()
            .map(Metric::introspection_failed)
            .collect();
        assert_eq!(counters.len(), EVERY_FAILURE.len());
        for counter in &counters {
            assert!(Metric::ALL.contains(counter), "{counter:?} is not defined");
            assert!(counter.name().starts_with("tokengate.introspection.failed."));
        }
    }

    #[test]
    fn the_counters_keep_the_names_dashboards_know() {
        assert_eq!(Metric::Allowed.name(), "tokengate.allowed");
        assert_eq!(
            Metric::denied(&DenyReason::Internal).name(),
            "tokengate.denied.internal_error"
        );
        assert_eq!(
            Metric::denied(&DenyReason::LicenseInvalid).suffix(),
            "invalid_license"
        );
        assert_eq!(
            Metric::introspection_failed(ProviderFailure::NoResponse).name(),
            "tokengate.introspection.failed.no_response"
        );
    }

    /// The counters the README's metrics table lists: a row's first cell names one counter and
    /// its siblings (`` `wasmcustom.tokengate.jwks.fetch_ok` / `fetch_failed` ``), or a family
    /// (`<reason>`, `<kind>`) whose members the second cell lists.
    fn readme_counters() -> HashSet<String> {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("\n## Metrics\n")
            .nth(1)
            .expect("README has a Metrics section");
        let ticked =
            |cell: &str| -> Vec<String> { cell.split('`').skip(1).step_by(2).map(str::to_owned).collect() };
        let rows = section
            .lines()
            .skip_while(|line| !line.starts_with('|'))
            .take_while(|line| line.starts_with('|'))
            .skip(2);
        let mut names = HashSet::new();
        // Gauges (`(gauge)` in their row) are [`Gauge`]s, not counters of this table.
        for row in rows.filter(|row| !row.contains("(gauge)")) {
            let cells: Vec<&str> = row.split('|').collect();
            let heads = ticked(cells[1]);
            let full = heads[0]
                .strip_prefix("wasmcustom.")
                .expect("a counter under wasmcustom.");
            let (family, last) = full.rsplit_once('.').expect("a dotted counter name");
            if last.starts_with('<') {
                let members = ticked(cells[2]).into_iter().filter(|item| !item.contains('.'));
                names.extend(members.map(|member| format!("{family}.{member}")));
            } else {
                names.insert(full.to_owned());
                names.extend(heads[1..].iter().map(|sibling| format!("{family}.{sibling}")));
            }
        }
        names
    }

    #[test]
    fn the_readme_lists_exactly_the_counters_the_filter_defines() {
        let defined: HashSet<String> = Metric::ALL.iter().map(|m| m.name().to_owned()).collect();
        let listed = readme_counters();
        let undocumented: Vec<_> = defined.difference(&listed).collect();
        let not_defined: Vec<_> = listed.difference(&defined).collect();
        assert!(
            undocumented.is_empty(),
            "README's Metrics table lacks {undocumented:?}"
        );
        assert!(
            not_defined.is_empty(),
            "README's Metrics table lists undefined {not_defined:?}"
        );
    }
}
