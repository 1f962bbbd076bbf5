//! `tokengate-bench tokens <dir> [count]`: fresh test keys and tokens for `make bench`.
//!
//! Writes into `<dir>` (never into git): the JWKS documents of a new RS256 and a new ES256
//! key, the TISJWT HMAC secret, and token files of one `Authorization` header value a line
//! (`Bearer <jwt>` or `TISJWT <jwt>`), which the wrk script sends round-robin:
//!
//! | file | tokens |
//! |---|---|
//! | `rs256-1.txt`, `es256-1.txt`, `hs256-1.txt` | one token |
//! | `rs256-<count>.txt`, `es256-<count>.txt`, `hs256-<count>.txt` | `count` distinct tokens (default 1000) |
//!
//! Every token is valid for a day, for issuer `https://idp.example.com` and audience `jira`
//! (TISJWT: the `com.obss.plugin.time-in-status` issuer and audience of the demo).
//!
//! | `opaque-<count>.txt` | `count` distinct opaque Bearer tokens (random hex, no dots: not JWTs) for the introspection provider |
//! | `opaque-miss10.txt` | the same `count` tokens, round-robin, on 9 lines of 10; the 10th line a token never used elsewhere ([`MISS_LINES`] lines in all) |
//!
//! `tokengate-bench introspection-server <port> [<client_id>:<client_secret>]`: a local RFC 7662
//! introspection endpoint for the opaque-token rows (0 picks a free port; the first line on
//! stdout says which). `POST` with HTTP Basic client auth (default `tokengate:bench-secret`)
//! and a form body `token=...` is answered `{"active":true,"username":...,"exp":<in an hour>}`
//! for any token; wrong client credentials get 401. `GET /count` answers how many
//! introspection requests it has answered and how many distinct tokens they asked about since
//! the previous `GET /count`.
//!
//! `tokengate-bench oauth1-requests <dir> <count>`: for the OAuth 1.0a row (issue 13), `count`
//! distinct `Authorization: OAuth ...` values in `oauth1-rsa-sha1.txt`, each `GET
//! /rest/api/2/myself` signed with RSA-SHA1 by a new 2048-bit consumer key with one access
//! token and its own nonce (a signed request can be used once), and the consumer's public key
//! in `oauth1-consumer.b64` ([`signed_requests`]). Given that file as a third argument, the
//! introspection server answers the OAuth 1.0a question (`token_type_hint=oauth1_access_token`)
//! for the bench's consumer with it.
//!
//! `tokengate-bench soak-tokens <dir> <count>`: for the memory soak run, `count` distinct
//! HS256 Bearer tokens (cheap to verify, so the verified-token cache churns as fast as Envoy
//! can go) in `bearer-hs256-<count>.txt`, with their secret in `bearer-hs256-secret.txt`.

mod signed_requests;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rand_core::{OsRng, RngCore as _};
use serde_json::{json, Value};
use tokengate_demo::keys::{jwks, TestKey};
use tokengate_demo::{mint_tisjwt, mint_with_header, Received, Reply, Server};

pub const ISSUER: &str = "https://idp.example.com";
pub const AUDIENCE: &str = "jira";
pub const TIS_ISSUER: &str = "com.obss.plugin.time-in-status";
const TTL_SECONDS: i64 = 24 * 3600;
/// Lines of `opaque-miss10.txt`: a tenth of them (15,000) tokens sent once. Long enough for
/// warm-up plus measured load at up to about 20,000 req/s for 7 s without a repeat; the harness
/// checks that no line is sent twice.
pub const MISS_LINES: usize = 150_000;
/// The introspection server's default client credentials.
const CLIENT: &str = "tokengate:bench-secret";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["tokens", dir] => tokens(Path::new(dir), 1000),
        ["tokens", dir, count] => positive(count).and_then(|count| tokens(Path::new(dir), count)),
        ["soak-tokens", dir, count] => positive(count).and_then(|count| soak_tokens(Path::new(dir), count)),
        ["introspection-server", port] => introspection_server(port, CLIENT, None),
        ["introspection-server", port, client] => introspection_server(port, client, None),
        ["introspection-server", port, client, key] => {
            introspection_server(port, client, Some(Path::new(key)))
        }
        ["oauth1-requests", dir, count] => {
            positive(count).and_then(|count| signed_requests::write_requests(Path::new(dir), count, now()?))
        }
        ["answer-buckets", provider, configuration] => answer_buckets(provider, configuration),
        _ => Err(
            "usage: tokengate-bench tokens <dir> [count] | soak-tokens <dir> <count> \
                  | oauth1-requests <dir> <count> \
                  | introspection-server <port> [<client_id>:<client_secret> [<oauth1 consumer key file>]] \
                  | answer-buckets <provider> <configuration JSON> (Bearer lines on stdin)"
                .to_owned(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokengate-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn positive(count: &str) -> Result<usize, String> {
    match count.parse() {
        Ok(count) if count > 0 => Ok(count),
        _ => Err(format!("count `{count}` is not a positive number")),
    }
}

fn now() -> Result<i64, String> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .map_err(|e| e.to_string())
}

fn tokens(dir: &Path, count: usize) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let now = now()?;
    let claims = |i: usize| {
        json!({"iss": ISSUER, "aud": AUDIENCE, "sub": format!("user-{i:05}"),
               "iat": now, "exp": now + TTL_SECONDS})
    };
    for key in [TestKey::rs256("bench-rsa"), TestKey::es256("bench-ec")] {
        let name = key.alg().to_ascii_lowercase();
        write(dir.join(format!("jwks-{name}.json")), &jwks(&[&key]).to_string())?;
        let signed = |n: usize| {
            (0..n)
                .map(|i| format!("Bearer {}", key.sign(&claims(i))))
                .collect()
        };
        write_lines(dir.join(format!("{name}-1.txt")), signed(1))?;
        write_lines(dir.join(format!("{name}-{count}.txt")), signed(count))?;
    }
    let secret = fresh_secret();
    write(dir.join("hs256-secret.txt"), &secret)?;
    let tisjwt = |n: usize| -> Vec<String> {
        (0..n)
            .map(|i| {
                let claims: Value = json!({"iss": TIS_ISSUER, "aud": TIS_ISSUER,
                    "sub": format!("user-{i:05}"), "clientKey": "bench-tenant",
                    "iat": now, "exp": now + TTL_SECONDS});
                format!("TISJWT {}", mint_tisjwt(secret.as_bytes(), &claims))
            })
            .collect()
    };
    write_lines(dir.join("hs256-1.txt"), tisjwt(1))?;
    write_lines(dir.join(format!("hs256-{count}.txt")), tisjwt(count))?;
    let warm: Vec<String> = (0..count).map(|_| opaque_token()).collect();
    let mut cycle = warm.iter().cycle();
    let miss = (0..MISS_LINES)
        .map(|i| match i % 10 {
            9 => opaque_token(),
            _ => cycle.next().cloned().unwrap_or_default(),
        })
        .collect();
    write_lines(dir.join(format!("opaque-{count}.txt")), warm)?;
    write_lines(dir.join("opaque-miss10.txt"), miss)?;
    println!("tokens for {count} users in {}", dir.display());
    Ok(())
}

fn soak_tokens(dir: &Path, count: usize) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let now = now()?;
    let secret = fresh_secret();
    write(dir.join("bearer-hs256-secret.txt"), &secret)?;
    let header = json!({"alg": "HS256", "typ": "JWT"});
    let lines = (0..count)
        .map(|i| {
            let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": format!("user-{i:06}"),
                                "iat": now, "exp": now + TTL_SECONDS});
            format!("Bearer {}", mint_with_header(secret.as_bytes(), &header, &claims))
        })
        .collect();
    write_lines(dir.join(format!("bearer-hs256-{count}.txt")), lines)?;
    println!("{count} HS256 Bearer tokens in {}", dir.display());
    Ok(())
}

/// `Bearer <40 hex digits>`: an opaque access token (no dots, so not taken for a JWT).
fn opaque_token() -> String {
    let mut bytes = [0u8; 20];
    OsRng.fill_bytes(&mut bytes);
    format!("Bearer {}", hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard base64 with padding (RFC 4648 section 4), for the expected HTTP Basic value.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            let digit = ALPHABET[((n >> shift) & 63) as usize] as char;
            out.push(if i <= chunk.len() { digit } else { '=' });
        }
    }
    out
}

/// What the introspection server has answered so far.
#[derive(Default)]
struct Answered {
    requests: AtomicU64,
    tokens: Mutex<HashSet<String>>,
}

fn introspection_server(port: &str, client: &str, oauth1_key: Option<&Path>) -> Result<(), String> {
    let port: u16 = port
        .parse()
        .map_err(|_| format!("port `{port}` is not a port number"))?;
    let oauth1_key = oauth1_key
        .map(|path| std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display())))
        .transpose()?
        .map(|key| key.trim().to_owned());
    let expected = format!("Basic {}", base64(client.as_bytes()));
    let answered = std::sync::Arc::new(Answered::default());
    let seen = answered.clone();
    let server = Server::start(port, move |request: &Received| {
        introspect(request, &expected, &seen, oauth1_key.as_deref())
    })
    .map_err(|e| format!("introspection server on port {port}: {e}"))?;
    println!("introspection server on 127.0.0.1:{}", server.port());
    server.wait();
    Ok(())
}

/// One answer of the introspection server: every token is active, for an hour (an OAuth 1.0a
/// access token only for the bench's consumer, with `oauth1_key`).
fn introspect(
    request: &Received,
    expected_client: &str,
    answered: &Answered,
    oauth1_key: Option<&str>,
) -> Reply {
    if request.method == "GET" && request.path == "/count" {
        let tokens = answered
            .tokens
            .lock()
            .map(|mut t| std::mem::take(&mut *t).len())
            .unwrap_or_default();
        let requests = answered.requests.swap(0, Ordering::Relaxed);
        return Reply::json(200, &json!({"requests": requests, "tokens": tokens}));
    }
    if request.method != "POST" {
        return Reply::json(405, &json!({"error": "invalid_request"}));
    }
    if request.header("authorization") != Some(expected_client) {
        return Reply::json(401, &json!({"error": "invalid_client"}));
    }
    let Some(token) = request
        .body
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .filter(|t| !t.is_empty())
    else {
        return Reply::json(400, &json!({"error": "invalid_request"}));
    };
    answered.requests.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut tokens) = answered.tokens.lock() {
        tokens.insert(token.to_owned());
    }
    let exp = now().unwrap_or_default() + 3600;
    if request
        .body
        .split('&')
        .any(|pair| pair == "token_type_hint=oauth1_access_token")
    {
        return Reply::json(200, &signed_requests::answer(&request.body, oauth1_key, exp));
    }
    let user = format!("user-{}", token.get(..8).unwrap_or(token));
    Reply::json(
        200,
        &json!({"active": true, "username": user, "exp": exp, "scope": "read:jira-work",
                "client_id": "bench-client", "token_type": "Bearer"}),
    )
}

/// A new HMAC secret per run: 32 random bytes as 64 hex digits (RFC 7518 section 3.2 asks
/// HS256 for at least 32 bytes).
fn fresh_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

fn write(path: PathBuf, text: &str) -> Result<(), String> {
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn write_lines(path: PathBuf, lines: Vec<String>) -> Result<(), String> {
    write(path, &(lines.join("\n") + "\n"))
}

/// For each `Authorization: Bearer` line on stdin, the answer-cache bucket tokengate keeps
/// `provider`'s answer in (the module's own key and bucket code), one per line: bench/run.py
/// replays the cache's layout with them. The key is scoped by the provider's section, so the
/// bench passes the module's configuration.
fn answer_buckets(provider: &str, configuration: &str) -> Result<(), String> {
    let config = tokengate::config::Config::from_json(configuration.as_bytes()).map_err(|e| e.to_string())?;
    let provider = config
        .oauth_providers
        .iter()
        .find(|p| p.name == provider)
        .ok_or_else(|| format!("no provider `{provider}` in the configuration"))?;
    let mut out = String::new();
    for line in std::io::stdin().lines() {
        let line = line.map_err(|e| format!("stdin: {e}"))?;
        let token = line.strip_prefix("Bearer ").unwrap_or(&line);
        out.push_str(&tokengate::opaque::answer_bucket(provider, token).to_string());
        out.push('\n');
    }
    std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes()).map_err(|e| format!("stdout: {e}"))
}
