//! Stage 3, verify: opaque tokens (OAuth access tokens and API tokens) checked by a callout
//! provider. The cache of answers, the question for an uncached token, and what an answer
//! means for the request: an identity, a password passed to the application, or a denial
//! (the token service's "locked" among them).
//!
//! What an API-token provider says is cached so that every failed attempt still reaches the
//! token service's counter: a Basic answer is cached only when positive (a wrong secret, even
//! the same one again, is always asked about), a "locked" answer never (it is remembered per
//! user in [`LockedUsers`] instead, which also refuses answers cached as valid before it).

use crate::admit::{anonymous, look_up};
use crate::apitoken::{check_bounds, BasicPasswords, LockedUsers};
use crate::cache::{CacheKey, SharedStore, SlotCache};
use crate::clock::UnixSeconds;
use crate::config::Config;
use crate::host::Env;
use crate::introspect::{OAuthProvider, ProviderFailure, TokenInfo};
use crate::metrics::Metric;
use crate::outcome::{
    deny, Decision, Denial, DenyReason, Family, Identity, Pending, Refusal, Step, TokenContext,
};
use crate::policy::{missing_scopes, Rule};
use crate::username::same_user;

pub use crate::outcome::PendingToken;

#[cfg(test)]
mod lockout_props;
#[cfg(test)]
mod settle_tests;

/// Continues a request after its token provider answered (or failed to), caching the answer.
/// Its denials challenge with the schemes of the request's rule.
pub fn after_provider(
    config: &Config,
    pending: PendingToken,
    answer: Result<TokenInfo, ProviderFailure>,
    env: &Env<'_>,
    now: UnixSeconds,
) -> Step {
    let challenges = pending.challenges;
    answered(config, pending, answer, env, now).challenging(challenges)
}

fn answered(
    config: &Config,
    pending: PendingToken,
    answer: Result<TokenInfo, ProviderFailure>,
    env: &Env<'_>,
    now: UnixSeconds,
) -> Step {
    let Some(provider) = config.oauth_providers.iter().find(|p| p.name == pending.provider) else {
        return deny(Family::OAuth, DenyReason::Internal);
    };
    let family = family_of(provider);
    let info = match answer {
        Ok(info) => {
            remember(provider, &pending, &info, env, now);
            info
        }
        Err(ProviderFailure::ClientRejected) => return deny(family, DenyReason::ProviderRejectedClient),
        Err(_) => return deny(family, DenyReason::ProviderUnavailable),
    };
    match settle(provider, info, &pending.context, env, now) {
        Ok(identity) => {
            let forwarded_path = pending.forwarded_path;
            look_up(
                config,
                Pending {
                    identity,
                    location: pending.location,
                    forwarded_path,
                    challenges: pending.challenges,
                },
            )
        }
        Err(Refusal::PassThrough) => Step::Done(Decision::Allow(anonymous(config))),
        Err(Refusal::Deny(denial)) => Step::Done(Decision::Deny(denial)),
        Err(_) => deny(family, DenyReason::Internal),
    }
}

/// Keeps a provider's answer: in the answer cache, except what must reach the token service
/// again (a Basic failure, which it counts) or is remembered per user (a lock).
fn remember(
    provider: &OAuthProvider,
    pending: &PendingToken,
    info: &TokenInfo,
    env: &Env<'_>,
    now: UnixSeconds,
) {
    if let Some(settings) = &provider.api_tokens {
        let (user, login_url) = match info {
            TokenInfo::Locked { user, login_url } => (user.as_deref(), login_url),
            TokenInfo::LockingFailure { user, login_url } => (Some(user.as_str()), login_url),
            _ => (None, &None),
        };
        if let Some(user) = user {
            let until = now.saturating_add(settings.locked_cache_ttl_seconds);
            let url = login_url.as_deref().unwrap_or(&settings.login_url);
            LockedUsers::new(env.store, &provider.scope, &provider.client_secret).remember(user, url, until);
        }
    }
    if matches!(info, TokenInfo::Locked { .. } | TokenInfo::LockingFailure { .. }) {
        return;
    }
    // For Basic, only an answer that lets the named user in is kept: anything else (a wrong
    // secret, another user's token) is a failed login the service must see every time.
    let admits_basic_user = match (&pending.context.basic_user, info) {
        (None, _) => true,
        (Some(basic), TokenInfo::Active { user, .. }) => same_user(basic, user),
        (Some(_), _) => false,
    };
    if provider.api_tokens.is_some() && !admits_basic_user {
        return;
    }
    if let Ok(bytes) = serde_json::to_vec(info) {
        oauth_cache().insert(env.store, &pending.key, &bytes, provider.cache_until(info, now));
    }
}

/// An opaque token's fate once its provider spoke: an identity, a password passed to the
/// application, or a denial (the token service's lock for a user it locked, even when this
/// Envoy cached the token as valid before).
fn settle(
    provider: &OAuthProvider,
    info: TokenInfo,
    context: &TokenContext,
    env: &Env<'_>,
    now: UnixSeconds,
) -> Result<Identity, Refusal> {
    let family = family_of(provider);
    let deny = |reason| Refusal::Deny(Denial::new(family, reason));
    let unmapped = info == TokenInfo::UnmappedClient;
    let user = match info {
        TokenInfo::Locked { login_url, .. } => {
            let login_url = match (login_url, &provider.api_tokens) {
                (Some(url), _) => url,
                (None, Some(settings)) => settings.login_url.clone(),
                (None, None) => return Err(deny(DenyReason::TokenInactive)),
            };
            return Err(Refusal::Deny(Denial::new(
                Family::ApiToken,
                DenyReason::LockedOut { login_url },
            )));
        }
        TokenInfo::Active { user, .. }
            if context.basic_user.as_ref().is_some_and(|b| !same_user(b, &user)) =>
        {
            None
        }
        TokenInfo::Active { user, scopes, .. } => {
            if let Some(locked) = lockout(provider, &user, env, now) {
                // The service said this user is locked since this answer was cached.
                return Err(Refusal::Deny(locked));
            }
            let missing = missing_scopes(&context.scopes, &scopes);
            if !missing.is_empty() {
                return Err(deny(DenyReason::InsufficientScope(context.scopes.clone())));
            }
            Some(user)
        }
        TokenInfo::Inactive | TokenInfo::UnmappedClient | TokenInfo::LockingFailure { .. } => None,
    };
    if provider.api_tokens.is_none() {
        return match user {
            Some(user) => Ok(identity(family, user)),
            None if unmapped => Err(deny(DenyReason::UnmappedClient)),
            None => Err(deny(DenyReason::TokenInactive)),
        };
    }
    match (user, &context.basic_user) {
        (Some(user), _) => Ok(identity(family, user)),
        (None, Some(_)) if context.basic_passwords == BasicPasswords::Pass => Err(Refusal::PassThrough),
        (None, _) => Err(deny(DenyReason::InvalidApiToken)),
    }
}

fn identity(family: Family, user: String) -> Identity {
    Identity {
        family,
        user,
        tenant: None,
        claim_headers: Vec::new(),
        forward_token: false,
    }
}

/// Slots of the shared token-provider answer cache.
pub const OAUTH_CACHE_SLOTS: u32 = 32_768;

fn oauth_cache() -> SlotCache {
    SlotCache::new("oauth", OAUTH_CACHE_SLOTS)
}

/// The key of `provider`'s answer about `token` (for Basic, `basic_user`'s), in the
/// provider's scope: also the coalescing key of the question that asks it.
fn answer_key(
    cache: &SlotCache,
    provider: &OAuthProvider,
    basic_user: Option<&str>,
    token: &str,
) -> CacheKey {
    let raw = format!("{}\0{}\0{token}", provider.name, basic_user.unwrap_or_default());
    cache.key(&provider.scope, raw.as_bytes())
}

/// The bucket of the answer cache that holds `provider`'s answer about a Bearer `token`: for
/// the benchmark, which replays the cache's layout to predict the callouts it must make.
pub fn answer_bucket(provider: &OAuthProvider, token: &str) -> u32 {
    let cache = oauth_cache();
    cache.bucket(&answer_key(&cache, provider, None, token))
}

/// The cached answer of `provider` about `token` (for `Basic`, `basic_user`'s) at `now`.
pub fn cached_answer(
    store: &dyn SharedStore,
    provider: &OAuthProvider,
    basic_user: Option<&str>,
    token: &str,
    now: UnixSeconds,
) -> Option<TokenInfo> {
    let cache = oauth_cache();
    read_cached(
        &cache,
        store,
        &answer_key(&cache, provider, basic_user, token),
        now,
    )
}

/// A cache entry read back from shared data (which any writer may have filled): a
/// well-formed answer that is still good at `now`, or a miss. An active answer whose own
/// `exp` has passed, or whose user could not be a header value, is a miss whatever the
/// entry's expiry says.
fn read_cached(
    cache: &SlotCache,
    store: &dyn SharedStore,
    key: &CacheKey,
    now: UnixSeconds,
) -> Option<TokenInfo> {
    let info = serde_json::from_slice::<TokenInfo>(&cache.get(store, key, now)?).ok()?;
    match &info {
        TokenInfo::Active { user, exp, .. } => {
            let usable = !user.is_empty() && !user.chars().any(char::is_control);
            (usable && exp.is_none_or(|exp| exp > now)).then_some(info)
        }
        TokenInfo::Inactive | TokenInfo::UnmappedClient => Some(info),
        TokenInfo::Locked { .. } | TokenInfo::LockingFailure { .. } => None,
    }
}

/// Checks an opaque token with a callout provider: from the cache, or by asking it. For
/// `Basic user:token` the cache key and the question include the user. A credential out of
/// the bounds of [`check_bounds`] is never asked about.
pub(crate) fn verify_opaque(
    provider: &OAuthProvider,
    rule: &Rule,
    token: &str,
    basic_user: Option<&str>,
    client_address: Option<&str>,
    env: &Env<'_>,
    now: UnixSeconds,
) -> Result<Identity, Refusal> {
    if check_bounds(token, basic_user).is_err() {
        // Out of bounds: answered as a wrong token is (401), without asking the provider or
        // caching anything. No secret that long (or empty) is anybody's, so no guess is lost
        // to the token service's counter.
        let context = TokenContext {
            scopes: rule.scopes.clone(),
            basic_user: basic_user.map(str::to_owned),
            basic_passwords: rule.basic_passwords,
        };
        return settle(provider, TokenInfo::Inactive, &context, env, now);
    }
    let cache = oauth_cache();
    let key = answer_key(&cache, provider, basic_user, token);
    match read_cached(&cache, env.store, &key, now) {
        Some(info) => {
            env.count.count(Metric::IntrospectionCacheHit);
            let context = TokenContext {
                scopes: rule.scopes.clone(),
                basic_user: basic_user.map(str::to_owned),
                basic_passwords: rule.basic_passwords,
            };
            settle(provider, info, &context, env, now)
        }
        None => {
            env.count.count(Metric::IntrospectionCacheMiss);
            Err(Refusal::AskProvider {
                provider: provider.name.clone(),
                key,
                callout: Box::new(provider.callout(
                    token,
                    basic_user,
                    rule.basic_passwords == BasicPasswords::Refuse,
                    client_address,
                )),
                basic_user: basic_user.map(str::to_owned),
            })
        }
    }
}

pub(crate) fn family_of(provider: &OAuthProvider) -> Family {
    if provider.api_tokens.is_some() {
        Family::ApiToken
    } else {
        Family::OAuth
    }
}

/// The 403 of a user the token service recently said is locked (before any callout for
/// Basic, and over a cached positive answer).
pub(crate) fn lockout(
    provider: &OAuthProvider,
    user: &str,
    env: &Env<'_>,
    now: UnixSeconds,
) -> Option<Denial> {
    provider.api_tokens.as_ref()?;
    let login_url =
        LockedUsers::new(env.store, &provider.scope, &provider.client_secret).locked(user, now)?;
    Some(Denial::new(Family::ApiToken, DenyReason::LockedOut { login_url }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::MapStore;
    use crate::challenge::Challenges;
    use crate::extract::Location;

    const NOW: UnixSeconds = 1_700_000_000;

    fn env(store: &MapStore) -> Env<'_> {
        crate::test_support::env_over(store)
    }

    /// What became of a token, in words a test can compare.
    #[derive(Debug, PartialEq)]
    enum Seen {
        Admitted(String),
        Asked { cluster: String, key: CacheKey },
        Denied(DenyReason),
        PassedThrough,
        Other,
    }

    fn seen(result: Result<Identity, Refusal>) -> Seen {
        match result {
            Ok(identity) => Seen::Admitted(identity.user),
            Err(Refusal::AskProvider { callout, key, .. }) => Seen::Asked {
                cluster: callout.cluster,
                key,
            },
            Err(Refusal::Deny(denial)) => Seen::Denied(denial.reason),
            Err(Refusal::PassThrough) => Seen::PassedThrough,
            Err(_) => Seen::Other,
        }
    }

    /// `token` checked by the first provider of `config` on its first rule.
    fn verify(config: &Config, store: &MapStore, token: &str) -> Seen {
        let (provider, rule) = (&config.oauth_providers[0], &config.policy.rules[0]);
        seen(verify_opaque(provider, rule, token, None, None, &env(store), NOW))
    }

    /// The question asked about `token`, answered with `answer`.
    fn answer(
        config: &Config,
        store: &MapStore,
        token: &str,
        answer: Result<TokenInfo, ProviderFailure>,
    ) -> Step {
        let Seen::Asked { key, .. } = verify(config, store, token) else {
            panic!("not asked")
        };
        let pending = PendingToken {
            provider: config.oauth_providers[0].name.clone(),
            key,
            context: TokenContext {
                scopes: config.policy.rules[0].scopes.clone(),
                basic_user: None,
                basic_passwords: BasicPasswords::Refuse,
            },
            location: Location::AuthorizationHeader,
            forwarded_path: None,
            challenges: Challenges::UNKNOWN,
        };
        after_provider(config, pending, answer, &env(store), NOW)
    }

    fn denied(step: &Step) -> Option<DenyReason> {
        match step {
            Step::Done(Decision::Deny(denial)) => Some(denial.reason.clone()),
            _ => None,
        }
    }

    fn fred(scopes: &[&str]) -> TokenInfo {
        TokenInfo::Active {
            user: "fred".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            exp: Some(NOW + 60),
        }
    }

    /// The introspection provider `kc` of a configuration.
    fn config(kc: &str) -> Config {
        let json = format!(r#"{{"oauth_providers": {{"kc": {kc}}}}}"#);
        Config::from_json(json.as_bytes()).unwrap()
    }

    const KC: &str = r#"{"introspection": {"cluster": "kc", "path": "/introspect",
                                           "client_id": "tg", "client_secret": "s"}}"#;

    fn kc() -> OAuthProvider {
        config(KC).oauth_providers.remove(0)
    }

    fn store_answer(store: &MapStore, provider: &OAuthProvider, value: &[u8], until: UnixSeconds) {
        let cache = oauth_cache();
        cache.insert(store, &answer_key(&cache, provider, None, "t"), value, until);
    }

    #[test]
    fn a_cached_answer_is_served_only_while_both_the_entry_and_the_token_are_good() {
        let active = |exp: Option<i64>, user: &str| {
            serde_json::to_vec(&TokenInfo::Active {
                user: user.into(),
                scopes: vec![],
                exp,
            })
            .unwrap()
        };
        for (value, until, served) in [
            (active(Some(NOW + 10), "fred"), NOW + 10, true),
            (active(None, "fred"), NOW + 10, true),
            (active(Some(NOW + 10), "fred"), NOW, false),
            (active(Some(NOW), "fred"), NOW + 100, false),
            (active(None, ""), NOW + 100, false),
            (active(None, "fr\ned"), NOW + 100, false),
            (serde_json::to_vec(&TokenInfo::Inactive).unwrap(), NOW + 1, true),
            (b"{\"Active\":{}}".to_vec(), NOW + 100, false),
            (b"\xff\xfe".to_vec(), NOW + 100, false),
        ] {
            let (store, kc) = (MapStore::default(), kc());
            store_answer(&store, &kc, &value, until);
            let got = cached_answer(&store, &kc, None, "t", NOW);
            assert_eq!(got.is_some(), served, "{}", String::from_utf8_lossy(&value));
            assert_eq!(
                cached_answer(&store, &kc, Some("fred"), "t", NOW),
                None,
                "Basic has its own key"
            );
        }
    }

    #[test]
    fn an_uncached_token_is_asked_about_at_the_providers_endpoint() {
        let (config, store) = (config(KC), MapStore::default());
        let Seen::Asked { cluster, .. } = verify(&config, &store, "t") else {
            panic!("not asked")
        };
        assert_eq!(cluster, "kc");
    }

    #[test]
    fn a_cached_active_answer_admits_its_user_and_a_cached_inactive_one_refuses() {
        let (config, store) = (config(KC), MapStore::default());
        let provider = &config.oauth_providers[0];
        store_answer(
            &store,
            provider,
            &serde_json::to_vec(&fred(&[])).unwrap(),
            NOW + 10,
        );
        assert_eq!(verify(&config, &store, "t"), Seen::Admitted("fred".into()));
        let cache = oauth_cache();
        let inactive = serde_json::to_vec(&TokenInfo::Inactive).unwrap();
        cache.insert(
            &store,
            &answer_key(&cache, provider, None, "u"),
            &inactive,
            NOW + 10,
        );
        assert_eq!(
            verify(&config, &store, "u"),
            Seen::Denied(DenyReason::TokenInactive)
        );
    }

    #[test]
    fn a_cached_answer_without_the_rules_scopes_is_insufficient() {
        let json = format!(
            r#"{{"oauth_providers": {{"kc": {KC}}},
                "rules": [{{"path_prefix": "/", "providers": ["kc"], "scopes": ["write"]}}]}}"#
        );
        let (config, store) = (Config::from_json(json.as_bytes()).unwrap(), MapStore::default());
        store_answer(
            &store,
            &config.oauth_providers[0],
            &serde_json::to_vec(&fred(&["read"])).unwrap(),
            NOW + 10,
        );
        assert_eq!(
            verify(&config, &store, "t"),
            Seen::Denied(DenyReason::InsufficientScope(vec!["write".into()]))
        );
    }

    #[test]
    fn every_answer_of_the_provider_decides_and_only_answers_are_cached() {
        let cases = [
            (Ok(fred(&[])), None, true),
            (Ok(TokenInfo::Inactive), Some(DenyReason::TokenInactive), true),
            (
                Ok(TokenInfo::UnmappedClient),
                Some(DenyReason::UnmappedClient),
                true,
            ),
            (
                Err(ProviderFailure::ClientRejected),
                Some(DenyReason::ProviderRejectedClient),
                false,
            ),
            (
                Err(ProviderFailure::NoResponse),
                Some(DenyReason::ProviderUnavailable),
                false,
            ),
            (
                Err(ProviderFailure::BadStatus),
                Some(DenyReason::ProviderUnavailable),
                false,
            ),
            (
                Err(ProviderFailure::Unparsable),
                Some(DenyReason::ProviderUnavailable),
                false,
            ),
        ];
        for (reply, expected, cached) in cases {
            let (config, store) = (config(KC), MapStore::default());
            let step = answer(&config, &store, "t", reply.clone());
            assert_eq!(denied(&step), expected, "{reply:?}");
            if expected.is_none() {
                assert!(
                    matches!(step, Step::Done(Decision::Allow(_))),
                    "{reply:?}: {step:?}"
                );
            }
            let again = verify(&config, &store, "t");
            assert_eq!(
                !matches!(again, Seen::Asked { .. }),
                cached,
                "{reply:?}: {again:?}"
            );
        }
    }

    #[test]
    fn an_answer_for_a_provider_the_configuration_lacks_is_an_internal_error() {
        let (config, store) = (config(KC), MapStore::default());
        let Seen::Asked { key, .. } = verify(&config, &store, "t") else {
            panic!("not asked")
        };
        let pending = PendingToken {
            provider: "gone".into(),
            key,
            context: TokenContext {
                scopes: vec![],
                basic_user: None,
                basic_passwords: BasicPasswords::Refuse,
            },
            location: Location::AuthorizationHeader,
            forwarded_path: None,
            challenges: Challenges::UNKNOWN,
        };
        let step = after_provider(&config, pending, Ok(fred(&[])), &env(&store), NOW);
        assert_eq!(denied(&step), Some(DenyReason::Internal));
    }

    #[test]
    fn another_configurations_corp_never_answers_for_this_ones() {
        let store = MapStore::default();
        let listener_1 = config(KC);
        let listener_2 = config(
            r#"{"introspection": {"cluster": "other-idp", "path": "/introspect",
                                  "client_id": "tg", "client_secret": "s"}}"#,
        );
        assert!(matches!(
            answer(&listener_1, &store, "t", Ok(fred(&[]))),
            Step::Done(Decision::Allow(_))
        ));
        assert_eq!(verify(&listener_1, &store, "t"), Seen::Admitted("fred".into()));
        let (Seen::Asked { key: key_2, cluster }, Some(key_1)) = (
            verify(&listener_2, &store, "t"),
            Some(answer_key(
                &oauth_cache(),
                &listener_1.oauth_providers[0],
                None,
                "t",
            )),
        ) else {
            panic!("listener 2 must ask its own provider")
        };
        assert_eq!(cluster, "other-idp");
        assert_ne!(key_1, key_2, "nor does it join listener 1's question");
        // And the other way round.
        assert_eq!(
            denied(&answer(&listener_2, &store, "u", Ok(TokenInfo::Inactive))),
            Some(DenyReason::TokenInactive)
        );
        assert!(matches!(verify(&listener_1, &store, "u"), Seen::Asked { .. }));
    }

    #[test]
    fn the_same_section_in_two_configurations_shares_its_answers() {
        let store = MapStore::default();
        let listener_1 = config(KC);
        let json = format!(
            r#"{{"oauth_providers": {{"kc": {KC}}}, "realm": "elsewhere",
                "directory": {{"inactive_users": ["gone"]}}}}"#
        );
        let listener_2 = Config::from_json(json.as_bytes()).unwrap();
        answer(&listener_1, &store, "t", Ok(fred(&[])));
        assert_eq!(verify(&listener_2, &store, "t"), Seen::Admitted("fred".into()));
    }

    #[test]
    fn api_token_providers_remember_locked_users_in_their_own_scope() {
        let api = |cluster: &str| {
            let json = format!(
                r#"{{"api_token_providers": {{"corp": {{"introspection": {{"cluster": "{cluster}",
                    "path": "/introspect", "client_id": "tg", "client_secret": "s"}}}}}}}}"#
            );
            Config::from_json(json.as_bytes()).unwrap()
        };
        let (listener_1, listener_2, store) = (api("ts-1"), api("ts-2"), MapStore::default());
        let locked = TokenInfo::Locked {
            user: Some("fred".into()),
            login_url: None,
        };
        answer(&listener_1, &store, "t", Ok(locked));
        assert!(lockout(&listener_1.oauth_providers[0], "fred", &env(&store), NOW).is_some());
        assert_eq!(
            lockout(&listener_2.oauth_providers[0], "fred", &env(&store), NOW),
            None
        );
    }
}
