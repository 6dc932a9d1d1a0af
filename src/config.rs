//! Broker settings, shared by the binary's flags and the embedding API.

use std::net::{IpAddr, Ipv4Addr};

/// Broker start-up settings. `Config::default()` is what `warren` with no
/// arguments uses: 0.0.0.0:5672, guest/guest, vhost `/`.
#[derive(Clone, Debug)]
pub struct Config {
    pub bind: IpAddr,
    /// 0 picks a free port; `Server::local_addr` reports it.
    pub port: u16,
    pub default_user: String,
    pub default_pass: String,
    pub default_vhost: String,
    /// Heartbeat interval we propose in connection.tune, seconds (0 = off).
    pub heartbeat: u16,
    /// Largest frame we accept and propose, header and end octet included.
    pub frame_max: u32,
    pub channel_max: u16,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 5672,
            default_user: "guest".into(),
            default_pass: "guest".into(),
            default_vhost: "/".into(),
            heartbeat: 60,
            frame_max: 131072,
            channel_max: 2047,
        }
    }
}

impl Config {
    /// 127.0.0.1 on a free port: what tests want.
    pub fn ephemeral() -> Self {
        Config { bind: IpAddr::V4(Ipv4Addr::LOCALHOST), port: 0, ..Config::default() }
    }
}
