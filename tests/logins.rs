//! Logins beyond the default user: password hashes made by `warren
//! hash-password` and by `password_hashing_module`, and how refusals are
//! logged. Warren only (the hashes go into Warren's own definitions file).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use lapin::{Connection, ConnectionProperties};

/// `warren hash-password`, the password given as an argument or on stdin.
fn hash_password(algorithm: &str, arg: Option<&str>, stdin: Option<&str>) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warren"));
    cmd.arg("hash-password").args(["--algorithm", algorithm]).args(arg);
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "hash-password failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "one line, only the hash: {text:?}");
    text.trim().to_owned()
}

fn definitions(users: &[(&str, &str, &str)]) -> serde_json::Value {
    serde_json::json!({
        "vhosts": [{"name": "/"}],
        "users": users.iter().map(|(name, hash, alg)| serde_json::json!({
            "name": name, "password_hash": hash, "hashing_algorithm": alg, "tags": ""
        })).collect::<Vec<_>>(),
        "permissions": users.iter().map(|(name, _, _)| serde_json::json!({
            "user": name, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"
        })).collect::<Vec<_>>(),
    })
}

async fn can_log_in(b: &TestBroker, user: &str, pass: &str) -> bool {
    within(Connection::connect(&b.uri_with(user, pass, "/"), ConnectionProperties::default())).await.is_ok()
}

#[tokio::test]
async fn hashes_printed_by_hash_password_log_in_from_a_definitions_file() {
    if external() {
        return;
    }
    let md5 = hash_password("rabbit_password_hashing_md5", Some("old-pw"), None);
    let sha512 = hash_password("rabbit_password_hashing_sha512", None, Some("from stdin\n"));
    let sha256 = hash_password("rabbit_password_hashing_sha256", None, Some("p w\r\n"));
    // 4 salt bytes + the digest, base64: 20, 68 and 36 bytes.
    assert_eq!((md5.len(), sha512.len(), sha256.len()), (28, 92, 48));
    let dir = std::env::temp_dir().join(unique("defs"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("definitions.json");
    let defs = definitions(&[
        ("m", &md5, "rabbit_password_hashing_md5"),
        ("s5", &sha512, "rabbit_password_hashing_sha512"),
        ("s2", &sha256, "rabbit_password_hashing_sha256"),
    ]);
    std::fs::write(&path, defs.to_string()).unwrap();
    let b = broker_with(|c| c.definitions = Some(path.clone())).await;
    assert!(can_log_in(&b, "m", "old-pw").await);
    assert!(can_log_in(&b, "s5", "from stdin").await, "the newline that ends stdin is not part of the password");
    assert!(can_log_in(&b, "s2", "p w").await);
    assert!(!can_log_in(&b, "m", "old-pW").await);
    assert!(!can_log_in(&b, "s2", "p").await);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A definitions file whose users have a `password_hash` and no
/// `hashing_algorithm` is read with the node's `password_hashing_module`, as
/// RabbitMQ reads it; without the module set, that is SHA-256.
#[tokio::test]
async fn a_definitions_hash_without_an_algorithm_uses_password_hashing_module() {
    if external() {
        return;
    }
    let sha512 = hash_password("rabbit_password_hashing_sha512", Some("five12"), None);
    let sha256 = hash_password("rabbit_password_hashing_sha256", Some("two56"), None);
    let dir = std::env::temp_dir().join(unique("defs"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("definitions.json");
    let mut defs = definitions(&[("s5", &sha512, ""), ("s2", &sha256, "")]);
    for u in defs["users"].as_array_mut().unwrap() {
        u.as_object_mut().unwrap().remove("hashing_algorithm");
    }
    std::fs::write(&path, defs.to_string()).unwrap();

    let mut config = warren::Config::ephemeral();
    config.apply_rabbitmq_conf("password_hashing_module = rabbit_password_hashing_sha512\n", &|_| false).unwrap();
    config.definitions = Some(path.clone());
    let b = broker_with_config(config).await;
    assert!(can_log_in(&b, "s5", "five12").await, "read as SHA-512, the configured module");
    assert!(!can_log_in(&b, "s2", "two56").await, "a SHA-256 hash does not verify as SHA-512");
    let s5 = b.server().unwrap().broker().export_definitions().users.into_iter().find(|u| u.name == "s5").unwrap();
    assert_eq!(s5.hashing_algorithm, "rabbit_password_hashing_sha512", "exported with the algorithm it was read with");

    let b = broker_with(|c| c.definitions = Some(path.clone())).await;
    assert!(can_log_in(&b, "s2", "two56").await, "the default module is SHA-256");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hash_password_refuses_an_unknown_algorithm() {
    let out = Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["hash-password", "--algorithm", "rabbit_password_hashing_bcrypt", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown password hashing module 'rabbit_password_hashing_bcrypt'"), "{err}");
    assert!(err.contains("rabbit_password_hashing_md5"), "says what is supported: {err}");
}

#[tokio::test]
async fn password_hashing_module_picks_the_hash_of_new_users() {
    if external() {
        return;
    }
    let mut config = warren::Config::ephemeral();
    config.apply_rabbitmq_conf("password_hashing_module = rabbit_password_hashing_sha512\n", &|_| false).unwrap();
    let b = broker_with_config(config).await;
    let broker = b.server().unwrap().broker();
    let guest = broker.export_definitions().users.into_iter().find(|u| u.name == "guest").unwrap();
    assert_eq!(guest.hashing_algorithm, "rabbit_password_hashing_sha512");
    assert!(can_log_in(&b, "guest", "guest").await);
    let made = broker.new_user("app", "pw", &[]).to_def();
    assert_eq!(made.hashing_algorithm, "rabbit_password_hashing_sha512");

    let mut bad = warren::Config::ephemeral();
    let err = bad.apply_rabbitmq_conf("password_hashing_module = rabbit_password_hashing_sha1\n", &|_| false);
    assert!(err.unwrap_err().contains("unknown password hashing module"));
}

/// Starts the binary with its log on a pipe, tries two refused logins and
/// returns what it logged.
fn log_of_refused_logins(logins: &[(&str, &str)]) -> String {
    use std::io::{BufRead, BufReader, Read};
    let dir = std::env::temp_dir().join(unique("log"));
    std::fs::create_dir_all(&dir).unwrap();
    let port_file = dir.join("port");
    let mut child = Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["--in-memory", "--bind", "127.0.0.1", "--port", "0", "--management-port", "0", "--prometheus-port", "0"])
        .arg("--port-file")
        .arg(&port_file)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut log = String::new();
    while !log.contains("Server startup complete") {
        assert!(out.read_line(&mut log).unwrap() > 0, "warren ended before starting: {log}");
    }
    let port: u16 = std::fs::read_to_string(&port_file).unwrap().trim().parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for (user, pass) in logins {
        let uri = format!("amqp://{user}:{pass}@127.0.0.1:{port}/%2f");
        let refused = rt.block_on(Connection::connect(&uri, ConnectionProperties::default()));
        assert!(refused.is_err());
    }
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let _ = out.read_to_string(&mut log);
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    log
}

#[test]
fn refused_logins_are_logged_with_peer_user_and_mechanism_but_not_the_password() {
    let log = log_of_refused_logins(&[("nosuch", "hunter2-unknown"), ("guest", "hunter2-wrong")]);
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("login refused")).collect();
    assert_eq!(lines.len(), 2, "one line per refusal: {log}");
    assert!(lines[0].contains("ERROR"), "RabbitMQ logs these as errors: {}", lines[0]);
    assert!(lines[0].contains("PLAIN login refused: user 'nosuch' - invalid credentials"), "{}", lines[0]);
    assert!(lines[1].contains("PLAIN login refused: user 'guest' - invalid credentials"), "{}", lines[1]);
    for l in &lines {
        assert!(l.contains("peer=127.0.0.1:"), "{l}");
        assert!(l.contains("mechanism=\"PLAIN\"") || l.contains("mechanism=PLAIN"), "{l}");
    }
    assert!(!log.contains("hunter2"), "a password was logged: {log}");
}
