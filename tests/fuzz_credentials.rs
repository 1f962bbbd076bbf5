//! Property tests of the credential parsers of untrusted input: query strings (`tisjwt` in every
//! spelling), `Authorization` of every scheme, Basic, and the directory's answers. Each states
//! what must hold, not only "no panic".
//! `PROPTEST_CASES=100000 cargo test --release --test fuzz_credentials` runs a longer campaign.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use proptest::prelude::*;
use serde_json::{json, Value};
use tokengate::apitoken::{check_bounds, parse_basic, MAX_BASIC_SECRET_BYTES, MAX_TOKEN_BYTES};
use tokengate::directory::{parse_user_response, UserStatus};
use tokengate::extract::{extract, is_tisjwt_name, without_tisjwt, ExtractError, Header, Location, Scheme};
use tokengate::query::{self, percent_decode};
use tokengate::username::{fold, MAX_USER_CHARS};

// ---------------------------------------------------------------------------------------------
// Query strings

/// What a generated pair is, by construction (not by the code under test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A spelling of `tisjwt`: Tomcat decodes its name to `tisjwt` in some case.
    Tisjwt,
    /// A spelling of `tisjwt` with a stray `%`: Tomcat drops it, a lax reader reads `tisjwt`.
    BrokenTisjwt,
    /// Anything else, near misses included.
    Other,
}

/// One letter of `tisjwt`, spelled as the application would still read it.
fn letter(c: char) -> BoxedStrategy<String> {
    let mut spellings = vec![
        Just(c.to_string()).boxed(),
        Just(c.to_ascii_uppercase().to_string()).boxed(),
        (any::<bool>(), any::<bool>())
            .prop_map(move |(upper, hex_upper)| {
                let c = if upper { c.to_ascii_uppercase() } else { c };
                let hex = format!("{:02x}", c as u32);
                format!("%{}", if hex_upper { hex.to_uppercase() } else { hex })
            })
            .boxed(),
    ];
    let unicode: &[char] = match c {
        'i' => &['\u{130}', '\u{131}'],
        's' => &['\u{17F}'],
        _ => &[],
    };
    for &u in unicode {
        let mut bytes = [0u8; 4];
        let encoded: String = u
            .encode_utf8(&mut bytes)
            .bytes()
            .map(|b| format!("%{b:02X}"))
            .collect();
        spellings.push(Just(encoded).boxed());
    }
    proptest::strategy::Union::new(spellings).boxed()
}

fn tisjwt_spelling() -> impl Strategy<Value = Vec<String>> {
    "tisjwt".chars().map(letter).collect::<Vec<_>>()
}

/// Characters of names that are not `tisjwt` (no `j` and no escape of one, so none can spell it).
fn junk() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            "[a-ik-zA-IK-Z0-9_.;~-]",
            Just("+".to_string()),
            Just("%".to_string()),
            Just("%zz".to_string()),
            Just("%2B".to_string()),
            Just("%20".to_string()),
            Just("%3D".to_string()),
            Just("%26".to_string()),
            Just("%ff".to_string()),
            Just("%C3%A9".to_string()),
        ],
        0..6,
    )
    .prop_map(|parts| parts.concat())
}

fn name() -> impl Strategy<Value = (String, Kind)> {
    prop_oneof![
        3 => tisjwt_spelling().prop_map(|letters| (letters.concat(), Kind::Tisjwt)),
        1 => (tisjwt_spelling(), 0..7usize).prop_map(|(mut letters, at)| {
            letters.insert(at, "%".into());
            (letters.concat(), Kind::BrokenTisjwt)
        }),
        // Near misses: a letter more, a letter less, a letter replaced, a `+` (a space).
        2 => (tisjwt_spelling(), "[a-z0-9_]", 0..7usize, 0..4u8).prop_map(|(mut letters, extra, at, how)| {
            match how {
                0 => letters.insert(at, extra),
                1 => { letters.remove(at.min(5)); }
                2 => letters[at.min(5)] = "x".into(),
                _ => letters.insert(at, "+".into()),
            }
            (letters.concat(), Kind::Other)
        }),
        2 => junk().prop_map(|n| (n, Kind::Other)),
    ]
}

fn value() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        6 => "[A-Za-z0-9._~+=;-]{0,12}".prop_map(Some),
        1 => Just(Some("a%2Eb%3D".to_string())),
        1 => Just(Some("%zz".to_string())),
        1 => Just(None),
    ]
}

fn query_pairs() -> impl Strategy<Value = Vec<(String, Kind)>> {
    prop::collection::vec((name(), value()), 0..7).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|((name, kind), value)| match value {
                Some(value) => (format!("{name}={value}"), kind),
                None => (name, kind),
            })
            .collect()
    })
}

fn path_of(pairs: &[(String, Kind)]) -> String {
    let raw: Vec<&str> = pairs.iter().map(|(p, _)| p.as_str()).collect();
    format!("/rest/x?{}", raw.join("&"))
}

proptest! {
    /// Removing the parameter removes every spelling and leaves the others byte for byte, in
    /// order; what is left has no parameter that decodes to `tisjwt`.
    #[test]
    fn removing_tisjwt_removes_every_spelling_and_keeps_the_rest_byte_for_byte(pairs in query_pairs()) {
        let path = path_of(&pairs);
        let stripped = without_tisjwt(&path);
        let kept: Vec<&str> = pairs
            .iter()
            .filter(|(_, kind)| *kind != Kind::Tisjwt)
            .map(|(p, _)| p.as_str())
            .collect();
        let expected = if kept.iter().all(|p| p.is_empty()) {
            "/rest/x".to_string()
        } else {
            format!("/rest/x?{}", kept.join("&"))
        };
        prop_assert_eq!(&stripped, &expected);
        for pair in query::pairs(&stripped) {
            prop_assert!(!is_tisjwt_name(pair.name), "{} left in {}", pair.name, stripped);
            let decoded = query::decode_name(pair.name).unwrap_or_default();
            prop_assert_ne!(decoded.to_ascii_lowercase(), "tisjwt");
        }
    }

    /// No copy: no credential. One copy: its value. Two copies in any spellings: two
    /// credentials. A broken spelling: refused, never passed.
    #[test]
    fn every_spelling_is_one_credential_and_two_are_refused(pairs in query_pairs()) {
        let path = path_of(&pairs);
        let count = |k| pairs.iter().filter(|(_, kind)| *kind == k).count();
        let result = extract(&[], &path);
        let (copies, broken) = (count(Kind::Tisjwt), count(Kind::BrokenTisjwt));
        if broken > 0 {
            prop_assert!(
                matches!(result, Err(ExtractError::Malformed(Scheme::Tisjwt)) | Err(ExtractError::MultipleCredentials)),
                "{result:?}"
            );
        } else if copies == 0 {
            prop_assert_eq!(result, Ok(None));
        } else if copies == 1 {
            let (pair, _) = pairs.iter().find(|(_, k)| *k == Kind::Tisjwt).unwrap();
            let raw = pair.split_once('=').map_or("", |(_, v)| v);
            match percent_decode(raw) {
                Some(value) => {
                    let credential = result.unwrap().unwrap();
                    prop_assert_eq!(credential.scheme, Scheme::Tisjwt);
                    prop_assert_eq!(credential.location, Location::QueryParameter);
                    prop_assert_eq!(credential.value, value);
                }
                None => prop_assert_eq!(result, Err(ExtractError::Malformed(Scheme::Tisjwt))),
            }
        } else {
            prop_assert_eq!(result, Err(ExtractError::MultipleCredentials));
        }
    }

    /// Arbitrary query text never panics, and whatever is extracted is gone from the path.
    #[test]
    fn any_query_text_is_refused_or_extracted_and_stripped(text in "[a-zA-Z0-9%&=+;._ \u{130}\u{17f}-]{0,40}") {
        let path = format!("/p?{text}");
        if let Ok(Some(_)) = extract(&[], &path) {
            let stripped = without_tisjwt(&path);
            prop_assert_eq!(extract(&[], &stripped), Ok(None));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Authorization, every scheme

fn scheme_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("TISJWT".to_string()),
        Just("Bearer".to_string()),
        Just("Basic".to_string()),
        Just("Digest".to_string()),
        Just("OAuth".to_string()),
        "[A-Za-z]{1,8}",
    ]
    .prop_flat_map(|name| {
        prop::collection::vec(any::<bool>(), name.len()).prop_map(move |upper| {
            name.chars()
                .zip(upper)
                .map(|(c, u)| {
                    if u {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    }
                })
                .collect()
        })
    })
}

fn authorization_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (scheme_name(), "[ \t]{0,3}", "[ -~\t]{0,30}", "[ \t]{0,2}")
            .prop_map(|(s, sep, token, tail)| format!("{s}{sep}{token}{tail}").into_bytes()),
        (scheme_name(), "[A-Za-z0-9._=-]{0,10}", "[A-Za-z0-9._=-]{0,10}")
            .prop_map(|(s, a, b)| format!("{s} {a},{s} {b}").into_bytes()),
        prop::collection::vec(any::<u8>(), 0..40),
    ]
}

fn known_scheme(name: &str) -> Option<Scheme> {
    match name.to_ascii_lowercase().as_str() {
        "tisjwt" => Some(Scheme::Tisjwt),
        "bearer" => Some(Scheme::Bearer),
        "basic" => Some(Scheme::Basic),
        "oauth" => Some(Scheme::OAuth),
        _ => None,
    }
}

proptest! {
    /// At most one credential per request, never a panic, and a comma in a known scheme's
    /// token (Envoy's folding of two headers) is a refusal, except in OAuth 1.0a's, whose
    /// parameters are comma-separated (RFC 5849 section 3.5.1; its parser refuses a folded pair).
    #[test]
    fn authorization_yields_at_most_one_credential_and_a_comma_is_refused(
        value in authorization_value(),
        second in prop::option::of(authorization_value()),
        query in prop::option::of("[a-z]{0,4}"),
    ) {
        let mut headers: Vec<Header> = vec![("authorization".into(), value.clone())];
        if let Some(second) = &second {
            headers.push(("Authorization".into(), second.clone()));
        }
        let path = query.as_ref().map_or("/x".to_string(), |q| format!("/x?tisjwt={q}"));
        let result = extract(&headers, &path);
        if second.is_some() {
            prop_assert_eq!(result, Err(ExtractError::MultipleAuthorizationHeaders));
            return Ok(());
        }
        let Ok(text) = std::str::from_utf8(&value) else {
            prop_assert_eq!(result, Err(ExtractError::Malformed(Scheme::Other)));
            return Ok(());
        };
        let trimmed = text.trim_matches([' ', '\t']);
        let (name, rest) = trimmed.split_once([' ', '\t']).unwrap_or((trimmed, ""));
        let token = rest.trim_start_matches([' ', '\t']);
        if name.is_empty() {
            prop_assert_eq!(result, Err(ExtractError::Malformed(Scheme::Other)));
        } else if known_scheme(name).is_some_and(|s| s != Scheme::OAuth) && token.contains(',') {
            prop_assert_eq!(result, Err(ExtractError::MultipleAuthorizationHeaders));
        } else if query.is_some() {
            prop_assert_eq!(result, Err(ExtractError::MultipleCredentials));
        } else {
            let credential = result.unwrap().unwrap();
            prop_assert_eq!(credential.scheme, known_scheme(name).unwrap_or(Scheme::Other));
            prop_assert_eq!(credential.location, Location::AuthorizationHeader);
            prop_assert_eq!(credential.value, token);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Basic

proptest! {
    /// decode(encode(user:secret)) is (user, secret) for every user without `:` or control
    /// characters and every secret (colons included).
    #[test]
    fn basic_round_trips(user in "[^:\\p{Cc}]{1,20}", secret in "\\PC{0,20}") {
        let encoded = STANDARD.encode(format!("{user}:{secret}"));
        let parsed = parse_basic(&encoded).unwrap();
        prop_assert_eq!(&parsed.user, &user);
        prop_assert_eq!(&parsed.secret, &secret);
    }

    /// Anything else is refused or well-formed: a non-empty user without `:` or control
    /// characters, and exactly the bytes the header encodes.
    #[test]
    fn any_basic_value_is_refused_or_well_formed(
        value in prop_oneof![
            "[A-Za-z0-9+/=]{0,24}",
            prop::collection::vec(any::<u8>(), 0..24).prop_map(|b| STANDARD.encode(b)),
            "\\PC{0,24}",
        ]
    ) {
        if let Some(parsed) = parse_basic(&value) {
            prop_assert!(!parsed.user.is_empty());
            prop_assert!(!parsed.user.contains(':'));
            prop_assert!(!parsed.user.chars().any(char::is_control));
            let decoded = STANDARD.decode(value.trim()).unwrap();
            prop_assert_eq!(decoded, format!("{}:{}", parsed.user, parsed.secret).into_bytes());
        }
    }

    /// The bounds say yes exactly inside the documented limits.
    #[test]
    fn bounds_hold_exactly_at_the_documented_limits(
        token_len in 0..(2 * MAX_TOKEN_BYTES),
        user_len in prop::option::of(0..(2 * MAX_USER_CHARS)),
    ) {
        let token = "t".repeat(token_len);
        let user = user_len.map(|n| "é".repeat(n));
        let ok = match user_len {
            None => token_len <= MAX_TOKEN_BYTES,
            Some(n) => n <= MAX_USER_CHARS && token_len > 0 && token_len <= MAX_BASIC_SECRET_BYTES,
        };
        prop_assert_eq!(check_bounds(&token, user.as_deref()).is_ok(), ok);
    }
}

// ---------------------------------------------------------------------------------------------
// Directory answers

/// Names close to the asked one: itself in other cases, Unicode twins, and others.
fn directory_name() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("jsmith")),
        Just(json!("JSMITH")),
        Just(json!("JSmith")),
        Just(json!("jsmith2")),
        Just(json!("admin")),
        Just(json!("\u{212A}im")),
        Just(json!("kim")),
        Just(json!("ΣΟΦΙΑ")),
        Just(json!("σοφια")),
        Just(json!("")),
        Just(Value::Null),
        Just(json!(7)),
    ]
}

fn directory_user() -> impl Strategy<Value = Value> {
    let active = prop_oneof![
        Just(Some(json!(true))),
        Just(Some(json!(false))),
        Just(None),
        Just(Some(Value::Null)),
        Just(Some(json!("true"))),
        Just(Some(json!(1))),
    ];
    let email = prop_oneof![
        Just(None),
        Just(Some(json!("jsmith@example.com"))),
        Just(Some(json!("JSmith@Example.COM"))),
        Just(Some(json!("other@example.com"))),
    ];
    (prop::option::of(directory_name()), active, email).prop_map(|(name, active, email)| {
        let mut user = serde_json::Map::new();
        if let Some(name) = name {
            user.insert("name".into(), name);
        }
        if let Some(active) = active {
            user.insert("active".into(), active);
        }
        if let Some(email) = email {
            user.insert("emailAddress".into(), email);
        }
        Value::Object(user)
    })
}

fn directory_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => directory_user().prop_map(|u| u.to_string().into_bytes()),
        3 => prop::collection::vec(directory_user(), 0..4).prop_map(|l| Value::Array(l).to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..30),
        1 => "\\PC{0,30}".prop_map(String::into_bytes),
    ]
}

fn asked() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("jsmith"),
        Just("JSMITH"),
        Just("kim"),
        Just("KIM"),
        Just("σοφια"),
        Just("jsmith@example.com"),
    ]
}

/// Whether `user` is the one asked about, with `active: true` (the reference, written apart
/// from the parser: folded name or e-mail address).
fn says_active(user: &Value, asked: &str, by_email: bool) -> bool {
    let field = if by_email { "emailAddress" } else { "name" };
    user.get(field)
        .and_then(Value::as_str)
        .is_some_and(|n| fold(n) == fold(asked))
        && user.get("active") == Some(&json!(true))
}

proptest! {
    /// Only an answer that has the asked user, folded, with `"active": true` is Active; a
    /// single record of that user with `"active": true` is always Active.
    #[test]
    fn only_active_true_for_the_asked_name_is_active(
        status in prop_oneof![Just(200u32), Just(404u32), 100u32..600],
        body in directory_body(),
        asked in asked(),
    ) {
        let result = parse_user_response(status, &body, asked);
        if status != 200 {
            prop_assert!(status == 404 && result == Ok(UserStatus::Unknown) || status != 404 && result.is_err());
            return Ok(());
        }
        let value: Option<Value> = serde_json::from_slice(&body).ok();
        let users: Vec<Value> = match &value {
            Some(Value::Array(list)) => list.clone(),
            Some(object @ Value::Object(_)) => vec![object.clone()],
            _ => vec![],
        };
        if result == Ok(UserStatus::Active) {
            let by_name = users.iter().any(|u| says_active(u, asked, false));
            let by_email = users.iter().filter(|u| says_active(u, asked, true)).count() == 1;
            prop_assert!(by_name || by_email, "Active from {}", String::from_utf8_lossy(&body));
        }
        if let Some(object @ Value::Object(_)) = &value {
            let clean = object.get("emailAddress").is_none_or(Value::is_string);
            if clean && says_active(object, asked, false) {
                prop_assert_eq!(result, Ok(UserStatus::Active));
            }
        }
    }
}
