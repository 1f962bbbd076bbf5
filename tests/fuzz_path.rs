//! Property tests of request-path canonicalisation (`crates/core/src/path.rs`), the parser every request
//! meets first: a path is refused or canonical, canonicalising is idempotent, a spelling means
//! the plain path it spells, and no spelling escapes the rule its plain path falls under.
//! `PROPTEST_CASES=200000 cargo test --release --test fuzz_path` runs a longer campaign.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod spellings;

use proptest::prelude::*;
use spellings::{hostile_path, rule_of, spelled_path, PUBLIC, SCOPED, TOKEN};
use tokengate::apitoken::BasicPasswords;
use tokengate::path::canonical;
use tokengate::policy::{Policy, Rule};

/// A canonical path: absolute, no parameters, escapes, delimiters, `//` or dot segments.
fn is_canonical_shape(path: &str) -> bool {
    path.starts_with('/')
        && !path.contains(['%', ';', '?', '#', '\\'])
        && !path.contains("//")
        && !path.chars().any(char::is_control)
        && path
            .split('/')
            .skip(1)
            .all(|s| !s.starts_with("..") && s != "." && !s.ends_with('.'))
}

fn policy() -> Policy {
    let rule = |prefix: &str| Rule {
        path_prefix: prefix.to_owned(),
        methods: None,
        providers: vec![prefix.to_owned()],
        allow_anonymous: false,
        scopes: vec![],
        basic_passwords: BasicPasswords::Refuse,
    };
    Policy {
        rules: vec![rule(PUBLIC), rule(SCOPED), rule(TOKEN)],
    }
}

fn routed(path: &str) -> Option<String> {
    let path = canonical(path).ok()?;
    policy().route("GET", &path).map(|rule| rule.path_prefix.clone())
}

proptest! {
    #[test]
    fn any_string_is_refused_or_a_canonical_path_that_canonicalises_to_itself(
        raw in prop_oneof![any::<String>(), any::<String>().prop_map(|s| format!("/{s}"))]
    ) {
        if let Ok(path) = canonical(&raw) {
            prop_assert!(is_canonical_shape(path.as_str()), "{:?} -> {:?}", raw, path);
            prop_assert_eq!(canonical(path.as_str()), Ok(path.clone()));
        }
    }

    #[test]
    fn hostile_paths_are_refused_or_canonical_and_idempotent(raw in hostile_path()) {
        if let Ok(path) = canonical(&raw) {
            prop_assert!(is_canonical_shape(path.as_str()), "{:?} -> {:?}", raw, path);
            prop_assert_eq!(canonical(path.as_str()), Ok(path.clone()));
        }
    }

    #[test]
    fn a_spelling_canonicalises_to_the_plain_path_it_spells((plain, spelled) in spelled_path()) {
        prop_assert_eq!(canonical(&spelled).map(|p| p.as_str().to_owned()), Ok(plain), "{}", spelled);
    }

    #[test]
    fn no_spelling_escapes_the_rule_of_its_plain_path((plain, spelled) in spelled_path()) {
        prop_assert_eq!(routed(&spelled), rule_of(&plain).map(str::to_owned), "{} spells {}", spelled, plain);
    }

    #[test]
    fn a_hostile_path_is_routed_by_the_prefix_of_its_canonical_form(raw in hostile_path()) {
        if let Ok(path) = canonical(&raw) {
            prop_assert_eq!(routed(&raw), rule_of(path.as_str()).map(str::to_owned));
        }
    }
}

#[test]
fn the_issue_forms_resolve_as_tomcat_does_or_are_refused() {
    for (raw, expected) in spellings::ISSUE_FORMS {
        assert_eq!(
            canonical(raw).ok().map(|p| p.as_str().to_owned()).as_deref(),
            *expected,
            "{raw}"
        );
    }
}
