//! The proxy-wasm shell: gathers a request's inputs, steps the core, dispatches the callouts
//! it asks for and applies its decision. Every host call that can fail is a `Result`; a
//! failure fails closed (the request is refused) and is logged, because a panic here would
//! kill the VM for every request after it.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use crate::cache::{SharedStore, SlotCache};
use crate::callout::{Callout, CalloutResult};
use crate::clock::UnixSeconds;
use crate::config::Config;
use crate::decide::{
    begin, finish, Decision, Denial, DenyReason, Family, Forward, Pending, RequestHead, Step,
};
use crate::directory::{parse_user_response, Directory, DirectoryError, UserStatus};
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
/// Slots of the shared user-directory cache.
const USER_CACHE_SLOTS: u32 = 4096;

/// Counter ids, defined once per VM in `on_configure`.
#[derive(Default)]
struct Metrics {
    ids: Vec<(String, u32)>,
}

impl Metrics {
    fn define() -> Self {
        let fixed = [
            "allowed",
            "directory.cache_hit",
            "directory.cache_miss",
            "directory.callout_failed",
        ];
        let names = fixed.iter().map(|n| (*n).to_owned()).chain(
            DenyReason::METRIC_NAMES
                .iter()
                .map(|reason| format!("denied.{reason}")),
        );
        let ids = names
            .filter_map(|name| {
                let id = hostcalls::define_metric(MetricType::Counter, &format!("tokengate.{name}")).ok()?;
                Some((name, id))
            })
            .collect();
        Self { ids }
    }

    fn count(&self, name: &str) {
        if let Some((_, id)) = self.ids.iter().find(|(n, _)| n == name) {
            let _ = hostcalls::increment_metric(*id, 1);
        }
    }
}

#[derive(Default)]
struct Root {
    config: Option<Rc<Config>>,
    metrics: Rc<Metrics>,
}

impl Context for Root {}

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
        match Config::from_json(&bytes) {
            Ok(config) => {
                self.config = Some(Rc::new(config));
                self.metrics = Rc::new(Metrics::define());
                log(LogLevel::Info, "configuration loaded");
                true
            }
            Err(error) => {
                log(LogLevel::Error, &error.to_string());
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let config = self.config.clone()?;
        Some(Box::new(Filter {
            config,
            metrics: self.metrics.clone(),
            waiting: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
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
}

struct Filter {
    config: Rc<Config>,
    metrics: Rc<Metrics>,
    /// The request paused for a directory callout, if any.
    waiting: Option<Pending>,
}

impl Context for Filter {
    fn on_http_call_response(&mut self, _token: u32, _headers: usize, body_size: usize, _trailers: usize) {
        // A late answer after the request already ended finds nothing waiting and is ignored.
        let Some(pending) = self.waiting.take() else {
            return;
        };
        let status = self.user_status_from(callout_result(body_size), pending.user());
        let decision = finish(&self.config, pending, status);
        if self.apply(decision, now()) == Action::Continue {
            let _ = hostcalls::resume_http_request();
        }
    }
}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let now = now();
        let Some(request) = read_request() else {
            return self.apply(self.internal_error(), now);
        };
        match begin(&self.config, &request, now) {
            Step::Done(decision) => self.apply(decision, now),
            Step::LookUpUser { pending, callout } => self.look_up_user(pending, &callout, now),
        }
    }
}

impl Filter {
    fn look_up_user(&mut self, pending: Pending, callout: &Callout, now: UnixSeconds) -> Action {
        let cache = user_cache();
        if let Some(status) = cache
            .get(&HostStore, &cache.key(pending.user().as_bytes()), now)
            .and_then(|value| UserStatus::from_byte(*value.first()?))
        {
            self.metrics.count("directory.cache_hit");
            return self.apply(finish(&self.config, pending, Ok(status)), now);
        }
        self.metrics.count("directory.cache_miss");
        if dispatch(callout) {
            self.waiting = Some(pending);
            return Action::Pause;
        }
        self.metrics.count("directory.callout_failed");
        self.apply(
            finish(&self.config, pending, Err(DirectoryError::Unavailable)),
            now,
        )
    }

    /// Reads the directory's answer and caches it (failures are not cached).
    fn user_status_from(&self, result: CalloutResult, user: &str) -> Result<UserStatus, DirectoryError> {
        let status = match result {
            CalloutResult::Response { status, body } => parse_user_response(status, &body),
            CalloutResult::Failed => Err(DirectoryError::Unavailable),
        };
        match (&status, &self.config.directory) {
            (Ok(found), Directory::Callout(settings)) => {
                let ttl = match found {
                    UserStatus::Unknown => settings.negative_cache_ttl_seconds,
                    _ => settings.cache_ttl_seconds,
                };
                let cache = user_cache();
                let key = cache.key(user.as_bytes());
                cache.insert(&HostStore, &key, &[found.to_byte()], now().saturating_add(ttl));
            }
            (Err(error), _) => {
                self.metrics.count("directory.callout_failed");
                log(
                    LogLevel::Warn,
                    &format!("user directory callout failed: {error:?}"),
                );
            }
            _ => {}
        }
        status
    }

    fn internal_error(&self) -> Decision {
        let family = if self.config.tisjwt.is_some() {
            Family::Tisjwt
        } else {
            Family::OAuth
        };
        Decision::Deny(Denial {
            family,
            reason: DenyReason::Internal,
        })
    }

    /// Applies a decision: `Continue` once the request is rewritten, `Pause` after a reply.
    fn apply(&self, decision: Decision, now: UnixSeconds) -> Action {
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
                self.metrics
                    .count(&format!("denied.{}", denial.reason.metric_name()));
                self.reply(&denial, now);
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

fn user_cache() -> SlotCache {
    SlotCache::new("user", USER_CACHE_SLOTS)
}

fn read_request() -> Option<RequestHead> {
    let headers = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).ok()?;
    let pseudo = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, value)| String::from_utf8(value.clone()).ok())
    };
    Some(RequestHead {
        method: pseudo(":method")?,
        path: pseudo(":path")?,
        headers,
    })
}

/// Starts a callout; `false` if the host refused it (unknown cluster, bad headers).
fn dispatch(callout: &Callout) -> bool {
    let mut headers: Vec<(&str, &str)> = vec![
        (":method", callout.method),
        (":path", &callout.path),
        (":authority", &callout.authority),
    ];
    headers.extend(callout.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let timeout = Duration::from_millis(callout.timeout_ms);
    match hostcalls::dispatch_http_call(
        &callout.cluster,
        headers,
        callout.body.as_deref(),
        vec![],
        timeout,
    ) {
        Ok(_) => true,
        Err(status) => {
            log(
                LogLevel::Error,
                &format!("cannot call cluster `{}`: {status:?}", callout.cluster),
            );
            false
        }
    }
}

/// The response of the callout that just completed; no `:status` means it failed.
fn callout_result(body_size: usize) -> CalloutResult {
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

/// Applies the forward plan; `false` if the host refused any change.
fn rewrite(forward: &Forward) -> bool {
    let headers = MapType::HttpRequestHeaders;
    let removed = forward
        .remove_headers
        .iter()
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

fn now() -> UnixSeconds {
    hostcalls::get_current_time()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
}

fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}
