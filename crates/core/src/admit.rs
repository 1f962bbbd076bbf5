//! The end of stage 4, admit: the directory's word on a verified user (`look_up`, [`finish`]), and what
//! changes on a request that is let through: the identity in the configured headers, every
//! client-sent copy of those headers removed, and no credential the application does not need
//! (the `Authorization` header of an accepted token and the `tisjwt` query parameter).

use crate::config::Config;
use crate::directory::{DirectoryError, Lookup, UserStatus};
use crate::extract::Location;
use crate::outcome::{Decision, Denial, DenyReason, Family, Forward, Pending, Step};

/// The directory stage: answer now, or ask.
pub(crate) fn look_up(config: &Config, pending: Pending) -> Step {
    match config.directory.lookup(pending.user()) {
        Lookup::Known(status) => Step::Done(finish(config, pending, Ok(status))),
        Lookup::Ask(callout) => Step::LookUpUser { pending, callout },
    }
}

/// Completes a decision with the directory's answer.
pub fn finish(config: &Config, pending: Pending, status: Result<UserStatus, DirectoryError>) -> Decision {
    let family = pending.identity.family;
    let reason = match status {
        Ok(UserStatus::Active) => return Decision::Allow(forward(config, pending)),
        Ok(UserStatus::Inactive) => DenyReason::InactiveUser,
        Ok(UserStatus::Unknown) => unknown_user(family),
        Err(_) => DenyReason::DirectoryUnavailable,
    };
    Decision::Deny(Denial::new(family, reason).challenging(pending.challenges))
}

/// TISJWT users the directory does not know get seed 000's inactive-user answer, the only
/// user error that seed has; seed 001 has its own "No user found".
fn unknown_user(family: Family) -> DenyReason {
    match family {
        Family::Tisjwt => DenyReason::InactiveUser,
        Family::OAuth | Family::ApiToken | Family::OAuth1 => DenyReason::UnknownUser,
    }
}

/// Every header the filter may set: client-sent copies of all of them are removed.
fn identity_header_names(config: &Config) -> Vec<String> {
    let headers = &config.identity_headers;
    let claim_headers = config
        .jwt_providers
        .iter()
        .flat_map(|p| p.claim_headers.iter().map(|c| c.header.clone()));
    let mut names: Vec<String> = vec![headers.user.clone(), headers.tenant.clone()];
    for name in claim_headers {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

pub(crate) fn anonymous(config: &Config) -> Forward {
    Forward {
        remove_headers: identity_header_names(config),
        ..Forward::default()
    }
}

fn forward(config: &Config, pending: Pending) -> Forward {
    let headers = &config.identity_headers;
    let mut remove_headers = identity_header_names(config);
    if pending.location == Location::AuthorizationHeader && !pending.identity.forward_token {
        remove_headers.push("authorization".to_owned());
    }
    let mut set_headers = vec![(headers.user.clone(), pending.identity.user)];
    if let Some(tenant) = pending.identity.tenant {
        set_headers.push((headers.tenant.clone(), tenant));
    }
    set_headers.extend(pending.identity.claim_headers);
    Forward {
        remove_headers,
        set_headers,
        path: pending.forwarded_path,
    }
}
