//! Drives the sans-IO connection state machine (`warren::protocol::Connection`,
//! through `warren::protocol::fuzz_connection`): a handshake (or not), then
//! the input as reads of varying size, through channels, every method,
//! content, deliveries, confirms, transactions and closes, with a manual
//! clock moved between reads so heartbeats and deadlines fire too.
//! Crash-free is the property, and everything the broker writes must parse
//! as frames. Inputs run on a small-stack worker (see worker.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "worker.rs"]
mod worker;

fuzz_target!(|data: &[u8]| worker::fuzz_on_worker(warren::protocol::fuzz_connection, data));
