//! criterion benches of the broker's own work per message, without sockets
//! or a load tool in the way: the sans-IO connection (`protocol::harness`)
//! fed pre-encoded publishes and drained of deliveries, topic matching, and
//! the stream log's read path.
//!
//!   cargo bench --bench hot_path
//!
//! Time per element is the broker CPU per message on this machine; compare
//! runs on the same machine only (docs/BENCHMARKS.md keeps the last ones).

use std::sync::Arc;

use amq_protocol::frame::{gen_frame, AMQPContentHeader, AMQPFrame};
use amq_protocol::protocol::basic::AMQPProperties;
use amq_protocol::protocol::{basic, channel, connection, queue, AMQPClass};
use amq_protocol::types::{FieldTable, LongString};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use warren::broker::topic::TopicPattern;
use warren::broker::Broker;
use warren::clock::Clock;
use warren::protocol::harness::Harness;
use warren::protocol::Event;
use warren::store::stream_log::{entries, ChunkBuilder, StartAt, StreamLog, StreamReader};
use warren::Config;

const BATCH: usize = 256;

fn frame(f: AMQPFrame) -> Vec<u8> {
    cookie_factory::gen_simple(gen_frame(&f), Vec::new()).expect("amq-protocol encodes its own frames")
}

fn method(ch: u16, class: AMQPClass) -> Vec<u8> {
    frame(AMQPFrame::Method(ch, class))
}

/// A connection logged in as guest on "/" with channel 1 open.
fn connected(broker: &Arc<Broker>, config: &Arc<Config>) -> Harness {
    let mut h = Harness::new(Arc::clone(broker), Arc::clone(config));
    h.feed(b"AMQP\x00\x00\x09\x01");
    let start_ok = connection::StartOk {
        client_properties: FieldTable::default(),
        mechanism: "PLAIN".into(),
        response: LongString::from(b"\0guest\0guest".to_vec()),
        locale: "en_US".into(),
    };
    h.feed(&method(0, AMQPClass::Connection(connection::AMQPMethod::StartOk(start_ok))));
    let tune_ok = connection::TuneOk { channel_max: 2047, frame_max: 131072, heartbeat: 0 };
    h.feed(&method(0, AMQPClass::Connection(connection::AMQPMethod::TuneOk(tune_ok))));
    let open = connection::Open { virtual_host: "/".into() };
    h.feed(&method(0, AMQPClass::Connection(connection::AMQPMethod::Open(open))));
    h.feed(&method(1, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))));
    h.take_output();
    assert!(!h.ended(), "the bench connection did not open");
    h
}

/// `BATCH` publishes of a 16-byte body to the default exchange, as one read.
fn publishes(routing_key: &str) -> Vec<u8> {
    let mut one = method(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
            exchange: "".into(),
            routing_key: routing_key.into(),
            mandatory: false,
            immediate: false,
        })),
    );
    one.extend(frame(AMQPFrame::Header(
        1,
        AMQPContentHeader { class_id: 60, body_size: 16, properties: AMQPProperties::default() },
    )));
    one.extend(frame(AMQPFrame::Body(1, vec![7u8; 16])));
    one.repeat(BATCH)
}

fn publish_deliver_autoack(c: &mut Criterion) {
    let config = Arc::new(Config { clock: Clock::manual(), ..Config::ephemeral() });
    let broker = Arc::new(Broker::open(&config).expect("an in-memory broker opens"));
    let mut producer = connected(&broker, &config);
    let mut consumer = connected(&broker, &config);
    let declare = queue::Declare {
        queue: "bench".into(),
        passive: false,
        durable: false,
        exclusive: false,
        auto_delete: false,
        nowait: false,
        arguments: FieldTable::default(),
    };
    consumer.feed(&method(1, AMQPClass::Queue(queue::AMQPMethod::Declare(declare))));
    let consume = basic::Consume {
        queue: "bench".into(),
        consumer_tag: "c".into(),
        no_local: false,
        no_ack: true,
        exclusive: false,
        nowait: false,
        arguments: FieldTable::default(),
    };
    consumer.feed(&method(1, AMQPClass::Basic(basic::AMQPMethod::Consume(consume))));
    consumer.take_output();
    let batch = publishes("bench");
    let mut group = c.benchmark_group("queue");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("publish + deliver, 16 B, autoack (per message)", |b| {
        b.iter(|| {
            producer.feed(&batch);
            consumer.event(Event::OutboxWoken);
            let out = consumer.take_output();
            // Every delivery is three frames of at least 8 bytes each.
            assert!(out.len() >= BATCH * 24, "deliveries missing: {} bytes", out.len());
        })
    });
    group.finish();
}

fn topic_matching(c: &mut Criterion) {
    let patterns: Vec<TopicPattern> =
        ["a.*.c", "a.#", "#.c", "*.b.*", "x.y.z", "a.b.#.c"].iter().map(|p| TopicPattern::new(p)).collect();
    let key = ["a", "b", "c"];
    let mut group = c.benchmark_group("topic");
    group.throughput(Throughput::Elements(patterns.len() as u64));
    group.bench_function("match a.b.c against 6 patterns (per pattern)", |b| {
        b.iter(|| patterns.iter().filter(|p| p.matches(std::hint::black_box(&key))).count())
    });
    group.finish();
}

fn stream_replay(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("warren-bench-stream-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut log = StreamLog::open(&dir, 64 << 20).expect("a stream log in the temp dir");
    let messages = 1_000_000u64;
    let mut chunk = ChunkBuilder::default();
    for i in 0..messages {
        chunk.push(&[b'm'; 16]);
        if chunk.len() == 1000 || i + 1 == messages {
            log.append(&chunk, 0).expect("append");
            chunk.clear();
        }
    }
    log.sync().expect("sync");
    let shared = Arc::clone(log.shared());
    let mut group = c.benchmark_group("stream");
    group.throughput(Throughput::Elements(messages));
    group.sample_size(10);
    group.bench_function("replay from first, 16 B entries, page cache (per message)", |b| {
        b.iter_batched(
            || StreamReader::new(Arc::clone(&shared), StartAt::First).expect("reader").0,
            |mut reader| {
                let mut n = 0u64;
                while let Some(c) = reader.next_chunk().expect("read") {
                    n += entries(&c.data).count() as u64;
                }
                assert_eq!(n, messages);
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    drop(log);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, publish_deliver_autoack, topic_matching, stream_replay);
criterion_main!(benches);
