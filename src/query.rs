//! The query string of a request path: finding a parameter and removing it without
//! disturbing the rest (order, encoding and empty parameters are kept byte for byte).

/// Splits `/a/b?x=1` into `("/a/b", Some("x=1"))`.
pub fn split_path(path: &str) -> (&str, Option<&str>) {
    match path.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (path, None),
    }
}

/// Every raw (still percent-encoded) value of parameter `name`; `?name` without `=` yields "".
pub fn raw_values<'a>(path: &'a str, name: &str) -> Vec<&'a str> {
    let (_, query) = split_path(path);
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
        .collect()
}

/// `path` with every occurrence of parameter `name` removed; `?` is dropped when nothing is left.
pub fn remove_param(path: &str, name: &str) -> String {
    let (base, Some(query)) = split_path(path) else {
        return path.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| pair.split_once('=').map_or(*pair, |(key, _)| key) != name)
        .collect();
    if kept.iter().all(|pair| pair.is_empty()) {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

/// Decodes `%XX` escapes (`+` is left alone: no credential this filter reads contains a space).
/// `None` for a broken escape or a result that is not UTF-8.
pub fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = raw.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_value_of_a_parameter() {
        assert_eq!(raw_values("/p?a=1&tisjwt=x&b=2", "tisjwt"), vec!["x"]);
        assert_eq!(raw_values("/p?tisjwt=x&tisjwt=y", "tisjwt"), vec!["x", "y"]);
        assert_eq!(raw_values("/p?tisjwt", "tisjwt"), vec![""]);
        assert_eq!(raw_values("/p?tisjwtx=1&xtisjwt=2", "tisjwt"), Vec::<&str>::new());
        assert_eq!(raw_values("/p", "tisjwt"), Vec::<&str>::new());
    }

    #[test]
    fn removing_a_parameter_keeps_the_others_in_order() {
        assert_eq!(remove_param("/p?a=1&tisjwt=x&b=2", "tisjwt"), "/p?a=1&b=2");
        assert_eq!(remove_param("/p?tisjwt=x", "tisjwt"), "/p");
        assert_eq!(remove_param("/p?tisjwt=x&tisjwt=y&z=%20", "tisjwt"), "/p?z=%20");
        assert_eq!(remove_param("/p?a=1", "tisjwt"), "/p?a=1");
        assert_eq!(remove_param("/p", "tisjwt"), "/p");
        assert_eq!(remove_param("/p?tisjwt", "tisjwt"), "/p");
    }

    #[test]
    fn percent_decoding_is_strict() {
        assert_eq!(percent_decode("a%2Eb").as_deref(), Some("a.b"));
        assert_eq!(percent_decode("a+b").as_deref(), Some("a+b"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(percent_decode("%e2%82%ac").as_deref(), Some("€"));
    }
}
