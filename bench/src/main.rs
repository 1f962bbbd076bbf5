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
//! `tokengate-bench soak-tokens <dir> <count>`: for the memory soak run, `count` distinct
//! HS256 Bearer tokens (cheap to verify, so the verified-token cache churns as fast as Envoy
//! can go) in `bearer-hs256-<count>.txt`, with their secret in `bearer-hs256-secret.txt`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use rand_core::{OsRng, RngCore as _};
use serde_json::{json, Value};
use tokengate_demo::keys::{jwks, TestKey};
use tokengate_demo::{mint_tisjwt, mint_with_header};

pub const ISSUER: &str = "https://idp.example.com";
pub const AUDIENCE: &str = "jira";
pub const TIS_ISSUER: &str = "com.obss.plugin.time-in-status";
const TTL_SECONDS: i64 = 24 * 3600;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["tokens", dir] => tokens(Path::new(dir), 1000),
        ["tokens", dir, count] => positive(count).and_then(|count| tokens(Path::new(dir), count)),
        ["soak-tokens", dir, count] => positive(count).and_then(|count| soak_tokens(Path::new(dir), count)),
        _ => Err("usage: tokengate-bench tokens <dir> [count] | soak-tokens <dir> <count>".to_owned()),
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

/// A new HMAC secret per run: 32 random bytes as 64 hex digits (RFC 7518 section 3.2 asks
/// HS256 for at least 32 bytes).
fn fresh_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write(path: PathBuf, text: &str) -> Result<(), String> {
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn write_lines(path: PathBuf, lines: Vec<String>) -> Result<(), String> {
    write(path, &(lines.join("\n") + "\n"))
}
