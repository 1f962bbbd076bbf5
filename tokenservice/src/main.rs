//! `tokengate-tokens --config <file>`: runs the token service.
//! `tokengate-tokens hash-password`: reads a password on standard input and prints its argon2
//! PHC string for the users file.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use tokengate_tokens::api::Service;
use tokengate_tokens::config::Config;
use tokengate_tokens::server::Server;
use tokengate_tokens::store::Store;
use tokengate_tokens::users::{self, FileDirectory};

const USAGE: &str = "usage:
  tokengate-tokens --config <file.json>   run the token service
  tokengate-tokens hash-password          read a password on stdin, print its argon2 hash";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["--config", path] => serve(PathBuf::from(path)),
        ["hash-password"] => hash_password(),
        ["--help" | "-h"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tokengate-tokens: {message}");
            ExitCode::FAILURE
        }
    }
}

fn serve(path: PathBuf) -> Result<(), String> {
    let config = Config::load(&path).map_err(|e| e.to_string())?;
    for warning in config.warnings() {
        eprintln!("tokengate-tokens: {warning}");
    }
    let directory = FileDirectory::load(&config.users_file).map_err(|e| e.to_string())?;
    let store = Store::open(&config.database).map_err(|e| e.to_string())?;
    let server = Server::bind(Service::new(config, store, Box::new(directory)))?;
    // Tests and scripts wait for this line: once it is printed, requests are accepted.
    let address = server
        .local_addr()
        .map_or_else(|| "?".to_owned(), |a| a.to_string());
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "tokengate-tokens listening on {address}");
    let _ = stdout.flush();
    server.run()
}

fn hash_password() -> Result<(), String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password: {e}"))?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err("no password on standard input".to_owned());
    }
    let hash = users::hash_password(password).map_err(|e| e.to_string())?;
    println!("{hash}");
    Ok(())
}
