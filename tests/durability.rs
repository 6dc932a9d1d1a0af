//! Durable definitions and persistent messages survive a restart, in process
//! and as a process; transient ones do not.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

mod process;

fn data_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("warren-durability-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn config(dir: &Path) -> warren::Config {
    warren::Config { data_dir: Some(dir.to_owned()), ..warren::Config::ephemeral() }
}

async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f).await.expect("timed out")
}

async fn channel(uri: &str) -> (Connection, Channel) {
    let c = within(Connection::connect(uri, ConnectionProperties::default())).await.unwrap();
    let ch = within(c.create_channel()).await.unwrap();
    (c, ch)
}

fn persistent() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2)
}

async fn publish(ch: &Channel, exchange: &str, key: &str, body: &[u8], props: BasicProperties) {
    let confirm = within(ch.basic_publish(exchange.into(), key.into(), BasicPublishOptions::default(), body, props))
        .await
        .unwrap();
    assert!(within(confirm).await.unwrap().is_ack());
}

async fn drain(ch: &Channel, queue: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    while let Some(m) = within(ch.basic_get(queue.into(), BasicGetOptions { no_ack: true })).await.unwrap() {
        out.push((String::from_utf8(m.delivery.data.clone()).unwrap(), m.delivery.redelivered));
    }
    out
}

#[tokio::test]
async fn definitions_and_persistent_messages_survive_an_in_process_restart() {
    let dir = data_dir("inproc");
    let server = warren::Server::start(config(&dir)).await.unwrap();
    let (c, ch) = channel(&server.amqp_uri()).await;
    within(ch.confirm_select(ConfirmSelectOptions::default())).await.unwrap();
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    within(ch.exchange_declare("orders".into(), lapin::ExchangeKind::Topic, durable, FieldTable::default()))
        .await
        .unwrap();
    let dq = QueueDeclareOptions { durable: true, ..Default::default() };
    within(ch.queue_declare("orders.eu".into(), dq, FieldTable::default())).await.unwrap();
    within(ch.queue_declare("scratch".into(), QueueDeclareOptions::default(), FieldTable::default())).await.unwrap();
    within(ch.queue_bind(
        "orders.eu".into(),
        "orders".into(),
        "eu.#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    for i in 0..10 {
        publish(&ch, "orders", "eu.fr", format!("p{i}").as_bytes(), persistent()).await;
    }
    publish(&ch, "orders", "eu.de", b"transient", BasicProperties::default()).await;
    publish(&ch, "", "scratch", b"gone", persistent()).await;
    // One delivered and acked, one delivered and left unacked.
    let first = within(ch.basic_get("orders.eu".into(), BasicGetOptions::default())).await.unwrap().unwrap();
    within(first.delivery.acker.ack(BasicAckOptions::default())).await.unwrap();
    let _second = within(ch.basic_get("orders.eu".into(), BasicGetOptions::default())).await.unwrap().unwrap();
    drop(c);
    server.shutdown().await;

    let server = warren::Server::start(config(&dir)).await.unwrap();
    let (_c, ch) = channel(&server.amqp_uri()).await;
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let err = within(ch.queue_declare("scratch".into(), passive, FieldTable::default())).await.unwrap_err();
    assert!(err.to_string().contains("NOT_FOUND"), "{err}");
    let (_c, ch) = channel(&server.amqp_uri()).await;
    // The binding came back: a new publish routes.
    within(ch.confirm_select(ConfirmSelectOptions::default())).await.unwrap();
    publish(&ch, "orders", "eu.it", b"after", persistent()).await;
    let got = drain(&ch, "orders.eu").await;
    let mut expected: Vec<(String, bool)> = vec![("p1".into(), true)];
    expected.extend((2..10).map(|i| (format!("p{i}"), false)));
    expected.push(("after".into(), false));
    assert_eq!(got, expected);
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_rabbitmq_definitions_file_loads_at_boot() {
    let dir = data_dir("defs");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("export.json");
    std::fs::write(
        &file,
        r#"{"rabbit_version":"3.10.8","users":[{"name":"guest","password_hash":"dRu1UHEG716dkh29oPp8ecdUKhQZvzAygTrzziYt3J6NAzXt","hashing_algorithm":"rabbit_password_hashing_sha256","tags":"administrator","limits":{}}],
           "vhosts":[{"name":"/"},{"name":"staging"}],
           "permissions":[{"user":"guest","vhost":"/","configure":".*","write":".*","read":".*"}],
           "topic_permissions":[],"parameters":[],"global_parameters":[],"policies":[],
           "queues":[{"name":"jobs","vhost":"/","durable":true,"auto_delete":false,"arguments":{"x-queue-type":"classic"}}],
           "exchanges":[{"name":"work","vhost":"/","type":"direct","durable":true,"auto_delete":false,"internal":false,"arguments":{}}],
           "bindings":[{"source":"work","vhost":"/","destination":"jobs","destination_type":"queue","routing_key":"run","arguments":{}}]}"#,
    )
    .unwrap();
    let cfg = warren::Config { definitions: Some(file), ..warren::Config::ephemeral() };
    let server = warren::Server::start(cfg).await.unwrap();
    // The hash above is RabbitMQ's for the password "guest".
    let (_c, ch) = channel(&server.amqp_uri()).await;
    within(ch.confirm_select(ConfirmSelectOptions::default())).await.unwrap();
    publish(&ch, "work", "run", b"job-1", BasicProperties::default()).await;
    assert_eq!(drain(&ch, "jobs").await, vec![("job-1".to_string(), false)]);
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_binary_restores_after_sigterm_and_refuses_a_locked_directory() {
    let dir = data_dir("binary");
    let bin = env!("CARGO_BIN_EXE_warren");
    let broker = process::Broker::start(&dir);
    let uri = broker.uri.clone();
    {
        let (_c, ch) = channel(&uri).await;
        within(ch.confirm_select(ConfirmSelectOptions::default())).await.unwrap();
        let dq = QueueDeclareOptions { durable: true, ..Default::default() };
        within(ch.queue_declare("kept".into(), dq, FieldTable::default())).await.unwrap();
        publish(&ch, "", "kept", b"one", persistent()).await;
    }
    // A second Warren on the same directory says why and exits non-zero.
    let second = std::process::Command::new(bin)
        .args(["--bind", "127.0.0.1", "--port", "0", "--management-port", "0", "--prometheus-port", "0", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("in use by another running Warren"));

    // SIGTERM: a clean stop, exit 0.
    assert!(broker.terminate(), "warren did not exit 0 on SIGTERM");
    assert!(dir.join("clean_shutdown").exists());

    let broker = process::Broker::start(&dir);
    let (_c, ch) = channel(&broker.uri).await;
    assert_eq!(drain(&ch, "kept").await, vec![("one".to_string(), false)]);
    broker.kill9();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn consumers_get_recovered_messages_in_order() {
    let dir = data_dir("order");
    let server = warren::Server::start(config(&dir)).await.unwrap();
    {
        let (_c, ch) = channel(&server.amqp_uri()).await;
        within(ch.confirm_select(ConfirmSelectOptions::default())).await.unwrap();
        let dq = QueueDeclareOptions { durable: true, ..Default::default() };
        within(ch.queue_declare("ordered".into(), dq, FieldTable::default())).await.unwrap();
        for i in 0..500 {
            publish(&ch, "", "ordered", format!("{i}").as_bytes(), persistent()).await;
        }
    }
    server.shutdown().await;
    let server = warren::Server::start(config(&dir)).await.unwrap();
    let (_c, ch) = channel(&server.amqp_uri()).await;
    let mut consumer = within(ch.basic_consume(
        "ordered".into(),
        "".into(),
        BasicConsumeOptions { no_ack: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    for i in 0..500 {
        let d = within(consumer.next()).await.unwrap().unwrap();
        assert_eq!(String::from_utf8(d.data).unwrap(), i.to_string());
    }
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_queue_over_its_ram_budget_pages_to_disk_and_keeps_order() {
    let dir = data_dir("paging");
    // A 64 KiB budget: most of these 20,000 messages live in page files.
    let cfg = warren::Config { queue_memory_budget: 64 * 1024, ..config(&dir) };
    let server = warren::Server::start(cfg).await.unwrap();
    let (_c, ch) = channel(&server.amqp_uri()).await;
    within(ch.confirm_select(ConfirmSelectOptions::default())).await.unwrap();
    within(ch.queue_declare("big".into(), QueueDeclareOptions::default(), FieldTable::default())).await.unwrap();
    let mut confirms = Vec::new();
    for i in 0..20_000 {
        let body = format!("{i:05}");
        confirms.push(
            within(ch.basic_publish(
                "".into(),
                "big".into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                BasicProperties::default(),
            ))
            .await
            .unwrap(),
        );
    }
    for c in confirms {
        within(c).await.unwrap();
    }
    let paged = std::fs::read_dir(dir.join("paging")).map(|d| d.count()).unwrap_or(0);
    assert!(paged > 0, "nothing was paged to disk");
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let q = within(ch.queue_declare("big".into(), passive, FieldTable::default())).await.unwrap();
    assert_eq!(q.message_count(), 20_000);
    let mut consumer = within(ch.basic_consume(
        "big".into(),
        "".into(),
        BasicConsumeOptions { no_ack: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    for i in 0..20_000 {
        let d = within(consumer.next()).await.unwrap().unwrap();
        assert_eq!(String::from_utf8(d.data).unwrap(), format!("{i:05}"));
    }
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_binary_honours_a_rabbitmq_conf() {
    let dir = data_dir("conf");
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("rabbitmq.conf");
    std::fs::write(&conf, "listeners.tcp.default = 127.0.0.1:0\ndefault_user = alice\ndefault_pass = s3cret\n")
        .unwrap();
    let port_file = dir.join("port");
    // The name without its .conf, as RABBITMQ_CONFIG_FILE is usually given.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["--log-level", "warn", "--in-memory", "--management-port", "0", "--prometheus-port", "0", "--port-file"])
        .arg(&port_file)
        .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
        .spawn()
        .unwrap();
    let mut port = None;
    for _ in 0..400 {
        if let Some(p) = std::fs::read_to_string(&port_file).ok().and_then(|p| p.trim().parse::<u16>().ok()) {
            port = Some(p);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let Some(port) = port else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("warren did not start with the config file");
    };
    let alice_uri = format!("amqp://alice:s3cret@127.0.0.1:{port}/%2f");
    let ok = within(Connection::connect(&alice_uri, ConnectionProperties::default())).await;
    let guest_uri = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    let guest = within(Connection::connect(&guest_uri, ConnectionProperties::default())).await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok.is_ok(), "alice from the config file should log in: {:?}", ok.err());
    assert!(guest.is_err(), "guest is not created when the config names another default user");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A vhost's default_queue_type (RabbitMQ 3.9+ vhost metadata) applies to a
/// plain durable declare, and survives a restart. Checked against RabbitMQ
/// 3.10.8 (`rabbitmqctl add_vhost dqt --default-queue-type quorum`): durable
/// non-exclusive non-auto-delete queues become quorum queues with
/// x-queue-type in their arguments; transient, exclusive and auto-delete ones
/// stay classic, as does an explicit x-queue-type.
#[tokio::test]
async fn a_vhosts_default_queue_type_applies_and_survives_a_restart() {
    let dir = data_dir("dqt");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("export.json");
    std::fs::write(
        &file,
        r#"{"vhosts":[{"name":"/"},{"name":"dqt","metadata":{"default_queue_type":"quorum","description":"","tags":[]}}],
           "users":[{"name":"guest","password_hash":"dRu1UHEG716dkh29oPp8ecdUKhQZvzAygTrzziYt3J6NAzXt","hashing_algorithm":"rabbit_password_hashing_sha256","tags":"administrator"}],
           "permissions":[{"user":"guest","vhost":"/","configure":".*","write":".*","read":".*"},
                          {"user":"guest","vhost":"dqt","configure":".*","write":".*","read":".*"}]}"#,
    )
    .unwrap();
    let uri = |s: &warren::Server| s.amqp_uri().replace("%2f", "dqt");
    let declare = |ch: Channel,
                   name: &'static str,
                   durable: bool,
                   exclusive: bool,
                   auto_delete: bool,
                   args: FieldTable| async move {
        let opts = QueueDeclareOptions { durable, exclusive, auto_delete, ..Default::default() };
        within(ch.queue_declare(name.into(), opts, args)).await.map(|_| ()).map_err(|e| e.to_string())
    };
    let classic = || {
        let mut t = FieldTable::default();
        t.insert("x-queue-type".into(), lapin::types::AMQPValue::LongString("classic".into()));
        t
    };
    let quorum_text = |q: &str| {
        format!("PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '{q}' in vhost 'dqt': received 'classic' but current is 'quorum'")
    };
    let server =
        warren::Server::start(warren::Config { definitions: Some(file.clone()), ..config(&dir) }).await.unwrap();
    let (c, ch) = channel(&uri(&server)).await;
    declare(ch.clone(), "dqt-durable", true, false, false, FieldTable::default()).await.unwrap();
    for (name, durable, exclusive, auto_delete) in [
        ("dqt-transient", false, false, false),
        ("dqt-exclusive", true, true, false),
        ("dqt-autodel", true, false, true),
    ] {
        declare(ch.clone(), name, durable, exclusive, auto_delete, FieldTable::default()).await.unwrap();
        // Classic: redeclaring as classic is equivalent.
        declare(ch.clone(), name, durable, exclusive, auto_delete, classic()).await.unwrap();
    }
    let err = declare(ch.clone(), "dqt-durable", true, false, false, classic()).await.unwrap_err();
    assert!(err.contains(&quorum_text("dqt-durable")), "{err}");
    drop(c);
    server.shutdown().await;

    // After a restart the vhost still has its default type.
    let server = warren::Server::start(config(&dir)).await.unwrap();
    let (_c, ch) = channel(&uri(&server)).await;
    declare(ch.clone(), "dqt-after-restart", true, false, false, FieldTable::default()).await.unwrap();
    let err = declare(ch.clone(), "dqt-after-restart", true, false, false, classic()).await.unwrap_err();
    assert!(err.contains(&quorum_text("dqt-after-restart")), "{err}");
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
