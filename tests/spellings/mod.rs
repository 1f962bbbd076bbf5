//! Generated request paths for the path properties (`tests/fuzz_path.rs`) and the Tomcat
//! differential test (`tests/paths.rs`): spellings of a plain path that mix `;` parameters,
//! percent-encodings in either hex case, dot segments and repeated slashes, and raw paths
//! from the alphabet readers disagree on.

#![allow(dead_code)]

use proptest::prelude::*;

/// The rules both tests configure, first match wins: anonymous, scoped, token.
pub const PUBLIC: &str = "/public/";
pub const SCOPED: &str = "/rest/api/3/";
pub const TOKEN: &str = "/rest/";

/// Every form issue 10 lists, with the path Tomcat resolves (`None`: refused by the filter).
pub const ISSUE_FORMS: &[(&str, Option<&str>)] = &[
    ("/rest/api/3;/issue", Some("/rest/api/3/issue")),
    ("/rest/api/3;jsessionid=abc/issue", Some("/rest/api/3/issue")),
    ("/rest;x/api/3/issue", Some("/rest/api/3/issue")),
    ("/rest/api/2/..;/3/issue", Some("/rest/api/3/issue")),
    ("/rest/api/2/.;/../3/issue", Some("/rest/api/3/issue")),
    ("/rest/api/%33/issue", Some("/rest/api/3/issue")),
    ("/rest/%61pi/3/issue", Some("/rest/api/3/issue")),
    ("/public/..;/admin/x", Some("/admin/x")),
    ("/public/..;/rest/api/3/issue", Some("/rest/api/3/issue")),
    ("/public/%2e%2e/rest/api/3/issue", Some("/rest/api/3/issue")),
    ("/public/%2E%2E;x/rest/api/2/issue", Some("/rest/api/2/issue")),
    ("/public//..//rest/api/3/issue", Some("/rest/api/3/issue")),
    ("/rest/api/3/issue", Some("/rest/api/3/issue")),
    ("/public/x", Some("/public/x")),
    ("/rest/api%2F3/issue", None),
    ("/public/..%2Frest/api/3/issue", None),
    ("/rest/api\\3/issue", None),
    ("/public\\..\\rest/api/3/issue", None),
    ("/rest/api%5C3/issue", None),
    ("/public/%5C..%5Crest/api/3/issue", None),
    ("/rest/api/3%3B/issue", None),
    ("/public/%252e%252e/rest/api/3/issue", None),
    ("/rest/api/%2533/issue", None),
    ("/public/%00/../rest/api/3/issue", None),
    ("/rest/api/3/%zz", None),
    ("/rest/api/3/%C3%28", None),
    ("/rest./api/3/issue", None),
    ("/rest/api/3./issue", None),
    ("/public/.../rest/api/3/issue", None),
    ("/public/..x/rest", None),
    ("/..;/rest/api/3/issue", None),
    ("/rest/api/3/%3Fx", None),
];

fn plain_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("rest".to_owned()),
        4 => Just("api".to_owned()),
        4 => Just("3".to_owned()),
        2 => Just("2".to_owned()),
        4 => Just("public".to_owned()),
        2 => Just("issue".to_owned()),
        1 => Just("admin".to_owned()),
        1 => Just("REST".to_owned()),
        1 => Just("Api".to_owned()),
        1 => Just(".well-known".to_owned()),
        2 => "[A-Za-z0-9_~-]{1,5}",
    ]
}

/// One spelling of `segment`: each character as itself or escaped (`%xx` or `%XX`), then
/// maybe `;` parameters, then maybe a detour that Tomcat's normalisation undoes.
fn spell(segment: &str, escapes: &[bool], upper: bool, params: &str, detour: u8) -> String {
    let mut out = String::new();
    for (i, c) in segment.chars().enumerate() {
        if escapes.get(i).copied().unwrap_or(false) {
            let escaped = format!("%{:02x}", u32::from(c));
            out.push_str(&if upper { escaped.to_uppercase() } else { escaped });
        } else {
            out.push(c);
        }
    }
    out.push_str(params);
    match detour {
        1 => format!("./{out}"),
        2 => format!("x;p/../{out}"),
        3 => format!("/{out}"),
        4 => format!("zz/%2e%2E/{out}"),
        5 => format!("public/.;/..;/{out}"),
        _ => out,
    }
}

type Part = (String, Vec<bool>, bool, String, u8);

/// A segment with how to spell it: escapes, hex case, parameters, detour.
fn part(segment: impl Strategy<Value = String>) -> impl Strategy<Value = Part> {
    (
        segment,
        prop::collection::vec(any::<bool>(), 12),
        any::<bool>(),
        prop_oneof![
            3 => Just(String::new()),
            1 => Just(";".to_owned()),
            1 => Just(";jsessionid=abc".to_owned()),
            1 => "(;[a-z=.]{0,4}){1,2}",
        ],
        0u8..9,
    )
}

/// The first segments: mostly those of a rule's prefix, so that most paths fall under a rule.
fn head() -> impl Strategy<Value = Vec<&'static str>> {
    prop_oneof![
        Just(vec!["public"]),
        Just(vec!["rest", "api", "3"]),
        Just(vec!["rest", "api", "2"]),
        Just(vec!["rest"]),
        Just(vec![]),
    ]
}

/// `(plain, spelled)`: a plain path and a spelling of it; `spelled` means `plain` to Tomcat.
pub fn spelled_path() -> impl Strategy<Value = (String, String)> {
    let spelled_head = head().prop_flat_map(|names| {
        names
            .into_iter()
            .map(|name| part(Just(name.to_owned())))
            .collect::<Vec<_>>()
    });
    (
        spelled_head,
        prop::collection::vec(part(plain_segment()), 1..4),
        any::<bool>(),
    )
        .prop_map(|(head, tail, slash)| {
            let parts: Vec<Part> = head.into_iter().chain(tail).collect();
            let mut plain = parts.iter().map(|p| format!("/{}", p.0)).collect::<String>();
            let mut spelled = parts
                .iter()
                .map(|(s, escapes, upper, params, detour)| {
                    format!("/{}", spell(s, escapes, *upper, params, *detour))
                })
                .collect::<String>();
            if slash {
                plain.push('/');
                spelled.push_str(["/", "//", "/;x", "/a/../", "/.;x/"][plain.len() % 5]);
            }
            (plain, spelled)
        })
}

/// Raw paths from the alphabet readers disagree on.
pub fn hostile_path() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("/"),
            Just("/"),
            Just("."),
            Just(".."),
            Just(";"),
            Just(";x="),
            Just("%2e"),
            Just("%2E"),
            Just("%2F"),
            Just("%2f"),
            Just("%5c"),
            Just("\\"),
            Just("%25"),
            Just("%3b"),
            Just("%00"),
            Just("%"),
            Just("%c3"),
            Just("%a9"),
            Just("%3F"),
            Just("a"),
            Just("rest"),
            Just("api"),
            Just("3"),
            Just("%33"),
            Just("public"),
            Just("%61"),
            Just("?"),
            Just("#"),
            Just("="),
            Just("~"),
            Just("é"),
            Just("%C3%A9"),
            Just("%20"),
            Just("+"),
            Just("!$&'()*,:@"),
            Just("%21%24%26%27%28%29%2A%2C%3A%40"),
        ],
        0..16,
    )
    .prop_map(|parts| format!("/{}", parts.concat()))
}

/// The rule prefix a canonical path falls under, as the filter's rules are written.
pub fn rule_of(canonical: &str) -> Option<&'static str> {
    [PUBLIC, SCOPED, TOKEN]
        .into_iter()
        .find(|prefix| canonical.starts_with(prefix))
}
