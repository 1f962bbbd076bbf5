//! tokengate's token service: issues, stores and checks API tokens.
//!
//! It speaks the API Token app's REST API (seed 004) under
//! `/rest/de.resolution.apitokenauth/latest/`, and answers RFC 7662 token introspection on
//! `POST /introspect` for the tokengate filter. Modules, one per concern:
//!
//! - [`config`]: the JSON configuration, validated into types;
//! - [`clock`]: epoch milliseconds and calendar-month arithmetic (time is always an input);
//! - [`tokens`]: token generation, parsing and hashing;
//! - [`oauth_tokens`]: the OAuth 1.0a values (tokens, secrets, verifiers): generation and hashing;
//! - [`users`]: the user directory (a trait, with the JSON-file implementation) and passwords;
//! - [`store`]: the storage trait and its engines, SQLite and PostgreSQL, with their migrations;
//! - [`lockout`]: the failed-login lockout, per user (in the store) and per client address;
//! - [`auth`]: who is calling a management endpoint (Basic password, Basic token, Bearer token);
//! - [`login`]: one login through the lockout (the REST API's and the OAuth 1.0a authorize form's);
//! - [`http`] and [`service`]: the request and response as plain data, and the service they are
//!   answered with;
//! - [`api`]: routing and the REST handlers, pure functions from [`api::Request`] to [`api::Response`];
//! - [`introspect`]: the RFC 7662 endpoint;
//! - [`links`]: the public base URL of the links the service writes;
//! - the OAuth 1.0a dance (application links): [`oauth1_dance`] (request-token and
//!   access-token), [`oauth1_authorize`] (the user's Allow or Deny), [`oauth1_signed`] (the signature of a dance
//!   request), [`oauth1_callback`] (where the browser is sent back to), [`oauth1_page`] (the
//!   authorize page), [`oauth1_csrf`] (its forgery protection), [`oauth1_access`] (listing and
//!   revoking access tokens);
//! - [`lane`]: which pool answers a request (argon2 password checks apart from introspection);
//! - [`redact`]: what of a request target may be logged;
//! - [`server`]: the HTTP shell (hyper on tokio: HTTP/1.1 and h2c, limits, timeouts, shutdown).

pub mod api;
pub mod auth;
pub mod clock;
pub mod config;
pub mod http;
pub mod introspect;
pub mod lane;
pub mod links;
pub mod lockout;
pub mod login;
pub mod oauth1_access;
pub mod oauth1_authorize;
pub mod oauth1_callback;
pub mod oauth1_csrf;
pub mod oauth1_dance;
pub mod oauth1_page;
pub mod oauth1_signed;
pub mod oauth_tokens;
pub mod redact;
pub mod server;
pub mod service;
pub mod store;
pub mod tokens;
pub mod users;
