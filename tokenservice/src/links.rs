//! The public base URL of the links the service writes (`tokensByFilter`'s `paginationLinks`).
//!
//! A link must point where the client can follow it: the base URL the client used, which is
//! the same whichever Envoy or replica carried the request (Envoys and replicas sit behind one
//! public name). The request says which one it used in `X-Forwarded-Proto` (which Envoy sets
//! at the edge, `use_remote_address`), `X-Forwarded-Host` (when a proxy rewrote `Host`) and
//! `Host`. Those are client input: written into a link as they are, one `Host: evil.example`
//! would make the service hand out links to an attacker's host (a cache in front would keep
//! them for everyone). So they only *choose* among base URLs the operator configured:
//!
//! 1. the entry of `public_base_urls` whose origin (scheme, host, port; host and scheme without
//!    regard to case, `:80`/`:443` as their scheme's default) is the request's;
//! 2. otherwise the canonical one: `base_url`, or the first entry of `public_base_urls`;
//! 3. otherwise none: links are relative (`/rest/...`), which every client resolves against
//!    the URL it used. The `Host` header alone is never trusted.

/// A configured base URL: `http(s)://host[:port][/path]`, no trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// As configured, less a trailing `/`: what links start with.
    text: String,
    /// `scheme://host[:port]`, lower-case, default port dropped: what requests are matched by.
    origin: String,
}

impl BaseUrl {
    /// Parses a configured base URL; `None` if it is not `http(s)://host[:port][/path]` with a
    /// host of letters, digits, `-` and `.` (or a bracketed IPv6 literal) and a path without
    /// query, fragment, user info or characters a JSON link or a header could be broken by.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim_end_matches('/');
        let (scheme, rest) = text.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let (authority, path) = rest.find('/').map_or((rest, ""), |at| rest.split_at(at));
        let origin = origin(&scheme, authority)?;
        let path_ok = path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~/%!$&'()*+,;=:@".contains(&b));
        if !path_ok {
            return None;
        }
        Some(Self {
            text: text.to_owned(),
            origin,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// `scheme://host[:port]`, normalised; `None` if `authority` is not a plain host and port.
fn origin(scheme: &str, authority: &str) -> Option<String> {
    let authority = authority.to_ascii_lowercase();
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (address, after) = v6.split_once(']')?;
            if address.is_empty()
                || !address
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b":.".contains(&b))
            {
                return None;
            }
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':')?),
            };
            (format!("[{address}]"), port)
        }
        None => {
            let (host, port) = match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority.as_str(), None),
            };
            if host.is_empty()
                || !host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
            {
                return None;
            }
            (host.to_owned(), port)
        }
    };
    let port = match port {
        None => None,
        Some(port) => {
            let number: u16 = port
                .parse()
                .ok()
                .filter(|_| port.bytes().all(|b| b.is_ascii_digit()))?;
            let default = if scheme == "https" { 443 } else { 80 };
            (number != default).then_some(number)
        }
    };
    Some(match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    })
}

/// The first value of the one header `name` (a list's first entry is the client's own).
fn first_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let mut values = headers.iter().filter(|(n, _)| n == name);
    let (_, value) = values.next()?;
    // Two headers of one name are a proxy chain nobody configured: trust neither.
    if values.next().is_some() {
        return None;
    }
    value.split(',').next().map(str::trim).filter(|v| !v.is_empty())
}

/// The origin the request says the client used, if it says one clearly.
fn request_origin(headers: &[(String, String)]) -> Option<String> {
    let scheme = match first_value(headers, "x-forwarded-proto") {
        Some(proto) if proto.eq_ignore_ascii_case("https") => "https",
        Some(proto) if proto.eq_ignore_ascii_case("http") => "http",
        Some(_) => return None,
        None => "http",
    };
    let host = first_value(headers, "x-forwarded-host").or_else(|| first_value(headers, "host"))?;
    origin(scheme, host)
}

/// The base URL of links in the answer to a request with `headers` (names lower-case): see the
/// module documentation. `""` means relative links.
pub fn base_for<'a>(
    public: &'a [BaseUrl],
    canonical: Option<&'a BaseUrl>,
    headers: &[(String, String)],
) -> &'a str {
    let used = request_origin(headers);
    let matching = used
        .as_deref()
        .and_then(|used| public.iter().find(|base| base.origin == used));
    matching
        .or(canonical)
        .or_else(|| public.first())
        .map_or("", BaseUrl::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn bases(texts: &[&str]) -> Vec<BaseUrl> {
        texts.iter().map(|t| BaseUrl::parse(t).unwrap()).collect()
    }

    #[test]
    fn base_urls_are_parsed_and_normalised_for_matching() {
        let cases = [
            (
                "https://jira.example.com/",
                "https://jira.example.com",
                "https://jira.example.com",
            ),
            (
                "HTTPS://Jira.Example.com:443/jira",
                "HTTPS://Jira.Example.com:443/jira",
                "https://jira.example.com",
            ),
            (
                "http://127.0.0.1:8080",
                "http://127.0.0.1:8080",
                "http://127.0.0.1:8080",
            ),
            ("http://[::1]:80", "http://[::1]:80", "http://[::1]"),
        ];
        for (text, kept, origin) in cases {
            let base = BaseUrl::parse(text).unwrap();
            assert_eq!((base.as_str(), base.origin.as_str()), (kept, origin), "{text}");
        }
    }

    #[test]
    fn what_is_not_a_plain_base_url_is_refused() {
        for text in [
            "jira.example.com",
            "ftp://jira.example.com",
            "https://",
            "https://user@jira.example.com",
            "https://jira.example.com:99999",
            "https://jira.example.com:+80",
            "https://jira.example.com/a b",
            "https://jira.example.com/?q=1",
            "https://jira.example.com/#x",
            "https://evil\"<>",
            "https://[zz]",
        ] {
            assert_eq!(BaseUrl::parse(text), None, "{text}");
        }
    }

    #[test]
    fn the_base_url_the_client_used_is_chosen_from_the_configured_ones() {
        let public = bases(&["https://jira.example.com", "http://127.0.0.1:8080/jira"]);
        let cases: [(&[(&str, &str)], &str); 7] = [
            // Through any Envoy at the edge: Host is the public name, the scheme Envoy's.
            (
                &[("host", "jira.example.com"), ("x-forwarded-proto", "https")],
                "https://jira.example.com",
            ),
            (
                &[("host", "JIRA.example.com:443"), ("x-forwarded-proto", "HTTPS")],
                "https://jira.example.com",
            ),
            (&[("host", "127.0.0.1:8080")], "http://127.0.0.1:8080/jira"),
            // A proxy that rewrote Host says where the client went.
            (
                &[
                    ("host", "tokens.internal:9090"),
                    ("x-forwarded-host", "jira.example.com, other"),
                    ("x-forwarded-proto", "https"),
                ],
                "https://jira.example.com",
            ),
            // The right host with the wrong scheme is another origin: the canonical one.
            (&[("host", "jira.example.com")], "https://jira.example.com"),
            // An attacker's Host, or a forged X-Forwarded-Host, picks nothing.
            (
                &[("host", "evil.example"), ("x-forwarded-proto", "https")],
                "https://jira.example.com",
            ),
            (
                &[("host", "127.0.0.1:8080"), ("x-forwarded-host", "evil.example")],
                "https://jira.example.com",
            ),
        ];
        for (request, expected) in cases {
            assert_eq!(
                base_for(&public, None, &headers(request)),
                expected,
                "{request:?}"
            );
        }
    }

    #[test]
    fn without_a_match_the_canonical_base_url_and_without_one_relative_links() {
        let canonical = BaseUrl::parse("https://canonical.example").unwrap();
        let request = headers(&[("host", "evil.example")]);
        assert_eq!(
            base_for(&[], Some(&canonical), &request),
            "https://canonical.example"
        );
        assert_eq!(base_for(&[], None, &request), "", "Host alone is never trusted");
        let public = bases(&["https://jira.example.com"]);
        assert_eq!(
            base_for(&public, Some(&canonical), &request),
            "https://canonical.example"
        );
    }

    #[test]
    fn odd_forwarding_headers_choose_nothing() {
        let public = bases(&["https://b.example", "https://a.example"]);
        for request in [
            headers(&[("host", "a.example"), ("x-forwarded-proto", "gopher")]),
            headers(&[
                ("host", "a.example"),
                ("host", "a.example"),
                ("x-forwarded-proto", "https"),
            ]),
            headers(&[("host", "a.example\r\nx: y"), ("x-forwarded-proto", "https")]),
            headers(&[("x-forwarded-proto", "https")]),
        ] {
            assert_eq!(
                base_for(&public, None, &request),
                "https://b.example",
                "{request:?}"
            );
        }
    }
}
