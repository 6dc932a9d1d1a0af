//! Feeds arbitrary bytes through the frame splitter, every decoder a
//! client's bytes reach, and the raw field-table walker and edits
//! (`warren::protocol::fuzz_input`). Crash-free is the property, and so are
//! the invariants fuzz_input asserts. Inputs run on a small-stack worker
//! (see worker.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "worker.rs"]
mod worker;

fuzz_target!(|data: &[u8]| worker::fuzz_on_worker(|d| { let _ = warren::protocol::fuzz_input(d); }, data));
