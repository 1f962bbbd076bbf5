//! tokengate's token service: issues, stores and checks API tokens.
//!
//! It speaks the API Token app's REST API (seed 004) under
//! `/rest/de.resolution.apitokenauth/latest/`, and answers RFC 7662 token introspection on
//! `POST /introspect` for the tokengate filter. Modules, one per concern:
//!
//! - [`config`]: the JSON configuration, validated into types;
//! - [`clock`]: epoch milliseconds and calendar-month arithmetic (time is always an input);
//! - [`tokens`]: token generation, parsing and hashing;
//! - [`users`]: the user directory (a trait, with the JSON-file implementation) and passwords;
//! - [`store`]: the SQLite store and its migrations;
//! - [`lockout`]: the failed-login lockout, per user (in the store) and per client address;
//! - [`auth`]: who is calling a management endpoint (Basic password, Basic token, Bearer token);
//! - [`api`]: routing and the REST handlers, pure functions from [`api::Request`] to [`api::Response`];
//! - [`introspect`]: the RFC 7662 endpoint;
//! - [`server`]: the HTTP shell (tiny_http, a small worker pool, the body cap).

pub mod api;
pub mod auth;
pub mod clock;
pub mod config;
pub mod introspect;
pub mod lockout;
pub mod server;
pub mod store;
pub mod tokens;
pub mod users;
