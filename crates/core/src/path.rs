//! Request-path canonicalisation (before stage 2): the path the route rules see is the path
//! the application will act on, or the request is refused.
//!
//! Jira and Confluence run on Tomcat, whose `CoyoteAdapter.postParseRequest` reads a request
//! path in this order, and so does [`canonical`]:
//!
//! 1. `;` path parameters are stripped from every segment of the raw path (`parsePathParameters`
//!    removes `;...` up to the next `/`): `/rest/api/3;x/issue` is `/rest/api/3/issue` and
//!    `/public/..;/admin` is `/public/../admin`;
//! 2. `%XX` escapes are decoded (`UDecoder`); RFC 3986 section 6.2.2.2 makes an escaped
//!    unreserved character the character itself (`%33` is `3`, `%61` is `a`);
//! 3. the path is normalised (`CoyoteAdapter.normalize`): `//` merged, `.` and `..` segments
//!    removed, `..` above the root refused. A last `.` or `..` leaves no trailing slash
//!    (`/a/b/..` is `/a`), as Tomcat 10.1's servlets see it (checked by `tests/paths.rs`).
//!
//! Any spelling whose meaning differs between readers (Envoy's own normalisation, Tomcat,
//! Jersey, a servlet filter that reads the raw URI, a Windows file system) is refused with an
//! [`AmbiguousPath`] naming the form, never forwarded: the filter cannot vouch for which rule
//! such a request falls under.
//!
//! Which stage uses which path: the route rules (stage 2) match on the [`CanonicalPath`]; the
//! request goes upstream with the raw `:path` Envoy handed the filter (after Envoy's own
//! `normalize_path`/`merge_slashes`, when configured), unchanged but for the removed `tisjwt`
//! query parameter, and anything that signs the request (OAuth 1.0a, later) uses that raw path.

use crate::query;

/// A request path as Tomcat resolves it: starts with `/`, no query, no `;` parameters, no
/// `%` escapes, no `//`, no `.`/`..` segments. Matched case-sensitively, as Tomcat and Jersey
/// match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalPath(String);

impl CanonicalPath {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A request path the filter refuses (400) because readers disagree on what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AmbiguousPath {
    /// Empty, or not starting with `/` (absolute-form or `*`): Tomcat refuses it too.
    NotAbsolute,
    /// A `#` in the request target: a fragment is never sent (RFC 9112 section 3.2), and
    /// readers disagree on whether it ends the path.
    Fragment,
    /// `\` or `%5C`: a `/` to Windows and to servers configured with `allowBackslash`, a
    /// plain character to others.
    Backslash,
    /// `%2F`: a separator once decoded, part of a segment before (Tomcat refuses it by
    /// default, Envoy may forward, reject or decode it).
    EncodedSlash,
    /// `%3B`: a `;` that starts no path parameter for Tomcat, but does for a reader that
    /// decodes first.
    EncodedSemicolon,
    /// `%25`: double encoding (`%252e` is `%2e` to one reader and `.` to the next).
    DoubleEncoding,
    /// `%3F` or `%23`: a `?` or `#` that ends the path for a reader that decodes first.
    EncodedDelimiter,
    /// NUL or another control byte (0x00-0x1F, 0x7F), raw or escaped.
    ControlByte,
    /// `%` not followed by two hexadecimal digits.
    BrokenEscape,
    /// The decoded bytes are not UTF-8 (Tomcat would replace them, others would not).
    NotUtf8,
    /// A segment of dots with a suffix or a trailing dot (`..x`, `...`, `rest.`): a plain name
    /// to Tomcat, a dot segment or the name without its dots to other readers.
    DotSegment,
    /// `..` above the root (Tomcat answers 400).
    AboveRoot,
    /// On a rule the filter does not authenticate (`"providers": []`), a spelling that does
    /// not start with the rule's prefix as written (`/rest;x/tokens/`, `/rest/tok%65ns/`):
    /// Envoy's routes match the spelling, so it could reach another upstream than the rule's
    /// with the credentials the rule passes unchecked.
    RespelledPrefix,
}

/// The path Tomcat will act on for the request target `raw` (`:path`, query included), or
/// why no single answer exists. See the module documentation for the order of the steps.
pub fn canonical(raw: &str) -> Result<CanonicalPath, AmbiguousPath> {
    let path = raw.split('?').next().unwrap_or_default();
    if !path.starts_with('/') {
        return Err(AmbiguousPath::NotAbsolute);
    }
    // Escapes are checked in the whole path, parameters included: a reader that does not
    // strip parameters (or strips them after decoding) must not see what Tomcat does not.
    check_bytes(path.as_bytes())?;
    let mut segments: Vec<String> = Vec::new();
    let mut trailing_slash = false;
    // The first piece is the empty string before the leading `/`.
    for raw_segment in path.split('/').skip(1) {
        // 1. Path parameters: everything from the first `;` of a segment to its end.
        let without_params = raw_segment.split(';').next().unwrap_or_default();
        // 2. Percent-decoding (the escapes were checked above: only bytes that are not UTF-8
        // are left to fail).
        let segment = query::percent_decode(without_params).ok_or(AmbiguousPath::NotUtf8)?;
        // 3. Normalisation.
        // Tomcat 10.1 keeps the slash of an empty last segment (`/a/`, `/a/;x`) but not of
        // a last `.` or `..` (`/a/b/..` is `/a`, as its servlets see it).
        trailing_slash = segment.is_empty();
        match segment.as_str() {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(AmbiguousPath::AboveRoot);
                }
            }
            name if name.starts_with("..") || name.ends_with('.') => return Err(AmbiguousPath::DotSegment),
            _ => segments.push(segment),
        }
    }
    let mut canonical = String::with_capacity(path.len());
    for segment in &segments {
        canonical.push('/');
        canonical.push_str(segment);
    }
    if trailing_slash || segments.is_empty() {
        canonical.push('/');
    }
    Ok(CanonicalPath(canonical))
}

/// Whether some canonical path starts with `prefix` (a rule's `path_prefix`): `/rest/api/%33/`,
/// `/a;x/` or `/a//` never would, since rules match the decoded, parameter-free path.
pub fn can_start_a_canonical_path(prefix: &str) -> bool {
    canonical(&format!("{prefix}x")).is_ok_and(|path| path.as_str().starts_with(prefix))
}

/// Refuses raw bytes and escapes that readers disagree on; afterwards every `%` starts a
/// well-formed escape of a byte that may be decoded.
fn check_bytes(bytes: &[u8]) -> Result<(), AmbiguousPath> {
    let mut rest = bytes;
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        let decoded = match byte {
            b'%' => {
                let value = query::escape_at(rest, 0).ok_or(AmbiguousPath::BrokenEscape)?;
                rest = rest.get(2..).unwrap_or_default();
                match value {
                    b'/' => return Err(AmbiguousPath::EncodedSlash),
                    b';' => return Err(AmbiguousPath::EncodedSemicolon),
                    b'%' => return Err(AmbiguousPath::DoubleEncoding),
                    b'?' | b'#' => return Err(AmbiguousPath::EncodedDelimiter),
                    _ => value,
                }
            }
            b'#' => return Err(AmbiguousPath::Fragment),
            other => other,
        };
        if decoded == b'\\' {
            return Err(AmbiguousPath::Backslash);
        }
        if decoded < 0x20 || decoded == 0x7f {
            return Err(AmbiguousPath::ControlByte);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::AmbiguousPath::*;
    use super::*;

    fn canon(raw: &str) -> Result<String, AmbiguousPath> {
        canonical(raw).map(|p| p.as_str().to_owned())
    }

    #[test]
    fn every_walk_past_form_of_issue_10_resolves_as_tomcat_resolves_it() {
        for (raw, expected) in [
            ("/rest/api/3;/issue", "/rest/api/3/issue"),
            ("/rest/api/3;jsessionid=abc/issue", "/rest/api/3/issue"),
            ("/rest;x/api/3/issue", "/rest/api/3/issue"),
            ("/rest/api/2/..;/3/issue", "/rest/api/3/issue"),
            ("/rest/api/2/.;/../3/issue", "/rest/api/3/issue"),
            ("/rest/api/%33/issue", "/rest/api/3/issue"),
            ("/rest/%61pi/3/issue", "/rest/api/3/issue"),
            ("/public/..;/admin/x", "/admin/x"),
            ("/public/%2e%2e/admin/x", "/admin/x"),
            ("/public/%2E%2E/admin/x", "/admin/x"),
            ("/public/.%2e/admin/x", "/admin/x"),
            ("/rest/api/3;a=b;c=d/issue;x?q=1", "/rest/api/3/issue"),
        ] {
            assert_eq!(canon(raw), Ok(expected.to_owned()), "{raw}");
        }
    }

    #[test]
    fn every_ambiguous_form_is_refused_with_its_name() {
        for (raw, refusal) in [
            ("/rest/api%2F3/issue", EncodedSlash),
            ("/rest/api%2f3/issue", EncodedSlash),
            ("/rest\\api/3", Backslash),
            ("/rest/%5Capi/3", Backslash),
            ("/rest/%5capi/3", Backslash),
            ("/rest/api/3%3B/issue", EncodedSemicolon),
            ("/rest/api/%252e%252e/x", DoubleEncoding),
            ("/rest/%25", DoubleEncoding),
            ("/rest/a%3Fb", EncodedDelimiter),
            ("/rest/a%23b", EncodedDelimiter),
            ("/rest/a#b", Fragment),
            ("/rest/%00/x", ControlByte),
            ("/rest/a\0b", ControlByte),
            ("/rest/%0a", ControlByte),
            ("/rest/%7F", ControlByte),
            ("/rest/a\tb", ControlByte),
            ("/rest/%", BrokenEscape),
            ("/rest/%4", BrokenEscape),
            ("/rest/%zz", BrokenEscape),
            ("/rest/%C3%28", NotUtf8),
            ("/rest/%FF", NotUtf8),
            ("/rest./api/3/issue", DotSegment),
            ("/rest/api/3/issue.", DotSegment),
            ("/rest/..x/api", DotSegment),
            ("/rest/.../api", DotSegment),
            ("/rest/%2e%2e%2e/api", DotSegment),
            ("/rest/api/3%2e/issue", DotSegment),
            ("/rest/...;/x", DotSegment),
            ("/..", AboveRoot),
            ("/../rest", AboveRoot),
            ("/rest/../../x", AboveRoot),
            ("/..;/rest", AboveRoot),
            ("/%2e%2e/rest", AboveRoot),
            ("", NotAbsolute),
            ("*", NotAbsolute),
            ("http://jira.test/rest", NotAbsolute),
            ("rest/api", NotAbsolute),
        ] {
            assert_eq!(canon(raw), Err(refusal), "{raw:?}");
        }
    }

    #[test]
    fn escapes_are_checked_inside_path_parameters_too() {
        assert_eq!(canon("/rest;x=%2F/api"), Err(EncodedSlash));
        assert_eq!(canon("/rest;x=%/api"), Err(BrokenEscape));
        assert_eq!(canon("/rest;x=a\\b/api"), Err(Backslash));
    }

    #[test]
    fn a_rule_prefix_must_be_able_to_start_a_canonical_path() {
        for prefix in ["/", "/rest/", "/rest/api/3", "/rest/de.", "/.well-known/", "/a b"] {
            assert!(can_start_a_canonical_path(prefix), "{prefix}");
        }
        for prefix in [
            "/rest/api/%33/",
            "/a;x/",
            "/a//",
            "/a/./",
            "/a/../",
            "/rest/..",
            "/a%",
            "/a\\",
            "/a?",
        ] {
            assert!(!can_start_a_canonical_path(prefix), "{prefix}");
        }
    }

    #[test]
    fn normalisation_follows_tomcat() {
        for (raw, expected) in [
            ("/", "/"),
            ("//", "/"),
            ("/.", "/"),
            ("/a/..", "/"),
            ("/a/b/..", "/a"),
            ("/a/b/../", "/a/"),
            ("/a/.", "/a"),
            ("/a/.;x", "/a"),
            ("/a/b/.%2e", "/a"),
            ("/a/", "/a/"),
            ("/a//b///c", "/a/b/c"),
            ("/a/./b/../c", "/a/c"),
            ("/a;x", "/a"),
            ("/a/;x", "/a/"),
            ("/;x/a", "/a"),
            ("/a/b;x/", "/a/b/"),
            ("/a?b=/../c", "/a"),
            ("/a?x=%zz#frag", "/a"),
            (
                "/.well-known/openid-configuration",
                "/.well-known/openid-configuration",
            ),
            ("/a..b/c.d/.e", "/a..b/c.d/.e"),
            ("/rest/api/2/issue/X-1", "/rest/api/2/issue/X-1"),
            ("/caf%C3%A9/%7euser", "/café/~user"),
            ("/a%20b/%2B/%3A%40", "/a b/+/:@"),
            ("/REST/Api", "/REST/Api"),
        ] {
            assert_eq!(canon(raw), Ok(expected.to_owned()), "{raw}");
        }
    }
}
