//! What of a request target may be written to the log.
//!
//! Clients paste tokens where they do not belong: into a path (`DELETE /user/token/tgat_...`)
//! or a query (`?token=...`). The log keeps the shape of the request and drops anything that
//! may be a secret:
//!
//! - a path segment is kept unless, percent-decoded, it contains `tgat_` (any case: the prefix
//!   of our tokens, see [`crate::tokens`]) or is longer than [`LONGEST_KEPT`] characters (a
//!   JWT, an opaque token, a password manager's output); such a segment becomes
//!   [`REDACTED`];
//! - query parameter names are kept by the same rule; values are kept only for the paging
//!   parameters of `tokensByFilter` (`page`, `limit`, `notValidAfter`), and only when they are
//!   short and hold no token; every other value is [`REDACTED`];
//! - the result is at most [`MAX_LOGGED`] bytes.

use percent_encoding::percent_decode_str;

/// What a redacted part reads as in the log.
pub const REDACTED: &str = "<redacted>";
/// The longest path segment or parameter name kept (user keys and names are shorter).
pub const LONGEST_KEPT: usize = 32;
/// The longest request target written.
pub const MAX_LOGGED: usize = 512;
/// Query parameters whose values are never secrets.
const PLAIN_PARAMETERS: [&str; 3] = ["page", "limit", "notValidAfter"];

/// The request target `url` (path and query, as sent) as it may be logged.
pub fn target(url: &str) -> String {
    let (path, query) = match url.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (url, None),
    };
    let mut out: String = path
        .split('/')
        .map(|segment| if may_be_secret(segment) { REDACTED } else { segment })
        .collect::<Vec<_>>()
        .join("/");
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query.split('&').map(parameter).collect();
        out.push_str(&pairs.join("&"));
    }
    truncate(out)
}

fn parameter(pair: &str) -> String {
    let (name, value) = match pair.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (pair, None),
    };
    if may_be_secret(name) {
        return REDACTED.to_owned();
    }
    match value {
        None => name.to_owned(),
        Some(value) if PLAIN_PARAMETERS.contains(&name) && !may_be_secret(value) => {
            format!("{name}={value}")
        }
        Some(_) => format!("{name}={REDACTED}"),
    }
}

/// Whether `part` (percent-encoded, as sent) may hold a secret.
fn may_be_secret(part: &str) -> bool {
    let decoded = percent_decode_str(part).decode_utf8_lossy();
    decoded.chars().count() > LONGEST_KEPT || decoded.to_ascii_lowercase().contains(crate::tokens::PREFIX)
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_LOGGED {
        let mut end = MAX_LOGGED;
        while !text.is_char_boundary(end) {
            end = end.saturating_sub(1);
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "tgat_3bd0e41cc93f584d2cc8a60e_-l28L565KIsCpQ3oXu-Ybrb0zprThPP1NHM0ieBt6xY";
    const P: &str = "/rest/de.resolution.apitokenauth/latest";

    #[test]
    fn ordinary_targets_are_logged_as_they_are() {
        let cases = [
            format!("{P}/user/token"),
            format!("{P}/user/token/42"),
            format!("{P}/user/token/deleteAllFor/JIRAUSER10004"),
            format!("{P}/user/failedLogins/fred"),
            format!("{P}/user/tokensByFilter?page=1&limit=50&notValidAfter=-1"),
            "/introspect".to_owned(),
            "/".to_owned(),
        ];
        for url in cases {
            assert_eq!(target(&url), url);
        }
    }

    #[test]
    fn a_token_anywhere_in_the_target_is_never_logged() {
        let encoded = TOKEN.replacen('t', "%74", 1);
        let upper = TOKEN.to_ascii_uppercase();
        let cases = [
            format!("{P}/user/token/{TOKEN}"),
            format!("{P}/user/token/{encoded}"),
            format!("{P}/user/token/{upper}"),
            format!("{P}/user/failedLogins/fred:{TOKEN}"),
            format!("/introspect?token={TOKEN}"),
            format!("{P}/user/tokensByFilter?page={TOKEN}"),
            format!("{P}/user/tokensByFilter?{TOKEN}"),
            format!("{P}/user/tokensByFilter?{TOKEN}=1"),
            format!("/{TOKEN}/{TOKEN}?a={TOKEN}&b={TOKEN}"),
        ];
        let secret = &TOKEN[30..];
        for url in cases {
            let logged = target(&url);
            assert!(!logged.contains(secret), "{url} -> {logged}");
            assert!(
                !logged.to_ascii_lowercase().contains(&secret.to_ascii_lowercase()),
                "{url} -> {logged}"
            );
            assert!(logged.contains(REDACTED), "{url} -> {logged}");
        }
    }

    #[test]
    fn long_segments_and_unknown_parameter_values_are_redacted() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJmcmVkIn0.c2lnbmF0dXJl";
        assert_eq!(target(&format!("/a/{jwt}/b")), format!("/a/{REDACTED}/b"));
        assert_eq!(target("/x?password=hunter2"), format!("/x?password={REDACTED}"));
        assert_eq!(
            target("/x?page=2&token=abc"),
            format!("/x?page=2&token={REDACTED}")
        );
        assert_eq!(target("/x?flag"), "/x?flag");
    }

    #[test]
    fn the_logged_target_is_bounded() {
        let url = format!("/{}", "a/".repeat(10_000));
        let logged = target(&url);
        assert!(logged.len() <= MAX_LOGGED + 3, "{}", logged.len());
        let multibyte = format!("/{}", "\u{e9}/".repeat(10_000));
        assert!(target(&multibyte).len() <= MAX_LOGGED + 3);
    }
}
