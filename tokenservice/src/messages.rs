//! Messages of the error bodies the service answers with.

pub const UNAUTHENTICATED: &str =
    "You are not authenticated. Authentication required to perform this operation.";
pub const ADMIN_ONLY: &str =
    "You do not have the permission to perform this operation: it is for system administrators only.";
pub const NOT_FOUND: &str = "Not found.";
pub const TOKEN_NOT_FOUND: &str = "No token with this id exists for the current user.";
pub const INTERNAL: &str = "Internal server error. Please try again later.";
pub const TOO_LARGE: &str = "The request body is too large.";
pub const NOT_JSON: &str = "The request body must be a JSON object.";
/// The filter's message for the same state (src/respond.rs `API_LOCKED`).
pub const LOCKED: &str =
    "Too many failed login attempts. Log in through the web interface to answer the CAPTCHA, or ask an administrator to reset the counter.";
