//! OAuth 1.0a signed requests (RFC 5849), pure: no proxy-wasm, no I/O. What the filter and
//! the token service both need to check a request signed by an application link (Jira's
//! OAuth 1.0a consumers, RSA-SHA1):
//!
//! 1. [`header::parse`] reads `Authorization: OAuth ...` (section 3.5.1);
//! 2. [`base_string::base_string`] builds the signature base string (section 3.4.1) from the
//!    method, the [`base_string::BaseUri`] the client saw, the query, the header's parameters
//!    and a form body;
//! 3. [`signature::verify`] checks the signature with the consumer's [`signature::ConsumerKey`];
//! 4. [`freshness::check_timestamp`] and a [`freshness::NonceStore`] refuse replays.
//!
//! Every failure maps to a [`problem::Problem`], the `oauth_problem` name Jira answers with.

pub mod base_string;
pub mod encode;
pub mod freshness;
pub mod header;
pub mod problem;
pub mod signature;

pub use base_string::{base_string, BaseStringError, BaseUri};
pub use freshness::{check_timestamp, MemoryNonces, NonceKey, NonceRefusal, NonceStore};
pub use header::{parse, Authorization, HeaderError};
pub use problem::Problem;
pub use signature::{verify, ConsumerKey, Credentials, KeyError, SignatureError, SignatureMethod};
