//! The user directory: is the user behind a valid credential allowed in at all?
//!
//! Today a static list from the configuration; the JWT providers issue adds a callout with a
//! cache behind the same [`Directory::status`] question.

use std::collections::BTreeSet;

/// What the directory knows of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Active,
    /// Present but deactivated: seed 000's "User is not an active Jira user."
    Inactive,
}

#[derive(Debug, Clone, Default)]
pub struct Directory {
    inactive: BTreeSet<String>,
}

impl Directory {
    pub fn with_inactive_users(users: impl IntoIterator<Item = String>) -> Self {
        Self {
            inactive: users.into_iter().collect(),
        }
    }

    /// Users not listed as inactive are active: the static directory only knows exceptions.
    pub fn status(&self, user: &str) -> UserStatus {
        if self.inactive.contains(user) {
            UserStatus::Inactive
        } else {
            UserStatus::Active
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_users_are_inactive_and_matching_is_exact() {
        let directory = Directory::with_inactive_users(["557058:dead".to_string()]);
        assert_eq!(directory.status("557058:dead"), UserStatus::Inactive);
        assert_eq!(directory.status("557058:DEAD"), UserStatus::Active);
        assert_eq!(directory.status("fred"), UserStatus::Active);
    }
}
