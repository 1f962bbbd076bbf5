//! Host calls that can come back with an error status, called through the raw proxy-wasm ABI
//! (0.2.1) so that every status is a `Result`: proxy-wasm 0.2.5's `hostcalls` wrappers of
//! these `panic!` on any status they do not expect (and a panic kills the VM for every
//! request after it).
//!
//! Not here: `proxy_http_call`. The SDK's dispatcher must file every callout token (its
//! `on_http_call_response` `expect`s on a token it did not file), so callouts go through
//! `hostcalls::dispatch_http_call`. It returns `Ok`, `BadArgument` and `InternalFailure` as
//! `Result`s and panics on any other status; Envoy's `Context::httpCall` returns only those
//! three (`BadArgument`: negative timeout, unknown cluster, no `:path`/`:method`/`:authority`;
//! `InternalFailure`: the async client would not start the request).
//!
//! The request body is read here too (`request_body`): the SDK's `get_buffer` would do, but
//! a body is the client's to shape, so its one call is a `Result` like the headers'.
//!
//! Still the SDK's, each with every status Envoy returns for it handled (so none panics):
//! `get_buffer` (Ok, NotFound; the plugin configuration and callout bodies),
//! `get_map_value_bytes` on the callout response (Ok, NotFound; read only when the response
//! has headers, as the map is missing otherwise), `get_property`
//! (Ok, NotFound, SerializationFailure, InternalFailure), `get_current_time` and `log` (Ok),
//! `define_metric` (Ok for the two types used), `increment_metric` (Ok, NotFound,
//! BadArgument), `set_tick_period` (Ok), `call_foreign_function` (Ok, NotFound, BadArgument,
//! SerializationFailure, InternalFailure).
//!
//! Two modules: [`map`], the header-map encoding (pure, tested on any target), and the calls
//! themselves (wasm32 only: they are imports of the `env` module Envoy provides), which decide
//! nothing: each is one host call and its status.

pub mod map;

#[cfg(target_arch = "wasm32")]
mod calls;
#[cfg(target_arch = "wasm32")]
pub use calls::*;
