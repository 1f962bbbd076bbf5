//! The command line: `hash-password`, and refusing a bad configuration up front.

mod common;

use common::Scratch;
use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_tokengate-tokens");

#[test]
fn hash_password_prints_an_argon2_hash_of_standard_input() {
    let mut child = Command::new(BIN)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"correct horse\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let hash = String::from_utf8(output.stdout).unwrap();
    assert!(tokengate_tokens::users::verify_password(
        "correct horse",
        hash.trim()
    ));
    assert!(!tokengate_tokens::users::verify_password(
        "correct horse\n",
        hash.trim()
    ));
}

#[test]
fn a_bad_configuration_stops_the_service_with_the_field_named() {
    let scratch = Scratch::new();
    let path = scratch.0.join("config.json");
    std::fs::write(&path, r#"{"listen":"127.0.0.1:0","databse":"x.db"}"#).unwrap();
    let output = Command::new(BIN).arg("--config").arg(&path).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("databse"), "{stderr}");

    let output = Command::new(BIN).arg("--nonsense").output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage"));
}

#[test]
fn the_shipped_demo_configuration_and_users_load() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let config = tokengate_tokens::config::Config::load(&dir.join("demo.json")).unwrap();
    let users = tokengate_tokens::users::FileDirectory::load(&config.users_file).unwrap();
    use tokengate_tokens::users::Directory as _;
    for name in ["admin", "fred", "jsmith", "departed"] {
        let user = users.check_password(name, &format!("{name}-password")).unwrap();
        assert_eq!(user.administrator, name == "admin");
        assert_eq!(user.active, name != "departed");
    }
    // The demo application link: its 2048-bit public key here, its private key (demo only)
    // in demo/oauth-consumer.pem for the README's dance.
    let demo = config
        .oauth1
        .as_ref()
        .unwrap()
        .consumer("tokengate-demo")
        .unwrap();
    assert_eq!(demo.key.bits(), 2048);
    assert_eq!(demo.callbacks, vec!["http://127.0.0.1:8765/".to_owned()]);
    assert!(config.warnings().is_empty());
    use rsa::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _};
    let private = std::fs::read_to_string(dir.join("../../demo/oauth-consumer.pem")).unwrap();
    let private = rsa::RsaPrivateKey::from_pkcs8_pem(&private).unwrap();
    let public = private.to_public_key().to_public_key_der().unwrap();
    assert_eq!(public.as_bytes(), demo.key.spki_der());
}
