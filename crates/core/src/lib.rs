//! tokengate's core: edge authentication for Jira/Confluence-style REST APIs, under any host
//! (no proxy-wasm here: the filter for Envoy is the `tokengate` crate, a shell over this one).
//!
//! The pipeline is one module per stage: [`path`] (the path the rules see) -> [`extract`] -> [`tisjwt`] (verify, over [`jwt`] and
//! [`directory`]; OAuth 1.0a signed requests: [`oauth1_provider`], asking through [`oauth1_question`]) -> [`decide`]
//! (ending in [`admit`]) -> [`respond`]. All of it is plain Rust over plain data; one
//! [`worker::Worker`] per VM runs it over a [`worker::Host`] (the shell on Envoy), which
//! gathers inputs and applies decisions.
//! What the stages return ([`outcome`]), what they consult ([`host`]), the JOSE names
//! ([`jose`]) and the counters ([`metrics`]) are leaf modules, so no stage imports the
//! orchestrator; `scripts/import-graph` (run by `make lint`) keeps the import graph acyclic.

pub mod admit;
pub mod alg;
pub mod clock;
pub mod config;
#[cfg(test)]
mod config_errors_tests;
pub mod decide;
pub mod directory;
pub mod extract;
pub mod host;
pub mod hostcrypto;
pub mod jose;
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
pub mod jwks_shared;
pub mod logline;
pub mod metrics;
pub mod oauth1_provider;
pub mod oauth1_question;
pub mod opaque;
pub mod outcome;
pub mod path;
pub mod policy;
pub mod questions;
#[cfg(test)]
pub(crate) mod test_support;
pub mod worker;
pub mod worker_body;
pub mod worker_jwks;
