//! Link flags for Warren's binaries (the library is untouched).
//!
//! On glibc Linux the executable's ~26,000 relative relocations are packed
//! as RELR (`-z pack-relative-relocs`; glibc 2.36+, rust-lld or GNU ld
//! 2.38+): the dynamic loader applies them from a 7.6 KB bitmap instead of
//! a 630 KB table, about a third of start-to-ready (3.0 -> 2.0 ms
//! median to the AMQP port, in memory). The binary stays position
//! independent, so ASLR is kept (a non-PIE link saved as much time, and
//! 440 KB of dirty pages, but gives ASLR up). `WARREN_NO_RELR=1` links
//! without it, for an older glibc.
fn main() {
    println!("cargo:rerun-if-env-changed=WARREN_NO_RELR");
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if linux_gnu && std::env::var_os("WARREN_NO_RELR").is_none() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
