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
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running service. Killed (SIGKILL) when dropped.
pub struct Service {
    child: Child,
    pub port: u16,
}

impl Service {
    /// Starts the binary with a configuration in `scratch` (database `scratch/tokens.db`).
    pub fn start(scratch: &Scratch) -> Service {
        let users = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/users.json");
        let config = serde_json::json!({
            "listen": "127.0.0.1:0",
            "database": scratch.database(),
            "users_file": users,
            "introspection": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
            "max_validity_months": 12,
            "default_validity_months": 6,
            "base_url": BASE_URL,
            "threads": 8,
        });
        let path = scratch.0.join("config.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tokengate-tokens"))
            .arg("--config")
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
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
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Service { child, port }
    }

    /// Like [`Service::start`], with `extra` fields merged into the configuration and the
    /// service's log (stderr) kept in `scratch/service.log` (see [`Service::log`]).
    pub fn start_with(scratch: &Scratch, extra: Value) -> Service {
        let users = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/users.json");
        let mut config = serde_json::json!({
            "listen": "127.0.0.1:0",
            "database": scratch.database(),
            "users_file": users,
            "introspection": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
            "max_validity_months": 12,
            "default_validity_months": 6,
            "base_url": BASE_URL,
            "threads": 8,
        });
        if let (Some(config), Value::Object(extra)) = (config.as_object_mut(), extra) {
            config.extend(extra);
        }
        let path = scratch.0.join("config.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let log = std::fs::File::create(scratch.0.join("service.log")).unwrap();
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
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Service { child, port }
    }

    /// What the service logged so far (started with [`Service::start_with`]).
    pub fn log(scratch: &Scratch) -> String {
        std::fs::read_to_string(scratch.0.join("service.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The service's resident set size, from `/proc/<pid>/status` (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in {status}"))
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit by itself, polling up to `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// `kill -9`, and waits for the process to be gone.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
        request(self.port, method, path, headers, body)
            .unwrap_or_else(|| panic!("no answer to {method} {path}"))
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
