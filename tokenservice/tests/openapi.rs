//! The REST API against its OpenAPI description (`tokenservice/openapi.json`): schemathesis
//! from the project's virtualenv (`make pytools` installs the pinned version) runs every check
//! and every phase, stateful links included, against the real binary. It must find no 5xx and
//! no answer that disagrees with the description.

// Test harness: failing loudly is its job.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Scratch, Service, CLIENT_ID, CLIENT_SECRET, PREFIX};
use std::path::Path;
use std::process::Command;

#[test]
fn the_served_description_is_the_one_in_the_repository() {
    let scratch = Scratch::new();
    let service = Service::start(&scratch);
    let reply = service.api("GET", "/openapi.json", None, "");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, include_str!("../openapi.json"));
}

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_outside_the_description() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let schemathesis = manifest.join("../.venv/bin/schemathesis");
    assert!(
        schemathesis.exists(),
        "{} is missing: run `make pytools`",
        schemathesis.display()
    );
    let scratch = Scratch::new();
    // Its negative-auth checks send wrong credentials from one address: under the default
    // per-address limit (30; the shell passes the peer since the lockout merge) loopback was
    // throttled within seconds and every later call, the stateful phase's createToken
    // included, was 403, so no link was followed. The lockout's own answers are checked
    // against the description below.
    let service = Service::start_with(
        &scratch,
        serde_json::json!({"lockout": {"max_failures": 1000000, "max_failures_per_address": 0}}),
    );
    let base = format!("http://127.0.0.1:{}", service.port);
    let output = Command::new(&schemathesis)
        .arg("--config-file")
        .arg(manifest.join("tests/schemathesis.toml"))
        .arg("run")
        .arg(format!("{base}{PREFIX}/openapi.json"))
        .args(["--url", &base, "--checks", "all", "--workers", "2", "--no-color"])
        .env("TOKENGATE_ST_CLIENT_ID", CLIENT_ID)
        .env("TOKENGATE_ST_CLIENT_SECRET", CLIENT_SECRET)
        .current_dir(scratch.0.as_path())
        .output()
        .unwrap();
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}");
    assert!(output.status.success(), "schemathesis failed:\n{report}");
    // It did test: every operation (the four of OAuth 1.0a access tokens included), and the
    // stateful phase followed all three links of createToken (rename, delete, list). The two
    // links it infers from listAccessTokens to the revokes stay uncovered: an access token
    // takes the whole OAuth 1.0a dance, which schemathesis cannot do (tests/oauth1_dance.rs
    // lists and revokes one).
    assert!(report.contains("Tested: 12"), "{report}");
    assert!(
        report.contains("3 covered / 5 selected / 5 total (2 inferred)"),
        "{report}"
    );
}

/// Whether `answers` (operation path, method, status, JSON body) are each a documented status
/// of their operation with a body its schema accepts; the disagreements, checked with the
/// virtualenv's jsonschema_rs (schemathesis's own validator).
fn disagreements(answers: &serde_json::Value) -> String {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = manifest.join("../.venv/bin/python");
    let script = r#"
import json, sys, jsonschema_rs
spec = json.load(open(sys.argv[1]))
def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        name = node["$ref"].split("/")
        node = spec[name[1]][name[2]][name[3]]
    return node
bad = []
for path, method, status, body in json.loads(sys.argv[2]):
    responses = spec["paths"][path][method]["responses"]
    if str(status) not in responses:
        bad.append(f"{method} {path}: {status} is not described")
        continue
    content = resolve(responses[str(status)]).get("content", {}).get("application/json")
    if content is None or body is None:
        continue
    schema = dict(content["schema"], components=spec["components"])
    try:
        jsonschema_rs.validate(schema, body)
    except jsonschema_rs.ValidationError as e:
        bad.append(f"{method} {path} {status}: {json.dumps(body)}: {e.message}")
print("\n".join(bad))
"#;
    let output = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(manifest.join("openapi.json"))
        .arg(answers.to_string())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[test]
fn the_lockout_answers_and_a_full_password_queue_are_described() {
    let scratch = Scratch::new();
    let service = Service::start_with(
        &scratch,
        serde_json::json!({"password_threads": 1, "password_queue": 0}),
    );
    let token = service.create("fred", r#"{"tokenDescription":"t"}"#)["plainTextToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let list = format!("{PREFIX}/user/token");
    let mut answers = Vec::new();
    let mut keep = |path: &str, method: &str, reply: &common::Reply| {
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or(serde_json::Value::Null);
        answers.push(serde_json::json!([path, method, reply.status, body]));
    };
    // Three wrong tokens of fred's lock him: the third answer says so...
    for _ in 0..3 {
        let reply = service.introspect("token=tgat_wrong&username=fred&client_address=203.0.113.7");
        keep("/introspect", "post", &reply);
    }
    // ...then his right token is answered "locked", and the REST API refuses him.
    keep(
        "/introspect",
        "post",
        &service.introspect(&format!("token={token}&username=fred")),
    );
    keep(
        "/introspect",
        "post",
        &service.introspect(&format!("token={token}")),
    );
    let reply = service.api("GET", "/user/token", Some(&common::password("fred")), "");
    assert_eq!(reply.status, 403);
    keep(&list, "get", &reply);
    // Past the password queue: 503 with Retry-After.
    let port = service.port;
    let busy: Vec<common::Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let list = list.clone();
                scope.spawn(move || {
                    let auth = [("Authorization".to_owned(), common::password("jsmith"))];
                    common::request(port, "GET", &list, &auth, b"").unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let busy = busy
        .iter()
        .find(|r| r.status == 503)
        .expect("one of 8 at once found the queue full");
    keep(&list, "get", busy);
    let bad = disagreements(&serde_json::Value::Array(answers));
    assert!(bad.is_empty(), "answers outside the description:\n{bad}");
}
