//! The proxy-wasm shell: gathers a request's inputs, steps the core, dispatches the callouts
//! it asks for and applies its decision. Every host call that can fail is a `Result`; a
//! failure fails closed (the request is refused) and is logged, because a panic here would
//! kill the VM for every request after it.
//!
//! One [`Worker`] per VM (per Envoy worker thread) is shared by the root context and every
//! HTTP context: configuration, counters, remote JWKS state, requests parked waiting for
//! keys, and user lookups in flight. The root context fetches JWKS on its tick and re-runs
//! parked requests (switching the effective context to each) when keys arrive.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType, Status};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use crate::bearer::{KeySource, RemoteJwks};
use crate::cache::{CacheKey, SharedStore};
use crate::callout::{Callout, CalloutResult};
use crate::clock::UnixSeconds;
use crate::config::Config;
use crate::decide::{
    begin, default_family, finish, keys_unavailable, unknown_key, Counter, Decision, Denial, DenyReason, Env,
    Forward, Keyring, Pending, RequestHead, Step,
};
use crate::directory::{parse_user_response, Directory, DirectoryError, UserCache, UserStatus};
use crate::hostcrypto::{host_verifies, ForeignVerifier, Hash, SignatureHost, VERIFY_SIGNATURE};
use crate::introspect::ProviderFailure;
use crate::jwk::KeySet;
use crate::jwks_cache::{Generation, Millis, RemoteKeys};
use crate::logline::{LogLimiter, MAX_WARNING_KEYS, WARNING_INTERVAL_MS};
use crate::metrics::Metric;
use crate::opaque::{after_provider, PendingToken};
use crate::respond::{render, LocalReply, ReplyStyle};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    std::panic::set_hook(Box::new(|info| {
        let _ = hostcalls::log(LogLevel::Critical, &format!("tokengate panicked: {info}"));
    }));
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// Largest callout response body read; anything longer is cut and fails to parse.
const MAX_CALLOUT_BODY: usize = 256 * 1024;
/// How often the root context looks at JWKS schedules and parked requests.
const TICK: Duration = Duration::from_millis(100);

/// Counter ids, defined once per VM in `on_configure`: one per [`Metric::ALL`].
#[derive(Default)]
struct Metrics {
    ids: Vec<(Metric, u32)>,
}

impl Counter for Metrics {
    fn count(&self, metric: Metric) {
        self.increment(metric);
    }
}

impl Metrics {
    fn define() -> Self {
        let ids = Metric::ALL
            .into_iter()
            .filter_map(|metric| {
                let id = hostcalls::define_metric(MetricType::Counter, metric.name()).ok()?;
                Some((metric, id))
            })
            .collect();
        Self { ids }
    }

    fn increment(&self, metric: Metric) {
        if let Some((_, id)) = self.ids.iter().find(|(m, _)| *m == metric) {
            let _ = hostcalls::increment_metric(*id, 1);
        }
    }

    /// Counts the metric named `name` without its `tokengate.` prefix (`jwks.waited`).
    fn count(&self, name: &str) {
        if let Some(metric) = Metric::named(name) {
            self.increment(metric);
        }
    }
}

/// A remote JWKS provider's settings and schedule.
struct Remote {
    provider: String,
    settings: RemoteJwks,
    keys: RemoteKeys<Rc<KeySet>>,
}

/// A request parked until its provider's keys arrive or `deadline` passes.
struct Waiter {
    context_id: u32,
    provider: String,
    deadline: Millis,
}

/// One token-provider question in flight.
struct Ask {
    callout: Callout,
    /// The request context that dispatched it, `None` for the root context.
    dispatcher: Option<u32>,
    waiting: Vec<(u32, PendingToken)>,
}

/// Per-VM state shared by the root context and the HTTP contexts.
struct Worker {
    config: Rc<Config>,
    metrics: Metrics,
    remotes: RefCell<Vec<Remote>>,
    waiters: RefCell<Vec<Waiter>>,
    /// JWKS fetches in flight: callout token -> provider.
    fetches: RefCell<HashMap<u32, String>>,
    /// User lookups in flight: callout token -> (request context, verified request).
    lookups: RefCell<HashMap<u32, (u32, Pending)>>,
    /// Token-provider callouts in flight, one per token: key -> the question and who waits.
    asks: RefCell<HashMap<CacheKey, Ask>>,
    /// Questions whose dispatching request ended (Envoy cancels its callouts) while others
    /// still wait: the root context asks again on its next tick.
    orphans: RefCell<Vec<CacheKey>>,
    /// Whether the root context is the one running (its callouts outlive any request).
    in_root: std::cell::Cell<bool>,
    /// Callout token -> the key of the provider question it answers.
    ask_tokens: RefCell<HashMap<u32, CacheKey>>,
    /// Whether Envoy's `verify_signature` passed the self-test: then it checks RSA and ECDSA
    /// signatures.
    host_signatures: bool,
    /// Repeated callout warnings, one line per (provider, kind) per interval.
    warnings: RefCell<LogLimiter<String>>,
}

impl SignatureHost for Worker {
    fn verify(&self, hash: Hash, spki_der: &[u8], input: &[u8], signature: &[u8]) -> Option<bool> {
        if !self.host_signatures {
            return None;
        }
        let answer = ForeignVerifier(call_verify_signature).verify(hash, spki_der, input, signature);
        if answer.is_some() {
            self.metrics.count("jwt.signatures_checked_by_host");
        }
        answer
    }
}

fn call_verify_signature(arguments: &[u8]) -> Option<Vec<u8>> {
    hostcalls::call_foreign_function(VERIFY_SIGNATURE, Some(arguments))
        .ok()
        .flatten()
}

impl Keyring for Worker {
    /// Generation 0: this worker's own keys (until the shared key set is wired in).
    fn remote_keys(&self, provider: &str) -> Option<(Rc<KeySet>, Generation)> {
        self.remotes
            .borrow()
            .iter()
            .find(|r| r.provider == provider)?
            .keys
            .keys()
            .map(|keys| (keys.clone(), 0))
    }
}

impl Worker {
    fn new(config: Rc<Config>, metrics: Metrics) -> Self {
        let remotes = config
            .jwt_providers
            .iter()
            .filter_map(|p| match &p.keys {
                KeySource::Remote(settings) => Some(Remote {
                    provider: p.name.clone(),
                    settings: settings.clone(),
                    keys: RemoteKeys::new(settings.refresh),
                }),
                KeySource::Static(_) => None,
            })
            .collect();
        // Only JWT providers have signatures for the host to check.
        let host_signatures =
            !config.jwt_providers.is_empty() && host_verifies(&ForeignVerifier(call_verify_signature));
        Self {
            config,
            metrics,
            remotes: RefCell::new(remotes),
            waiters: RefCell::default(),
            fetches: RefCell::default(),
            lookups: RefCell::default(),
            asks: RefCell::default(),
            ask_tokens: RefCell::default(),
            orphans: RefCell::default(),
            in_root: std::cell::Cell::new(false),
            host_signatures,
            warnings: RefCell::new(LogLimiter::new(WARNING_INTERVAL_MS, MAX_WARNING_KEYS)),
        }
    }

    /// Starts a callout; `None` if the host refused it (logged, rate-limited per cluster).
    fn dispatch(&self, callout: &Callout) -> Option<u32> {
        dispatch(callout)
            .map_err(|status| {
                let message = format!("cannot call cluster `{}`: {status:?}", callout.cluster);
                self.log_limited(LogLevel::Error, format!("{}/dispatch", callout.cluster), &message);
            })
            .ok()
    }

    /// Logs `message` unless a line of the same `key` was logged within the interval.
    fn log_limited(&self, level: LogLevel, key: String, message: &str) {
        if let Some(line) = self.warnings.borrow_mut().line(key, now_millis(), message) {
            log(level, &line);
        }
    }

    /// Decides the request of the effective context `context_id`: `Continue` once it may
    /// go upstream, `Pause` when it was answered or is waiting for a callout or keys.
    fn process(&self, context_id: u32, deadline: Option<Millis>) -> Action {
        self.decide(context_id, read_request().as_ref(), deadline)
    }

    /// [`Worker::process`] for a request already read (`None`: the host would not give it).
    fn decide(&self, context_id: u32, request: Option<&RequestHead>, deadline: Option<Millis>) -> Action {
        let now = now_millis();
        let Some(request) = request else {
            return self.apply(self.internal_error(), now);
        };
        let step = match begin(&self.config, request, &self.env(), seconds(now)) {
            Step::Done(Decision::Allow(forward)) => {
                Step::Done(Decision::Allow(forward.only_removing_present(&request.headers)))
            }
            step => step,
        };
        self.run_step(context_id, step, deadline, now)
    }

    fn env(&self) -> Env<'_> {
        Env {
            keyring: self,
            store: &HostStore,
            count: &self.metrics,
            signatures: self,
        }
    }

    /// Carries out what the core asked for.
    fn run_step(&self, context_id: u32, step: Step, deadline: Option<Millis>, now: Millis) -> Action {
        match step {
            Step::Done(decision) => self.apply(decision, now),
            Step::LookUpUser { pending, callout } => self.look_up_user(context_id, pending, &callout, now),
            Step::WaitForKeys { provider, refetch } => {
                self.wait_for_keys(context_id, provider, refetch, deadline, now)
            }
            Step::AskProvider {
                pending,
                callout,
                key,
            } => self.ask_provider(context_id, pending, &callout, key, now),
        }
    }

    /// Asks the token provider, unless a question about the same token is already out: then
    /// the request waits for that answer (one callout per token per worker).
    fn ask_provider(
        &self,
        context_id: u32,
        pending: PendingToken,
        callout: &Callout,
        key: CacheKey,
        now: Millis,
    ) -> Action {
        let mut asks = self.asks.borrow_mut();
        if let Some(ask) = asks.get_mut(&key) {
            ask.waiting.push((context_id, pending));
            self.metrics.count("introspection.coalesced");
            return Action::Pause;
        }
        if let Some(token) = self.dispatch(callout) {
            let dispatcher = (!self.in_root.get()).then_some(context_id);
            let ask = Ask {
                callout: callout.clone(),
                dispatcher,
                waiting: vec![(context_id, pending)],
            };
            asks.insert(key, ask);
            self.ask_tokens.borrow_mut().insert(token, key);
            self.metrics.count("introspection.callouts");
            return Action::Pause;
        }
        drop(asks);
        self.metrics.count("introspection.failed.no_response");
        let step = after_provider(
            &self.config,
            pending,
            Err(ProviderFailure::NoResponse),
            &self.env(),
            seconds(now),
        );
        self.run_step(context_id, step, None, now)
    }

    /// The provider answered: read it once, then continue every request that waited for it.
    fn provider_answered(&self, key: CacheKey, result: CalloutResult) {
        let waiting = self
            .asks
            .borrow_mut()
            .remove(&key)
            .map(|ask| ask.waiting)
            .unwrap_or_default();
        let Some(provider) = waiting.first().and_then(|(_, pending)| {
            self.config
                .oauth_providers
                .iter()
                .find(|p| p.name == pending.provider())
        }) else {
            return;
        };
        let now = now_millis();
        let answer = match result {
            CalloutResult::Response { status, body } => {
                let challenge = callout_header("www-authenticate");
                provider.read_answer(status, challenge.as_deref(), &body, seconds(now))
            }
            CalloutResult::Failed => Err(ProviderFailure::NoResponse),
        };
        if let Err(failure) = answer {
            self.metrics.increment(Metric::introspection_failed(failure));
            let level = if failure == ProviderFailure::ClientRejected {
                LogLevel::Error
            } else {
                LogLevel::Warn
            };
            let what = match failure {
                ProviderFailure::ClientRejected => "rejected the configured client credentials".to_owned(),
                other => format!("gave no usable answer ({other:?})"),
            };
            let key = format!(
                "{}/{}",
                provider.name,
                Metric::introspection_failed(failure).suffix()
            );
            self.log_limited(level, key, &format!("token provider `{}` {what}", provider.name));
        }
        for (context_id, pending) in waiting {
            if hostcalls::set_effective_context(context_id).is_err() {
                continue; // the request is gone
            }
            let step = after_provider(&self.config, pending, answer.clone(), &self.env(), seconds(now));
            if self.run_step(context_id, step, None, now) == Action::Continue {
                let _ = hostcalls::resume_http_request();
            }
        }
    }

    fn wait_for_keys(
        &self,
        context_id: u32,
        provider: String,
        refetch: bool,
        deadline: Option<Millis>,
        now: Millis,
    ) -> Action {
        let mut remotes = self.remotes.borrow_mut();
        let Some(remote) = remotes.iter_mut().find(|r| r.provider == provider) else {
            drop(remotes);
            return self.apply(self.internal_error(), now);
        };
        if refetch && !remote.keys.request_refetch(now) {
            drop(remotes);
            return self.apply(unknown_key(), now);
        }
        let deadline = deadline.unwrap_or(now.saturating_add(remote.settings.wait_ms));
        drop(remotes);
        if now >= deadline {
            return self.apply(keys_unavailable(), now);
        }
        self.metrics.count("jwks.waited");
        self.waiters.borrow_mut().push(Waiter {
            context_id,
            provider,
            deadline,
        });
        Action::Pause
    }

    fn look_up_user(&self, context_id: u32, pending: Pending, callout: &Callout, now: Millis) -> Action {
        if let Some(status) = self
            .config
            .directory
            .cached_status(&HostStore, pending.user(), seconds(now))
        {
            self.metrics.count("directory.cache_hit");
            return self.apply(finish(&self.config, pending, Ok(status)), now);
        }
        self.metrics.count("directory.cache_miss");
        match self.dispatch(callout) {
            Some(token) => {
                self.lookups.borrow_mut().insert(token, (context_id, pending));
                Action::Pause
            }
            None => {
                self.metrics.count("directory.callout_failed");
                self.apply(
                    finish(&self.config, pending, Err(DirectoryError::Unavailable)),
                    now,
                )
            }
        }
    }

    /// A callout came back, to whichever context dispatched it.
    fn on_callout_response(&self, token: u32, num_headers: usize, body_size: usize) {
        let result = callout_result(num_headers, body_size);
        let provider = self.fetches.borrow_mut().remove(&token);
        if let Some(provider) = provider {
            self.jwks_fetched(&provider, result);
            self.wake_waiters();
            return;
        }
        let ask = self.ask_tokens.borrow_mut().remove(&token);
        if let Some(key) = ask {
            self.provider_answered(key, result);
            return;
        }
        let lookup = self.lookups.borrow_mut().remove(&token);
        if let Some((context_id, pending)) = lookup {
            self.user_looked_up(context_id, pending, result);
        }
    }

    fn user_looked_up(&self, context_id: u32, pending: Pending, result: CalloutResult) {
        let status = self.user_status_from(result, pending.user());
        let decision = finish(&self.config, pending, status);
        if hostcalls::set_effective_context(context_id).is_err() {
            return; // the request is gone
        }
        if self.apply(decision, now_millis()) == Action::Continue {
            let _ = hostcalls::resume_http_request();
        }
    }

    /// Reads the directory's answer and caches it (failures are not cached).
    fn user_status_from(&self, result: CalloutResult, user: &str) -> Result<UserStatus, DirectoryError> {
        let status = match result {
            CalloutResult::Response { status, body } => parse_user_response(status, &body, user),
            CalloutResult::Failed => Err(DirectoryError::Unavailable),
        };
        match (&status, &self.config.directory) {
            (Ok(found), Directory::Callout(settings)) => {
                let now = seconds(now_millis());
                UserCache::default().insert(&HostStore, settings, user, *found, now);
            }
            (Err(error), _) => {
                self.metrics.count("directory.callout_failed");
                self.log_limited(
                    LogLevel::Warn,
                    format!("directory/{error:?}"),
                    &format!("user directory callout failed: {error:?}"),
                );
            }
            _ => {}
        }
        status
    }

    /// Starts every JWKS fetch that is due (root context only, so the answer comes back to a
    /// context that lives as long as the VM).
    fn start_due_fetches(&self) {
        let now = now_millis();
        for remote in self.remotes.borrow_mut().iter_mut().filter(|r| r.keys.due(now)) {
            let callout = Callout {
                cluster: remote.settings.cluster.clone(),
                method: "GET",
                path: remote.settings.path.clone(),
                authority: remote.settings.authority.clone(),
                headers: vec![("accept".to_owned(), "application/json".to_owned())],
                body: None,
                timeout_ms: remote.settings.timeout_ms,
            };
            remote.keys.fetch_started();
            match self.dispatch(&callout) {
                Some(token) => {
                    self.fetches.borrow_mut().insert(token, remote.provider.clone());
                }
                None => {
                    self.metrics.count("jwks.fetch_failed");
                    remote.keys.fetch_failed(now);
                }
            }
        }
    }

    /// A JWKS answer: good keys replace the old ones; anything else keeps them and backs off.
    fn jwks_fetched(&self, provider: &str, result: CalloutResult) {
        let now = now_millis();
        let keys = match result {
            CalloutResult::Response { status: 200, body } => {
                KeySet::from_jwks(&body).map_err(|e| e.to_string())
            }
            CalloutResult::Response { status, .. } => Err(format!("status {status}")),
            CalloutResult::Failed => Err("no response".to_owned()),
        };
        let mut remotes = self.remotes.borrow_mut();
        let Some(remote) = remotes.iter_mut().find(|r| r.provider == provider) else {
            return;
        };
        match keys {
            Ok(keys) => {
                self.metrics.count("jwks.fetch_ok");
                remote.keys.fetch_succeeded(Rc::new(keys), now);
            }
            Err(problem) => {
                self.metrics.count("jwks.fetch_failed");
                let kept = if remote.keys.keys().is_some() {
                    "keeping the last good keys"
                } else {
                    "no keys yet"
                };
                self.log_limited(
                    LogLevel::Warn,
                    format!("{provider}/jwks"),
                    &format!("JWKS of provider `{provider}` not loaded ({problem}); {kept}"),
                );
                remote.keys.fetch_failed(now);
            }
        }
    }

    /// Re-decides parked requests whose keys arrived (or whose fetch ended) or whose wait ran out.
    fn wake_waiters(&self) {
        let now = now_millis();
        let ready: Vec<Waiter> = {
            let remotes = self.remotes.borrow();
            let settled = |w: &Waiter| {
                now >= w.deadline
                    || remotes
                        .iter()
                        .find(|r| r.provider == w.provider)
                        .is_none_or(|r| !r.keys.fetching() && !r.keys.due(now) && r.keys.keys().is_some())
            };
            let mut waiters = self.waiters.borrow_mut();
            let (ready, waiting) = waiters.drain(..).partition(settled);
            *waiters = waiting;
            ready
        };
        for waiter in ready {
            if hostcalls::set_effective_context(waiter.context_id).is_err() {
                continue; // the client went away
            }
            if self.process(waiter.context_id, Some(waiter.deadline)) == Action::Continue {
                let _ = hostcalls::resume_http_request();
            }
        }
    }

    /// Forgets everything about a request context that ended. A question it dispatched dies
    /// with it (Envoy cancels the callout): if others still wait for the answer, the root
    /// context asks again.
    fn forget(&self, context_id: u32) {
        self.waiters.borrow_mut().retain(|w| w.context_id != context_id);
        self.lookups.borrow_mut().retain(|_, (id, _)| *id != context_id);
        let mut orphaned = Vec::new();
        self.asks.borrow_mut().retain(|key, ask| {
            ask.waiting.retain(|(id, _)| *id != context_id);
            if ask.dispatcher != Some(context_id) {
                return true;
            }
            if !ask.waiting.is_empty() {
                ask.dispatcher = None;
                orphaned.push(*key);
            }
            !ask.waiting.is_empty()
        });
        if !orphaned.is_empty() {
            self.ask_tokens
                .borrow_mut()
                .retain(|_, key| !orphaned.contains(key));
            self.orphans.borrow_mut().extend(orphaned);
        }
    }

    /// Asks again the questions whose dispatcher went away (root context only).
    fn redispatch_orphans(&self) {
        let orphans: Vec<CacheKey> = self.orphans.borrow_mut().drain(..).collect();
        for key in orphans {
            let callout = self.asks.borrow().get(&key).map(|ask| ask.callout.clone());
            let Some(callout) = callout else { continue };
            match self.dispatch(&callout) {
                Some(token) => {
                    self.ask_tokens.borrow_mut().insert(token, key);
                }
                None => self.provider_answered(key, CalloutResult::Failed),
            }
        }
    }

    fn internal_error(&self) -> Decision {
        let family = default_family(&self.config);
        Decision::Deny(Denial::new(family, DenyReason::Internal))
    }

    /// Applies a decision: `Continue` once the request is rewritten, `Pause` after a reply.
    fn apply(&self, decision: Decision, now: Millis) -> Action {
        match decision {
            Decision::Allow(forward) if rewrite(&forward) => {
                self.metrics.count("allowed");
                Action::Continue
            }
            Decision::Allow(_) => {
                log(LogLevel::Error, "could not rewrite the request; refusing it");
                self.apply(self.internal_error(), now)
            }
            Decision::Deny(denial) => {
                self.metrics.increment(Metric::denied(&denial.reason));
                self.reply(&denial, seconds(now));
                Action::Pause
            }
        }
    }

    fn reply(&self, denial: &Denial, now: UnixSeconds) {
        let style = ReplyStyle {
            plugin_version: &self.config.plugin_version,
            realm: &self.config.realm,
        };
        let LocalReply {
            status,
            headers,
            body,
        } = render(denial, style, now);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        if let Err(status) = hostcalls::send_http_response(status, headers, Some(body.as_bytes())) {
            log(
                LogLevel::Error,
                &format!("cannot send the local reply: {status:?}"),
            );
        }
    }
}

#[derive(Default)]
struct Root {
    worker: Option<Rc<Worker>>,
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body_size: usize, _trailers: usize) {
        if let Some(worker) = &self.worker {
            worker.in_root.set(true);
            worker.on_callout_response(token, headers, body_size);
            worker.in_root.set(false);
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                log(
                    LogLevel::Error,
                    &format!("cannot read the plugin configuration: {status:?}"),
                );
                return false;
            }
        };
        let config = match Config::from_json(&bytes) {
            Ok(config) => config,
            Err(error) => {
                log(LogLevel::Error, &error.to_string());
                return false;
            }
        };
        for field in &config.ignored {
            log(
                LogLevel::Warn,
                &format!("field `{field}` is deprecated and ignored: the token service holds the failed-login counter, its rule and its reset"),
            );
        }
        let worker = Worker::new(Rc::new(config), Metrics::define());
        let needs_tick = !worker.remotes.borrow().is_empty() || !worker.config.oauth_providers.is_empty();
        if needs_tick && hostcalls::set_tick_period(TICK).is_err() {
            log(LogLevel::Error, "cannot start the root context's timer");
            return false;
        }
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
        if let Some(worker) = &self.worker {
            worker.in_root.set(true);
            worker.start_due_fetches();
            worker.wake_waiters();
            worker.redispatch_orphans();
            worker.in_root.set(false);
        }
    }

    /// Never `None`: the SDK panics on a missing context. Envoy does not create contexts for a
    /// plugin whose `on_configure` failed, so the fallback is for safety only.
    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let worker = self.worker.clone().unwrap_or_else(|| {
            Rc::new(Worker::new(
                Rc::new(Config::refuse_everything()),
                Metrics::default(),
            ))
        });
        Some(Box::new(Filter { context_id, worker }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Filter {
    context_id: u32,
    worker: Rc<Worker>,
}

impl Context for Filter {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body_size: usize, _trailers: usize) {
        self.worker.on_callout_response(token, headers, body_size);
    }
}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let request = read_request();
        self.worker.decide(self.context_id, request.as_ref(), None)
    }
}

impl Drop for Filter {
    fn drop(&mut self) {
        self.worker.forget(self.context_id);
    }
}

/// The host's shared data, seen by every worker's VM.
struct HostStore;

impl SharedStore for HostStore {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        hostcalls::get_shared_data(key).ok().and_then(|(value, _)| value)
    }
    fn set(&self, key: &str, value: &[u8]) {
        let _ = hostcalls::set_shared_data(key, Some(value), None);
    }
    fn get_versioned(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(value), cas)) => Some((value, cas.unwrap_or(0))),
            _ => None,
        }
    }
    /// Envoy answers Ok or CasMismatch (the SDK panics on nothing else it can get here).
    fn set_versioned(&self, key: &str, value: &[u8], cas: u32) -> bool {
        hostcalls::set_shared_data(key, Some(value), Some(cas)).is_ok()
    }
}

fn read_request() -> Option<RequestHead> {
    let headers = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).ok()?;
    let pseudo = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, value)| String::from_utf8(value.clone()).ok())
    };
    // The downstream address Envoy determined; Envoy answers Ok or NotFound here (the SDK
    // panics only on other statuses, which a connection property does not produce).
    let client_address = hostcalls::get_property(vec!["source", "address"])
        .ok()
        .flatten()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    Some(RequestHead {
        method: pseudo(":method")?,
        path: pseudo(":path")?,
        headers,
        client_address,
    })
}

/// Starts a callout; the host's status if it refused it (unknown cluster, bad headers).
fn dispatch(callout: &Callout) -> Result<u32, Status> {
    let mut headers: Vec<(&str, &str)> = vec![
        (":method", callout.method),
        (":path", &callout.path),
        (":authority", &callout.authority),
    ];
    headers.extend(callout.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let timeout = Duration::from_millis(callout.timeout_ms);
    hostcalls::dispatch_http_call(
        &callout.cluster,
        headers,
        callout.body.as_deref(),
        vec![],
        timeout,
    )
}

/// The response of the callout that just completed; no `:status` means it failed.
///
/// A callout reset after its headers came (the provider closed mid-body) is delivered with no
/// headers and no response map: the SDK's map getters panic on the host's `BadArgument` then,
/// so the map is not read at all.
fn callout_result(num_headers: usize, body_size: usize) -> CalloutResult {
    if num_headers == 0 {
        return CalloutResult::Failed;
    }
    let status = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten()
        .and_then(|s| s.parse().ok());
    let Some(status) = status else {
        return CalloutResult::Failed;
    };
    let body = hostcalls::get_buffer(
        BufferType::HttpCallResponseBody,
        0,
        body_size.min(MAX_CALLOUT_BODY),
    )
    .ok()
    .flatten()
    .unwrap_or_default();
    CalloutResult::Response { status, body }
}

/// A header of the callout response being delivered (callout callbacks only); `None` when it
/// is not UTF-8. Read as bytes: the SDK's `get_map_value` unwraps `String::from_utf8`, and a
/// provider may send obs-text (RFC 9110 section 5.5), which would panic the VM.
fn callout_header(name: &str) -> Option<String> {
    hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, name)
        .ok()
        .flatten()
        .and_then(|value| String::from_utf8(value).ok())
}

/// Applies the forward plan; `false` if the host refused any change.
fn rewrite(forward: &Forward) -> bool {
    let headers = MapType::HttpRequestHeaders;
    // A header about to be set is replaced whole (every copy), so removing it first would
    // only cost a host call.
    let removed = forward
        .remove_headers
        .iter()
        .filter(|name| !forward.set_headers.iter().any(|(set, _)| set == *name))
        .all(|name| hostcalls::set_map_value(headers, name, None).is_ok());
    let set = forward
        .set_headers
        .iter()
        .all(|(name, value)| hostcalls::set_map_value(headers, name, Some(value)).is_ok());
    let path = forward
        .path
        .as_deref()
        .is_none_or(|path| hostcalls::set_map_value(headers, ":path", Some(path)).is_ok());
    removed && set && path
}

fn now_millis() -> Millis {
    hostcalls::get_current_time()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

fn seconds(millis: Millis) -> UnixSeconds {
    i64::try_from(millis / 1000).unwrap_or(i64::MAX)
}

fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}
