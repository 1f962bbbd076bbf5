//! The path the rules see is the path Tomcat acts on: a differential test against a real
//! Tomcat 10 (Debian's `tomcat10-common`, installed by `make tomcat`) with a servlet that
//! answers with the path it resolved, the URI it received and its headers.
//!
//! (a) Directly: whenever `path::canonical` accepts a path, Tomcat refuses it (400) or
//!     resolves exactly the canonical path.
//! (b) Through the real Envoy with the built module in front of Tomcat, with Envoy's path
//!     normalisation off, on, and on with escaped slashes decoded: every spelling is refused
//!     (by Envoy, the filter or Tomcat) or reaches a path under the rule the filter matched. No
//!     spelling takes a token without the scope to `/rest/api/3/`, nor a request without a
//!     credential outside `/public/`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
mod spellings;

use common::*;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::json;
use spellings::{rule_of, ISSUE_FORMS, PUBLIC, SCOPED, TOKEN};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokengate::path::canonical;
use tokengate::respond::OAUTH_AMBIGUOUS_PATH;
use tokengate_demo::keys::{jwks, TestKey};

const ISSUER: &str = "https://idp.example.com";

/// How many generated spellings and hostile paths each test sends.
const GENERATED: usize = 150;

const SERVLET: &str = r#"package probe;

import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.Collections;
import java.util.Locale;

/** Answers with the path Tomcat resolved, the URI it received, then every header. */
public class PathServlet extends HttpServlet {
    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        String info = req.getPathInfo();
        StringBuilder out = new StringBuilder();
        out.append(req.getServletPath()).append(info == null ? "" : info).append('\n');
        out.append(req.getRequestURI()).append('\n');
        for (String name : Collections.list(req.getHeaderNames())) {
            for (String value : Collections.list(req.getHeaders(name))) {
                out.append(name.toLowerCase(Locale.ROOT)).append(": ").append(value).append('\n');
            }
        }
        resp.setContentType("text/plain;charset=UTF-8");
        resp.getWriter().write(out.toString());
    }
}
"#;

const WEB_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<web-app xmlns="https://jakarta.ee/xml/ns/jakartaee" version="6.0" metadata-complete="true">
  <servlet><servlet-name>path</servlet-name><servlet-class>probe.PathServlet</servlet-class></servlet>
  <servlet-mapping><servlet-name>path</servlet-name><url-pattern>/*</url-pattern></servlet-mapping>
</web-app>
"#;

/// The connector as Jira's own `server.xml` sets it (`relaxedPathChars`, `relaxedQueryChars`);
/// everything else is Tomcat's default (`encodedSolidusHandling="reject"`, no backslash).
fn server_xml(port: u16) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Server port="-1">
  <Service name="Catalina">
    <Connector port="{port}" address="127.0.0.1" protocol="HTTP/1.1"
               relaxedPathChars="[]|" relaxedQueryChars="[]|{{}}^&#x5c;&#x60;&quot;&lt;&gt;"/>
    <Engine name="Catalina" defaultHost="localhost">
      <Host name="localhost" appBase="webapps" unpackWARs="false" autoDeploy="false"/>
    </Engine>
  </Service>
</Server>
"#
    )
}

fn catalina_home() -> PathBuf {
    let home = PathBuf::from(std::env::var("CATALINA_HOME").unwrap_or_else(|_| "/usr/share/tomcat10".into()));
    assert!(
        home.join("bin/bootstrap.jar").exists(),
        "no Tomcat at {}: run `make tomcat` (Debian's tomcat10-common) or set CATALINA_HOME",
        home.display()
    );
    home
}

/// A Tomcat of our own: its CATALINA_BASE in a scratch directory, a free loopback port, the
/// probe servlet as the ROOT application; killed on drop.
struct Tomcat {
    child: Child,
    port: u16,
    base: PathBuf,
}

/// What Tomcat made of a request.
#[derive(Debug)]
struct Resolved {
    path: String,
    uri: String,
    headers: Vec<String>,
}

impl Tomcat {
    fn start() -> Tomcat {
        let home = catalina_home();
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let base = std::env::temp_dir().join(format!("tokengate-tomcat-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let classes = base.join("webapps/ROOT/WEB-INF/classes");
        for dir in [
            base.join("conf"),
            base.join("temp"),
            base.join("logs"),
            classes.clone(),
        ] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let source = base.join("PathServlet.java");
        std::fs::write(&source, SERVLET).unwrap();
        std::fs::write(base.join("webapps/ROOT/WEB-INF/web.xml"), WEB_XML).unwrap();
        let javac = Command::new("javac")
            .arg("-d")
            .arg(&classes)
            .arg("-cp")
            .arg(home.join("lib/servlet-api.jar"))
            .arg(&source)
            .output()
            .expect("javac (a JDK) is needed: `make tomcat` installs it with Tomcat");
        assert!(
            javac.status.success(),
            "{}",
            String::from_utf8_lossy(&javac.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        std::fs::write(base.join("conf/server.xml"), server_xml(port)).unwrap();
        let log = std::fs::File::create(base.join("logs/catalina.out")).unwrap();
        let classpath = format!(
            "{}:{}",
            home.join("bin/bootstrap.jar").display(),
            home.join("bin/tomcat-juli.jar").display()
        );
        let child = Command::new("java")
            .args(["-Xmx128m", "-XX:TieredStopAtLevel=1"])
            .arg(format!("-Dcatalina.home={}", home.display()))
            .arg(format!("-Dcatalina.base={}", base.display()))
            .arg(format!("-Djava.io.tmpdir={}", base.join("temp").display()))
            .args([
                "-cp",
                &classpath,
                "org.apache.catalina.startup.Bootstrap",
                "start",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut tomcat = Tomcat { child, port, base };
        tomcat.wait_ready();
        tomcat
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("Tomcat exited with {status}:\n{}", self.log());
            }
            if self.get("/ready").is_ok_and(|r| r.status == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("Tomcat did not answer within 90 s:\n{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.base.join("logs/catalina.out")).unwrap_or_default()
    }

    fn get(&self, raw_path: &str) -> std::io::Result<Response> {
        send_raw(self.port, &request(raw_path, &[]))
    }
}

impl Drop for Tomcat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// `GET raw_path` as bytes: the path goes on the wire exactly as written.
fn request(raw_path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut request = format!("GET {raw_path} HTTP/1.1\r\nhost: jira.test\r\nconnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.into_bytes()
}

/// The servlet's answer, if the response is one.
fn resolved(response: &Response) -> Option<Resolved> {
    if response.status != 200 {
        return None;
    }
    let mut lines = response.body.lines();
    Some(Resolved {
        path: lines.next()?.to_owned(),
        uri: lines.next()?.to_owned(),
        headers: lines.map(str::to_owned).collect(),
    })
}

/// The listed forms, then generated spellings and hostile paths (a fixed seed: the same
/// paths every run).
fn paths() -> Vec<String> {
    let mut runner = TestRunner::deterministic();
    let mut paths: Vec<String> = ISSUE_FORMS.iter().map(|(raw, _)| raw.to_string()).collect();
    for _ in 0..GENERATED {
        paths.push(
            spellings::spelled_path()
                .new_tree(&mut runner)
                .unwrap()
                .current()
                .1,
        );
        paths.push(spellings::hostile_path().new_tree(&mut runner).unwrap().current());
    }
    // A space would end the request line's target early for every reader alike.
    paths.retain(|p| !p.contains(' '));
    paths
}

#[test]
fn tomcat_resolves_every_path_the_filter_accepts_to_its_canonical_form() {
    let tomcat = Tomcat::start();
    for (raw, expected) in ISSUE_FORMS {
        let response = tomcat.get(raw).unwrap();
        match expected {
            Some(path) => assert_eq!(
                resolved(&response).map(|r| r.path).as_deref(),
                Some(*path),
                "{raw}: {response:?}"
            ),
            None => assert!(canonical(raw).is_err(), "{raw}"),
        }
    }
    let (mut agreed, mut refused_by_tomcat, mut refused_by_us) = (0, Vec::new(), 0);
    for raw in paths() {
        let response = tomcat.get(&raw).unwrap();
        let Ok(ours) = canonical(&raw) else {
            refused_by_us += 1;
            continue;
        };
        if response.status == 400 {
            refused_by_tomcat.push(raw);
            continue;
        }
        let theirs = resolved(&response).unwrap_or_else(|| panic!("{raw}: {response:?}"));
        assert_eq!(theirs.path, ours.as_str(), "{raw}");
        agreed += 1;
    }
    eprintln!(
        "{agreed} paths resolved alike, {refused_by_us} refused by the filter, {} by Tomcat only: {refused_by_tomcat:?}",
        refused_by_tomcat.len()
    );
    assert!(agreed > GENERATED, "only {agreed} paths were compared");
}

/// Envoy's own path handling, as the README describes: off (Envoy's defaults), recommended,
/// and with escaped slashes decoded before the filter.
const ENVOY_MODES: [(&str, &str); 3] = [
    ("off", ""),
    (
        "recommended",
        "          normalize_path: true\n          merge_slashes: true\n          path_with_escaped_slashes_action: REJECT_REQUEST\n",
    ),
    (
        "unescaping",
        "          normalize_path: true\n          merge_slashes: true\n          path_with_escaped_slashes_action: UNESCAPE_AND_FORWARD\n",
    ),
];

fn plugin(key: &TestKey) -> String {
    json!({
        "realm": "jira",
        "jwt_providers": {"idp": {"issuer": ISSUER, "local_jwks": jwks(&[key])}},
        "rules": [
            {"path_prefix": PUBLIC, "providers": [], "allow_anonymous": true},
            {"path_prefix": SCOPED, "providers": ["idp"], "scopes": ["write:jira-work"]},
            {"path_prefix": TOKEN, "providers": ["idp"]}
        ]
    })
    .to_string()
}

fn token(key: &TestKey, scope: &str) -> String {
    format!(
        "Bearer {}",
        key.sign(&json!({"iss": ISSUER, "sub": "fred", "scope": scope, "exp": now() + 600}))
    )
}

/// Who answered a request sent through Envoy.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Tomcat's servlet: the request was forwarded.
    Reached(String),
    /// The filter, with its own JSON body (status, message).
    Filter(u16, String),
    /// Envoy before the filter, or Tomcat refusing the forwarded request.
    Refused(u16),
}

fn send(envoy: &Envoy, raw: &str, headers: &[(&str, &str)]) -> (Outcome, Option<Resolved>) {
    let response = send_raw(envoy.port, &request(raw, headers)).unwrap();
    if let Some(reached) = resolved(&response) {
        return (Outcome::Reached(reached.path.clone()), Some(reached));
    }
    let message = serde_json::from_str::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|json| json["error"]["message"].as_str().map(str::to_owned));
    match message {
        Some(message) => (Outcome::Filter(response.status, message), None),
        None => (Outcome::Refused(response.status), None),
    }
}

#[test]
fn no_spelling_takes_a_request_past_its_rule_with_envoy_normalisation_on_or_off() {
    let tomcat = Tomcat::start();
    let key = TestKey::es256("k1");
    let unscoped = token(&key, "read:jira-work");
    let scoped = token(&key, "read:jira-work write:jira-work");
    let paths = paths();
    for (mode, hcm) in ENVOY_MODES {
        let yaml = bootstrap_with_hcm(&plugin(&key), tomcat.port, &[], &[], hcm);
        let envoy = Envoy::try_start_yaml(&yaml).unwrap_or_else(|log| panic!("{mode}: {log}"));
        let (mut reached, mut by_filter, mut by_others) = (0, 0, 0);
        for raw in &paths {
            for (credential, headers) in [
                ("no credential", vec![]),
                (
                    "a token without the scope",
                    vec![("authorization", unscoped.as_str())],
                ),
            ] {
                let context = format!("{mode}, {credential}: {raw}");
                let (outcome, seen) = send(&envoy, raw, &headers);
                let Some(seen) = seen else {
                    match outcome {
                        Outcome::Filter(400..=403, _) => by_filter += 1,
                        Outcome::Refused(400) => by_others += 1,
                        other => panic!("{context}: {other:?}"),
                    }
                    continue;
                };
                reached += 1;
                // The filter matched its rule on the canonical form of the path Envoy forwarded;
                // that is the path Tomcat resolved.
                assert_eq!(
                    canonical(&seen.uri).map(|p| p.as_str().to_owned()),
                    Ok(seen.path.clone()),
                    "{context}"
                );
                let rule = rule_of(&seen.path);
                if headers.is_empty() {
                    assert_eq!(rule, Some(PUBLIC), "{context} reached {}", seen.path);
                    assert!(
                        !seen.headers.iter().any(|h| h.starts_with("x-tokengate-user:")),
                        "{context}"
                    );
                } else {
                    assert!(
                        matches!(rule, Some(PUBLIC) | Some(TOKEN)),
                        "{context} reached {}",
                        seen.path
                    );
                }
            }
        }
        eprintln!(
            "{mode}: {reached} requests reached Tomcat, {by_filter} refused by the filter, {by_others} by Envoy or Tomcat"
        );
        assert!(
            reached > GENERATED / 2,
            "{mode}: only {reached} requests reached Tomcat"
        );

        // The forms of the issue, one by one.
        let get = |raw: &str, auth: Option<&str>| {
            let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
            send(&envoy, raw, &headers).0
        };
        let reached = |path: &str| Outcome::Reached(path.to_owned());
        assert_eq!(
            get("/rest/api/3/issue", Some(&scoped)),
            reached("/rest/api/3/issue"),
            "{mode}"
        );
        assert_eq!(
            get("/rest/api/2/issue", Some(&unscoped)),
            reached("/rest/api/2/issue"),
            "{mode}"
        );
        assert_eq!(get("/public/x", None), reached("/public/x"), "{mode}");
        // Envoy's normalisation rewrites some forms before the filter and Tomcat see them
        // (`/public//..//x` is `/public/x` to RFC 3986, which removes dot segments before
        // merging slashes); the loop above checked those. Without it, each form has the
        // answer Tomcat's reading gives.
        for (raw, expected) in ISSUE_FORMS.iter().filter(|_| mode == "off") {
            let outcome = get(raw, Some(&unscoped));
            match expected {
                Some(path) if path.starts_with(SCOPED) => assert!(
                    matches!(&outcome, Outcome::Filter(403, m) if m.starts_with("Insufficient Scope")),
                    "{mode}: {raw}: {outcome:?}"
                ),
                Some(path) if rule_of(path).is_none() => {
                    assert!(
                        matches!(outcome, Outcome::Filter(403, _)),
                        "{mode}: {raw}: {outcome:?}"
                    )
                }
                Some(path) => assert_eq!(outcome, reached(path), "{mode}: {raw}"),
                // Refused by the filter with its own 400 (or by Envoy's HTTP codec first).
                None => assert!(
                    match &outcome {
                        Outcome::Filter(400, message) => message == OAUTH_AMBIGUOUS_PATH,
                        other => *other == Outcome::Refused(400),
                    },
                    "{mode}: {raw}: {outcome:?}"
                ),
            }
        }
        assert_eq!(
            get("/public/..;/rest/api/2/issue", None),
            Outcome::Filter(
                401,
                "Authentication required: No bearer token was provided.".into()
            ),
            "{mode}"
        );
        if mode == "off" {
            assert_eq!(
                get("/rest/api%2F3/issue", Some(&unscoped)),
                Outcome::Filter(400, OAUTH_AMBIGUOUS_PATH.into())
            );
            assert!(envoy.counter("wasmcustom.tokengate.denied.ambiguous_path") > 0);
        }
    }
}
