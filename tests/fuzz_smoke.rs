//! A bounded, seeded stand-in for the cargo-fuzz target that runs in CI on
//! stable Rust: mutated valid frames and random bytes through every decoder a
//! client reaches. Crash-free is the property (a panic fails the test).

use rand::{rngs::StdRng, Rng, SeedableRng};

fn seeds() -> Vec<Vec<u8>> {
    let frame = |kind: u8, payload: &[u8]| {
        let mut v = vec![kind, 0, 1];
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(payload);
        v.push(0xCE);
        v
    };
    vec![
        frame(1, &[0, 60, 0, 40, 0, 0, 3, b'a', b'm', b'q', 1, b'k', 3]),
        frame(1, &[0, 50, 0, 10, 0, 0, 1, b'q', 0, 0, 0, 0, 0]),
        frame(1, &[0, 60, 0, 80, 0, 0, 0, 0, 0, 0, 0, 9, 1]),
        frame(
            1,
            &[0, 10, 0, 11, 0, 0, 0, 0, 5, b'P', b'L', b'A', b'I', b'N', 0, 0, 0, 0, 5, b'e', b'n', b'_', b'U', b'S'],
        ),
        frame(2, &[0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0x30, 0, 0, 0, 0, 4, b'h', 0, 0, 0, 0, 2]),
        frame(3, b"abc"),
        frame(8, b""),
    ]
}

#[test]
fn random_and_mutated_input_never_panics() {
    let mut rng = StdRng::seed_from_u64(0x5741_5252_454e);
    let seeds = seeds();
    for _ in 0..200_000 {
        let mut input = seeds[rng.random_range(0..seeds.len())].clone();
        if rng.random_bool(0.3) {
            input.extend_from_slice(&seeds[rng.random_range(0..seeds.len())]);
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
}
