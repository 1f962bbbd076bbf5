//! The shell's host calls: the request's head, its rewrite and local reply, shared data,
//! callouts, time and logs. The raw ABI ([`super::abi`]) where a status can come back; the
//! SDK where it cannot panic (see there).

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType, Status};
use std::time::{Duration, UNIX_EPOCH};

use super::abi;
use crate::cache::SharedStore;
use crate::callout::{Callout, CalloutResult};
use crate::clock::UnixSeconds;
use crate::config::Config;
use crate::decide::{Forward, RequestHead};
use crate::hostcrypto::VERIFY_SIGNATURE;
use crate::jwks_cache::Millis;
use crate::respond::LocalReply;

/// Largest callout response body read; anything longer is cut and fails to parse.
const MAX_CALLOUT_BODY: usize = 256 * 1024;

/// The host's shared data, seen by every worker's VM.
pub struct HostStore;

impl SharedStore for HostStore {
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

pub fn read_request() -> Option<RequestHead> {
    let headers = abi::request_headers().ok()?;
    let pseudo = |name: &str| {
        let value = headers.iter().find(|(n, _)| n == name)?;
        String::from_utf8(value.1.clone()).ok()
    };
    // The downstream address Envoy determined; Envoy answers Ok or NotFound here (the SDK
    // panics only on other statuses, which a connection property does not produce).
    let client_address = hostcalls::get_property(vec!["source", "address"]).ok().flatten();
    let client_address = client_address.and_then(|bytes| String::from_utf8(bytes).ok());
    Some(RequestHead {
        method: pseudo(":method")?,
        path: pseudo(":path")?,
        headers,
        client_address,
    })
}

/// Starts a callout (with the SDK, which must file its token: see [`super::abi`]).
pub fn dispatch(callout: &Callout) -> Result<u32, Status> {
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
pub fn callout_result(num_headers: usize, body_size: usize) -> CalloutResult {
    let status = (num_headers > 0).then(|| callout_header(":status")).flatten();
    let Some(status) = status.and_then(|s| s.parse().ok()) else {
        return CalloutResult::Failed;
    };
    let body = hostcalls::get_buffer(
        BufferType::HttpCallResponseBody,
        0,
        body_size.min(MAX_CALLOUT_BODY),
    );
    CalloutResult::Response {
        status,
        body: body.ok().flatten().unwrap_or_default(),
    }
}

/// A header of the callout response being delivered (callout callbacks only); `None` when it
/// is not UTF-8. Read as bytes: the SDK's `get_map_value` unwraps `String::from_utf8`, and a
/// provider may send obs-text (RFC 9110 section 5.5), which would panic the VM.
pub fn callout_header(name: &str) -> Option<String> {
    let value = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, name)
        .ok()
        .flatten();
    value.and_then(|value| String::from_utf8(value).ok())
}

/// Answers the effective context's request locally (a failure is logged: the request is then
/// Envoy's to end).
pub fn reply(reply: LocalReply) {
    let headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    if let Err(status) = abi::send_local_response(reply.status, &headers, reply.body.as_bytes()) {
        log(
            LogLevel::Error,
            &format!("cannot send the local reply: {status:?}"),
        );
    }
}

/// Lets the effective context's request go on (it may have been reset meanwhile).
pub fn resume() {
    let _ = abi::resume_request();
}

/// Makes `context` the effective one; `false` when it is gone.
pub fn switch_to(context: u32) -> bool {
    abi::set_effective_context(context).is_ok()
}

/// Wakes the root context that registered `queue`.
pub fn enqueue(queue: u32) {
    let _ = abi::enqueue_shared_queue(queue, b"!");
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

/// The plugin configuration, compiled; `None` (logged) when it cannot be read or is refused.
pub fn configuration() -> Option<Config> {
    let bytes = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
        .map_err(|status| {
            log(
                LogLevel::Error,
                &format!("cannot read the plugin configuration: {status:?}"),
            )
        })
        .ok()?;
    let config = Config::from_json(&bytes.unwrap_or_default())
        .map_err(|error| log(LogLevel::Error, &error.to_string()))
        .ok()?;
    for field in &config.ignored {
        log(LogLevel::Warn, &format!("field `{field}` is deprecated and ignored: the token service holds the failed-login counter, its rule and its reset"));
    }
    Some(config)
}

/// Applies the forward plan; `false` if the host refused any change.
pub fn rewrite(forward: &Forward) -> bool {
    // A header about to be set is replaced whole (every copy), so removing it first would
    // only cost a host call.
    let removed = (forward.remove_headers.iter())
        .filter(|name| !forward.set_headers.iter().any(|(set, _)| set == *name))
        .all(|name| abi::remove_request_header(name).is_ok());
    let set = (forward.set_headers.iter()).all(|(name, value)| abi::set_request_header(name, value).is_ok());
    let path = forward
        .path
        .as_deref()
        .is_none_or(|path| abi::set_request_header(":path", path).is_ok());
    removed && set && path
}

pub fn now_millis() -> Millis {
    let elapsed = hostcalls::get_current_time()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok());
    elapsed.map_or(0, |elapsed| {
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
    })
}

pub fn seconds(millis: Millis) -> UnixSeconds {
    i64::try_from(millis / 1000).unwrap_or(i64::MAX)
}

pub fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}

pub fn call_verify_signature(arguments: &[u8]) -> Option<Vec<u8>> {
    hostcalls::call_foreign_function(VERIFY_SIGNATURE, Some(arguments))
        .ok()
        .flatten()
}

/// Starts `callout` as the root context `root` (the effective context of the dispatch is the
/// one Envoy files it under; the SDK files it under the running context, the root's too).
pub fn dispatch_as(root: u32, callout: &Callout) -> Result<u32, Status> {
    abi::set_effective_context(root)?;
    dispatch(callout)
}
