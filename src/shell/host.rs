//! The worker's [`Host`] on Envoy: the request's head, its rewrite and local reply, shared
//! data, callouts, time, logs and metrics. The raw ABI ([`super::abi`]) where a status can
//! come back; the SDK where it cannot panic (see there).

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType, MetricType, Status};
use std::time::{Duration, UNIX_EPOCH};

use tokengate_core::cache::SharedStore;
use tokengate_core::callout::{Callout, CalloutResult};
use tokengate_core::host::Counter;
use tokengate_core::hostcrypto::VERIFY_SIGNATURE;
use tokengate_core::jwks_cache::Millis;
use tokengate_core::metrics::{Gauge, Metric};
use tokengate_core::outcome::{Forward, RequestHead};
use tokengate_core::respond::LocalReply;
use tokengate_core::worker::{Host, Level};
use tokengate_proxy_abi as abi;

/// Largest callout response body read; anything longer is cut and fails to parse.
const MAX_CALLOUT_BODY: usize = 256 * 1024;

/// One VM's host: its root context (the effective context of every dispatch), its wake
/// queue (`None`: the tick dispatches) and its metric ids (defined in `on_configure`).
#[derive(Default)]
pub struct Shell {
    root: u32,
    queue: Option<u32>,
    counters: Vec<(Metric, u32)>,
    /// Of [`Gauge::ALL`].
    gauges: [Option<u32>; 2],
}

impl Shell {
    pub fn new(root: u32, queue: Option<u32>) -> Self {
        Self {
            root,
            queue,
            ..Self::default()
        }
    }

    /// Defines the filter's metrics in Envoy's stats (`tokengate.*`).
    pub fn with_metrics(self) -> Self {
        let define = |kind, name| hostcalls::define_metric(kind, name).ok();
        let counters = Metric::ALL.into_iter();
        let counters = counters.filter_map(|m| Some((m, define(MetricType::Counter, m.name())?)));
        Self {
            counters: counters.collect(),
            gauges: Gauge::ALL.map(|g| define(MetricType::Gauge, g.name())),
            ..self
        }
    }
}

/// The host's shared data, seen by every worker's VM.
impl SharedStore for Shell {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        abi::get_shared_data(key).ok().flatten().map(|(value, _)| value)
    }
    fn set(&self, key: &str, value: &[u8]) {
        let _ = abi::set_shared_data(key, value, 0);
    }
    fn get_versioned(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        abi::get_shared_data(key).ok().flatten()
    }
    fn set_versioned(&self, key: &str, value: &[u8], cas: u32) -> bool {
        abi::set_shared_data(key, value, cas).is_ok()
    }
}

impl Counter for Shell {
    fn count(&self, metric: Metric) {
        if let Some((_, id)) = self.counters.iter().find(|(m, _)| *m == metric) {
            let _ = hostcalls::increment_metric(*id, 1);
        }
    }
}

impl Host for Shell {
    type Refusal = Status;

    fn request(&self) -> Option<RequestHead> {
        let headers = abi::request_headers().ok()?;
        // The downstream address Envoy determined; Envoy answers Ok or NotFound here (the SDK
        // panics only on other statuses, which a connection property does not produce).
        let client_address = hostcalls::get_property(vec!["source", "address"]).ok().flatten();
        RequestHead::of(
            headers,
            client_address.and_then(|bytes| String::from_utf8(bytes).ok()),
        )
    }

    /// With the SDK, which must file its token (see [`super::abi`]); the effective context
    /// of the dispatch is the one Envoy files it under, the SDK the running one (the root's).
    fn dispatch(&self, callout: &Callout) -> Result<u32, Status> {
        abi::set_effective_context(self.root)?;
        let mut headers: Vec<(&str, &str)> = vec![
            (":method", callout.method),
            (":path", &callout.path),
            (":authority", &callout.authority),
        ];
        headers.extend(callout.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let timeout = Duration::from_millis(callout.timeout_ms);
        let body = callout.body.as_deref();
        hostcalls::dispatch_http_call(&callout.cluster, headers, body, vec![], timeout)
    }

    /// Through the VM's wake queue (its `on_queue_ready`); if it fails, the next tick.
    fn wake(&self) {
        if let Some(queue) = self.queue {
            let _ = abi::enqueue_shared_queue(queue, b"!");
        }
    }

    fn switch_to(&self, context: u32) -> bool {
        abi::set_effective_context(context).is_ok()
    }

    /// (The request may have been reset meanwhile.)
    fn resume(&self) {
        let _ = abi::resume_request();
    }

    /// A failure is logged: the request is then Envoy's to end.
    fn reply(&self, reply: LocalReply) {
        let headers: Vec<(&str, &str)> = (reply.headers.iter())
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        if let Err(status) = abi::send_local_response(reply.status, &headers, reply.body.as_bytes()) {
            self.log(Level::Error, &format!("cannot send the local reply: {status:?}"));
        }
    }

    fn rewrite(&self, forward: &Forward) -> bool {
        (forward.edits()).all(|(name, value)| abi::edit_request_header(name, value).is_ok())
    }

    fn now_millis(&self) -> Millis {
        now()
    }

    fn log(&self, level: Level, line: &str) {
        let level = match level {
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        log(level, line);
    }

    fn add(&self, gauge: Gauge, delta: i64) -> bool {
        let id = Gauge::ALL.iter().zip(self.gauges).find(|(g, _)| **g == gauge);
        id.and_then(|(_, id)| id)
            .is_some_and(|id| hostcalls::increment_metric(id, delta).is_ok())
    }

    /// What Envoy buffered of the current request's body (read in its body callback, or from
    /// the root after one that buffered it).
    fn request_body(&self, size: usize) -> Option<Vec<u8>> {
        abi::request_body(size).ok()
    }

    fn verify_signature(&self, arguments: &[u8]) -> Option<Vec<u8>> {
        hostcalls::call_foreign_function(VERIFY_SIGNATURE, Some(arguments))
            .ok()
            .flatten()
    }
}

/// The callout that just completed: its response (no `:status`: it failed) and its
/// `WWW-Authenticate`.
///
/// A callout reset after its headers came (the provider closed mid-body) is delivered with no
/// headers and no response map: the SDK's map getters panic on the host's `BadArgument` then,
/// so the map is not read at all.
pub fn callout_answer(num_headers: usize, body_size: usize) -> (CalloutResult, Option<String>) {
    let status = (num_headers > 0).then(|| callout_header(":status")).flatten();
    let Some(status) = status.and_then(|s| s.parse().ok()) else {
        return (CalloutResult::Failed, None);
    };
    let body = hostcalls::get_buffer(
        BufferType::HttpCallResponseBody,
        0,
        body_size.min(MAX_CALLOUT_BODY),
    );
    let body = body.ok().flatten().unwrap_or_default();
    (
        CalloutResult::Response { status, body },
        callout_header("www-authenticate"),
    )
}

/// A header of the callout response being delivered; `None` when it is not UTF-8. Read as
/// bytes: the SDK's `get_map_value` unwraps `String::from_utf8`, and a provider may send
/// obs-text (RFC 9110 section 5.5), which would panic the VM.
fn callout_header(name: &str) -> Option<String> {
    let value = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, name);
    value
        .ok()
        .flatten()
        .and_then(|value| String::from_utf8(value).ok())
}

/// Empties `queue` (its items only wake the root).
pub fn drain(queue: u32) {
    while let Ok(Some(_)) = abi::dequeue_shared_queue(queue) {}
}

/// A random name for this VM and configuration: of its wake queue, and its name in JWKS fetch
/// leases. `None` if the host has no randomness (then the queue is not registered and the
/// root's tick dispatches; the lease holder is 0).
pub fn nonce() -> Option<u64> {
    let mut nonce = [0u8; 8];
    getrandom::getrandom(&mut nonce).ok()?;
    Some(u64::from_le_bytes(nonce))
}

/// Registers this VM's wake queue under a name of this VM and configuration only (Envoy keys
/// queues by (vm_id, name): the same name in two VMs would wake the last registrant only).
pub fn register_wake_queue(nonce: u64) -> Option<u32> {
    abi::register_shared_queue(&format!("tokengate.wake.{nonce:016x}")).ok()
}

/// The plugin configuration's bytes; `None` (logged) when they cannot be read.
pub fn configuration() -> Option<Vec<u8>> {
    let bytes = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX);
    let error = |status| {
        log(
            LogLevel::Error,
            &format!("cannot read the plugin configuration: {status:?}"),
        )
    };
    Some(bytes.map_err(error).ok()?.unwrap_or_default())
}

pub fn now() -> Millis {
    let elapsed = hostcalls::get_current_time().ok();
    let elapsed = elapsed.and_then(|time| time.duration_since(UNIX_EPOCH).ok());
    elapsed.map_or(0, |elapsed| {
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
    })
}

fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}
