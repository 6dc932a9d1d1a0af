//! Feeds arbitrary bytes through the frame splitter and every decoder a
//! client's bytes reach. Crash-free is the property.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    warren::protocol::fuzz_input(data);
});
