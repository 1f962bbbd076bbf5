//! `directory`: compiled into the [`Directory`] (static lists or the application's user API).

use serde::Deserialize;

use super::common::{default_timeout_ms, error, yes, ConfigError};
use crate::cache::Scope;
use crate::directory::{Directory, DirectoryCallout, StaticUser};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDirectory {
    #[serde(default)]
    inactive_users: Vec<String>,
    users: Option<Vec<RawUser>>,
    callout: Option<RawDirectoryCallout>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUser {
    name: String,
    email: Option<String>,
    #[serde(default = "yes")]
    active: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDirectoryCallout {
    cluster: String,
    authority: Option<String>,
    #[serde(default = "default_directory_path")]
    path: String,
    authorization: Option<String>,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default = "default_directory_ttl")]
    cache_ttl_seconds: u32,
    #[serde(default = "default_negative_ttl")]
    negative_cache_ttl_seconds: u32,
}

fn default_directory_path() -> String {
    "/rest/api/2/user?username={user}".to_owned()
}

fn default_directory_ttl() -> u32 {
    300
}

fn default_negative_ttl() -> u32 {
    30
}

impl RawDirectory {
    pub(super) fn compile(self, scope: Scope) -> Result<Directory, ConfigError> {
        let Some(callout) = self.callout else {
            let users = self.users.map(|users| {
                users
                    .into_iter()
                    .map(|u| StaticUser {
                        name: u.name,
                        email: u.email,
                        active: u.active,
                    })
                    .collect()
            });
            return Ok(Directory::static_lists(users, self.inactive_users));
        };
        if self.users.is_some() || !self.inactive_users.is_empty() {
            return Err(error(
                "directory.callout",
                "cannot be combined with directory.users or inactive_users",
            ));
        }
        if !callout.path.starts_with('/') || !callout.path.contains("{user}") {
            return Err(error(
                "directory.callout.path",
                "must start with `/` and contain `{user}`",
            ));
        }
        if callout.cluster.is_empty() {
            return Err(error("directory.callout.cluster", "must name an Envoy cluster"));
        }
        Ok(Directory::Callout(DirectoryCallout {
            authority: callout.authority.unwrap_or_else(|| callout.cluster.clone()),
            cluster: callout.cluster,
            path_template: callout.path,
            authorization: callout.authorization,
            timeout_ms: callout.timeout_ms.clamp(1, 60_000),
            cache_ttl_seconds: i64::from(callout.cache_ttl_seconds),
            negative_cache_ttl_seconds: i64::from(callout.negative_cache_ttl_seconds),
            scope,
        }))
    }
}
