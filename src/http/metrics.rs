//! Prometheus metrics on their own port (rabbitmq_prometheus's 15692), with
//! RabbitMQ's metric names and labels, so its Grafana dashboards and alerts
//! work unchanged: `/metrics` aggregated, `/metrics/per-object` per queue.
//!
//! Rendered on each scrape from the broker's counters; nothing is sampled
//! or kept in between. No auth, as rabbitmq_prometheus by default.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::Api;

/// A metric family's `# TYPE` and `# HELP` lines; its samples follow.
fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# TYPE {name} {kind}\n# HELP {name} {help}");
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

fn single(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    head(out, name, kind, help);
    sample(out, name, &[], value);
}

/// Everything but the per-queue families, which `per_object` says whether
/// to label by queue or sum.
fn render(api: &Api, per_object: bool) -> String {
    let b = &api.broker;
    let mut out = String::with_capacity(16 * 1024);
    let g = b.global_stats();
    let node = api.node.to_string();
    head(&mut out, "rabbitmq_identity_info", "gauge", "RabbitMQ node & cluster identity info");
    sample(
        &mut out,
        "rabbitmq_identity_info",
        &[("rabbitmq_node", &node), ("rabbitmq_cluster", &node), ("rabbitmq_cluster_permanent_id", &node)],
        1.0,
    );
    head(&mut out, "rabbitmq_build_info", "untyped", "RabbitMQ & Erlang/OTP version info");
    sample(
        &mut out,
        "rabbitmq_build_info",
        &[
            ("rabbitmq_version", super::overview::RABBITMQ_VERSION),
            ("prometheus_plugin_version", super::overview::RABBITMQ_VERSION),
            ("prometheus_client_version", "4.9.1"),
            ("erlang_version", "none"),
            ("warren_version", env!("CARGO_PKG_VERSION")),
        ],
        1.0,
    );
    let vhosts = b.vhosts();
    let queues: Vec<_> = vhosts.iter().flat_map(|v| v.queues()).collect();
    let consumers: u64 = queues.iter().map(|q| q.consumer_count() as u64).sum();
    single(&mut out, "rabbitmq_connections", "gauge", "Connections currently open", b.connection_count() as f64);
    single(&mut out, "rabbitmq_channels", "gauge", "Channels currently open", b.channel_count() as f64);
    single(&mut out, "rabbitmq_queues", "gauge", "Queues available", queues.len() as f64);
    single(&mut out, "rabbitmq_consumers", "gauge", "Consumers currently connected", consumers as f64);
    for (name, help, v) in [
        ("rabbitmq_connections_opened_total", "Total number of connections opened", g.connections_opened),
        ("rabbitmq_connections_closed_total", "Total number of connections closed or terminated", g.connections_closed),
        ("rabbitmq_channels_opened_total", "Total number of channels opened", g.channels_opened),
        ("rabbitmq_channels_closed_total", "Total number of channels closed", g.channels_closed),
        ("rabbitmq_global_messages_received_total", "Total number of messages received from publishers", g.messages_received),
        ("rabbitmq_global_messages_routed_total", "Total number of messages routed to queues or streams", g.messages_routed),
        (
            "rabbitmq_global_messages_unroutable_dropped_total",
            "Total number of messages published as non-mandatory into an exchange and dropped as unroutable",
            g.messages_unroutable_dropped,
        ),
        (
            "rabbitmq_global_messages_unroutable_returned_total",
            "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable",
            g.messages_unroutable_returned,
        ),
        ("rabbitmq_global_messages_confirmed_total", "Total number of messages confirmed to publishers", g.messages_confirmed),
        ("rabbitmq_global_messages_delivered_total", "Total number of messages delivered to consumers", g.messages_delivered),
        (
            "rabbitmq_global_messages_acknowledged_total",
            "Total number of messages acknowledged by consumers",
            g.messages_acknowledged,
        ),
    ] {
        single(&mut out, name, "counter", help, v as f64);
    }
    let families: [(&str, &str); 5] = [
        ("rabbitmq_queue_messages_ready", "Messages ready to be delivered to consumers"),
        ("rabbitmq_queue_messages_unacked", "Messages delivered to consumers but not yet acknowledged"),
        ("rabbitmq_queue_messages", "Sum of ready and unacknowledged messages - total queue depth"),
        ("rabbitmq_queue_consumers", "Consumers on a queue"),
        ("rabbitmq_queue_messages_bytes", "Size in bytes of ready and unacknowledged messages"),
    ];
    let rows: Vec<(String, String, [f64; 5])> = queues
        .iter()
        .map(|q| {
            let s = q.stats();
            let ready = s.messages_ready as f64;
            let unacked = s.messages_unacknowledged as f64;
            (
                q.vhost.clone(),
                q.name.clone(),
                [ready, unacked, ready + unacked, q.consumer_count() as f64, s.message_bytes as f64],
            )
        })
        .collect();
    for (i, (name, help)) in families.iter().enumerate() {
        head(&mut out, name, "gauge", help);
        if per_object {
            for (vhost, queue, v) in &rows {
                sample(&mut out, name, &[("vhost", vhost), ("queue", queue)], v[i]);
            }
        } else {
            sample(&mut out, name, &[], rows.iter().map(|r| r.2[i]).sum());
        }
    }
    if per_object {
        for (name, help, pick) in [
            ("rabbitmq_queue_messages_published_total", "Total number of messages published to queues", 0usize),
            ("rabbitmq_queue_messages_delivered_total", "Total number of messages delivered to consumers", 1),
            ("rabbitmq_queue_messages_acked_total", "Total number of messages acknowledged by consumers", 2),
            ("rabbitmq_queue_messages_redelivered_total", "Total number of messages redelivered to consumers", 3),
        ] {
            head(&mut out, name, "counter", help);
            for q in &queues {
                let s = q.stats();
                let v = [s.publish, s.deliver + s.deliver_no_ack + s.get + s.get_no_ack, s.ack, s.redeliver][pick];
                sample(&mut out, name, &[("vhost", &q.vhost), ("queue", &q.name)], v as f64);
            }
        }
    }
    let alarms = *api.alarms.borrow();
    single(
        &mut out,
        "rabbitmq_process_resident_memory_bytes",
        "gauge",
        "Memory used in bytes",
        crate::server::resident_bytes().unwrap_or(0) as f64,
    );
    single(
        &mut out,
        "rabbitmq_resident_memory_limit_bytes",
        "gauge",
        "Memory high watermark in bytes",
        api.config.memory_limit().unwrap_or(0) as f64,
    );
    let disk_free = b.store().and_then(|s| crate::store::free_bytes(s.dir()).ok()).unwrap_or(0);
    single(&mut out, "rabbitmq_disk_space_available_bytes", "gauge", "Disk space available in bytes", disk_free as f64);
    single(
        &mut out,
        "rabbitmq_disk_space_available_limit_bytes",
        "gauge",
        "Free disk space low watermark in bytes",
        api.config.disk_free_limit.bytes() as f64,
    );
    single(
        &mut out,
        "rabbitmq_alarms_memory_used_watermark",
        "gauge",
        "is 1 if VM memory watermark alarm is in effect",
        f64::from(u8::from(alarms.memory_on())),
    );
    single(
        &mut out,
        "rabbitmq_alarms_free_disk_space_watermark",
        "gauge",
        "is 1 if free disk space watermark alarm is in effect",
        f64::from(u8::from(alarms.disk_on() || alarms.store_backlog)),
    );
    single(
        &mut out,
        "rabbitmq_alarms_file_descriptor_limit",
        "gauge",
        "is 1 if file descriptor limit alarm is in effect",
        0.0,
    );
    out
}

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn aggregated(State(api): State<Api>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], render(&api, false))
}

async fn per_object(State(api): State<Api>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], render(&api, true))
}

pub(crate) fn router(api: Api) -> Router {
    Router::new().route("/metrics", get(aggregated)).route("/metrics/per-object", get(per_object)).with_state(api)
}
