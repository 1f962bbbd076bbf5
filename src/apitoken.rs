//! Stage 3, verify: API tokens (seeds 003 and 004), as the password of
//! `Authorization: Basic base64(user:token)` or as `Authorization: Bearer <token>`, checked by
//! the token service's introspection endpoint, with Jira's failed-login counter in front.
//!
//! Pure: Basic parsing, the lockout state and its rules. The counter itself lives in shared
//! data (every worker sees the same count), keyed by a hash salted with the provider's client
//! secret so that nobody can pick usernames that land in a victim's slot.

use crate::cache::{SharedStore, SlotCache};
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

/// Jira's failed-login rule: after `max_failures` consecutive failures a user is refused with
/// 403 until `window_seconds` after the last failure, or until an administrator resets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub max_failures: u32,
    pub window_seconds: i64,
    /// Sent in `X-Authentication-Denied-Reason: CAPTCHA_CHALLENGE; login-url=<login_url>`.
    pub login_url: String,
}

/// A user's failure count and when the last failure was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failures {
    pub count: u32,
    pub last_at: UnixSeconds,
}

impl Failures {
    fn to_bytes(self) -> [u8; 12] {
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&self.count.to_le_bytes());
        bytes[4..].copy_from_slice(&self.last_at.to_le_bytes());
        bytes
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let count = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
        let last_at = i64::from_le_bytes(bytes.get(4..12)?.try_into().ok()?);
        Some(Self { count, last_at })
    }
}

impl LockoutPolicy {
    /// Whether `failures` lock the user out at `now`.
    pub fn locked(&self, failures: Failures, now: UnixSeconds) -> bool {
        failures.count >= self.max_failures && now < failures.last_at.saturating_add(self.window_seconds)
    }

    /// The count after one more failure at `now` (an expired window starts again from 0).
    pub fn after_failure(&self, failures: Failures, now: UnixSeconds) -> Failures {
        let expired = now >= failures.last_at.saturating_add(self.window_seconds);
        let count = if expired { 0 } else { failures.count };
        Failures {
            count: count.saturating_add(1),
            last_at: now,
        }
    }
}

/// Slots of the shared failed-login counters.
const LOCKOUT_SLOTS: u32 = 16_384;

/// The failed-login counters of one provider in shared data.
pub struct FailedLogins<'a> {
    store: &'a dyn SharedStore,
    cache: SlotCache,
    salt: &'a str,
}

impl<'a> FailedLogins<'a> {
    pub fn new(store: &'a dyn SharedStore, salt: &'a str) -> Self {
        Self {
            store,
            cache: SlotCache::new("lockout", LOCKOUT_SLOTS),
            salt,
        }
    }

    /// The slot of `user`: folded as Jira folds names, so `FRED` and `fred` share a counter.
    fn key(&self, user: &str) -> crate::cache::CacheKey {
        let user = crate::username::fold(user);
        self.cache.key(format!("{}\0{user}", self.salt).as_bytes())
    }

    pub fn get(&self, user: &str, now: UnixSeconds) -> Failures {
        self.cache
            .get(self.store, &self.key(user), now)
            .and_then(|bytes| Failures::from_bytes(&bytes))
            .unwrap_or_default()
    }

    /// Stores `failures` for `user`, kept for the policy's window after the last failure.
    pub fn set(&self, user: &str, failures: Failures, policy: &LockoutPolicy) {
        let until = failures.last_at.saturating_add(policy.window_seconds.max(1));
        self.cache
            .insert(self.store, &self.key(user), &failures.to_bytes(), until);
    }

    /// Forgets `user`'s failures (a success, or an administrator's reset).
    pub fn clear(&self, user: &str) {
        self.cache
            .insert(self.store, &self.key(user), &Failures::default().to_bytes(), 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::MapStore;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;

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

    const POLICY: LockoutPolicy = LockoutPolicy {
        max_failures: 3,
        window_seconds: 600,
        login_url: String::new(),
    };

    #[test]
    fn three_consecutive_failures_lock_until_the_window_passes() {
        let mut failures = Failures::default();
        for (i, now) in [100, 110, 120].into_iter().enumerate() {
            assert!(!POLICY.locked(failures, now), "locked before failure {i}");
            failures = POLICY.after_failure(failures, now);
        }
        assert!(POLICY.locked(failures, 121));
        assert!(POLICY.locked(failures, 719));
        assert!(!POLICY.locked(failures, 720));
        assert_eq!(
            POLICY.after_failure(failures, 720).count,
            1,
            "an old streak starts again"
        );
    }

    #[test]
    fn counters_are_shared_bounded_by_the_window_and_cleared() {
        let store = MapStore::default();
        let logins = FailedLogins::new(&store, "salt");
        logins.set(
            "fred",
            Failures {
                count: 2,
                last_at: 100,
            },
            &POLICY,
        );
        assert_eq!(
            logins.get("fred", 101),
            Failures {
                count: 2,
                last_at: 100
            }
        );
        assert_eq!(
            logins.get("fred", 700),
            Failures::default(),
            "kept only for the window"
        );
        assert_eq!(logins.get("jsmith", 101), Failures::default());
        logins.clear("fred");
        assert_eq!(logins.get("fred", 101), Failures::default());
        let other_salt = FailedLogins::new(&store, "pepper");
        logins.set(
            "fred",
            Failures {
                count: 2,
                last_at: 100,
            },
            &POLICY,
        );
        assert_eq!(
            other_salt.get("fred", 101),
            Failures::default(),
            "slots depend on the secret salt"
        );
    }

    #[test]
    fn a_users_counter_is_found_under_any_case_of_the_name() {
        let store = MapStore::default();
        let logins = FailedLogins::new(&store, "salt");
        let two = Failures {
            count: 2,
            last_at: 100,
        };
        logins.set("JSmith", two, &POLICY);
        for name in ["jsmith", "JSMITH", "jSmItH"] {
            assert_eq!(logins.get(name, 101), two, "{name}");
        }
        logins.set("\u{212A}elvin", two, &POLICY);
        assert_eq!(logins.get("kelvin", 101), two, "KELVIN SIGN folds to k");
        logins.clear("JSMITH");
        assert_eq!(logins.get("jsmith", 101), Failures::default());
    }
}
