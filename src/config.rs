//! Broker settings, shared by the binary's flags and the embedding API.

pub mod rabbitmq_conf;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use crate::tls::{CertLogin, SanKind, TlsSettings};

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
    /// RabbitMQ's `max_message_size`: a publish whose content header
    /// announces a larger body is refused (406) before any body is read.
    pub max_message_size: u64,
    /// RabbitMQ's `handshake_timeout`: how long a client has from TCP
    /// accept to connection.open, so half-open sockets do not pile up.
    pub handshake_timeout: std::time::Duration,
    /// New AMQP connections accepted per second (`warren.connection_rate_limit`;
    /// RabbitMQ has no such key). `None`: accept as fast as they come. See
    /// `server::rate` for why excess connections wait instead of being closed.
    pub connection_rate_limit: Option<u32>,
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
    /// The disk alarm threshold (RabbitMQ's disk_free_limit): publishers are
    /// blocked while the data directory's filesystem has less free space.
    pub disk_free_limit: DiskFreeLimit,
    /// RabbitMQ's `loopback_users`: when true (the default) the user
    /// `guest` may only log in from a loopback address.
    pub guest_loopback_only: bool,
    /// What every timer and TTL reads. `Clock::real()` in production; a test
    /// (or an embedder) may pass `Clock::manual()` and move time itself.
    pub clock: crate::clock::Clock,
    /// What the sockets' own timers read: heartbeats, the handshake and
    /// close deadlines. Real even when `clock` is virtual, because a
    /// client's heartbeat timer runs on real time; a test of those timers
    /// may give the same manual clock as `clock`.
    pub socket_clock: crate::clock::Clock,
    /// Serves `/api/warren/faults/...` (administrators only), which makes
    /// the broker misbehave on purpose for client-resilience tests. Off
    /// unless `--allow-fault-injection`.
    pub allow_fault_injection: bool,
    /// The management HTTP API and UI (RabbitMQ's 15672); `None` turns it
    /// off, `Some(0)` picks a free port (`Server::management_addr`).
    pub management_port: Option<u16>,
    /// Where the management API listens; `None`: the AMQP `bind` address.
    pub management_bind: Option<IpAddr>,
    /// Prometheus metrics (rabbitmq_prometheus's 15692); `None` turns them
    /// off, `Some(0)` picks a free port (`Server::prometheus_addr`).
    pub prometheus_port: Option<u16>,
    /// The plain AMQP listener (`listeners.tcp = none` turns it off, for a
    /// TLS-only node).
    pub tcp_listener: bool,
    /// AMQPS: the certificate, key and peer verification (`ssl_options.*`,
    /// `--tls-*`); `None`: no TLS listener.
    pub tls: Option<TlsSettings>,
    /// The AMQPS port (`listeners.ssl.default`, `--tls-port`); 0 picks one.
    pub tls_port: u16,
    /// Where AMQPS listens; `None`: `bind`.
    pub tls_bind: Option<IpAddr>,
    /// A TLS handshake not done by then is dropped (`ssl_handshake_timeout`).
    pub tls_handshake_timeout: Duration,
    /// Where EXTERNAL takes the user name from (`ssl_cert_login_from`).
    pub cert_login: CertLogin,
    /// HTTPS for the management API (`management.ssl.port` and
    /// `management.ssl.*`): the port and its TLS settings.
    pub management_tls: Option<(u16, TlsSettings)>,
    /// HTTPS for Prometheus (`prometheus.ssl.port`, `prometheus.ssl.*`).
    pub prometheus_tls: Option<(u16, TlsSettings)>,
    /// Logins: the hash new users' passwords get (`password_hashing_module`).
    pub password_hashing: crate::broker::HashingAlgorithm,
    /// Logins: OAuth 2.0 tokens (`auth_backends.*`, `auth_oauth2.*`).
    pub oauth2: crate::broker::oauth2::OAuth2Settings,
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
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            handshake_timeout: std::time::Duration::from_secs(10),
            connection_rate_limit: None,
            data_dir: None,
            definitions: None,
            memory_high_watermark: 0.4,
            queue_memory_budget: 32 * 1024 * 1024,
            disk_free_limit: DiskFreeLimit::Bytes(50_000_000),
            guest_loopback_only: true,
            clock: crate::clock::Clock::real(),
            socket_clock: crate::clock::Clock::real(),
            allow_fault_injection: false,
            management_port: Some(15672),
            management_bind: None,
            prometheus_port: Some(15692),
            tcp_listener: true,
            tls: None,
            tls_port: 5671,
            tls_bind: None,
            tls_handshake_timeout: Duration::from_secs(5),
            cert_login: CertLogin::default(),
            management_tls: None,
            prometheus_tls: None,
            password_hashing: Default::default(),
            oauth2: Default::default(),
        }
    }
}

/// RabbitMQ 3.10+'s default `max_message_size` (128 MiB).
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 128 * 1024 * 1024;
/// The largest `max_message_size` RabbitMQ accepts (512 MiB): its schema
/// refuses more, and so do we, so a conf file means the same on both.
pub const MAX_MAX_MESSAGE_SIZE: u64 = 512 * 1024 * 1024;

/// RabbitMQ's `disk_free_limit`: bytes, or a multiple of total RAM.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DiskFreeLimit {
    Bytes(u64),
    /// `disk_free_limit.relative` / `{mem_relative, X}`.
    RelativeToRam(f64),
}

impl DiskFreeLimit {
    /// `--disk-free-limit`: bytes with an optional information unit
    /// (`50000000`, `50MB`, `1GiB`), or `mem_relative:X` for X times RAM.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(x) = s.strip_prefix("mem_relative:") {
            let f: f64 = x.trim().parse().map_err(|_| format!("'{x}' is not a number"))?;
            if !(f.is_finite() && f >= 0.0) {
                return Err(format!("'{x}' is not a non-negative number"));
            }
            return Ok(DiskFreeLimit::RelativeToRam(f));
        }
        parse_information_unit(s).map(DiskFreeLimit::Bytes)
    }

    pub fn bytes(&self) -> u64 {
        match *self {
            DiskFreeLimit::Bytes(b) => b,
            DiskFreeLimit::RelativeToRam(f) => total_ram().map(|r| (r as f64 * f) as u64).unwrap_or(0),
        }
    }
}

/// `max_message_size` (conf key or `--max-message-size`): bytes, with
/// an optional unit, at most 512 MiB as RabbitMQ's schema says.
pub fn parse_max_message_size(s: &str) -> Result<u64, String> {
    let n = parse_information_unit(s)?;
    if n > MAX_MAX_MESSAGE_SIZE {
        return Err(format!(
            "{n} is larger than the largest max_message_size RabbitMQ allows ({MAX_MAX_MESSAGE_SIZE})"
        ));
    }
    Ok(n)
}

/// `warren.connection_rate_limit` / `--connection-rate-limit`: connections
/// per second, `0` or `none` for no limit.
pub fn parse_connection_rate_limit(s: &str) -> Result<Option<u32>, String> {
    match s.trim() {
        "none" | "0" => Ok(None),
        n => n
            .parse::<u32>()
            .map(Some)
            .map_err(|_| format!("'{n}' is not a number of connections per second (0 or none: no limit)")),
    }
}

/// A size as RabbitMQ 3.x reads one in its config: a number with an
/// optional unit. `kB`/`KB`, `MB`, `GB` are powers of 10; `k`/`K`, `kiB`/
/// `KiB`, `M`/`MiB`, `G`/`GiB` powers of 2 (rabbit_resource_monitor_misc).
pub fn parse_information_unit(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("'{s}' is not a size"))?;
    let mult: u64 = match unit.trim() {
        "" => 1,
        "kB" | "KB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "k" | "K" | "kiB" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        other => return Err(format!("unknown information unit '{other}' in '{s}' (use kB, MB, GB, KiB, MiB or GiB)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("'{s}' is too large"))
}

/// `"5671"`, `"127.0.0.1:5671"` or `":::5671"`: the host (unless any) and port.
fn split_listener(value: &str) -> (Option<&str>, &str) {
    let (host, port) = match value.rsplit_once(':') {
        Some((h, p)) => (Some(h.trim_matches(['[', ']'])), p),
        None => (None, value),
    };
    (host.filter(|h| !h.is_empty() && *h != "::"), port)
}

/// The HTTPS and certificate-login keys of a rabbitmq.conf, gathered while
/// reading it because their meaning depends on keys that may come later.
#[derive(Default)]
struct HttpsConf {
    management_port: Option<u16>,
    management: Option<TlsSettings>,
    prometheus_port: Option<u16>,
    prometheus: Option<TlsSettings>,
    san_kind: SanKind,
    san_index: usize,
}

impl HttpsConf {
    /// As RabbitMQ does: an `ssl` listener configured without a `tcp` one
    /// serves HTTPS only.
    fn apply(self, config: &mut Config, text: &str, explicit: &dyn Fn(&str) -> bool) -> Result<(), String> {
        let has_key = |k: &str| text.lines().any(|l| l.trim_start().starts_with(k));
        for (name, port, settings, default_port, tcp_key, slot, plain, flag) in [
            (
                "management.ssl",
                self.management_port,
                self.management,
                15671,
                "management.tcp.",
                &mut config.management_tls,
                &mut config.management_port,
                "management_port",
            ),
            (
                "prometheus.ssl",
                self.prometheus_port,
                self.prometheus,
                15691,
                "prometheus.tcp.",
                &mut config.prometheus_tls,
                &mut config.prometheus_port,
                "prometheus_port",
            ),
        ] {
            let Some(settings) = settings else { continue };
            if settings.cert.as_os_str().is_empty() || settings.key.as_os_str().is_empty() {
                return Err(format!("{name} needs both {name}.certfile and {name}.keyfile"));
            }
            *slot = Some((port.unwrap_or(default_port), settings));
            if !has_key(tcp_key) && !explicit(flag) {
                *plain = None;
            }
        }
        Ok(())
    }
}

/// MemTotal from /proc/meminfo, in bytes.
fn total_ram() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl Config {
    /// Applies a RabbitMQ `rabbitmq.conf` (the new-style `key = value`
    /// format, read as cuttlefish reads it: see [`rabbitmq_conf`]) so a
    /// node's existing config file works. Settings the user gave
    /// explicitly (flags or env, per `explicit`) win over the file. Keys
    /// Warren has no use for are returned, so the caller can say so.
    pub fn apply_rabbitmq_conf(&mut self, text: &str, explicit: &dyn Fn(&str) -> bool) -> Result<Vec<String>, String> {
        let mut ignored = Vec::new();
        let mut https = HttpsConf::default();
        for entry in rabbitmq_conf::parse(text).map_err(|e| e.to_string())? {
            let (key, value) = match entry.item {
                rabbitmq_conf::Item::Setting { key, value } => (key, value),
                rabbitmq_conf::Item::Include(path) => {
                    ignored.push(format!("include {path}"));
                    continue;
                }
            };
            let line = entry.line;
            let bad = |what: &str| format!("line {line}: {key} = {value}: {what}");
            match key {
                "listeners.tcp.default" | "listeners.tcp.1" if !explicit("port") && !explicit("bind") => {
                    let (host, port) = split_listener(value);
                    self.port = port.parse().map_err(|_| bad("not a port"))?;
                    if let Some(h) = host {
                        self.bind = h.parse().map_err(|_| bad("not an IP address"))?;
                    }
                }
                "default_user" if !explicit("default_user") => self.default_user = value.to_owned(),
                "default_pass" if !explicit("default_pass") => self.default_pass = value.to_owned(),
                "default_vhost" if !explicit("default_vhost") => self.default_vhost = value.to_owned(),
                "load_definitions" if !explicit("definitions") => self.definitions = Some(PathBuf::from(value)),
                "heartbeat" if !explicit("heartbeat") => {
                    self.heartbeat = value.parse().map_err(|_| bad("not a number"))?
                }
                "frame_max" if !explicit("frame_max") => {
                    self.frame_max = value.parse().map_err(|_| bad("not a number"))?
                }
                "channel_max" if !explicit("channel_max") => {
                    self.channel_max = value.parse().map_err(|_| bad("not a number"))?
                }
                "max_message_size" if !explicit("max_message_size") => {
                    self.max_message_size = parse_max_message_size(value).map_err(|e| bad(&e))?
                }
                "handshake_timeout" if !explicit("handshake_timeout") => {
                    let ms: u64 = value.parse().map_err(|_| bad("not a number of milliseconds"))?;
                    self.handshake_timeout = std::time::Duration::from_millis(ms);
                }
                "warren.connection_rate_limit" if !explicit("connection_rate_limit") => {
                    self.connection_rate_limit = parse_connection_rate_limit(value).map_err(|e| bad(&e))?
                }
                "vm_memory_high_watermark.relative" if !explicit("memory_high_watermark") => {
                    self.memory_high_watermark = value.parse().map_err(|_| bad("not a number"))?
                }
                "vm_memory_high_watermark.absolute" if !explicit("memory_high_watermark") => {
                    let n = parse_information_unit(value).map_err(|e| bad(&e))?;
                    // Above 1.0 the watermark is read as bytes.
                    self.memory_high_watermark = (n as f64).max(2.0);
                }
                "disk_free_limit.absolute" if !explicit("disk_free_limit") => {
                    self.disk_free_limit = DiskFreeLimit::Bytes(parse_information_unit(value).map_err(|e| bad(&e))?);
                }
                "disk_free_limit.relative" if !explicit("disk_free_limit") => {
                    let f: f64 = value.parse().map_err(|_| bad("not a number"))?;
                    self.disk_free_limit = DiskFreeLimit::RelativeToRam(f);
                }
                "management.tcp.port" if !explicit("management_port") => {
                    let port: u16 = value.parse().map_err(|_| bad("not a port"))?;
                    self.management_port = (port != 0).then_some(port);
                }
                "management.tcp.ip" if !explicit("management_bind") => {
                    self.management_bind = Some(value.parse().map_err(|_| bad("not an IP address"))?)
                }
                "prometheus.tcp.port" if !explicit("prometheus_port") => {
                    let port: u16 = value.parse().map_err(|_| bad("not a port"))?;
                    self.prometheus_port = (port != 0).then_some(port);
                }
                "listeners.tcp" if value == "none" && !explicit("port") => self.tcp_listener = false,
                "listeners.ssl.default" | "listeners.ssl.1" if !explicit("tls_port") => {
                    let (host, port) = split_listener(value);
                    self.tls_port = port.parse().map_err(|_| bad("not a port"))?;
                    if let Some(h) = host {
                        self.tls_bind = Some(h.parse().map_err(|_| bad("not an IP address"))?);
                    }
                }
                "ssl_handshake_timeout" => {
                    self.tls_handshake_timeout =
                        Duration::from_millis(value.parse().map_err(|_| bad("not a number of milliseconds"))?)
                }
                "ssl_cert_login_from" => {
                    self.cert_login = match value {
                        "distinguished_name" => CertLogin::DistinguishedName,
                        "common_name" => CertLogin::CommonName,
                        "subject_alternative_name" | "subject_alt_name" => {
                            CertLogin::SubjectAltName { kind: https.san_kind, index: https.san_index }
                        }
                        _ => return Err(bad("expected distinguished_name, common_name or subject_alternative_name")),
                    }
                }
                "ssl_cert_login_san_type" => {
                    https.san_kind =
                        SanKind::parse(value).ok_or_else(|| bad("expected dns, ip, email, uri or other_name"))?
                }
                "ssl_cert_login_san_index" => https.san_index = value.parse().map_err(|_| bad("not an index"))?,
                k if k.starts_with("ssl_options.") && !explicit("tls_cert") => {
                    if !TlsSettings::apply_conf(&mut self.tls, &k["ssl_options.".len()..], value)
                        .map_err(|e| bad(&e))?
                    {
                        ignored.push(key.to_owned());
                    }
                }
                "management.ssl.port" => https.management_port = Some(value.parse().map_err(|_| bad("not a port"))?),
                "prometheus.ssl.port" => https.prometheus_port = Some(value.parse().map_err(|_| bad("not a port"))?),
                k if k.starts_with("management.ssl.") => {
                    if !TlsSettings::apply_conf(&mut https.management, &k["management.ssl.".len()..], value)
                        .map_err(|e| bad(&e))?
                    {
                        ignored.push(key.to_owned());
                    }
                }
                k if k.starts_with("prometheus.ssl.") => {
                    if !TlsSettings::apply_conf(&mut https.prometheus, &k["prometheus.ssl.".len()..], value)
                        .map_err(|e| bad(&e))?
                    {
                        ignored.push(key.to_owned());
                    }
                }
                "loopback_users" if value == "none" => self.guest_loopback_only = false,
                "loopback_users.guest" => self.guest_loopback_only = value == "true",
                "password_hashing_module" => {
                    self.password_hashing = crate::broker::HashingAlgorithm::parse(value).map_err(|e| bad(&e))?
                }
                k if k.starts_with("auth_backends.") || k.starts_with("auth_oauth2.") => {
                    self.oauth2.apply(k, value).map_err(|e| bad(&e))?
                }
                // Known, but a flag or env var said otherwise.
                "listeners.tcp.default"
                | "listeners.tcp.1"
                | "default_user"
                | "default_pass"
                | "default_vhost"
                | "load_definitions"
                | "management.tcp.port"
                | "management.tcp.ip"
                | "prometheus.tcp.port"
                | "heartbeat"
                | "frame_max"
                | "channel_max"
                | "max_message_size"
                | "handshake_timeout"
                | "warren.connection_rate_limit"
                | "vm_memory_high_watermark.relative"
                | "vm_memory_high_watermark.absolute"
                | "disk_free_limit.absolute"
                | "disk_free_limit.relative"
                | "loopback_users"
                | "listeners.tcp"
                | "listeners.ssl.default"
                | "listeners.ssl.1" => {}
                _ => ignored.push(key.to_owned()),
            }
        }
        if let CertLogin::SubjectAltName { kind, index } = &mut self.cert_login {
            // The SAN type and index may come after ssl_cert_login_from.
            (*kind, *index) = (https.san_kind, https.san_index);
        }
        https.apply(self, text, explicit)?;
        if let Some(tls) = &self.tls {
            if tls.cert.as_os_str().is_empty() || tls.key.as_os_str().is_empty() {
                return Err("ssl_options needs both certfile and keyfile for the AMQPS listener".into());
            }
        }
        Ok(ignored)
    }

    /// The memory alarm threshold in bytes, if any.
    pub fn memory_limit(&self) -> Option<u64> {
        let w = self.memory_high_watermark;
        if w <= 0.0 {
            return None;
        }
        if w > 1.0 {
            return Some(w as u64);
        }
        Some((total_ram()? as f64 * w) as u64)
    }

    /// `$XDG_DATA_HOME/warren`, else `~/.local/share/warren`.
    pub fn default_data_dir() -> Option<PathBuf> {
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
            return Some(PathBuf::from(x).join("warren"));
        }
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/warren"))
    }

    /// 127.0.0.1 on a free port, in memory, without the HTTP listeners
    /// (a test that wants them sets their ports to `Some(0)`).
    pub fn ephemeral() -> Self {
        Config {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            management_port: None,
            prometheus_port: None,
            ..Config::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rabbitmq_conf_applies_unless_given_explicitly() {
        let conf = "# a node's rabbitmq.conf\nlisteners.tcp.default = 127.0.0.1:5999\ndefault_user = alice\n\
                    default_pass = s3cret\nload_definitions = /etc/rabbitmq/defs.json\nloopback_users.guest = false\n\
                    vm_memory_high_watermark.absolute = 2GB\nmanagement.tcp.port = 15999\nmanagement.tcp.ip = 127.0.0.1\n\
                    prometheus.tcp.port = 0\nmqtt.listeners.tcp.default = 1883\n";
        let mut c = Config::default();
        let ignored = c.apply_rabbitmq_conf(conf, &|id| id == "default_user").unwrap();
        assert_eq!(c.port, 5999);
        assert_eq!(c.bind, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(c.default_user, "guest", "an explicit flag wins");
        assert_eq!(c.default_pass, "s3cret");
        assert_eq!(c.definitions, Some(PathBuf::from("/etc/rabbitmq/defs.json")));
        assert!(!c.guest_loopback_only);
        assert_eq!(c.memory_high_watermark, 2e9, "RabbitMQ reads GB as 10^9 bytes");
        assert_eq!(c.management_port, Some(15999));
        assert_eq!(c.management_bind, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(c.prometheus_port, None, "0 turns it off");
        assert_eq!(ignored, vec!["mqtt.listeners.tcp.default"]);
        assert!(Config::default().apply_rabbitmq_conf("no equals sign", &|_| false).is_err());
        assert!(Config::default().apply_rabbitmq_conf("listeners.tcp.default = x", &|_| false).is_err());
        let mut c = Config::default();
        c.apply_rabbitmq_conf("disk_free_limit.absolute = 2GiB", &|_| false).unwrap();
        assert_eq!(c.disk_free_limit, DiskFreeLimit::Bytes(2 << 30));
        c.apply_rabbitmq_conf("disk_free_limit.relative = 1.5", &|_| false).unwrap();
        assert_eq!(c.disk_free_limit, DiskFreeLimit::RelativeToRam(1.5));
    }

    #[test]
    fn limits_from_rabbitmq_conf() {
        let mut c = Config::default();
        assert_eq!(c.max_message_size, 128 << 20);
        assert_eq!(c.handshake_timeout, std::time::Duration::from_secs(10));
        assert_eq!(c.connection_rate_limit, None);
        let conf = "max_message_size = 1048576\nhandshake_timeout = 2500\nwarren.connection_rate_limit = 200\n\
                    heartbeat = 30\nframe_max = 65536\nchannel_max = 128\n";
        assert!(c.apply_rabbitmq_conf(conf, &|_| false).unwrap().is_empty());
        assert_eq!(c.max_message_size, 1 << 20);
        assert_eq!(c.handshake_timeout, std::time::Duration::from_millis(2500));
        assert_eq!(c.connection_rate_limit, Some(200));
        assert_eq!((c.heartbeat, c.frame_max, c.channel_max), (30, 65536, 128));
        c.apply_rabbitmq_conf("max_message_size = 64MiB\nwarren.connection_rate_limit = none", &|_| false).unwrap();
        assert_eq!(c.max_message_size, 64 << 20);
        assert_eq!(c.connection_rate_limit, None);
        let mut c = Config::default();
        c.apply_rabbitmq_conf("max_message_size = 1000", &|id| id == "max_message_size").unwrap();
        assert_eq!(c.max_message_size, 128 << 20, "a flag wins");
        let err = Config::default().apply_rabbitmq_conf("max_message_size = 536870913", &|_| false).unwrap_err();
        assert!(err.contains("largest max_message_size"), "{err}");
        assert!(Config::default().apply_rabbitmq_conf("handshake_timeout = 10s", &|_| false).is_err());
        assert!(Config::default().apply_rabbitmq_conf("warren.connection_rate_limit = fast", &|_| false).is_err());
        assert!(Config::default().apply_rabbitmq_conf("heartbeat = -1", &|_| false).is_err());
    }

    #[test]
    fn a_password_with_a_hash_needs_quotes_as_in_rabbitmq() {
        let mut c = Config::default();
        c.apply_rabbitmq_conf(
            "default_pass = s3#cret # rotated monthly
",
            &|_| false,
        )
        .unwrap();
        assert_eq!(c.default_pass, "s3", "unquoted, '#' starts a comment (RabbitMQ reads 's3' too)");
        c.apply_rabbitmq_conf(
            "default_pass = 's3#cret' # rotated monthly
default_user = 'a b'
",
            &|_| false,
        )
        .unwrap();
        assert_eq!((c.default_user.as_str(), c.default_pass.as_str()), ("a b", "s3#cret"));
        // The last setting of a key wins; includes are reported, not followed.
        let ignored = c
            .apply_rabbitmq_conf(
                "heartbeat = 10
heartbeat = 20
include /etc/rabbitmq/conf.d/*.conf
",
                &|_| false,
            )
            .unwrap();
        assert_eq!(c.heartbeat, 20);
        assert_eq!(ignored, vec!["include /etc/rabbitmq/conf.d/*.conf"]);
        let err = Config::default()
            .apply_rabbitmq_conf(
                "a = 1
default_pass = 'x' y
",
                &|_| false,
            )
            .unwrap_err();
        assert!(err.starts_with("line 2: expected 'key = value'"), "{err}");
    }

    #[test]
    fn tls_keys_read_as_rabbitmq_reads_them() {
        let conf = "listeners.tcp = none\nlisteners.ssl.default = 127.0.0.1:5999\n\
                    ssl_options.certfile = /etc/certs/server.pem\nssl_options.keyfile = /etc/certs/server.key\n\
                    ssl_options.cacertfile = /etc/certs/ca.pem\nssl_options.verify = verify_peer\n\
                    ssl_options.fail_if_no_peer_cert = true\nssl_options.versions.1 = tlsv1.2\n\
                    ssl_options.honor_cipher_order = true\nssl_handshake_timeout = 2500\n\
                    ssl_cert_login_from = subject_alternative_name\nssl_cert_login_san_type = email\n\
                    ssl_cert_login_san_index = 1\nmanagement.ssl.port = 15999\n\
                    management.ssl.certfile = /m.pem\nmanagement.ssl.keyfile = /m.key\n";
        let mut c = Config::default();
        let ignored = c.apply_rabbitmq_conf(conf, &|_| false).unwrap();
        assert!(!c.tcp_listener);
        assert_eq!((c.tls_bind, c.tls_port), (Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), 5999));
        let tls = c.tls.clone().unwrap();
        assert_eq!(tls.cert, PathBuf::from("/etc/certs/server.pem"));
        assert_eq!(tls.ca, Some(PathBuf::from("/etc/certs/ca.pem")));
        assert!(tls.verify_peer && tls.fail_if_no_peer_cert);
        assert_eq!(tls.versions, vec![crate::tls::TlsVersion::Tls12]);
        assert_eq!(c.tls_handshake_timeout, Duration::from_millis(2500));
        assert_eq!(c.cert_login, CertLogin::SubjectAltName { kind: SanKind::Email, index: 1 });
        let (port, m) = c.management_tls.clone().unwrap();
        assert_eq!((port, m.cert.to_str()), (15999, Some("/m.pem")));
        assert_eq!(c.management_port, None, "an ssl listener without a tcp one: HTTPS only, as in RabbitMQ");
        assert_eq!(c.prometheus_port, Some(15692), "untouched");
        assert_eq!(ignored, vec!["ssl_options.honor_cipher_order"]);
        // Both listeners when both are configured.
        let mut c = Config::default();
        c.apply_rabbitmq_conf(
            "management.tcp.port = 15672\nmanagement.ssl.certfile = /m.pem\nmanagement.ssl.keyfile = /m.key",
            &|_| false,
        )
        .unwrap();
        assert_eq!((c.management_port, c.management_tls.map(|t| t.0)), (Some(15672), Some(15671)));
        for bad in [
            "ssl_options.certfile = /c.pem",
            "ssl_options.versions.1 = tlsv1.1",
            "management.ssl.certfile = /m.pem",
            "ssl_cert_login_from = fingerprint",
        ] {
            assert!(Config::default().apply_rabbitmq_conf(bad, &|_| false).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_read_as_rabbitmq_reads_them() {
        assert_eq!(parse_information_unit("50000000"), Ok(50_000_000));
        assert_eq!(parse_information_unit("50MB"), Ok(50_000_000));
        assert_eq!(parse_information_unit("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_information_unit("1GiB"), Ok(1 << 30));
        assert_eq!(parse_information_unit("512M"), Ok(512 << 20));
        assert!(parse_information_unit("12XB").is_err());
        assert!(parse_information_unit("MB").is_err());
        assert_eq!(DiskFreeLimit::parse("mem_relative:1.5"), Ok(DiskFreeLimit::RelativeToRam(1.5)));
        assert!(DiskFreeLimit::parse("mem_relative:-1").is_err());
    }
}
