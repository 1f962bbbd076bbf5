//! The query string of a request path: finding a parameter and removing it without
//! disturbing the rest (order, encoding and empty parameters are kept byte for byte).

use basic_auth::hex_value;

/// Splits `/a/b?x=1` into `("/a/b", Some("x=1"))`.
pub fn split_path(path: &str) -> (&str, Option<&str>) {
    match path.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (path, None),
    }
}

/// One `name=value` pair of a query string, still percent-encoded; `name` without `=` has the
/// value "".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

/// The pairs of the query string of `path`, in order, split on `&` only (as Tomcat's
/// `Parameters` splits them; `;` is not a separator). Empty pairs (`a=1&&b=2`) are skipped.
pub fn pairs(path: &str) -> impl Iterator<Item = Pair<'_>> {
    let (_, query) = split_path(path);
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Pair { name, value }
        })
}

/// `path` with every pair whose raw name `remove` says yes to removed; the other pairs stay
/// byte for byte and in order, and `?` is dropped when nothing is left.
pub fn remove_params(path: &str, remove: impl Fn(&str) -> bool) -> String {
    let (base, Some(query)) = split_path(path) else {
        return path.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !remove(pair.split_once('=').map_or(*pair, |(name, _)| name)))
        .collect();
    if kept.iter().all(|pair| pair.is_empty()) {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

/// A parameter name as Tomcat decodes it (`application/x-www-form-urlencoded`: `+` is a
/// space, `%XX` a byte, the bytes UTF-8). `None` for a broken escape or bytes that are not
/// UTF-8: Tomcat drops such a parameter ("Character decoding failed").
pub fn decode_name(raw: &str) -> Option<String> {
    percent_decode(&raw.replace('+', " "))
}

/// A broken parameter name as the most lenient reader could take it: `+` a space, every
/// valid `%XX` decoded, every `%` that starts no valid escape dropped, and bytes that are not
/// UTF-8 replaced. What a careless decoder might still hand an application.
pub fn decode_name_leniently(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escape = (b == b'%').then(|| escape_at(bytes, i + 1)).flatten();
        match (b, escape) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'%', None) => i += 1,
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (other, _) => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes `%XX` escapes (`+` is left alone: no credential this filter reads contains a space).
/// `None` for a broken escape or a result that is not UTF-8.
pub fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            out.push(escape_at(bytes, i + 1)?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The byte of the two hexadecimal digits at `bytes[at..at + 2]` (the rest of a `%XX`
/// escape, RFC 3986 section 2.1): exactly two of `0-9`, `a-f`, `A-F`, nothing else (not the
/// sign `u8::from_str_radix` would accept, as in `%+7`).
pub(crate) fn escape_at(bytes: &[u8], at: usize) -> Option<u8> {
    match bytes.get(at..at + 2)? {
        [high, low] => Some(hex_value(*high)? << 4 | hex_value(*low)?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(path: &str) -> Vec<(&str, &str)> {
        pairs(path).map(|p| (p.name, p.value)).collect()
    }

    #[test]
    fn pairs_are_split_on_ampersands_only_and_kept_encoded() {
        assert_eq!(
            names("/p?a=1&tisjwt=x&b=2"),
            [("a", "1"), ("tisjwt", "x"), ("b", "2")]
        );
        assert_eq!(names("/p?%74isjwt=x&&t;x=y"), [("%74isjwt", "x"), ("t;x", "y")]);
        assert_eq!(names("/p?tisjwt"), [("tisjwt", "")]);
        assert_eq!(names("/p?a=b=c"), [("a", "b=c")]);
        assert!(names("/p").is_empty());
        assert!(names("/p?").is_empty());
    }

    #[test]
    fn removing_parameters_keeps_the_others_in_order_byte_for_byte() {
        let tisjwt = |name: &str| name == "tisjwt";
        assert_eq!(remove_params("/p?a=1&tisjwt=x&b=2", tisjwt), "/p?a=1&b=2");
        assert_eq!(remove_params("/p?tisjwt=x", tisjwt), "/p");
        assert_eq!(remove_params("/p?tisjwt=x&tisjwt=y&z=%20", tisjwt), "/p?z=%20");
        assert_eq!(remove_params("/p?a=1", tisjwt), "/p?a=1");
        assert_eq!(remove_params("/p?a=1&&b", tisjwt), "/p?a=1&&b");
        assert_eq!(remove_params("/p", tisjwt), "/p");
        assert_eq!(remove_params("/p?tisjwt", tisjwt), "/p");
    }

    #[test]
    fn names_decode_as_tomcat_decodes_them() {
        assert_eq!(decode_name("%74is%4Awt").as_deref(), Some("tisJwt"));
        assert_eq!(decode_name("a+b").as_deref(), Some("a b"));
        assert_eq!(decode_name("%2B").as_deref(), Some("+"));
        assert_eq!(decode_name("%C4%B0").as_deref(), Some("\u{130}"));
        assert_eq!(decode_name("tis%zzjwt"), None);
        assert_eq!(decode_name("tisjwt%"), None);
        assert_eq!(decode_name("tisjwt%ff"), None);
    }

    #[test]
    fn lenient_name_decoding_drops_broken_escapes() {
        assert_eq!(decode_name_leniently("tis%jwt"), "tisjwt");
        assert_eq!(decode_name_leniently("tisjwt%"), "tisjwt");
        assert_eq!(decode_name_leniently("tis%zzjwt"), "tiszzjwt");
        assert_eq!(decode_name_leniently("%74isjwt%ff"), "tisjwt\u{fffd}");
        assert_eq!(decode_name_leniently("a+%2B"), "a +");
    }

    #[test]
    fn percent_decoding_is_strict() {
        assert_eq!(percent_decode("a%2Eb").as_deref(), Some("a.b"));
        assert_eq!(percent_decode("a+b").as_deref(), Some("a+b"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(percent_decode("%e2%82%ac").as_deref(), Some("€"));
        // A sign is not a hexadecimal digit (Tomcat's UDecoder refuses `%+7`, `%-0`).
        assert_eq!(percent_decode("%+7"), None);
        assert_eq!(percent_decode("a%-0"), None);
        assert_eq!(decode_name("tisjwt%+0"), None);
        assert_eq!(decode_name_leniently("tisjwt%+0"), "tisjwt 0");
    }
}
