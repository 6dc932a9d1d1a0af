//! Broker settings, shared by the binary's flags and the embedding API.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

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
    /// Where durable definitions and persistent messages live; `None` keeps
    /// everything in memory (durable flags are accepted, nothing is written).
    pub data_dir: Option<PathBuf>,
    /// A RabbitMQ definitions file imported at start.
    pub definitions: Option<PathBuf>,
    /// The memory alarm threshold (RabbitMQ's vm_memory_high_watermark): a
    /// fraction of total RAM when ≤ 1.0, else bytes. 0 disables the alarm.
    pub memory_high_watermark: f64,
    /// Message bytes one queue keeps in RAM; beyond it newer messages are
    /// paged to disk (needs a data directory).
    pub queue_memory_budget: u64,
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
            data_dir: None,
            definitions: None,
            memory_high_watermark: 0.4,
            queue_memory_budget: 32 * 1024 * 1024,
        }
    }
}

impl Config {
    /// The memory alarm threshold in bytes, if any.
    pub fn memory_limit(&self) -> Option<u64> {
        let w = self.memory_high_watermark;
        if w <= 0.0 {
            return None;
        }
        if w > 1.0 {
            return Some(w as u64);
        }
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some((kb * 1024.0 * w) as u64)
    }

    /// `$XDG_DATA_HOME/warren`, else `~/.local/share/warren`.
    pub fn default_data_dir() -> Option<PathBuf> {
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
            return Some(PathBuf::from(x).join("warren"));
        }
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/warren"))
    }

    /// 127.0.0.1 on a free port, in memory: what tests want.
    pub fn ephemeral() -> Self {
        Config { bind: IpAddr::V4(Ipv4Addr::LOCALHOST), port: 0, ..Config::default() }
    }
}
