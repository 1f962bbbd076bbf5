//! The demo application that stands in for Jira and Confluence behind tokengate, and a
//! helper that mints `tisjwt` tokens for a shared secret.
//!
//! The application trusts the identity headers the filter sets, as a real application behind
//! tokengate would, and records every request it receives so tests can see what got through.

pub mod keys;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{Algorithm as _, AlgorithmSignature as _};
use serde_json::{json, Map, Value};
use std::io;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Header names the demo reads the identity from (tokengate's defaults).
pub const USER_HEADER: &str = "x-tokengate-user";
pub const TENANT_HEADER: &str = "x-tokengate-tenant";

/// One request as the application received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The request body (at most 1 MiB is read).
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// What a server answers to one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub content_type: &'static str,
    /// Wait this long before answering (to play a slow provider).
    pub delay: std::time::Duration,
}

impl Reply {
    pub fn json(status: u16, body: &Value) -> Self {
        Self::text(status, &body.to_string(), "application/json;charset=UTF-8")
    }

    pub fn text(status: u16, body: &str, content_type: &'static str) -> Self {
        Self {
            status,
            body: body.to_owned(),
            content_type,
            delay: std::time::Duration::ZERO,
        }
    }

    pub fn after(mut self, delay: std::time::Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Handler = dyn Fn(&Received) -> Reply + Send + Sync;

/// An HTTP/1.1 server on a loopback port that answers with `handler` (each request on its own
/// thread, so a slow answer does not hold up the others) and records what it received.
/// It stops when dropped.
pub struct Server {
    port: u16,
    server: Arc<tiny_http::Server>,
    received: Arc<Mutex<Vec<Received>>>,
    worker: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts on `127.0.0.1:port` (0 picks a free port).
    pub fn start(
        port: u16,
        handler: impl Fn(&Received) -> Reply + Send + Sync + 'static,
    ) -> io::Result<Self> {
        let server = tiny_http::Server::http(("127.0.0.1", port)).map_err(io::Error::other)?;
        let port = server.server_addr().to_ip().map_or(port, |a| a.port());
        let server = Arc::new(server);
        let received = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let worker = {
            let (server, received) = (server.clone(), received.clone());
            std::thread::spawn(move || serve(&server, &received, &handler))
        };
        Ok(Self {
            port,
            server,
            received,
            worker: Some(worker),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every request received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// How many requests had a path starting with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.received()
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .count()
    }

    /// Blocks until the server stops (for the demo binary).
    pub fn wait(mut self) {
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

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

fn serve(server: &tiny_http::Server, received: &Arc<Mutex<Vec<Received>>>, handler: &Arc<Handler>) {
    for request in server.incoming_requests() {
        let (received, handler) = (received.clone(), handler.clone());
        // Everything per request happens on its own thread, so a slow body or a slow answer
        // never holds up the accept loop.
        std::thread::spawn(move || answer(request, &received, &handler));
    }
}

fn answer(mut request: tiny_http::Request, received: &Mutex<Vec<Received>>, handler: &Arc<Handler>) {
    let mut body = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::Read::take(request.as_reader(), 1 << 20), &mut body);
    let seen = Received {
        body,
        method: request.method().as_str().to_owned(),
        path: request.url().to_owned(),
        headers: request
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_ascii_lowercase(),
                    h.value.as_str().to_owned(),
                )
            })
            .collect(),
    };
    if let Ok(mut log) = received.lock() {
        log.push(seen.clone());
    }
    let reply = handler(&seen);
    std::thread::sleep(reply.delay);
    let mut response = tiny_http::Response::from_string(reply.body).with_status_code(reply.status);
    if let Ok(header) = tiny_http::Header::from_bytes("content-type", reply.content_type) {
        response = response.with_header(header);
    }
    let _ = request.respond(response);
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
