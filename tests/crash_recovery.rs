//! Kill -9 the broker while producers publish persistent messages with
//! confirms and a consumer acks, restart, repeat. Afterwards:
//! - every confirmed message has been consumed,
//! - a message seen more than once was flagged redelivered on every repeat
//!   (no silent duplicates, confirmed or not),
//! - nothing was consumed that was never published.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use rand::Rng;

mod process;

const CYCLES: usize = 20;
const PRODUCERS: usize = 3;
const QUEUE: &str = "crash-test";

#[derive(Default)]
struct Ledger {
    published: HashSet<String>,
    confirmed: HashSet<String>,
    /// Every delivery seen, in order: (body, redelivered).
    seen: Vec<(String, bool)>,
}

async fn connect(uri: &str) -> Option<Connection> {
    tokio::time::timeout(Duration::from_secs(5), Connection::connect(uri, ConnectionProperties::default()))
        .await
        .ok()?
        .ok()
}

/// Publishes in windows of 50 with confirms until the broker dies.
async fn produce(uri: String, cycle: usize, producer: usize, ledger: Arc<Mutex<Ledger>>) {
    let Some(conn) = connect(&uri).await else { return };
    let Ok(ch) = conn.create_channel().await else { return };
    if ch.confirm_select(ConfirmSelectOptions::default()).await.is_err() {
        return;
    }
    let props = BasicProperties::default().with_delivery_mode(2);
    let mut n = 0usize;
    loop {
        let mut window = Vec::new();
        for _ in 0..50 {
            let body = format!("c{cycle}-p{producer}-{n}");
            n += 1;
            ledger.lock().unwrap().published.insert(body.clone());
            match ch
                .basic_publish("".into(), QUEUE.into(), BasicPublishOptions::default(), body.as_bytes(), props.clone())
                .await
            {
                Ok(confirm) => window.push((body, confirm)),
                Err(_) => return,
            }
        }
        for (body, confirm) in window {
            match tokio::time::timeout(Duration::from_secs(5), confirm).await {
                Ok(Ok(c)) if c.is_ack() => {
                    ledger.lock().unwrap().confirmed.insert(body);
                }
                _ => return,
            }
        }
    }
}

/// Consumes with manual acks (prefetch 100) until the broker dies. A
/// delivery is recorded before its ack is sent, so a crash in between
/// legitimately redelivers it.
async fn consume(uri: String, ledger: Arc<Mutex<Ledger>>) {
    let Some(conn) = connect(&uri).await else { return };
    let Ok(ch) = conn.create_channel().await else { return };
    if ch.basic_qos(100, BasicQosOptions::default()).await.is_err() {
        return;
    }
    let Ok(mut consumer) =
        ch.basic_consume(QUEUE.into(), "".into(), BasicConsumeOptions::default(), FieldTable::default()).await
    else {
        return;
    };
    while let Some(Ok(d)) = consumer.next().await {
        let body = String::from_utf8_lossy(&d.data).into_owned();
        ledger.lock().unwrap().seen.push((body, d.redelivered));
        if d.acker.ack(BasicAckOptions::default()).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_messages_survive_repeated_sigkill() {
    let dir: PathBuf = std::env::temp_dir().join(format!("warren-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = rand::rng();

    for cycle in 0..CYCLES {
        let broker = process::Broker::start(&dir);
        let conn = connect(&broker.uri).await.expect("connect after restart");
        let ch = conn.create_channel().await.unwrap();
        let durable = QueueDeclareOptions { durable: true, ..Default::default() };
        ch.queue_declare(QUEUE.into(), durable, FieldTable::default()).await.unwrap();
        let mut tasks = Vec::new();
        for p in 0..PRODUCERS {
            tasks.push(tokio::spawn(produce(broker.uri.clone(), cycle, p, Arc::clone(&ledger))));
        }
        // Consume in every other cycle, so backlogs both grow and drain.
        if cycle % 2 == 1 {
            tasks.push(tokio::spawn(consume(broker.uri.clone(), Arc::clone(&ledger))));
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(150..700))).await;
        broker.kill9();
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        drop(conn);
    }

    // Drain what is left after the last crash.
    let broker = process::Broker::start(&dir);
    let conn = connect(&broker.uri).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    loop {
        let got = tokio::time::timeout(Duration::from_secs(5), ch.basic_get(QUEUE.into(), BasicGetOptions::default()))
            .await
            .expect("basic.get timed out")
            .unwrap();
        let Some(m) = got else { break };
        let body = String::from_utf8_lossy(&m.delivery.data).into_owned();
        ledger.lock().unwrap().seen.push((body, m.delivery.redelivered));
        m.delivery.acker.ack(BasicAckOptions::default()).await.unwrap();
    }
    assert!(broker.terminate(), "warren did not stop cleanly");

    let ledger = ledger.lock().unwrap();
    let mut times: HashMap<&str, usize> = HashMap::new();
    let mut silent_duplicates = Vec::new();
    let mut redelivered_repeats = 0;
    for (body, redelivered) in &ledger.seen {
        let n = times.entry(body.as_str()).or_default();
        *n += 1;
        if *n > 1 {
            if *redelivered {
                redelivered_repeats += 1;
            } else {
                silent_duplicates.push(body.clone());
            }
        }
    }
    let lost: Vec<&String> = ledger.confirmed.iter().filter(|b| !times.contains_key(b.as_str())).collect();
    let phantom: Vec<&&str> = times.keys().filter(|b| !ledger.published.contains(**b)).collect();
    let unconfirmed_seen = times.keys().filter(|b| !ledger.confirmed.contains(**b)).count();
    println!(
        "{CYCLES} SIGKILL cycles: {} published, {} confirmed, {} deliveries of {} distinct messages, \
         {redelivered_repeats} redelivered repeats, {unconfirmed_seen} unconfirmed-but-stored messages delivered",
        ledger.published.len(),
        ledger.confirmed.len(),
        ledger.seen.len(),
        times.len()
    );
    assert!(ledger.confirmed.len() > 1000, "too few confirms to mean anything: {}", ledger.confirmed.len());
    assert!(lost.is_empty(), "{} confirmed messages lost, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
    assert!(
        silent_duplicates.is_empty(),
        "duplicates without redelivered=true: {:?}",
        &silent_duplicates[..silent_duplicates.len().min(5)]
    );
    assert!(phantom.is_empty(), "consumed messages never published: {phantom:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
