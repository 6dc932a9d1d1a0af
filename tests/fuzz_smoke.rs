//! A bounded, seeded stand-in for the cargo-fuzz target that runs in CI on
//! stable Rust: the committed seed corpus (fuzz/corpus/frames/, written by
//! fuzz/seeds.py, deep nesting included) as it is, then mutated, spliced and
//! random bytes, through every decoder a client reaches and the raw table
//! walker and edits. Crash-free is the property (a panic fails the test),
//! with the invariants `fuzz_input` asserts.
//!
//! Runs on a thread with a 2 MiB stack, a tokio worker's: a debug build of
//! amq-protocol's recursive table parser overflows it about 200 tables
//! deep, so any recursion on the deep seeds aborts this test.

use rand::{rngs::StdRng, Rng, SeedableRng};

fn seeds() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/frames");
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("fuzz/corpus/frames").map(|e| e.unwrap().path()).collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(seeds.len() >= 20, "the committed corpus: {} files in {}", seeds.len(), dir.display());
    assert!(seeds.iter().any(|s| s.len() > 10_000), "deep seeds are in the corpus");
    seeds
}

fn on_a_worker_sized_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new().stack_size(2 << 20).spawn(f).unwrap().join().unwrap();
}

#[test]
fn the_seed_corpus_never_panics() {
    on_a_worker_sized_stack(|| {
        for seed in seeds() {
            warren::protocol::fuzz_input(&seed);
            // Every prefix too: truncation is the commonest malformation.
            for cut in (0..seed.len()).step_by(seed.len() / 64 + 1) {
                warren::protocol::fuzz_input(&seed[..cut]);
            }
        }
    });
}

#[test]
fn random_and_mutated_input_never_panics() {
    on_a_worker_sized_stack(|| {
        let mut rng = StdRng::seed_from_u64(0x5741_5252_454e);
        let seeds = seeds();
        let (small, deep): (Vec<_>, Vec<_>) = seeds.into_iter().partition(|s| s.len() < 4096);
        for round in 0..200_000 {
            // Mostly the small seeds (cheap); one round in 200 a deep one.
            let pool = if round % 200 == 0 { &deep } else { &small };
            let mut input = pool[rng.random_range(0..pool.len())].clone();
            if rng.random_bool(0.3) {
                input.extend_from_slice(&small[rng.random_range(0..small.len())]);
            }
            for _ in 0..rng.random_range(0..4) {
                match rng.random_range(0..4) {
                    0 if !input.is_empty() => {
                        let i = rng.random_range(0..input.len());
                        input[i] = rng.random();
                    }
                    1 if !input.is_empty() => {
                        let cut = rng.random_range(0..input.len());
                        input.truncate(cut);
                    }
                    2 => {
                        let i = rng.random_range(0..=input.len());
                        input.insert(i, rng.random());
                    }
                    _ => {
                        let n = rng.random_range(0..32);
                        input.extend((0..n).map(|_| rng.random::<u8>()));
                    }
                }
            }
            warren::protocol::fuzz_input(&input);
        }
    });
}

/// The connection state machine, socket-free: a valid handshake, then
/// mutated sequences of real client frames (declares, binds, publishes with
/// content, consumes, acks, gets, tx, confirms, closes) and garbage, cut into
/// reads of every size. The property: no panic, well-framed output.
#[test]
fn the_connection_state_machine_survives_mutated_sessions() {
    use amq_protocol::frame::{gen_frame, AMQPFrame};
    use amq_protocol::protocol::{basic, channel, confirm, exchange, queue, tx, AMQPClass};
    use amq_protocol::types::FieldTable;
    let enc = |ch: u16, m: AMQPClass| gen_frame(&AMQPFrame::Method(ch, m))(Vec::new().into()).unwrap().write;
    let raw = |kind: u8, ch: u16, payload: &[u8]| {
        let mut v = vec![kind];
        v.extend_from_slice(&ch.to_be_bytes());
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(payload);
        v.push(0xCE);
        v
    };
    let t = FieldTable::default;
    let pieces: Vec<Vec<u8>> = vec![
        enc(
            1,
            AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
                queue: "q".into(),
                passive: false,
                durable: false,
                exclusive: false,
                auto_delete: false,
                nowait: false,
                arguments: t(),
            })),
        ),
        enc(
            1,
            AMQPClass::Exchange(exchange::AMQPMethod::Declare(exchange::Declare {
                exchange: "x".into(),
                kind: "topic".into(),
                passive: false,
                durable: false,
                auto_delete: false,
                internal: false,
                nowait: false,
                arguments: t(),
            })),
        ),
        enc(
            1,
            AMQPClass::Queue(queue::AMQPMethod::Bind(queue::Bind {
                queue: "q".into(),
                exchange: "x".into(),
                routing_key: "#".into(),
                nowait: false,
                arguments: t(),
            })),
        ),
        enc(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: "x".into(),
                routing_key: "a.b".into(),
                mandatory: true,
                immediate: false,
            })),
        ),
        enc(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: "".into(),
                routing_key: "q".into(),
                mandatory: false,
                immediate: false,
            })),
        ),
        raw(2, 1, &[0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0x10, 0, 2]),
        raw(3, 1, b"abc"),
        enc(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
                queue: "q".into(),
                consumer_tag: "c".into(),
                no_local: false,
                no_ack: false,
                exclusive: false,
                nowait: false,
                arguments: t(),
            })),
        ),
        enc(1, AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack { delivery_tag: 1, multiple: true }))),
        enc(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Nack(basic::Nack { delivery_tag: 0, multiple: true, requeue: true })),
        ),
        enc(1, AMQPClass::Basic(basic::AMQPMethod::Get(basic::Get { queue: "q".into(), no_ack: false }))),
        enc(1, AMQPClass::Basic(basic::AMQPMethod::Cancel(basic::Cancel { consumer_tag: "c".into(), nowait: false }))),
        enc(1, AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select { nowait: false }))),
        enc(1, AMQPClass::Tx(tx::AMQPMethod::Select(tx::Select {}))),
        enc(1, AMQPClass::Tx(tx::AMQPMethod::Commit(tx::Commit {}))),
        enc(1, AMQPClass::Queue(queue::AMQPMethod::Purge(queue::Purge { queue: "q".into(), nowait: false }))),
        enc(
            1,
            AMQPClass::Queue(queue::AMQPMethod::Delete(queue::Delete {
                queue: "q".into(),
                if_unused: false,
                if_empty: false,
                nowait: false,
            })),
        ),
        enc(
            1,
            AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
                reply_code: 200,
                reply_text: "".into(),
                class_id: 0,
                method_id: 0,
            })),
        ),
        enc(1, AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {}))),
        enc(1, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))),
        enc(2, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))),
        raw(8, 0, b""),
    ];
    let mut rng = StdRng::seed_from_u64(0x434f_4e4e);
    for _ in 0..20_000 {
        let mut input = vec![rng.random::<u8>() & 0xFE]; // handshake first
        for _ in 0..rng.random_range(1..16) {
            let mut p = pieces[rng.random_range(0..pieces.len())].clone();
            if rng.random_bool(0.1) && !p.is_empty() {
                let i = rng.random_range(0..p.len());
                p[i] = rng.random();
            }
            if rng.random_bool(0.05) {
                p.truncate(rng.random_range(0..=p.len()));
            }
            if rng.random_bool(0.3) {
                // The same frame on another channel.
                let ch = rng.random_range(0..4u16);
                if p.len() > 3 {
                    p[1..3].copy_from_slice(&ch.to_be_bytes());
                }
            }
            input.extend(p);
        }
        warren::protocol::fuzz_connection(&input);
    }
    // And raw garbage from the first byte, handshake included.
    for _ in 0..20_000 {
        let n = rng.random_range(0..64);
        let input: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        warren::protocol::fuzz_connection(&input);
    }
}

/// The `connection` target's committed corpus (fuzz/corpus/connection/):
/// whole sessions, deep headers and deep arguments among them, on a tokio
/// worker's stack, and every prefix of each.
#[test]
fn the_connection_corpus_never_panics() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/connection");
    let mut files: Vec<_> =
        std::fs::read_dir(&dir).expect("fuzz/corpus/connection").map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 8, "the committed corpus: {} files in {}", files.len(), dir.display());
    on_a_worker_sized_stack(move || {
        for f in files {
            let seed = std::fs::read(&f).unwrap();
            warren::protocol::fuzz_connection(&seed);
            for cut in (0..seed.len()).step_by(seed.len() / 64 + 1) {
                warren::protocol::fuzz_connection(&seed[..cut]);
            }
        }
    });
}
