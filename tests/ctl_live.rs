//! `warren ctl` and its symlink personalities (rabbitmqctl,
//! rabbitmq-diagnostics, rabbitmq-plugins, rabbitmqadmin), run as the built
//! binary against a real broker's management API, checking what each verb
//! does to the broker with real AMQP clients (lapin): a user added and given
//! permissions can connect, a policy trims a live queue, a closed connection
//! sees connection.close 320.
//!
//! `tests/ctl.rs` checks the output byte for byte against recordings of
//! RabbitMQ; this file checks the effects. It runs against the in-process
//! Warren, or against the reference RabbitMQ with
//! `WARREN_TEST_URI=amqp://guest:guest@127.0.0.1:5673/%2f
//! WARREN_TEST_MGMT_URL=http://127.0.0.1:15673 cargo nextest run --test ctl_live`.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::*;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use serde_json::Value;

const WARREN: &str = env!("CARGO_BIN_EXE_warren");

/// What one run of the binary printed and returned.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    #[track_caller]
    fn ok(self) -> Out {
        assert_eq!(self.code, 0, "exit code; stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    /// stdout's lines, each split at tabs (rabbitmqctl's table output).
    fn rows(&self) -> Vec<Vec<String>> {
        self.stdout.lines().map(|l| l.split('\t').map(str::to_owned).collect()).collect()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: not JSON:\n{}", self.stdout))
    }
}

/// A broker with its management API, and a directory of symlinks to the
/// binary named as RabbitMQ's tools.
struct Live {
    broker: TestBroker,
    url: String,
    tools: PathBuf,
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.tools);
    }
}

async fn live() -> Live {
    let broker = broker_with(|c| c.management_port = Some(0)).await;
    let url = match broker.server() {
        Some(s) => format!("http://{}", s.management_addr().expect("management is on")),
        None => std::env::var("WARREN_TEST_MGMT_URL").expect("WARREN_TEST_MGMT_URL with WARREN_TEST_URI"),
    };
    let tools = std::env::temp_dir().join(unique("ctl-live-bin"));
    std::fs::create_dir_all(&tools).unwrap();
    for name in ["rabbitmqctl", "rabbitmq-diagnostics", "rabbitmq-plugins", "rabbitmqadmin"] {
        std::os::unix::fs::symlink(WARREN, tools.join(name)).unwrap();
    }
    Live { broker, url, tools }
}

/// Runs `program args` with `url` in `WARREN_MANAGEMENT_URL`, off the
/// runtime's worker threads (the broker under test runs on them).
async fn run(program: PathBuf, args: Vec<String>, url: String, stdin: Option<String>) -> Out {
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new(&program)
            .args(&args)
            .env("WARREN_MANAGEMENT_URL", url)
            .env_remove("RABBITMQ_DEFAULT_USER")
            .env_remove("RABBITMQ_DEFAULT_PASS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        let out = child.wait_with_output().unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    })
    .await
    .unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

impl Live {
    /// `warren ctl --url URL ARGS` (rabbitmqctl), the URL on the command line.
    async fn ctl(&self, args: &[&str]) -> Out {
        let mut full = strings(&["ctl", "--url", &self.url]);
        full.extend(strings(args));
        run(PathBuf::from(WARREN), full, "http://127.0.0.1:9".into(), None).await
    }

    /// The binary through the symlink named `tool`, the URL in the environment.
    async fn tool(&self, tool: &str, args: &[&str]) -> Out {
        run(self.tools.join(tool), strings(args), self.url.clone(), None).await
    }

    async fn tool_stdin(&self, tool: &str, args: &[&str], stdin: &str) -> Out {
        run(self.tools.join(tool), strings(args), self.url.clone(), Some(stdin.to_owned())).await
    }

    /// An AMQP connection as `user` to `vhost`, or its error.
    async fn connect_as(&self, user: &str, pass: &str, vhost: &str) -> lapin::Result<Connection> {
        within(Connection::connect(&self.broker.uri_with(user, pass, vhost), ConnectionProperties::default())).await
    }

    async fn can_connect(&self, user: &str, pass: &str, vhost: &str) -> bool {
        match self.connect_as(user, pass, vhost).await {
            Ok(c) => {
                let _ = c.close(200, "bye".into()).await;
                true
            }
            Err(_) => false,
        }
    }
}

/// The row of a `-q` listing whose first column is `name`.
fn row(out: &Out, name: &str) -> Option<Vec<String>> {
    out.rows().into_iter().find(|r| r[0] == name)
}

/// Polls a `-q` listing until the row named `name` is `want` (RabbitMQ's
/// statistics lag by its collection interval; Warren's do not).
async fn settled_row(live: &Live, args: &[&str], name: &str, want: &[&str]) -> Out {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let out = live.ctl(args).await.ok();
        let got = row(&out, name);
        if got.as_deref().map(|r| r == want).unwrap_or(false) || std::time::Instant::now() > deadline {
            assert_eq!(got, Some(strings(want)), "row {name} of {args:?}:\n{}", out.stdout);
            return out;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_await_startup() {
    let live = live().await;
    let out = live.ctl(&["status"]).await.ok();
    assert!(out.stdout.starts_with("Status of node "), "{}", out.stdout);
    assert!(out.stdout.contains("\nRuntime\n"), "{}", out.stdout);
    assert!(out.stdout.contains("\nAlarms\n\n(none)\n"), "{}", out.stdout);
    let json = live.ctl(&["status", "--formatter", "json"]).await.ok().json();
    assert!(json["overview"]["node"].is_string(), "{json}");
    let out = live.tool("rabbitmqctl", &["await_startup"]).await.ok();
    assert_eq!(out.stderr, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_queues_prints_the_live_counts() {
    let live = live().await;
    let (full, busy) = (unique("full"), unique("busy"));
    let (_c, ch) = connect_confirm_channel(&live.broker).await;
    declare_queue(&ch, &full).await;
    declare_queue(&ch, &busy).await;
    for body in [b"1", b"2", b"3"] {
        publish_confirmed(&ch, "", &full, body).await;
    }
    // Held: lapin cancels a consumer it drops.
    let _consumer = within(ch.basic_consume(
        busy.as_str().into(),
        "c1".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();

    let args = ["-q", "list_queues", "name", "messages", "consumers"];
    let out = settled_row(&live, &args, &full, &[&full, "3", "0"]).await;
    assert_eq!(out.rows()[0], ["name", "messages", "consumers"]);
    assert_eq!(row(&out, &busy).unwrap(), [&busy, "0", "1"]);
    let banner = live.ctl(&["list_queues", "name"]).await.ok();
    assert!(banner.stdout.contains("Listing queues for vhost / ...\nname\n"), "{}", banner.stdout);
    let silent = live.tool("rabbitmqctl", &["-s", "list_queues", "name", "messages"]).await.ok();
    assert!(silent.stdout.lines().any(|l| l == format!("{full}\t3")), "{}", silent.stdout);
    assert!(!silent.stdout.contains("name\tmessages"), "{}", silent.stdout);

    let json = live.ctl(&["list_queues", "name", "messages", "consumers", "--formatter", "json"]).await.ok().json();
    let items = json.as_array().expect("an array");
    let q = items.iter().find(|q| q["name"] == full.as_str()).expect("the queue");
    assert_eq!((q["messages"].as_u64(), q["consumers"].as_u64()), (Some(3), Some(0)), "{q}");
    let q = items.iter().find(|q| q["name"] == busy.as_str()).expect("the queue");
    assert_eq!(q["consumers"].as_u64(), Some(1), "{q}");
    cleanup_queue(&live.broker, &full).await;
    cleanup_queue(&live.broker, &busy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_exchanges_and_bindings() {
    let live = live().await;
    let (x, q) = (unique("x"), unique("q"));
    let (_c, ch) = connect_channel(&live.broker).await;
    within(ch.exchange_declare(
        x.as_str().into(),
        lapin::ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    declare_queue(&ch, &q).await;
    within(ch.queue_bind(
        q.as_str().into(),
        x.as_str().into(),
        "k".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();

    let out = live.ctl(&["-q", "list_exchanges", "name", "type", "durable"]).await.ok();
    assert_eq!(out.rows()[0], ["name", "type", "durable"]);
    assert_eq!(row(&out, &x).unwrap(), [&x, "fanout", "false"]);
    assert_eq!(row(&out, "amq.topic").unwrap(), ["amq.topic", "topic", "true"]);

    let out = live.ctl(&["-q", "list_bindings"]).await.ok();
    assert_eq!(
        out.rows()[0],
        ["source_name", "source_kind", "destination_name", "destination_kind", "routing_key", "arguments"]
    );
    assert!(out.rows().contains(&strings(&[&x, "exchange", &q, "queue", "k", "[]"])), "{}", out.stdout);
    // The default exchange's implicit binding, as rabbitmqctl lists it.
    assert!(out.rows().contains(&strings(&["", "exchange", &q, "queue", &q, "[]"])), "{}", out.stdout);
    cleanup_queue(&live.broker, &q).await;
    cleanup_exchange(&live.broker, &x).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_permissions_change_who_may_connect() {
    let live = live().await;
    let user = unique("user");
    let out = live.ctl(&["add_user", &user, "s3cret"]).await.ok();
    assert!(out.stdout.starts_with(&format!("Adding user \"{user}\" ...\n")), "{}", out.stdout);
    let out = live.ctl(&["add_user", &user, "again"]).await;
    assert_ne!(out.code, 0, "adding an existing user fails");
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    // No permissions yet: the vhost refuses the connection.
    assert!(!live.can_connect(&user, "s3cret", "/").await, "connected without permissions");

    live.ctl(&["set_permissions", "-p", "/", &user, ".*", ".*", ".*"]).await.ok();
    assert!(live.can_connect(&user, "s3cret", "/").await, "the new user connects");
    let out = live.ctl(&["-q", "list_permissions", "-p", "/"]).await.ok();
    assert_eq!(out.rows()[0], ["user", "configure", "write", "read"]);
    assert_eq!(row(&out, &user).unwrap(), [&user, ".*", ".*", ".*"]);

    let out = live.ctl(&["-q", "list_users"]).await.ok();
    assert_eq!(out.rows()[0], ["user", "tags"]);
    assert_eq!(row(&out, &user).unwrap(), [&user, "[]"]);
    live.ctl(&["set_user_tags", &user, "management", "monitoring"]).await.ok();
    let out = live.ctl(&["-q", "list_users"]).await.ok();
    assert_eq!(row(&out, &user).unwrap(), [&user, "[management, monitoring]"]);
    let json = live.ctl(&["list_users", "--formatter", "json"]).await.ok().json();
    let u = json.as_array().unwrap().iter().find(|u| u["user"] == user.as_str()).cloned().expect("listed");
    assert_eq!(u["tags"], serde_json::json!(["management", "monitoring"]), "{u}");

    live.ctl(&["change_password", &user, "n3w"]).await.ok();
    assert!(!live.can_connect(&user, "s3cret", "/").await, "the old password still works");
    assert!(live.can_connect(&user, "n3w", "/").await, "the new password does not work");

    live.ctl(&["clear_permissions", "-p", "/", &user]).await.ok();
    assert!(!live.can_connect(&user, "n3w", "/").await, "connected after clear_permissions");
    let out = live.ctl(&["-q", "list_permissions"]).await.ok();
    assert_eq!(row(&out, &user), None);

    live.ctl(&["delete_user", &user]).await.ok();
    assert_eq!(row(&live.ctl(&["-q", "list_users"]).await.ok(), &user), None);
    let out = live.ctl(&["delete_user", &user]).await;
    assert_eq!(out.code, 67, "{out:?}");
    assert!(out.stderr.contains(&format!("User \"{user}\" does not exist")), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vhosts_come_and_go() {
    let live = live().await;
    let vhost = unique("vh");
    let out = live.ctl(&["add_vhost", &vhost]).await.ok();
    assert_eq!(out.stdout, format!("Adding vhost \"{vhost}\" ...\n"));
    let out = live.ctl(&["-q", "list_vhosts"]).await.ok();
    assert_eq!(out.rows()[0], ["name"]);
    assert!(row(&out, &vhost).is_some() && row(&out, "/").is_some(), "{}", out.stdout);
    // The creator (guest) may use a new vhost, as in RabbitMQ.
    let out = live.ctl(&["-q", "list_permissions", "-p", &vhost]).await.ok();
    assert_eq!(row(&out, "guest").unwrap(), ["guest", ".*", ".*", ".*"]);
    assert!(live.can_connect("guest", "guest", &vhost).await, "guest connects to the new vhost");

    live.ctl(&["delete_vhost", &vhost]).await.ok();
    assert_eq!(row(&live.ctl(&["-q", "list_vhosts"]).await.ok(), &vhost), None);
    assert!(!live.can_connect("guest", "guest", &vhost).await, "connected to a deleted vhost");
    let out = live.ctl(&["delete_vhost", &vhost]).await;
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains(&format!("Virtual host '{vhost}' does not exist")), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_set_by_ctl_trims_a_live_queue() {
    let live = live().await;
    let (q, policy) = (unique("pq"), unique("pol"));
    let (_c, ch) = connect_confirm_channel(&live.broker).await;
    declare_queue(&ch, &q).await;
    for i in 0..5u8 {
        publish_confirmed(&ch, "", &q, &[b'0' + i]).await;
    }
    let pattern = format!("^{q}$");
    let out = live
        .ctl(&["set_policy", "--apply-to", "queues", "--priority", "3", &policy, &pattern, r#"{"max-length":2}"#])
        .await
        .ok();
    assert!(
        out.stdout.starts_with(&format!("Setting policy \"{policy}\" for pattern \"{pattern}\"")),
        "{}",
        out.stdout
    );
    eventually("the policy trims the queue", || async { message_count(&ch, &q).await == 2 }).await;
    assert_eq!(drain(&ch, &q).await, ["3", "4"], "max-length drops from the head");

    let out = live.ctl(&["-q", "list_policies"]).await.ok();
    assert_eq!(out.rows()[0], ["vhost", "name", "pattern", "apply-to", "definition", "priority"]);
    let r = out.rows().into_iter().find(|r| r.get(1) == Some(&policy)).expect("the policy is listed");
    assert_eq!(r, ["/", &policy, &pattern, "queues", r#"{"max-length":2}"#, "3"]);

    live.ctl(&["clear_policy", &policy]).await.ok();
    let out = live.ctl(&["-q", "list_policies"]).await.ok();
    assert!(!out.stdout.contains(&policy), "{}", out.stdout);
    for i in 0..4u8 {
        publish_confirmed(&ch, "", &q, &[b'a' + i]).await;
    }
    assert_eq!(message_count(&ch, &q).await, 4, "no limit after clear_policy");
    let out = live.ctl(&["clear_policy", &policy]).await;
    assert_ne!(out.code, 0, "clearing a missing policy fails");
    cleanup_queue(&live.broker, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_and_delete_queue() {
    let live = live().await;
    let q = unique("pd");
    let (c, ch) = connect_confirm_channel(&live.broker).await;
    declare_queue(&ch, &q).await;
    for body in [b"1", b"2", b"3"] {
        publish_confirmed(&ch, "", &q, body).await;
    }
    let out = live.tool("rabbitmqctl", &["purge_queue", &q]).await.ok();
    assert_eq!(out.stdout, format!("Purging queue '{q}' in vhost '/' ...\n"));
    assert_eq!(message_count(&ch, &q).await, 0);

    publish_confirmed(&ch, "", &q, b"x").await;
    // delete_queue reports the count the API last saw.
    settled_row(&live, &["-q", "list_queues", "name", "messages"], &q, &[&q, "1"]).await;
    let out = live.ctl(&["delete_queue", "--if-empty", &q]).await;
    assert_ne!(out.code, 0, "--if-empty refuses a queue with a message: {out:?}");
    assert!(queue_exists(&c, &q).await);
    let out = live.ctl(&["delete_queue", &q]).await.ok();
    assert!(out.stdout.starts_with(&format!("Deleting queue '{q}' on vhost '/' ...")), "{}", out.stdout);
    assert!(out.stdout.contains("Queue was successfully deleted with 1 ready messages"), "{}", out.stdout);
    assert!(!queue_exists(&c, &q).await, "the queue is gone");
    assert_ne!(live.ctl(&["purge_queue", &q]).await.code, 0, "purging a missing queue fails");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_round_trip() {
    let live = live().await;
    let (q, user) = (unique("defq"), unique("defuser"));
    let (c, ch) = connect_channel(&live.broker).await;
    within(ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions { durable: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    live.ctl(&["add_user", &user, "pw"]).await.ok();

    let file = live.tools.join("defs.json");
    let out = live.ctl(&["export_definitions", file.to_str().unwrap()]).await.ok();
    assert!(out.stdout.starts_with("Exporting definitions in JSON to a file at"), "{}", out.stdout);
    let defs: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(defs["queues"].as_array().unwrap().iter().any(|x| x["name"] == q.as_str()), "{defs}");
    assert!(defs["users"].as_array().unwrap().iter().any(|x| x["name"] == user.as_str()), "{defs}");
    let stdout = live.ctl(&["export_definitions", "-"]).await.ok().json();
    assert!(stdout["queues"].as_array().unwrap().iter().any(|x| x["name"] == q.as_str()), "{stdout}");

    within(ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default())).await.unwrap();
    live.ctl(&["delete_user", &user]).await.ok();
    assert!(!queue_exists(&c, &q).await);

    let out = live.ctl(&["import_definitions", file.to_str().unwrap()]).await.ok();
    assert!(out.stdout.contains("Importing definitions in JSON from a file at"), "{}", out.stdout);
    assert!(queue_exists(&c, &q).await, "import brought the queue back");
    assert!(row(&live.ctl(&["-q", "list_users"]).await.ok(), &user).is_some(), "import brought the user back");

    // From stdin, through the symlink.
    within(ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default())).await.unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    live.tool_stdin("rabbitmqctl", &["import_definitions", "-"], &text).await.ok();
    assert!(queue_exists(&c, &q).await, "import from stdin brought the queue back");
    cleanup_queue(&live.broker, &q).await;
    live.ctl(&["delete_user", &user]).await.ok();
}

/// The name of the one connection `user` has open, as `list_connections`
/// prints it (RabbitMQ lists a connection once its first statistics are in).
async fn connection_of(live: &Live, user: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let out = live.ctl(&["-q", "list_connections", "name", "user"]).await.ok();
        let rows: Vec<_> = out.rows().into_iter().filter(|r| r.get(1).map(String::as_str) == Some(user)).collect();
        if rows.len() == 1 {
            assert_eq!(out.rows()[0], ["name", "user"]);
            return rows[0][0].clone();
        }
        assert!(std::time::Instant::now() < deadline, "one connection of {user}:\n{}", out.stdout);
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_channels_and_consumers_are_listed() {
    let live = live().await;
    let (user, q) = (unique("lister"), unique("cq"));
    live.ctl(&["add_user", &user, "pw"]).await.ok();
    live.ctl(&["set_permissions", &user, ".*", ".*", ".*"]).await.ok();
    let c = live.connect_as(&user, "pw", "/").await.expect("connect");
    let ch = within(c.create_channel()).await.unwrap();
    declare_queue(&ch, &q).await;
    within(ch.basic_qos(5, BasicQosOptions::default())).await.unwrap();
    let _consumer = within(ch.basic_consume(
        q.as_str().into(),
        "ctl-tag".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();

    let name = connection_of(&live, &user).await;
    let args = ["-q", "list_connections", "name", "user", "vhost", "channels", "state"];
    settled_row(&live, &args, &name, &[&name, &user, "/", "1", "running"]).await;

    let args = ["-q", "list_channels", "connection", "user", "number", "consumer_count"];
    let out = settled_row(&live, &args, &name, &[&name, &user, "1", "1"]).await;
    assert_eq!(out.rows()[0], ["connection", "user", "number", "consumer_count"]);

    // rabbitmqctl's default columns; the peer port is the one in the name.
    let out = live.ctl(&["-q", "list_connections"]).await.ok();
    assert_eq!(out.rows()[0], ["user", "peer_host", "peer_port", "state"]);
    let port = name.split(" -> ").next().and_then(|peer| peer.rsplit(':').next()).unwrap();
    assert!(out.rows().contains(&strings(&[&user, "127.0.0.1", port, "running"])), "{}", out.stdout);
    let out = live.ctl(&["-q", "list_channels"]).await.ok();
    assert_eq!(out.rows()[0], ["pid", "user", "consumer_count", "messages_unacknowledged"]);
    let r = out.rows().into_iter().find(|r| r[1] == user).expect("the channel is listed");
    assert_eq!(r[2..], ["1", "0"], "{}", out.stdout);

    let out = live.ctl(&["-q", "list_consumers"]).await.ok();
    assert_eq!(
        out.rows()[0],
        ["queue_name", "channel_pid", "consumer_tag", "ack_required", "prefetch_count", "active", "arguments"]
    );
    let r = row(&out, &q).expect("the consumer is listed");
    assert_eq!(r[2..], ["ctl-tag", "true", "5", "true", "[]"], "{r:?}");

    // rabbitmqadmin's view of the same.
    let out = live.tool("rabbitmqadmin", &["list", "connections", "name", "user", "channels"]).await.ok();
    assert!(out.stdout.contains(&format!("| {name} | {user} | 1 ")), "{}", out.stdout);
    let out = live.tool("rabbitmqadmin", &["list", "channels", "name", "user"]).await.ok();
    assert!(out.stdout.contains(&format!("| {name} (1) | {user} |")), "{}", out.stdout);
    let out = live.tool("rabbitmqadmin", &["list", "consumers", "consumer_tag", "prefetch_count"]).await.ok();
    assert!(out.stdout.lines().any(|l| l.starts_with("| ctl-tag ") && l.contains("| 5 ")), "{}", out.stdout);
    let json = live.ctl(&["list_consumers", "--formatter", "json"]).await.ok().json();
    assert!(json.as_array().unwrap().iter().any(|x| x["consumer_tag"] == "ctl-tag"), "{json}");
    let _ = c.close(200, "bye".into()).await;
    cleanup_queue(&live.broker, &q).await;
    live.ctl(&["delete_user", &user]).await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_connection_sends_connection_forced() {
    let live = live().await;
    let user = unique("closer");
    live.ctl(&["add_user", &user, "pw"]).await.ok();
    live.ctl(&["set_permissions", &user, ".*", ".*", ".*"]).await.ok();
    let c = live.connect_as(&user, "pw", "/").await.expect("connect");
    let mut ev = events(&c);
    let name = connection_of(&live, &user).await;

    let out = live.ctl(&["close_connection", &name, "go away, adiós"]).await.ok();
    assert!(out.stdout.starts_with("Closing connection"), "{}", out.stdout);
    assert_amqp_error(next_error(&mut ev).await, 320, "CONNECTION_FORCED - go away, adiós");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let out = live.ctl(&["-q", "list_connections", "name", "user"]).await.ok();
        if row(&out, &name).is_none() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still listed:\n{}", out.stdout);
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let out = live.ctl(&["close_connection", &name, "again"]).await;
    assert_ne!(out.code, 0, "closing a closed connection fails: {out:?}");

    // A reason longer than a short string holds: the broker stays up and
    // the client gets a close it can decode.
    let c = live.connect_as(&user, "pw", "/").await.expect("connect");
    let mut ev = events(&c);
    let name = connection_of(&live, &user).await;
    let long = "ñ".repeat(300);
    live.ctl(&["close_connection", &name, &long]).await.ok();
    let (code, text) = amqp_error(&next_error(&mut ev).await.unwrap_err());
    assert_eq!(code, 320);
    assert!(text.starts_with("CONNECTION_FORCED - ññ") && text.len() <= 255, "{text}");
    live.ctl(&["-q", "ping"]).await.ok();
    live.ctl(&["delete_user", &user]).await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_answer_for_a_running_broker() {
    let live = live().await;
    let out = live.tool("rabbitmq-diagnostics", &["-q", "ping"]).await.ok();
    assert_eq!(out.stdout, "Ping succeeded\n");
    let out = live.tool("rabbitmq-diagnostics", &["check_running"]).await.ok();
    assert!(out.stdout.contains("is fully booted and running"), "{}", out.stdout);
    let out = live.tool("rabbitmq-diagnostics", &["check_port_connectivity"]).await.ok();
    assert!(out.stdout.contains("Successfully connected to ports"), "{}", out.stdout);
    let amqp_port = live.broker.addr().port().to_string();
    assert!(out.stdout.contains(&amqp_port), "the AMQP port {amqp_port} is checked:\n{}", out.stdout);
    // And as `warren ctl diagnostics`, and rabbitmqctl's own ping.
    let mut args = strings(&["ctl", "diagnostics", "--url", &live.url, "-q", "check_running"]);
    let out = run(PathBuf::from(WARREN), std::mem::take(&mut args), String::new(), None).await.ok();
    assert!(out.stdout.contains("is fully booted and running"), "{}", out.stdout);
    live.ctl(&["-q", "ping"]).await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_fail_clearly_against_a_closed_port() {
    // A port that was free a moment ago: nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let bin = std::env::temp_dir().join(unique("ctl-live-down"));
    std::fs::create_dir_all(&bin).unwrap();
    let diag = bin.join("rabbitmq-diagnostics");
    std::os::unix::fs::symlink(WARREN, &diag).unwrap();
    for verb in ["ping", "check_running", "check_port_connectivity"] {
        let out = run(diag.clone(), strings(&["-t", "2", verb]), closed.clone(), None).await;
        assert_ne!(out.code, 0, "{verb} against a closed port: {out:?}");
        assert!(
            out.stderr.contains(closed.trim_start_matches("http://")) || out.stderr.contains(&closed),
            "{verb} names the broker it could not reach:\n{}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    let out = run(PathBuf::from(WARREN), strings(&["ctl", "--url", &closed, "list_queues"]), String::new(), None).await;
    assert_ne!(out.code, 0);
    let _ = std::fs::remove_dir_all(&bin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_are_built_in() {
    let live = live().await;
    let out = live.tool("rabbitmq-plugins", &["list"]).await.ok();
    assert!(out.stdout.contains("rabbitmq_management"), "{}", out.stdout);
    assert!(out.stdout.contains("built into Warren"), "{}", out.stdout);
    let out = live.tool("rabbitmq-plugins", &["enable", "rabbitmq_management"]).await.ok();
    assert!(out.stdout.contains("rabbitmq_management is built into Warren"), "{}", out.stdout);
    let args = strings(&["ctl", "plugins", "enable", "rabbitmq_management"]);
    run(PathBuf::from(WARREN), args, live.url.clone(), None).await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmqadmin_declares_publishes_and_gets() {
    let live = live().await;
    let q = unique("adm");
    let out = live.tool("rabbitmqadmin", &["declare", "queue", &format!("name={q}"), "durable=false"]).await.ok();
    assert_eq!(out.stdout, "queue declared\n");
    let (c, ch) = connect_channel(&live.broker).await;
    assert!(queue_exists(&c, &q).await, "the queue exists over AMQP");

    let out = live.tool("rabbitmqadmin", &["publish", "routing_key", &q]).await;
    assert_ne!(out.code, 0, "not name=value: {out:?}");
    let out = live.tool("rabbitmqadmin", &["publish", &format!("routing_key={q}"), "payload=hi"]).await.ok();
    assert_eq!(out.stdout, "Message published\n");
    let out = live.tool_stdin("rabbitmqadmin", &["publish", &format!("routing_key={q}")], "from stdin").await.ok();
    assert_eq!(out.stdout, "Message published\n");
    assert_eq!(message_count(&ch, &q).await, 2);

    settled_row(&live, &["-q", "list_queues", "name", "messages"], &q, &[&q, "2"]).await;
    let out = live.tool("rabbitmqadmin", &["list", "queues", "name", "messages"]).await.ok();
    let line = out.stdout.lines().find(|l| l.contains(&q)).unwrap_or_else(|| panic!("{}", out.stdout));
    let cells: Vec<&str> = line.split('|').map(str::trim).collect();
    assert_eq!(cells, ["", &q, "2", ""], "{}", out.stdout);

    let out = live.tool("rabbitmqadmin", &["get", &format!("queue={q}"), "ackmode=ack_requeue_false"]).await.ok();
    let line = out.stdout.lines().find(|l| l.contains(&format!("| {q} "))).unwrap_or_else(|| panic!("{}", out.stdout));
    let cells: Vec<&str> = line.split('|').map(str::trim).collect();
    assert_eq!(cells[1..5], [q.as_str(), "", "1", "hi"], "{}", out.stdout);
    assert_eq!(message_count(&ch, &q).await, 1, "ack_requeue_false took the message");
    assert_eq!(get_body(&ch, &q).await.as_deref(), Some(&b"from stdin"[..]));

    let mut args = strings(&["ctl", "admin", "--url", &live.url, "delete", "queue", &format!("name={q}")]);
    let out = run(PathBuf::from(WARREN), std::mem::take(&mut args), String::new(), None).await.ok();
    assert_eq!(out.stdout, "queue deleted\n");
    assert!(!queue_exists(&c, &q).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn await_startup_waits_for_the_broker_to_come_up() {
    if external() {
        return; // starts its own broker on a chosen port
    }
    // A port that was free a moment ago, for a broker started later.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let out = run(PathBuf::from(WARREN), strings(&["ctl", "await_startup", "-t", "1"]), url.clone(), None).await;
    assert_eq!(out.code, 75, "nothing there within the timeout: {out:?}");
    assert!(out.stderr.contains("did not start within 1.0 seconds"), "{}", out.stderr);

    let waiting = tokio::spawn(run(PathBuf::from(WARREN), strings(&["ctl", "await_startup", "-t", "30"]), url, None));
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert!(!waiting.is_finished(), "await_startup returned before the broker started");
    let broker = broker_with(|c| c.management_port = Some(port)).await;
    let out = within_d(std::time::Duration::from_secs(30), waiting).await.unwrap().ok();
    assert_eq!(out.stderr, "");
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_user_or_vhost_closes_its_connections() {
    let live = live().await;
    let (user, vhost) = (unique("gone"), unique("gonevh"));
    live.ctl(&["add_user", &user, "pw"]).await.ok();
    live.ctl(&["set_permissions", &user, ".*", ".*", ".*"]).await.ok();
    let c = live.connect_as(&user, "pw", "/").await.expect("connect");
    let mut ev = events(&c);
    live.ctl(&["delete_user", &user]).await.ok();
    assert_amqp_error(next_error(&mut ev).await, 320, &format!("CONNECTION_FORCED - user '{user}' is deleted"));

    live.ctl(&["add_vhost", &vhost]).await.ok();
    let c = live.connect_as("guest", "guest", &vhost).await.expect("connect");
    let mut ev = events(&c);
    live.ctl(&["delete_vhost", &vhost]).await.ok();
    let closed = next_error(&mut ev).await;
    if live.broker.is_warren() {
        assert_amqp_error(closed, 320, &format!("CONNECTION_FORCED - vhost '{vhost}' is deleted"));
    } else {
        // RabbitMQ 3.10 stops the vhost's processes: the socket may be reset
        // before the client reads the close.
        assert!(closed.is_err());
    }
}

/// The limits verbs, with rabbitmqctl 3.10's banners and output (checked
/// against the real rabbitmqctl), enforced on the wire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vhost_and_user_limits_set_by_ctl_are_enforced() {
    let live = live().await;
    let vhost = unique("vh-limits");
    live.ctl(&["add_vhost", &vhost]).await.ok();
    let out = live.ctl(&["set_vhost_limits", "-p", &vhost, r#"{"max-connections": 0, "max-queues": 3}"#]).await.ok();
    assert_eq!(
        out.stdout,
        format!(
            "Setting vhost limits to \"{{\"max-connections\": 0, \"max-queues\": 3}}\" for vhost \"{vhost}\" ...\n"
        )
    );
    let out = live.ctl(&["list_vhost_limits", "-p", &vhost]).await.ok();
    let printed: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(printed[0], format!("Listing limits for vhost \"{vhost}\" ..."));
    let value: Value = serde_json::from_str(printed[1]).unwrap();
    assert_eq!(value, serde_json::json!({"max-connections": 0, "max-queues": 3}));
    assert!(!live.can_connect("guest", "guest", &vhost).await, "max-connections 0 lets no one in");
    // set_vhost_limits replaces the whole set, as in rabbitmqctl.
    live.ctl(&["set_vhost_limits", "-p", &vhost, r#"{"max-queues": 3}"#]).await.ok();
    assert!(live.can_connect("guest", "guest", &vhost).await, "max-connections is gone");
    let out = live.ctl(&["set_vhost_limits", "-p", &vhost, r#"{"max-bogus": 1}"#]).await;
    assert_eq!(out.code, 69);
    assert!(out.stderr.contains("Unrecognised terms [{<<\"max-bogus\">>,1}] in limits"), "{}", out.stderr);
    let out = live.ctl(&["clear_vhost_limits", "-p", &vhost]).await.ok();
    assert_eq!(out.stdout, format!("Clearing vhost \"{vhost}\" limits ...\n"));
    let out = live.ctl(&["-q", "list_vhost_limits", "-p", &vhost]).await.ok();
    assert_eq!(out.stdout.trim(), "");

    let user = unique("limited");
    live.ctl(&["add_user", &user, "pw"]).await.ok();
    live.ctl(&["set_permissions", "-p", &vhost, &user, ".*", ".*", ".*"]).await.ok();
    let out = live.ctl(&["set_user_limits", &user, r#"{"max-connections": 0}"#]).await.ok();
    assert_eq!(out.stdout, format!("Setting user limits to \"{{\"max-connections\": 0}}\" for user \"{user}\" ...\n"));
    let out = live.ctl(&["list_user_limits", "--user", &user]).await.ok();
    assert_eq!(out.stdout, format!("Listing limits for user \"{user}\" ...\n{{\"max-connections\":0}}\n"));
    assert!(!live.can_connect(&user, "pw", &vhost).await, "user max-connections 0 lets the user in");
    let out = live.ctl(&["clear_user_limits", &user, "max-connections"]).await.ok();
    assert_eq!(out.stdout, format!("Clearing \"max-connections\" limit for user \"{user}\" ...\n"));
    assert!(live.can_connect(&user, "pw", &vhost).await, "the user limit is cleared");
    live.ctl(&["delete_user", &user]).await.ok();
    live.ctl(&["delete_vhost", &vhost]).await.ok();
}
