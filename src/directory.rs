//! The user directory: does the user behind a valid credential exist, and is it active?
//!
//! Either a static list from the configuration, or a callout to the application's own user
//! API (Jira's `GET /rest/api/2/user?username={user}`: `name`, `key`, `active`,
//! `emailAddress`), whose answers the shell caches for `cache_ttl_seconds`.

use serde_json::Value;
use std::collections::BTreeSet;

use crate::callout::{encode_component, Callout};

/// What the directory knows of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Active,
    /// Present but deactivated.
    Inactive,
    /// Not in the directory: seed 001's "No user found with this username/email address".
    Unknown,
}

impl UserStatus {
    /// One byte, for the shared-data cache.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::Active => b'a',
            Self::Inactive => b'i',
            Self::Unknown => b'u',
        }
    }

    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            b'a' => Some(Self::Active),
            b'i' => Some(Self::Inactive),
            b'u' => Some(Self::Unknown),
            _ => None,
        }
    }
}

/// A user of the static directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticUser {
    pub name: String,
    pub email: Option<String>,
    pub active: bool,
}

/// Where user status comes from.
#[derive(Debug, Clone)]
pub enum Directory {
    /// `users`: when `Some`, only these users exist (matched by name or email); when `None`,
    /// every user exists. `inactive` names users that exist but are deactivated.
    Static {
        users: Option<Vec<StaticUser>>,
        inactive: BTreeSet<String>,
    },
    Callout(DirectoryCallout),
}

impl Default for Directory {
    fn default() -> Self {
        Self::Static {
            users: None,
            inactive: BTreeSet::new(),
        }
    }
}

/// The application's user API, reached through an Envoy cluster.
#[derive(Debug, Clone)]
pub struct DirectoryCallout {
    pub cluster: String,
    pub authority: String,
    /// Path with `{user}`, replaced by the percent-encoded user.
    pub path_template: String,
    /// Sent as `Authorization` (a service account of the application); never logged.
    pub authorization: Option<String>,
    pub timeout_ms: u64,
    pub cache_ttl_seconds: i64,
    pub negative_cache_ttl_seconds: i64,
}

/// The answer to "who is this user?": known now, or ask the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Known(UserStatus),
    Ask(Callout),
}

/// Why the directory could not answer; the request is refused with a 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryError {
    /// No response (timeout, reset, no healthy host) or a status other than 200/404.
    Unavailable,
    /// A 200 whose body is not a user object (or list of them).
    Unparsable,
}

impl Directory {
    pub fn with_inactive_users(users: impl IntoIterator<Item = String>) -> Self {
        Self::Static {
            users: None,
            inactive: users.into_iter().collect(),
        }
    }

    pub fn lookup(&self, user: &str) -> Lookup {
        match self {
            Self::Static { users, inactive } => {
                Lookup::Known(static_status(users.as_deref(), inactive, user))
            }
            Self::Callout(callout) => Lookup::Ask(callout.request(user)),
        }
    }
}

fn static_status(users: Option<&[StaticUser]>, inactive: &BTreeSet<String>, user: &str) -> UserStatus {
    if inactive.contains(user) {
        return UserStatus::Inactive;
    }
    let Some(users) = users else {
        return UserStatus::Active;
    };
    match users
        .iter()
        .find(|u| u.name == user || u.email.as_deref() == Some(user))
    {
        Some(found) if found.active => UserStatus::Active,
        Some(_) => UserStatus::Inactive,
        None => UserStatus::Unknown,
    }
}

impl DirectoryCallout {
    fn request(&self, user: &str) -> Callout {
        let mut headers = vec![("accept".to_owned(), "application/json".to_owned())];
        if let Some(authorization) = &self.authorization {
            headers.push(("authorization".to_owned(), authorization.clone()));
        }
        Callout {
            cluster: self.cluster.clone(),
            method: "GET",
            path: self.path_template.replace("{user}", &encode_component(user)),
            authority: self.authority.clone(),
            headers,
            body: None,
            timeout_ms: self.timeout_ms,
        }
    }
}

/// Reads the application's answer: 200 with a user object (or a list whose first element is
/// the user, as Jira's `user/search` returns), 404 or an empty list for an unknown user.
pub fn parse_user_response(status: u32, body: &[u8]) -> Result<UserStatus, DirectoryError> {
    match status {
        200 => {}
        404 => return Ok(UserStatus::Unknown),
        _ => return Err(DirectoryError::Unavailable),
    }
    let user = match serde_json::from_slice::<Value>(body).map_err(|_| DirectoryError::Unparsable)? {
        Value::Array(users) => match users.into_iter().next() {
            Some(first) => first,
            None => return Ok(UserStatus::Unknown),
        },
        other => other,
    };
    let Value::Object(user) = user else {
        return Err(DirectoryError::Unparsable);
    };
    match user.get("active") {
        None | Some(Value::Bool(true)) => Ok(UserStatus::Active),
        Some(Value::Bool(false)) => Ok(UserStatus::Inactive),
        Some(_) => Err(DirectoryError::Unparsable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_inactive_users_match_exactly() {
        let directory = Directory::with_inactive_users(["557058:dead".to_string()]);
        assert_eq!(
            directory.lookup("557058:dead"),
            Lookup::Known(UserStatus::Inactive)
        );
        assert_eq!(directory.lookup("557058:DEAD"), Lookup::Known(UserStatus::Active));
    }

    #[test]
    fn a_static_user_list_knows_users_by_name_or_email() {
        let directory = Directory::Static {
            users: Some(vec![
                StaticUser {
                    name: "admin".into(),
                    email: Some("admin@example.com".into()),
                    active: true,
                },
                StaticUser {
                    name: "old".into(),
                    email: None,
                    active: false,
                },
            ]),
            inactive: BTreeSet::new(),
        };
        assert_eq!(directory.lookup("admin"), Lookup::Known(UserStatus::Active));
        assert_eq!(
            directory.lookup("admin@example.com"),
            Lookup::Known(UserStatus::Active)
        );
        assert_eq!(directory.lookup("old"), Lookup::Known(UserStatus::Inactive));
        assert_eq!(directory.lookup("nobody"), Lookup::Known(UserStatus::Unknown));
    }

    #[test]
    fn a_callout_directory_asks_with_the_user_encoded() {
        let directory = Directory::Callout(DirectoryCallout {
            cluster: "jira".into(),
            authority: "jira.internal".into(),
            path_template: "/rest/api/2/user?username={user}".into(),
            authorization: Some("Basic c3ZjOnB3".into()),
            timeout_ms: 500,
            cache_ttl_seconds: 60,
            negative_cache_ttl_seconds: 5,
        });
        let Lookup::Ask(callout) = directory.lookup("fred&admin=1") else {
            panic!()
        };
        assert_eq!(callout.path, "/rest/api/2/user?username=fred%26admin%3D1");
        assert_eq!(callout.cluster, "jira");
        assert!(callout
            .headers
            .contains(&("authorization".into(), "Basic c3ZjOnB3".into())));
    }

    #[test]
    fn jira_user_answers_are_read() {
        let active = br#"{"name":"admin","key":"JIRAUSER10000","active":true,"emailAddress":"a@b"}"#;
        assert_eq!(parse_user_response(200, active), Ok(UserStatus::Active));
        assert_eq!(
            parse_user_response(200, br#"{"name":"x","active":false}"#),
            Ok(UserStatus::Inactive)
        );
        assert_eq!(
            parse_user_response(200, br#"[{"name":"x","active":true}]"#),
            Ok(UserStatus::Active)
        );
        assert_eq!(parse_user_response(200, b"[]"), Ok(UserStatus::Unknown));
        assert_eq!(
            parse_user_response(404, br#"{"errorMessages":["The user named 'x' does not exist"]}"#),
            Ok(UserStatus::Unknown)
        );
    }

    #[test]
    fn garbage_and_failures_are_errors() {
        assert_eq!(
            parse_user_response(200, b"<html>"),
            Err(DirectoryError::Unparsable)
        );
        assert_eq!(
            parse_user_response(200, b"\"x\""),
            Err(DirectoryError::Unparsable)
        );
        assert_eq!(
            parse_user_response(200, br#"{"active":"yes"}"#),
            Err(DirectoryError::Unparsable)
        );
        assert_eq!(parse_user_response(500, b"{}"), Err(DirectoryError::Unavailable));
        assert_eq!(parse_user_response(401, b"{}"), Err(DirectoryError::Unavailable));
    }

    #[test]
    fn status_round_trips_through_one_byte() {
        for status in [UserStatus::Active, UserStatus::Inactive, UserStatus::Unknown] {
            assert_eq!(UserStatus::from_byte(status.to_byte()), Some(status));
        }
        assert_eq!(UserStatus::from_byte(0), None);
    }
}
