//! Memory a client can make the broker hold must stay bounded. Each test
//! runs the warren binary, has a hostile client do its worst for a few
//! seconds, and reads the broker's resident memory from /proc.
//!
//! - mandatory publishes that are all returned, to a client that never
//!   reads: the returns pile up in the write buffer unless reading stops;
//! - basic.get in a loop from a client that never reads;
//! - persistent publishes faster than the disk can take them: the store's
//!   writer queue, on the power-cut simulator made slow.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{basic, channel, connection, queue, AMQPClass};
use amq_protocol::types::{FieldTable, LongString};

mod common;
mod powercut;
mod process;
use common::raw::{encode, raw_frame, RawConn, FRAME_BODY};

/// Resident memory of a process, from /proc.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

fn method(ch: u16, m: AMQPClass) -> Vec<u8> {
    encode(&AMQPFrame::Method(ch, m))
}

/// A blocking raw connection that has done the handshake and opened channel 1.
fn open_raw(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"AMQP\x00\x00\x09\x01").unwrap();
    let mut out = method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
            client_properties: FieldTable::default(),
            mechanism: "PLAIN".into(),
            response: LongString::from("\0guest\0guest"),
            locale: "en_US".into(),
        })),
    );
    out.extend(method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
            channel_max: 2047,
            frame_max: 131072,
            heartbeat: 0,
        })),
    ));
    out.extend(method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open { virtual_host: "/".into() })),
    ));
    out.extend(method(1, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))));
    s.write_all(&out).unwrap();
    s
}

/// Writes `chunk` again and again for `d`, never reading, until the broker
/// stops reading us (the write blocks past its timeout). Returns bytes sent.
fn flood(s: &mut TcpStream, chunk: &[u8], d: Duration) -> usize {
    s.set_write_timeout(Some(Duration::from_millis(500))).unwrap();
    let until = Instant::now() + d;
    let mut sent = 0;
    while Instant::now() < until {
        match s.write(chunk) {
            Ok(n) => sent += n,
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    sent
}

fn start(tag: &str) -> (process::Broker, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("warren-memory-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    (process::Broker::start(&dir), dir)
}

/// Below this, a hostile client did not manage to grow the broker: its
/// buffers are capped at a few hundred KiB per connection. The defect this
/// guards against took RSS from 11 MiB to 411 MiB.
const CEILING_MIB: u64 = 64;

#[test]
fn returns_to_a_client_that_never_reads_are_bounded() {
    let (broker, dir) = start("returns");
    let before = rss_mib(broker.child.id());
    let mut s = open_raw(broker.port);
    let mut publish = method(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
            exchange: "".into(),
            routing_key: "no-such-queue".into(),
            mandatory: true,
            immediate: false,
        })),
    );
    publish.extend(RawConn::header_frame(1, 1024));
    publish.extend(raw_frame(FRAME_BODY, 1, &[7u8; 1024]));
    let chunk = publish.repeat(64);
    let sent = flood(&mut s, &chunk, Duration::from_secs(4));
    let after = rss_mib(broker.child.id());
    println!("sent {} MiB of mandatory publishes; broker RSS {before} -> {after} MiB", sent >> 20);
    assert!(after < before + CEILING_MIB, "broker RSS grew from {before} to {after} MiB");
    drop(s);
    drop(broker);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn get_ok_to_a_client_that_never_reads_is_bounded() {
    let (broker, dir) = start("get");
    let mut s = open_raw(broker.port);
    // A queue with messages to get: 2,000 of 16 KiB, sent by this client
    // (and read back before the flood, so only the gets count).
    let mut fill = method(
        1,
        AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
            queue: "gets".into(),
            passive: false,
            durable: false,
            exclusive: false,
            auto_delete: false,
            nowait: true,
            arguments: FieldTable::default(),
        })),
    );
    for _ in 0..2000 {
        fill.extend(method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: "".into(),
                routing_key: "gets".into(),
                mandatory: false,
                immediate: false,
            })),
        ));
        fill.extend(RawConn::header_frame(1, 16 * 1024));
        fill.extend(raw_frame(FRAME_BODY, 1, &[7u8; 16 * 1024]));
    }
    s.write_all(&fill).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_mib(broker.child.id());
    // Every get fetches 16 KiB that the client never reads; requeue by
    // recovering now and then so the queue never runs dry.
    let mut gets = Vec::new();
    for _ in 0..100 {
        gets.extend(method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Get(basic::Get { queue: "gets".into(), no_ack: false })),
        ));
    }
    gets.extend(method(1, AMQPClass::Basic(basic::AMQPMethod::Recover(basic::Recover { requeue: true }))));
    let sent = flood(&mut s, &gets, Duration::from_secs(4));
    let after = rss_mib(broker.child.id());
    println!("sent {} KiB of basic.get; broker RSS {before} -> {after} MiB", sent >> 10);
    assert!(after < before + CEILING_MIB, "broker RSS grew from {before} to {after} MiB");
    drop(s);
    drop(broker);
    let _ = std::fs::remove_dir_all(dir);
}

/// Persistent publishes faster than the disk can take them: the writer's
/// queue would hold every message not yet written. Past its bound the
/// publishers are blocked ("store write backlog") and RSS stays put.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_that_cannot_keep_up_blocks_publishers_instead_of_growing() {
    use futures_lite::StreamExt;
    use lapin::options::*;
    use lapin::{BasicProperties, Connection, ConnectionProperties};

    let disk = powercut::PowerCut::new("slow");
    disk.set_slow(Duration::from_millis(50), 8 << 20);
    let broker = process::Broker::start(&disk.path().join("data"));
    let connect = || async {
        tokio::time::timeout(Duration::from_secs(5), Connection::connect(&broker.uri, ConnectionProperties::default()))
            .await
            .unwrap()
            .unwrap()
    };
    let conn = connect().await;
    let mut events = conn.events_listener();
    let ch = conn.create_channel().await.unwrap();
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare("slow-disk".into(), durable, FieldTable::default()).await.unwrap();
    // A consumer keeps the queue empty: what piles up is the writer's queue.
    let consumer_conn = connect().await;
    let cch = consumer_conn.create_channel().await.unwrap();
    let mut consumer = cch
        .basic_consume(
            "slow-disk".into(),
            "".into(),
            BasicConsumeOptions { no_ack: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = consumer.next().await {} });
    let before = rss_mib(broker.child.id());
    let body = vec![7u8; 64 * 1024];
    let props = BasicProperties::default().with_delivery_mode(2);
    let until = Instant::now() + Duration::from_secs(5);
    let mut sent = 0usize;
    while Instant::now() < until && !conn.status().blocked() {
        let p = ch.basic_publish("".into(), "slow-disk".into(), BasicPublishOptions::default(), &body, props.clone());
        match tokio::time::timeout(Duration::from_millis(500), p).await {
            Ok(r) => {
                r.unwrap();
                sent += 1;
            }
            Err(_) => break,
        }
    }
    let reason = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(e) = events.next().await {
            if let lapin::Event::ConnectionBlocked(reason) = e {
                return reason;
            }
        }
        String::new()
    })
    .await
    .expect("no connection.blocked: the store's backlog is not bounded");
    assert_eq!(reason, "store write backlog");
    let at_block = rss_mib(broker.child.id());
    // Keep pushing for a moment: nothing more may pile up.
    std::thread::sleep(Duration::from_secs(1));
    let after = rss_mib(broker.child.id());
    println!("published {} MiB before being blocked; broker RSS {before} -> {after} MiB", (sent * body.len()) >> 20);
    // The writer's bound is 64 MiB of message bytes; each 64 KiB body also
    // pins the read-buffer chunk it arrived in (about twice its size), and
    // the consumer's outbox holds up to 512 deliveries. Unbounded, the
    // backlog grows with everything published (about 50 MB/s here). How
    // much arrives before the alarm trips depends on the machine's load
    // (one loaded run reached +202 MiB), so the tight check is that nothing
    // more piles up once blocked; the loose one bounds the whole episode.
    assert!(after < at_block + 48, "broker RSS grew from {at_block} to {after} MiB while blocked");
    assert!(after < before + 320, "broker RSS grew from {before} to {after} MiB");
    disk.set_slow(Duration::ZERO, 0);
    drain.abort();
    drop((ch, conn, cch, consumer_conn));
    broker.kill9();
}
