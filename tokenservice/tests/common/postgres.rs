//! A throw-away PostgreSQL cluster for the tests: `initdb` in a scratch directory, the server on
//! a free loopback port with password (SCRAM) authentication, polled until it answers, stopped
//! and removed on drop or when the test process ends. The binaries are Debian's (`/usr/lib/postgresql/<version>/bin`, which
//! `make postgres` installs). Nothing is mocked, nothing is skipped: if the cluster cannot be
//! started, the test fails and says why.
//!
//! `initdb` and `postgres` refuse to run as root: as root, they run as the `postgres` system
//! user (or `nobody`) through `runuser`, in a directory that user owns.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const PG_USER: &str = "tokengate";
/// The cluster's password for [`PG_USER`] (a test secret: it must never show up in a log).
pub const PG_PASSWORD: &str = "pg-test-password-d41d8cd9";

/// A running cluster. Stopped (fast shutdown) and deleted when dropped, or when the test
/// process ends in any way: the server runs under a small shell that waits on a pipe from us,
/// and a closed pipe (our exit, even by SIGKILL) tells it to stop the server and clean up.
pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    /// The system user the server runs as when we are root.
    run_as: Option<String>,
    starts: usize,
    /// The shell that runs the server; its stdin is the pipe.
    server: Option<Child>,
    pub port: u16,
    databases: AtomicUsize,
}

/// Runs as the cluster's owner: `$1` data, `$2` port, `$3` socket directory, `$4` log, `$5`
/// the directory to remove at the end (unless told `keep`), `$6` the postgres binary.
const SUPERVISOR: &str = r#"
"$6" -D "$1" -p "$2" -k "$3" -c listen_addresses=127.0.0.1 -c max_connections=300 \
     -c fsync=on -c synchronous_commit=on >"$4" 2>&1 </dev/null &
pid=$!
reply=
read -r reply || true
kill -INT "$pid" 2>/dev/null
wait "$pid"
[ "$reply" = keep ] || rm -rf "$5"
"#;

impl Postgres {
    /// One cluster for every test of this test binary (initdb and start take seconds); each
    /// test takes a [`Postgres::fresh_database`] of its own. It stops when the process ends.
    pub fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Postgres> = OnceLock::new();
        SHARED.get_or_init(Postgres::start)
    }

    /// initdb + start on a free port; panics with the reason (and the server log) on failure.
    pub fn start() -> Postgres {
        let bin = bin_dir();
        let run_as = if is_root() { Some(system_user()) } else { None };
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tokengate-pg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pwfile"), format!("{PG_PASSWORD}\n")).unwrap();
        if let Some(user) = &run_as {
            chown_to(&dir, user);
            chown_to(&dir.join("pwfile"), user);
        }
        let mut cluster = Postgres {
            dir: dir.clone(),
            bin: bin.clone(),
            run_as,
            starts: 0,
            server: None,
            port: 0,
            databases: AtomicUsize::new(0),
        };
        let command = |program: &Path| cluster.command(program);
        let data = dir.join("data");
        let initdb = command(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", PG_USER, "--pwfile"])
            .arg(dir.join("pwfile"))
            // Password (SCRAM) over TCP, the way a deployment connects; only initdb's own
            // files skip fsync, the server runs with fsync=on.
            .args([
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ])
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run initdb: {e}"));
        assert!(initdb.status.success(), "{}", describe("initdb", &initdb));
        // A port is free when we look; another process may take it before the server binds,
        // so try a few.
        let mut last_failure = String::new();
        for _ in 0..3 {
            match cluster.serve_on(free_port()) {
                Ok(()) => return cluster,
                Err(why) => last_failure = why,
            }
        }
        panic!("PostgreSQL did not start: {last_failure}");
    }

    /// Stops the server (a fast shutdown) and starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.stop_keeping_data();
        let port = self.port;
        self.serve_on(port)
            .unwrap_or_else(|why| panic!("PostgreSQL did not restart: {why}"));
    }

    /// Starts the server under its supervisor on `port` and waits until it answers; on failure
    /// stops it again (keeping the data) and says why.
    fn serve_on(&mut self, port: u16) -> Result<(), String> {
        self.starts += 1;
        let log = self.dir.join(format!("server-{}.log", self.starts));
        let server = self
            .command(Path::new("/bin/sh"))
            .args(["-c", SUPERVISOR, "supervisor"])
            .arg(self.dir.join("data"))
            .arg(port.to_string())
            .arg(&self.dir)
            .arg(&log)
            .arg(&self.dir)
            .arg(self.bin.join("postgres"))
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the server: {e}"));
        self.server = Some(server);
        self.port = port;
        let answered = wait_until_it_answers(port, &log, Duration::from_secs(60));
        if answered.is_err() {
            self.stop_keeping_data();
        }
        answered
    }

    /// Tells the supervisor to stop the server and keep the directory; waits for it.
    fn stop_keeping_data(&mut self) {
        if let Some(mut server) = self.server.take() {
            if let Some(mut stdin) = server.stdin.take() {
                let _ = stdin.write_all(b"keep\n");
            }
            let _ = server.wait();
        }
    }

    /// A command for one of the PostgreSQL programs, as the cluster's owner.
    fn command(&self, program: &Path) -> Command {
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    /// The URL of database `name` (with the password).
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{}/{name}",
            self.port
        )
    }

    /// A new, empty database; its URL.
    pub fn fresh_database(&self) -> String {
        let name = format!("t{}", self.databases.fetch_add(1, Ordering::SeqCst));
        let mut admin = self.client("postgres");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        self.url(&name)
    }

    /// A client of database `name` (tests look at the rows themselves).
    pub fn client(&self, name: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(name), postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to the test cluster: {e}"))
    }

    /// A client for the database a [`Postgres::fresh_database`] URL names.
    pub fn client_for(url: &str) -> postgres::Client {
        postgres::Client::connect(url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to the test cluster: {e}"))
    }
}

impl Drop for Postgres {
    /// Closes the pipe: the supervisor stops the server and removes the directory.
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            drop(server.stdin.take());
            let _ = server.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls until a password-authenticated connection works (the server is up and ready);
/// gives up early when the server log says it failed.
fn wait_until_it_answers(port: u16, log: &Path, within: Duration) -> Result<(), String> {
    let url = format!("postgres://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{port}/postgres");
    let deadline = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < deadline {
        match postgres::Client::connect(&url, postgres::NoTls) {
            Ok(mut client) => match client.simple_query("SELECT 1") {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        let said = std::fs::read_to_string(log).unwrap_or_default();
        // Our own early connections are refused with FATAL lines while it starts; any other
        // FATAL (a port taken, a bad setting) means it has given up.
        let failed = said.lines().any(|line| {
            line.contains("PANIC:")
                || (line.contains("FATAL:")
                    && !line.contains("starting up")
                    && !line.contains("not yet accepting connections"))
        });
        if failed {
            return Err(format!("the server failed on port {}:\n{said}", port));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let said = std::fs::read_to_string(log).unwrap_or_default();
    Err(format!(
        "no answer on port {} within {within:?}: {last}\nserver log:\n{said}",
        port
    ))
}

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb`, else `pg_config --bindir`.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return bin;
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    match from_pg_config {
        Some(bin) if bin.join("initdb").exists() => bin,
        _ => panic!(
            "PostgreSQL is not installed: no /usr/lib/postgresql/*/bin/initdb. \
             `make postgres` installs Debian's package."
        ),
    }
}

fn is_root() -> bool {
    id(&["-u"]) == "0"
}

/// `postgres` when that user exists (Debian's package creates it), else `nobody`.
fn system_user() -> String {
    let postgres = Command::new("id").args(["-u", "postgres"]).output();
    match postgres {
        Ok(o) if o.status.success() => "postgres".to_owned(),
        _ => "nobody".to_owned(),
    }
}

fn id(args: &[&str]) -> String {
    let output = Command::new("id").args(args).output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn chown_to(path: &Path, user: &str) {
    let uid: u32 = id(&["-u", user]).parse().unwrap();
    let gid: u32 = id(&["-g", user]).parse().unwrap();
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

fn describe(what: &str, output: &Output) -> String {
    format!(
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
