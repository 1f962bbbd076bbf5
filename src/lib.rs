//! tokengate: edge authentication for Jira/Confluence-style REST APIs, as a proxy-wasm filter
//! for Envoy. Everything it decides is the core's (`tokengate-core`, re-exported here, so
//! `tokengate::jwk` and the rest name the same modules); this crate is the proxy-wasm shell
//! (wasm32 only) that runs the core's worker on Envoy.

pub use tokengate_core::*;

#[cfg(target_arch = "wasm32")]
mod shell;
