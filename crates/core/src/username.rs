//! User names as Jira compares them: folded to lower case.
//!
//! Jira and Crowd compare user names (and e-mail addresses) through Crowd's
//! `IdentifierUtils.toLowerCase`, which is `String.toLowerCase(Locale.ENGLISH)`: the Unicode
//! default full lower-case mapping (UnicodeData plus SpecialCasing without the Turkish and
//! Lithuanian rules, and with the Final_Sigma context). Rust's [`str::to_lowercase`] is that
//! same mapping, so `JSMITH`, `jsmith` and `Jsmith` are one user, and so are `ΣΟΦΙΑ` and `σοφια`.
//!
//! Every place the filter compares user names goes through [`fold`]: the Basic user against the
//! token's owner, the static directory lists, the directory callout's answer, and the key of the
//! failed-login counter. The token service folds the same way (`tokenservice/src/users.rs`).

/// Longest user name the filter looks up or checks (Jira's `cwd_user.user_name` and
/// `lower_user_name` are 255 characters; an e-mail address is at most 254, RFC 5321
/// section 4.5.3.1.3). A longer name cannot be a user: it is refused without a callout.
pub const MAX_USER_CHARS: usize = 255;

/// `name` as Jira compares it: `toLowerCase(Locale.ENGLISH)`.
///
/// Checked against Java over every Unicode scalar value (1,112,064, each lowered alone) and
/// 14 Final_Sigma contexts: identical to OpenJDK 17's `toLowerCase(Locale.ENGLISH)` except for
/// 95 letters Unicode added after Java 17's Unicode 13 (Vithkuqi, Garay, Kirat Rai, U+2C2F,
/// U+A7C0, ...), which Java 17 leaves as they are and this lowers; against Java 25, 28 such
/// letters. Each letter alone, Java lowers none differently; in context, the final sigma
/// does differ: Java decides "end of word" with its `BreakIterator` word boundaries, Rust
/// with Unicode's Final_Sigma context, so Java 17 lowers `Α1Σ` and `Α_Σ` to `α1ς` and `α_ς`
/// where this gives `α1σ` and `α_σ`, and `ΑΣ-Β` and `A·Σ` to `ασ-β` and `a·σ` where this gives
/// `ας-β` and `a·ς`. A `Σ` after a digit, `_`, `-` or `·` is the only known difference.
pub fn fold(name: &str) -> String {
    name.to_lowercase()
}

/// Whether claims that name their user by e-mail address (`email`) say the address is not
/// verified: `email_verified` present and neither `true` nor Cognito's `"true"` (OIDC Core
/// section 5.1). Many providers let anyone register any address, and the directory maps an
/// address to the Jira user who has it, so such a user is nobody. Absent, the provider
/// vouches for the address (GitHub's `/user` has no such claim).
pub fn email_unverified(claims: &serde_json::Map<String, serde_json::Value>) -> bool {
    claims.get("email_verified").is_some_and(|verified| {
        verified != &serde_json::Value::Bool(true) && verified.as_str() != Some("true")
    })
}

/// Whether two user names are the same user for Jira.
pub fn same_user(a: &str, b: &str) -> bool {
    a == b || fold(a) == fold(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_as_java_to_lower_case_with_the_english_locale() {
        // (input, what Java's "…".toLowerCase(Locale.ENGLISH) returns)
        let cases = [
            ("JSMITH", "jsmith"),
            ("jsmith", "jsmith"),
            ("Fred.Flintstone@Example.COM", "fred.flintstone@example.com"),
            // U+0130 LATIN CAPITAL LETTER I WITH DOT ABOVE: `i` + U+0307 outside Turkish locales.
            ("\u{130}STANBUL", "i\u{307}stanbul"),
            // Dotless ı and the ASCII I stay apart (no Turkish rule).
            ("I\u{131}", "i\u{131}"),
            // Final sigma: σ inside a word, ς at its end (SpecialCasing's Final_Sigma).
            ("ΟΔΥΣΣΕΥΣ", "οδυσσευς"),
            ("ΣΟΦΙΑ", "σοφια"),
            ("Σ", "σ"),
            // ß has no single lower-case change; upper-case ẞ (U+1E9E) lowers to ß.
            ("straße", "straße"),
            ("STRA\u{1E9E}E", "straße"),
            // U+212A KELVIN SIGN lowers to the ASCII k; U+212B ANGSTROM SIGN to å.
            ("\u{212A}ELVIN", "kelvin"),
            ("\u{212B}", "\u{e5}"),
            ("ÜMLAUT-ÇA", "ümlaut-ça"),
            ("Дмитрий", "дмитрий"),
            ("用户", "用户"),
        ];
        for (name, folded) in cases {
            assert_eq!(fold(name), folded, "{name:?}");
        }
    }

    #[test]
    fn the_same_user_in_any_case_is_the_same_user() {
        assert!(same_user("JSMITH", "jsmith"));
        assert!(same_user("\u{212A}im", "KIM"));
        assert!(!same_user("jsmith", "jsmith2"));
        assert!(!same_user("i\u{131}", "ii"));
    }

    #[test]
    fn folding_is_idempotent() {
        for name in ["ΟΔΥΣΣΕΥΣ", "\u{130}", "\u{212A}", "ABC", "ǅ", "ﬃ"] {
            assert_eq!(fold(&fold(name)), fold(name), "{name:?}");
        }
    }
}
