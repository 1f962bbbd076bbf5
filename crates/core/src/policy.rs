//! Stage 2, route policy: which providers may accept a request, which OAuth scopes it needs,
//! and whether it may pass without a credential. Decided from method and path alone, before
//! any cryptography; the first matching rule wins.

use crate::apitoken::BasicPasswords;
use crate::path::CanonicalPath;

/// One access rule. Paths match by prefix, like Envoy's `prefix` route match, on the path as
/// Tomcat resolves it ([`crate::path::canonical`]), so that neither `/public/..;/admin` nor
/// `/rest/api/%33/` can borrow another rule. Case-sensitive, as Tomcat and Jersey are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub path_prefix: String,
    /// Upper-case method names; `None` matches every method.
    pub methods: Option<Vec<String>>,
    /// Names of the providers that may accept the request, in order: the first one owns the
    /// error format of a request that carries no credential.
    pub providers: Vec<String>,
    pub allow_anonymous: bool,
    /// OAuth scopes the credential must all carry (RFC 6749 section 3.3).
    pub scopes: Vec<String>,
    /// What happens to `Basic user:password` that is not an API token.
    pub basic_passwords: BasicPasswords,
}

impl Rule {
    /// Whether the request target `raw` starts with the prefix as written: what Envoy's own
    /// `prefix` routes, which see the spelling and not the canonical path, would match.
    pub fn prefix_spelled_in(&self, raw: &str) -> bool {
        raw.starts_with(&self.path_prefix)
    }

    /// A rule listing `GET` also holds `HEAD`: Tomcat's `HttpServlet.doHead` runs `doGet`, and
    /// Jersey answers `HEAD` with the `GET` resource method, so a `HEAD` acts as the `GET` would
    /// (status, headers, side effects) and must not fall through to a weaker rule.
    fn matches(&self, method: &str, path: &CanonicalPath) -> bool {
        let acts_as = |listed: &str| listed == method || (listed == "GET" && method == "HEAD");
        path.as_str().starts_with(&self.path_prefix)
            && self
                .methods
                .as_ref()
                .is_none_or(|methods| methods.iter().any(|m| acts_as(m)))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub rules: Vec<Rule>,
}

impl Policy {
    /// The rule for a request, `None` when no rule matches (the request is refused).
    pub fn route(&self, method: &str, path: &CanonicalPath) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.matches(method, path))
    }
}

/// Scopes granted by a token: `scope` (space-separated string, RFC 8693 section 4.2) or `scp`
/// (string or array, as Azure AD and Okta issue it).
pub fn granted_scopes(claims: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
    use serde_json::Value;
    let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) => words(s),
        (_, Some(Value::String(s))) => words(s),
        (_, Some(Value::Array(items))) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// The required scopes that `granted` lacks.
pub fn missing_scopes<'a>(required: &'a [String], granted: &[String]) -> Vec<&'a str> {
    required
        .iter()
        .filter(|scope| !granted.contains(scope))
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::canonical;
    use serde_json::json;

    fn rule(prefix: &str, methods: Option<&[&str]>, provider: &str) -> Rule {
        Rule {
            path_prefix: prefix.into(),
            methods: methods.map(|m| m.iter().map(|s| s.to_string()).collect()),
            providers: vec![provider.into()],
            allow_anonymous: false,
            scopes: vec![],
            basic_passwords: BasicPasswords::Refuse,
        }
    }

    fn policy() -> Policy {
        Policy {
            rules: vec![
                rule("/public/", None, "anon"),
                rule("/rest/api/2/issue", Some(&["POST", "PUT"]), "writer"),
                rule("/rest/", None, "reader"),
            ],
        }
    }

    fn provider_for(method: &str, path: &str) -> Option<String> {
        let path = canonical(path).unwrap();
        policy().route(method, &path).map(|r| r.providers[0].clone())
    }

    #[test]
    fn the_first_matching_rule_wins_by_prefix_and_method() {
        assert_eq!(
            provider_for("POST", "/rest/api/2/issue").as_deref(),
            Some("writer")
        );
        assert_eq!(
            provider_for("GET", "/rest/api/2/issue/X-1").as_deref(),
            Some("reader")
        );
        assert_eq!(
            provider_for("GET", "/public/logo.png?x=/rest/").as_deref(),
            Some("anon")
        );
        assert_eq!(provider_for("GET", "/other"), None);
    }

    #[test]
    fn dot_segments_cannot_borrow_another_rule() {
        assert_eq!(
            provider_for("GET", "/public/../rest/api/2/myself").as_deref(),
            Some("reader")
        );
        assert_eq!(
            provider_for("GET", "/public/%2e%2e/rest/x").as_deref(),
            Some("reader")
        );
        assert_eq!(provider_for("GET", "//public//x").as_deref(), Some("anon"));
        assert_eq!(provider_for("GET", "/public/./x").as_deref(), Some("anon"));
    }

    #[test]
    fn tomcat_spellings_cannot_borrow_another_rule() {
        for path in [
            "/public/..;/rest/api/2/myself",
            "/public/%2e%2e;x/rest/api/2/myself",
            "/public;x/../rest/x",
            "/pub%6cic/../rest/x",
        ] {
            assert_eq!(provider_for("GET", path).as_deref(), Some("reader"), "{path}");
        }
        assert_eq!(
            provider_for("POST", "/rest/api/2/iss%75e;x").as_deref(),
            Some("writer")
        );
        assert_eq!(
            provider_for("POST", "/rest/api/2;x/issue").as_deref(),
            Some("writer")
        );
        assert_eq!(provider_for("GET", "/public;x/logo.png").as_deref(), Some("anon"));
    }

    #[test]
    fn a_rule_for_get_also_holds_head_which_the_application_answers_with_get() {
        let rules = Policy {
            rules: vec![
                rule("/rest/api/2/issue", Some(&["GET"]), "scoped-reader"),
                rule("/", None, "anyone"),
            ],
        };
        let route = |method: &str| {
            let path = canonical("/rest/api/2/issue/X-1").unwrap();
            rules.route(method, &path).map(|r| r.providers[0].clone())
        };
        assert_eq!(route("GET").as_deref(), Some("scoped-reader"));
        assert_eq!(route("HEAD").as_deref(), Some("scoped-reader"));
        assert_eq!(route("POST").as_deref(), Some("anyone"));
    }

    #[test]
    fn rules_match_case_sensitively() {
        assert_eq!(provider_for("GET", "/PUBLIC/x"), None);
        assert_eq!(provider_for("GET", "/Rest/x"), None);
    }

    #[test]
    fn scopes_come_from_scope_or_scp() {
        let from = |v: serde_json::Value| granted_scopes(v.as_object().unwrap());
        assert_eq!(
            from(json!({"scope": "read:jira-work  write:jira-work"})),
            ["read:jira-work", "write:jira-work"]
        );
        assert_eq!(from(json!({"scp": ["a", "b", 3]})), ["a", "b"]);
        assert_eq!(from(json!({"scp": "a b"})), ["a", "b"]);
        assert!(from(json!({"scope": 5})).is_empty());
        let required = vec!["a".to_string(), "c".to_string()];
        assert_eq!(missing_scopes(&required, &["a".into(), "b".into()]), ["c"]);
    }
}
