//! `tokengate-demo serve [port]`: the demo application on 127.0.0.1.
//! `tokengate-demo mint <secret> <sub> <clientKey> <ttl-seconds>`: prints an HS256 tisjwt
//! (a negative ttl mints an already expired token).

use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["serve", port] => serve(port.parse().unwrap_or(0)),
        ["serve"] => serve(9080),
        ["mint", secret, sub, client_key, ttl] => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let ttl: u64 = ttl.parse().unwrap_or(3600);
            let claims = json!({
                "iss": "com.obss.plugin.time-in-status",
                "aud": "com.obss.plugin.time-in-status",
                "sub": sub,
                "clientKey": client_key,
                "iat": now,
                "exp": now + ttl,
            });
            println!("{}", tokengate_demo::mint_tisjwt(secret.as_bytes(), &claims));
        }
        _ => {
            eprintln!("usage: tokengate-demo serve [port] | mint <secret> <sub> <clientKey> <ttl-seconds>");
            std::process::exit(2);
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
