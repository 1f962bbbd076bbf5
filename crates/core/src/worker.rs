//! One worker per VM (per Envoy worker thread), under any host: the configuration, the JWKS
//! schedules, one question table and what the root context does with them. The host (the
//! proxy-wasm shell, or a test's fake) implements [`Host`] and forwards its callbacks:
//! a request's headers ([`Worker::on_request`]), its body and trailers ([`Worker::on_body`],
//! [`Worker::on_trailers`]), a callout's answer ([`Worker::on_answer`]), the root's tick and
//! wake queue ([`Worker::on_root`]) and a request's end ([`Worker::gone`]).
//!
//! A request with a body is held, its chunks buffered, until it is decided; when the core needs
//! the body ([`Step::ReadBody`]) the worker reads it within its bound and deadline
//! ([`crate::worker_body`]) and decides again with it.
//!
//! **Every callout is dispatched by the root** ([`Host::dispatch`]) from a root callback:
//! a request that asks a new question wakes the root ([`Host::wake`]), and is resumed or
//! answered (the host switched to it) when the answer, a refusal or its deadline (checked on
//! every root callback) comes. A request that ends takes its waiters out of the table; a
//! callout nobody waits for any more is left to end and its answer ignored.

use std::cell::{Cell, RefCell};
use std::fmt::Debug;
use std::rc::Rc;

use crate::cache::SharedStore;
use crate::callout::{Callout, CalloutResult};
use crate::clock::UnixSeconds;
use crate::config::Config;
use crate::decide::{begin, default_family};
use crate::extract::Header;
use crate::host::{Counter, Env, Keyring};
use crate::hostcrypto::{host_checks, ForeignVerifier, Hash, HostChecks, SignatureHost};
use crate::jwk::KeySet;
use crate::jwks_cache::{Generation, Millis};
use crate::logline::{LogLimiter, MAX_WARNING_KEYS, WARNING_INTERVAL_MS};
use crate::metrics::{Gauge, Metric};
use crate::outcome::{Decision, Denial, DenyReason, Family, Forward, RequestHead, Step};
use crate::questions::{
    deadline_for, About, Answer, Asked, ContextId, Then, Todo, Token, Waiter, WorkerQuestions,
};
use crate::respond::{render, LocalReply, ReplyStyle};
use crate::worker_body::{BodyNext, Streams};
use crate::worker_jwks::WorkerJwks;

/// A log line's level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// What the host does with a request after a callback: let it go upstream, or hold it
/// (answered, or waiting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Pause,
}

/// What the worker needs from its host. Calls that act on "the request" act on the current
/// one: the request of the callback, or the one [`Host::switch_to`] last made current.
pub trait Host: SharedStore + Counter {
    /// Why the host refused a callout (logged).
    type Refusal: Debug;
    /// The current request's head; `None` when it cannot be read.
    fn request(&self) -> Option<RequestHead>;
    /// Starts `callout` as the root (so it lives as long as the plugin); its answer comes to
    /// [`Worker::on_answer`] with the token returned.
    fn dispatch(&self, callout: &Callout) -> Result<Token, Self::Refusal>;
    /// Asks for a root callback soon ([`Worker::on_root`]); the next tick is the fallback.
    fn wake(&self);
    /// Makes `context` the current request; `false` when it is gone.
    fn switch_to(&self, context: ContextId) -> bool;
    /// Lets the current (paused) request go on.
    fn resume(&self);
    /// Answers the current request locally.
    fn reply(&self, reply: LocalReply);
    /// Rewrites the current request; `false` if the host refused any change.
    fn rewrite(&self, forward: &Forward) -> bool;
    fn now_millis(&self) -> Millis;
    fn log(&self, level: Level, line: &str);
    /// Adds `delta` to this VM's share of `gauge`; `false` when it was not recorded.
    fn add(&self, gauge: Gauge, delta: i64) -> bool;
    /// The first `size` bytes of the current request's body as the host buffered it; `None`
    /// when it cannot be read.
    fn request_body(&self, size: usize) -> Option<Vec<u8>>;
    /// The host's signature check (Envoy's `verify_signature` foreign function): serialized
    /// arguments in, the serialized answer out; `None` when it failed or there is none.
    fn verify_signature(&self, arguments: &[u8]) -> Option<Vec<u8>>;
}

/// Per-VM state shared by the root context and the HTTP contexts.
pub struct Worker<H: Host> {
    config: Config,
    host: H,
    remotes: Vec<WorkerJwks>,
    questions: RefCell<WorkerQuestions>,
    /// The requests with a body, held until decided (and their bodies read for the core).
    streams: RefCell<Streams>,
    /// What the host's signature check passed in the self-test (those checks go to it).
    host_signatures: HostChecks,
    /// Repeated callout warnings, one line per (provider, kind) per interval.
    warnings: RefCell<LogLimiter<String>>,
    /// What this VM added to each of [`Gauge::ALL`] so far.
    gauges: Cell<[i64; 2]>,
}

/// How often the host calls [`Worker::on_root`] when nothing else does: the latest a due key
/// fetch starts or a waiter past its deadline is answered.
pub const TICK_MS: u64 = 100;

/// Answers after this many dispatch rounds in one root callback wait for the next one.
const DISPATCH_ROUNDS: usize = 4;

fn seconds(millis: Millis) -> UnixSeconds {
    i64::try_from(millis / 1000).unwrap_or(i64::MAX)
}

/// Logged (limited) when a body was awaited and not one chunk of it came: Envoy hands a
/// module the body of a request whose headers it holds only with this setting (since 1.35;
/// without it a held request's body waits in Envoy until the request goes on).
const NO_BODY_CALLBACKS: &str = "a request body was awaited and none of it came: if clients do send it, set `allow_on_headers_stop_iteration: true` in the Wasm filter's plugin config (Envoy 1.35+), or Envoy keeps the body of a held request from the filter";

/// Whether `config` has signatures for the host to check: JWT providers' and OAuth 1.0a's.
fn has_signatures(config: &Config) -> bool {
    !(config.jwt_providers.is_empty() && config.oauth1_providers.is_empty())
}

/// The refusal of a form body over its bound or past its deadline: only OAuth 1.0a
/// signatures make the core read a body, so it is in their family (never a 401: no challenge).
fn body_denial(reason: DenyReason) -> Decision {
    Decision::Deny(Denial::new(Family::OAuth1, reason))
}

/// The declared `Content-Length` (Envoy has checked that it is one number, or refused it).
fn content_length(headers: &[Header]) -> Option<u64> {
    let (_, value) = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))?;
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

/// The start-up lines that say which signatures Envoy checks and which the module does: the
/// JWT algorithms' (SHA-2) when `jwt`, OAuth 1.0a's RSA-SHA1 when `oauth1`.
fn signatures_lines(checks: HostChecks, jwt: bool, oauth1: bool) -> Vec<&'static str> {
    let sha2 = [Hash::Sha256, Hash::Sha384, Hash::Sha512].map(|hash| checks.hash(hash));
    let jwt_line = match sha2 {
        [true, true, true] => "RS256/384/512 and ES256/384/512 signatures are checked by Envoy (verify_signature)",
        [false, false, false] => "this Envoy has no working verify_signature: RSA and ECDSA signatures are checked in the module (slower)",
        _ => "Envoy's verify_signature checks only some SHA-2 hashes: the others' RSA and ECDSA signatures are checked in the module (slower)",
    };
    let oauth1_line = match (checks.hash(Hash::Sha1), checks.small_rsa()) {
        (true, true) => "RSA-SHA1 signatures (OAuth 1.0a) are checked by Envoy (verify_signature), 1024-bit keys too",
        (true, false) => "RSA-SHA1 signatures (OAuth 1.0a) are checked by Envoy (verify_signature) for keys of 2048 bits and more, by the module for smaller keys",
        (false, _) => "this Envoy does not check RSA-SHA1 signatures (OAuth 1.0a): the module checks them (slower)",
    };
    [(jwt, jwt_line), (oauth1, oauth1_line)]
        .into_iter()
        .filter_map(|(wanted, line)| wanted.then_some(line))
        .collect()
}

impl<H: Host> SignatureHost for Worker<H> {
    fn verify(&self, hash: Hash, spki_der: &[u8], input: &[u8], signature: &[u8]) -> Option<bool> {
        let answer = self.host_signatures.covers(hash, spki_der).then(|| {
            ForeignVerifier(|arguments: &[u8]| self.host.verify_signature(arguments))
                .verify(hash, spki_der, input, signature)
        });
        let answer = answer.flatten();
        if answer.is_some() {
            self.host.count(Metric::SignaturesCheckedByHost);
        }
        answer
    }
}

impl<H: Host> Keyring for Worker<H> {
    fn remote_keys(&self, provider: &str) -> Option<(Rc<KeySet>, Generation)> {
        self.keys_of(provider)?.current(&self.host)
    }
}

impl<H: Host> Worker<H> {
    /// A worker for the plugin configuration `bytes`; `None` (logged) when it is refused.
    /// `holder`: this VM's name in JWKS fetch leases.
    pub fn configure(bytes: &[u8], host: H, holder: u64) -> Option<Self> {
        let config = Config::from_json(bytes)
            .map_err(|error| host.log(Level::Error, &error.to_string()))
            .ok()?;
        for field in &config.ignored {
            host.log(Level::Warn, &format!("field `{field}` is deprecated and ignored: the token service holds the failed-login counter, its rule and its reset"));
        }
        let worker = Self::new(config, host, holder);
        let (jwt, oauth1) = (
            !worker.config.jwt_providers.is_empty(),
            !worker.config.oauth1_providers.is_empty(),
        );
        for line in signatures_lines(worker.host_signatures, jwt, oauth1) {
            worker.host.log(Level::Info, line);
        }
        worker.host.log(Level::Info, "configuration loaded");
        Some(worker)
    }

    pub fn new(config: Config, host: H, holder: u64) -> Self {
        let host_signatures = match has_signatures(&config) {
            false => HostChecks::NONE,
            true => host_checks(&ForeignVerifier(|arguments: &[u8]| {
                host.verify_signature(arguments)
            })),
        };
        Self {
            remotes: WorkerJwks::of(&config, holder, &host),
            config,
            host,
            questions: RefCell::default(),
            streams: RefCell::default(),
            host_signatures,
            warnings: RefCell::new(LogLimiter::new(WARNING_INTERVAL_MS, MAX_WARNING_KEYS)),
            gauges: Cell::default(),
        }
    }

    /// The current request's headers came (request `context`); `has_body`: they did not end
    /// the stream.
    pub fn on_request(&self, context: ContextId, has_body: bool) -> Flow {
        self.streams.borrow_mut().begin(context, has_body);
        self.decide(context, None)
    }

    /// A chunk of the current request's body came: the host buffered `buffered` bytes of it so
    /// far (this chunk included); `ended`: that is the whole body. `Continue` lets the chunk go
    /// upstream (the request was allowed); `Pause` keeps it buffered.
    pub fn on_body(&self, context: ContextId, buffered: usize, ended: bool) -> Flow {
        let next = self.streams.borrow_mut().data(context, buffered, ended);
        self.body_next(context, next)
    }

    /// The current request's trailers came: its body is whole.
    pub fn on_trailers(&self, context: ContextId) -> Flow {
        let next = self.streams.borrow_mut().trailers(context);
        self.body_next(context, next)
    }

    /// The core needs the current request's body: refused at once when its `Content-Length`
    /// is over `max_bytes`, read now if it is all here, else awaited (the root's tick refuses
    /// it at the deadline). Asked for a body the request does not have, or has already had
    /// read, the core would ask forever: refused.
    fn read_body(&self, context: ContextId, max_bytes: usize, timeout_ms: u64, now: Millis) -> Flow {
        let (has_body, read) = {
            let streams = self.streams.borrow();
            (streams.has_body(context), streams.body(context).is_some())
        };
        if !has_body || read {
            self.host.log(
                Level::Error,
                "the core asked for a request body twice or for none; refusing the request",
            );
            return self.apply(context, self.internal_error(), now);
        }
        let content_length = self.host.request().and_then(|head| content_length(&head.headers));
        let next = self
            .streams
            .borrow_mut()
            .read(context, max_bytes, timeout_ms, content_length, now);
        self.body_next(context, next)
    }

    /// Does what [`Streams`] said for the current request `context`.
    fn body_next(&self, context: ContextId, next: BodyNext) -> Flow {
        let now = self.host.now_millis();
        match next {
            BodyNext::Wait => Flow::Pause,
            BodyNext::Pass => Flow::Continue,
            BodyNext::TooLarge => self.apply(context, body_denial(DenyReason::BodyTooLarge), now),
            BodyNext::Read(size) => match self.host.request_body(size) {
                Some(body) if body.len() == size => {
                    self.streams.borrow_mut().read_done(context, body);
                    self.decide(context, None)
                }
                _ => {
                    self.host
                        .log(Level::Error, "could not read the request body; refusing it");
                    self.apply(context, self.internal_error(), now)
                }
            },
        }
    }

    /// The answer to the callout `token` came (as the root).
    pub fn on_answer(&self, token: Token, result: CalloutResult, challenge: Option<String>) {
        let answered = self.questions.borrow_mut().answered(token);
        if let Some((about, waiters)) = answered {
            self.settle(about, result, challenge, waiters);
        }
        self.on_root();
    }

    /// The request `context` ended: nothing waits for it any more (the next root callback
    /// records the gauges).
    pub fn gone(&self, context: ContextId) {
        self.questions.borrow_mut().gone(context);
        self.streams.borrow_mut().gone(context);
    }

    fn env(&self) -> Env<'_> {
        Env {
            keyring: self,
            store: &self.host,
            count: &self.host,
            signatures: self,
        }
    }

    fn keys_of(&self, provider: &str) -> Option<&WorkerJwks> {
        self.remotes.iter().find(|r| r.provider == provider)
    }

    /// Decides the current request: `Continue` once it may go upstream, `Pause` when it was
    /// answered or waits. `deadline`: of a wait for keys it began.
    fn decide(&self, context: ContextId, deadline: Option<Millis>) -> Flow {
        let now = self.host.now_millis();
        let Some(mut request) = self.host.request() else {
            return self.apply(context, self.internal_error(), now);
        };
        let streams = self.streams.borrow();
        (request.has_body, request.body) = (streams.has_body(context), streams.body(context));
        drop(streams);
        let step = match begin(&self.config, &request, &self.env(), seconds(now)) {
            Step::Done(Decision::Allow(forward)) => {
                Step::Done(Decision::Allow(forward.only_removing_present(&request.headers)))
            }
            step => step,
        };
        self.run_step(context, step, deadline, now)
    }

    /// Carries out what the core asked for.
    fn run_step(&self, context: ContextId, step: Step, deadline: Option<Millis>, now: Millis) -> Flow {
        match Todo::of(&self.config, step, &self.env(), seconds(now)) {
            Todo::Done(decision) => self.apply(context, decision, now),
            Todo::ReadBody {
                max_bytes,
                timeout_ms,
            } => self.read_body(context, max_bytes, timeout_ms, now),
            Todo::WaitForKeys { provider, refetch } => {
                let wait = self
                    .keys_of(&provider)
                    .map(|keys| keys.wait(&self.host, refetch, deadline, now));
                let deadline = match wait {
                    Some(Ok(deadline)) => deadline,
                    Some(Err(decision)) => return self.apply(context, decision, now),
                    None => return self.apply(context, self.internal_error(), now),
                };
                self.host.count(Metric::JwksWaited);
                let waiter = Waiter {
                    context,
                    deadline,
                    then: Then::Decide,
                };
                self.questions.borrow_mut().park(About::Keys(provider), waiter);
                self.host.wake();
                Flow::Pause
            }
            Todo::Ask(about, callout, then) => {
                let waiter = Waiter {
                    context,
                    deadline: deadline_for(&callout, now),
                    then,
                };
                let coalesced = about.coalesced_metric();
                let asked = self.questions.borrow_mut().ask(about, callout, waiter);
                match asked {
                    Asked::New => self.host.wake(),
                    Asked::Joined => coalesced.into_iter().for_each(|m| self.host.count(m)),
                }
                Flow::Pause
            }
        }
    }

    /// The root's work in every root callback: start due key fetches, decide again requests
    /// whose keys settled, answer the requests past their deadline, dispatch every unsent
    /// question, record the gauges.
    pub fn on_root(&self) {
        let now = self.host.now_millis();
        for keys in &self.remotes {
            if let Some(callout) = keys.take_fetch(&self.host, now) {
                self.questions
                    .borrow_mut()
                    .fetch(About::Keys(keys.provider.clone()), callout);
            }
        }
        let ready = self.questions.borrow_mut().wake(|about| match about {
            About::Keys(provider) => self
                .keys_of(provider)
                .is_none_or(|keys| keys.settled(&self.host, now)),
            About::Token(_) | About::User(_) => true,
        });
        for waiter in ready {
            if self.host.switch_to(waiter.context)
                && self.decide(waiter.context, Some(waiter.deadline)) == Flow::Continue
            {
                self.host.resume();
            }
        }
        let late = self.questions.borrow_mut().expired(now);
        for waiter in late {
            let step = waiter.then.failed(&self.config, &self.env(), seconds(now));
            self.resume(waiter.context, step, waiter.deadline);
        }
        let late_bodies = self.streams.borrow_mut().expired(now);
        for (context, any_chunk) in late_bodies {
            if !any_chunk {
                self.log_limited(Level::Warn, "body/none".into(), NO_BODY_CALLBACKS);
            }
            if self.host.switch_to(context) {
                self.apply(context, body_denial(DenyReason::BodyTimeout), now);
            }
        }
        // Answers to refused questions may ask new ones: a few rounds, then the next callback.
        for _ in 0..DISPATCH_ROUNDS {
            let unsent = self.questions.borrow().unsent();
            if unsent.is_empty() {
                break;
            }
            unsent
                .into_iter()
                .for_each(|(about, callout)| self.dispatch(about, &callout));
        }
        let questions = self.questions.borrow();
        self.record([questions.in_flight(), questions.waiting()]);
    }

    /// The plugin is going away (a reload, or the VM's end): the host cancels the callouts
    /// filed under this root, so its questions will never be answered; its share of the gauges
    /// (which are the process's sums) goes with it, and so do its JWKS fetch leases (another
    /// worker fetches at its next tick, not when the lease would have expired).
    pub fn on_done(&self) {
        self.record([0, 0]);
        self.remotes.iter().for_each(|keys| keys.release(&self.host));
    }

    /// Moves this VM's share of the gauges to `counts`.
    fn record(&self, counts: [usize; 2]) {
        let mut added = self.gauges.get();
        for ((gauge, added), count) in Gauge::ALL.into_iter().zip(&mut added).zip(counts) {
            let count = i64::try_from(count).unwrap_or(i64::MAX);
            let delta = count.saturating_sub(*added);
            if delta != 0 && self.host.add(gauge, delta) {
                *added = count;
            }
        }
        self.gauges.set(added);
    }

    /// Dispatches a question as the root; a refusal is the question's failure.
    fn dispatch(&self, about: About, callout: &Callout) {
        match self.host.dispatch(callout) {
            Ok(token) => {
                self.questions.borrow_mut().sent(&about, token);
                about
                    .dispatched_metric()
                    .into_iter()
                    .for_each(|m| self.host.count(m));
            }
            Err(status) => {
                let message = format!("cannot call cluster `{}`: {status:?}", callout.cluster);
                self.log_limited(Level::Error, format!("{}/dispatch", callout.cluster), &message);
                let waiters = self.questions.borrow_mut().refused(&about);
                self.settle(about, CalloutResult::Failed, None, waiters);
            }
        }
    }

    /// A question is over (answered or refused): the core reads the answer once, then every
    /// waiter goes on with it (or, with no answer to read, fails as the question did).
    fn settle(
        &self,
        about: About,
        result: CalloutResult,
        challenge: Option<String>,
        waiters: Vec<Waiter<Then>>,
    ) {
        let (now, env) = (self.host.now_millis(), self.env());
        let answer = match about {
            About::Keys(provider) => {
                self.fetched(&provider, result, now);
                None
            }
            About::Token(_) | About::User(_) => {
                let read = Answer::read(
                    &self.config,
                    &waiters,
                    result,
                    challenge.as_deref(),
                    &env,
                    seconds(now),
                );
                read.map(|(answer, problem)| {
                    if let Some(problem) = problem {
                        let level = if problem.error { Level::Error } else { Level::Warn };
                        self.log_limited(level, problem.key, &problem.message);
                    }
                    answer
                })
            }
        };
        for Waiter {
            context,
            deadline,
            then,
        } in waiters
        {
            let step = match &answer {
                Some(answer) => then.answered(&self.config, answer, &env, seconds(now)),
                None => then.failed(&self.config, &env, seconds(now)),
            };
            self.resume(context, step, deadline);
        }
    }

    /// Counts and logs a key fetch's end (the keys are the process's: see [`WorkerJwks`]).
    fn fetched(&self, provider: &str, result: CalloutResult, now: Millis) {
        match self
            .keys_of(provider)
            .map(|keys| keys.fetched(&self.host, result, now))
        {
            Some(Ok(())) => self.host.count(Metric::JwksFetchOk),
            Some(Err(line)) => {
                self.host.count(Metric::JwksFetchFailed);
                self.log_limited(Level::Warn, format!("{provider}/jwks"), &line);
            }
            None => {}
        }
    }

    /// Carries out `step` for the waiting request `context`, unless it is gone.
    fn resume(&self, context: ContextId, step: Step, deadline: Millis) {
        if self.host.switch_to(context)
            && self.run_step(context, step, Some(deadline), self.host.now_millis()) == Flow::Continue
        {
            self.host.resume();
        }
    }

    fn log_limited(&self, level: Level, key: String, message: &str) {
        let line = self
            .warnings
            .borrow_mut()
            .line(key, self.host.now_millis(), message);
        if let Some(line) = line {
            self.host.log(level, &line);
        }
    }

    fn internal_error(&self) -> Decision {
        Decision::Deny(Denial::new(default_family(&self.config), DenyReason::Internal))
    }

    /// Applies a decision to request `context`: `Continue` once it is rewritten, `Pause` after
    /// a reply.
    fn apply(&self, context: ContextId, decision: Decision, now: Millis) -> Flow {
        match decision {
            Decision::Allow(forward) if self.host.rewrite(&forward) => {
                self.host.count(Metric::Allowed);
                self.streams.borrow_mut().decided(context, true);
                Flow::Continue
            }
            Decision::Allow(_) => {
                self.host
                    .log(Level::Error, "could not rewrite the request; refusing it");
                self.apply(context, self.internal_error(), now)
            }
            Decision::Deny(denial) => {
                self.streams.borrow_mut().decided(context, false);
                self.host.count(Metric::denied(&denial.reason));
                let style = ReplyStyle {
                    plugin_version: &self.config.plugin_version,
                    realm: &self.config.realm,
                    oauth1_providers: &self.config.oauth1_providers,
                };
                self.host.reply(render(&denial, style, seconds(now)));
                Flow::Pause
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::MapStore;
    use std::collections::HashMap;

    /// A host a test drives: requests by context, callouts it records (or refuses), the
    /// requests it resumed and answered, and a clock the test moves.
    #[derive(Default)]
    struct Fake {
        store: MapStore,
        now: Cell<Millis>,
        current: Cell<ContextId>,
        requests: RefCell<HashMap<ContextId, RequestHead>>,
        /// What the host buffered of each request's body.
        bodies: RefCell<HashMap<ContextId, Vec<u8>>>,
        refuse: Cell<bool>,
        dispatched: RefCell<Vec<Callout>>,
        wakes: Cell<usize>,
        resumed: RefCell<Vec<ContextId>>,
        replies: RefCell<Vec<(ContextId, u32)>>,
        logs: RefCell<Vec<(Level, String)>>,
        counted: RefCell<Vec<Metric>>,
        gauges: RefCell<HashMap<&'static str, i64>>,
    }

    impl Fake {
        /// The gauges in flight and waiting, as Envoy would show them.
        fn gauges(&self) -> (i64, i64) {
            let gauge = |g: Gauge| self.gauges.borrow().get(g.name()).copied().unwrap_or(0);
            (gauge(Gauge::QuestionsInFlight), gauge(Gauge::QuestionsWaiting))
        }
    }

    impl SharedStore for Fake {
        fn get(&self, key: &str) -> Option<Vec<u8>> {
            self.store.get(key)
        }
        fn set(&self, key: &str, value: &[u8]) {
            self.store.set(key, value)
        }
    }

    impl Counter for Fake {
        fn count(&self, metric: Metric) {
            self.counted.borrow_mut().push(metric);
        }
    }

    impl Host for Fake {
        type Refusal = &'static str;
        fn request(&self) -> Option<RequestHead> {
            self.requests.borrow().get(&self.current.get()).cloned()
        }
        fn dispatch(&self, callout: &Callout) -> Result<Token, &'static str> {
            if self.refuse.get() {
                return Err("BadArgument");
            }
            let mut dispatched = self.dispatched.borrow_mut();
            dispatched.push(callout.clone());
            Ok(u32::try_from(dispatched.len()).unwrap())
        }
        fn wake(&self) {
            self.wakes.set(self.wakes.get() + 1);
        }
        fn switch_to(&self, context: ContextId) -> bool {
            self.current.set(context);
            self.requests.borrow().contains_key(&context)
        }
        fn resume(&self) {
            self.resumed.borrow_mut().push(self.current.get());
        }
        fn reply(&self, reply: LocalReply) {
            self.replies.borrow_mut().push((self.current.get(), reply.status));
        }
        fn rewrite(&self, _forward: &Forward) -> bool {
            true
        }
        fn now_millis(&self) -> Millis {
            self.now.get()
        }
        fn log(&self, level: Level, line: &str) {
            self.logs.borrow_mut().push((level, line.to_owned()));
        }
        fn add(&self, gauge: Gauge, delta: i64) -> bool {
            *self.gauges.borrow_mut().entry(gauge.name()).or_default() += delta;
            true
        }
        fn request_body(&self, size: usize) -> Option<Vec<u8>> {
            let bodies = self.bodies.borrow();
            bodies.get(&self.current.get())?.get(..size).map(<[u8]>::to_vec)
        }
        fn verify_signature(&self, _arguments: &[u8]) -> Option<Vec<u8>> {
            None
        }
    }

    const NOW: Millis = 1_700_000_000_000;

    fn worker() -> Worker<Fake> {
        let json = br#"{
            "oauth_providers": {"kc": {"introspection": {"cluster": "kc", "path": "/introspect",
                                "client_id": "tg", "client_secret": "s"}}},
            "directory": {"inactive_users": ["gone"]},
            "rules": [{"path_prefix": "/", "providers": ["kc"]}]
        }"#;
        let fake = Fake::default();
        fake.now.set(NOW);
        Worker::configure(json, fake, 1).unwrap()
    }

    /// Request `context` with `token` arrives: what the worker told the host to do with it.
    fn arrives(worker: &Worker<Fake>, context: ContextId, token: &str) -> Flow {
        let head = RequestHead {
            method: "GET".into(),
            path: "/rest/api/2/myself".into(),
            headers: vec![("authorization".into(), format!("Bearer {token}").into_bytes())],
            client_address: None,
            body: None,
            has_body: false,
        };
        worker.host.requests.borrow_mut().insert(context, head);
        worker.host.current.set(context);
        worker.on_request(context, false)
    }

    /// The head of a POST of a form (declared `content_length`, if any) with `token`.
    fn form_post(worker: &Worker<Fake>, context: ContextId, token: &str, content_length: Option<usize>) {
        let mut headers = vec![
            ("authorization".into(), format!("Bearer {token}").into_bytes()),
            (
                "content-type".into(),
                b"application/x-www-form-urlencoded".to_vec(),
            ),
        ];
        headers.extend(content_length.map(|n| ("content-length".into(), n.to_string().into_bytes())));
        let head = RequestHead {
            method: "POST".into(),
            path: "/rest/api/2/issue".into(),
            headers,
            ..RequestHead::default()
        };
        worker.host.requests.borrow_mut().insert(context, head);
        worker.host.current.set(context);
    }

    /// Request `context` with `token` and a form body arrives, its headers first.
    fn posts(worker: &Worker<Fake>, context: ContextId, token: &str) -> Flow {
        form_post(worker, context, token, None);
        worker.on_request(context, true)
    }

    /// Request `context`'s headers came (`has_body`: not the whole request) and nothing was
    /// decided yet: where a request is when the core asks for its body.
    fn undecided(worker: &Worker<Fake>, context: ContextId, content_length: Option<usize>, has_body: bool) {
        form_post(worker, context, "t", content_length);
        worker.streams.borrow_mut().begin(context, has_body);
    }

    /// The host buffered `body` of request `context` (the whole body if `ended`).
    fn chunk(worker: &Worker<Fake>, context: ContextId, body: &[u8], ended: bool) -> Flow {
        worker.host.bodies.borrow_mut().insert(context, body.to_vec());
        worker.host.current.set(context);
        worker.on_body(context, body.len(), ended)
    }

    /// The core asks for the body of request `context` (as the oauth1 provider does for a form).
    fn reads_body(worker: &Worker<Fake>, context: ContextId, max_bytes: usize, timeout_ms: u64) -> Flow {
        worker.host.current.set(context);
        let step = Step::ReadBody {
            max_bytes,
            timeout_ms,
        };
        worker.run_step(context, step, None, worker.host.now.get())
    }

    fn active(user: &str) -> CalloutResult {
        CalloutResult::Response {
            status: 200,
            body: format!(r#"{{"active":true,"username":"{user}"}}"#).into_bytes(),
        }
    }

    #[test]
    fn two_requests_with_one_token_make_one_callout_as_the_root_and_both_go_on_with_its_answer() {
        let worker = worker();
        assert_eq!(arrives(&worker, 2, "t"), Flow::Pause);
        assert_eq!(arrives(&worker, 3, "t"), Flow::Pause);
        assert_eq!(worker.host.wakes.get(), 1, "only the new question wakes the root");
        assert!(
            worker.host.dispatched.borrow().is_empty(),
            "requests never dispatch"
        );
        worker.on_root();
        assert_eq!(worker.host.dispatched.borrow().len(), 1);
        assert_eq!(worker.host.gauges(), (1, 2));
        worker.on_answer(1, active("fred"), None);
        assert_eq!(*worker.host.resumed.borrow(), [2, 3]);
        assert!(worker.host.replies.borrow().is_empty());
        assert_eq!(worker.host.gauges(), (0, 0));
        assert_eq!(arrives(&worker, 4, "t"), Flow::Continue, "the answer is cached");
        worker.on_answer(1, active("fred"), None);
        assert_eq!(
            *worker.host.resumed.borrow(),
            [2, 3],
            "a second answer is ignored"
        );
    }

    #[test]
    fn a_waiter_past_its_deadline_is_answered_while_a_later_one_keeps_waiting() {
        let worker = worker();
        arrives(&worker, 2, "t");
        worker.on_root();
        worker.host.now.set(NOW + 500);
        arrives(&worker, 3, "t");
        let first_deadline = (500..60_000).step_by(100).find(|ms| {
            worker.host.now.set(NOW + ms);
            worker.on_root();
            !worker.host.replies.borrow().is_empty()
        });
        assert!(first_deadline.is_some());
        let replies = worker.host.replies.borrow().clone();
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].0, 2, "the first waiter times out first");
        assert!(replies[0].1 >= 500, "{replies:?}");
        assert_eq!(worker.host.gauges(), (1, 1));
        worker.on_answer(1, active("fred"), None);
        assert_eq!(*worker.host.resumed.borrow(), [3]);
        assert_eq!(worker.host.gauges(), (0, 0));
    }

    #[test]
    fn a_refused_callout_answers_every_waiter_logs_once_and_leaves_nothing_behind() {
        let worker = worker();
        worker.host.refuse.set(true);
        arrives(&worker, 2, "t");
        arrives(&worker, 3, "t");
        worker.on_root();
        let replies = worker.host.replies.borrow().clone();
        assert_eq!(replies.iter().map(|r| r.0).collect::<Vec<_>>(), [2, 3]);
        let errors = worker
            .host
            .logs
            .borrow()
            .iter()
            .filter(|(l, _)| *l == Level::Error)
            .count();
        assert_eq!(errors, 1, "{:?}", worker.host.logs.borrow());
        assert_eq!(worker.host.gauges(), (0, 0));
    }

    #[test]
    fn a_request_that_ends_while_it_waits_is_never_switched_to_again() {
        let worker = worker();
        arrives(&worker, 2, "t");
        arrives(&worker, 3, "t");
        worker.on_root();
        worker.host.requests.borrow_mut().remove(&2);
        worker.gone(2);
        worker.on_answer(1, active("fred"), None);
        assert_eq!(*worker.host.resumed.borrow(), [3]);
        assert_eq!(worker.host.gauges(), (0, 0));
    }

    #[test]
    fn a_request_with_a_body_is_held_until_it_is_decided_and_then_its_body_passes() {
        let worker = worker();
        assert_eq!(posts(&worker, 2, "t"), Flow::Pause);
        // A chunk let through now would take the held headers upstream with it.
        assert_eq!(chunk(&worker, 2, b"a=1", false), Flow::Pause);
        worker.on_root();
        worker.on_answer(1, active("fred"), None);
        assert_eq!(*worker.host.resumed.borrow(), [2]);
        assert_eq!(chunk(&worker, 2, b"&b=2", true), Flow::Continue);
        worker.gone(2);
        assert!(worker.streams.borrow().is_empty());
    }

    #[test]
    fn a_body_in_two_chunks_is_read_at_its_end_and_the_request_decided_again_with_it() {
        let worker = worker();
        undecided(&worker, 2, Some(7), true);
        assert_eq!(reads_body(&worker, 2, 100, 5000), Flow::Pause);
        assert_eq!(chunk(&worker, 2, b"a=1", false), Flow::Pause);
        assert!(worker.host.dispatched.borrow().is_empty() && worker.host.wakes.get() == 0);
        assert_eq!(
            chunk(&worker, 2, b"a=1&b=2", true),
            Flow::Pause,
            "decided again: a question"
        );
        assert_eq!(
            worker.host.wakes.get(),
            1,
            "the decision with the body asked its question"
        );
        assert_eq!(worker.streams.borrow().body(2), Some(b"a=1&b=2".to_vec()));
        worker.on_root();
        worker.on_answer(1, active("fred"), None);
        assert_eq!(*worker.host.resumed.borrow(), [2]);
        assert_eq!(worker.streams.borrow().body(2), None, "dropped once decided");
        assert!(worker.host.replies.borrow().is_empty());
    }

    #[test]
    fn a_declared_length_over_the_bound_is_refused_413_without_waiting() {
        let worker = worker();
        undecided(&worker, 2, Some(101), true);
        assert_eq!(reads_body(&worker, 2, 100, 5000), Flow::Pause);
        assert_eq!(*worker.host.replies.borrow(), [(2, 413)]);
        assert_eq!(chunk(&worker, 2, b"a=1", false), Flow::Pause, "never let through");
        assert!(worker
            .host
            .counted
            .borrow()
            .contains(&Metric::denied(&DenyReason::BodyTooLarge)));
    }

    #[test]
    fn chunks_over_the_bound_are_refused_413_as_soon_as_they_pass_it() {
        let worker = worker();
        undecided(&worker, 2, None, true);
        assert_eq!(reads_body(&worker, 2, 10, 5000), Flow::Pause);
        assert_eq!(chunk(&worker, 2, b"a=12345678", false), Flow::Pause);
        assert!(worker.host.replies.borrow().is_empty(), "at the bound");
        assert_eq!(chunk(&worker, 2, b"a=123456789", false), Flow::Pause);
        assert_eq!(*worker.host.replies.borrow(), [(2, 413)]);
        assert_eq!(chunk(&worker, 2, b"a=123456789&b", true), Flow::Pause);
        assert_eq!(worker.host.replies.borrow().len(), 1);
    }

    #[test]
    fn a_body_that_never_ends_is_answered_408_by_the_tick_at_its_deadline() {
        let worker = worker();
        undecided(&worker, 2, None, true);
        reads_body(&worker, 2, 100, 5000);
        chunk(&worker, 2, b"a=1", false);
        worker.host.now.set(NOW + 4_900);
        worker.on_root();
        assert!(worker.host.replies.borrow().is_empty());
        worker.host.now.set(NOW + 5_000);
        worker.on_root();
        assert_eq!(*worker.host.replies.borrow(), [(2, 408)]);
        assert_eq!(chunk(&worker, 2, b"a=1&b=2", true), Flow::Pause, "never read now");
        worker.host.now.set(NOW + 10_000);
        worker.on_root();
        assert_eq!(worker.host.replies.borrow().len(), 1);
        assert_eq!(worker.host.gauges(), (0, 0));
    }

    #[test]
    fn a_request_that_ends_while_its_body_is_awaited_leaves_nothing_behind() {
        let worker = worker();
        undecided(&worker, 2, None, true);
        reads_body(&worker, 2, 100, 5000);
        chunk(&worker, 2, b"a=1", false);
        worker.host.requests.borrow_mut().remove(&2);
        worker.gone(2);
        assert!(worker.streams.borrow().is_empty());
        worker.host.now.set(NOW + 10_000);
        worker.on_root();
        assert!(worker.host.replies.borrow().is_empty());
        assert_eq!(worker.host.gauges(), (0, 0));
    }

    #[test]
    fn a_body_asked_for_twice_or_without_a_body_is_refused_not_asked_forever() {
        let worker = worker();
        undecided(&worker, 2, None, false);
        assert_eq!(reads_body(&worker, 2, 100, 5000), Flow::Pause);
        assert_eq!(*worker.host.replies.borrow(), [(2, 500)]);
        undecided(&worker, 3, None, true);
        chunk(&worker, 3, b"a=1", true);
        assert_eq!(
            reads_body(&worker, 3, 100, 5000),
            Flow::Pause,
            "read: decided again"
        );
        assert_eq!(reads_body(&worker, 3, 100, 5000), Flow::Pause);
        assert_eq!(worker.host.replies.borrow().last(), Some(&(3, 500)));
    }

    #[test]
    fn a_body_awaited_of_which_nothing_came_says_which_envoy_setting_hands_it_over() {
        let worker = worker();
        let warned = |worker: &Worker<Fake>| {
            let logs = worker.host.logs.borrow();
            logs.iter()
                .filter(|(level, line)| {
                    *level == Level::Warn && line.contains("allow_on_headers_stop_iteration")
                })
                .count()
        };
        undecided(&worker, 2, Some(10), true);
        reads_body(&worker, 2, 100, 1000);
        undecided(&worker, 3, Some(10), true);
        reads_body(&worker, 3, 100, 1000);
        chunk(&worker, 3, b"a=1", false);
        worker.host.now.set(NOW + 1_000);
        worker.on_root();
        assert_eq!(*worker.host.replies.borrow(), [(2, 408), (3, 408)]);
        assert_eq!(warned(&worker), 1, "for 2 only: some of 3 came");
    }

    #[test]
    fn the_start_up_lines_say_what_envoy_checks_for_the_providers_configured() {
        let none = HostChecks::NONE;
        assert!(signatures_lines(none, false, false).is_empty());
        assert_eq!(
            signatures_lines(none, true, true),
            [
                "this Envoy has no working verify_signature: RSA and ECDSA signatures are checked in the module (slower)",
                "this Envoy does not check RSA-SHA1 signatures (OAuth 1.0a): the module checks them (slower)",
            ]
        );
        assert_eq!(signatures_lines(none, false, true).len(), 1);
    }
}
