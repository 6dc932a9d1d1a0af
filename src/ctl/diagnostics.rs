//! The rabbitmq-diagnostics verbs health checks call (ping, check_running,
//! check_port_connectivity) and the rabbitmq-plugins personality.
//!
//! rabbitmq-diagnostics asks an Erlang node; here "the node" is the
//! management API: it answering `/api/overview` is the ping, and the
//! listeners it reports are the ports checked.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::Value;

use super::client::exit;
use super::{Failure, Invocation, Io, Tool};

pub fn run(inv: &Invocation, io: &mut Io) -> Result<(), Failure> {
    match inv.verb.as_deref() {
        Some("ping") => ping(inv, io),
        Some("check_running") => check_running(inv, io),
        Some("check_port_connectivity") => check_port_connectivity(inv, io),
        Some("check_local_alarms") => health(
            inv,
            io,
            "/api/health/checks/local-alarms",
            "Asking node {node} to report any local resource alarms ...",
            "Node {node} reported no local alarms",
        ),
        Some("check_alarms") => health(
            inv,
            io,
            "/api/health/checks/alarms",
            "Asking node {node} to report any local resource alarms ...",
            "Node {node} reported no alarms, local or clusterwide",
        ),
        Some("check_virtual_hosts") => health(
            inv,
            io,
            "/api/health/checks/virtual-hosts",
            "Checking if all vhosts are running on node {node} ...",
            "Node {node} reported all vhosts as running",
        ),
        Some(verb) if super::rabbitmqctl::VERBS.iter().any(|(v, _)| *v == verb) => super::rabbitmqctl::run(inv, io),
        Some(other) => Err(Failure::bare(exit::USAGE, format!("\nCommand '{other}' not found. \n\n{}", usage()))),
        None => Err(Failure::bare(exit::USAGE, usage())),
    }
}

fn usage() -> String {
    "Usage\n\nrabbitmq-diagnostics [--node <node>] [--timeout <timeout>] [--quiet] <command> [<command options>]\n\n\
     Talks to a management HTTP API (--url, env WARREN_MANAGEMENT_URL, default http://127.0.0.1:15672);\n\
     -n/--node is accepted and ignored.\n\nAvailable commands:\n\n   ping\n   check_running\n   check_port_connectivity\n   check_local_alarms\n   check_alarms\n   check_virtual_hosts\n   status\n"
        .to_owned()
}

fn banner(inv: &Invocation, io: &mut Io, line: &str) {
    if !inv.options.quiet && !inv.options.silent {
        io.println(line);
    }
}

/// The overview, or the failure rabbitmq-diagnostics reports for a node it cannot reach.
fn overview(inv: &Invocation) -> Result<Value, Failure> {
    inv.api().get_json("/api/overview")
}

fn node_name(inv: &Invocation, overview: &Value) -> String {
    match (&inv.options.node, overview.get("node").and_then(Value::as_str)) {
        (Some(n), _) => n.clone(),
        (None, Some(n)) => n.to_owned(),
        (None, None) => inv.options.url.clone(),
    }
}

fn timeout_ms(inv: &Invocation) -> u64 {
    (inv.options.timeout.unwrap_or(60.0) * 1000.0) as u64
}

fn ping(inv: &Invocation, io: &mut Io) -> Result<(), Failure> {
    let ms = timeout_ms(inv);
    let label = inv.node_label();
    banner(inv, io, &format!("Will ping {label}. This only checks if the management API answers. Timeout: {ms} ms."));
    match overview(inv) {
        Ok(_) => {
            io.println("Ping succeeded");
            Ok(())
        }
        Err(f) => Err(Failure::new(
            exit::UNAVAILABLE,
            format!("Failed to connect and authenticate to {label} in {ms} ms\n{}", f.message),
        )),
    }
}

/// A check the management API answers under `/api/health/checks/`: 200
/// `{"status":"ok"}`, or 503 with a reason (and the alarms in effect).
fn health(inv: &Invocation, io: &mut Io, path: &str, banner_text: &str, ok_text: &str) -> Result<(), Failure> {
    let o = overview(inv).inspect_err(|_| banner(inv, io, &banner_text.replace("{node}", &inv.node_label())))?;
    let node = node_name(inv, &o);
    banner(inv, io, &banner_text.replace("{node}", &node));
    let api = inv.api();
    let response = api.get(path)?;
    if response.ok() {
        io.println(&ok_text.replace("{node}", &node));
        return Ok(());
    }
    if response.status != 503 {
        return Err(api.unexpected("GET", path, &response));
    }
    let mut message = response.reason();
    if let Ok(body) = serde_json::from_str::<Value>(&response.body) {
        for alarm in body.get("alarms").and_then(Value::as_array).into_iter().flatten() {
            let resource = alarm.get("resource").and_then(Value::as_str).unwrap_or("?");
            let on = alarm.get("node").and_then(Value::as_str).unwrap_or(&node);
            message.push_str(&format!("\nNode {on} reported an alarm: {resource}"));
        }
    }
    Err(Failure::new(exit::UNAVAILABLE, message))
}

fn check_running(inv: &Invocation, io: &mut Io) -> Result<(), Failure> {
    match overview(inv) {
        Ok(o) => {
            let node = node_name(inv, &o);
            banner(inv, io, &format!("Checking if RabbitMQ is running on node {node} ..."));
            io.println(&format!("RabbitMQ on node {node} is fully booted and running"));
            Ok(())
        }
        Err(f) => {
            banner(inv, io, &format!("Checking if RabbitMQ is running on node {} ...", inv.node_label()));
            Err(Failure::new(exit::UNAVAILABLE, f.message))
        }
    }
}

/// The addresses to try for one listener. A wildcard listener (`::`,
/// `0.0.0.0`) is reached through the host of the management URL.
pub fn listener_addrs(listener: &Value, url_host: &str) -> Vec<SocketAddr> {
    let Some(port) = listener.get("port").and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok()) else {
        return Vec::new();
    };
    let ip = listener.get("ip_address").and_then(Value::as_str).unwrap_or("");
    let host = if ip.is_empty() || ip == "::" || ip == "0.0.0.0" { url_host } else { ip };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (host, port).to_socket_addrs().map(|a| a.collect()).unwrap_or_default()
}

/// The host part of an `http://host:port/...` URL.
pub fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or("");
    let authority = authority.rsplit_once('@').map(|(_, a)| a).unwrap_or(authority);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("").to_owned();
    }
    authority.split(':').next().unwrap_or("").to_owned()
}

fn check_port_connectivity(inv: &Invocation, io: &mut Io) -> Result<(), Failure> {
    let o = overview(inv).inspect_err(|_| {
        banner(inv, io, &format!("Testing TCP connections to all active listeners on node {} ...", inv.node_label()));
    })?;
    let node = node_name(inv, &o);
    banner(inv, io, &format!("Testing TCP connections to all active listeners on node {node} ..."));
    let host = url_host(&inv.options.url);
    let per_port = Duration::from_secs_f64(inv.options.timeout.unwrap_or(60.0).clamp(0.1, 10.0));
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for listener in o.get("listeners").and_then(Value::as_array).into_iter().flatten() {
        let Some(port) = listener.get("port").and_then(Value::as_u64) else { continue };
        let addrs = listener_addrs(listener, &host);
        let reached = addrs.iter().any(|a| TcpStream::connect_timeout(a, per_port).is_ok());
        if reached {
            ok.push(port);
        } else {
            failed.push(port);
        }
    }
    ok.sort_unstable();
    ok.dedup();
    failed.sort_unstable();
    failed.dedup();
    let list = |ports: &[u64]| ports.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    if failed.is_empty() {
        io.println(&format!("Successfully connected to ports {} on node {node}.", list(&ok)));
        Ok(())
    } else {
        Err(Failure::new(
            exit::UNAVAILABLE,
            format!(
                "Connection to ports {} on node {node} failed (the management API reports them as listening)",
                list(&failed)
            ),
        ))
    }
}

/// RabbitMQ's plugins, with what Warren does about each: `true` when the
/// feature is built into Warren (or part of one that is), `false` when
/// Warren has no equivalent yet.
pub const PLUGINS: &[(&str, bool)] = &[
    ("rabbitmq_amqp1_0", false),
    ("rabbitmq_auth_backend_cache", false),
    ("rabbitmq_auth_backend_http", false),
    ("rabbitmq_auth_backend_ldap", false),
    ("rabbitmq_auth_backend_oauth2", false),
    ("rabbitmq_auth_mechanism_ssl", false),
    ("rabbitmq_consistent_hash_exchange", false),
    ("rabbitmq_event_exchange", false),
    ("rabbitmq_federation", false),
    ("rabbitmq_federation_management", false),
    ("rabbitmq_jms_topic_exchange", false),
    ("rabbitmq_management", true),
    ("rabbitmq_management_agent", true),
    ("rabbitmq_mqtt", false),
    ("rabbitmq_peer_discovery_aws", false),
    ("rabbitmq_peer_discovery_common", false),
    ("rabbitmq_peer_discovery_consul", false),
    ("rabbitmq_peer_discovery_etcd", false),
    ("rabbitmq_peer_discovery_k8s", false),
    ("rabbitmq_prometheus", true),
    ("rabbitmq_random_exchange", false),
    ("rabbitmq_recent_history_exchange", false),
    ("rabbitmq_sharding", false),
    ("rabbitmq_shovel", false),
    ("rabbitmq_shovel_management", false),
    ("rabbitmq_stomp", false),
    ("rabbitmq_stream", false),
    ("rabbitmq_stream_management", false),
    ("rabbitmq_top", false),
    ("rabbitmq_tracing", false),
    ("rabbitmq_trust_store", false),
    ("rabbitmq_web_dispatch", true),
    ("rabbitmq_web_mqtt", false),
    ("rabbitmq_web_mqtt_examples", false),
    ("rabbitmq_web_stomp", false),
    ("rabbitmq_web_stomp_examples", false),
];

/// rabbitmq-plugins: Warren has no plugins, so `list` shows what is built in
/// and `enable`/`disable` change nothing (exit 0 for RabbitMQ's plugin
/// names, so provisioning scripts run unchanged).
pub fn plugins(inv: &Invocation, io: &mut Io) -> Result<(), Failure> {
    let node = inv.node_label();
    match inv.verb.as_deref() {
        Some("list") => {
            let pattern = inv.args.first().map(String::as_str).unwrap_or(".*");
            let re = regex::Regex::new(pattern)
                .map_err(|e| Failure::new(exit::USAGE, format!("invalid plugin name pattern {pattern}: {e}")))?;
            banner(inv, io, &format!("Listing plugins with pattern \"{pattern}\" ..."));
            if !inv.options.quiet && !inv.options.silent {
                io.println(" Configured: E = explicitly enabled; e = implicitly enabled");
                io.println(&format!(" | Status: * = running on {node}"));
                io.println(" |/");
            }
            let width = PLUGINS.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
            for (name, built_in) in PLUGINS.iter().filter(|(n, _)| re.is_match(n)) {
                let (mark, note) = if *built_in { ("[E*]", "built into Warren") } else { ("[  ]", "not available in Warren") };
                io.println(&format!("{mark} {name:<width$} {note}"));
            }
            Ok(())
        }
        Some(verb @ ("enable" | "disable" | "set")) => {
            let names: Vec<&str> = inv.args.iter().map(String::as_str).collect();
            if names.is_empty() && verb != "set" {
                return Err(inv.usage_error(
                    Tool::Plugins,
                    "not enough arguments.",
                    &format!("rabbitmq-plugins [--node <node>] [--longnames] [--quiet] {verb} <plugin1> [ <plugin2>] ..."),
                ));
            }
            let unknown: Vec<String> =
                names.iter().filter(|n| !PLUGINS.iter().any(|(p, _)| p == *n)).map(|n| format!(":{n}")).collect();
            if !unknown.is_empty() {
                return Err(Failure::new(exit::SOFTWARE, format!("{{:plugins_not_found, [{}]}}", unknown.join(", "))));
            }
            for name in names {
                let built_in = PLUGINS.iter().any(|(p, b)| *p == name && *b);
                let note = if built_in {
                    "is built into Warren: nothing to enable or disable"
                } else {
                    "has no equivalent in Warren yet: nothing to enable or disable"
                };
                banner(inv, io, &format!("{name} {note}"));
            }
            banner(inv, io, "Plugin configuration unchanged.");
            Ok(())
        }
        Some("is_enabled") => {
            let missing: Vec<&String> =
                inv.args.iter().filter(|n| !PLUGINS.iter().any(|(p, b)| p == *n && *b)).collect();
            if missing.is_empty() {
                Ok(())
            } else {
                let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                Err(Failure::new(exit::UNAVAILABLE, format!("Plugin(s) {} are not enabled", names.join(", "))))
            }
        }
        Some(other) => Err(Failure::bare(
            exit::USAGE,
            format!("\nCommand '{other}' not found. \n\nUsage\n\nrabbitmq-plugins <list|enable|disable|set|is_enabled> [...]"),
        )),
        None => Err(Failure::bare(exit::USAGE, "Usage\n\nrabbitmq-plugins <list|enable|disable|set|is_enabled> [...]")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn url_hosts() {
        assert_eq!(url_host("http://127.0.0.1:15672"), "127.0.0.1");
        assert_eq!(url_host("http://u:p@broker/api"), "broker");
        assert_eq!(url_host("http://[::1]:15672/"), "::1");
    }

    #[test]
    fn wildcard_listeners_use_the_url_host() {
        let l = json!({"ip_address": "::", "port": 5672, "protocol": "amqp"});
        assert_eq!(listener_addrs(&l, "127.0.0.1"), vec!["127.0.0.1:5672".parse().unwrap()]);
        let l = json!({"ip_address": "127.0.0.2", "port": 1});
        assert_eq!(listener_addrs(&l, "127.0.0.1"), vec!["127.0.0.2:1".parse().unwrap()]);
        assert!(listener_addrs(&json!({"ip_address": "::"}), "127.0.0.1").is_empty());
    }
}
