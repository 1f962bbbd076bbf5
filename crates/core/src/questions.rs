//! The question table: every callout a worker has out, who waits for its answer, and until
//! when. One table per worker; the root context dispatches every question from it and feeds
//! every answer, refusal, hang-up and tick back in (see [`crate::worker`]).
//!
//! A *question* is one callout with a coalescing key: requests that need the same answer wait
//! on one question. A *waiter* is a request (its context id), its deadline and what it does
//! with the answer (`then`). Whatever happens to the question, a waiter is answered by its
//! deadline ([`Questions::expired`]); a request that ends takes its waiters with it
//! ([`Questions::gone`]); a question nobody waits for any more stays only until its answer
//! comes, which is then ignored (the host guarantees one: every callout has a timeout).
//! Requests parked for keys ([`Questions::park`]) wait on a key without a callout of their own.
//!
//! The table is generic over the key and the waiter's `then`; [`About`] and [`Then`] below are
//! the worker's own, with what an answer, a refusal or a timeout means for each.

use crate::admit::finish;
use crate::cache::CacheKey;
use crate::callout::{Callout, CalloutResult};
use crate::clock::UnixSeconds;
use crate::config::Config;
use crate::directory::{parse_user_response, Directory, DirectoryError, UserCache, UserStatus};
use crate::host::Env;
use crate::introspect::{ProviderFailure, TokenInfo};
use crate::jwks_cache::Millis;
use crate::metrics::Metric;
use crate::oauth1_provider::after_answer;
use crate::oauth1_question::AccessTokenInfo;
use crate::opaque::after_provider;
use crate::outcome::{keys_unavailable, Decision, Pending, PendingSigned, PendingToken, Step};

/// The host's id of a request (HTTP) context.
pub type ContextId = u32;
/// The host's id of a dispatched callout.
pub type Token = u32;

/// A request waiting for an answer, until `deadline`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiter<T> {
    pub context: ContextId,
    pub deadline: Millis,
    pub then: T,
}

/// Whether [`Questions::ask`] made a new question (the root must dispatch it) or joined one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    New,
    Joined,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sending {
    Unsent,
    Sent(Token),
}

#[derive(Debug)]
struct Question<K, T> {
    key: K,
    callout: Callout,
    sending: Sending,
    /// The root's own (a key fetch): kept unsent until dispatched, with or without waiters.
    root: bool,
    waiters: Vec<Waiter<T>>,
}

/// The questions of one worker and the requests waiting on them.
#[derive(Debug)]
pub struct Questions<K, T> {
    questions: Vec<Question<K, T>>,
    /// Requests waiting on a key with no callout of their own (keys being fetched).
    parked: Vec<(K, Waiter<T>)>,
}

impl<K, T> Default for Questions<K, T> {
    fn default() -> Self {
        Self {
            questions: Vec::new(),
            parked: Vec::new(),
        }
    }
}

impl<K: PartialEq + Clone, T> Questions<K, T> {
    /// `waiter` needs the answer to `callout`: it joins the question about `key` if there is
    /// one (sent or not, waited on or not), or makes a new one for the root to dispatch.
    pub fn ask(&mut self, key: K, callout: Callout, waiter: Waiter<T>) -> Asked {
        self.add(key, callout, Some(waiter))
    }

    /// A question of the root's own, nobody waiting (a key fetch): new unless one is out.
    pub fn fetch(&mut self, key: K, callout: Callout) -> Asked {
        self.add(key, callout, None)
    }

    fn add(&mut self, key: K, callout: Callout, waiter: Option<Waiter<T>>) -> Asked {
        if let Some(question) = self.questions.iter_mut().find(|q| q.key == key) {
            question.waiters.extend(waiter);
            return Asked::Joined;
        }
        let root = waiter.is_none();
        let waiters = waiter.into_iter().collect();
        let sending = Sending::Unsent;
        self.questions.push(Question {
            key,
            callout,
            sending,
            root,
            waiters,
        });
        Asked::New
    }

    /// The questions not dispatched yet, in the order they were asked.
    pub fn unsent(&self) -> Vec<(K, Callout)> {
        self.questions
            .iter()
            .filter(|q| q.sending == Sending::Unsent)
            .map(|q| (q.key.clone(), q.callout.clone()))
            .collect()
    }

    /// The host took the question about `key`: its answer comes with `token`.
    pub fn sent(&mut self, key: &K, token: Token) {
        if let Some(question) = self.questions.iter_mut().find(|q| q.key == *key) {
            question.sending = Sending::Sent(token);
        }
    }

    /// The host refused to dispatch the question about `key`: it is over, and its waiters
    /// are to be answered with the failure (no answer will come).
    pub fn refused(&mut self, key: &K) -> Vec<Waiter<T>> {
        match self.questions.iter().position(|q| q.key == *key) {
            Some(at) => self.questions.swap_remove(at).waiters,
            None => Vec::new(),
        }
    }

    /// The answer with `token` came: the question is over; its waiters (perhaps none: then
    /// the answer is ignored) are to be answered. `None` for a token the table never filed.
    pub fn answered(&mut self, token: Token) -> Option<(K, Vec<Waiter<T>>)> {
        let at = self
            .questions
            .iter()
            .position(|q| q.sending == Sending::Sent(token))?;
        let question = self.questions.swap_remove(at);
        Some((question.key, question.waiters))
    }

    /// The request `context` ended: nothing is done for it any more. A question left with no
    /// waiter stays until its answer comes if it was sent, and is dropped if it was not.
    pub fn gone(&mut self, context: ContextId) {
        self.parked.retain(|(_, w)| w.context != context);
        for question in &mut self.questions {
            question.waiters.retain(|w| w.context != context);
        }
        self.drop_unsent_unwaited();
    }

    /// Every waiter whose deadline passed at `now`, taken out of the table, to be answered with
    /// the failure its request sees; the others keep waiting.
    pub fn expired(&mut self, now: Millis) -> Vec<Waiter<T>> {
        let mut late = Vec::new();
        for question in &mut self.questions {
            let (gone, kept) = std::mem::take(&mut question.waiters)
                .into_iter()
                .partition(|w| now >= w.deadline);
            question.waiters = kept;
            late.extend::<Vec<_>>(gone);
        }
        // A parked waiter has no callout whose timeout (the host's, on its own clock) ends
        // it: one whose deadline lies further ahead than any wait can was given it under a
        // clock since stepped back, and is over now rather than after the step.
        let longest = now.saturating_add(LONGEST_WAIT_MS);
        let (gone, kept) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|(_, w)| now >= w.deadline || w.deadline > longest);
        self.parked = kept;
        late.extend(gone.into_iter().map(|(_, w): (K, Waiter<T>)| w));
        self.drop_unsent_unwaited();
        late
    }

    /// `waiter` waits for `key` to settle (keys to arrive) with no callout of its own.
    pub fn park(&mut self, key: K, waiter: Waiter<T>) {
        self.parked.push((key, waiter));
    }

    /// The parked waiters whose key is `settled`, taken out of the table.
    pub fn wake(&mut self, settled: impl Fn(&K) -> bool) -> Vec<Waiter<T>> {
        let (ready, kept) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|(key, _)| settled(key));
        self.parked = kept;
        ready.into_iter().map(|(_, w): (K, Waiter<T>)| w).collect()
    }

    /// Questions asked and not answered yet (the `questions.in_flight` gauge).
    pub fn in_flight(&self) -> usize {
        self.questions.len()
    }

    /// Requests waiting on a question or parked (the `questions.waiting` gauge).
    pub fn waiting(&self) -> usize {
        let on_questions: usize = self.questions.iter().map(|q| q.waiters.len()).sum();
        on_questions.saturating_add(self.parked.len())
    }

    /// An unsent question of requests that nobody waits for any more will never be needed.
    fn drop_unsent_unwaited(&mut self) {
        self.questions
            .retain(|q| q.root || q.sending != Sending::Unsent || !q.waiters.is_empty());
    }
}

/// Time a waiter gives its callout beyond the callout's own timeout before it gives up: the
/// host answers every callout by its timeout, so this only bounds a host that does not.
pub const DEADLINE_GRACE_MS: Millis = 1_000;

/// The longest a request can be told to wait: every callout timeout and every `wait_ms` is
/// at most 60 s (the configuration clamps them), plus [`DEADLINE_GRACE_MS`].
pub const LONGEST_WAIT_MS: Millis = 60_000 + DEADLINE_GRACE_MS;

/// The deadline of a request that waits on `callout` from `now`.
pub fn deadline_for(callout: &Callout, now: Millis) -> Millis {
    now.saturating_add(callout.timeout_ms)
        .saturating_add(DEADLINE_GRACE_MS)
}

/// What a worker's question is about; questions with equal keys share one callout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum About {
    /// A token provider's word on a token, by its answer-cache key.
    Token(CacheKey),
    /// The directory's word on a user, by its user-cache key (one lookup per user).
    User(CacheKey),
    /// A remote provider's JWKS, by provider name.
    Keys(String),
}

impl About {
    /// The counter of a request that joined a question instead of asking its own.
    pub fn coalesced_metric(&self) -> Option<Metric> {
        match self {
            About::Token(_) => Some(Metric::IntrospectionCoalesced),
            About::User(_) | About::Keys(_) => None,
        }
    }

    /// The counter of a new question once it is dispatched.
    pub fn dispatched_metric(&self) -> Option<Metric> {
        match self {
            About::Token(_) => Some(Metric::IntrospectionCallouts),
            About::User(_) | About::Keys(_) => None,
        }
    }
}

/// The question about `pending`'s user (only a callout directory is asked).
pub fn about_user(directory: &Directory, pending: &Pending) -> About {
    match directory {
        Directory::Callout(callout) => About::User(UserCache::default().key(callout, pending.user())),
        Directory::Static { .. } => About::User(CacheKey::default()),
    }
}

/// What a waiting request does with its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Then {
    /// Continue after the token provider's word.
    Provider(PendingToken),
    /// Continue an OAuth 1.0a signed request after the token service's word on its token.
    Signed(PendingSigned),
    /// Finish with the directory's word on the user.
    User(Pending),
    /// Decide the whole request again (its provider's keys arrived).
    Decide,
}

/// What the worker does with a step of the core: apply a decision, park the request for keys,
/// or ask (or join) a question.
#[derive(Debug)]
// One per step, moved once into the table: boxing the question would cost an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Todo {
    Done(Decision),
    WaitForKeys {
        provider: String,
        refetch: bool,
    },
    Ask(About, Callout, Then),
    /// Read the request body (at most `max_bytes`, within `timeout_ms`) and decide again.
    ReadBody {
        max_bytes: usize,
        timeout_ms: u64,
    },
}

impl Todo {
    /// The todo of `step`; a directory lookup whose user is cached is done at once.
    pub fn of(config: &Config, step: Step, env: &Env<'_>, now: UnixSeconds) -> Todo {
        match step {
            Step::Done(decision) => Todo::Done(decision),
            Step::WaitForKeys { provider, refetch } => Todo::WaitForKeys { provider, refetch },
            Step::ReadBody {
                max_bytes,
                timeout_ms,
            } => Todo::ReadBody {
                max_bytes,
                timeout_ms,
            },
            Step::AskProvider {
                pending,
                callout,
                key,
            } => Todo::Ask(About::Token(key), callout, Then::Provider(pending)),
            Step::AskOAuth1 {
                pending,
                callout,
                key,
            } => Todo::Ask(About::Token(key), callout, Then::Signed(pending)),
            Step::LookUpUser { pending, callout } => {
                if let Some(status) = config.directory.cached_status(env.store, pending.user(), now) {
                    env.count.count(Metric::DirectoryCacheHit);
                    return Todo::Done(finish(config, pending, Ok(status)));
                }
                env.count.count(Metric::DirectoryCacheMiss);
                Todo::Ask(
                    about_user(&config.directory, &pending),
                    callout,
                    Then::User(pending),
                )
            }
        }
    }
}

/// A callout's answer as read once for every waiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Provider(Result<TokenInfo, ProviderFailure>),
    OAuth1(Result<AccessTokenInfo, ProviderFailure>),
    User(Result<UserStatus, DirectoryError>),
}

/// A problem worth a (rate-limited) log line: its key, whether it is an error, the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub error: bool,
    pub message: String,
}

impl Answer {
    /// Reads `result` for the waiters of a question (the first names the provider or user);
    /// caches a directory answer, counts failures in `env`, and says what to log. `None` when
    /// there is nothing to read for: nobody waits (the answer is ignored), or the waiters'
    /// provider is not configured (they fail as with no answer).
    pub fn read(
        config: &Config,
        waiters: &[Waiter<Then>],
        result: CalloutResult,
        challenge: Option<&str>,
        env: &Env<'_>,
        now: UnixSeconds,
    ) -> Option<(Answer, Option<Problem>)> {
        match &waiters.first()?.then {
            Then::Provider(pending) => {
                let provider = config
                    .oauth_providers
                    .iter()
                    .find(|p| p.name == pending.provider())?;
                let answer = match result {
                    CalloutResult::Response { status, body } => {
                        provider.read_answer(status, challenge, &body, now)
                    }
                    CalloutResult::Failed => Err(ProviderFailure::NoResponse),
                };
                let problem = answer
                    .as_ref()
                    .err()
                    .map(|f| provider_problem(&provider.name, *f, env));
                Some((Answer::Provider(answer), problem))
            }
            Then::Signed(pending) => {
                let provider = config
                    .oauth1_providers
                    .iter()
                    .find(|p| p.name == pending.provider())?;
                let answer = match result {
                    CalloutResult::Response { status, body } => {
                        provider.read_answer(status, &body, pending.consumer_key(), now)
                    }
                    CalloutResult::Failed => Err(ProviderFailure::NoResponse),
                };
                let problem = answer
                    .as_ref()
                    .err()
                    .map(|f| provider_problem(&provider.name, *f, env));
                Some((Answer::OAuth1(answer), problem))
            }
            Then::User(pending) => {
                let user = pending.user();
                let status = match result {
                    CalloutResult::Response { status, body } => parse_user_response(status, &body, user),
                    CalloutResult::Failed => Err(DirectoryError::Unavailable),
                };
                let problem = match (&status, &config.directory) {
                    (Ok(found), Directory::Callout(settings)) => {
                        UserCache::default().insert(env.store, settings, user, *found, now);
                        None
                    }
                    (Err(error), _) => {
                        env.count.count(Metric::DirectoryCalloutFailed);
                        Some(Problem {
                            key: format!("directory/{error:?}"),
                            error: false,
                            message: format!("user directory callout failed: {error:?}"),
                        })
                    }
                    (Ok(_), _) => None,
                };
                Some((Answer::User(status), problem))
            }
            Then::Decide => None,
        }
    }
}

/// Counts a failed provider callout and says what to log.
fn provider_problem(name: &str, failure: ProviderFailure, env: &Env<'_>) -> Problem {
    env.count.count(Metric::introspection_failed(failure));
    let what = match failure {
        ProviderFailure::ClientRejected => "rejected the configured client credentials".to_owned(),
        other => format!("gave no usable answer ({other:?})"),
    };
    Problem {
        key: format!("{name}/{}", Metric::introspection_failed(failure).suffix()),
        error: failure == ProviderFailure::ClientRejected,
        message: format!("token provider `{name}` {what}"),
    }
}

impl Then {
    /// The waiter's next step with `answer`; an answer to another kind of question than the
    /// waiter's (never made so) fails the waiter as its own question failing would.
    pub fn answered(self, config: &Config, answer: &Answer, env: &Env<'_>, now: UnixSeconds) -> Step {
        match (self, answer) {
            (Then::Provider(pending), Answer::Provider(word)) => {
                after_provider(config, pending, word.clone(), env, now)
            }
            (Then::Signed(pending), Answer::OAuth1(word)) => {
                after_answer(config, pending, word.clone(), env, now)
            }
            (Then::User(pending), Answer::User(status)) => Step::Done(finish(config, pending, *status)),
            (then, _) => then.failed(config, env, now),
        }
    }

    /// The waiter's step when it gets no answer (its deadline passed, or there was nothing
    /// to read for it): the failure its user sees. Not counted as a callout failure: the
    /// callout's own end is counted when it comes ([`Answer::read`]; a refused dispatch is
    /// read as no response).
    pub fn failed(self, config: &Config, env: &Env<'_>, now: UnixSeconds) -> Step {
        match self {
            Then::Provider(pending) => {
                after_provider(config, pending, Err(ProviderFailure::NoResponse), env, now)
            }
            Then::Signed(pending) => {
                after_answer(config, pending, Err(ProviderFailure::NoResponse), env, now)
            }
            Then::User(pending) => Step::Done(finish(config, pending, Err(DirectoryError::Unavailable))),
            Then::Decide => Step::Done(keys_unavailable()),
        }
    }
}

/// A table over the worker's own keys and waiters.
pub type WorkerQuestions = Questions<About, Then>;

#[cfg(test)]
mod tests {
    use super::*;

    type Table = Questions<&'static str, &'static str>;

    fn callout(path: &str) -> Callout {
        Callout {
            cluster: "idp".into(),
            method: "POST",
            path: path.into(),
            authority: "idp".into(),
            headers: Vec::new(),
            body: None,
            timeout_ms: 1_000,
        }
    }

    fn waiter(context: ContextId, deadline: Millis, then: &'static str) -> Waiter<&'static str> {
        Waiter {
            context,
            deadline,
            then,
        }
    }

    fn contexts(waiters: &[Waiter<&'static str>]) -> Vec<ContextId> {
        let mut ids: Vec<ContextId> = waiters.iter().map(|w| w.context).collect();
        ids.sort_unstable();
        ids
    }

    fn counts(table: &Table) -> (usize, usize) {
        (table.in_flight(), table.waiting())
    }

    #[test]
    fn a_new_question_must_be_dispatched_and_the_same_key_joins_it() {
        let mut table = Table::default();
        assert_eq!(table.ask("t1", callout("/a"), waiter(1, 9, "a")), Asked::New);
        assert_eq!(table.ask("t1", callout("/a"), waiter(2, 9, "b")), Asked::Joined);
        assert_eq!(table.ask("t2", callout("/b"), waiter(3, 9, "c")), Asked::New);
        let unsent: Vec<&str> = table.unsent().into_iter().map(|(k, _)| k).collect();
        assert_eq!(unsent, ["t1", "t2"]);
        assert_eq!(counts(&table), (2, 3));
    }

    #[test]
    fn a_sent_question_is_no_longer_unsent_and_is_answered_by_its_token() {
        let mut table = Table::default();
        table.ask("t1", callout("/a"), waiter(1, 9, "a"));
        table.ask("t1", callout("/a"), waiter(2, 9, "b"));
        table.sent(&"t1", 7);
        assert!(table.unsent().is_empty());
        assert_eq!(
            table.ask("t1", callout("/a"), waiter(3, 9, "c")),
            Asked::Joined,
            "joins a sent one"
        );
        assert_eq!(table.answered(8), None, "a token the table never filed");
        let (key, waiters) = table.answered(7).unwrap();
        assert_eq!(key, "t1");
        assert_eq!(contexts(&waiters), [1, 2, 3]);
        assert_eq!(counts(&table), (0, 0));
        assert_eq!(table.answered(7), None, "answered once");
    }

    #[test]
    fn a_question_the_host_refused_answers_its_waiters_and_is_over() {
        let mut table = Table::default();
        table.ask("t1", callout("/a"), waiter(1, 9, "a"));
        table.ask("t1", callout("/a"), waiter(2, 9, "b"));
        assert_eq!(contexts(&table.refused(&"t1")), [1, 2]);
        assert!(table.refused(&"t1").is_empty());
        assert_eq!(counts(&table), (0, 0));
    }

    #[test]
    fn a_root_fetch_has_no_waiter_and_is_not_made_twice() {
        let mut table = Table::default();
        assert_eq!(table.fetch("jwks", callout("/jwks")), Asked::New);
        assert_eq!(table.fetch("jwks", callout("/jwks")), Asked::Joined);
        table.sent(&"jwks", 1);
        table.gone(5);
        assert_eq!(counts(&table), (1, 0), "a sent fetch stays for its answer");
        assert_eq!(table.answered(1).map(|(k, w)| (k, w.len())), Some(("jwks", 0)));
    }

    #[test]
    fn a_root_fetch_stays_unsent_until_dispatched_whoever_ends_or_expires() {
        let mut table = Table::default();
        table.fetch("jwks", callout("/jwks"));
        table.park("jwks", waiter(1, 100, "a"));
        table.gone(1);
        assert!(table.expired(1_000).is_empty());
        assert_eq!(table.unsent().len(), 1);
        assert_eq!(counts(&table), (1, 0));
    }

    #[test]
    fn a_request_that_ends_takes_its_waiters_with_it() {
        // (what happens, in flight, waiting) after each step.
        let mut table = Table::default();
        table.ask("t1", callout("/a"), waiter(1, 9, "a"));
        table.ask("t1", callout("/a"), waiter(2, 9, "b"));
        table.gone(1);
        assert_eq!(counts(&table), (1, 1));
        table.gone(2);
        assert_eq!(counts(&table), (0, 0), "unsent and unwaited: dropped");
        table.ask("t2", callout("/b"), waiter(3, 9, "c"));
        table.sent(&"t2", 4);
        table.gone(3);
        assert_eq!(counts(&table), (1, 0), "sent: stays until its answer");
        assert_eq!(table.answered(4).map(|(k, w)| (k, w.len())), Some(("t2", 0)));
        assert_eq!(counts(&table), (0, 0));
    }

    #[test]
    fn waiters_past_their_deadline_expire_and_the_others_keep_waiting() {
        let mut table = Table::default();
        table.ask("t1", callout("/a"), waiter(1, 100, "a"));
        table.ask("t1", callout("/a"), waiter(2, 200, "b"));
        table.park("keys", waiter(3, 150, "c"));
        table.sent(&"t1", 7);
        assert!(table.expired(99).is_empty());
        assert_eq!(contexts(&table.expired(100)), [1]);
        assert_eq!(contexts(&table.expired(150)), [3]);
        assert_eq!(counts(&table), (1, 1));
        assert_eq!(contexts(&table.expired(200)), [2]);
        assert_eq!(counts(&table), (1, 0), "the sent question waits for its answer");
        assert_eq!(table.answered(7).map(|(_, w)| w.len()), Some(0));
    }

    #[test]
    fn an_unsent_question_whose_waiters_all_expired_is_dropped() {
        let mut table = Table::default();
        table.ask("t1", callout("/a"), waiter(1, 100, "a"));
        assert_eq!(table.expired(100).len(), 1);
        assert_eq!(counts(&table), (0, 0));
        assert!(table.unsent().is_empty());
    }

    #[test]
    fn a_parked_waiter_is_answered_when_the_clock_is_stepped_back_not_an_hour_later() {
        let mut table = Table::default();
        let at = 10_000_000;
        table.park("corp", waiter(1, at + 5_000, "a"));
        table.ask("t1", callout("/a"), waiter(2, at + 2_000, "b"));
        table.sent(&"t1", 7);
        let back = at - 3_600_000;
        assert_eq!(
            contexts(&table.expired(back)),
            [1],
            "no wait is longer than the longest a configuration allows"
        );
        assert_eq!(
            counts(&table),
            (1, 1),
            "a callout's waiters get its answer, which the host's own timeout bounds"
        );
    }

    #[test]
    fn parked_waiters_wake_when_their_key_settles() {
        let mut table = Table::default();
        table.park("corp", waiter(1, 900, "a"));
        table.park("other", waiter(2, 900, "b"));
        table.park("corp", waiter(3, 900, "c"));
        assert_eq!(counts(&table), (0, 3));
        assert!(table.wake(|_| false).is_empty());
        assert_eq!(contexts(&table.wake(|key| *key == "corp")), [1, 3]);
        table.gone(2);
        assert_eq!(counts(&table), (0, 0));
    }

    // The five scenarios of issue 12, as sequences of what the host delivers.

    #[test]
    fn the_hang_every_request_sharing_an_answer_then_asks_its_own_lookup_and_gets_it() {
        let mut table = Table::default();
        table.ask("token", callout("/introspect"), waiter(1, 5_000, "A"));
        table.ask("token", callout("/introspect"), waiter(2, 5_000, "B"));
        table.sent(&"token", 10);
        let (_, waiters) = table.answered(10).unwrap();
        for w in &waiters {
            let user = if w.context == 1 { "user-a" } else { "user-b" };
            table.ask(user, callout("/user"), waiter(w.context, 9_000, w.then));
        }
        table.sent(&"user-a", 11);
        table.sent(&"user-b", 12);
        assert_eq!(contexts(&table.answered(11).unwrap().1), [1]);
        table.gone(1); // A is answered and ends before B's lookup comes back
        assert_eq!(
            contexts(&table.answered(12).unwrap().1),
            [2],
            "B still gets its answer"
        );
        assert_eq!(counts(&table), (0, 0));
    }

    #[test]
    fn the_owner_hangs_up_while_others_wait_and_they_still_get_the_answer() {
        let mut table = Table::default();
        table.ask("token", callout("/introspect"), waiter(1, 5_000, "A"));
        table.sent(&"token", 10);
        table.ask("token", callout("/introspect"), waiter(2, 5_000, "B"));
        table.ask("token", callout("/introspect"), waiter(3, 5_000, "C"));
        table.gone(1);
        assert_eq!(counts(&table), (1, 2));
        assert_eq!(contexts(&table.answered(10).unwrap().1), [2, 3]);
        assert_eq!(counts(&table), (0, 0));
    }

    #[test]
    fn the_owner_hangs_up_during_its_own_callout_and_the_tables_are_empty_after_the_answer() {
        let mut table = Table::default();
        table.ask("token", callout("/introspect"), waiter(1, 5_000, "A"));
        table.sent(&"token", 10);
        table.gone(1);
        assert_eq!(counts(&table), (1, 0));
        assert!(table.expired(10_000).is_empty());
        assert_eq!(
            table.answered(10).map(|(_, w)| w.len()),
            Some(0),
            "answer ignored"
        );
        assert_eq!(counts(&table), (0, 0));
    }

    #[test]
    fn one_waiter_times_out_while_the_others_keep_waiting() {
        let mut table = Table::default();
        table.ask("token", callout("/introspect"), waiter(1, 2_000, "A"));
        table.sent(&"token", 10);
        table.ask("token", callout("/introspect"), waiter(2, 3_000, "B"));
        assert_eq!(contexts(&table.expired(2_000)), [1]);
        assert_eq!(counts(&table), (1, 1));
        assert_eq!(contexts(&table.answered(10).unwrap().1), [2]);
    }

    #[test]
    fn an_answer_after_the_request_was_answered_is_ignored() {
        let mut table = Table::default();
        table.ask("token", callout("/introspect"), waiter(1, 2_000, "A"));
        table.sent(&"token", 10);
        assert_eq!(contexts(&table.expired(2_000)), [1], "answered by its deadline");
        assert_eq!(table.answered(10).map(|(_, w)| w.len()), Some(0));
        assert_eq!(table.answered(10), None, "and a second delivery is unknown");
        assert_eq!(counts(&table), (0, 0));
    }

    #[test]
    fn a_deadline_is_the_callout_timeout_and_a_grace() {
        assert_eq!(deadline_for(&callout("/a"), 10_000), 12_000);
        assert_eq!(deadline_for(&callout("/a"), u64::MAX), u64::MAX);
    }

    #[test]
    fn only_token_questions_count_as_coalesced_introspections() {
        assert_eq!(
            About::Token([0; 32]).coalesced_metric(),
            Some(Metric::IntrospectionCoalesced)
        );
        assert_eq!(About::User([0; 32]).coalesced_metric(), None);
        assert_eq!(About::Keys("corp".into()).dispatched_metric(), None);
    }
}

/// The worker's questions through the core: what each kind asks, how an answer is read once
/// for every waiter, and what a failure means for each.
#[cfg(test)]
mod worker_tests {
    use super::*;
    use crate::cache::tests::MapStore;
    use crate::decide::{begin, Decision, DenyReason, RequestHead};

    const NOW: UnixSeconds = 1_700_000_000;

    fn config() -> Config {
        let json = r#"{
            "oauth_providers": {"kc": {"introspection": {"cluster": "kc", "path": "/introspect",
                                "client_id": "tg", "client_secret": "s"}}},
            "directory": {"callout": {"cluster": "jira"}},
            "rules": [{"path_prefix": "/", "providers": ["kc"]}]
        }"#;
        Config::from_json(json.as_bytes()).unwrap()
    }

    fn env(store: &MapStore) -> Env<'_> {
        crate::test_support::env_over(store)
    }

    fn bearer(token: &str) -> RequestHead {
        RequestHead {
            method: "GET".into(),
            path: "/x".into(),
            headers: vec![("authorization".into(), format!("Bearer {token}").into_bytes())],
            client_address: None,
            body: None,
            has_body: false,
        }
    }

    fn ok(body: &str) -> CalloutResult {
        CalloutResult::Response {
            status: 200,
            body: body.as_bytes().to_vec(),
        }
    }

    fn asked(todo: Todo) -> (About, Then) {
        match todo {
            Todo::Ask(about, _, then) => (about, then),
            other => panic!("not a question: {other:?}"),
        }
    }

    fn waiting(then: Then) -> Vec<Waiter<Then>> {
        vec![Waiter {
            context: 2,
            deadline: 0,
            then,
        }]
    }

    /// The question a token makes, and the directory question its answer naming `user` makes.
    fn token_then_user(cfg: &Config, store: &MapStore, token: &str, user: &str) -> (About, About, Then) {
        let env = env(store);
        let (token_question, then) = asked(Todo::of(cfg, begin(cfg, &bearer(token), &env, NOW), &env, NOW));
        let waiters = waiting(then.clone());
        let body = format!(r#"{{"active":true,"username":"{user}"}}"#);
        let (answer, problem) = Answer::read(cfg, &waiters, ok(&body), None, &env, NOW).unwrap();
        assert_eq!(problem, None);
        let next = then.answered(cfg, &answer, &env, NOW);
        let (user_question, then) = asked(Todo::of(cfg, next, &env, NOW));
        (token_question, user_question, then)
    }

    #[test]
    fn two_spellings_of_one_user_share_one_directory_question_and_its_cached_answer() {
        let (cfg, store) = (config(), MapStore::default());
        let (token_a, user_a, then) = token_then_user(&cfg, &store, "token-a", "FRED");
        let (token_b, user_b, _) = token_then_user(&cfg, &store, "token-b", "fred");
        assert!(matches!(token_a, About::Token(_)) && token_a != token_b);
        assert_eq!(user_a, user_b);
        let env = env(&store);
        let waiters = waiting(then.clone());
        let user = ok(r#"{"name":"fred","active":true}"#);
        let (answer, _) = Answer::read(&cfg, &waiters, user, None, &env, NOW).unwrap();
        assert_eq!(answer, Answer::User(Ok(UserStatus::Active)));
        assert!(matches!(
            then.answered(&cfg, &answer, &env, NOW),
            Step::Done(Decision::Allow(_))
        ));
        let step = begin(&cfg, &bearer("token-a"), &env, NOW);
        assert!(
            matches!(Todo::of(&cfg, step, &env, NOW), Todo::Done(Decision::Allow(_))),
            "token and user both cached: nothing to ask"
        );
    }

    fn denied(step: Step) -> Option<DenyReason> {
        match step {
            Step::Done(Decision::Deny(denial)) => Some(denial.reason),
            _ => None,
        }
    }

    #[test]
    fn a_question_that_fails_gives_each_waiter_the_failure_its_user_sees() {
        let (cfg, store) = (config(), MapStore::default());
        let env = env(&store);
        let (_, _, user_then) = token_then_user(&cfg, &store, "token-c", "jsmith");
        let (_, provider_then) = asked(Todo::of(
            &cfg,
            begin(&cfg, &bearer("token-d"), &env, NOW),
            &env,
            NOW,
        ));
        for (then, reason) in [
            (provider_then, DenyReason::ProviderUnavailable),
            (user_then, DenyReason::DirectoryUnavailable),
            (Then::Decide, DenyReason::KeysUnavailable),
        ] {
            assert_eq!(denied(then.failed(&cfg, &env, NOW)), Some(reason));
        }
    }

    #[test]
    fn an_answer_is_read_once_and_a_rejected_client_is_an_error_worth_a_line() {
        let (cfg, store) = (config(), MapStore::default());
        let env = env(&store);
        let (_, then) = asked(Todo::of(
            &cfg,
            begin(&cfg, &bearer("token-e"), &env, NOW),
            &env,
            NOW,
        ));
        assert_eq!(
            Answer::read(&cfg, &[], ok("{}"), None, &env, NOW),
            None,
            "nobody waits"
        );
        let rejected = CalloutResult::Response {
            status: 401,
            body: Vec::new(),
        };
        let (answer, problem) =
            Answer::read(&cfg, &waiting(then.clone()), rejected, None, &env, NOW).unwrap();
        assert_eq!(answer, Answer::Provider(Err(ProviderFailure::ClientRejected)));
        let problem = problem.unwrap();
        assert!(
            problem.error && problem.key == "kc/client_rejected",
            "{problem:?}"
        );
        let user_answer = Answer::User(Ok(UserStatus::Active));
        assert_eq!(
            denied(then.answered(&cfg, &user_answer, &env, NOW)),
            Some(DenyReason::ProviderUnavailable),
            "an answer of the wrong kind fails the waiter closed"
        );
    }
}
