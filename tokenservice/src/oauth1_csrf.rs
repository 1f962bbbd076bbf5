//! Cross-site request forgery protection of the authorize form, as Jira's `atl_token`: the
//! form's hidden `atl_token` field must equal the `atl.xsrf.token` cookie (double submit: a
//! page on another site can make a browser post a form, but cannot read or set this site's
//! cookie, and `SameSite=Strict` keeps the browser from sending it with a cross-site post),
//! and must be the value bound to the request token the form decides on (so the value of one
//! authorization cannot approve another).
//!
//! The value is computed, not stored: `HMAC-SHA256(key, "oauth1-csrf\0" + request token)`,
//! base64url. The request token row holds only its SHA-256 (`csrf_hash`), written when the
//! request token is made, so any replica can show the form and any replica can check the post
//! without a second write. The key is the service's introspection client secret, which every
//! replica has and no client sees: knowing a request token is not enough to compute its value.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// The cookie's name (Jira's).
pub const COOKIE: &str = "atl.xsrf.token";

/// The form field's name (Jira's).
pub const FIELD: &str = "atl_token";

/// The CSRF value bound to `request_token` under `key`.
pub fn value(key: &str, request_token: &str) -> String {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).map(|mut mac| {
        mac.update(b"oauth1-csrf\0");
        mac.update(request_token.as_bytes());
        mac.finalize().into_bytes()
    });
    match mac {
        Ok(bytes) => URL_SAFE_NO_PAD.encode(bytes),
        // Unreachable; a value nobody can match refuses every post rather than accepting one.
        Err(_) => String::new(),
    }
}

/// What the request token row keeps of the value.
pub fn hash(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// `Set-Cookie` for `value`: for the dance's pages only, never readable by a script, never
/// sent with a cross-site request; `Secure` when the client reached the service over https.
pub fn set_cookie(value: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/plugins/servlet/oauth{secure}")
}

/// The `atl.xsrf.token` cookie of a request (headers lower-case); `None` when it is absent or
/// sent twice (which one the browser meant is not ours to guess).
pub fn cookie(headers: &[(String, String)]) -> Option<&str> {
    let mut found = headers
        .iter()
        .filter(|(name, _)| name == "cookie")
        .flat_map(|(_, value)| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim());
    match (found.next(), found.next()) {
        (Some(value), None) if !value.is_empty() => Some(value),
        _ => None,
    }
}

/// Why a post is refused as a possible forgery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CsrfError {
    /// No `atl_token` field, or no `atl.xsrf.token` cookie.
    Missing,
    /// Field and cookie differ, or they are not the value of this request token.
    Mismatch,
}

/// Whether a post's `field` and `cookie` are the value whose hash the request token holds
/// (`bound`). Compared in constant time.
pub fn check(field: Option<&str>, cookie: Option<&str>, bound: &[u8; 32]) -> Result<(), CsrfError> {
    let (Some(field), Some(cookie)) = (field, cookie) else {
        return Err(CsrfError::Missing);
    };
    let same = bool::from(hash(field).ct_eq(&hash(cookie)));
    let bound_ok = bool::from(hash(field).ct_eq(bound));
    match same & bound_ok {
        true => Ok(()),
        false => Err(CsrfError::Mismatch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookies: &[&str]) -> Vec<(String, String)> {
        cookies
            .iter()
            .map(|c| ("cookie".to_owned(), (*c).to_owned()))
            .collect()
    }

    #[test]
    fn the_value_is_bound_to_the_request_token_and_the_key() {
        let a = value("key-0123456789abcdef", "rt-a");
        assert_eq!(a, value("key-0123456789abcdef", "rt-a"));
        assert_eq!(a.len(), 43);
        assert_ne!(a, value("key-0123456789abcdef", "rt-b"));
        assert_ne!(a, value("other-key-0123456789", "rt-a"));
    }

    #[test]
    fn a_post_needs_the_cookie_the_field_and_this_request_tokens_value() {
        let key = "key-0123456789abcdef";
        let mine = value(key, "rt-a");
        let theirs = value(key, "rt-b");
        let bound = hash(&mine);
        let table = [
            (Some(mine.as_str()), Some(mine.as_str()), Ok(())),
            (Some(mine.as_str()), None, Err(CsrfError::Missing)),
            (None, Some(mine.as_str()), Err(CsrfError::Missing)),
            (None, None, Err(CsrfError::Missing)),
            (
                Some(mine.as_str()),
                Some(theirs.as_str()),
                Err(CsrfError::Mismatch),
            ),
            (
                Some(theirs.as_str()),
                Some(mine.as_str()),
                Err(CsrfError::Mismatch),
            ),
            // Another request token's value, consistently in field and cookie.
            (
                Some(theirs.as_str()),
                Some(theirs.as_str()),
                Err(CsrfError::Mismatch),
            ),
            (Some(""), Some(""), Err(CsrfError::Mismatch)),
        ];
        for (field, cookie, expected) in table {
            assert_eq!(check(field, cookie, &bound), expected, "{field:?} {cookie:?}");
        }
    }

    #[test]
    fn the_cookie_is_found_among_others_and_refused_when_sent_twice() {
        let table = [
            (vec!["atl.xsrf.token=abc"], Some("abc")),
            (vec!["a=1; atl.xsrf.token=abc; b=2"], Some("abc")),
            (vec!["a=1", "atl.xsrf.token=abc"], Some("abc")),
            (vec!["atl.xsrf.token=abc; atl.xsrf.token=def"], None),
            (vec!["atl.xsrf.token=abc", "atl.xsrf.token=abc"], None),
            (vec!["atl.xsrf.token="], None),
            (vec!["xatl.xsrf.token=abc"], None),
            (vec![], None),
        ];
        for (cookies, expected) in table {
            assert_eq!(cookie(&headers(&cookies)), expected, "{cookies:?}");
        }
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_scoped_to_the_dance() {
        assert_eq!(
            set_cookie("v", false),
            "atl.xsrf.token=v; HttpOnly; SameSite=Strict; Path=/plugins/servlet/oauth"
        );
        assert!(set_cookie("v", true).ends_with("; Secure"));
    }
}
