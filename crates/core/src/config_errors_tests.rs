//! Every configuration error, through [`Config::from_json`]: one row per error branch of every
//! provider (JWT, OAuth, API token, TISJWT), the directory, the rules and the top level, JSON in
//! and the exact message an operator sees out. Kept apart from the configuration code so that
//! moving it (per provider, beside the type it compiles into) leaves these rows as they are.

use crate::config::Config;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

/// 32 bytes: the shortest HMAC secret accepted.
const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// The error `Config::from_json` gives for `config`, as the shell logs it.
fn error_of(config: &Value) -> String {
    match Config::from_json(config.to_string().as_bytes()) {
        Ok(_) => format!("(accepted) {config}"),
        Err(e) => e.to_string(),
    }
}

/// Checks every row, reporting all mismatches at once.
fn check(rows: &[(&str, Value, String)]) {
    let wrong: Vec<String> = rows
        .iter()
        .filter_map(|(case, config, expected)| {
            let got = error_of(config);
            (got != *expected).then(|| format!("{case}:\n  expected {expected}\n  got      {got}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn field(path: &str, problem: &str) -> String {
    format!("invalid configuration: field `{path}`: {problem}")
}

/// A configuration with the one JWT provider `p` of these fields.
fn jwt(fields: Value) -> Value {
    json!({ "jwt_providers": { "p": fields } })
}

/// An introspection endpoint with client credentials.
fn introspection() -> Value {
    json!({"cluster": "idp", "path": "/introspect", "client_id": "gateway", "client_secret": "s3cr3t"})
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    if let Some(object) = base.as_object_mut() {
        object.insert(key.to_owned(), value);
    }
    base
}

/// base64url of `n` bytes.
fn k(n: usize) -> String {
    URL_SAFE_NO_PAD.encode(vec![7_u8; n])
}

#[test]
fn every_jwt_provider_error_names_its_field_and_problem() {
    let hmac = json!({"hmac_secret": SECRET});
    let remote = json!({"remote_jwks": {"cluster": "idp", "path": "/jwks"}});
    let keys_problem = "give exactly one of local_jwks, pem, hmac_secret, hmac_secret_base64url, remote_jwks";
    let rows = [
        (
            "a provider named tisjwt",
            json!({"jwt_providers": {"tisjwt": hmac.clone()}}),
            field("jwt_providers", "`tisjwt` cannot name a JWT provider"),
        ),
        (
            "a provider with an empty name",
            json!({"jwt_providers": {"": hmac.clone()}}),
            field("jwt_providers", "`` cannot name a JWT provider"),
        ),
        (
            "no key source",
            jwt(json!({})),
            field("jwt_providers.p.keys", keys_problem),
        ),
        (
            "two key sources",
            jwt(json!({"hmac_secret": SECRET, "pem": "x"})),
            field("jwt_providers.p.keys", keys_problem),
        ),
        (
            "a local JWKS that is not one",
            jwt(json!({"local_jwks": {"kees": []}})),
            field(
                "jwt_providers.p.local_jwks",
                "not a JWKS: expected JSON {\"keys\": [...]}",
            ),
        ),
        (
            "a local JWKS whose oct key is too short for its alg",
            jwt(json!({"local_jwks": {"keys": [{"kty": "oct", "kid": "a", "alg": "HS256", "k": k(16)}]}})),
            field(
                "jwt_providers.p.local_jwks.keys[0]",
                "key 0 (`kid` `a`): `k` has 16 bytes; HS256 needs at least 32 (RFC 7518 section 3.2)",
            ),
        ),
        (
            "a PEM that is not one",
            jwt(json!({"pem": "not a pem"})),
            field("jwt_providers.p.pem", "malformed PEM"),
        ),
        (
            "a short hmac_secret",
            jwt(json!({"hmac_secret": "short"})),
            field("jwt_providers.p.hmac_secret", "must be at least 32 bytes"),
        ),
        (
            "an hmac_secret_base64url that is not base64url",
            jwt(json!({"hmac_secret_base64url": "not*base64"})),
            field(
                "jwt_providers.p.hmac_secret_base64url",
                "is not base64url (RFC 4648 section 5)",
            ),
        ),
        (
            "a short hmac_secret_base64url",
            jwt(json!({"hmac_secret_base64url": k(31)})),
            field(
                "jwt_providers.p.hmac_secret_base64url",
                "must be at least 32 bytes",
            ),
        ),
        (
            "a remote JWKS without a cluster",
            jwt(json!({"remote_jwks": {"cluster": "", "path": "/jwks"}})),
            field(
                "jwt_providers.p.remote_jwks.cluster",
                "must name an Envoy cluster",
            ),
        ),
        (
            "a remote JWKS path without a leading slash",
            jwt(json!({"remote_jwks": {"cluster": "idp", "path": "jwks"}})),
            field("jwt_providers.p.remote_jwks.path", "must start with `/`"),
        ),
        (
            "a remote JWKS refreshed every 0 seconds",
            jwt(json!({"remote_jwks": {"cluster": "idp", "path": "/jwks", "refresh_interval_seconds": 0}})),
            field(
                "jwt_providers.p.remote_jwks.refresh_interval_seconds",
                "must be at least 1",
            ),
        ),
        (
            "no algorithm",
            jwt(with(hmac.clone(), "algorithms", json!([]))),
            field("jwt_providers.p.algorithms", "must name at least one algorithm"),
        ),
        (
            "Ed448",
            jwt(with(remote.clone(), "algorithms", json!(["Ed448"]))),
            field(
                "jwt_providers.p.algorithms",
                "`Ed448` is not supported (Ed25519 is: `Ed25519` or `EdDSA`)",
            ),
        ),
        (
            "an algorithm that does not exist",
            jwt(with(remote.clone(), "algorithms", json!(["none"]))),
            field(
                "jwt_providers.p.algorithms",
                "`none` is not a supported signature algorithm",
            ),
        ),
        (
            "HS512 with a 32-byte secret",
            jwt(with(hmac.clone(), "algorithms", json!(["HS512"]))),
            field(
                "jwt_providers.p.algorithms",
                "`HS512` needs an HMAC secret of at least 64 bytes (RFC 7518 section 3.2)",
            ),
        ),
        (
            "HS256 with local keys none of which is an HS256 oct key",
            jwt(json!({
                "local_jwks": {"keys": [{"kty": "oct", "kid": "a", "alg": "HS384", "k": k(48)}]},
                "algorithms": ["HS256"],
            })),
            field(
                "jwt_providers.p.algorithms",
                "`HS256` needs an `oct` key with `\"alg\": \"HS256\"` in local_jwks",
            ),
        ),
        (
            "HS256 with a remote JWKS",
            jwt(with(remote.clone(), "algorithms", json!(["HS256"]))),
            field(
                "jwt_providers.p.algorithms",
                "`HS256` cannot be verified with public keys (HS* needs hmac_secret, \
                 hmac_secret_base64url or `oct` keys in local_jwks; a remote JWKS never supplies them)",
            ),
        ),
        (
            "RS256 with an HMAC secret",
            jwt(with(hmac.clone(), "algorithms", json!(["RS256"]))),
            field(
                "jwt_providers.p.algorithms",
                "`RS256` cannot be verified with an HMAC secret",
            ),
        ),
        (
            "an empty audience list",
            jwt(with(hmac.clone(), "audiences", json!([]))),
            field(
                "jwt_providers.p.audiences",
                "must not be empty (omit it to skip the audience check)",
            ),
        ),
        (
            "a clock skew over a day",
            jwt(with(hmac.clone(), "clock_skew_seconds", json!(86_401))),
            field("jwt_providers.p.clock_skew_seconds", "must be at most 86400"),
        ),
        (
            "an empty user claim",
            jwt(with(hmac.clone(), "user_claim", json!(""))),
            field("jwt_providers.p.user_claim", "must name a claim"),
        ),
        (
            "a claim header that is not a lower-case name",
            jwt(with(
                hmac.clone(),
                "claims_to_headers",
                json!([{"claim": "email", "header": "X-Email"}]),
            )),
            field(
                "jwt_providers.p.claims_to_headers[0].header",
                "`X-Email` is not a lower-case header name",
            ),
        ),
        (
            "a claim header that carries credentials",
            jwt(with(
                hmac.clone(),
                "claims_to_headers",
                json!([{"claim": "email", "header": "cookie"}]),
            )),
            field(
                "jwt_providers.p.claims_to_headers[0].header",
                "`cookie` cannot be used as an identity header",
            ),
        ),
        (
            "a claim header that is also the user header",
            jwt(with(
                hmac.clone(),
                "claims_to_headers",
                json!([{"claim": "email", "header": "x-tokengate-user"}]),
            )),
            field(
                "jwt_providers",
                "claim header `x-tokengate-user` is also an identity header",
            ),
        ),
    ];
    check(&rows);
}

#[test]
fn every_oauth_provider_error_names_its_field_and_problem() {
    let oauth = |fields: Value| json!({ "oauth_providers": { "kc": fields } });
    let endpoint = |fields: Value| oauth(json!({ "introspection": fields }));
    let rows = [
        (
            "a provider named tisjwt",
            json!({"oauth_providers": {"tisjwt": {"introspection": introspection()}}}),
            field("oauth_providers", "`tisjwt` cannot name an OAuth provider"),
        ),
        (
            "a provider with an empty name",
            json!({"oauth_providers": {"": {"introspection": introspection()}}}),
            field("oauth_providers", "`` cannot name an OAuth provider"),
        ),
        (
            "neither introspection nor userinfo",
            oauth(json!({})),
            field(
                "oauth_providers.kc",
                "give exactly one of introspection, userinfo",
            ),
        ),
        (
            "both introspection and userinfo",
            oauth(json!({"introspection": introspection(), "userinfo": {"cluster": "idp", "path": "/me"}})),
            field(
                "oauth_providers.kc",
                "give exactly one of introspection, userinfo",
            ),
        ),
        (
            "a client_auth other than basic or post",
            endpoint(with(introspection(), "client_auth", json!("jwt"))),
            field(
                "oauth_providers.kc.introspection.client_auth",
                "`jwt` is not `basic` or `post`",
            ),
        ),
        (
            "an empty client_id",
            endpoint(with(introspection(), "client_id", json!(""))),
            field(
                "oauth_providers.kc.introspection",
                "client_id and client_secret are required",
            ),
        ),
        (
            "an empty client_secret",
            endpoint(with(introspection(), "client_secret", json!(""))),
            field(
                "oauth_providers.kc.introspection",
                "client_id and client_secret are required",
            ),
        ),
        (
            "an introspection endpoint without a cluster",
            endpoint(with(introspection(), "cluster", json!(""))),
            field(
                "oauth_providers.kc.path",
                "needs a cluster and a path starting with `/`",
            ),
        ),
        (
            "a userinfo path without a leading slash",
            oauth(json!({"userinfo": {"cluster": "idp", "path": "me"}})),
            field(
                "oauth_providers.kc.path",
                "needs a cluster and a path starting with `/`",
            ),
        ),
        (
            "an empty audience list",
            oauth(json!({"introspection": introspection(), "audiences": []})),
            field(
                "oauth_providers.kc.audiences",
                "must not be empty (omit it to skip the audience check)",
            ),
        ),
        (
            "an empty JWT issuer",
            oauth(json!({"introspection": introspection(), "jwt_issuers": ["https://idp", ""]})),
            field(
                "oauth_providers.kc.jwt_issuers",
                "must not contain an empty issuer",
            ),
        ),
        (
            "the name of a JWT provider",
            json!({
                "jwt_providers": {"kc": {"hmac_secret": SECRET}},
                "oauth_providers": {"kc": {"introspection": introspection()}},
            }),
            field("oauth_providers", "`kc` is also the name of a JWT provider"),
        ),
        (
            "an introspection endpoint without client credentials",
            endpoint(json!({"cluster": "idp", "path": "/introspect"})),
            field(
                "oauth_providers.kc.introspection",
                "missing field `client_id` at line 1 column 80",
            ),
        ),
    ];
    check(&rows);
}

#[test]
fn every_api_token_provider_error_names_its_field_and_problem() {
    let api = |fields: Value| json!({ "api_token_providers": { "at": fields } });
    let endpoint = |fields: Value| api(json!({ "introspection": fields }));
    let rows = [
        (
            "a provider named tisjwt",
            json!({"api_token_providers": {"tisjwt": {"introspection": introspection()}}}),
            field("api_token_providers", "`tisjwt` cannot name an OAuth provider"),
        ),
        (
            "a login URL with a control character",
            api(json!({"introspection": introspection(), "lockout": {"login_url": "/login\n.jsp"}})),
            field(
                "api_token_providers.at.lockout.login_url",
                "must not contain control characters or `;`",
            ),
        ),
        (
            "a login URL with a semicolon",
            api(json!({"introspection": introspection(), "lockout": {"login_url": "/login;jsessionid=1"}})),
            field(
                "api_token_providers.at.lockout.login_url",
                "must not contain control characters or `;`",
            ),
        ),
        (
            "a client_auth other than basic or post",
            endpoint(with(introspection(), "client_auth", json!("none"))),
            field(
                "api_token_providers.at.introspection.client_auth",
                "`none` is not `basic` or `post`",
            ),
        ),
        (
            "an empty client_secret",
            endpoint(with(introspection(), "client_secret", json!(""))),
            field(
                "api_token_providers.at.introspection",
                "client_id and client_secret are required",
            ),
        ),
        (
            "an introspection path without a leading slash",
            endpoint(with(introspection(), "path", json!("introspect"))),
            field(
                "api_token_providers.at.path",
                "needs a cluster and a path starting with `/`",
            ),
        ),
        (
            "the name of an OAuth provider",
            json!({
                "oauth_providers": {"kc": {"introspection": introspection()}},
                "api_token_providers": {"kc": {"introspection": introspection()}},
            }),
            field("api_token_providers", "`kc` is also an oauth provider's name"),
        ),
        (
            "the name of a JWT provider",
            json!({
                "jwt_providers": {"at": {"hmac_secret": SECRET}},
                "api_token_providers": {"at": {"introspection": introspection()}},
            }),
            field("oauth_providers", "`at` is also the name of a JWT provider"),
        ),
        (
            "no introspection endpoint",
            api(json!({})),
            field(
                "api_token_providers.at",
                "missing field `introspection` at line 1 column 31",
            ),
        ),
    ];
    check(&rows);
}

#[test]
fn every_oauth1_provider_error_names_its_field_and_problem() {
    let link = |fields: Value| {
        let mut provider = json!({"introspection": introspection()});
        for (k, v) in fields.as_object().cloned().unwrap_or_default() {
            provider[k] = v;
        }
        json!({ "oauth1_providers": { "applinks": provider } })
    };
    let rows = [
        (
            "a public_base_url with a path",
            link(json!({"public_base_url": "https://jira.example.com/jira"})),
            field(
                "oauth1_providers.applinks.public_base_url",
                "`https://jira.example.com/jira` is not an http or https scheme://host[:port] without a path",
            ),
        ),
        (
            "a public_base_url of another scheme",
            link(json!({"public_base_url": "ftp://jira.example.com"})),
            field(
                "oauth1_providers.applinks.public_base_url",
                "`ftp://jira.example.com` is not an http or https scheme://host[:port] without a path",
            ),
        ),
        (
            "a public_base_url with user information",
            link(json!({"public_base_url": "https://me@jira.example.com"})),
            field(
                "oauth1_providers.applinks.public_base_url",
                "`https://me@jira.example.com` is not an http or https scheme://host[:port] without a path",
            ),
        ),
        (
            "a public_base_url with a bad port",
            link(json!({"public_base_url": "https://jira.example.com:99999"})),
            field(
                "oauth1_providers.applinks.public_base_url",
                "`https://jira.example.com:99999` is not an http or https scheme://host[:port] without a path",
            ),
        ),
        (
            "a realm with a quote",
            link(json!({"realm": "say \"hi\""})),
            field(
                "oauth1_providers.applinks.realm",
                "must be printable ASCII without quotes or backslashes",
            ),
        ),
        (
            "a zero timestamp window",
            link(json!({"timestamp_window_seconds": 0})),
            field(
                "oauth1_providers.applinks.timestamp_window_seconds",
                "must be between 1 and 86400",
            ),
        ),
        (
            "a timestamp window over a day",
            link(json!({"timestamp_window_seconds": 86401})),
            field(
                "oauth1_providers.applinks.timestamp_window_seconds",
                "must be between 1 and 86400",
            ),
        ),
        (
            "no nonce buckets",
            link(json!({"nonce_store": {"buckets": 0}})),
            field(
                "oauth1_providers.applinks.nonce_store.buckets",
                "must be between 1 and 1048576",
            ),
        ),
        (
            "too many nonces per bucket",
            link(json!({"nonce_store": {"per_bucket": 1025}})),
            field(
                "oauth1_providers.applinks.nonce_store.per_bucket",
                "must be between 1 and 1024",
            ),
        ),
        (
            "an unknown nonce_store field",
            link(json!({"nonce_store": {"size": 1}})),
            field(
                "oauth1_providers.applinks.nonce_store.size",
                "unknown field `size`, expected `buckets` or `per_bucket` at line 1 column 156",
            ),
        ),
        (
            "a zero form body bound",
            link(json!({"form_body": {"max_bytes": 0}})),
            field(
                "oauth1_providers.applinks.form_body.max_bytes",
                "must be between 1 and 1048576",
            ),
        ),
        (
            "an empty client_secret",
            link(json!({"introspection": with(introspection(), "client_secret", json!(""))})),
            field(
                "oauth1_providers.applinks.introspection",
                "client_id and client_secret are required",
            ),
        ),
        (
            "an introspection path without a leading slash",
            link(json!({"introspection": with(introspection(), "path", json!("introspect"))})),
            field(
                "oauth1_providers.applinks.path",
                "needs a cluster and a path starting with `/`",
            ),
        ),
        (
            "no introspection endpoint",
            json!({"oauth1_providers": {"applinks": {}}}),
            field(
                "oauth1_providers.applinks",
                "missing field `introspection` at line 1 column 34",
            ),
        ),
        (
            "the name tisjwt",
            json!({"oauth1_providers": {"tisjwt": {"introspection": introspection()}}}),
            field("oauth1_providers", "`tisjwt` cannot name an OAuth 1.0a provider"),
        ),
        (
            "the name of an API-token provider",
            json!({
                "api_token_providers": {"at": {"introspection": introspection()}},
                "oauth1_providers": {"at": {"introspection": introspection()}},
            }),
            field("oauth1_providers", "`at` is also the name of another provider"),
        ),
        (
            "two on one rule",
            json!({
                "oauth1_providers": {"a": {"introspection": introspection()}, "b": {"introspection": introspection()}},
                "rules": [{"path_prefix": "/", "providers": ["a", "b"]}],
            }),
            field(
                "rules[0].providers",
                "lists two oauth1 providers (`a`, `b`): a rule may list one",
            ),
        ),
        (
            "two and no rules",
            json!({
                "oauth1_providers": {"a": {"introspection": introspection()}, "b": {"introspection": introspection()}},
            }),
            field(
                "rules",
                "the default rule (every provider) would list two oauth1 providers (`a`, `b`): write rules that list one each",
            ),
        ),
        (
            "an unknown field",
            link(json!({"consumer_key": "x"})),
            field(
                "oauth1_providers.applinks.consumer_key",
                "unknown field `consumer_key`, expected one of `introspection`, `timeout_ms`, `cache_ttl_seconds`, `negative_cache_ttl_seconds`, `public_base_url`, `realm`, `timestamp_window_seconds`, `nonce_store`, `form_body` at line 1 column 47",
            ),
        ),
    ];
    check(&rows);
}

#[test]
fn an_oauth1_provider_gets_the_documented_defaults() {
    let config = Config::from_json(
        json!({"realm": "jira", "oauth1_providers": {"applinks": {"introspection": introspection()}}})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let provider = &config.oauth1_providers[0];
    assert_eq!(
        (
            provider.cache_ttl_seconds,
            provider.negative_cache_ttl_seconds,
            provider.timestamp_window_seconds,
            provider.nonces.buckets,
            provider.nonces.per_bucket,
            provider.form_body.max_bytes,
            provider.form_body.timeout_ms,
            provider.introspection.timeout_ms,
        ),
        (10, 10, 300, 1024, 32, 65_536, 5_000, 1_000)
    );
    assert_eq!(
        (provider.realm.as_str(), provider.public_base.as_ref()),
        ("jira", None)
    );
    assert_eq!(
        config.policy.rules[0].providers,
        ["applinks"],
        "the default rule lists it"
    );
    let with_url = Config::from_json(
        json!({"oauth1_providers": {"applinks": {"introspection": introspection(),
            "public_base_url": "HTTPS://Jira.example.com:8443/"}}})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let provider = &with_url.oauth1_providers[0];
    assert_eq!(
        provider.realm, "HTTPS://Jira.example.com:8443",
        "the realm defaults to the public URL"
    );
    let base = provider.public_base.as_ref().unwrap();
    assert_eq!(
        (base.scheme.as_str(), base.authority.as_str()),
        ("https", "Jira.example.com:8443")
    );
}

#[test]
fn every_tisjwt_provider_error_names_its_field_and_problem() {
    let tisjwt = |fields: Value| json!({ "tisjwt": fields });
    let rows = [
        (
            "a short secret",
            tisjwt(json!({"secret": "short"})),
            field("tisjwt.secret", "must be at least 32 bytes"),
        ),
        (
            "no algorithm",
            tisjwt(json!({"secret": SECRET, "algorithms": []})),
            field("tisjwt.algorithms", "must name at least one algorithm"),
        ),
        (
            "HS384 with a 32-byte secret",
            tisjwt(json!({"secret": SECRET, "algorithms": ["HS384"]})),
            field("tisjwt.algorithms", "`HS384` needs a secret of at least 48 bytes"),
        ),
        (
            "an asymmetric algorithm",
            tisjwt(json!({"secret": SECRET, "algorithms": ["RS256"]})),
            field("tisjwt.algorithms", "`RS256` is not one of HS256, HS384, HS512"),
        ),
        (
            "a clock skew over a day",
            tisjwt(json!({"secret": SECRET, "clock_skew_seconds": 86_401})),
            field("tisjwt.clock_skew_seconds", "must be at most 86400"),
        ),
        (
            "an empty audience list",
            tisjwt(json!({"secret": SECRET, "audiences": []})),
            field(
                "tisjwt.audiences",
                "must not be empty (omit it to skip the audience check)",
            ),
        ),
        (
            "a licence valid until no date",
            tisjwt(json!({"secret": SECRET, "licenses": [
                {"client_key": "a", "valid_until": "2030-01-01"},
                {"client_key": "b", "valid_until": "next year"},
            ]})),
            field(
                "tisjwt.licenses[1].valid_until",
                "`next year` is not a date YYYY-MM-DD",
            ),
        ),
    ];
    check(&rows);
}

#[test]
fn every_directory_error_names_its_field_and_problem() {
    let tisjwt = json!({"secret": SECRET});
    let directory = |fields: Value| json!({ "tisjwt": tisjwt, "directory": fields });
    let callout = json!({"cluster": "jira", "path": "/rest/api/2/user?username={user}"});
    let rows = [
        (
            "a callout beside static users",
            directory(json!({"callout": callout, "users": [{"name": "fred"}]})),
            field(
                "directory.callout",
                "cannot be combined with directory.users or inactive_users",
            ),
        ),
        (
            "a callout beside inactive users",
            directory(json!({"callout": callout, "inactive_users": ["fred"]})),
            field(
                "directory.callout",
                "cannot be combined with directory.users or inactive_users",
            ),
        ),
        (
            "a callout path without {user}",
            directory(json!({"callout": with(callout.clone(), "path", json!("/rest/api/2/myself"))})),
            field(
                "directory.callout.path",
                "must start with `/` and contain `{user}`",
            ),
        ),
        (
            "a callout path without a leading slash",
            directory(json!({"callout": with(callout.clone(), "path", json!("user?username={user}"))})),
            field(
                "directory.callout.path",
                "must start with `/` and contain `{user}`",
            ),
        ),
        (
            "a callout without a cluster",
            directory(json!({"callout": with(callout, "cluster", json!(""))})),
            field("directory.callout.cluster", "must name an Envoy cluster"),
        ),
    ];
    check(&rows);
}

#[test]
fn every_rule_error_names_its_field_and_problem() {
    let rules = |rules: Value| json!({ "tisjwt": {"secret": SECRET}, "rules": rules });
    let rows = [
        (
            "a prefix without a leading slash",
            rules(json!([{"path_prefix": "rest/", "providers": ["tisjwt"]}])),
            field("rules[0].path_prefix", "must start with `/`"),
        ),
        (
            "a prefix no canonical path starts with",
            rules(json!([
                {"path_prefix": "/", "providers": ["tisjwt"]},
                {"path_prefix": "/rest//api/", "providers": ["tisjwt"]},
            ])),
            field(
                "rules[1].path_prefix",
                "can never match: rules match the decoded path without `;` parameters, `//` or dot segments",
            ),
        ),
        (
            "no provider and no anonymous access",
            rules(json!([{"path_prefix": "/", "providers": []}])),
            field(
                "rules[0].providers",
                "must name a provider unless allow_anonymous is true",
            ),
        ),
        (
            "a provider that is not configured",
            rules(json!([{"path_prefix": "/", "providers": ["tisjwt", "corp"]}])),
            field("rules[0].providers", "`corp` is not a configured provider"),
        ),
        (
            "basic_passwords other than refuse or pass",
            rules(json!([{"path_prefix": "/", "providers": ["tisjwt"], "basic_passwords": "check"}])),
            field("rules[0].basic_passwords", "`check` is not `refuse` or `pass`"),
        ),
    ];
    check(&rows);
}

#[test]
fn every_top_level_error_names_its_field_and_problem() {
    let tisjwt = json!({"secret": SECRET});
    let rows = [
        (
            "no provider at all",
            json!({}),
            field(
                "tisjwt",
                "at least one provider (tisjwt, jwt_providers, oauth_providers, api_token_providers, oauth1_providers) must be configured",
            ),
        ),
        (
            "a realm with a quote",
            json!({"tisjwt": tisjwt, "realm": "say \"hi\""}),
            field("realm", "must be printable ASCII without quotes or backslashes"),
        ),
        (
            "a plugin version with a control character",
            json!({"tisjwt": tisjwt, "plugin_version": "1.0\u{7}"}),
            field("plugin_version", "must not contain control characters"),
        ),
        (
            "one header for the user and the tenant",
            json!({"tisjwt": tisjwt, "identity_headers": {"user": "x-who", "tenant": "x-who"}}),
            field(
                "identity_headers.tenant",
                "must differ from identity_headers.user",
            ),
        ),
        (
            "a user header that is not a lower-case name",
            json!({"tisjwt": tisjwt, "identity_headers": {"user": "X-Who"}}),
            field("identity_headers.user", "`X-Who` is not a lower-case header name"),
        ),
        (
            "a tenant header that routes the request",
            json!({"tisjwt": tisjwt, "identity_headers": {"tenant": "host"}}),
            field(
                "identity_headers.tenant",
                "`host` cannot be used as an identity header",
            ),
        ),
    ];
    check(&rows);
}

#[test]
fn a_configuration_that_is_not_json_is_an_error_at_the_root() {
    let rows = [
        ("{", "EOF while parsing an object at line 1 column 1"),
        ("", "EOF while parsing a value at line 1 column 0"),
        (r#"{"realm": "a",}"#, "trailing comma at line 1 column 15"),
    ];
    for (bytes, problem) in rows {
        let got = Config::from_json(bytes.as_bytes())
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert_eq!(got, Err(field("(root)", problem)), "{bytes:?}");
    }
}
