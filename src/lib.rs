//! tokengate: edge authentication for Jira/Confluence-style REST APIs, as a proxy-wasm filter.
//!
//! The pipeline is one module per stage: [`path`] (the path the rules see) -> [`extract`] -> [`tisjwt`] (verify, over [`jwt`] and
//! [`directory`]) -> [`decide`] -> [`respond`]. All of it is plain Rust over plain data; the
//! proxy-wasm shell in `shell` (built for wasm32 only) gathers inputs and applies decisions.

pub mod alg;
pub mod clock;
pub mod config;
pub mod decide;
pub mod directory;
pub mod extract;
pub mod hostcrypto;
pub mod hostmap;
pub mod jwk;
pub mod jwt;
pub mod query;
pub mod respond;
pub mod tisjwt;
pub mod username;

pub mod apitoken;
pub mod bearer;
pub mod cache;
pub mod callout;
pub mod challenge;
pub mod introspect;
pub mod jwks_cache;
pub mod jwks_local;
pub mod logline;
pub mod opaque;
pub mod path;
pub mod policy;
pub mod questions;
#[cfg(target_arch = "wasm32")]
mod shell;
