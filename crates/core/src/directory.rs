//! The user directory: does the user behind a valid credential exist, and is it active?
//!
//! Either a static list from the configuration, or a callout to the application's own user
//! API (Jira's `GET /rest/api/2/user?username={user}`: `name`, `key`, `active`,
//! `emailAddress`), whose answers the shell caches for `cache_ttl_seconds`.

use serde_json::Value;
use std::collections::BTreeSet;

use crate::cache::{CacheKey, Scope, SharedStore, SlotCache};
use crate::callout::{encode_component, Callout};
use crate::clock::UnixSeconds;
use crate::username::{fold, MAX_USER_CHARS};

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
    /// every user exists. `inactive` names users that exist but are deactivated. Names and
    /// addresses are folded: build it with [`Directory::static_lists`].
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
    /// The digest of the `directory` section: its answers are cached under it, so another
    /// configuration's directory (another application, another service account) never
    /// answers for this one.
    pub scope: Scope,
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
    /// A 200 with one user object that is not the user asked about: the answer is not to our
    /// question (a misrouted lookup, a proxy's cached page), so nothing is known.
    WrongUser,
}

impl Directory {
    pub fn with_inactive_users(users: impl IntoIterator<Item = String>) -> Self {
        Self::static_lists(None, users)
    }

    /// The static directory, its names and e-mail addresses folded once here (as Jira folds
    /// them, [`fold`]) so that a lookup folds only the name asked about.
    pub fn static_lists(users: Option<Vec<StaticUser>>, inactive: impl IntoIterator<Item = String>) -> Self {
        let users = users.map(|users| {
            users
                .into_iter()
                .map(|user| StaticUser {
                    name: fold(&user.name),
                    email: user.email.as_deref().map(fold),
                    active: user.active,
                })
                .collect()
        });
        Self::Static {
            users,
            inactive: inactive.into_iter().map(|name| fold(&name)).collect(),
        }
    }

    pub fn lookup(&self, user: &str) -> Lookup {
        if user.chars().count() > MAX_USER_CHARS {
            // No Jira user has such a name: no callout is spent on it.
            return Lookup::Known(UserStatus::Unknown);
        }
        match self {
            Self::Static { users, inactive } => {
                Lookup::Known(static_status(users.as_deref(), inactive, user))
            }
            Self::Callout(callout) => Lookup::Ask(callout.request(user)),
        }
    }
}

fn static_status(users: Option<&[StaticUser]>, inactive: &BTreeSet<String>, user: &str) -> UserStatus {
    // The lists were folded when the directory was built (`static_lists`).
    let user = fold(user);
    if inactive.contains(&user) {
        return UserStatus::Inactive;
    }
    let Some(users) = users else {
        return UserStatus::Active;
    };
    match users
        .iter()
        .find(|u| u.name == user || u.email.as_deref() == Some(user.as_str()))
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

/// Slots of the shared cache of directory answers.
const USER_CACHE_SLOTS: u32 = 4096;

/// The directory callout's answers, shared by every worker: keyed by the user name folded as
/// Jira folds it ([`fold`]: `FRED` and `fred` are one entry), kept for the directory's
/// `cache_ttl_seconds` (an unknown user for `negative_cache_ttl_seconds`); failures are never
/// cached.
pub struct UserCache(SlotCache);

impl Default for UserCache {
    fn default() -> Self {
        Self(SlotCache::new("user", USER_CACHE_SLOTS))
    }
}

impl UserCache {
    /// Where `callout`'s answer about `user` is cached: also the coalescing key of the lookup
    /// that asks it (two requests for one user, however written, share one lookup).
    pub fn key(&self, callout: &DirectoryCallout, user: &str) -> CacheKey {
        self.0.key(&callout.scope, fold(user).as_bytes())
    }

    /// The cached status of `user` at `now`, as `callout` answered it.
    pub fn get(
        &self,
        store: &dyn SharedStore,
        callout: &DirectoryCallout,
        user: &str,
        now: UnixSeconds,
    ) -> Option<UserStatus> {
        let value = self.0.get(store, &self.key(callout, user), now)?;
        UserStatus::from_byte(*value.first()?)
    }

    /// Caches `status` of `user`, answered by `callout` at `now`.
    pub fn insert(
        &self,
        store: &dyn SharedStore,
        callout: &DirectoryCallout,
        user: &str,
        status: UserStatus,
        now: UnixSeconds,
    ) {
        let ttl = match status {
            UserStatus::Unknown => callout.negative_cache_ttl_seconds,
            UserStatus::Active | UserStatus::Inactive => callout.cache_ttl_seconds,
        };
        let until = now.saturating_add(ttl);
        self.0
            .insert(store, &self.key(callout, user), &[status.to_byte()], until);
    }
}

impl Directory {
    /// The cached status of `user` at `now`: only a callout directory caches.
    pub fn cached_status(&self, store: &dyn SharedStore, user: &str, now: UnixSeconds) -> Option<UserStatus> {
        match self {
            Self::Callout(callout) => UserCache::default().get(store, callout, user, now),
            Self::Static { .. } => None,
        }
    }
}

/// Reads the application's answer about `asked`, failing closed (Jira's user resource:
/// `name`, `key`, `emailAddress`, `active`).
///
/// - 404, an empty list, or a list without `asked` in it: [`UserStatus::Unknown`].
/// - A user object (or, in a list such as `user/search`'s, the one element that is `asked`)
///   is `asked` when its `name` equals `asked`, both folded as Jira folds names, or its `key`
///   does (a lookup by user key, `?key={user}`; Jira's keys are `JIRAUSER<n>` or a folded
///   name, a renamed user's old one, so in a list the element named `asked` comes before one
///   keyed so), or, when no element is `asked` by name or key, its `emailAddress` does (a lookup
///   by e-mail); it is
///   [`UserStatus::Active`] only with `"active": true`, and [`UserStatus::Inactive`] with
///   `"active": false` or no `active` at all (nothing said is not "active").
/// - Two elements with `asked` as their e-mail address and none with it as the name: the
///   answer does not say who the user is, [`UserStatus::Unknown`] (Jira refuses a log-in by
///   an e-mail address that is not unique, too).
/// - A user object for somebody else: [`DirectoryError::WrongUser`], an answer to a question
///   that was not asked. Anything that is not a user object (one with a `name`, `key` or
///   `emailAddress`), or a list of them, or whose `name`, `key`, `emailAddress` or `active` is
///   not what Jira sends (strings and a boolean): [`DirectoryError::Unparsable`]. Any other status: [`DirectoryError::Unavailable`].
pub fn parse_user_response(status: u32, body: &[u8], asked: &str) -> Result<UserStatus, DirectoryError> {
    match status {
        200 => {}
        404 => return Ok(UserStatus::Unknown),
        _ => return Err(DirectoryError::Unavailable),
    }
    let folded = fold(asked);
    match serde_json::from_slice::<Value>(body).map_err(|_| DirectoryError::Unparsable)? {
        Value::Array(answers) => {
            let users = answers
                .iter()
                .map(JiraUser::read)
                .collect::<Result<Vec<_>, _>>()?;
            // The user named so first: a renamed user keeps its old name as its key.
            let by_name = users.iter().find(|u| u.named(&folded));
            let by_key = || users.iter().find(|u| u.is(&folded));
            let found = match by_name.or_else(by_key) {
                Some(user) => Some(user),
                None => {
                    let mut by_email = users.iter().filter(|u| u.has_email(&folded));
                    match (by_email.next(), by_email.next()) {
                        (Some(user), None) => Some(user),
                        _ => None,
                    }
                }
            };
            Ok(found.map_or(UserStatus::Unknown, JiraUser::status))
        }
        object => {
            let user = JiraUser::read(&object)?;
            if user.is(&folded) || user.has_email(&folded) {
                Ok(user.status())
            } else {
                Err(DirectoryError::WrongUser)
            }
        }
    }
}

/// The fields of a Jira user object the directory reads.
struct JiraUser<'a> {
    name: Option<&'a str>,
    key: Option<&'a str>,
    email: Option<&'a str>,
    active: Option<bool>,
}

impl<'a> JiraUser<'a> {
    fn read(value: &'a Value) -> Result<Self, DirectoryError> {
        let Value::Object(user) = value else {
            return Err(DirectoryError::Unparsable);
        };
        let text = |field: &str| match user.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.as_str())),
            Some(_) => Err(DirectoryError::Unparsable),
        };
        let active = match user.get("active") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(active)) => Some(*active),
            Some(_) => return Err(DirectoryError::Unparsable),
        };
        let read = Self {
            name: text("name")?,
            key: text("key")?,
            email: text("emailAddress")?,
            active,
        };
        if read.name.is_none() && read.key.is_none() && read.email.is_none() {
            // Whoever this is, it is not a Jira user: no name, key or e-mail address.
            return Err(DirectoryError::Unparsable);
        }
        Ok(read)
    }

    /// Whether this is the user named `folded` (folded).
    fn named(&self, folded: &str) -> bool {
        self.name.is_some_and(|name| fold(name) == folded)
    }

    /// Whether this is the user named or keyed `folded` (folded).
    fn is(&self, folded: &str) -> bool {
        [self.name, self.key]
            .into_iter()
            .flatten()
            .any(|id| fold(id) == folded)
    }

    fn has_email(&self, folded: &str) -> bool {
        self.email.is_some_and(|email| fold(email) == folded)
    }

    fn status(&self) -> UserStatus {
        match self.active {
            Some(true) => UserStatus::Active,
            Some(false) | None => UserStatus::Inactive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_inactive_users_match_in_any_case() {
        let directory = Directory::with_inactive_users(["557058:dead".to_string()]);
        assert_eq!(
            directory.lookup("557058:dead"),
            Lookup::Known(UserStatus::Inactive)
        );
        assert_eq!(
            directory.lookup("557058:DEAD"),
            Lookup::Known(UserStatus::Inactive),
            "names are folded as Jira folds them"
        );
        assert_eq!(
            directory.lookup("557058:dead2"),
            Lookup::Known(UserStatus::Active)
        );
    }

    #[test]
    fn a_static_user_list_knows_users_by_name_or_email() {
        let directory = Directory::static_lists(
            Some(vec![
                StaticUser {
                    name: "Admin".into(),
                    email: Some("admin@Example.com".into()),
                    active: true,
                },
                StaticUser {
                    name: "old".into(),
                    email: None,
                    active: false,
                },
            ]),
            ["\u{212A}im".to_string()],
        );
        assert_eq!(directory.lookup("KIM"), Lookup::Known(UserStatus::Inactive));
        assert_eq!(directory.lookup("admin"), Lookup::Known(UserStatus::Active));
        assert_eq!(
            directory.lookup("admin@example.com"),
            Lookup::Known(UserStatus::Active)
        );
        assert_eq!(directory.lookup("old"), Lookup::Known(UserStatus::Inactive));
        assert_eq!(directory.lookup("ADMIN"), Lookup::Known(UserStatus::Active));
        assert_eq!(
            directory.lookup("Admin@Example.COM"),
            Lookup::Known(UserStatus::Active)
        );
        assert_eq!(directory.lookup("OLD"), Lookup::Known(UserStatus::Inactive));
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
            scope: [0; 32],
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

    /// (status, body, the user asked about, what the answer says)
    type Case<'a> = (u32, &'a [u8], &'a str, Result<UserStatus, DirectoryError>);

    #[test]
    fn jira_user_answers_are_read() {
        let active = br#"{"name":"admin","key":"JIRAUSER10000","active":true,"emailAddress":"a@b"}"#;
        let cases: [Case; 8] = [
            (200, active, "admin", Ok(UserStatus::Active)),
            (
                200,
                br#"{"name":"x","active":false}"#,
                "x",
                Ok(UserStatus::Inactive),
            ),
            (
                200,
                br#"[{"name":"x","active":true}]"#,
                "x",
                Ok(UserStatus::Active),
            ),
            (200, b"[]", "x", Ok(UserStatus::Unknown)),
            (
                200,
                br#"{"name":"x","active":null}"#,
                "x",
                Ok(UserStatus::Inactive),
            ),
            (
                200,
                br#"{"name":"x","emailAddress":null,"active":true}"#,
                "x",
                Ok(UserStatus::Active),
            ),
            (
                404,
                br#"{"errorMessages":["The user named 'x' does not exist"]}"#,
                "x",
                Ok(UserStatus::Unknown),
            ),
            (404, b"<html>", "x", Ok(UserStatus::Unknown)),
        ];
        for (status, body, asked, expected) in cases {
            let text = String::from_utf8_lossy(body);
            assert_eq!(
                parse_user_response(status, body, asked),
                expected,
                "{status} {text}"
            );
        }
    }

    #[test]
    fn an_answer_that_does_not_say_active_is_not_an_active_user() {
        for body in [
            &br#"{"name":"fred"}"#[..],
            br#"{"name":"fred","key":"JIRAUSER10004","emailAddress":"fred@example.com"}"#,
            br#"[{"name":"fred"}]"#,
        ] {
            assert_eq!(
                parse_user_response(200, body, "fred"),
                Ok(UserStatus::Inactive),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn the_answer_must_be_about_the_user_asked_about() {
        let other = br#"{"name":"admin","key":"JIRAUSER10000","active":true}"#;
        assert_eq!(
            parse_user_response(200, other, "fred"),
            Err(DirectoryError::WrongUser)
        );
        let list = br#"[{"name":"fredrik","active":true},{"name":"fred","active":false}]"#;
        assert_eq!(
            parse_user_response(200, list, "fred"),
            Ok(UserStatus::Inactive),
            "the element named fred decides, not the first"
        );
        assert_eq!(
            parse_user_response(200, list, "fr"),
            Ok(UserStatus::Unknown),
            "a list without the user does not know it"
        );
        assert_eq!(parse_user_response(200, list, "FREDRIK"), Ok(UserStatus::Active));
    }

    #[test]
    fn in_a_list_the_user_named_so_decides_before_a_user_keyed_so() {
        // Jira keeps a renamed user's old name as its key (`bob` renamed to `robert` keeps the
        // key `bob`), and a new `bob` gets `JIRAUSER<n>`: `user/search?username=bob` can list
        // both, and bob is the user named bob, whichever comes first.
        let list = br#"[{"name":"robert","key":"bob","active":true},
            {"name":"bob","key":"JIRAUSER10200","active":false}]"#;
        assert_eq!(parse_user_response(200, list, "bob"), Ok(UserStatus::Inactive));
        assert_eq!(parse_user_response(200, list, "BOB"), Ok(UserStatus::Inactive));
        let keyed = br#"[{"name":"robert","key":"bob","active":true}]"#;
        assert_eq!(
            parse_user_response(200, keyed, "bob"),
            Ok(UserStatus::Active),
            "a lookup by key"
        );
    }

    #[test]
    fn names_keys_and_email_addresses_are_folded_as_jira_folds_them() {
        let jsmith =
            br#"{"name":"jsmith","key":"JIRAUSER10006","emailAddress":"J.Smith@Example.com","active":true}"#;
        for asked in [
            "jsmith",
            "JSMITH",
            "JSmith",
            "jirauser10006",
            "JIRAUSER10006",
            "j.smith@example.com",
        ] {
            assert_eq!(
                parse_user_response(200, jsmith, asked),
                Ok(UserStatus::Active),
                "{asked}"
            );
        }
        let kelvin = r#"{"name":"kelvin","active":true}"#.as_bytes();
        assert_eq!(
            parse_user_response(200, kelvin, "\u{212A}ELVIN"),
            Ok(UserStatus::Active),
            "KELVIN SIGN folds to k"
        );
        let greek = r#"[{"name":"ΣΟΦΙΑ","active":true}]"#.as_bytes();
        assert_eq!(parse_user_response(200, greek, "σοφια"), Ok(UserStatus::Active));
        let istanbul = r#"{"name":"i\u0307lker","active":true}"#.as_bytes();
        assert_eq!(
            parse_user_response(200, istanbul, "\u{130}LKER"),
            Ok(UserStatus::Active),
            "İ folds to i and a combining dot, as in Java outside Turkish"
        );
        let ilker = br#"{"name":"ilker","active":true}"#;
        assert_eq!(
            parse_user_response(200, ilker, "\u{130}LKER"),
            Err(DirectoryError::WrongUser),
            "...which is not the plain i"
        );
    }

    #[test]
    fn a_lookup_by_email_needs_the_address_to_be_unique() {
        let one = br#"[{"name":"fred","emailAddress":"Fred@Example.com","active":true}]"#;
        assert_eq!(
            parse_user_response(200, one, "fred@example.com"),
            Ok(UserStatus::Active)
        );
        let two = br#"[{"name":"fred","emailAddress":"f@x","active":true},{"name":"fred2","emailAddress":"F@X","active":true}]"#;
        assert_eq!(parse_user_response(200, two, "f@x"), Ok(UserStatus::Unknown));
        let named = br#"[{"name":"bob","emailAddress":"f@x","active":true},{"name":"f@x","active":false}]"#;
        assert_eq!(
            parse_user_response(200, named, "f@x"),
            Ok(UserStatus::Inactive),
            "a name match wins over an e-mail match"
        );
    }

    #[test]
    fn garbage_and_failures_are_errors() {
        for body in [
            &b"<html>"[..],
            b"\"x\"",
            br#"{"name":"x","active":"yes"}"#,
            br#"{"name":1,"active":true}"#,
            br#"{"name":"x","emailAddress":["x"],"active":true}"#,
            br#"{"active":true}"#,
            b"{}",
            br#"[{"active":true}]"#,
            br#"[{"name":"x","active":true}, 3]"#,
            b"",
        ] {
            assert_eq!(
                parse_user_response(200, body, "x"),
                Err(DirectoryError::Unparsable),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            parse_user_response(500, b"{}", "x"),
            Err(DirectoryError::Unavailable)
        );
        assert_eq!(
            parse_user_response(401, b"{}", "x"),
            Err(DirectoryError::Unavailable)
        );
        assert_eq!(
            parse_user_response(302, b"", "x"),
            Err(DirectoryError::Unavailable)
        );
    }

    #[test]
    fn names_longer_than_any_jira_user_are_unknown_without_a_callout() {
        let callout = Directory::Callout(DirectoryCallout {
            cluster: "jira".into(),
            authority: "jira".into(),
            path_template: "/u?username={user}".into(),
            authorization: None,
            timeout_ms: 500,
            cache_ttl_seconds: 60,
            negative_cache_ttl_seconds: 5,
            scope: [0; 32],
        });
        let longest = "é".repeat(MAX_USER_CHARS);
        assert!(matches!(callout.lookup(&longest), Lookup::Ask(_)));
        let longer = format!("{longest}x");
        assert_eq!(callout.lookup(&longer), Lookup::Known(UserStatus::Unknown));
        assert_eq!(
            Directory::default().lookup(&longer),
            Lookup::Known(UserStatus::Unknown)
        );
    }

    #[test]
    fn the_answer_cache_is_keyed_by_the_folded_name_for_the_ttl_of_the_answer() {
        let store = crate::cache::tests::MapStore::default();
        let callout = DirectoryCallout {
            cluster: "jira".into(),
            authority: "jira".into(),
            path_template: "/u?username={user}".into(),
            authorization: None,
            timeout_ms: 100,
            cache_ttl_seconds: 60,
            negative_cache_ttl_seconds: 5,
            scope: [0; 32],
        };
        let cache = UserCache::default();
        cache.insert(&store, &callout, "JSmith", UserStatus::Inactive, 1_000);
        cache.insert(&store, &callout, "\u{212A}im", UserStatus::Active, 1_000);
        cache.insert(&store, &callout, "nobody", UserStatus::Unknown, 1_000);
        assert_eq!(
            cache.get(&store, &callout, "jsmith", 1_059),
            Some(UserStatus::Inactive)
        );
        assert_eq!(
            cache.get(&store, &callout, "JSMITH", 1_059),
            Some(UserStatus::Inactive)
        );
        assert_eq!(
            cache.get(&store, &callout, "KIM", 1_000),
            Some(UserStatus::Active),
            "KELVIN SIGN folds to k"
        );
        assert_eq!(
            cache.get(&store, &callout, "jsmith", 1_060),
            None,
            "past cache_ttl_seconds"
        );
        assert_eq!(
            cache.get(&store, &callout, "NOBODY", 1_004),
            Some(UserStatus::Unknown)
        );
        assert_eq!(
            cache.get(&store, &callout, "nobody", 1_005),
            None,
            "past negative_cache_ttl_seconds"
        );
        let other = DirectoryCallout {
            scope: [1; 32],
            ..callout.clone()
        };
        assert_eq!(
            cache.get(&store, &other, "jsmith", 1_000),
            None,
            "another configuration's directory did not answer"
        );
        assert_eq!(
            Directory::Callout(callout).cached_status(&store, "JSMITH", 1_000),
            Some(UserStatus::Inactive)
        );
    }

    #[test]
    fn status_round_trips_through_one_byte() {
        for status in [UserStatus::Active, UserStatus::Inactive, UserStatus::Unknown] {
            assert_eq!(UserStatus::from_byte(status.to_byte()), Some(status));
        }
        assert_eq!(UserStatus::from_byte(0), None);
    }
}
