//! The plugin configuration: JSON from Envoy's `configuration` field, parsed once into
//! validated types. Unknown fields and invalid values are errors naming the field, so that
//! `on_configure` fails and Envoy refuses the configuration instead of running half-configured.
//!
//! This file holds the top level: the filter-wide fields, the rules, and the checks across
//! providers. Each section's raw form and its compilation live in a file of their own here
//! (`jwt`, `oauth`, `apitoken`, `tisjwt`, `directory`, and `common` for what they share):
//! they import the types they compile into, and those types never import the configuration.

mod apitoken;
mod common;
mod directory;
mod jwt;
mod oauth;
mod oauth1;
mod tisjwt;

use serde::Deserialize;

pub use common::{ConfigError, MIN_SECRET_BYTES, TISJWT_PROVIDER};

use self::apitoken::RawApiTokenProvider;
use self::common::{error, header_name};
use self::directory::RawDirectory;
use self::jwt::RawJwtProvider;
use self::oauth::RawOAuthProvider;
use self::oauth1::RawOAuth1Provider;
use self::tisjwt::RawTisjwt;
use crate::apitoken::BasicPasswords;
use crate::bearer::JwtProvider;
use crate::cache::{scope_of, Scope};
use crate::directory::Directory;
use crate::introspect::OAuthProvider;
use crate::oauth1_question::OAuth1Provider;
use crate::policy::{Policy, Rule};
use crate::tisjwt::TisjwtProvider;

/// A configuration the filter can run with.
#[derive(Debug, Clone)]
pub struct Config {
    /// `pluginVersion` in TISJWT error bodies.
    pub plugin_version: String,
    /// `realm` of `WWW-Authenticate` challenges.
    pub realm: String,
    pub identity_headers: IdentityHeaders,
    /// The TISJWT provider, named `tisjwt` in rules.
    pub tisjwt: Option<TisjwtProvider>,
    /// Bearer JWT providers, by name, in configuration order.
    pub jwt_providers: Vec<JwtProvider>,
    /// Opaque-token providers checked by a callout (introspection, UserInfo).
    pub oauth_providers: Vec<OAuthProvider>,
    /// OAuth 1.0a providers (application links), by name, in configuration order.
    pub oauth1_providers: Vec<OAuth1Provider>,
    pub policy: Policy,
    pub directory: Directory,
    /// Deprecated fields this configuration sets, which do nothing now (the worker logs a
    /// warning for each, so that an operator's `max_failures` is not dropped silently).
    pub ignored: Vec<String>,
}

/// Request headers the filter sets for the application; client-sent copies are always removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeaders {
    pub user: String,
    pub tenant: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_plugin_version")]
    plugin_version: String,
    #[serde(default = "default_realm")]
    realm: String,
    #[serde(default)]
    identity_headers: RawIdentityHeaders,
    tisjwt: Option<RawTisjwt>,
    #[serde(default)]
    jwt_providers: std::collections::BTreeMap<String, RawJwtProvider>,
    #[serde(default)]
    oauth_providers: std::collections::BTreeMap<String, RawOAuthProvider>,
    #[serde(default)]
    api_token_providers: std::collections::BTreeMap<String, RawApiTokenProvider>,
    #[serde(default)]
    oauth1_providers: std::collections::BTreeMap<String, RawOAuth1Provider>,
    rules: Option<Vec<RawRule>>,
    #[serde(default)]
    directory: RawDirectory,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    path_prefix: String,
    methods: Option<Vec<String>>,
    providers: Vec<String>,
    #[serde(default)]
    allow_anonymous: bool,
    #[serde(default)]
    scopes: Vec<String>,
    basic_passwords: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentityHeaders {
    #[serde(default = "default_user_header")]
    user: String,
    #[serde(default = "default_tenant_header")]
    tenant: String,
}

impl Default for RawIdentityHeaders {
    fn default() -> Self {
        Self {
            user: default_user_header(),
            tenant: default_tenant_header(),
        }
    }
}

fn default_plugin_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

fn default_realm() -> String {
    "tokengate".to_owned()
}

fn default_user_header() -> String {
    "x-tokengate-user".to_owned()
}

fn default_tenant_header() -> String {
    "x-tokengate-tenant".to_owned()
}

impl Config {
    /// A configuration under which no request passes: no provider, no rule. Used only if the
    /// host asks for a filter before a configuration was accepted.
    pub fn refuse_everything() -> Self {
        Config {
            plugin_version: default_plugin_version(),
            realm: default_realm(),
            identity_headers: IdentityHeaders {
                user: default_user_header(),
                tenant: default_tenant_header(),
            },
            tisjwt: None,
            jwt_providers: Vec::new(),
            oauth_providers: Vec::new(),
            oauth1_providers: Vec::new(),
            policy: Policy::default(),
            directory: Directory::default(),
            ignored: Vec::new(),
        }
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
        let raw: RawConfig = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            // `?`: a syntax error before the first key (serde_path_to_error knows no field yet).
            let at_root = path == "." || path == "?";
            error(if at_root { "(root)" } else { &path }, e.inner().to_string())
        })?;
        // The sections as written, for the scopes of what they compile into (bytes that
        // parsed as a `RawConfig` parse as JSON).
        let sections: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| error("(root)", e.to_string()))?;
        raw.compile(&Sections(&sections))
    }
}

/// The configuration as written, whose sections scope the state of what they compile into.
struct Sections<'a>(&'a serde_json::Value);

impl Sections<'_> {
    /// The scope of `kind.name` (`directory` has no name): the section, canonical, with both.
    fn scope(&self, kind: &str, name: &str) -> Scope {
        let section = self.0.get(kind);
        let section = if name.is_empty() {
            section
        } else {
            section.and_then(|providers| providers.get(name))
        };
        scope_of(kind, name, section.unwrap_or(&serde_json::Value::Null))
    }
}

impl RawConfig {
    fn compile(self, sections: &Sections<'_>) -> Result<Config, ConfigError> {
        if !self
            .realm
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ')
        {
            return Err(error(
                "realm",
                "must be printable ASCII without quotes or backslashes",
            ));
        }
        if self.plugin_version.chars().any(char::is_control) {
            return Err(error("plugin_version", "must not contain control characters"));
        }
        let identity_headers = IdentityHeaders {
            user: header_name("identity_headers.user", self.identity_headers.user)?,
            tenant: header_name("identity_headers.tenant", self.identity_headers.tenant)?,
        };
        if identity_headers.user == identity_headers.tenant {
            return Err(error(
                "identity_headers.tenant",
                "must differ from identity_headers.user",
            ));
        }
        let tisjwt = self.tisjwt.map(RawTisjwt::compile).transpose()?;
        let ignored = self
            .api_token_providers
            .iter()
            .flat_map(|(name, raw)| {
                [
                    (raw.lockout.max_failures.is_some(), "lockout.max_failures"),
                    (raw.lockout.window_seconds.is_some(), "lockout.window_seconds"),
                    (raw.reset_path_prefix.is_some(), "reset_path_prefix"),
                ]
                .into_iter()
                .filter(|(set, _)| *set)
                .map(move |(_, field)| format!("api_token_providers.{name}.{field}"))
            })
            .collect();
        let jwt_providers = self
            .jwt_providers
            .into_iter()
            .map(|(name, raw)| {
                let scope = sections.scope("jwt_providers", &name);
                raw.compile(name, scope)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let api_token_providers = self.api_token_providers.into_iter().map(|(name, raw)| {
            let scope = sections.scope("api_token_providers", &name);
            raw.compile(name, scope)
        });
        let oauth_providers = self
            .oauth_providers
            .into_iter()
            .map(|(name, raw)| {
                let scope = sections.scope("oauth_providers", &name);
                raw.compile(name, scope)
            })
            .chain(api_token_providers)
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(twice) = oauth_providers
            .iter()
            .enumerate()
            .find_map(|(i, p)| oauth_providers.iter().skip(i + 1).find(|q| q.name == p.name))
        {
            return Err(error(
                "api_token_providers",
                format!("`{}` is also an oauth provider's name", twice.name),
            ));
        }
        let oauth1_providers = self
            .oauth1_providers
            .into_iter()
            .map(|(name, raw)| {
                let scope = sections.scope("oauth1_providers", &name);
                raw.compile(name, scope, &self.realm)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let other_names = || {
            (jwt_providers.iter().map(|p| p.name.as_str()))
                .chain(oauth_providers.iter().map(|p| p.name.as_str()))
        };
        if let Some(twice) = oauth1_providers
            .iter()
            .find(|o| other_names().any(|name| name == o.name))
        {
            return Err(error(
                "oauth1_providers",
                format!("`{}` is also the name of another provider", twice.name),
            ));
        }
        let providers: Vec<&str> = tisjwt
            .iter()
            .map(|_| TISJWT_PROVIDER)
            .chain(jwt_providers.iter().map(|p| p.name.as_str()))
            .chain(oauth_providers.iter().map(|p| p.name.as_str()))
            .chain(oauth1_providers.iter().map(|p| p.name.as_str()))
            .collect();
        if providers.is_empty() {
            return Err(error(
                "tisjwt",
                "at least one provider (tisjwt, jwt_providers, oauth_providers, api_token_providers, oauth1_providers) must be configured",
            ));
        }
        if let Some(twice) = oauth_providers
            .iter()
            .find(|o| jwt_providers.iter().any(|j| j.name == o.name))
        {
            return Err(error(
                "oauth_providers",
                format!("`{}` is also the name of a JWT provider", twice.name),
            ));
        }
        let claim_headers = jwt_providers
            .iter()
            .flat_map(|p| p.claim_headers.iter().map(|c| c.header.as_str()));
        let identity_names = [identity_headers.user.as_str(), identity_headers.tenant.as_str()];
        if let Some(clash) = claim_headers.clone().find(|h| identity_names.contains(h)) {
            return Err(error(
                "jwt_providers",
                format!("claim header `{clash}` is also an identity header"),
            ));
        }
        let default_rule = self.rules.is_none();
        let policy = compile_rules(self.rules, &providers)?;
        // A signed request is checked by one token service: a rule names at most one.
        for (i, rule) in policy.rules.iter().enumerate() {
            let mut signed =
                (rule.providers.iter()).filter(|p| oauth1_providers.iter().any(|o| &o.name == *p));
            if let (Some(first), Some(second)) = (signed.next(), signed.next()) {
                if default_rule {
                    return Err(error(
                        "rules",
                        format!("the default rule (every provider) would list two oauth1 providers (`{first}`, `{second}`): write rules that list one each"),
                    ));
                }
                return Err(error(
                    &format!("rules[{i}].providers"),
                    format!("lists two oauth1 providers (`{first}`, `{second}`): a rule may list one"),
                ));
            }
        }
        Ok(Config {
            plugin_version: self.plugin_version,
            realm: self.realm,
            identity_headers,
            policy,
            tisjwt,
            jwt_providers,
            oauth_providers,
            oauth1_providers,
            directory: self.directory.compile(sections.scope("directory", ""))?,
            ignored,
        })
    }
}

/// Without `rules`, one rule: every path, every configured provider, no anonymous access.
fn compile_rules(raw: Option<Vec<RawRule>>, providers: &[&str]) -> Result<Policy, ConfigError> {
    let Some(raw) = raw else {
        let everything = Rule {
            path_prefix: "/".to_owned(),
            methods: None,
            providers: providers.iter().map(|p| (*p).to_owned()).collect(),
            allow_anonymous: false,
            scopes: Vec::new(),
            basic_passwords: BasicPasswords::Refuse,
        };
        return Ok(Policy {
            rules: vec![everything],
        });
    };
    let rules = raw
        .into_iter()
        .enumerate()
        .map(|(i, rule)| compile_rule(i, rule, providers))
        .collect::<Result<_, _>>()?;
    Ok(Policy { rules })
}

fn compile_rule(i: usize, rule: RawRule, providers: &[&str]) -> Result<Rule, ConfigError> {
    let field = |name: &str| format!("rules[{i}].{name}");
    if !rule.path_prefix.starts_with('/') {
        return Err(error(&field("path_prefix"), "must start with `/`"));
    }
    if !crate::path::can_start_a_canonical_path(&rule.path_prefix) {
        return Err(error(
            &field("path_prefix"),
            "can never match: rules match the decoded path without `;` parameters, `//` or dot segments",
        ));
    }
    if rule.providers.is_empty() && !rule.allow_anonymous {
        return Err(error(
            &field("providers"),
            "must name a provider unless allow_anonymous is true",
        ));
    }
    if let Some(unknown) = rule.providers.iter().find(|p| !providers.contains(&p.as_str())) {
        return Err(error(
            &field("providers"),
            format!("`{unknown}` is not a configured provider"),
        ));
    }
    let methods = rule
        .methods
        .map(|methods| methods.iter().map(|m| m.to_ascii_uppercase()).collect());
    let basic_passwords = match rule.basic_passwords.as_deref() {
        None | Some("refuse") => BasicPasswords::Refuse,
        Some("pass") => BasicPasswords::Pass,
        Some(other) => {
            return Err(error(
                &field("basic_passwords"),
                format!("`{other}` is not `refuse` or `pass`"),
            ))
        }
    };
    Ok(Rule {
        path_prefix: rule.path_prefix,
        methods,
        providers: rule.providers,
        allow_anonymous: rule.allow_anonymous,
        scopes: rule.scopes,
        basic_passwords,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::Algorithm;
    use crate::tisjwt::License;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn parse(json: &str) -> Result<Config, ConfigError> {
        Config::from_json(json.as_bytes())
    }

    fn field_of(json: &str) -> String {
        parse(json).unwrap_err().field
    }

    #[test]
    fn a_minimal_configuration_gets_the_documented_defaults() {
        let config = parse(&format!(r#"{{"tisjwt":{{"secret":"{SECRET}"}}}}"#)).unwrap();
        assert_eq!(config.identity_headers.user, "x-tokengate-user");
        assert_eq!(config.identity_headers.tenant, "x-tokengate-tenant");
        assert_eq!(config.realm, "tokengate");
        let tisjwt = config.tisjwt.unwrap();
        assert_eq!(tisjwt.algorithms, vec![Algorithm::HS256]);
        assert_eq!(tisjwt.rules.clock_skew_seconds, 60);
        assert!(tisjwt.rules.require_exp);
        assert!(tisjwt.allow_query_parameter);
        assert_eq!(tisjwt.licenses, None);
        assert_eq!(config.policy.rules.len(), 1);
        assert_eq!(config.policy.rules[0].providers, ["tisjwt"]);
    }

    #[test]
    fn unknown_fields_are_named() {
        assert_eq!(
            field_of(&format!(r#"{{"tisjwt":{{"secret":"{SECRET}","secrett":1}}}}"#)),
            "tisjwt.secrett"
        );
        let err = parse(&format!(r#"{{"tisjwt":{{"secret":"{SECRET}"}},"colour":1}}"#)).unwrap_err();
        assert!(err.problem.contains("unknown field `colour`"), "{err}");
    }

    #[test]
    fn invalid_values_are_named() {
        let cases = [
            (r#"{"tisjwt":{"secret":"short"}}"#.to_string(), "tisjwt.secret"),
            (
                format!(r#"{{"tisjwt":{{"secret":"{SECRET}","algorithms":["RS256"]}}}}"#),
                "tisjwt.algorithms",
            ),
            (
                format!(r#"{{"tisjwt":{{"secret":"{SECRET}","algorithms":["none"]}}}}"#),
                "tisjwt.algorithms",
            ),
            (
                format!(r#"{{"tisjwt":{{"secret":"{SECRET}","algorithms":[]}}}}"#),
                "tisjwt.algorithms",
            ),
            (
                format!(r#"{{"tisjwt":{{"secret":"{SECRET}","algorithms":["HS256","HS512"]}}}}"#),
                "tisjwt.algorithms",
            ),
            (
                format!(r#"{{"tisjwt":{{"secret":"{SECRET}","clock_skew_seconds":-1}}}}"#),
                "tisjwt.clock_skew_seconds",
            ),
            (
                format!(r#"{{"tisjwt":{{"secret":"{SECRET}","clock_skew_seconds":86401}}}}"#),
                "tisjwt.clock_skew_seconds",
            ),
            (
                format!(r#"{{"tisjwt":{{"secret":"{SECRET}","audiences":[]}}}}"#),
                "tisjwt.audiences",
            ),
            (
                format!(
                    r#"{{"tisjwt":{{"secret":"{SECRET}","licenses":[{{"client_key":"a","valid_until":"2027-02-30"}}]}}}}"#
                ),
                "tisjwt.licenses[0].valid_until",
            ),
            (
                format!(r#"{{"tisjwt":{{"secret":"{SECRET}"}},"identity_headers":{{"user":"X-User"}}}}"#),
                "identity_headers.user",
            ),
            (
                format!(
                    r#"{{"tisjwt":{{"secret":"{SECRET}"}},"identity_headers":{{"tenant":"authorization"}}}}"#
                ),
                "identity_headers.tenant",
            ),
            (
                format!(
                    r#"{{"tisjwt":{{"secret":"{SECRET}"}},"identity_headers":{{"user":"a","tenant":"a"}}}}"#
                ),
                "identity_headers.tenant",
            ),
            (
                format!(r#"{{"tisjwt":{{"secret":"{SECRET}"}},"realm":"a\"b"}}"#),
                "realm",
            ),
            (r#"{}"#.to_string(), "tisjwt"),
            (
                format!(
                    r#"{{"tisjwt":{{"secret":"{SECRET}"}},"rules":[{{"path_prefix":"/","providers":["x"]}}]}}"#
                ),
                "rules[0].providers",
            ),
            (
                format!(
                    r#"{{"tisjwt":{{"secret":"{SECRET}"}},"rules":[{{"path_prefix":"/","providers":[]}}]}}"#
                ),
                "rules[0].providers",
            ),
            (
                format!(
                    r#"{{"tisjwt":{{"secret":"{SECRET}"}},"rules":[{{"path_prefix":"x","providers":["tisjwt"]}}]}}"#
                ),
                "rules[0].path_prefix",
            ),
            (
                format!(
                    r#"{{"tisjwt":{{"secret":"{SECRET}"}},"rules":[{{"path_prefix":"/rest/api/%33/","providers":["tisjwt"]}}]}}"#
                ),
                "rules[0].path_prefix",
            ),
            (
                format!(
                    r#"{{"tisjwt":{{"secret":"{SECRET}"}},"directory":{{"callout":{{"cluster":"jira","path":"/u"}}}}}}"#
                ),
                "directory.callout.path",
            ),
            (
                format!(
                    r#"{{"tisjwt":{{"secret":"{SECRET}"}},"directory":{{"inactive_users":["a"],"callout":{{"cluster":"jira"}}}}}}"#
                ),
                "directory.callout",
            ),
        ];
        for (json, field) in cases {
            assert_eq!(field_of(&json), field, "{json}");
        }
    }

    #[test]
    fn the_fallback_configuration_has_no_rule_to_pass_by() {
        assert!(Config::refuse_everything()
            .policy
            .route("GET", &crate::path::canonical("/").unwrap())
            .is_none());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for junk in ["", "null", "[]", "{", "\u{0}", "{\"tisjwt\":null}"] {
            assert!(parse(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn licences_are_compiled_to_end_of_day() {
        let config = parse(&format!(
            r#"{{"tisjwt":{{"secret":"{SECRET}","licenses":[{{"client_key":"t","valid_until":"1970-01-01"}}]}}}}"#
        ))
        .unwrap();
        assert_eq!(
            config.tisjwt.unwrap().licenses,
            Some(vec![License {
                client_key: "t".into(),
                valid_until: 86_400
            }])
        );
    }

    #[test]
    fn oauth_providers_take_audiences_and_the_jwt_issuers_they_introspect() {
        let provider = |extra: &str| {
            format!(
                r#"{{"oauth_providers":{{"kc":{{"introspection":{{"cluster":"kc","path":"/i","client_id":"a","client_secret":"b"}}{extra}}}}}}}"#
            )
        };
        let config = parse(&provider(
            r#","audiences":["https://jira.example"],"jwt_issuers":["https://kc/realms/jira"]"#,
        ))
        .unwrap();
        assert_eq!(config.oauth_providers[0].audiences, ["https://jira.example"]);
        assert_eq!(config.oauth_providers[0].jwt_issuers, ["https://kc/realms/jira"]);
        let defaults = parse(&provider("")).unwrap();
        assert!(defaults.oauth_providers[0].audiences.is_empty());
        assert!(defaults.oauth_providers[0].jwt_issuers.is_empty());
        assert_eq!(
            field_of(&provider(r#","audiences":[]"#)),
            "oauth_providers.kc.audiences"
        );
        assert_eq!(
            field_of(&provider(r#","jwt_issuers":[""]"#)),
            "oauth_providers.kc.jwt_issuers"
        );
    }

    #[test]
    fn api_token_providers_keep_no_counter_and_accept_the_old_lockout_fields_as_no_ops() {
        let provider = |extra: &str| {
            format!(
                r#"{{"api_token_providers":{{"t":{{"introspection":{{"cluster":"t","path":"/i","client_id":"a","client_secret":"b"}}{extra}}}}}}}"#
            )
        };
        let defaults = parse(&provider("")).unwrap();
        let settings = defaults.oauth_providers[0].api_tokens.clone().unwrap();
        assert_eq!(settings.login_url, "/login.jsp");
        assert_eq!(settings.locked_cache_ttl_seconds, 5);
        assert_eq!(defaults.oauth_providers[0].cache_ttl_seconds, 10);
        let old = parse(&provider(
            r#","lockout":{"max_failures":0,"window_seconds":60,"login_url":"https://j/login.jsp"},"reset_path_prefix":"nope","locked_cache_ttl_seconds":100000"#,
        ))
        .unwrap();
        let settings = old.oauth_providers[0].api_tokens.clone().unwrap();
        assert_eq!(
            old.ignored,
            [
                "api_token_providers.t.lockout.max_failures",
                "api_token_providers.t.lockout.window_seconds",
                "api_token_providers.t.reset_path_prefix"
            ],
            "deprecated fields are named, to be logged"
        );
        assert!(defaults.ignored.is_empty());
        assert_eq!(settings.login_url, "https://j/login.jsp");
        assert_eq!(settings.locked_cache_ttl_seconds, 300, "at most 5 minutes");
        assert_eq!(
            field_of(&provider(r#","lockout":{"login_url":"a;b"}"#)),
            "api_token_providers.t.lockout.login_url"
        );
    }

    #[test]
    fn each_provider_and_the_directory_are_scoped_by_their_own_section_only() {
        let with = |corp_secret: &str, authorization: &str, realm: &str| {
            let json = format!(
                r#"{{"realm": "{realm}",
                    "jwt_providers": {{"corp": {{"hmac_secret": "{corp_secret}"}},
                                      "same": {{"hmac_secret": "a-demo-secret-that-is-32-bytes!!"}}}},
                    "oauth_providers": {{"kc": {{"userinfo": {{"cluster": "kc", "path": "/me"}}}}}},
                    "directory": {{"callout": {{"cluster": "jira", "authorization": "{authorization}"}}}}}}"#
            );
            parse(&json).unwrap()
        };
        let directory_scope = |config: &Config| match &config.directory {
            Directory::Callout(callout) => callout.scope,
            Directory::Static { .. } => panic!("a callout directory"),
        };
        let a = with("secret-of-corp-a-0123456789abcdef", "Basic YQ==", "a");
        let b = with("secret-of-corp-b-0123456789abcdef", "Basic Yg==", "b");
        assert_ne!(a.jwt_providers[0].scope, b.jwt_providers[0].scope, "corp differs");
        assert_eq!(
            a.jwt_providers[1].scope, b.jwt_providers[1].scope,
            "same is the same"
        );
        assert_eq!(a.oauth_providers[0].scope, b.oauth_providers[0].scope);
        assert_ne!(
            directory_scope(&a),
            directory_scope(&b),
            "another service account"
        );
        let c = with("secret-of-corp-a-0123456789abcdef", "Basic YQ==", "c");
        assert_eq!(
            a.jwt_providers[0].scope, c.jwt_providers[0].scope,
            "the realm is no part"
        );
        assert_eq!(directory_scope(&a), directory_scope(&c));
        assert_ne!(
            a.jwt_providers[0].scope, a.jwt_providers[1].scope,
            "two names, two scopes"
        );
    }
}
