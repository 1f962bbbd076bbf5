//! The proxy-wasm shell: gathers a request's inputs, steps the core, dispatches the callouts
//! it asks for and applies its decisions. It decides nothing: what to ask, who waits and what
//! an answer, a refusal or a timeout means are the core's ([`crate::questions`]).
//!
//! One [`Worker`] per VM (per Envoy worker thread), shared by the root context and every HTTP
//! context, holds the configuration, the counters, the JWKS schedules and one question table.
//! **Every callout is dispatched by the root context** from a root callback (`on_tick`,
//! `on_queue_ready`, its `on_http_call_response`) with the effective context set to the root,
//! so that the SDK and Envoy both file it under a context that lives as long as the plugin: a
//! request that asks a new question wakes its root through the VM's wake queue, and is
//! resumed or answered (effective context switched to it) when the answer, a refusal or its
//! deadline (checked on every tick) comes. A request that ends takes its waiters out of the
//! table; a callout nobody waits for any more is left to end and its answer ignored.
//!
//! Plugin reload: a new configuration gets a new root context and a new [`Worker`] (a new
//! table, a new wake queue); the old root keeps its own until Envoy deletes it, answering its
//! requests from its table and its tick as before. When Envoy deletes the old root, it
//! cancels the callouts filed under it, and the SDK drops any answer for it; its requests were
//! created by the old plugin, which Envoy tears down with it.
//!
//! Host calls that can fail go through [`abi`] (raw ABI, `Result`s); see there for
//! the SDK calls still used and why they cannot panic here.

mod abi;
mod host;
mod metrics;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use crate::callout::{Callout, CalloutResult};
use crate::config::Config;
use crate::decide::{begin, default_family};
use crate::host::{Counter, Env, Keyring};
use crate::hostcrypto::{host_verifies, ForeignVerifier, Hash, SignatureHost};
use crate::jwk::KeySet;
use crate::jwks_cache::{Generation, Millis};
use crate::logline::{LogLimiter, MAX_WARNING_KEYS, WARNING_INTERVAL_MS};
use crate::metrics::Metric;
use crate::outcome::{Decision, Denial, DenyReason, Step};
use crate::questions::{deadline_for, About, Answer, Asked, Then, Todo, Waiter, WorkerQuestions};
use crate::respond::{render, ReplyStyle};
use crate::worker_jwks::WorkerJwks;
use host::{
    call_verify_signature, callout_header, callout_result, log, now_millis, read_request, seconds, HostStore,
};
use metrics::Metrics;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    std::panic::set_hook(Box::new(|info| {
        let _ = hostcalls::log(LogLevel::Critical, &format!("tokengate panicked: {info}"));
    }));
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> { Box::new(Root { id, worker: None }) });
}}

/// How often the root context starts due JWKS fetches and answers waiters past their deadline.
const TICK: Duration = Duration::from_millis(100);

/// Per-VM state shared by the root context and the HTTP contexts.
struct Worker {
    config: Config,
    metrics: Metrics,
    /// The root context's id: the effective context of every dispatch.
    root: u32,
    /// The wake queue, registered by the root in `on_configure` (`None`: the tick dispatches).
    queue: Option<u32>,
    remotes: Vec<WorkerJwks>,
    questions: RefCell<WorkerQuestions>,
    /// Whether Envoy's `verify_signature` passed the self-test (then it checks RSA and ECDSA).
    host_signatures: bool,
    /// Repeated callout warnings, one line per (provider, kind) per interval.
    warnings: RefCell<LogLimiter<String>>,
}

impl SignatureHost for Worker {
    fn verify(&self, hash: Hash, spki_der: &[u8], input: &[u8], signature: &[u8]) -> Option<bool> {
        let verifier = ForeignVerifier(call_verify_signature);
        let answer = self
            .host_signatures
            .then(|| verifier.verify(hash, spki_der, input, signature));
        let answer = answer.flatten();
        if answer.is_some() {
            self.metrics.count(Metric::SignaturesCheckedByHost);
        }
        answer
    }
}

impl Keyring for Worker {
    fn remote_keys(&self, provider: &str) -> Option<(Rc<KeySet>, Generation)> {
        self.keys_of(provider)?.current(&HostStore)
    }
}

impl Worker {
    fn new(config: Config, metrics: Metrics, root: u32, queue: Option<u32>, holder: u64) -> Self {
        // Only JWT providers have signatures for the host to check.
        let host_signatures =
            !config.jwt_providers.is_empty() && host_verifies(&ForeignVerifier(call_verify_signature));
        Self {
            remotes: WorkerJwks::of(&config, holder, &HostStore),
            config,
            metrics,
            root,
            queue,
            questions: RefCell::default(),
            host_signatures,
            warnings: RefCell::new(LogLimiter::new(WARNING_INTERVAL_MS, MAX_WARNING_KEYS)),
        }
    }

    fn env(&self) -> Env<'_> {
        Env {
            keyring: self,
            store: &HostStore,
            count: &self.metrics,
            signatures: self,
        }
    }

    fn keys_of(&self, provider: &str) -> Option<&WorkerJwks> {
        self.remotes.iter().find(|r| r.provider == provider)
    }

    /// Decides the request of the effective context: `Continue` once it may go upstream,
    /// `Pause` when it was answered or waits. `deadline`: of a wait for keys it began.
    fn decide(&self, context: u32, deadline: Option<Millis>) -> Action {
        let now = now_millis();
        let Some(request) = read_request() else {
            return self.apply(self.internal_error(), now);
        };
        let step = match begin(&self.config, &request, &self.env(), seconds(now)) {
            Step::Done(Decision::Allow(forward)) => {
                Step::Done(Decision::Allow(forward.only_removing_present(&request.headers)))
            }
            step => step,
        };
        self.run_step(context, step, deadline, now)
    }

    /// Carries out what the core asked for.
    fn run_step(&self, context: u32, step: Step, deadline: Option<Millis>, now: Millis) -> Action {
        match Todo::of(&self.config, step, &self.env(), seconds(now)) {
            Todo::Done(decision) => self.apply(decision, now),
            Todo::WaitForKeys { provider, refetch } => {
                let wait = self
                    .keys_of(&provider)
                    .map(|keys| keys.wait(&HostStore, refetch, deadline, now));
                let deadline = match wait {
                    Some(Ok(deadline)) => deadline,
                    Some(Err(decision)) => return self.apply(decision, now),
                    None => return self.apply(self.internal_error(), now),
                };
                self.metrics.count(Metric::JwksWaited);
                let waiter = Waiter {
                    context,
                    deadline,
                    then: Then::Decide,
                };
                self.questions.borrow_mut().park(About::Keys(provider), waiter);
                self.wake_root();
                Action::Pause
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
                    Asked::New => self.wake_root(),
                    Asked::Joined => coalesced.into_iter().for_each(|m| self.metrics.count(m)),
                }
                Action::Pause
            }
        }
    }

    /// Asks the root context to dispatch (its `on_queue_ready`); if the queue fails, the
    /// next tick does.
    fn wake_root(&self) {
        self.queue.into_iter().for_each(host::enqueue);
    }

    /// The root's work in every root callback: start due key fetches, decide again requests
    /// whose keys settled, answer the requests past their deadline, dispatch every unsent
    /// question as the root, record the gauges.
    fn as_root(&self) {
        let now = now_millis();
        for keys in &self.remotes {
            if let Some(callout) = keys.take_fetch(&HostStore, now) {
                self.questions
                    .borrow_mut()
                    .fetch(About::Keys(keys.provider.clone()), callout);
            }
        }
        let ready = self.questions.borrow_mut().wake(|about| match about {
            About::Keys(provider) => self
                .keys_of(provider)
                .is_none_or(|keys| keys.settled(&HostStore, now)),
            About::Token(_) | About::User(_) => true,
        });
        for waiter in ready {
            if host::switch_to(waiter.context)
                && self.decide(waiter.context, Some(waiter.deadline)) == Action::Continue
            {
                host::resume();
            }
        }
        let late = self.questions.borrow_mut().expired(now);
        for waiter in late {
            let step = waiter.then.failed(&self.config, &self.env(), seconds(now));
            self.resume(waiter.context, step, waiter.deadline);
        }
        // Answers to refused questions may ask new ones: a few rounds, then the next tick.
        for _ in 0..4 {
            let unsent = self.questions.borrow().unsent();
            if unsent.is_empty() {
                break;
            }
            unsent
                .into_iter()
                .for_each(|(about, callout)| self.dispatch(about, &callout));
        }
        let questions = self.questions.borrow();
        self.metrics.record([questions.in_flight(), questions.waiting()]);
    }

    /// Dispatches a question as the root context; a refusal is the question's failure.
    fn dispatch(&self, about: About, callout: &Callout) {
        match host::dispatch_as(self.root, callout) {
            Ok(token) => {
                self.questions.borrow_mut().sent(&about, token);
                about
                    .dispatched_metric()
                    .into_iter()
                    .for_each(|m| self.metrics.count(m));
            }
            Err(status) => {
                let message = format!("cannot call cluster `{}`: {status:?}", callout.cluster);
                self.log_limited(LogLevel::Error, format!("{}/dispatch", callout.cluster), &message);
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
        let (now, env) = (now_millis(), self.env());
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
                        let level = if problem.error {
                            LogLevel::Error
                        } else {
                            LogLevel::Warn
                        };
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
            .map(|keys| keys.fetched(&HostStore, result, now))
        {
            Some(Ok(())) => self.metrics.count(Metric::JwksFetchOk),
            Some(Err(line)) => {
                self.metrics.count(Metric::JwksFetchFailed);
                self.log_limited(LogLevel::Warn, format!("{provider}/jwks"), &line);
            }
            None => {}
        }
    }

    /// Carries out `step` for the waiting request `context`, unless it is gone.
    fn resume(&self, context: u32, step: Step, deadline: Millis) {
        if host::switch_to(context)
            && self.run_step(context, step, Some(deadline), now_millis()) == Action::Continue
        {
            host::resume();
        }
    }

    fn log_limited(&self, level: LogLevel, key: String, message: &str) {
        if let Some(line) = self.warnings.borrow_mut().line(key, now_millis(), message) {
            log(level, &line);
        }
    }

    fn internal_error(&self) -> Decision {
        Decision::Deny(Denial::new(default_family(&self.config), DenyReason::Internal))
    }

    /// Applies a decision: `Continue` once the request is rewritten, `Pause` after a reply.
    fn apply(&self, decision: Decision, now: Millis) -> Action {
        match decision {
            Decision::Allow(forward) if host::rewrite(&forward) => {
                self.metrics.count(Metric::Allowed);
                Action::Continue
            }
            Decision::Allow(_) => {
                log(LogLevel::Error, "could not rewrite the request; refusing it");
                self.apply(self.internal_error(), now)
            }
            Decision::Deny(denial) => {
                self.metrics.count(Metric::denied(&denial.reason));
                let style = ReplyStyle {
                    plugin_version: &self.config.plugin_version,
                    realm: &self.config.realm,
                };
                host::reply(render(&denial, style, seconds(now)));
                Action::Pause
            }
        }
    }
}

struct Root {
    id: u32,
    worker: Option<Rc<Worker>>,
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body_size: usize, _trailers: usize) {
        let Some(worker) = &self.worker else { return };
        let result = callout_result(headers, body_size);
        let challenge = matches!(result, CalloutResult::Response { .. })
            .then(|| callout_header("www-authenticate"))
            .flatten();
        let answered = worker.questions.borrow_mut().answered(token);
        if let Some((about, waiters)) = answered {
            worker.settle(about, result, challenge, waiters);
        }
        worker.as_root();
    }

    /// The plugin is going away (a reload, or the VM's end): Envoy cancels the callouts filed
    /// under this root, so its questions will never be answered; its share of the gauges
    /// (which are the process's sums) goes with it, and so do its JWKS fetch leases (another
    /// worker fetches at its next tick, not when the lease would have expired).
    fn on_done(&mut self) -> bool {
        if let Some(worker) = &self.worker {
            worker.metrics.record([0, 0]);
            worker.remotes.iter().for_each(|keys| keys.release(&HostStore));
        }
        true
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let Some(config) = host::configuration() else {
            return false;
        };
        let nonce = host::nonce().unwrap_or_else(now_millis);
        let queue = host::register_wake_queue(nonce);
        if queue.is_none() {
            log(LogLevel::Warn, "no wake queue: callouts start on the next tick");
        }
        if hostcalls::set_tick_period(TICK).is_err() {
            log(LogLevel::Error, "cannot start the root context's timer");
            return false;
        }
        let worker = Worker::new(config, Metrics::define(), self.id, queue, nonce);
        if !worker.config.jwt_providers.is_empty() {
            log(LogLevel::Info, match worker.host_signatures {
                true => "RS256/384/512 and ES256/384/512 signatures are checked by Envoy (verify_signature)",
                false => "this Envoy has no working verify_signature: RSA and ECDSA signatures are checked in the module (slower)",
            });
        }
        self.worker = Some(Rc::new(worker));
        log(LogLevel::Info, "configuration loaded");
        true
    }

    fn on_tick(&mut self) {
        self.worker.iter().for_each(|worker| worker.as_root());
    }

    fn on_queue_ready(&mut self, queue: u32) {
        host::drain(queue);
        self.worker.iter().for_each(|worker| worker.as_root());
    }

    /// Never `None`: the SDK panics on a missing context. Envoy does not create contexts for a
    /// plugin whose `on_configure` failed, so the fallback is for safety only.
    fn create_http_context(&self, context: u32) -> Option<Box<dyn HttpContext>> {
        let fallback = || {
            Rc::new(Worker::new(
                Config::refuse_everything(),
                Metrics::default(),
                self.id,
                None,
                0,
            ))
        };
        let worker = self.worker.clone().unwrap_or_else(fallback);
        Some(Box::new(Filter { context, worker }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Filter {
    context: u32,
    worker: Rc<Worker>,
}

impl Context for Filter {}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.worker.decide(self.context, None)
    }
}

impl Drop for Filter {
    /// The request ended: nothing waits for it any more (the root records the gauges).
    fn drop(&mut self) {
        self.worker.questions.borrow_mut().gone(self.context);
    }
}
