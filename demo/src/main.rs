//! `tokengate-demo serve [port]`: the demo application on 127.0.0.1.
//! `tokengate-demo mint <secret> <sub> <clientKey> <ttl-seconds>`: prints an HS256 tisjwt
//! (a negative ttl mints an already expired token).
//! `tokengate-demo idp <port> <key-file>`: a demo identity provider serving its JWKS at
//! `/jwks.json` (ES256 key kept in `key-file`, created on first use).
//! `tokengate-demo mint-jwt <key-file> <sub> <scope> <ttl-seconds>`: prints a token of that IdP.

use std::time::{SystemTime, UNIX_EPOCH};
use tokengate_demo::keys::TestKey;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["serve"] => serve(9080),
        ["serve", port] => match port.parse() {
            Ok(port) => serve(port),
            Err(_) => usage(),
        },
        ["mint", rest @ ..] => match mint(rest, unix_now()) {
            Some(token) => println!("{token}"),
            None => usage(),
        },
        ["idp", port, key_file] => match (port.parse(), demo_idp_key(key_file)) {
            (Ok(port), Some(key)) => serve_idp(port, key),
            _ => usage(),
        },
        ["mint-jwt", key_file, sub, scope, ttl] => match (demo_idp_key(key_file), ttl.parse::<i64>()) {
            (Some(key), Ok(ttl)) => println!(
                "{}",
                key.sign(&tokengate_demo::demo_jwt_claims(sub, scope, unix_now(), ttl))
            ),
            _ => usage(),
        },
        _ => usage(),
    }
}

/// `mint <secret> <sub> <clientKey> <ttl-seconds>` at time `now`; `None` on bad arguments.
fn mint(args: &[&str], now: i64) -> Option<String> {
    let [secret, sub, client_key, ttl] = args else {
        return None;
    };
    let claims = tokengate_demo::demo_claims(sub, client_key, now, ttl.parse().ok()?);
    Some(tokengate_demo::mint_tisjwt(secret.as_bytes(), &claims))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn usage() {
    eprintln!(
        "usage: tokengate-demo serve [port] | mint <secret> <sub> <clientKey> <ttl-seconds>\n\
         \x20      | idp <port> <key-file> | mint-jwt <key-file> <sub> <scope> <ttl-seconds>"
    );
    std::process::exit(2);
}

/// The demo IdP's key: read from `path`, or created there (hex of the ES256 secret).
fn demo_idp_key(path: &str) -> Option<TestKey> {
    let from_hex = |hex: &str| -> Option<Vec<u8>> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect()
    };
    if let Ok(hex) = std::fs::read_to_string(path) {
        return TestKey::es256_from_secret(tokengate_demo::DEMO_IDP_KID, &from_hex(hex.trim())?);
    }
    let key = TestKey::es256(tokengate_demo::DEMO_IDP_KID);
    let hex: String = key.es256_secret()?.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(path, hex).ok()?;
    Some(key)
}

fn serve_idp(port: u16, key: TestKey) {
    let document = tokengate_demo::keys::jwks(&[&key]);
    match tokengate_demo::Server::start(port, move |_| tokengate_demo::Reply::json(200, &document)) {
        Ok(server) => {
            eprintln!(
                "demo identity provider: JWKS at http://127.0.0.1:{}/jwks.json",
                server.port()
            );
            server.wait();
        }
        Err(e) => {
            eprintln!("demo identity provider: cannot listen on port {port}: {e}");
            std::process::exit(1);
        }
    }
}

fn serve(port: u16) {
    match tokengate_demo::DemoApp::start(port) {
        Ok(app) => {
            eprintln!("demo application listening on http://127.0.0.1:{}", app.port());
            app.wait();
        }
        Err(e) => {
            eprintln!("demo application: cannot listen on port {port}: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    fn exp_of(token: &str) -> i64 {
        let payload = token.split('.').nth(1).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        claims["exp"].as_i64().unwrap()
    }

    #[test]
    fn a_negative_ttl_mints_an_expired_token() {
        assert_eq!(
            exp_of(&mint(&["s", "fred", "t", "-3600"], 10_000).unwrap()),
            6_400
        );
        assert_eq!(exp_of(&mint(&["s", "fred", "t", "60"], 10_000).unwrap()), 10_060);
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert_eq!(mint(&["s", "fred", "t", "soon"], 0), None);
        assert_eq!(mint(&["s", "fred", "t"], 0), None);
    }
}
