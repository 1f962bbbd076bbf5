//! Harness for the integration tests: the real `tokengate-tokens` binary on a free loopback
//! port with a database in a scratch directory, and a small HTTP/1.1 client. Every process a
//! test starts is killed when its handle drops; scratch directories are removed.

#![allow(dead_code)]
// Test harness: failing loudly is its job (clippy does not count these helpers as tests).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod database;
pub mod postgres;

#[allow(unused_imports)] // not every test file uses it
pub use database::TestDatabase;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub const PREFIX: &str = "/rest/de.resolution.apitokenauth/latest";
pub const CLIENT_ID: &str = "tokengate";
pub const CLIENT_SECRET: &str = "integration-introspection-secret";
pub const BASE_URL: &str = "https://your-jira-or-confluence";

/// The demo users' keys (tokenservice/config/users.json; passwords are `<name>-password`).
pub const ADMIN_KEY: &str = "JIRAUSER10005";
pub const FRED_KEY: &str = "JIRAUSER10004";
pub const JSMITH_KEY: &str = "JIRAUSER10006";

/// A directory under the system temp directory, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "tokengate-tokens-test-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn database(&self) -> PathBuf {
        self.0.join("tokens.db")
    }

    /// What every service started in this scratch directory wrote on stderr.
    pub fn logs(&self) -> String {
        let mut logs: Vec<_> = std::fs::read_dir(&self.0)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        logs.sort();
        logs.iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running service: one process, or several replicas sharing one database that the
/// requests alternate between. Killed (SIGKILL) when dropped.
pub struct Service {
    children: Vec<Child>,
    /// The first replica's port.
    pub port: u16,
    pub ports: Vec<u16>,
    next: AtomicUsize,
    /// Requests each replica answered (by index in `ports`).
    answered: Vec<AtomicUsize>,
}

impl Service {
    /// Starts the binary with a configuration in `scratch` (database `scratch/tokens.db`).
    pub fn start(scratch: &Scratch) -> Service {
        Service::start_on(scratch, &scratch.database().to_string_lossy())
    }

    /// Starts the binary on `database` (an SQLite path or a `postgres://` URL).
    pub fn start_on(scratch: &Scratch, database: &str) -> Service {
        Service::start_replicas(scratch, database, 1)
    }

    /// Starts `n` processes on one `database`; requests go to each in turn.
    pub fn start_replicas(scratch: &Scratch, database: &str, n: usize) -> Service {
        Service::start_replicas_with(scratch, database, n, Value::Null)
    }

    /// Like [`Service::start`], with `extra` fields merged into the configuration.
    pub fn start_with(scratch: &Scratch, extra: Value) -> Service {
        Service::start_replicas_with(scratch, &scratch.database().to_string_lossy(), 1, extra)
    }

    /// Like [`Service::start_replicas`], with `extra` fields merged into the configuration.
    pub fn start_replicas_with(scratch: &Scratch, database: &str, n: usize, extra: Value) -> Service {
        let (children, ports): (Vec<_>, Vec<_>) = (0..n).map(|_| spawn(scratch, database, &extra)).unzip();
        Service {
            children,
            port: ports[0],
            answered: ports.iter().map(|_| AtomicUsize::new(0)).collect(),
            ports,
            next: AtomicUsize::new(0),
        }
    }

    /// How many requests each replica answered, in the order of `ports`.
    pub fn answered(&self) -> Vec<usize> {
        self.answered.iter().map(|n| n.load(Ordering::SeqCst)).collect()
    }

    /// What the services started in `scratch` logged so far (stderr).
    pub fn log(scratch: &Scratch) -> String {
        scratch.logs()
    }

    /// The first replica's process id.
    pub fn pid(&self) -> u32 {
        self.children[0].id()
    }

    /// The first replica's resident set size, from `/proc/<pid>/status` (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in {status}"))
    }

    /// Sends SIGTERM to the first replica.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the first replica to exit by itself, polling up to `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.children[0].try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// `kill -9` of every replica, and waits for them to be gone.
    pub fn kill(mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn call(&self, method: &str, path: &str, auth: Option<&str>, body: &str) -> Reply {
        let mut headers = Vec::new();
        if let Some(auth) = auth {
            headers.push(("Authorization".to_owned(), auth.to_owned()));
        }
        if !body.is_empty() {
            headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
        }
        self.call_with(method, path, &headers, body.as_bytes())
    }

    pub fn call_with(&self, method: &str, path: &str, headers: &[(String, String)], body: &[u8]) -> Reply {
        let replica = self.next.fetch_add(1, Ordering::SeqCst) % self.ports.len();
        let reply = request(self.ports[replica], method, path, headers, body)
            .unwrap_or_else(|| panic!("no answer to {method} {path} from replica {replica}"));
        self.answered[replica].fetch_add(1, Ordering::SeqCst);
        reply
    }

    /// Sends `bytes` as they are and reads the answer.
    pub fn raw(&self, bytes: &[u8]) -> Option<Reply> {
        raw(self.port, bytes)
    }

    /// A REST API path.
    pub fn api(&self, method: &str, route: &str, auth: Option<&str>, body: &str) -> Reply {
        self.call(method, &format!("{PREFIX}{route}"), auth, body)
    }

    /// `POST /introspect` as the configured client.
    pub fn introspect(&self, form: &str) -> Reply {
        self.introspect_as(&basic(&format!("{CLIENT_ID}:{CLIENT_SECRET}")), form)
    }

    pub fn introspect_as(&self, auth: &str, form: &str) -> Reply {
        let headers = [
            ("Authorization".to_owned(), auth.to_owned()),
            (
                "Content-Type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            ),
        ];
        self.call_with("POST", "/introspect", &headers, form.as_bytes())
    }

    /// Creates a token as `user` (password auth); the answer's JSON.
    pub fn create(&self, user: &str, body: &str) -> Value {
        let reply = self.api("POST", "/user/token", Some(&password(user)), body);
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts one process on `database` with its own configuration file in `scratch` and its
/// stderr (the request log) in `scratch/replica-<n>.log`; waits for its "listening" line.
fn spawn(scratch: &Scratch, database: &str, extra: &Value) -> (Child, u16) {
    static REPLICAS: AtomicUsize = AtomicUsize::new(0);
    let n = REPLICAS.fetch_add(1, Ordering::SeqCst);
    let users = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/users.json");
    let mut config = serde_json::json!({
        "listen": "127.0.0.1:0",
        "database": database,
        "users_file": users,
        "introspection": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        "max_validity_months": 12,
        "default_validity_months": 6,
        "base_url": BASE_URL,
        "threads": 8,
    });
    if let (Some(config), Value::Object(extra)) = (config.as_object_mut(), extra) {
        config.extend(extra.clone());
    }
    let path = scratch.0.join(format!("config-{n}.json"));
    std::fs::write(&path, config.to_string()).unwrap();
    let log = std::fs::File::create(scratch.0.join(format!("replica-{n}.log"))).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokengate-tokens"))
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no address in {line:?}; the service said: {}", scratch.logs())
        });
    (child, port)
}

/// One HTTP/1.1 request on its own connection; `None` when there is no answer (the server
/// is down, or closed the connection without answering).
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Option<Reply> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    raw(port, &bytes)
}

/// Sends `bytes` as they are and reads the answer until the server closes the connection.
pub fn raw(port: u16, bytes: &[u8]) -> Option<Reply> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    // The server may answer (413) and close before reading everything: ignore write errors.
    let _ = stream.write_all(bytes);
    let _ = stream.flush();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    Reply::parse(&answer)
}

/// `Authorization: Basic` for `pair`.
pub fn basic(pair: &str) -> String {
    format!("Basic {}", STANDARD.encode(pair))
}

/// `Authorization` for a demo user's password.
pub fn password(user: &str) -> String {
    basic(&format!("{user}:{user}-password"))
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    fn parse(bytes: &[u8]) -> Option<Reply> {
        let text = String::from_utf8_lossy(bytes);
        let (head, body) = text.split_once("\r\n\r\n")?;
        let mut lines = head.split("\r\n");
        let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        let body = if chunked { dechunk(body) } else { body.to_owned() };
        Some(Reply {
            status,
            headers,
            body,
        })
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Asserts Jira's error collection with `status`.
    pub fn assert_jira_error(&self, status: u16) {
        assert_eq!(self.status, status, "{}", self.body);
        let body = self.json();
        assert!(body["errorMessages"][0].is_string(), "{}", self.body);
        assert_eq!(body["errors"], serde_json::json!({}), "{}", self.body);
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}
