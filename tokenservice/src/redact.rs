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

    use proptest::prelude::*;

    /// Where a token is pasted into a target.
    #[derive(Debug, Clone)]
    enum Place {
        Segment,
        InsideSegment,
        ParameterName,
        ParameterValue(String),
    }

    fn place() -> impl Strategy<Value = Place> {
        prop_oneof![
            Just(Place::Segment),
            Just(Place::InsideSegment),
            Just(Place::ParameterName),
            prop_oneof![
                Just("page".to_owned()),
                Just("limit".to_owned()),
                Just("notValidAfter".to_owned()),
                Just("token".to_owned()),
                "[a-z]{1,8}",
            ]
            .prop_map(Place::ParameterValue),
        ]
    }

    /// A token's text in one of the spellings a client may paste it in.
    fn spelled(token: &str, how: u8, at: usize) -> String {
        match how % 3 {
            0 => token.to_owned(),
            1 => token.to_ascii_uppercase(),
            _ => {
                // One character percent-encoded.
                let at = at % token.len();
                let (head, tail) = token.split_at(at);
                let mut chars = tail.chars();
                let first = chars.next().map_or(0, |c| c as u32);
                format!("{head}%{first:02X}{}", chars.as_str())
            }
        }
    }

    proptest! {
        /// Whatever else the target holds, a token pasted anywhere into it, in any spelling,
        /// is not in the logged line.
        #[test]
        fn a_token_pasted_anywhere_is_never_logged(
            lookup in "[0-9a-f]{24}",
            secret in "[A-Za-z0-9_-]{43}",
            segments in proptest::collection::vec("[A-Za-z0-9._~-]{0,10}", 0..6),
            at in 0usize..6,
            pairs in proptest::collection::vec(("[a-zA-Z]{1,8}", "[0-9a-z-]{0,10}"), 0..4),
            place in place(),
            how in 0u8..3,
            position in 0usize..80,
        ) {
            let token = format!("tgat_{lookup}_{secret}");
            let pasted = spelled(&token, how, position);
            let mut segments = segments;
            let mut pairs: Vec<(String, String)> = pairs;
            let at = at.min(segments.len());
            match &place {
                Place::Segment => segments.insert(at, pasted),
                Place::InsideSegment => segments.insert(at, format!("x{pasted}y")),
                Place::ParameterName => pairs.insert(0, (pasted, "1".to_owned())),
                Place::ParameterValue(name) => pairs.push((name.clone(), pasted)),
            }
            let mut url = format!("/{}", segments.join("/"));
            if !pairs.is_empty() {
                let query: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
                url = format!("{url}?{}", query.join("&"));
            }
            let logged = target(&url).to_ascii_lowercase();
            prop_assert!(!logged.contains(&secret.to_ascii_lowercase()), "{} -> {}", url, logged);
            prop_assert!(!logged.contains("tgat_"), "{} -> {}", url, logged);
        }

        /// A target with nothing secret-shaped in it is logged unchanged; any target is logged
        /// in at most MAX_LOGGED bytes (and a "...").
        #[test]
        fn plain_targets_are_kept_and_every_target_is_bounded(
            segments in proptest::collection::vec("[A-Za-z0-9._~-]{0,32}", 0..8),
            page in proptest::option::of(0u32..1000),
            anything in "\\PC{0,2000}",
        ) {
            let mut url = format!("/{}", segments.join("/"));
            if let Some(page) = page {
                url = format!("{url}?page={page}&limit=50&notValidAfter=-1");
            }
            prop_assume!(!url.to_ascii_lowercase().contains("tgat_") && url.len() <= MAX_LOGGED);
            prop_assert_eq!(target(&url), url);
            prop_assert!(target(&anything).len() <= MAX_LOGGED + 3);
        }
    }
}
