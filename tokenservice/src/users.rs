//! The user directory: who exists, under which key, whether active or an administrator, and
//! password checks.
//!
//! [`Directory`] is what the rest of the service asks. [`FileDirectory`] is the embedded
//! default, a JSON file:
//!
//! ```json
//! {"users": [{"name": "fred", "key": "JIRAUSER10004", "displayName": "Fred F. User",
//!             "emailAddress": "fred@example.com", "active": true, "administrator": false,
//!             "passwordHash": "$argon2id$v=19$m=19456,t=2,p=1$..."}]}
//! ```
//!
//! Another implementation can ask the application itself (see the README: "Using the
//! application's own directory").

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// A user as the service needs to know them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The login name (`fred`); matched folded by [`fold`], as Jira does.
    pub name: String,
    /// The stable user key (`JIRAUSER10105`): tokens belong to keys, not names.
    pub key: String,
    pub display_name: String,
    pub email: String,
    pub active: bool,
    /// A system administrator: may use seed 004's administrative endpoints.
    pub administrator: bool,
}

/// Where users come from.
pub trait Directory: Send + Sync {
    /// The user with this login name, if any.
    fn by_name(&self, name: &str) -> Option<User>;
    /// The user with this key, if any.
    fn by_key(&self, key: &str) -> Option<User>;
    /// The user, if `name` exists, has a password and `password` is it. Inactive users are
    /// returned too: the caller decides what inactive means.
    fn check_password(&self, name: &str, password: &str) -> Option<User>;
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    users: Vec<RawUser>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawUser {
    name: String,
    key: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    email_address: Option<String>,
    #[serde(default = "yes")]
    active: bool,
    #[serde(default)]
    administrator: bool,
    #[serde(default)]
    password_hash: Option<String>,
}

fn yes() -> bool {
    true
}

/// A login name as Jira and Crowd compare it: `IdentifierUtils.toLowerCase`, which is
/// `toLowerCase(Locale.ENGLISH)`, the Unicode default full lower-case mapping (all of Unicode,
/// not only ASCII: `JSMITH`, `Σοφία`/`ΣΟΦΊΑ`, `KELVIN SIGN`+`im` and `kim` each name one user).
/// The filter folds the same way (`src/username.rs`).
pub fn fold(name: &str) -> String {
    name.to_lowercase()
}

/// Whether two login names are one user for Jira.
pub fn same_user(a: &str, b: &str) -> bool {
    a == b || fold(a) == fold(b)
}

/// The directory file could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryError(pub String);

impl fmt::Display for DirectoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DirectoryError {}

/// The directory read from a JSON file at start.
pub struct FileDirectory {
    users: Vec<(User, Option<String>)>,
    by_name: HashMap<String, usize>,
    by_key: HashMap<String, usize>,
    /// A hash of a random password, checked when the name is unknown or has no password, so
    /// that answering "no such user" takes as long as "wrong password" (no user enumeration
    /// by timing).
    decoy: String,
}

impl fmt::Debug for FileDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let users: Vec<&User> = self.users.iter().map(|(user, _)| user).collect();
        f.debug_struct("FileDirectory")
            .field("users", &users)
            .finish_non_exhaustive()
    }
}

impl FileDirectory {
    pub fn load(path: &Path) -> Result<Self, DirectoryError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DirectoryError(format!("cannot read users file {}: {e}", path.display())))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, DirectoryError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let raw: RawFile = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| DirectoryError(format!("users file: field `{}`: {}", e.path(), e.inner())))?;
        let mut directory = Self {
            users: Vec::new(),
            by_name: HashMap::new(),
            by_key: HashMap::new(),
            decoy: decoy_hash()?,
        };
        for (index, raw) in raw.users.into_iter().enumerate() {
            let field = |name: &str| format!("users file: users[{index}].{name}");
            if raw.name.is_empty() || raw.name.contains(':') || raw.name.chars().any(char::is_control) {
                return Err(DirectoryError(format!(
                    "{}: must be non-empty, without `:`",
                    field("name")
                )));
            }
            if raw.key.is_empty() || raw.key.chars().any(char::is_control) {
                return Err(DirectoryError(format!("{}: must be non-empty", field("key"))));
            }
            if let Some(hash) = &raw.password_hash {
                PasswordHash::new(hash).map_err(|e| {
                    DirectoryError(format!("{}: not a PHC string: {e}", field("passwordHash")))
                })?;
            }
            let folded = fold(&raw.name);
            if directory.by_name.insert(folded, index).is_some() {
                return Err(DirectoryError(format!(
                    "{}: {:?} appears twice",
                    field("name"),
                    raw.name
                )));
            }
            if directory.by_key.insert(raw.key.clone(), index).is_some() {
                return Err(DirectoryError(format!(
                    "{}: {:?} appears twice",
                    field("key"),
                    raw.key
                )));
            }
            let user = User {
                display_name: raw.display_name.unwrap_or_else(|| raw.name.clone()),
                email: raw.email_address.unwrap_or_default(),
                name: raw.name,
                key: raw.key,
                active: raw.active,
                administrator: raw.administrator,
            };
            directory.users.push((user, raw.password_hash));
        }
        Ok(directory)
    }

    fn entry(&self, index: Option<&usize>) -> Option<&(User, Option<String>)> {
        index.and_then(|&i| self.users.get(i))
    }
}

impl Directory for FileDirectory {
    fn by_name(&self, name: &str) -> Option<User> {
        self.entry(self.by_name.get(&fold(name)))
            .map(|(user, _)| user.clone())
    }

    fn by_key(&self, key: &str) -> Option<User> {
        self.entry(self.by_key.get(key)).map(|(user, _)| user.clone())
    }

    fn check_password(&self, name: &str, password: &str) -> Option<User> {
        match self.entry(self.by_name.get(&fold(name))) {
            Some((user, Some(hash))) => verify_password(password, hash).then(|| user.clone()),
            _ => {
                let _ = verify_password(password, &self.decoy);
                None
            }
        }
    }
}

/// Whether `password` is the one `phc` (an argon2 PHC string) was made from.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// Hashes `password` with argon2id (the crate's defaults: m=19 MiB, t=2, p=1, OWASP's
/// recommendation) and a 128-bit random salt, as a PHC string for the users file.
pub fn hash_password(password: &str) -> Result<String, DirectoryError> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| DirectoryError(format!("no randomness: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| DirectoryError(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| DirectoryError(e.to_string()))
}

fn decoy_hash() -> Result<String, DirectoryError> {
    let mut password = [0u8; 16];
    getrandom::getrandom(&mut password).map_err(|e| DirectoryError(format!("no randomness: {e}")))?;
    hash_password(&format!("{password:?}"))
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A directory of the demo's users, each with the password `<name>-password`.
    pub fn demo_directory() -> FileDirectory {
        let users = [
            ("admin", "JIRAUSER10005", true, true),
            ("fred", "JIRAUSER10004", true, false),
            ("jsmith", "JIRAUSER10006", true, false),
            ("departed", "JIRAUSER10008", false, false),
        ];
        let entries: Vec<serde_json::Value> = users
            .iter()
            .map(|(name, key, active, administrator)| {
                serde_json::json!({"name": name, "key": key, "displayName": name.to_uppercase(),
                    "emailAddress": format!("{name}@example.com"), "active": active,
                    "administrator": administrator,
                    "passwordHash": fast_hash(&format!("{name}-password"))})
            })
            .collect();
        FileDirectory::parse(&serde_json::json!({"users": entries}).to_string()).unwrap()
    }

    /// A cheap argon2 hash (tests only: the real one takes a few milliseconds).
    fn fast_hash(password: &str) -> String {
        let params = argon2::Params::new(1024, 1, 1, None).unwrap();
        let argon = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::encode_b64(b"fixed-test-salt!").unwrap();
        argon
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    #[test]
    fn users_are_found_by_name_in_any_case_and_by_key() {
        let directory = demo_directory();
        assert_eq!(directory.by_name("Fred").unwrap().key, "JIRAUSER10004");
        assert_eq!(directory.by_key("JIRAUSER10005").unwrap().name, "admin");
        assert!(directory.by_key("jiraUSER10005").is_none());
        assert!(directory.by_name("nobody").is_none());
    }

    #[test]
    fn names_are_folded_over_all_of_unicode_as_jira_folds_them() {
        let text = r#"{"users":[{"name":"σοφία","key":"1"},{"name":"kim","key":"2"},
            {"name":"i\u0307lker","key":"3"},{"name":"JSmith","key":"4"}]}"#;
        let directory = FileDirectory::parse(text).unwrap();
        for (name, key) in [
            ("ΣΟΦΊΑ", "1"),
            ("Σοφία", "1"),
            ("\u{212A}IM", "2"),
            ("\u{130}LKER", "3"),
            ("jsmith", "4"),
            ("JSMITH", "4"),
        ] {
            assert_eq!(directory.by_name(name).map(|u| u.key), Some(key.into()), "{name}");
        }
        assert!(directory.by_name("ILKER").is_none(), "İ is not I");
        let twice = r#"{"users":[{"name":"kim","key":"1"},{"name":"\u212aim","key":"2"}]}"#;
        assert!(FileDirectory::parse(twice).unwrap_err().0.contains("twice"));
        assert!(same_user("Σοφία", "ΣΟΦΊΑ"));
        assert!(!same_user("ilker", "\u{130}lker"));
    }

    #[test]
    fn the_right_password_finds_the_user_and_a_wrong_one_does_not() {
        let directory = demo_directory();
        assert_eq!(
            directory.check_password("fred", "fred-password").unwrap().name,
            "fred"
        );
        assert!(directory.check_password("fred", "admin-password").is_none());
        assert!(directory.check_password("nobody", "fred-password").is_none());
    }

    #[test]
    fn a_hash_made_here_verifies() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct horsf", &hash));
        assert!(!verify_password("correct horse", "not a phc string"));
    }

    #[test]
    fn duplicate_names_or_keys_are_refused() {
        let twice_name = r#"{"users":[{"name":"a","key":"1"},{"name":"A","key":"2"}]}"#;
        assert!(FileDirectory::parse(twice_name).unwrap_err().0.contains("twice"));
        let twice_key = r#"{"users":[{"name":"a","key":"1"},{"name":"b","key":"1"}]}"#;
        assert!(FileDirectory::parse(twice_key).unwrap_err().0.contains("twice"));
    }

    #[test]
    fn a_bad_password_hash_or_unknown_field_is_named() {
        let bad_hash = r#"{"users":[{"name":"a","key":"1","passwordHash":"plain"}]}"#;
        assert!(FileDirectory::parse(bad_hash)
            .unwrap_err()
            .0
            .contains("passwordHash"));
        let unknown = r#"{"users":[{"name":"a","key":"1","password":"plain"}]}"#;
        assert!(FileDirectory::parse(unknown).unwrap_err().0.contains("password"));
    }

    #[test]
    fn a_user_without_a_password_cannot_log_in_with_one() {
        let directory = FileDirectory::parse(r#"{"users":[{"name":"a","key":"1"}]}"#).unwrap();
        assert!(directory.check_password("a", "").is_none());
        assert!(directory.by_name("a").unwrap().active);
    }
}
