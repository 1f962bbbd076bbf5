//! The pages of the OAuth 1.0a authorize step: plain HTML a user (or a test, as a browser
//! would) fills in and posts. No script, no style, no external resource.
//!
//! Every value written into a page is HTML-escaped ([`escape`]), attribute or text alike: the
//! consumer's name comes from the configuration, but the user name echoed back after a failed
//! login and the tokens come from the request. Every page is answered with
//! `cache-control: no-store` (it holds a request token and a CSRF value),
//! `x-frame-options: DENY` and a `content-security-policy` of `default-src 'none'` (nothing
//! loads, nothing runs, no framing: clickjacking the Allow button is out) whose `form-action`
//! allows this service and the consumer's callback origin only (browsers apply `form-action`
//! to the redirect that follows the post, too).

use crate::http::Response;

/// The path the form posts to (and that the CSRF cookie is scoped under).
pub const AUTHORIZE_PATH: &str = "/plugins/servlet/oauth/authorize";

/// `text` with `&`, `<`, `>`, `"` and `'` replaced by character references: safe in element
/// content and in quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What the authorize form shows.
#[derive(Debug, Clone, Copy)]
pub struct Form<'a> {
    /// The consumer's configured name.
    pub consumer_name: &'a str,
    /// The request token, posted back in a hidden field.
    pub oauth_token: &'a str,
    /// The CSRF value, posted back in the hidden `atl_token` field.
    pub atl_token: &'a str,
    /// Why the previous attempt failed, shown above the form.
    pub error: Option<&'a str>,
    /// The user name to fill in again after a failed attempt.
    pub username: Option<&'a str>,
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"UTF-8\">\n<title>{}</title>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    )
}

/// The authorize page: the consumer's name, a login, Allow and Deny.
pub fn authorize(form: &Form<'_>) -> String {
    let name = escape(form.consumer_name);
    let error = form.error.map_or_else(String::new, |message| {
        format!("<p id=\"error\" role=\"alert\">{}</p>\n", escape(message))
    });
    let body = format!(
        "<h1>Allow {name} to access your account?</h1>\n\
         <p>The application <strong id=\"consumer_name\">{name}</strong> asks to act as you through the REST API. \
         Log in with your password or an API token to decide.</p>\n\
         {error}\
         <form method=\"post\" action=\"{action}\">\n\
         <input type=\"hidden\" name=\"oauth_token\" value=\"{token}\">\n\
         <input type=\"hidden\" name=\"atl_token\" value=\"{atl}\">\n\
         <p><label for=\"os_username\">Username</label>\n\
         <input type=\"text\" id=\"os_username\" name=\"os_username\" value=\"{user}\" autocomplete=\"username\" required></p>\n\
         <p><label for=\"os_password\">Password or API token</label>\n\
         <input type=\"password\" id=\"os_password\" name=\"os_password\" autocomplete=\"current-password\" required></p>\n\
         <p><button type=\"submit\" name=\"approve\" value=\"Allow\">Allow</button>\n\
         <button type=\"submit\" name=\"deny\" value=\"Deny\">Deny</button></p>\n\
         </form>\n",
        action = AUTHORIZE_PATH,
        token = escape(form.oauth_token),
        atl = escape(form.atl_token),
        user = escape(form.username.unwrap_or_default()),
    );
    document(&format!("Allow {}?", form.consumer_name), &body)
}

/// The out-of-band answer to Allow: the verifier for the user to give the application.
pub fn verifier(consumer_name: &str, verifier: &str) -> String {
    let body = format!(
        "<h1>Access allowed</h1>\n<p>Give this verification code to <strong>{}</strong>:</p>\n\
         <p><code id=\"oauth_verifier\">{}</code></p>\n",
        escape(consumer_name),
        escape(verifier)
    );
    document("Access allowed", &body)
}

/// The out-of-band answer to Deny.
pub fn denied(consumer_name: &str) -> String {
    let body = format!(
        "<h1>Access denied</h1>\n<p><strong>{}</strong> was not given access to your account.</p>\n",
        escape(consumer_name)
    );
    document("Access denied", &body)
}

/// A page saying why the request token cannot be decided on (`oauth_problem` named too, for
/// scripts).
pub fn problem(problem: oauth1::Problem, message: &str) -> String {
    let body = format!(
        "<h1>This authorization request cannot be completed</h1>\n<p id=\"error\" role=\"alert\">{}</p>\n\
         <p>oauth_problem: <code id=\"oauth_problem\">{}</code></p>\n",
        escape(message),
        escape(problem.name())
    );
    document("Authorization request refused", &body)
}

/// `html` as a response with the page's headers; `callback_origin` is added to `form-action`
/// (the redirect after the post goes there).
pub fn response(status: u16, html: String, callback_origin: Option<&str>) -> Response {
    let form_action = match callback_origin {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    Response {
        status,
        headers: vec![
            ("content-type".to_owned(), "text/html;charset=UTF-8".to_owned()),
            ("cache-control".to_owned(), "no-store".to_owned()),
            ("x-frame-options".to_owned(), "DENY".to_owned()),
            (
                "content-security-policy".to_owned(),
                format!("default-src 'none'; form-action {form_action}"),
            ),
            ("referrer-policy".to_owned(), "no-referrer".to_owned()),
        ],
        body: html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "\"><script>alert('x')</script>&amp;";

    #[test]
    fn escaping_leaves_no_markup_and_no_way_out_of_an_attribute() {
        let escaped = escape(HOSTILE);
        assert_eq!(
            escaped,
            "&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;amp;"
        );
        for c in ['<', '>', '"', '\''] {
            assert!(!escaped.contains(c), "{c}");
        }
        assert_eq!(escape("Demo application link"), "Demo application link");
    }

    #[test]
    fn the_form_has_the_fields_and_buttons_a_client_drives_and_escapes_every_value() {
        let page = authorize(&Form {
            consumer_name: HOSTILE,
            oauth_token: HOSTILE,
            atl_token: "csrf-value",
            error: Some(HOSTILE),
            username: Some(HOSTILE),
        });
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("\"><"), "{page}");
        for needle in [
            "<form method=\"post\" action=\"/plugins/servlet/oauth/authorize\">",
            "<input type=\"hidden\" name=\"atl_token\" value=\"csrf-value\">",
            "name=\"oauth_token\" value=\"&quot;&gt;&lt;script&gt;",
            "name=\"os_username\"",
            "name=\"os_password\"",
            "<button type=\"submit\" name=\"approve\" value=\"Allow\">",
            "<button type=\"submit\" name=\"deny\" value=\"Deny\">",
            "<p id=\"error\" role=\"alert\">&quot;&gt;",
        ] {
            assert!(page.contains(needle), "{needle} in {page}");
        }
        let plain = authorize(&Form {
            consumer_name: "Demo application link",
            oauth_token: "rt",
            atl_token: "a",
            error: None,
            username: None,
        });
        assert!(plain.contains("Demo application link") && !plain.contains("id=\"error\""));
    }

    #[test]
    fn out_of_band_pages_show_the_verifier_or_the_denial_escaped() {
        let page = verifier(HOSTILE, "v-123");
        assert!(
            page.contains("<code id=\"oauth_verifier\">v-123</code>"),
            "{page}"
        );
        assert!(!page.contains("<script>"));
        assert!(!denied(HOSTILE).contains("<script>"));
        let page = problem(oauth1::Problem::TokenExpired, HOSTILE);
        assert!(
            page.contains("token_expired") && !page.contains("<script>"),
            "{page}"
        );
    }

    #[test]
    fn pages_are_never_cached_framed_or_able_to_load_anything() {
        let header = |response: &Response, name: &str| {
            response
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let page = response(200, String::new(), None);
        assert_eq!(header(&page, "cache-control").as_deref(), Some("no-store"));
        assert_eq!(header(&page, "x-frame-options").as_deref(), Some("DENY"));
        assert_eq!(
            header(&page, "content-security-policy").as_deref(),
            Some("default-src 'none'; form-action 'self'")
        );
        assert_eq!(
            header(&page, "content-type").as_deref(),
            Some("text/html;charset=UTF-8")
        );
        let page = response(200, String::new(), Some("http://127.0.0.1:8765"));
        assert_eq!(
            header(&page, "content-security-policy").as_deref(),
            Some("default-src 'none'; form-action 'self' http://127.0.0.1:8765")
        );
    }
}
