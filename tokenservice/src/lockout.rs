//! The failed-login lockout, as Jira has it: after `max_failures` consecutive failed logins
//! of a user, every attempt as that user is refused (Jira's CAPTCHA state: 403 with
//! `X-Authentication-Denied-Reason: CAPTCHA_CHALLENGE; login-url=...`) until `window` after
//! the last failure, or until an administrator resets the counter.
//!
//! - Per user, for the whole fleet: the counter is in the store (one row per folded name), so
//!   every replica and every Envoy in front of them see one count and one reset.
//! - Per client address, per replica: failures from one address within the window, in memory
//!   (bounded to [`MAX_ADDRESSES`] addresses), so that guessing many names from one address
//!   is throttled too. The client's address comes from [`client_address`].
//!
//! While locked, attempts are refused without checking their secret and are not counted: the
//! lock ends `window` after the failure that set it, whatever an attacker keeps sending.

use crate::config::Lockout;
use crate::store::{LoginFailures, Store, StoreError};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

/// The most client addresses whose failures are remembered by one replica. When full, the
/// address whose last failure is the oldest is forgotten first.
pub const MAX_ADDRESSES: usize = 65_536;

/// One login attempt: the user it names (Basic, or the introspection's `username`) and the
/// client's address, when known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attempt<'a> {
    pub user: Option<&'a str>,
    pub address: Option<IpAddr>,
}

/// Why an attempt is refused before its secret is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    /// The named user is over `max_failures` within the window.
    User,
    /// The client's address is over `max_failures_per_address` within the window.
    Address,
}

/// Whether `failures` lock their user at `now` (epoch milliseconds).
pub fn is_locked(policy: &Lockout, failures: LoginFailures, now: i64) -> bool {
    failures.count >= policy.max_failures && now < failures.last_failure_ms.saturating_add(policy.window_ms)
}

/// Failures per client address, in this replica's memory.
#[derive(Debug, Default)]
pub struct AddressFailures {
    seen: Mutex<HashMap<IpAddr, LoginFailures>>,
}

impl AddressFailures {
    fn locked(&self, policy: &Lockout, address: IpAddr, now: i64) -> bool {
        if policy.max_failures_per_address == 0 {
            return false;
        }
        let Ok(seen) = self.seen.lock() else {
            return false;
        };
        seen.get(&address).is_some_and(|failures| {
            failures.count >= policy.max_failures_per_address
                && now < failures.last_failure_ms.saturating_add(policy.window_ms)
        })
    }

    fn record(&self, policy: &Lockout, address: IpAddr, now: i64) {
        if policy.max_failures_per_address == 0 {
            return;
        }
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        if seen.len() >= MAX_ADDRESSES && !seen.contains_key(&address) {
            seen.retain(|_, f| now < f.last_failure_ms.saturating_add(policy.window_ms));
            if seen.len() >= MAX_ADDRESSES {
                let oldest = seen
                    .iter()
                    .min_by_key(|(_, f)| f.last_failure_ms)
                    .map(|(a, _)| *a);
                if let Some(oldest) = oldest {
                    seen.remove(&oldest);
                }
            }
        }
        let failures = seen.entry(address).or_default();
        let expired = now >= failures.last_failure_ms.saturating_add(policy.window_ms);
        failures.count = if expired {
            1
        } else {
            failures.count.saturating_add(1)
        };
        failures.last_failure_ms = failures.last_failure_ms.max(now);
    }
}

/// The lockout's view of one replica: the policy, the store's per-user counters and this
/// replica's per-address counters.
pub struct Gate<'a> {
    pub policy: &'a Lockout,
    pub store: &'a Store,
    pub addresses: &'a AddressFailures,
}

impl Gate<'_> {
    /// Whether `attempt` is refused at `now` before its secret is checked.
    pub fn check(&self, attempt: Attempt<'_>, now: i64) -> Result<Option<Locked>, StoreError> {
        if let Some(user) = attempt.user {
            if self.user_is_locked(user, now)? {
                return Ok(Some(Locked::User));
            }
        }
        if let Some(address) = attempt.address {
            if self.addresses.locked(self.policy, address, now) {
                return Ok(Some(Locked::Address));
            }
        }
        Ok(None)
    }

    /// Whether `user` (any case) is locked at `now`: also asked for the owner of a Bearer
    /// token, so that a locked user is refused with every credential of theirs.
    pub fn user_is_locked(&self, user: &str, now: i64) -> Result<bool, StoreError> {
        Ok(is_locked(self.policy, self.store.failed_logins(user)?, now))
    }

    /// Counts a failed attempt against its user (in the store) and its address (here);
    /// whether this failure locked the user.
    pub fn failed(&self, attempt: Attempt<'_>, now: i64) -> Result<bool, StoreError> {
        if let Some(address) = attempt.address {
            self.addresses.record(self.policy, address, now);
        }
        match attempt.user {
            Some(user) => {
                let failures = self.store.record_failed_login(user, now, self.streak_window())?;
                Ok(is_locked(self.policy, failures, now))
            }
            None => Ok(false),
        }
    }

    /// Counts a password attempt as `user` before its (slow) check, so that attempts checked
    /// at once, on any thread or replica, see each other: whether it may still be checked
    /// (with it, the streak is at most `max_failures`). A success then ends the streak
    /// ([`Gate::succeeded`]); a failure is already counted (its address is counted with
    /// [`Gate::failed_address`]).
    pub fn reserve(&self, user: &str, now: i64) -> Result<bool, StoreError> {
        let failures = self.store.record_failed_login(user, now, self.streak_window())?;
        Ok(failures.count <= self.policy.max_failures)
    }

    /// The store restarts a streak whose last failure is more than this before now: one less
    /// than the window, so that a streak restarts exactly when [`is_locked`] ends its lock (at
    /// `last + window` the user is let in, and a failure then is the first of a new streak,
    /// not a fourth that locks at once).
    fn streak_window(&self) -> i64 {
        self.policy.window_ms.saturating_sub(1)
    }

    /// Counts a failed attempt against its address only (its user was counted by
    /// [`Gate::reserve`]).
    pub fn failed_address(&self, address: Option<IpAddr>, now: i64) {
        if let Some(address) = address {
            self.addresses.record(self.policy, address, now);
        }
    }

    /// A successful login as `user` ends their streak (Jira resets the count on success).
    pub fn succeeded(&self, user: &str) -> Result<(), StoreError> {
        if self.store.failed_logins(user)?.count > 0 {
            self.store.clear_failed_logins(user)?;
        }
        Ok(())
    }

    /// The value of `X-Authentication-Denied-Reason` for a locked attempt.
    pub fn denied_reason(&self) -> String {
        format!("CAPTCHA_CHALLENGE; login-url={}", self.policy.login_url)
    }
}

/// An address as proxies write it: `203.0.113.7`, `[2001:db8::1]`, `203.0.113.7:5123`.
pub fn parse_address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| text.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
}

/// The client's address: with `trusted_proxies = n > 0`, the `n`th entry from the right of
/// the configured header (all its lines, comma-separated, as `X-Forwarded-For` is; Envoy's
/// `x-envoy-external-address` has one entry and `n = 1`), since the rightmost `n` entries
/// were written by proxies we trust and anything left of them by the client. Without such an
/// entry, or with `n = 0`, the peer's address.
pub fn client_address(
    headers: &[(String, String)],
    peer: Option<IpAddr>,
    policy: &Lockout,
) -> Option<IpAddr> {
    let trusted = usize::try_from(policy.trusted_proxies).unwrap_or(usize::MAX);
    if trusted == 0 {
        return peer;
    }
    let entries: Vec<&str> = headers
        .iter()
        .filter(|(name, _)| *name == policy.client_address_header)
        .flat_map(|(_, value)| value.split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .collect();
    entries
        .len()
        .checked_sub(trusted)
        .and_then(|index| entries.get(index))
        .and_then(|entry| parse_address(entry))
        .or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn policy() -> Lockout {
        Config::for_tests().lockout
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_user_is_locked_from_the_maximum_until_the_window_after_the_last_failure() {
        let policy = policy(); // 3 failures, 600 s
        let at = |count, last_failure_ms| LoginFailures {
            count,
            last_failure_ms,
        };
        for (failures, now, locked) in [
            (at(2, 1_000), 1_001, false),
            (at(3, 1_000), 1_001, true),
            (at(3, 1_000), 600_999, true),
            (at(3, 1_000), 601_000, false),
            (at(u32::MAX, i64::MAX), i64::MAX, false),
        ] {
            assert_eq!(is_locked(&policy, failures, now), locked, "{failures:?} at {now}");
        }
    }

    #[test]
    fn the_gate_locks_a_user_for_the_fleet_and_a_success_or_reset_unlocks_them() {
        let (policy, store, addresses) = (
            policy(),
            Store::open_in_memory().unwrap(),
            AddressFailures::default(),
        );
        let gate = Gate {
            policy: &policy,
            store: &store,
            addresses: &addresses,
        };
        let fred = Attempt {
            user: Some("fred"),
            address: None,
        };
        gate.failed(fred, 1_000).unwrap();
        gate.succeeded("FRED").unwrap();
        assert_eq!(
            store.failed_logins("fred").unwrap().count,
            0,
            "a success ends the streak"
        );
        for (now, locks) in [(1_000, false), (2_000, false), (3_000, true)] {
            assert_eq!(gate.check(fred, now).unwrap(), None);
            assert_eq!(gate.failed(fred, now).unwrap(), locks, "at {now}");
        }
        let shouting = Attempt {
            user: Some("FRED"),
            address: None,
        };
        assert_eq!(gate.check(shouting, 3_001).unwrap(), Some(Locked::User));
        assert!(gate.user_is_locked("Fred", 3_001).unwrap());
        store.clear_failed_logins("fred").unwrap();
        assert_eq!(gate.check(fred, 3_002).unwrap(), None, "reset");
    }

    #[test]
    fn password_attempts_counted_before_their_check_are_refused_past_the_maximum() {
        let (policy, store, addresses) = (
            policy(),
            Store::open_in_memory().unwrap(),
            AddressFailures::default(),
        );
        let gate = Gate {
            policy: &policy,
            store: &store,
            addresses: &addresses,
        };
        // Five attempts at once, none checked yet: the first three may be checked.
        let admitted: Vec<bool> = (0..5).map(|_| gate.reserve("Fred", 1_000).unwrap()).collect();
        assert_eq!(admitted, [true, true, true, false, false]);
        assert!(gate.user_is_locked("fred", 1_001).unwrap());
        // When the lock ends, the next attempt starts a new streak.
        let end = 1_000 + policy.window_ms;
        assert!(!gate.user_is_locked("fred", end).unwrap());
        assert!(gate.reserve("fred", end).unwrap());
        assert_eq!(store.failed_logins("fred").unwrap().count, 1);
    }

    #[test]
    fn an_address_is_throttled_across_user_names_and_only_in_its_window() {
        let (policy, store, addresses) = (
            policy(),
            Store::open_in_memory().unwrap(),
            AddressFailures::default(),
        );
        let gate = Gate {
            policy: &policy,
            store: &store,
            addresses: &addresses,
        };
        let names: Vec<String> = (0..policy.max_failures_per_address)
            .map(|i| format!("user{i}"))
            .collect();
        for name in &names {
            let attempt = Attempt {
                user: Some(name),
                address: Some(ip("203.0.113.7")),
            };
            assert_eq!(gate.check(attempt, 1_000).unwrap(), None, "{name}");
            gate.failed(attempt, 1_000).unwrap();
        }
        let next = |address: &str| Attempt {
            user: Some("newcomer"),
            address: Some(ip(address)),
        };
        assert_eq!(
            gate.check(next("203.0.113.7"), 1_001).unwrap(),
            Some(Locked::Address)
        );
        assert_eq!(
            gate.check(next("203.0.113.8"), 1_001).unwrap(),
            None,
            "another address"
        );
        assert_eq!(
            gate.check(next("203.0.113.7"), 601_000).unwrap(),
            None,
            "window passed"
        );
    }

    #[test]
    fn the_address_table_is_bounded() {
        let policy = policy();
        let addresses = AddressFailures::default();
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            addresses.record(&policy, IpAddr::from(i.to_be_bytes()), 1_000 + i64::from(i));
        }
        assert_eq!(addresses.seen.lock().unwrap().len(), MAX_ADDRESSES);
    }

    #[test]
    fn the_client_address_is_the_entry_the_last_trusted_proxy_wrote() {
        let mut policy = policy();
        let peer = Some(ip("127.0.0.1"));
        let header = |value: &str| vec![("x-envoy-external-address".to_owned(), value.to_owned())];
        assert_eq!(
            client_address(&header("203.0.113.7"), peer, &policy),
            Some(ip("203.0.113.7"))
        );
        assert_eq!(client_address(&[], peer, &policy), peer, "no header: the peer");
        assert_eq!(client_address(&header("not an address"), peer, &policy), peer);
        policy.client_address_header = "x-forwarded-for".to_owned();
        policy.trusted_proxies = 2;
        let xff = vec![
            ("x-forwarded-for".to_owned(), "6.6.6.6, 198.51.100.1".to_owned()),
            ("x-forwarded-for".to_owned(), "10.0.0.2".to_owned()),
        ];
        assert_eq!(
            client_address(&xff, peer, &policy),
            Some(ip("198.51.100.1")),
            "what the client wrote (6.6.6.6) is not trusted"
        );
        policy.trusted_proxies = 0;
        assert_eq!(
            client_address(&xff, peer, &policy),
            peer,
            "no trusted proxy: the peer"
        );
    }

    #[test]
    fn addresses_are_read_as_proxies_write_them() {
        for (text, expected) in [
            ("203.0.113.7", Some("203.0.113.7")),
            (" 203.0.113.7:5123 ", Some("203.0.113.7")),
            ("2001:db8::1", Some("2001:db8::1")),
            ("[2001:db8::1]", Some("2001:db8::1")),
            ("[2001:db8::1]:443", Some("2001:db8::1")),
            ("unknown", None),
            ("", None),
        ] {
            assert_eq!(parse_address(text), expected.map(ip), "{text}");
        }
    }

    /// One step of a login history: which spelling of which user, and what happens.
    #[derive(Debug, Clone)]
    enum Op {
        Fail { name: usize, after_ms: i64 },
        Succeed { name: usize },
        Reset { name: usize },
    }

    const NAMES: [&str; 6] = ["fred", "FRED", "Fred", "jsmith", "\u{212A}im", "kim"];

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            6 => (0..NAMES.len(), 0..400_000i64).prop_map(|(name, after_ms)| Op::Fail { name, after_ms }),
            1 => (0..NAMES.len()).prop_map(|name| Op::Succeed { name }),
            1 => (0..NAMES.len()).prop_map(|name| Op::Reset { name }),
        ]
    }

    proptest::proptest! {
        /// Over any history, the store's counter is Jira's rule applied to the folded name: a
        /// consecutive-failure streak that restarts a whole window after its last failure and
        /// ends on a success or a reset; the user is locked exactly from the maximum until a
        /// window after the last failure; attempts while locked are not counted.
        #[test]
        fn the_counter_follows_jiras_rule_for_every_spelling_of_a_name(
            ops in proptest::collection::vec(op(), 1..80)
        ) {
            let (policy, store, addresses) = (policy(), Store::open_in_memory().unwrap(), AddressFailures::default());
            let gate = Gate { policy: &policy, store: &store, addresses: &addresses };
            let mut model: HashMap<String, LoginFailures> = HashMap::new();
            let mut now = 1_000_000i64;
            for op in ops {
                match op {
                    Op::Fail { name, after_ms } => {
                        now += after_ms;
                        let user = NAMES[name];
                        let attempt = Attempt { user: Some(user), address: None };
                        let entry = model.entry(user.to_lowercase()).or_default();
                        let locked = is_locked(&policy, *entry, now);
                        proptest::prop_assert_eq!(
                            gate.check(attempt, now).unwrap() == Some(Locked::User), locked, "{}", user);
                        if !locked {
                            let restart = entry.last_failure_ms <= now - policy.window_ms;
                            entry.count = if restart { 1 } else { entry.count + 1 };
                            entry.last_failure_ms = now;
                            let locks = gate.failed(attempt, now).unwrap();
                            proptest::prop_assert_eq!(locks, entry.count >= policy.max_failures);
                        }
                    }
                    Op::Succeed { name } => {
                        gate.succeeded(NAMES[name]).unwrap();
                        model.remove(&NAMES[name].to_lowercase());
                    }
                    Op::Reset { name } => {
                        store.clear_failed_logins(NAMES[name]).unwrap();
                        model.remove(&NAMES[name].to_lowercase());
                    }
                }
                for name in NAMES {
                    let expected = model.get(&name.to_lowercase()).copied().unwrap_or_default();
                    proptest::prop_assert_eq!(store.failed_logins(name).unwrap(), expected, "{}", name);
                    proptest::prop_assert_eq!(gate.user_is_locked(name, now).unwrap(), is_locked(&policy, expected, now));
                }
            }
        }
    }
}
