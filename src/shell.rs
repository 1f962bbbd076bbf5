//! The proxy-wasm shell: gathers a request's inputs, asks the core for a decision and
//! applies it. Every host call that can fail is a `Result`; a failure fails closed (the
//! request is refused) and is logged, because a panic here would kill the VM for every
//! request after it.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use crate::clock::UnixSeconds;
use crate::config::Config;
use crate::decide::{decide, Decision, DenyReason, Forward, RequestHead};
use crate::respond::{render, LocalReply, ReplyStyle};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    std::panic::set_hook(Box::new(|info| {
        let _ = hostcalls::log(LogLevel::Critical, &format!("tokengate panicked: {info}"));
    }));
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// Every reason a request can be denied, for defining one counter each up front.
const DENY_METRICS: [&str; 6] = [
    "missing_credential",
    "ambiguous_credential",
    "invalid_token",
    "invalid_license",
    "inactive_user",
    "internal_error",
];

/// Counter ids, defined once per VM in `on_configure`.
#[derive(Default)]
struct Metrics {
    allowed: Option<u32>,
    denied: Vec<(&'static str, u32)>,
}

impl Metrics {
    fn define() -> Self {
        let counter = |name: &str| hostcalls::define_metric(MetricType::Counter, name).ok();
        Self {
            allowed: counter("tokengate.allowed"),
            denied: DENY_METRICS
                .iter()
                .filter_map(|reason| Some((*reason, counter(&format!("tokengate.denied.{reason}"))?)))
                .collect(),
        }
    }

    fn count_allowed(&self) {
        if let Some(id) = self.allowed {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    fn count_denied(&self, reason: &DenyReason) {
        let name = reason.metric_name();
        if let Some((_, id)) = self.denied.iter().find(|(n, _)| *n == name) {
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
            Ok(Some(bytes)) => bytes,
            Ok(None) => Vec::new(),
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
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Filter {
    config: Rc<Config>,
    metrics: Rc<Metrics>,
}

impl Context for Filter {}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let now = now();
        let decision = match read_request() {
            Some(request) => decide(&self.config, &request, now),
            None => Decision::Deny(DenyReason::Internal),
        };
        match decision {
            Decision::Allow(forward) => {
                if apply(&forward) {
                    self.metrics.count_allowed();
                    return Action::Continue;
                }
                log(LogLevel::Error, "could not rewrite the request; refusing it");
                self.deny(&DenyReason::Internal, now)
            }
            Decision::Deny(reason) => self.deny(&reason, now),
        }
    }
}

impl Filter {
    fn deny(&self, reason: &DenyReason, now: UnixSeconds) -> Action {
        self.metrics.count_denied(reason);
        let style = ReplyStyle {
            plugin_version: &self.config.plugin_version,
            realm: &self.config.realm,
        };
        let LocalReply {
            status,
            headers,
            body,
        } = render(reason, style, now);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        if let Err(status) = hostcalls::send_http_response(status, headers, Some(body.as_bytes())) {
            log(
                LogLevel::Error,
                &format!("cannot send the local reply: {status:?}"),
            );
        }
        Action::Pause
    }
}

fn read_request() -> Option<RequestHead> {
    let headers = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).ok()?;
    let path = headers
        .iter()
        .find(|(name, _)| name == ":path")
        .and_then(|(_, value)| String::from_utf8(value.clone()).ok())?;
    Some(RequestHead { path, headers })
}

/// Applies the forward plan; `false` if the host refused any change.
fn apply(forward: &Forward) -> bool {
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
