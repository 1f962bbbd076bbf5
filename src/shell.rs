//! The proxy-wasm shell: the contexts forward their callbacks to the VM's [`Worker`] (the
//! core's, host-independent: it decides everything), and [`host::Shell`] is its [`Host`] on
//! Envoy. One worker per VM (per Envoy worker thread), shared by the root context and every
//! HTTP context. Every callout is dispatched with the root as the effective context, so that
//! the SDK and Envoy both file it under a context that lives as long as the plugin.
//!
//! Plugin reload: a new configuration gets a new root context and a new [`Worker`] (a new
//! table, a new wake queue); the old root keeps its own until Envoy deletes it, answering its
//! requests from its table and its tick as before. When Envoy deletes the old root, it
//! cancels the callouts filed under it, and the SDK drops any answer for it; its requests were
//! created by the old plugin, which Envoy tears down with it.
//!
//! Host calls that can fail go through [`tokengate_proxy_abi`] (raw ABI, `Result`s); see there for
//! the SDK calls still used and why they cannot panic here.

mod host;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::rc::Rc;
use std::time::Duration;

use host::{callout_answer, Shell};
use tokengate_core::config::Config;
use tokengate_core::worker::{Flow, Host, Level, Worker, TICK_MS};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    std::panic::set_hook(Box::new(|info| {
        let _ = hostcalls::log(LogLevel::Critical, &format!("tokengate panicked: {info}"));
    }));
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> { Box::new(Root { id, worker: None }) });
}}

struct Root {
    id: u32,
    worker: Option<Rc<Worker<Shell>>>,
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body_size: usize, _trailers: usize) {
        if let Some(worker) = &self.worker {
            let (result, challenge) = callout_answer(headers, body_size);
            worker.on_answer(token, result, challenge);
        }
    }

    /// The plugin is going away: see [`Worker::on_done`].
    fn on_done(&mut self) -> bool {
        self.worker.iter().for_each(|worker| worker.on_done());
        true
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let Some(bytes) = host::configuration() else {
            return false;
        };
        let nonce = host::nonce().unwrap_or_else(host::now);
        let queue = host::register_wake_queue(nonce);
        let shell = Shell::new(self.id, queue).with_metrics();
        if queue.is_none() {
            shell.log(Level::Warn, "no wake queue: callouts start on the next tick");
        }
        if hostcalls::set_tick_period(Duration::from_millis(TICK_MS)).is_err() {
            shell.log(Level::Error, "cannot start the root context's timer");
            return false;
        }
        self.worker = Worker::configure(&bytes, shell, nonce).map(Rc::new);
        self.worker.is_some()
    }

    fn on_tick(&mut self) {
        self.worker.iter().for_each(|worker| worker.on_root());
    }

    fn on_queue_ready(&mut self, queue: u32) {
        host::drain(queue);
        self.worker.iter().for_each(|worker| worker.on_root());
    }

    /// Never `None`: the SDK panics on a missing context. Envoy does not create contexts for a
    /// plugin whose `on_configure` failed, so the fallback is for safety only.
    fn create_http_context(&self, context: u32) -> Option<Box<dyn HttpContext>> {
        let fallback = || {
            let shell = Shell::new(self.id, None);
            Rc::new(Worker::new(Config::refuse_everything(), shell, 0))
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
    worker: Rc<Worker<Shell>>,
}

impl Context for Filter {}

/// `Pause` is the SDK's `StopIteration` for headers and trailers and `StopIterationAndBuffer`
/// for a body chunk. Envoy keeps a header `StopIteration` only with the plugin's
/// `allow_on_headers_stop_iteration: true` (else StopAllIterationAndWatermark: no body
/// callback until the request goes on); with it, a chunk continued while the headers are
/// stopped would take them upstream (Envoy's filter manager), so every chunk of an undecided
/// request is buffered.
fn action(flow: Flow) -> Action {
    match flow {
        Flow::Continue => Action::Continue,
        Flow::Pause => Action::Pause,
    }
}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        action(self.worker.on_request(self.context, !end_of_stream))
    }

    /// `body_size`: what Envoy buffered so far, this chunk included.
    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        action(self.worker.on_body(self.context, body_size, end_of_stream))
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        action(self.worker.on_trailers(self.context))
    }
}

impl Drop for Filter {
    fn drop(&mut self) {
        self.worker.gone(self.context);
    }
}
