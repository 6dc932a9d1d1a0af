//! `warren ctl` and its symlink personalities, run as the built binary against
//! a stand-in for RabbitMQ's management API: a tiny HTTP server in the test
//! that answers with responses recorded from RabbitMQ 3.10.8
//! (`tests/fixtures/management/api/`). It is a test double of RabbitMQ's API,
//! not of anything Warren implements. Expected outputs are the real
//! rabbitmqctl's and rabbitmqadmin's, recorded for the same state.
//!
//! These pin the output byte for byte; `tests/ctl_live.rs` runs the same
//! tools against Warren's own management API and checks their effects.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/management");

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One request the fake API received.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The fake management API: answers GETs from the fixtures, accepts changes,
/// records every request.
struct FakeApi {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl FakeApi {
    fn start() -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let log = log.clone();
                std::thread::spawn(move || serve(stream, addr, &log));
            }
        });
        FakeApi { addr, requests }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Runs the binary (as `warren ctl ARGS` unless `program` is a symlink)
    /// with the fake API as its management URL.
    fn run(&self, program: &Path, args: &[&str]) -> Output {
        run_with(program, args, &self.url(), None)
    }

    fn ctl(&self, args: &[&str]) -> Output {
        let mut full = vec!["ctl"];
        full.extend_from_slice(args);
        self.run(Path::new(env!("CARGO_BIN_EXE_warren")), &full)
    }
}

fn run_with(program: &Path, args: &[&str], url: &str, stdin: Option<&str>) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .env("WARREN_MANAGEMENT_URL", url)
        .env_remove("RABBITMQ_DEFAULT_USER")
        .env_remove("RABBITMQ_DEFAULT_PASS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn serve(stream: TcpStream, addr: SocketAddr, log: &Mutex<Vec<Request>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let path = target.split('?').next().unwrap_or("").to_owned();
    let request = Request { method, path, headers, body: String::from_utf8_lossy(&body).into_owned() };
    log.lock().unwrap().push(request.clone());
    let (status, extra, body) = answer(&request, addr);
    let reason = match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Other",
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}",
        body.len()
    );
}

const NOT_FOUND: &str = r#"{"error":"Object Not Found","reason":"Not Found"}"#;

/// What RabbitMQ answered (per the fixtures) for one request.
fn answer(request: &Request, addr: SocketAddr) -> (u16, String, String) {
    // guest:guest
    if request.header("authorization") != Some("Basic Z3Vlc3Q6Z3Vlc3Q=") {
        return (
            401,
            "www-authenticate: Basic realm=\"RabbitMQ Management\"\r\n".into(),
            fixture("api/unauthorized.json"),
        );
    }
    let get = |name: &str| (200, String::new(), fixture(&format!("api/{name}.json")));
    let missing = || (404, String::new(), NOT_FOUND.to_owned());
    let exists = |name: &str, list: &str| {
        let items: Value = serde_json::from_str(&fixture(&format!("api/{list}.json"))).unwrap();
        items.as_array().unwrap().iter().find(|i| i["name"] == name).cloned()
    };
    let path = request.path.as_str();
    match request.method.as_str() {
        "GET" => match path {
            "/api/overview" => {
                // The listeners are this server (and a closed port for the
                // "connectivity failed" test, chosen by a vhost-less URL prefix).
                let mut o: Value = serde_json::from_str(&fixture("api/overview.json")).unwrap();
                o["listeners"] = serde_json::json!([
                    {"node": "ref5673@localhost", "protocol": "http", "ip_address": "::", "port": addr.port()},
                    {"node": "ref5673@localhost", "protocol": "amqp", "ip_address": "127.0.0.1", "port": addr.port()},
                ]);
                (200, String::new(), o.to_string())
            }
            "/api/nodes/ref5673%40localhost" => get("node"),
            "/api/queues/%2F" => get("queues"),
            "/api/queues/staging" => get("queues_staging"),
            "/api/queues" => get("queues_all"),
            "/api/exchanges/%2F" => get("exchanges"),
            "/api/exchanges" => get("exchanges_all"),
            "/api/bindings/%2F" | "/api/bindings" => get("bindings"),
            "/api/connections" => get("connections"),
            "/api/channels" => get("channels"),
            "/api/consumers/%2F" | "/api/consumers" => get("consumers"),
            "/api/users" => get("users"),
            "/api/vhosts" => get("vhosts"),
            "/api/vhosts/%2F/permissions" => get("vhosts_permissions"),
            "/api/policies/%2F" => get("policies"),
            "/api/policies/staging" => get("policies_staging"),
            "/api/policies" => get("policies_all"),
            "/api/definitions" => get("definitions"),
            "/api/users/bob" => get("users_bob"),
            "/api/health/checks/local-alarms" => get("health_local_alarms"),
            "/api/health/checks/alarms" => get("health_alarms"),
            "/api/health/checks/virtual-hosts" => get("health_virtual_hosts"),
            "/api/queues/%2F/jobs" => (200, String::new(), exists("jobs", "queues").unwrap().to_string()),
            "/api/users/alice" | "/api/users/guest" => {
                let name = path.rsplit('/').next().unwrap();
                let users: Value = serde_json::from_str(&fixture("api/users.json")).unwrap();
                let user = users.as_array().unwrap().iter().find(|u| u["name"] == name).unwrap().clone();
                (200, String::new(), user.to_string())
            }
            "/api/queues/%2F/a%2Fb" => match exists("a/b", "queues") {
                Some(q) => (200, String::new(), q.to_string()),
                None => missing(),
            },
            _ => missing(),
        },
        "DELETE" if path == "/api/queues/%2F/jobs" => (400, String::new(), fixture("api/delete_queue_in_use.json")),
        "DELETE" => match path {
            "/api/queues/%2F/a%2Fb"
            | "/api/queues/%2F/a%2Fb/contents"
            | "/api/users/bob"
            | "/api/vhosts/staging"
            | "/api/policies/%2F/ttl"
            | "/api/permissions/%2F/alice"
            | "/api/connections/conn%201" => (204, String::new(), String::new()),
            _ => missing(),
        },
        "PUT" => (201, String::new(), String::new()),
        "POST" if path.ends_with("/publish") => (200, String::new(), r#"{"routed":true}"#.to_owned()),
        "POST" => (201, String::new(), String::new()),
        _ => (405, String::new(), String::new()),
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit code, stdout and stderr of a recorded rabbitmqctl run.
fn recorded(name: &str) -> (i32, String, String) {
    let rc = fixture(&format!("rabbitmqctl/{name}.rc")).trim().parse().unwrap();
    (rc, fixture(&format!("rabbitmqctl/{name}.out")), fixture(&format!("rabbitmqctl/{name}.err")))
}

fn sorted(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines
}

/// Asserts a run matches the recorded one: exit code, stdout, stderr.
#[track_caller]
fn assert_same(ours: &Output, name: &str) {
    let (rc, out, err) = recorded(name);
    assert_eq!(ours.status.code(), Some(rc), "{name}: exit code; stderr: {}", stderr(ours));
    assert_eq!(stdout(ours), out, "{name}: stdout");
    assert_eq!(stderr(ours), err, "{name}: stderr");
}

#[test]
fn lists_match_rabbitmqctl_byte_for_byte() {
    let api = FakeApi::start();
    assert_same(&api.ctl(&["list_queues"]), "list_queues");
    assert_same(
        &api.ctl(&["list_queues", "name", "messages", "consumers", "durable", "arguments"]),
        "list_queues_cols",
    );
    assert_same(&api.ctl(&["-q", "list_queues", "name", "messages"]), "list_queues_q");
    assert_same(&api.ctl(&["-s", "list_queues", "name", "messages"]), "list_queues_s");
    assert_same(&api.ctl(&["list_queues", "-p", "staging"]), "list_queues_staging");
    assert_same(&api.ctl(&["list_bindings"]), "list_bindings");
    assert_same(&api.ctl(&["list_connections"]), "list_connections");
    assert_same(&api.ctl(&["list_users"]), "list_users");
    assert_same(&api.ctl(&["list_vhosts", "name", "tracing"]), "list_vhosts_cols");
    assert_same(&api.ctl(&["list_policies"]), "list_policies");
    assert_same(&api.ctl(&["list_policies", "-p", "staging"]), "list_policies_staging");
    // -n is accepted and ignored.
    assert_same(&api.ctl(&["-n", "rabbit@elsewhere", "list_vhosts"]), "list_vhosts");
    // Row order is the API's (sorted), rabbitmqctl's is Mnesia's: compare sets.
    let ours = api.ctl(&["list_exchanges"]);
    let (_, out, _) = recorded("list_exchanges");
    assert_eq!(sorted(&stdout(&ours)), sorted(&out));
}

#[test]
fn json_formatter_matches_rabbitmqctl() {
    let api = FakeApi::start();
    assert_same(&api.ctl(&["list_queues", "name", "messages", "consumers", "--formatter", "json"]), "list_queues_json");
    assert_same(&api.ctl(&["list_queues", "name", "arguments", "--formatter=json"]), "list_queues_args_json");
    assert_same(&api.ctl(&["list_users", "--formatter", "json"]), "list_users_json");
    assert_same(&api.ctl(&["list_queues", "-p", "staging", "--formatter", "json"]), "list_queues_staging_json");
}

#[test]
fn errors_and_exit_codes_match_rabbitmqctl() {
    let api = FakeApi::start();
    for (name, args) in [
        ("delete_queue_missing", &["delete_queue", "nosuch"][..]),
        ("purge_queue_missing", &["purge_queue", "nosuch"]),
        ("delete_user_missing", &["delete_user", "nosuch"]),
        ("change_password_missing", &["change_password", "nosuch", "pw"]),
        ("set_user_tags_missing", &["set_user_tags", "nosuch", "administrator"]),
        ("delete_vhost_missing", &["delete_vhost", "nosuch"]),
        ("set_permissions_missing_user", &["set_permissions", "nosuch", ".*", ".*", ".*"]),
        ("clear_permissions_missing_user", &["clear_permissions", "nosuch"]),
        ("clear_policy_missing", &["clear_policy", "nosuch"]),
        ("set_policy_bad_json", &["set_policy", "bad", "^x", "{bad"]),
        ("add_user_exists", &["add_user", "guest", "guest"]),
        ("add_vhost_exists", &["add_vhost", "staging"]),
        ("await_startup", &["await_startup"]),
        ("list_queues_missing_vhost", &["list_queues", "-p", "nosuchvh"]),
        ("list_policies_missing_vhost", &["list_policies", "-p", "nosuchvh"]),
        ("list_user_permissions_missing", &["list_user_permissions", "nosuch"]),
        ("delete_queue_in_use", &["delete_queue", "jobs", "--if-unused"]),
    ] {
        assert_same(&api.ctl(args), name);
    }
    // Usage errors: same code and text, without the ANSI bold around "Usage".
    for (name, args) in [
        ("list_queues_bad_col", &["-n", "ref5673@localhost", "list_queues", "name", "nosuchcol"][..]),
        ("set_permissions_too_few", &["-n", "ref5673@localhost", "set_permissions", "alice"]),
    ] {
        let ours = api.ctl(args);
        let (rc, _, err) = recorded(name);
        assert_eq!(ours.status.code(), Some(rc), "{name}");
        assert_eq!(stderr(&ours), err.replace("\x1b[1m", "").replace("\x1b[0m", ""), "{name}");
    }
    let ours = api.ctl(&["frobnicate"]);
    assert_eq!(ours.status.code(), Some(64));
    assert!(stderr(&ours).starts_with("\nCommand 'frobnicate' not found. \n"), "{}", stderr(&ours));
}

#[test]
fn changes_send_rabbitmqs_requests() {
    let api = FakeApi::start();
    let o = api.ctl(&["add_user", "dave", "s3cret"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("Adding user \"dave\" ...\nDone."));
    let put = api.requests().into_iter().find(|r| r.method == "PUT").unwrap();
    assert_eq!(put.path, "/api/users/dave");
    assert_eq!(
        serde_json::from_str::<Value>(&put.body).unwrap(),
        serde_json::json!({"password": "s3cret", "tags": ""})
    );

    let o = api.ctl(&[
        "set_policy",
        "-p",
        "staging",
        "--priority",
        "2",
        "--apply-to",
        "queues",
        "lim",
        "^lim",
        r#"{"max-length":5}"#,
    ]);
    assert_eq!(o.status.code(), Some(0));
    let put = api.requests().into_iter().rfind(|r| r.method == "PUT").unwrap();
    assert_eq!(put.path, "/api/policies/staging/lim");
    assert_eq!(
        serde_json::from_str::<Value>(&put.body).unwrap(),
        serde_json::json!({"pattern": "^lim", "definition": {"max-length": 5}, "priority": 2, "apply-to": "queues"})
    );

    // set_user_tags keeps the password: it sends the hash it read back.
    assert_eq!(api.ctl(&["set_user_tags", "bob", "management"]).status.code(), Some(0));
    let put = api.requests().into_iter().rfind(|r| r.method == "PUT").unwrap();
    let body: Value = serde_json::from_str(&put.body).unwrap();
    assert_eq!(body["tags"], "management");
    assert_eq!(
        body["password_hash"],
        serde_json::from_str::<Value>(&fixture("api/users_bob.json")).unwrap()["password_hash"]
    );

    // Names are percent-encoded as RabbitMQ's API expects.
    let o = api.ctl(&["delete_queue", "a/b"]);
    assert_eq!(
        stdout(&o),
        "Deleting queue 'a/b' on vhost '/' ...\nQueue was successfully deleted with 0 ready messages\n"
    );
    assert!(api.requests().iter().any(|r| r.method == "DELETE" && r.path == "/api/queues/%2F/a%2Fb"));
    assert_eq!(api.ctl(&["purge_queue", "a/b"]).status.code(), Some(0));

    let o = api.ctl(&["close_connection", "conn 1", "go away"]);
    assert_eq!(stdout(&o), "Closing connection conn 1, reason: go away...\n");
    let close = api.requests().into_iter().rfind(|r| r.method == "DELETE").unwrap();
    assert_eq!((close.path.as_str(), close.header("x-reason")), ("/api/connections/conn%201", Some("go away")));
}

#[test]
fn definitions_export_and_import() {
    let api = FakeApi::start();
    let o = api.ctl(&["export_definitions", "-"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), fixture("api/definitions.json"));
    let dir = temp_dir("defs");
    let file = dir.join("defs.json");
    let o = api.ctl(&["export_definitions", file.to_str().unwrap()]);
    assert_eq!(stdout(&o), format!("Exporting definitions in JSON to a file at \"{}\" ...\n", file.display()));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), fixture("api/definitions.json"));
    let o = api.ctl(&["import_definitions", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let post = api.requests().into_iter().rfind(|r| r.method == "POST").unwrap();
    assert_eq!(
        (post.path.as_str(), post.body.as_str()),
        ("/api/definitions", fixture("api/definitions.json").as_str())
    );
    let o =
        run_with(Path::new(env!("CARGO_BIN_EXE_warren")), &["ctl", "import_definitions", "-"], &api.url(), Some("{}"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    std::fs::remove_dir_all(dir).unwrap();
}

static TEMP: AtomicU64 = AtomicU64::new(0);

fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "warren-ctl-test-{what}-{}-{}",
        std::process::id(),
        TEMP.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A directory with the binary linked under the four RabbitMQ tool names.
fn symlinks() -> PathBuf {
    let dir = temp_dir("bin");
    for name in ["rabbitmqctl", "rabbitmq-diagnostics", "rabbitmq-plugins", "rabbitmqadmin"] {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_warren"), dir.join(name)).unwrap();
    }
    dir
}

#[test]
fn symlinks_answer_as_rabbitmq_tools() {
    let api = FakeApi::start();
    let bin = symlinks();
    assert_same(&api.run(&bin.join("rabbitmqctl"), &["list_users"]), "list_users");
    assert_same(&api.run(&bin.join("rabbitmqctl"), &["delete_queue", "nosuch"]), "delete_queue_missing");

    let diag = bin.join("rabbitmq-diagnostics");
    assert_same(&api.run(&diag, &["-q", "ping"]), "diag_ping_q");
    assert_same(&api.run(&diag, &["check_running"]), "diag_check_running");
    assert_same(&api.run(&diag, &["-q", "check_running"]), "diag_check_running_q");
    assert_same(&api.run(&diag, &["check_local_alarms"]), "diag_check_local_alarms");
    assert_same(&api.run(&diag, &["check_alarms"]), "diag_check_alarms");
    assert_same(&api.run(&diag, &["check_virtual_hosts"]), "diag_check_virtual_hosts");
    // The listeners the fake reports are its own port: connected for real.
    let o = api.run(&diag, &["-q", "check_port_connectivity"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("Successfully connected to ports {} on node ref5673@localhost.\n", api.addr.port()));

    let plugins = bin.join("rabbitmq-plugins");
    let o = api.run(&plugins, &["list"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("[E*] rabbitmq_management "), "{}", stdout(&o));
    for args in [
        &["enable", "rabbitmq_management"][..],
        &["enable", "rabbitmq_shovel", "rabbitmq_prometheus"],
        &["disable", "rabbitmq_management"],
    ] {
        let o = api.run(&plugins, args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).ends_with("Plugin configuration unchanged.\n"));
    }
    let o = api.run(&plugins, &["enable", "nosuch_plugin"]);
    let (rc, _, err) = recorded("plugins_enable_unknown");
    assert_eq!(o.status.code(), Some(rc));
    assert!(err.starts_with(&stderr(&o)), "{}", stderr(&o));

    let admin = bin.join("rabbitmqadmin");
    let o = api.run(&admin, &["list", "queues"]);
    assert_eq!(stdout(&o), fixture("rabbitmqadmin/list_queues.out"));
    let o = api.run(&admin, &["list", "users"]);
    assert_eq!(stdout(&o), fixture("rabbitmqadmin/list_users.out"));
    let o = api.run(&admin, &["declare", "queue", "name=x/y", "durable=false"]);
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), "queue declared\n"));
    let put = api.requests().into_iter().rfind(|r| r.method == "PUT").unwrap();
    assert_eq!(put.path, "/api/queues/%2F/x%2Fy");
    assert_eq!(
        serde_json::from_str::<Value>(&put.body).unwrap(),
        serde_json::json!({"auto_delete": "false", "durable": "false", "arguments": {}, "name": "x/y", "vhost": "/"})
    );
    let o = api.run(&admin, &["publish", "routing_key=q", "payload=hi"]);
    assert_eq!(stdout(&o), "Message published\n");
    let o = api.run(&admin, &["delete", "queue", "name=nosuchq"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), fixture("rabbitmqadmin/delete_queue_missing.err"));
    let o = api.run(&admin, &["declare", "queue"]);
    assert_eq!((o.status.code(), stderr(&o)), (Some(1), fixture("rabbitmqadmin/missing_arg.err")));

    // `warren ctl admin|diagnostics|plugins` reach the same personalities.
    let o = api.ctl(&["admin", "list", "queues"]);
    assert_eq!(stdout(&o), fixture("rabbitmqadmin/list_queues.out"));
    assert_eq!(stdout(&api.ctl(&["diagnostics", "-q", "ping"])), "Ping succeeded\n");
    std::fs::remove_dir_all(bin).unwrap();
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn unreachable_api_says_what_to_do() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let warren = Path::new(env!("CARGO_BIN_EXE_warren"));
    let o = run_with(warren, &["ctl", "list_queues"], &url, None);
    assert_eq!(o.status.code(), Some(69));
    assert_eq!(stdout(&o), "");
    assert_eq!(
        stderr(&o),
        format!("Error:\ncannot reach the management API at {url}: connection refused — is Warren running with --management-port?\n")
    );
    // The health check a compose file runs fails with the same code as RabbitMQ's.
    let o = run_with(warren, &["ctl", "diagnostics", "-q", "ping"], &url, None);
    assert_eq!(o.status.code(), Some(recorded("down_ping").0));
    assert!(stderr(&o).contains("connection refused"));
    let o = run_with(warren, &["ctl", "diagnostics", "check_running"], &url, None);
    assert_eq!(o.status.code(), Some(recorded("down_check_running").0));
    let o = run_with(warren, &["ctl", "--url", &url, "admin", "list", "queues"], "http://unused", None);
    assert_eq!(o.status.code(), Some(64), "the admin personality has its own syntax: {}", stderr(&o));
    let o = run_with(warren, &["ctl", "admin", "-U", &url, "list", "queues"], "http://unused", None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("*** Could not connect: cannot reach the management API"), "{}", stderr(&o));
}

#[test]
fn refused_credentials() {
    let api = FakeApi::start();
    let o = api.ctl(&["list_queues", "--password", "wrong"]);
    assert_eq!(o.status.code(), Some(77));
    assert!(stderr(&o).contains("refused user \"guest\" (Login failed)"), "{}", stderr(&o));
}

#[test]
fn check_port_connectivity_fails_for_a_closed_listener() {
    // A fake whose overview lists a port nobody listens on.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let dead = closed_port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 2 {
                line.clear();
            }
            let body = serde_json::json!({"node": "warren@test", "listeners": [
                {"protocol": "amqp", "ip_address": "127.0.0.1", "port": dead},
                {"protocol": "http", "ip_address": "127.0.0.1", "port": addr.port()},
            ]})
            .to_string();
            let mut stream = stream;
            let _ =
                write!(stream, "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
        }
    });
    let o = run_with(
        Path::new(env!("CARGO_BIN_EXE_warren")),
        &["ctl", "diagnostics", "check_port_connectivity"],
        &format!("http://{addr}"),
        None,
    );
    assert_eq!(o.status.code(), Some(69));
    assert_eq!(stdout(&o), "Testing TCP connections to all active listeners on node warren@test ...\n");
    assert!(stderr(&o).contains(&format!("Connection to ports {dead} on node warren@test failed")), "{}", stderr(&o));
}

#[test]
fn a_silent_api_times_out() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let started = std::time::Instant::now();
    let o = run_with(Path::new(env!("CARGO_BIN_EXE_warren")), &["ctl", "list_queues", "-t", "0.5"], &url, None);
    assert_eq!(o.status.code(), Some(75), "{}", stderr(&o));
    assert!(stderr(&o).contains("did not answer in time"), "{}", stderr(&o));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
