//! Where the OAuth 1.0a dance sends the user's browser back to: the consumer's `oauth_callback`
//! (RFC 5849 section 2.1), checked against the prefixes configured for that consumer, or `oob`
//! (out of band: the verifier is shown on a page for the user to copy).
//!
//! An open redirect is the risk: a request token made with `oauth_callback=https://evil/` would
//! send the user, the request token and the verifier to anyone who asked. So a callback is
//! allowed only when it starts with a configured prefix, and a prefix must name its host whole
//! (`scheme://host[:port]/...`, the `/` after the authority required), so that
//! `http://127.0.0.1:8765` cannot be extended into `http://127.0.0.1:8765.evil.example/`.
//! Matching is byte for byte (no case folding, no decoding): what is compared is what the
//! browser will be sent to.

/// The out-of-band callback (RFC 5849 section 2.1), always allowed.
pub const OOB: &str = "oob";

/// The longest callback accepted (bytes). It goes into a `Location` header and a page.
pub const MAX_CALLBACK: usize = 2048;

/// Whether every byte of `url` is one a URL may hold unescaped (RFC 3986 section 2, less `#`:
/// a fragment would swallow the query the verifier is added to).
fn url_chars(url: &str) -> bool {
    url.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~:/?[]@!$&'()*+,;=%".contains(&b))
}

/// `scheme://authority` and the rest (from the `/` after the authority), for an absolute
/// `http`/`https` URL with an authority that is a host name or IP literal and a port.
fn split(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let slash = rest.find('/')?;
    let authority = rest.get(..slash)?;
    let host_ok = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if !host_ok {
        return None;
    }
    let cut = scheme.len() + 3 + slash;
    Some((url.get(..cut)?, url.get(cut..)?))
}

/// Whether `prefix` may be configured as an allowed callback prefix: an absolute `http(s)` URL
/// whose authority is a host (letters, digits, `.`, `-`, an IP literal) and a port, followed by
/// at least `/`, with URL characters only.
pub fn valid_prefix(prefix: &str) -> bool {
    prefix.len() <= MAX_CALLBACK && url_chars(prefix) && split(prefix).is_some()
}

/// Whether a consumer's `oauth_callback` is allowed: `oob`, or a URL of URL characters that
/// starts with one of `prefixes` (each [`valid_prefix`]).
pub fn allowed(callback: &str, prefixes: &[String]) -> bool {
    if callback == OOB {
        return true;
    }
    callback.len() <= MAX_CALLBACK
        && url_chars(callback)
        && split(callback).is_some()
        && prefixes
            .iter()
            .any(|prefix| callback.starts_with(prefix.as_str()))
}

/// The origin (`scheme://host[:port]`) of an allowed callback, for the page's
/// `Content-Security-Policy: form-action` (browsers apply it to the redirect after the form is
/// posted); `None` for `oob`.
pub fn origin(callback: &str) -> Option<&str> {
    split(callback).map(|(origin, _)| origin)
}

/// Where the browser goes after the user's decision: the callback with `oauth_token` and
/// `oauth_verifier` added to its query (RFC 5849 section 2.2).
pub fn redirect(callback: &str, token: &str, verifier: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("oauth_token", token)
        .append_pair("oauth_verifier", verifier)
        .finish();
    let separator = match callback.contains('?') {
        true if callback.ends_with(['?', '&']) => "",
        true => "&",
        false => "?",
    };
    format!("{callback}{separator}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_must_name_its_host_whole() {
        let table = [
            ("http://127.0.0.1:8765/", true),
            ("https://app.example.com/oauth/callback", true),
            ("HTTPS://App.Example.com/", true),
            ("http://[::1]:8765/cb", true),
            // No `/` after the host: `http://127.0.0.1:8765.evil.example/` would match.
            ("http://127.0.0.1:8765", false),
            ("https://app.example.com", false),
            ("ftp://app.example.com/", false),
            ("//app.example.com/", false),
            ("app.example.com/", false),
            ("https:///", false),
            ("https://user@app.example.com/", false),
            ("https://app.example.com/a b", false),
            ("https://app.example.com/#x", false),
            ("https://app.example.com/\"<script>", false),
            ("oob", false),
            ("", false),
        ];
        for (prefix, ok) in table {
            assert_eq!(valid_prefix(prefix), ok, "{prefix}");
        }
    }

    #[test]
    fn a_callback_is_allowed_when_it_is_oob_or_under_a_configured_prefix() {
        let prefixes = vec![
            "http://127.0.0.1:8765/".to_owned(),
            "https://app.example.com/oauth/".to_owned(),
        ];
        let table = [
            ("oob", true),
            ("http://127.0.0.1:8765/", true),
            ("http://127.0.0.1:8765/done?state=1", true),
            ("https://app.example.com/oauth/callback", true),
            ("http://127.0.0.1:8765.evil.example/", false),
            ("http://127.0.0.1:8766/", false),
            ("https://127.0.0.1:8765/", false),
            ("https://app.example.com/other", false),
            ("https://app.example.com/oauth", false),
            ("https://evil.example/?https://app.example.com/oauth/", false),
            ("http://127.0.0.1:8765/#fragment", false),
            ("http://127.0.0.1:8765/a\r\nSet-Cookie: x=1", false),
            ("http://127.0.0.1:8765/\"><script>", false),
            ("OOB", false),
            ("", false),
        ];
        for (callback, ok) in table {
            assert_eq!(allowed(callback, &prefixes), ok, "{callback}");
        }
        let long = format!("http://127.0.0.1:8765/{}", "a".repeat(MAX_CALLBACK));
        assert!(!allowed(&long, &prefixes));
        assert!(allowed("oob", &[]));
        assert!(!allowed("http://127.0.0.1:8765/", &[]));
    }

    #[test]
    fn the_redirect_adds_token_and_verifier_to_the_callbacks_query() {
        let table = [
            (
                "http://127.0.0.1:8765/",
                "http://127.0.0.1:8765/?oauth_token=t&oauth_verifier=v",
            ),
            (
                "http://127.0.0.1:8765/cb?state=1",
                "http://127.0.0.1:8765/cb?state=1&oauth_token=t&oauth_verifier=v",
            ),
            (
                "http://127.0.0.1:8765/cb?",
                "http://127.0.0.1:8765/cb?oauth_token=t&oauth_verifier=v",
            ),
        ];
        for (callback, expected) in table {
            assert_eq!(redirect(callback, "t", "v"), expected);
        }
        assert_eq!(
            redirect("http://h/", "a b", "denied"),
            "http://h/?oauth_token=a+b&oauth_verifier=denied"
        );
    }

    #[test]
    fn the_origin_of_a_callback_is_its_scheme_and_authority() {
        assert_eq!(
            origin("http://127.0.0.1:8765/cb?x=1"),
            Some("http://127.0.0.1:8765")
        );
        assert_eq!(
            origin("https://app.example.com/"),
            Some("https://app.example.com")
        );
        assert_eq!(origin("oob"), None);
    }
}
