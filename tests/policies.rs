//! Policies and operator policies, set through the broker API (what the
//! management API calls) and observed with a real client: they change live
//! queues and exchanges, combine with queue arguments as RabbitMQ does,
//! survive a restart and travel with the definitions.
//!
//! These need the in-process Warren (its broker API); against an external
//! broker they return at once.
mod common;

use std::path::{Path, PathBuf};

use common::*;
use lapin::{options::*, types::AMQPValue, BasicProperties, Channel, ExchangeKind};
use serde_json::{json, Value};
use warren::store::definitions::PolicyDef;

fn policy(vhost: &str, name: &str, pattern: &str, apply_to: &str, priority: i64, definition: Value) -> PolicyDef {
    PolicyDef {
        vhost: vhost.into(),
        name: name.into(),
        pattern: pattern.into(),
        apply_to: apply_to.into(),
        definition: definition.as_object().expect("a JSON object").clone(),
        priority,
    }
}

/// A pattern matching exactly `name`.
fn exactly(name: &str) -> String {
    format!("^{}$", regex_escape(name))
}

fn regex_escape(s: &str) -> String {
    s.chars().fold(String::new(), |mut out, c| {
        if !c.is_ascii_alphanumeric() {
            out.push('\\');
        }
        out.push(c);
        out
    })
}

async fn publish_n(ch: &Channel, queue: &str, n: usize, prefix: &str) {
    for i in 1..=n {
        publish_confirmed(ch, "", queue, format!("{prefix}{i}").as_bytes()).await;
    }
}

fn broker_api(b: &TestBroker) -> Option<&std::sync::Arc<warren::broker::Broker>> {
    b.server().map(|s| s.broker())
}

#[tokio::test]
async fn a_max_length_policy_trims_a_live_queue_and_its_removal_lifts_the_limit() {
    let b = broker().await;
    let Some(api) = broker_api(&b) else { return };
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("pol-maxlen");
    declare_queue(&ch, &q).await;
    publish_n(&ch, &q, 5, "m").await;
    api.set_policy(policy("/", "limit", &exactly(&q), "queues", 0, json!({"max-length": 2}))).unwrap();
    assert_eq!(message_count(&ch, &q).await, 2, "the policy trims at once");
    let queue = api.vhost("/").unwrap().queue(&q).unwrap();
    assert_eq!(queue.policy_name().as_deref(), Some("limit"));
    assert_eq!(Value::Object(queue.effective_policy_definition()), json!({"max-length": 2}));
    publish_n(&ch, &q, 1, "n").await;
    assert_eq!(drain(&ch, &q).await, ["m5", "n1"], "the head goes first");
    assert!(api.clear_policy("/", "limit"));
    assert!(!api.clear_policy("/", "limit"));
    assert_eq!(queue.policy_name(), None);
    publish_n(&ch, &q, 4, "r").await;
    assert_eq!(message_count(&ch, &q).await, 4, "no limit once the policy is gone");
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn queue_arguments_combine_with_policies_as_in_rabbitmq() {
    let b = broker().await;
    let Some(api) = broker_api(&b) else { return };
    let (_c, ch) = connect_confirm_channel(&b).await;
    let prefix = unique("pol-args");
    let (low_arg, high_arg) = (format!("{prefix}-low"), format!("{prefix}-high"));
    declare_args(&ch, &low_arg, &[("x-max-length", AMQPValue::LongInt(3))]).await;
    declare_args(&ch, &high_arg, &[("x-max-length", AMQPValue::LongInt(10))]).await;
    let pattern = format!("^{}", regex_escape(&prefix));
    api.set_policy(policy("/", &prefix, &pattern, "all", 0, json!({"max-length": 5}))).unwrap();
    publish_n(&ch, &low_arg, 8, "m").await;
    publish_n(&ch, &high_arg, 8, "m").await;
    // For the numeric limits the lower of argument and policy applies.
    assert_eq!(message_count(&ch, &low_arg).await, 3);
    assert_eq!(message_count(&ch, &high_arg).await, 5);

    // For the dead-letter exchange the argument wins.
    let (arg_dlq, pol_dlq, q) = (format!("{prefix}-adlq"), format!("{prefix}-pdlq"), format!("{prefix}-dl"));
    declare_queue(&ch, &arg_dlq).await;
    declare_queue(&ch, &pol_dlq).await;
    declare_args(&ch, &q, &[("x-dead-letter-exchange", ls("")), ("x-dead-letter-routing-key", ls(&arg_dlq))]).await;
    let dl = json!({"dead-letter-exchange": "", "dead-letter-routing-key": pol_dlq, "message-ttl": 0});
    api.set_policy(policy("/", &format!("{prefix}-dl"), &exactly(&q), "queues", 9, dl)).unwrap();
    publish_n(&ch, &q, 1, "x").await;
    eventually("the message reaches the argument's dead-letter queue", || async {
        message_count(&ch, &arg_dlq).await == 1
    })
    .await;
    assert_eq!(message_count(&ch, &pol_dlq).await, 0);
    api.clear_policy("/", &prefix);
    api.clear_policy("/", &format!("{prefix}-dl"));
    for name in [low_arg, high_arg, arg_dlq, pol_dlq, q] {
        cleanup_queue(&b, &name).await;
    }
}

#[tokio::test]
async fn the_lower_of_policy_and_operator_policy_applies() {
    let b = broker().await;
    let Some(api) = broker_api(&b) else { return };
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("pol-op");
    declare_queue(&ch, &q).await;
    api.set_policy(policy("/", "user", &exactly(&q), "queues", 0, json!({"max-length": 10}))).unwrap();
    api.set_operator_policy(policy("/", "ops", &exactly(&q), "all", 0, json!({"max-length": 4}))).unwrap();
    publish_n(&ch, &q, 12, "m").await;
    assert_eq!(message_count(&ch, &q).await, 4, "the operator policy is lower");
    let queue = api.vhost("/").unwrap().queue(&q).unwrap();
    assert_eq!(queue.operator_policy_name().as_deref(), Some("ops"));
    assert_eq!(Value::Object(queue.effective_policy_definition()), json!({"max-length": 4}));
    api.set_operator_policy(policy("/", "ops", &exactly(&q), "all", 0, json!({"max-length": 20}))).unwrap();
    publish_n(&ch, &q, 12, "n").await;
    assert_eq!(message_count(&ch, &q).await, 10, "now the policy is lower");
    // An operator policy may only set limits.
    let err = api.set_operator_policy(policy("/", "bad", ".*", "all", 0, json!({"dead-letter-exchange": "x"})));
    assert_eq!(
        err.unwrap_err(),
        "Validation failed\n\n[{<<\"dead-letter-exchange\">>,<<\"x\">>}] are not recognised policy settings\n"
    );
    assert!(api.clear_operator_policy("/", "ops"));
    api.clear_policy("/", "user");
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn invalid_policies_get_rabbitmqs_errors() {
    let b = broker().await;
    let Some(api) = broker_api(&b) else { return };
    let bad = |pattern: &str, definition: Value| api.set_policy(policy("/", "p1", pattern, "all", 0, definition));
    assert_eq!(
        bad("(", json!({"message-ttl": 1})).unwrap_err(),
        "Validation failed\n\npattern should be regular expression but is invalid: {\"missing )\",1}\n"
    );
    assert_eq!(
        bad(".*", json!({"foo": 1})).unwrap_err(),
        "Validation failed\n\n[{<<\"foo\">>,1}] are not recognised policy settings\n"
    );
    assert_eq!(
        bad(".*", json!({"message-ttl": -1})).unwrap_err(),
        "Validation failed\n\n-1 is not a valid message TTL\n"
    );
    let nowhere = api.set_policy(policy("no-such-vhost", "p1", ".*", "all", 0, json!({"max-length": 1})));
    assert_eq!(nowhere.unwrap_err(), "vhost_not_found");
    assert!(api.policies(Some("/")).iter().all(|p| p.name != "p1"));
}

#[tokio::test]
async fn a_message_ttl_policy_expires_messages() {
    let b = broker_on_manual_clock().await;
    let Some(api) = broker_api(&b) else { return };
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("pol-ttl");
    declare_queue(&ch, &q).await;
    api.set_policy(policy("/", &q, &exactly(&q), "queues", 0, json!({"message-ttl": 1000}))).unwrap();
    publish_n(&ch, &q, 1, "m").await;
    let_pass(&b, 999).await;
    assert_eq!(message_count(&ch, &q).await, 1);
    let_pass(&b, 2).await;
    assert_eq!(message_count(&ch, &q).await, 0, "expired through the policy's TTL");
    api.clear_policy("/", &q);
    publish_n(&ch, &q, 1, "n").await;
    let_pass(&b, 5000).await;
    assert_eq!(message_count(&ch, &q).await, 1, "no TTL once the policy is gone");
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn a_dead_letter_exchange_policy_dead_letters_rejected_messages() {
    let b = broker().await;
    let Some(api) = broker_api(&b) else { return };
    let (_c, ch) = connect_confirm_channel(&b).await;
    let (q, dlx, dlq) = (unique("pol-dl"), unique("pol-dlx"), unique("pol-dlq"));
    within(ch.exchange_declare(dlx.as_str().into(), ExchangeKind::Fanout, Default::default(), Default::default()))
        .await
        .unwrap();
    declare_queue(&ch, &dlq).await;
    within(ch.queue_bind(dlq.as_str().into(), dlx.as_str().into(), "".into(), Default::default(), Default::default()))
        .await
        .unwrap();
    declare_queue(&ch, &q).await;
    api.set_policy(policy("/", &q, &exactly(&q), "queues", 0, json!({"dead-letter-exchange": dlx}))).unwrap();
    publish_n(&ch, &q, 1, "m").await;
    let got = within(ch.basic_get(q.as_str().into(), BasicGetOptions::default())).await.unwrap().unwrap();
    within(got.delivery.acker.reject(BasicRejectOptions { requeue: false })).await.unwrap();
    eventually("the rejected message reaches the DLX's queue", || async { message_count(&ch, &dlq).await == 1 }).await;
    let d = within(ch.basic_get(dlq.as_str().into(), BasicGetOptions { no_ack: true })).await.unwrap().unwrap();
    let reason = d.delivery.properties.headers().as_ref().and_then(|h| h.inner().get("x-first-death-reason").cloned());
    assert_eq!(reason, Some(ls("rejected")));
    api.clear_policy("/", &q);
    cleanup_queue(&b, &q).await;
    cleanup_queue(&b, &dlq).await;
    cleanup_exchange(&b, &dlx).await;
}

#[tokio::test]
async fn an_alternate_exchange_policy_catches_unroutable_messages() {
    let b = broker().await;
    let Some(api) = broker_api(&b) else { return };
    let (_c, ch) = connect_confirm_channel(&b).await;
    let (x, ae, q) = (unique("pol-x"), unique("pol-ae"), unique("pol-aeq"));
    for (name, kind) in [(&x, ExchangeKind::Direct), (&ae, ExchangeKind::Fanout)] {
        within(ch.exchange_declare(name.as_str().into(), kind, Default::default(), Default::default())).await.unwrap();
    }
    declare_queue(&ch, &q).await;
    within(ch.queue_bind(q.as_str().into(), ae.as_str().into(), "".into(), Default::default(), Default::default()))
        .await
        .unwrap();
    api.set_policy(policy("/", &x, &exactly(&x), "exchanges", 0, json!({"alternate-exchange": ae}))).unwrap();
    assert_eq!(api.vhost("/").unwrap().exchange(&x).unwrap().policy_name().as_deref(), Some(x.as_str()));
    publish_confirmed(&ch, &x, "nowhere", b"caught").await;
    assert_eq!(drain(&ch, &q).await, ["caught"]);
    api.clear_policy("/", &x);
    publish_confirmed(&ch, &x, "nowhere", b"dropped").await;
    assert_eq!(message_count(&ch, &q).await, 0, "no alternate exchange once the policy is gone");
    cleanup_queue(&b, &q).await;
    cleanup_exchange(&b, &x).await;
    cleanup_exchange(&b, &ae).await;
}

fn data_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("warren-policies-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn with_data_dir(dir: &Path) -> warren::Config {
    warren::Config { data_dir: Some(dir.to_owned()), ..warren::Config::ephemeral() }
}

/// A confirm channel to a server a test started itself.
async fn confirm_channel_to(server: &warren::Server) -> (lapin::Connection, Channel) {
    let c = within(lapin::Connection::connect(&server.amqp_uri(), Default::default())).await.unwrap();
    let ch = confirm_channel(&c).await;
    (c, ch)
}

async fn durable_queue(ch: &Channel, name: &str) {
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    within(ch.queue_declare(name.into(), durable, Default::default())).await.unwrap();
}

async fn publish_persistent(ch: &Channel, queue: &str, n: usize) {
    for i in 1..=n {
        let props = BasicProperties::default().with_delivery_mode(2);
        publish_confirmed_props(ch, "", queue, format!("p{i}").as_bytes(), props).await;
    }
}

#[tokio::test]
async fn policies_survive_a_restart_and_apply_to_restored_queues() {
    if external() {
        return;
    }
    let dir = data_dir("restart");
    let server = warren::Server::start(with_data_dir(&dir)).await.unwrap();
    let api = server.broker();
    let (c, ch) = confirm_channel_to(&server).await;
    durable_queue(&ch, "kept").await;
    api.set_policy(policy("/", "limit", "^kept$", "queues", 7, json!({"max-length": 3}))).unwrap();
    api.set_operator_policy(policy("/", "cap", "^kept$", "all", 0, json!({"max-length": 2}))).unwrap();
    api.set_policy(policy("/", "gone", ".*", "all", 0, json!({"max-length": 1}))).unwrap();
    assert!(api.clear_policy("/", "gone"));
    publish_persistent(&ch, "kept", 5).await;
    drop(c);
    let before = (api.policies(None), api.operator_policies(None));
    server.shutdown().await;

    let server = warren::Server::start(with_data_dir(&dir)).await.unwrap();
    let api = server.broker();
    assert_eq!((api.policies(None), api.operator_policies(None)), before);
    assert_eq!(api.policies(None).len(), 1);
    let queue = api.vhost("/").unwrap().queue("kept").unwrap();
    assert_eq!(queue.policy_name().as_deref(), Some("limit"));
    assert_eq!(queue.operator_policy_name().as_deref(), Some("cap"));
    let (_c, ch) = confirm_channel_to(&server).await;
    assert_eq!(message_count(&ch, "kept").await, 2);
    publish_persistent(&ch, "kept", 3).await;
    assert_eq!(message_count(&ch, "kept").await, 2, "the restored queue is still limited");
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn definitions_export_and_import_carry_policies() {
    if external() {
        return;
    }
    let dir = data_dir("defs");
    std::fs::create_dir_all(&dir).unwrap();
    let server = warren::Server::start(warren::Config::ephemeral()).await.unwrap();
    let api = server.broker();
    api.set_policy(policy("/", "ttl", "^jobs", "queues", 1, json!({"message-ttl": 60000}))).unwrap();
    api.set_operator_policy(policy("/", "cap", "^jobs", "all", 0, json!({"max-length": 2}))).unwrap();
    let export = serde_json::to_value(api.export_definitions()).unwrap();
    assert_eq!(
        export["policies"],
        json!([{"vhost": "/", "name": "ttl", "pattern": "^jobs", "apply-to": "queues",
                "definition": {"message-ttl": 60000}, "priority": 1}])
    );
    // RabbitMQ exports operator policies as runtime parameters.
    assert_eq!(
        export["parameters"],
        json!([{"vhost": "/", "component": "operator_policy", "name": "cap",
                "value": {"pattern": "^jobs", "definition": {"max-length": 2}, "priority": 0, "apply-to": "all"}}])
    );
    server.shutdown().await;

    let file = dir.join("export.json");
    std::fs::write(&file, serde_json::to_vec(&export).unwrap()).unwrap();
    let server =
        warren::Server::start(warren::Config { definitions: Some(file), ..warren::Config::ephemeral() }).await.unwrap();
    let api = server.broker();
    assert_eq!(api.policies(Some("/"))[0].name, "ttl");
    assert_eq!(api.operator_policies(Some("/"))[0].name, "cap");
    let (_c, ch) = confirm_channel_to(&server).await;
    declare_queue(&ch, "jobs.a").await;
    publish_n(&ch, "jobs.a", 4, "m").await;
    assert_eq!(message_count(&ch, "jobs.a").await, 2, "the imported operator policy applies");
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
