//! The rabbitmqctl personality: each verb is one or two management API calls,
//! printed as rabbitmqctl prints them (banner lines on stdout unless `-q`,
//! errors on stderr, rabbitmqctl's exit codes; texts captured from
//! RabbitMQ 3.10 under `tests/fixtures/management/rabbitmqctl/`).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::client::{encode, exit, Api};
use super::format::{self, Formatter, ListSpec};
use super::{diagnostics, Failure, Invocation, Io, Tool};

/// The verbs, with rabbitmqctl's usage line for each (after "rabbitmqctl [--node NODE] ...").
pub const VERBS: &[(&str, &str)] = &[
    ("status", "status"),
    ("await_startup", "await_startup"),
    ("list_queues", "list_queues [--vhost <vhost>] [<column>, ...]"),
    ("list_exchanges", "list_exchanges [--vhost <vhost>] [<column> ...]"),
    ("list_bindings", "list_bindings [--vhost <vhost>] [<column> ...]"),
    ("list_connections", "list_connections [<column> ...]"),
    ("list_channels", "list_channels [<column> ...]"),
    ("list_consumers", "list_consumers [--vhost <vhost>] [<column> ...]"),
    ("list_users", "list_users"),
    ("list_vhosts", "list_vhosts [<column> ...]"),
    ("list_permissions", "list_permissions [--vhost <vhost>]"),
    ("list_user_permissions", "list_user_permissions <username>"),
    ("list_policies", "list_policies [--vhost <vhost>]"),
    ("add_user", "add_user <username> <password>"),
    ("delete_user", "delete_user <username>"),
    ("change_password", "change_password <username> <password>"),
    ("set_user_tags", "set_user_tags <username> <tag> [...]"),
    ("add_vhost", "add_vhost <vhost> [--description <description> --tags \"<tag1>,<tag2>,<...>\" --default-queue-type <quorum|classic|stream>]"),
    ("delete_vhost", "delete_vhost <vhost>"),
    ("set_permissions", "set_permissions [--vhost <vhost>] <username> <conf> <write> <read>"),
    ("clear_permissions", "clear_permissions [--vhost <vhost>] <username>"),
    ("set_policy", "set_policy [--vhost <vhost>] [--priority <priority>] [--apply-to <apply-to>] <name> <pattern> <definition>"),
    ("clear_policy", "clear_policy [--vhost <vhost>] <name>"),
    ("set_vhost_limits", "set_vhost_limits [--vhost <vhost>] <definition>"),
    ("clear_vhost_limits", "clear_vhost_limits [--vhost <vhost>]"),
    ("list_vhost_limits", "list_vhost_limits [--vhost <vhost>] [--global]"),
    ("set_user_limits", "set_user_limits <username> <definition>"),
    ("clear_user_limits", "clear_user_limits <username> <limit> | all"),
    ("list_user_limits", "list_user_limits [--user <username>] [--global]"),
    ("purge_queue", "purge_queue [--vhost <vhost>] <queue>"),
    ("delete_queue", "delete_queue [--vhost <vhost>] <queue_name> [--if-empty|-e] [--if-unused|-u]"),
    ("close_connection", "close_connection <connection name> <explanation>"),
    ("export_definitions", "export_definitions <file_path | \"-\">"),
    ("import_definitions", "import_definitions <file_path | \"-\">"),
    ("ping", "ping"),
    ("check_running", "check_running"),
    ("check_port_connectivity", "check_port_connectivity"),
    ("clock", "clock [advance <duration: 500ms, 30s, 15m, 1h, 2d>]  (Warren: the virtual clock of --clock manual)"),
];

fn usage_line(verb: &str) -> String {
    let tail = VERBS.iter().find(|(v, _)| *v == verb).map(|(_, u)| *u).unwrap_or(verb);
    format!("rabbitmqctl [--node <node>] [--longnames] [--quiet] {tail}")
}

fn general_usage(tool: Tool) -> String {
    let mut text = format!(
        "Usage\n\n{} [--node <node>] [--timeout <timeout>] [--quiet] <command> [<command options>]\n\n\
         Talks to a management HTTP API (Warren's or RabbitMQ's), not to an Erlang node:\n  \
         --url <url>            management API [env WARREN_MANAGEMENT_URL, default http://127.0.0.1:15672]\n  \
         --username <user>      [env RABBITMQ_DEFAULT_USER, default guest]\n  \
         --password <password>  [env RABBITMQ_DEFAULT_PASS, default guest]\n  \
         -p, --vhost <vhost>    [default /]\n  \
         -q, --quiet / -s, --silent / --formatter json|table / -t, --timeout <seconds>\n  \
         -n, --node <node>      accepted and ignored (the URL chooses the broker)\n\nAvailable commands:\n\n",
        tool.name()
    );
    for (verb, _) in VERBS {
        text.push_str(&format!("   {verb}\n"));
    }
    text
}

/// Checks the positional argument count.
fn arity(inv: &Invocation, verb: &str, min: usize, max: usize) -> Result<(), Failure> {
    let n = inv.args.len();
    if n < min {
        return Err(inv.usage_error(Tool::Rabbitmqctl, "not enough arguments.", &usage_line(verb)));
    }
    if n > max {
        return Err(inv.usage_error(Tool::Rabbitmqctl, "too many arguments.", &usage_line(verb)));
    }
    Ok(())
}

pub fn run(inv: &Invocation, io: &mut Io) -> Result<(), Failure> {
    let Some(verb) = inv.verb.as_deref() else {
        return Err(Failure::bare(exit::USAGE, general_usage(Tool::Rabbitmqctl)));
    };
    if inv.options.help || verb == "help" {
        let verb = if verb == "help" { inv.args.first().map(String::as_str) } else { Some(verb) };
        match verb {
            Some(v) if VERBS.iter().any(|(name, _)| *name == v) => io.println(&format!("Usage\n\n{}", usage_line(v))),
            _ => io.print(&general_usage(Tool::Rabbitmqctl)),
        }
        return Ok(());
    }
    let api = inv.api();
    let vhost = inv.options.vhost.as_str();
    let vh = encode(vhost);
    match verb {
        "status" => status(inv, io, &api),
        "await_startup" => await_startup(inv, &api),
        "list_queues" => {
            let timeout = inv.options.timeout.unwrap_or(60.0);
            let banner = format!("Timeout: {} seconds ...\nListing queues for vhost {vhost} ...", seconds(timeout));
            list(inv, io, &api, &format::QUEUES, &format!("/api/queues/{vh}"), &banner)
        }
        "list_exchanges" => list(
            inv,
            io,
            &api,
            &format::EXCHANGES,
            &format!("/api/exchanges/{vh}"),
            &format!("Listing exchanges for vhost {vhost} ..."),
        ),
        "list_bindings" => list(
            inv,
            io,
            &api,
            &format::BINDINGS,
            &format!("/api/bindings/{vh}"),
            &format!("Listing bindings for vhost {vhost}..."),
        ),
        "list_connections" => list(inv, io, &api, &format::CONNECTIONS, "/api/connections", "Listing connections ..."),
        "list_channels" => list(inv, io, &api, &format::CHANNELS, "/api/channels", "Listing channels ..."),
        "list_consumers" => list(
            inv,
            io,
            &api,
            &format::CONSUMERS,
            &format!("/api/consumers/{vh}"),
            &format!("Listing consumers in vhost {vhost} ..."),
        ),
        "list_users" => {
            arity(inv, verb, 0, 0)?;
            list(inv, io, &api, &format::USERS, "/api/users", "Listing users ...")
        }
        "list_vhosts" => list(inv, io, &api, &format::VHOSTS, "/api/vhosts", "Listing vhosts ..."),
        "list_permissions" => {
            arity(inv, verb, 0, 0)?;
            list(
                inv,
                io,
                &api,
                &format::PERMISSIONS,
                &format!("/api/vhosts/{vh}/permissions"),
                &format!("Listing permissions for vhost \"{vhost}\" ..."),
            )
        }
        "list_user_permissions" => {
            arity(inv, verb, 1, 1)?;
            let user = &inv.args[0];
            let path = format!("/api/users/{}/permissions", encode(user));
            let banner = format!("Listing permissions for user \"{user}\" ...");
            let inv = Invocation { args: Vec::new(), ..inv.clone() };
            let missing = Failure::new(exit::UNAVAILABLE, format!("{{:no_such_user, \"{user}\"}}"));
            list_or(&inv, io, &api, &format::USER_PERMISSIONS, &path, &banner, OnMissing::Fail(missing))
        }
        "list_policies" => {
            arity(inv, verb, 0, 0)?;
            list(
                inv,
                io,
                &api,
                &format::POLICIES,
                &format!("/api/policies/{vh}"),
                &format!("Listing policies for vhost \"{vhost}\" ..."),
            )
        }
        "add_user" => add_user(inv, io, &api),
        "delete_user" => {
            arity(inv, verb, 1, 1)?;
            let user = &inv.args[0];
            banner(inv, io, &format!("Deleting user \"{user}\" ..."));
            let response = api.delete(&format!("/api/users/{}", encode(user)), None)?;
            match response.status {
                404 => Err(no_user(user)),
                _ if response.ok() => Ok(()),
                _ => Err(api.unexpected("DELETE", "/api/users", &response)),
            }
        }
        "change_password" => {
            arity(inv, verb, 2, 2)?;
            let (user, password) = (&inv.args[0], &inv.args[1]);
            banner(inv, io, &format!("Changing password for user \"{user}\" ..."));
            let existing = get_user(&api, user)?;
            let body = json!({"password": password, "tags": existing.get("tags").cloned().unwrap_or(json!(""))});
            put(&api, &format!("/api/users/{}", encode(user)), &body)
        }
        "set_user_tags" => {
            arity(inv, verb, 1, usize::MAX)?;
            let user = &inv.args[0];
            let tags = &inv.args[1..];
            banner(inv, io, &format!("Setting tags for user \"{user}\" to [{}] ...", tags.join(", ")));
            let mut body = get_user(&api, user)?;
            // PUT replaces the user: keep its password hash, change the tags only.
            let mut update = json!({"tags": tags.join(",")});
            for key in ["password_hash", "hashing_algorithm"] {
                if let Some(v) = body.get_mut(key).map(Value::take) {
                    update[key] = v;
                }
            }
            put(&api, &format!("/api/users/{}", encode(user)), &update)
        }
        "add_vhost" => {
            arity(inv, verb, 1, 1)?;
            let name = &inv.args[0];
            banner(inv, io, &format!("Adding vhost \"{name}\" ..."));
            let mut body = json!({});
            if let Some(d) = &inv.options.description {
                body["description"] = json!(d);
            }
            if let Some(t) = &inv.options.tags {
                body["tags"] = json!(t);
            }
            if let Some(q) = &inv.options.default_queue_type {
                body["default_queue_type"] = json!(q);
            }
            put(&api, &format!("/api/vhosts/{}", encode(name)), &body)
        }
        "delete_vhost" => {
            arity(inv, verb, 1, 1)?;
            let name = &inv.args[0];
            banner(inv, io, &format!("Deleting vhost \"{name}\" ..."));
            let response = api.delete(&format!("/api/vhosts/{}", encode(name)), None)?;
            match response.status {
                404 => Err(Failure::bare(exit::DATA, format!("Virtual host '{name}' does not exist"))),
                _ if response.ok() => Ok(()),
                _ => Err(api.unexpected("DELETE", "/api/vhosts", &response)),
            }
        }
        "set_permissions" => {
            arity(inv, verb, 4, 4)?;
            let user = &inv.args[0];
            banner(inv, io, &format!("Setting permissions for user \"{user}\" in vhost \"{vhost}\" ..."));
            ensure_user(&api, user)?;
            let body = json!({"configure": inv.args[1], "write": inv.args[2], "read": inv.args[3]});
            put(&api, &format!("/api/permissions/{vh}/{}", encode(user)), &body)
        }
        "clear_permissions" => {
            arity(inv, verb, 1, 1)?;
            let user = &inv.args[0];
            banner(inv, io, &format!("Clearing permissions for user \"{user}\" in vhost \"{vhost}\" ..."));
            ensure_user(&api, user)?;
            let response = api.delete(&format!("/api/permissions/{vh}/{}", encode(user)), None)?;
            // No permissions to clear is fine, as in rabbitmqctl.
            if response.ok() || response.status == 404 {
                Ok(())
            } else {
                Err(api.unexpected("DELETE", "/api/permissions", &response))
            }
        }
        "set_policy" => set_policy(inv, io, &api),
        "set_vhost_limits" | "clear_vhost_limits" | "list_vhost_limits" | "set_user_limits" | "clear_user_limits"
        | "list_user_limits" => limits(verb, inv, io, &api),
        "clear_policy" => {
            arity(inv, verb, 1, 1)?;
            let name = &inv.args[0];
            banner(inv, io, &format!("Clearing policy \"{name}\" on vhost \"{vhost}\" ..."));
            let response = api.delete(&format!("/api/policies/{vh}/{}", encode(name)), None)?;
            match response.status {
                404 => Err(Failure::new(exit::UNAVAILABLE, "Parameter does not exist")),
                _ if response.ok() => Ok(()),
                _ => Err(api.unexpected("DELETE", "/api/policies", &response)),
            }
        }
        "purge_queue" => {
            arity(inv, verb, 1, 1)?;
            let name = &inv.args[0];
            banner(inv, io, &format!("Purging queue '{name}' in vhost '{vhost}' ..."));
            let response = api.delete(&format!("/api/queues/{vh}/{}/contents", encode(name)), None)?;
            match response.status {
                404 => Err(Failure::new(exit::UNAVAILABLE, "not_found")),
                _ if response.ok() => Ok(()),
                _ => Err(api.unexpected("DELETE", "/api/queues", &response)),
            }
        }
        "delete_queue" => delete_queue(inv, io, &api),
        "close_connection" => {
            arity(inv, verb, 2, 2)?;
            let (name, reason) = (&inv.args[0], &inv.args[1]);
            banner(inv, io, &format!("Closing connection {name}, reason: {reason}..."));
            let response = api.delete(&format!("/api/connections/{}", encode(name)), Some(reason))?;
            match response.status {
                404 => Err(Failure::new(exit::UNAVAILABLE, format!("connection '{name}' not found"))),
                _ if response.ok() => Ok(()),
                _ => Err(api.unexpected("DELETE", "/api/connections", &response)),
            }
        }
        "export_definitions" => {
            arity(inv, verb, 1, 1)?;
            let target = &inv.args[0];
            let path = "/api/definitions";
            if target != "-" {
                banner(inv, io, &format!("Exporting definitions in JSON to a file at \"{target}\" ..."));
            }
            let response = api.get(path)?;
            if !response.ok() {
                return Err(api.unexpected("GET", path, &response));
            }
            if target == "-" {
                io.print(&response.body);
                Ok(())
            } else {
                std::fs::write(target, response.body.as_bytes())
                    .map_err(|e| Failure::new(exit::SOFTWARE, format!("cannot write {target}: {e}")))
            }
        }
        "import_definitions" => {
            arity(inv, verb, 0, 1)?;
            let source = inv.args.first().map(String::as_str).unwrap_or("-");
            let text = if source == "-" {
                banner(inv, io, "Importing definitions in JSON from standard input ...");
                let mut text = String::new();
                std::io::Read::read_to_string(io.input, &mut text)
                    .map_err(|e| Failure::new(exit::DATA, format!("cannot read standard input: {e}")))?;
                text
            } else {
                banner(inv, io, &format!("Importing definitions in JSON from a file at \"{source}\" ..."));
                std::fs::read_to_string(source)
                    .map_err(|e| Failure::new(exit::DATA, format!("cannot read {source}: {e}")))?
            };
            if let Err(e) = serde_json::from_str::<Value>(&text) {
                return Err(Failure::new(exit::DATA, format!("JSON decoding error. Reason: {e}")));
            }
            let response = api.post_raw("/api/definitions", &text)?;
            if !response.ok() {
                return Err(api.unexpected("POST", "/api/definitions", &response));
            }
            banner(
                inv,
                io,
                "Successfully started definition import. This process is asynchronous and can take some time.",
            );
            Ok(())
        }
        "ping" | "check_running" | "check_port_connectivity" => diagnostics::run(inv, io),
        "clock" => clock(inv, io, &api),
        other => Err(Failure::bare(
            exit::USAGE,
            format!("\nCommand '{other}' not found. \n\n{}", general_usage(Tool::Rabbitmqctl)),
        )),
    }
}

/// Warren's `clock` verb: prints the broker's clock, or moves a manual one
/// (`clock advance 1h`) through POST /api/warren/clock.
fn clock(inv: &Invocation, io: &mut Io, api: &Api) -> Result<(), Failure> {
    const PATH: &str = "/api/warren/clock";
    let reading = match inv.args.as_slice() {
        [] => api.get_json(PATH)?,
        [advance, by] if advance == "advance" => {
            let ms = parse_duration_ms(by).ok_or_else(|| {
                Failure::new(exit::USAGE, format!("'{by}' is not a duration: give a number with ms, s, m, h or d (1h)"))
            })?;
            banner(inv, io, &format!("Advancing the broker's clock by {by} ..."));
            let response = api.post(PATH, &json!({ "advance_ms": ms }))?;
            if !response.ok() {
                let code = if response.status == 409 { exit::DATA } else { exit::SOFTWARE };
                return Err(Failure::new(code, response.reason()));
            }
            serde_json::from_str(&response.body).unwrap_or(Value::Null)
        }
        _ => return Err(Failure::new(exit::USAGE, usage_line("clock"))),
    };
    for key in ["mode", "now_ms", "elapsed_ms"] {
        io.println(&format!("{key}\t{}", reading[key]).replace('"', ""));
    }
    Ok(())
}

/// `500ms`, `30s`, `15m`, `1h`, `2d`; a bare number is milliseconds.
fn parse_duration_ms(text: &str) -> Option<u64> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let scale = match unit {
        "" | "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// rabbitmqctl's way of printing seconds: `60.0`, `2.5`.
fn seconds(s: f64) -> String {
    if s.fract() == 0.0 {
        format!("{s:.1}")
    } else {
        s.to_string()
    }
}

fn banner(inv: &Invocation, io: &mut Io, line: &str) {
    if !inv.options.quiet && !inv.options.silent {
        io.println(line);
    }
}

fn no_user(user: &str) -> Failure {
    Failure::new(exit::NO_USER, format!("User \"{user}\" does not exist"))
}

fn get_user(api: &Api, user: &str) -> Result<Value, Failure> {
    let path = format!("/api/users/{}", encode(user));
    let response = api.get(&path)?;
    match response.status {
        404 => Err(no_user(user)),
        _ if response.ok() => response.json(&path),
        _ => Err(api.unexpected("GET", &path, &response)),
    }
}

/// set_permissions and clear_permissions name a missing user without quotes.
fn ensure_user(api: &Api, user: &str) -> Result<(), Failure> {
    match get_user(api, user) {
        Err(f) if f.code == exit::NO_USER => Err(Failure::new(exit::NO_USER, format!("User {user} does not exist"))),
        other => other.map(drop),
    }
}

fn put(api: &Api, path: &str, body: &Value) -> Result<(), Failure> {
    let response = api.put(path, body)?;
    if response.ok() {
        Ok(())
    } else if response.status == 400 {
        Err(Failure::new(exit::DATA, response.reason()))
    } else {
        Err(api.unexpected("PUT", path, &response))
    }
}

/// What a 404 for a list means.
enum OnMissing {
    /// The vhost does not exist: rabbitmqctl lists nothing and succeeds
    /// (list_queues, list_exchanges, list_bindings, list_consumers).
    Empty,
    /// The vhost does not exist, and rabbitmqctl says so (list_permissions,
    /// list_policies): exit 65.
    NoVhost,
    /// Something else is missing (a user for list_user_permissions).
    Fail(Failure),
}

fn list(
    inv: &Invocation,
    io: &mut Io,
    api: &Api,
    spec: &ListSpec,
    path: &str,
    banner_text: &str,
) -> Result<(), Failure> {
    let on_missing = match spec.verb {
        "list_permissions" | "list_policies" => OnMissing::NoVhost,
        "list_queues" | "list_exchanges" | "list_bindings" | "list_consumers" => OnMissing::Empty,
        _ => OnMissing::Fail(Failure::new(exit::SOFTWARE, format!("GET {path} failed with HTTP 404"))),
    };
    list_or(inv, io, api, spec, path, banner_text, on_missing)
}

/// A list verb: select the columns (usage error for unknown ones), fetch,
/// print.
fn list_or(
    inv: &Invocation,
    io: &mut Io,
    api: &Api,
    spec: &ListSpec,
    path: &str,
    banner_text: &str,
    on_missing: OnMissing,
) -> Result<(), Failure> {
    let columns = spec.select(&inv.args).map_err(|unknown| {
        inv.usage_error(Tool::Rabbitmqctl, &format!("Info key(s) {} are not supported", unknown.join(",")), spec.usage)
    })?;
    let response = api.get(path)?;
    let items = match (response.status, on_missing) {
        (404, OnMissing::Fail(failure)) => {
            banner(inv, io, banner_text);
            return Err(failure);
        }
        (404, OnMissing::NoVhost) => {
            banner(inv, io, banner_text);
            return Err(Failure::bare(exit::DATA, format!("Virtual host '{}' does not exist", inv.options.vhost)));
        }
        (404, OnMissing::Empty) => Vec::new(),
        _ if !response.ok() => return Err(api.unexpected("GET", path, &response)),
        _ => match response.json(path)? {
            Value::Array(items) => items,
            // A paged answer ({"items": [...]}) when a server pages by default.
            Value::Object(mut o) => match o.remove("items") {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        },
    };
    if inv.banners() {
        io.println(banner_text);
    }
    io.print(&format::rows(&items, &columns, inv.options.formatter, inv.headers()));
    // rabbitmqctl prints an empty line for an empty policy list.
    if items.is_empty() && spec.verb == "list_policies" && inv.banners() {
        io.println("");
    }
    Ok(())
}

fn add_user(inv: &Invocation, io: &mut Io, api: &Api) -> Result<(), Failure> {
    arity(inv, "add_user", 2, 2)?;
    let (user, password) = (&inv.args[0], &inv.args[1]);
    banner(inv, io, &format!("Adding user \"{user}\" ..."));
    // PUT would replace an existing user; rabbitmqctl refuses instead.
    let path = format!("/api/users/{}", encode(user));
    let existing = api.get(&path)?;
    if existing.ok() {
        return Err(Failure::new(exit::SOFTWARE, format!("User \"{user}\" already exists")));
    }
    put(api, &path, &json!({"password": password, "tags": ""}))?;
    banner(
        inv,
        io,
        "Done. Don't forget to grant the user permissions to some virtual hosts! See 'rabbitmqctl help set_permissions' to learn more.",
    );
    Ok(())
}

fn set_policy(inv: &Invocation, io: &mut Io, api: &Api) -> Result<(), Failure> {
    arity(inv, "set_policy", 3, 3)?;
    let (name, pattern, definition) = (&inv.args[0], &inv.args[1], &inv.args[2]);
    let vhost = &inv.options.vhost;
    let priority = inv.options.priority.clone().unwrap_or_else(|| "0".to_owned());
    banner(
        inv,
        io,
        &format!(
            "Setting policy \"{name}\" for pattern \"{pattern}\" to \"{definition}\" with priority \"{priority}\" for vhost \"{vhost}\" ..."
        ),
    );
    let definition: Value = serde_json::from_str(definition)
        .map_err(|_| Failure::new(exit::UNAVAILABLE, "JSON decoding error. Reason: badarg"))?;
    let priority: i64 = priority.parse().map_err(|_| {
        inv.usage_error(
            Tool::Rabbitmqctl,
            &format!("priority must be an integer, got {priority}"),
            &usage_line("set_policy"),
        )
    })?;
    let body = json!({
        "pattern": pattern,
        "definition": definition,
        "priority": priority,
        "apply-to": inv.options.apply_to.clone().unwrap_or_else(|| "all".to_owned()),
    });
    put(api, &format!("/api/policies/{}/{}", encode(vhost), encode(name)), &body)
}

/// The limits verbs over `/api/vhost-limits` and `/api/user-limits`. As
/// in rabbitmqctl, `set_*_limits` replaces every limit with the given JSON
/// object (one PUT per limit, a DELETE for each one it no longer names).
fn limits(verb: &str, inv: &Invocation, io: &mut Io, api: &Api) -> Result<(), Failure> {
    let vhost = &inv.options.vhost;
    let current = |path: &str| -> Result<serde_json::Map<String, Value>, Failure> {
        let rows = api.get_json(path)?;
        Ok(rows.get(0).and_then(|r| r["value"].as_object()).cloned().unwrap_or_default())
    };
    let replace = |base: &str, definition: &str| -> Result<(), Failure> {
        let wanted: Value = serde_json::from_str(definition)
            .map_err(|_| Failure::new(exit::UNAVAILABLE, "JSON decoding error. Reason: badarg"))?;
        let wanted = wanted.as_object().ok_or_else(|| {
            Failure::new(exit::UNAVAILABLE, format!("limits must be a JSON object, got {definition}"))
        })?;
        for (name, value) in wanted {
            let path = format!("{base}/{}", encode(name));
            let response = api.put(&path, &json!({ "value": value }))?;
            if response.status == 400 {
                return Err(Failure::new(exit::UNAVAILABLE, response.reason()));
            } else if !response.ok() {
                return Err(api.unexpected("PUT", &path, &response));
            }
        }
        for name in current(base)?.keys().filter(|k| !wanted.contains_key(*k)) {
            api.delete(&format!("{base}/{}", encode(name)), None)?;
        }
        Ok(())
    };
    let print_rows = |io: &mut Io, rows: &Value, key: &str| {
        if inv.options.global {
            if !inv.options.silent && !inv.options.no_table_headers {
                io.println(&format!("{key}\tlimits"));
            }
            for r in rows.as_array().into_iter().flatten() {
                io.println(&format!("{}\t{}", r[key].as_str().unwrap_or_default(), r["value"]));
            }
        } else {
            let value = rows.get(0).map(|r| r["value"].to_string()).unwrap_or_default();
            io.println(&value);
        }
    };
    match verb {
        "set_vhost_limits" => {
            arity(inv, verb, 1, 1)?;
            let definition = &inv.args[0];
            banner(inv, io, &format!("Setting vhost limits to \"{definition}\" for vhost \"{vhost}\" ..."));
            replace(&format!("/api/vhost-limits/{}", encode(vhost)), definition)
        }
        "clear_vhost_limits" => {
            arity(inv, verb, 0, 0)?;
            banner(inv, io, &format!("Clearing vhost \"{vhost}\" limits ..."));
            let base = format!("/api/vhost-limits/{}", encode(vhost));
            for name in current(&base)?.keys() {
                api.delete(&format!("{base}/{}", encode(name)), None)?;
            }
            Ok(())
        }
        "list_vhost_limits" => {
            arity(inv, verb, 0, 0)?;
            if inv.options.global {
                banner(inv, io, "Listing limits for all vhosts ...");
                print_rows(io, &api.get_json("/api/vhost-limits")?, "vhost");
            } else {
                banner(inv, io, &format!("Listing limits for vhost \"{vhost}\" ..."));
                print_rows(io, &api.get_json(&format!("/api/vhost-limits/{}", encode(vhost)))?, "vhost");
            }
            Ok(())
        }
        "set_user_limits" => {
            arity(inv, verb, 2, 2)?;
            let (user, definition) = (&inv.args[0], &inv.args[1]);
            banner(inv, io, &format!("Setting user limits to \"{definition}\" for user \"{user}\" ..."));
            ensure_user(api, user)?;
            replace(&format!("/api/user-limits/{}", encode(user)), definition)
        }
        "clear_user_limits" => {
            arity(inv, verb, 2, 2)?;
            let (user, which) = (&inv.args[0], &inv.args[1]);
            let base = format!("/api/user-limits/{}", encode(user));
            if which == "all" {
                banner(inv, io, &format!("Clearing all limits for user \"{user}\" ..."));
                ensure_user(api, user)?;
                for name in current(&base)?.keys() {
                    api.delete(&format!("{base}/{}", encode(name)), None)?;
                }
            } else {
                banner(inv, io, &format!("Clearing \"{which}\" limit for user \"{user}\" ..."));
                ensure_user(api, user)?;
                api.delete(&format!("{base}/{}", encode(which)), None)?;
            }
            Ok(())
        }
        _ => {
            arity(inv, verb, 0, 0)?;
            if inv.options.global {
                banner(inv, io, "Listing limits for all users ...");
                print_rows(io, &api.get_json("/api/user-limits")?, "user");
            } else {
                // rabbitmqctl's default is the user it runs as.
                let user = inv.options.user.clone().unwrap_or_else(|| inv.options.username.clone());
                banner(inv, io, &format!("Listing limits for user \"{user}\" ..."));
                print_rows(io, &api.get_json(&format!("/api/user-limits/{}", encode(&user)))?, "user");
            }
            Ok(())
        }
    }
}

fn delete_queue(inv: &Invocation, io: &mut Io, api: &Api) -> Result<(), Failure> {
    arity(inv, "delete_queue", 1, 1)?;
    let name = &inv.args[0];
    let vhost = &inv.options.vhost;
    let mut conditions = Vec::new();
    if inv.options.if_empty {
        conditions.push("if queue is empty ");
    }
    if inv.options.if_unused {
        conditions.push("if queue is unused ");
    }
    let conditions = conditions.join("and ");
    banner(inv, io, &format!("Deleting queue '{name}' on vhost '{vhost}' {conditions}..."));
    let path = format!("/api/queues/{}/{}", encode(vhost), encode(name));
    let queue = api.get(&path)?;
    if queue.status == 404 {
        return Err(Failure::new(exit::USAGE, "Queue not found"));
    }
    let ready = queue.json(&path).ok().and_then(|q| q.get("messages_ready").and_then(Value::as_u64)).unwrap_or(0);
    let mut query = Vec::new();
    if inv.options.if_empty {
        query.push("if-empty=true");
    }
    if inv.options.if_unused {
        query.push("if-unused=true");
    }
    let target = if query.is_empty() { path.clone() } else { format!("{path}?{}", query.join("&")) };
    let response = api.delete(&target, None)?;
    match response.status {
        404 => Err(Failure::new(exit::USAGE, "Queue not found")),
        // RabbitMQ's reasons: "queue 'q' in vhost '/' not empty" / "... in use".
        400 if response.reason().ends_with("not empty") => Err(Failure::new(exit::USAGE, "Queue is not empty")),
        400 if response.reason().ends_with("in use") => Err(Failure::new(exit::USAGE, "Queue is in use")),
        400 => Err(Failure::new(exit::SOFTWARE, response.reason())),
        _ if response.ok() => {
            banner(inv, io, &format!("Queue was successfully deleted with {ready} ready messages"));
            Ok(())
        }
        _ => Err(api.unexpected("DELETE", &path, &response)),
    }
}

/// Polls the overview until the API answers or the timeout (rabbitmqctl's
/// default: 300 s) passes.
fn await_startup(inv: &Invocation, api: &Api) -> Result<(), Failure> {
    let limit = Duration::from_secs_f64(inv.options.timeout.unwrap_or(300.0));
    let started = Instant::now();
    loop {
        let last = match api.get("/api/overview") {
            Ok(r) if r.ok() => return Ok(()),
            Ok(r) => api.unexpected("GET", "/api/overview", &r),
            Err(f) if f.code == exit::NO_PERM => return Err(f),
            Err(f) => f,
        };
        if started.elapsed() >= limit {
            return Err(Failure::new(
                exit::TEMPFAIL,
                format!("the broker did not start within {} seconds: {}", seconds(limit.as_secs_f64()), last.message),
            ));
        }
        std::thread::sleep(Duration::from_millis(200).min(limit.saturating_sub(started.elapsed())));
    }
}

fn status(inv: &Invocation, io: &mut Io, api: &Api) -> Result<(), Failure> {
    let overview = api.get_json("/api/overview")?;
    let node_name = overview.get("node").and_then(Value::as_str).unwrap_or("").to_owned();
    let node = api.get_json(&format!("/api/nodes/{}", encode(&node_name))).unwrap_or(Value::Null);
    if inv.options.formatter == Formatter::Json {
        io.println(&json!({"overview": overview, "node": node}).to_string());
        return Ok(());
    }
    banner(inv, io, &format!("Status of node {node_name} ..."));
    io.print(&status_text(&overview, &node));
    Ok(())
}

/// rabbitmqctl status's sections, with what the management API reports.
pub fn status_text(overview: &Value, node: &Value) -> String {
    let s = |v: &Value, k: &str| v.get(k).map(|x| format::text(x, format::Render::Plain)).unwrap_or_default();
    let gb = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_f64)
            .map(|b| format!("{} gb", (b / 1e9 * 10000.0).round() / 10000.0))
            .unwrap_or_default()
    };
    let mut out = String::new();
    out.push_str("Runtime\n\n");
    out.push_str(&format!("OS PID: {}\n", s(node, "os_pid")));
    out.push_str(&format!(
        "Uptime (seconds): {}\n",
        node.get("uptime").and_then(Value::as_u64).map(|ms| ms / 1000).unwrap_or(0)
    ));
    out.push_str(&format!("RabbitMQ version: {}\n", s(overview, "rabbitmq_version")));
    out.push_str(&format!("Node name: {}\n", s(overview, "node")));
    out.push_str(&format!("Erlang configuration: {}\n", s(overview, "erlang_full_version")));
    out.push_str(&format!("Erlang processes: {} used, {} limit\n\n", s(node, "proc_used"), s(node, "proc_total")));
    out.push_str("Data directory\n\n");
    out.push_str(&format!("Node data directory: {}\n\n", s(node, "db_dir")));
    out.push_str("Config files\n\n");
    for f in node.get("config_files").and_then(Value::as_array).into_iter().flatten() {
        out.push_str(&format!(" * {}\n", format::text(f, format::Render::Plain)));
    }
    out.push_str("\nLog file(s)\n\n");
    for f in node.get("log_files").and_then(Value::as_array).into_iter().flatten() {
        out.push_str(&format!(" * {}\n", format::text(f, format::Render::Plain)));
    }
    out.push_str("\nAlarms\n\n");
    let mut alarms = Vec::new();
    if node.get("mem_alarm").and_then(Value::as_bool) == Some(true) {
        alarms.push("memory");
    }
    if node.get("disk_free_alarm").and_then(Value::as_bool) == Some(true) {
        alarms.push("disk");
    }
    out.push_str(&if alarms.is_empty() { "(none)\n\n".to_owned() } else { format!("{}\n\n", alarms.join("\n")) });
    out.push_str("Memory\n\n");
    out.push_str(&format!("Total memory used: {}\n", gb(node, "mem_used")));
    out.push_str(&format!("Calculation strategy: {}\n", s(node, "mem_calculation_strategy")));
    out.push_str(&format!("Memory high watermark: {}\n\n", gb(node, "mem_limit")));
    out.push_str("File Descriptors\n\n");
    out.push_str(&format!("Total: {}, limit: {}\n", s(node, "fd_used"), s(node, "fd_total")));
    out.push_str(&format!("Sockets: {}, limit: {}\n\n", s(node, "sockets_used"), s(node, "sockets_total")));
    out.push_str("Free Disk Space\n\n");
    out.push_str(&format!("Low free disk space watermark: {}\n", gb(node, "disk_free_limit")));
    out.push_str(&format!("Free disk space: {}\n\n", gb(node, "disk_free")));
    out.push_str("Totals\n\n");
    let totals = overview.get("object_totals").cloned().unwrap_or(Value::Null);
    out.push_str(&format!("Connection count: {}\n", s(&totals, "connections")));
    out.push_str(&format!("Queue count: {}\n", s(&totals, "queues")));
    let vhosts = node.get("vhosts").or_else(|| totals.get("vhosts")).map(|v| format::text(v, format::Render::Plain));
    if let Some(v) = vhosts {
        out.push_str(&format!("Virtual host count: {v}\n"));
    }
    out.push_str("\nListeners\n\n");
    for l in overview.get("listeners").and_then(Value::as_array).into_iter().flatten() {
        let ip = s(l, "ip_address");
        let ip = if ip.contains(':') { format!("[{ip}]") } else { ip };
        out.push_str(&format!("Interface: {ip}, port: {}, protocol: {}\n", s(l, "port"), s(l, "protocol")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_print_like_elixir_floats() {
        assert_eq!(seconds(60.0), "60.0");
        assert_eq!(seconds(5.0), "5.0");
        assert_eq!(seconds(2.5), "2.5");
    }

    #[test]
    fn clock_durations_read_as_milliseconds() {
        assert_eq!(parse_duration_ms("1h"), Some(3_600_000));
        assert_eq!(parse_duration_ms("500ms"), Some(500));
        assert_eq!(parse_duration_ms("250"), Some(250));
        assert_eq!(parse_duration_ms("2d"), Some(172_800_000));
        assert_eq!(parse_duration_ms("15m"), Some(900_000));
        assert_eq!(parse_duration_ms("1.5h"), None);
        assert_eq!(parse_duration_ms("h"), None);
        assert_eq!(parse_duration_ms("10y"), None);
        assert_eq!(parse_duration_ms("99999999999999999999d"), None);
    }

    #[test]
    fn every_verb_has_a_usage_line() {
        assert_eq!(
            usage_line("purge_queue"),
            "rabbitmqctl [--node <node>] [--longnames] [--quiet] purge_queue [--vhost <vhost>] <queue>"
        );
    }
}
