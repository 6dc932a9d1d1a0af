//! Output formatting checked against the real tools: API responses recorded
//! from RabbitMQ 3.10.8, formatted here, compared with what rabbitmqctl and
//! rabbitmqadmin printed for the same state (`tests/fixtures/management/`).
//!
//! Where RabbitMQ's own order is not fixed (rabbitmqctl lists exchanges and
//! permissions in Mnesia's hash order, the API sorts by name) rows are
//! compared as sets; columns that hold Erlang pids, which the API does not
//! expose, are left out of the comparison.

use serde_json::Value;

use super::admin;
use super::format::{self, Formatter, ListSpec};

fn fixture(path: &str) -> String {
    let full = format!("{}/tests/fixtures/management/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn api(name: &str) -> Vec<Value> {
    match serde_json::from_str(&fixture(&format!("api/{name}.json"))).unwrap() {
        Value::Array(items) => items,
        other => vec![other],
    }
}

/// rabbitmqctl's stdout for a capture, without its first `banner_lines` lines.
fn ctl_out(name: &str, banner_lines: usize) -> String {
    let text = fixture(&format!("rabbitmqctl/{name}.out"));
    text.split_inclusive('\n').skip(banner_lines).collect()
}

fn columns(spec: &ListSpec, keys: &[&str]) -> Vec<format::Column> {
    spec.select(&keys.iter().map(|k| k.to_string()).collect::<Vec<_>>()).unwrap()
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

#[test]
fn list_queues_default_columns() {
    let out = format::rows(&api("queues"), &columns(&format::QUEUES, &[]), Formatter::Table, true);
    assert_eq!(out, ctl_out("list_queues", 2));
}

#[test]
fn list_queues_chosen_columns_with_arguments() {
    let cols = columns(&format::QUEUES, &["name", "messages", "consumers", "durable", "arguments"]);
    assert_eq!(format::rows(&api("queues"), &cols, Formatter::Table, true), ctl_out("list_queues_cols", 2));
}

#[test]
fn list_queues_quiet_and_silent() {
    let cols = columns(&format::QUEUES, &["name", "messages"]);
    assert_eq!(format::rows(&api("queues"), &cols, Formatter::Table, true), ctl_out("list_queues_q", 0));
    assert_eq!(format::rows(&api("queues"), &cols, Formatter::Table, false), ctl_out("list_queues_s", 0));
}

#[test]
fn list_queues_json() {
    let cols = columns(&format::QUEUES, &["name", "messages", "consumers"]);
    assert_eq!(format::rows(&api("queues"), &cols, Formatter::Json, true), ctl_out("list_queues_json", 0));
    let cols = columns(&format::QUEUES, &["name", "arguments"]);
    assert_eq!(format::rows(&api("queues"), &cols, Formatter::Json, true), ctl_out("list_queues_args_json", 0));
}

#[test]
fn list_queues_empty_vhost() {
    let cols = columns(&format::QUEUES, &[]);
    assert_eq!(format::rows(&api("queues_staging"), &cols, Formatter::Table, true), ctl_out("list_queues_staging", 2));
    assert_eq!(
        format::rows(&api("queues_staging"), &cols, Formatter::Json, true),
        ctl_out("list_queues_staging_json", 0)
    );
}

#[test]
fn list_exchanges_as_a_set() {
    let out = format::rows(&api("exchanges"), &columns(&format::EXCHANGES, &[]), Formatter::Table, true);
    assert_eq!(sorted_lines(&out), sorted_lines(&ctl_out("list_exchanges", 1)));
    let cols = columns(&format::EXCHANGES, &["name", "type", "durable", "auto_delete", "internal", "arguments"]);
    let out = format::rows(&api("exchanges"), &cols, Formatter::Table, true);
    assert_eq!(sorted_lines(&out), sorted_lines(&ctl_out("list_exchanges_cols", 1)));
}

#[test]
fn list_bindings() {
    let out = format::rows(&api("bindings"), &columns(&format::BINDINGS, &[]), Formatter::Table, true);
    assert_eq!(out, ctl_out("list_bindings", 1));
}

#[test]
fn list_connections() {
    let out = format::rows(&api("connections"), &columns(&format::CONNECTIONS, &[]), Formatter::Table, true);
    assert_eq!(out, ctl_out("list_connections", 1));
    let cols = columns(&format::CONNECTIONS, &["name", "user", "vhost", "channels"]);
    assert_eq!(format::rows(&api("connections"), &cols, Formatter::Table, true), ctl_out("list_connections_cols", 1));
}

/// Drops the first column (an Erlang pid in rabbitmqctl's output).
fn without_column(text: &str, index: usize) -> String {
    text.lines()
        .map(|l| {
            let mut cells: Vec<&str> = l.split('\t').collect();
            cells.remove(index);
            cells.join("\t") + "\n"
        })
        .collect()
}

#[test]
fn list_channels_but_pids() {
    let out = format::rows(&api("channels"), &columns(&format::CHANNELS, &[]), Formatter::Table, true);
    assert_eq!(sorted_lines(&without_column(&out, 0)), sorted_lines(&without_column(&ctl_out("list_channels", 1), 0)));
    let cols = columns(&format::CHANNELS, &["name", "user", "consumer_count", "prefetch_count"]);
    let out = format::rows(&api("channels"), &cols, Formatter::Table, true);
    assert_eq!(sorted_lines(&out), sorted_lines(&ctl_out("list_channels_cols", 1)));
}

#[test]
fn list_consumers_but_pids() {
    let out = format::rows(&api("consumers"), &columns(&format::CONSUMERS, &[]), Formatter::Table, true);
    assert_eq!(without_column(&out, 1), without_column(&ctl_out("list_consumers", 1), 1));
}

#[test]
fn list_users_and_vhosts() {
    let users = api("users");
    assert_eq!(format::rows(&users, &columns(&format::USERS, &[]), Formatter::Table, true), ctl_out("list_users", 1));
    assert_eq!(
        format::rows(&users, &columns(&format::USERS, &[]), Formatter::Json, true),
        ctl_out("list_users_json", 0)
    );
    let vhosts = api("vhosts");
    assert_eq!(
        format::rows(&vhosts, &columns(&format::VHOSTS, &[]), Formatter::Table, true),
        ctl_out("list_vhosts", 1)
    );
    let cols = columns(&format::VHOSTS, &["name", "tracing"]);
    assert_eq!(format::rows(&vhosts, &cols, Formatter::Table, true), ctl_out("list_vhosts_cols", 1));
}

#[test]
fn list_permissions() {
    let out = format::rows(&api("vhosts_permissions"), &columns(&format::PERMISSIONS, &[]), Formatter::Table, true);
    assert_eq!(sorted_lines(&out), sorted_lines(&ctl_out("list_permissions", 1)));
    let out = format::rows(&api("permissions_scratch"), &columns(&format::PERMISSIONS, &[]), Formatter::Table, true);
    assert_eq!(out, ctl_out("list_permissions_scratch", 1));
    let cols = columns(&format::USER_PERMISSIONS, &[]);
    assert_eq!(
        format::rows(&api("user_permissions_bob"), &cols, Formatter::Table, true),
        ctl_out("list_user_permissions", 1)
    );
}

#[test]
fn list_policies() {
    let cols = columns(&format::POLICIES, &[]);
    assert_eq!(format::rows(&api("policies"), &cols, Formatter::Table, true), ctl_out("list_policies", 1));
    assert_eq!(
        format::rows(&api("policies_scratch"), &cols, Formatter::Table, true),
        ctl_out("list_policies_scratch", 1)
    );
    // An empty list: rabbitmqctl prints the banner and an empty line (added by the verb).
    assert_eq!(format::rows(&api("policies_staging"), &cols, Formatter::Table, true), "");
    assert_eq!(ctl_out("list_policies_staging", 1), "\n");
}

fn admin_out(name: &str) -> String {
    fixture(&format!("rabbitmqadmin/{name}.out"))
}

fn admin_table(items: &[Value], cols: &[&str], json: &[&str]) -> String {
    let cols: Vec<String> = cols.iter().map(|c| c.to_string()).collect();
    let (cols, rows) = admin::to_table(items, &cols, 1, json);
    admin::ascii_table(&cols, &rows)
}

#[test]
fn rabbitmqadmin_lists() {
    assert_eq!(admin_table(&api("queues_all"), &["name", "messages"], &[]), admin_out("list_queues"));
    assert_eq!(admin_table(&api("queues_all"), &["name", "messages", "durable"], &[]), admin_out("list_queues_cols"));
    assert_eq!(admin_table(&api("exchanges_all"), &["name", "type"], &[]), admin_out("list_exchanges"));
    assert_eq!(
        admin_table(&api("bindings"), &["source", "destination", "routing_key"], &[]),
        admin_out("list_bindings")
    );
    assert_eq!(admin_table(&api("users"), &[], &[]), admin_out("list_users"));
    assert_eq!(admin_table(&api("vhosts"), &["name", "messages"], &[]), admin_out("list_vhosts"));
    assert_eq!(admin_table(&api("connections"), &["name", "user", "channels"], &[]), admin_out("list_connections"));
    assert_eq!(admin_table(&api("policies_all"), &[], &["definition"]), admin_out("list_policies"));
    assert_eq!(admin_table(&api("consumers"), &[], &[]), admin_out("list_consumers"));
}
