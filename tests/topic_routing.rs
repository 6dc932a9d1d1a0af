//! Topic exchange matching, exactly as RabbitMQ 3.x does it.
mod common;

use common::*;
use lapin::{options::*, types::FieldTable, ExchangeKind};

/// (binding key, routing key, matches?)
const CASES: &[(&str, &str, bool)] = &[
    // literal
    ("a.b.c", "a.b.c", true),
    ("a.b.c", "a.b", false),
    ("a.b.c", "a.b.c.d", false),
    ("a.b.c", "A.b.c", false),
    // * = exactly one word
    ("*", "a", true),
    ("*", "a.b", false),
    // an empty routing key has ZERO words (but "." has two empty words)
    ("*", "", false),
    ("a.*", "a.b", true),
    ("a.*", "a", false),
    ("a.*", "a.b.c", false),
    ("a.*", "a.", true),
    ("*.b", "a.b", true),
    ("*.b", ".b", true),
    ("*.*", "a.b", true),
    ("*.*", "a", false),
    ("*.*", ".", true),
    ("a.*.c", "a.b.c", true),
    ("a.*.c", "a..c", true),
    ("a.*.c", "a.c", false),
    // # = zero or more words
    ("#", "", true),
    ("#", "a", true),
    ("#", "a.b.c", true),
    ("#", ".", true),
    ("a.#", "a", true),
    ("a.#", "a.b", true),
    ("a.#", "a.b.c", true),
    ("a.#", "b.a", false),
    ("a.#", "ab", false),
    ("#.a", "a", true),
    ("#.a", "x.y.a", true),
    ("#.a", "a.x", false),
    ("a.#.b", "a.b", true),
    ("a.#.b", "a.x.b", true),
    ("a.#.b", "a.x.y.b", true),
    ("a.#.b", "a.b.c", false),
    ("a.#.b", "a.b.b", true),
    ("#.#", "", true),
    ("#.#", "a.b", true),
    ("#.*", "a", true),
    ("#.*", "", false),
    ("*.#", "a", true),
    ("*.#", "a.b.c", true),
    ("*.#", "", false),
    ("a.#.#", "a", true),
    ("*.*.#", "a", false),
    ("*.*.#", "a.b", true),
    // empty words
    ("a..b", "a..b", true),
    ("a..b", "a.b", false),
    ("a.*.b", "a..b", true),
    ("a.#.b", "a..b", true),
    ("", "", true),
    ("", "a", false),
    (".", ".", true),
    (".", "", false),
    // wildcards inside words are literal
    ("a*", "ab", false),
    ("a*", "a*", true),
    ("a#", "a#", true),
    ("a#", "ab", false),
];

#[tokio::test]
async fn topic_matching_table() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let x = unique("x-topic");
    within(ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    // one queue per distinct binding key
    let mut bindings: Vec<&str> = CASES.iter().map(|c| c.0).collect();
    bindings.sort();
    bindings.dedup();
    let mut queues = std::collections::HashMap::new();
    for bk in &bindings {
        let q = declare_queue(&ch, "").await;
        within(ch.queue_bind(
            q.name().clone(),
            x.as_str().into(),
            (*bk).into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        ))
        .await
        .unwrap();
        queues.insert(*bk, q.name().to_string());
    }
    let mut keys: Vec<&str> = CASES.iter().map(|c| c.1).collect();
    keys.sort();
    keys.dedup();
    for rk in &keys {
        // the body is the routing key, so each queue holds the keys that matched
        publish_confirmed(&ch, &x, rk, rk.as_bytes()).await;
    }
    let mut got = std::collections::HashMap::new();
    for bk in &bindings {
        got.insert(*bk, drain(&ch, &queues[bk]).await);
    }
    let mut failures = Vec::new();
    for (bk, rk, expect) in CASES {
        let matched = got[bk].iter().any(|k| k == rk);
        if matched != *expect {
            failures.push(format!("binding {bk:?} key {rk:?}: expected {expect}, got {matched}"));
        }
    }
    // each routing key is delivered at most once per queue
    for bk in &bindings {
        let mut v = got[bk].clone();
        let n = v.len();
        v.dedup();
        assert_eq!(n, v.len(), "duplicate deliveries for binding {bk:?}: {:?}", got[bk]);
    }
    assert!(failures.is_empty(), "topic mismatches:\n{}", failures.join("\n"));
    cleanup_exchange(&b, &x).await;
}

#[tokio::test]
async fn overlapping_bindings_deliver_once_per_queue() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let x = unique("x-topic-overlap");
    within(ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let q = declare_queue(&ch, "").await;
    for bk in ["#", "a.*", "a.b", "*.b", "a.#"] {
        within(ch.queue_bind(
            q.name().clone(),
            x.as_str().into(),
            bk.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        ))
        .await
        .unwrap();
    }
    publish_confirmed(&ch, &x, "a.b", b"one").await;
    assert_eq!(drain(&ch, q.name().as_str()).await, ["one"]);
    // unbinding one of them leaves the others in place
    within(ch.queue_unbind(q.name().clone(), x.as_str().into(), "#".into(), FieldTable::default())).await.unwrap();
    publish_confirmed(&ch, &x, "a.b", b"two").await;
    publish_confirmed(&ch, &x, "z.z", b"none").await;
    assert_eq!(drain(&ch, q.name().as_str()).await, ["two"]);
    cleanup_exchange(&b, &x).await;
}

#[tokio::test]
async fn amq_topic_routes() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    let key = unique("k");
    within(ch.queue_bind(
        q.name().clone(),
        "amq.topic".into(),
        format!("{key}.#").as_str().into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    publish_confirmed(&ch, "amq.topic", &format!("{key}.x.y"), b"m").await;
    assert_eq!(drain(&ch, q.name().as_str()).await, ["m"]);
}
