//! Stage 3, verify: API tokens (seeds 003 and 004), as the password of
//! `Authorization: Basic base64(user:token)` or as `Authorization: Bearer <token>`, checked by
//! the token service's introspection endpoint.
//!
//! The failed-login counter is the token service's, one per user for the whole fleet (as
//! Jira's is its database's): every failed attempt reaches it, and it answers "locked". The
//! filter keeps no counter; it only remembers, briefly, which users the service said are
//! locked ([`LockedUsers`], in shared data so every worker sees it, keyed by a hash salted
//! with the provider's client secret so that nobody can pick names that evict a victim's
//! entry), so that an answer it cached as valid before the lock is refused too.

use crate::cache::{Scope, SharedStore, SlotCache};
use crate::clock::UnixSeconds;

/// The `user:secret` of `Authorization: Basic` (RFC 7617), read by the project's one Basic
/// parser (`crates/basic-auth`, shared with the token service). `Debug` hides the secret.
pub type BasicCredentials = basic_auth::Credentials;

/// Decodes `base64(user:secret)`: `None` if it is not base64 of UTF-8 with a `:`, or the user
/// is empty or has control characters.
pub fn parse_basic(value: &str) -> Option<BasicCredentials> {
    basic_auth::decode(value).ok()
}

/// Longest token sent to a provider as `Bearer` (an opaque OAuth access token or an API
/// token), in bytes. Jira's Tomcat refuses a request whose header block is over 8 KiB
/// (`maxHttpHeaderSize="8192"` in the `server.xml` Jira ships), so no longer credential ever
/// worked against Jira directly; the token service's own tokens are 73 characters, and large
/// JWT access tokens sent to introspection (Keycloak with many roles) still fit.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Longest secret of `Basic user:secret` sent to a provider, in bytes (an API token, or a
/// password on a `"basic_passwords": "pass"` route).
pub const MAX_BASIC_SECRET_BYTES: usize = 1024;

/// Why a credential is not worth a callout: no provider could say yes to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfBounds {
    /// `Basic fred:`: no token and no password is empty.
    EmptySecret,
    /// A Basic secret over [`MAX_BASIC_SECRET_BYTES`], or a Bearer token over [`MAX_TOKEN_BYTES`].
    TooLong,
    /// A Basic user over [`crate::username::MAX_USER_CHARS`] characters: no Jira user has such a name.
    UserTooLong,
}

/// Checks what would be sent to a provider against the documented bounds, before any callout:
/// `token` is the Bearer token, or the secret of `Basic basic_user:token`.
pub fn check_bounds(token: &str, basic_user: Option<&str>) -> Result<(), OutOfBounds> {
    let Some(user) = basic_user else {
        return if token.len() > MAX_TOKEN_BYTES {
            Err(OutOfBounds::TooLong)
        } else {
            Ok(())
        };
    };
    if user.chars().count() > crate::username::MAX_USER_CHARS {
        Err(OutOfBounds::UserTooLong)
    } else if token.is_empty() {
        Err(OutOfBounds::EmptySecret)
    } else if token.len() > MAX_BASIC_SECRET_BYTES {
        Err(OutOfBounds::TooLong)
    } else {
        Ok(())
    }
}

/// What a route does with `Basic user:password` whose secret is not an API token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BasicPasswords {
    /// Refused with 401 and counted as a failed login (passwords disabled).
    #[default]
    Refuse,
    /// Forwarded untouched: the application checks passwords itself (and counts failures).
    Pass,
}

/// Slots of the shared "locked user" entries.
const LOCKED_SLOTS: u32 = 16_384;

/// The users one API-token provider said are locked, each until a short time after the
/// answer (`locked_cache_ttl_seconds`): the bound within which a reset is honoured by this
/// Envoy, and within which a lock refuses credentials this Envoy cached as valid before it
/// learnt of it (otherwise the positive cache TTL bounds that).
pub struct LockedUsers<'a> {
    store: &'a dyn SharedStore,
    cache: SlotCache,
    scope: &'a Scope,
    salt: &'a str,
}

impl<'a> LockedUsers<'a> {
    /// The locked users of the provider compiled in `scope`, salted with its `salt`.
    pub fn new(store: &'a dyn SharedStore, scope: &'a Scope, salt: &'a str) -> Self {
        Self {
            store,
            cache: SlotCache::new("locked", LOCKED_SLOTS),
            scope,
            salt,
        }
    }

    /// The slot of `user`: folded as Jira folds names, so `FRED` and `fred` share one.
    fn key(&self, user: &str) -> crate::cache::CacheKey {
        let user = crate::username::fold(user);
        self.cache
            .key(self.scope, format!("{}\0{user}", self.salt).as_bytes())
    }

    /// The login URL the service gave if it said `user` is locked, recently enough to believe
    /// it at `now`.
    pub fn locked(&self, user: &str, now: UnixSeconds) -> Option<String> {
        let url = self.cache.get(self.store, &self.key(user), now)?;
        String::from_utf8(url).ok()
    }

    /// Remembers that the service said `user` is locked (with this login URL) until `until`.
    pub fn remember(&self, user: &str, login_url: &str, until: UnixSeconds) {
        self.cache
            .insert(self.store, &self.key(user), login_url.as_bytes(), until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::MapStore;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;

    const SCOPE: Scope = [1; 32];

    fn basic(pair: &str) -> String {
        STANDARD.encode(pair)
    }

    #[test]
    fn basic_credentials_are_decoded_and_the_secret_may_contain_colons() {
        assert_eq!(
            parse_basic(&basic("fred:tok:en")),
            Some(BasicCredentials {
                user: "fred".into(),
                secret: "tok:en".into()
            })
        );
        assert_eq!(
            parse_basic(&basic("fred:")).map(|c| c.secret),
            Some(String::new())
        );
    }

    #[test]
    fn malformed_basic_credentials_are_refused() {
        for bad in [
            "%%%",
            &basic("no-colon"),
            &basic(":secret"),
            &basic("a\u{0}b:x"),
            &STANDARD.encode([0xff, b':']),
        ] {
            assert_eq!(parse_basic(bad), None, "{bad}");
        }
    }

    #[test]
    fn credentials_out_of_bounds_are_named() {
        let user = "u".repeat(crate::username::MAX_USER_CHARS);
        let cases = [
            ("t".repeat(MAX_TOKEN_BYTES), None, Ok(())),
            ("t".repeat(MAX_TOKEN_BYTES + 1), None, Err(OutOfBounds::TooLong)),
            ("x".repeat(60_000), None, Err(OutOfBounds::TooLong)),
            ("s".repeat(MAX_BASIC_SECRET_BYTES), Some("fred"), Ok(())),
            (
                "s".repeat(MAX_BASIC_SECRET_BYTES + 1),
                Some("fred"),
                Err(OutOfBounds::TooLong),
            ),
            (String::new(), Some("fred"), Err(OutOfBounds::EmptySecret)),
            ("s".into(), Some(user.as_str()), Ok(())),
            (
                "s".into(),
                Some(&*format!("{user}u")),
                Err(OutOfBounds::UserTooLong),
            ),
            // Characters, not bytes: 255 two-byte letters are a possible Jira name.
            ("s".into(), Some(&*"é".repeat(255)), Ok(())),
        ];
        for (token, user, expected) in cases {
            assert_eq!(check_bounds(&token, user), expected, "{} {user:?}", token.len());
        }
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let credentials = parse_basic(&basic("fred:hunter2")).unwrap();
        assert!(!format!("{credentials:?}").contains("hunter2"));
    }

    #[test]
    fn a_locked_user_is_remembered_under_any_case_of_the_name_until_the_entry_expires() {
        let store = MapStore::default();
        let locked = LockedUsers::new(&store, &SCOPE, "salt");
        locked.remember("JSmith", "/login.jsp", 105);
        for name in ["jsmith", "JSMITH", "jSmItH"] {
            assert_eq!(locked.locked(name, 104).as_deref(), Some("/login.jsp"), "{name}");
        }
        assert_eq!(locked.locked("jsmith", 105), None, "only until the entry expires");
        assert_eq!(locked.locked("fred", 104), None);
        locked.remember("\u{212A}elvin", "/l", 105);
        assert!(locked.locked("kelvin", 104).is_some(), "KELVIN SIGN folds to k");
        assert_eq!(
            LockedUsers::new(&store, &SCOPE, "pepper").locked("jsmith", 104),
            None,
            "slots depend on the secret salt"
        );
        assert_eq!(
            LockedUsers::new(&store, &[2; 32], "salt").locked("jsmith", 104),
            None,
            "and on the provider's scope"
        );
    }
}
