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
