//! The demo application that stands in for Jira and Confluence behind tokengate, and a
//! helper that mints `tisjwt` tokens for a shared secret.
//!
//! The application trusts the identity headers the filter sets, as a real application behind
//! tokengate would, and records every request it receives so tests can see what got through.

pub mod keys;
mod server;

pub use server::{Received, Reply, Server};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{Algorithm as _, AlgorithmSignature as _};
use serde_json::{json, Map, Value};
use std::io;

/// Header names the demo reads the identity from (tokengate's defaults).
pub const USER_HEADER: &str = "x-tokengate-user";
pub const TENANT_HEADER: &str = "x-tokengate-tenant";

/// The demo application: Jira's and Confluence's "who am I", Jira's user API, and an echo.
pub struct DemoApp;

impl DemoApp {
    #[allow(clippy::new_ret_no_self)]
    pub fn start(port: u16) -> io::Result<Server> {
        Server::start(port, |request| {
            let (status, body) = respond(request);
            Reply::json(status, &body)
        })
    }
}

fn respond(request: &Received) -> (u16, Value) {
    let path = request.path.split('?').next().unwrap_or_default();
    let user = request.header(USER_HEADER);
    match (request.method.as_str(), path, user) {
        ("GET", "/rest/api/2/myself", Some(user)) => (200, jira_myself(user)),
        ("GET", "/rest/api/user/current", Some(user)) => (200, confluence_current(user)),
        ("GET", "/rest/api/2/myself" | "/rest/api/user/current", None) => (
            401,
            json!({"errorMessages": ["You are not authenticated. Authentication required to perform this operation."], "errors": {}}),
        ),
        ("GET", "/rest/api/2/user", _) => jira_user(request),
        _ => (200, echo(request)),
    }
}

/// Users of the demo directory: name, display name, active.
const DEMO_USERS: [(&str, &str, bool); 4] = [
    ("fred", "Fred F. User", true),
    ("jsmith", "Joe Smith", true),
    ("admin", "admin", true),
    ("departed", "Departed User", false),
];

/// `GET /rest/api/2/user?username=<name>`, Jira's user API, over [`DEMO_USERS`].
fn jira_user(request: &Received) -> (u16, Value) {
    let username = request
        .path
        .split_once('?')
        .and_then(|(_, query)| query.split('&').find_map(|pair| pair.strip_prefix("username=")))
        .unwrap_or_default();
    match DEMO_USERS.iter().find(|(name, _, _)| *name == username) {
        Some((name, display, active)) => (
            200,
            json!({"name": name, "key": format!("JIRAUSER{}", 10000 + name.len()), "displayName": display,
                   "emailAddress": format!("{name}@example.com"), "active": active}),
        ),
        None => (
            404,
            json!({"errorMessages": [format!("The user named '{username}' does not exist")], "errors": {}}),
        ),
    }
}

/// Display names for the demo's users; anyone else is shown by name.
fn display_name(user: &str) -> String {
    match user {
        "fred" => "Fred F. User".to_owned(),
        "jsmith" => "Joe Smith".to_owned(),
        other => other.to_owned(),
    }
}

/// `GET /rest/api/2/myself`, shaped as in seed 003.
fn jira_myself(user: &str) -> Value {
    let base = "http://localhost:8080/jira";
    json!({
        "self": format!("{base}/rest/api/2/user?username={user}"),
        "name": user,
        "emailAddress": format!("{user}@example.com"),
        "avatarUrls": {"48x48": format!("{base}/secure/useravatar?size=large&ownerId={user}")},
        "displayName": display_name(user),
        "active": true,
        "timeZone": "UTC",
        "groups": {"size": 1, "items": [{"name": "jira-user", "self": format!("{base}/rest/api/2/group?groupname=jira-user")}]},
        "expand": "groups,applicationRoles"
    })
}

/// `GET /rest/api/user/current`, shaped as in seed 003.
fn confluence_current(user: &str) -> Value {
    json!({
        "type": "known",
        "username": user,
        "userKey": user,
        "profilePicture": {"path": "/wiki/relative/avatar.png", "width": 48, "height": 48, "isDefault": true},
        "displayName": display_name(user),
        "_links": {"base": "http://localhost:8080/confluence", "context": "/confluence"},
        "_expandable": {"status": ""}
    })
}

fn echo(request: &Received) -> Value {
    let headers: Map<String, Value> = request
        .headers
        .iter()
        .map(|(n, v)| (n.clone(), Value::String(v.clone())))
        .collect();
    json!({"method": request.method, "path": request.path, "headers": headers})
}

/// Issuer and audience of the demo's tokens (the TiS plugin's key, as in seed 000's sample).
pub const DEMO_ISSUER: &str = "com.obss.plugin.time-in-status";

/// The claims of a demo token for `sub` in tenant `client_key`, issued at `now`, expiring
/// `ttl` seconds later (a negative `ttl` gives an already expired token).
pub fn demo_claims(sub: &str, client_key: &str, now: i64, ttl: i64) -> Value {
    json!({
        "iss": DEMO_ISSUER,
        "aud": DEMO_ISSUER,
        "sub": sub,
        "clientKey": client_key,
        "iat": now,
        "exp": now + ttl,
    })
}

/// Issuer and audience of the demo identity provider's JWTs, and its key id.
pub const DEMO_IDP_ISSUER: &str = "http://127.0.0.1:9081";
pub const DEMO_IDP_AUDIENCE: &str = "jira";
pub const DEMO_IDP_KID: &str = "demo-idp-1";

/// The claims of a demo IdP token for `sub` with space-separated `scope`.
pub fn demo_jwt_claims(sub: &str, scope: &str, now: i64, ttl: i64) -> Value {
    json!({
        "iss": DEMO_IDP_ISSUER,
        "aud": DEMO_IDP_AUDIENCE,
        "sub": sub,
        "email": format!("{sub}@example.com"),
        "scope": scope,
        "iat": now,
        "exp": now + ttl,
    })
}

/// Signs `claims` as an HS256 `tisjwt` with `secret`.
pub fn mint_tisjwt(secret: &[u8], claims: &Value) -> String {
    mint_with_header(secret, &json!({"typ": "JWT", "alg": "HS256"}), claims)
}

/// Signs any header and claims with HS256 (tests use it to forge odd headers).
pub fn mint_with_header(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = Hs256.sign(&Hs256Key::new(secret), input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_bytes()))
}
