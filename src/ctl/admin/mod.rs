//! The rabbitmqadmin personality: `list`, `show`, `declare`, `delete`,
//! `close`, `purge`, `publish`, `get`, `export`, `import`, with the real
//! rabbitmqadmin's `name=value` arguments, request bodies, ASCII tables and
//! messages (its Python source, 3.10.8, is the reference; fixtures in
//! `tests/fixtures/management/rabbitmqadmin/`).

use serde_json::{json, Map, Value};

use super::client::{encode, Api, Response};
use super::{Failure, Io};

mod output;

use output::format_list;
pub use output::{ascii_table, py_json, to_table};

/// rabbitmqadmin exits 1 for every error.
const FAIL: i32 = 1;

/// Object types `list` knows: whether the path takes `/{vhost}` when `-V`
/// is given, the default columns, and columns shown as JSON.
struct Listable {
    name: &'static str,
    vhost: bool,
    cols: &'static [&'static str],
    json: &'static [&'static str],
}

const LISTABLE: &[Listable] = &[
    Listable { name: "connections", vhost: false, cols: &["name", "user", "channels"], json: &[] },
    Listable { name: "channels", vhost: false, cols: &["name", "user"], json: &[] },
    Listable { name: "consumers", vhost: true, cols: &[], json: &[] },
    Listable { name: "exchanges", vhost: true, cols: &["name", "type"], json: &[] },
    Listable { name: "queues", vhost: true, cols: &["name", "messages"], json: &[] },
    Listable { name: "bindings", vhost: true, cols: &["source", "destination", "routing_key"], json: &[] },
    Listable { name: "users", vhost: false, cols: &[], json: &[] },
    Listable { name: "vhosts", vhost: false, cols: &["name", "messages"], json: &[] },
    Listable { name: "permissions", vhost: false, cols: &[], json: &[] },
    Listable { name: "nodes", vhost: false, cols: &["name", "type", "mem_used"], json: &[] },
    Listable { name: "parameters", vhost: false, cols: &[], json: &["value"] },
    Listable { name: "policies", vhost: false, cols: &[], json: &["definition"] },
    Listable { name: "operator_policies", vhost: false, cols: &[], json: &["definition"] },
];

const PROMOTE_COLUMNS: &[&str] = &["vhost", "name", "type", "source", "destination", "destination_type", "routing_key"];

/// An object type for declare/delete/close/purge/publish/get: mandatory keys
/// (a slice of alternatives counts once), optional keys with defaults
/// (`None`: no default), JSON-valued keys, and the URI template.
struct Shape {
    name: &'static str,
    mandatory: &'static [&'static [&'static str]],
    optional: &'static [(&'static str, Option<Fallback>)],
    json: &'static [&'static str],
    uri: &'static str,
}

#[derive(Clone, Copy)]
enum Fallback {
    Str(&'static str),
    EmptyObject,
    Int(i64),
}

use Fallback::{EmptyObject, Int, Str};

const DECLARABLE: &[Shape] = &[
    Shape {
        name: "exchange",
        mandatory: &[&["name"], &["type"]],
        optional: &[
            ("auto_delete", Some(Str("false"))),
            ("durable", Some(Str("true"))),
            ("internal", Some(Str("false"))),
            ("arguments", Some(EmptyObject)),
        ],
        json: &["arguments"],
        uri: "/exchanges/{vhost}/{name}",
    },
    Shape {
        name: "queue",
        mandatory: &[&["name"]],
        optional: &[
            ("auto_delete", Some(Str("false"))),
            ("durable", Some(Str("true"))),
            ("arguments", Some(EmptyObject)),
            ("node", None),
            ("queue_type", None),
        ],
        json: &["arguments"],
        uri: "/queues/{vhost}/{name}",
    },
    Shape {
        name: "binding",
        mandatory: &[&["source"], &["destination"]],
        optional: &[
            ("destination_type", Some(Str("queue"))),
            ("routing_key", Some(Str(""))),
            ("arguments", Some(EmptyObject)),
        ],
        json: &["arguments"],
        uri: "/bindings/{vhost}/e/{source}/{destination_char}/{destination}",
    },
    Shape { name: "vhost", mandatory: &[&["name"]], optional: &[("tracing", None)], json: &[], uri: "/vhosts/{name}" },
    Shape {
        name: "user",
        mandatory: &[&["name"], &["password", "password_hash"], &["tags"]],
        optional: &[("hashing_algorithm", None)],
        json: &[],
        uri: "/users/{name}",
    },
    Shape {
        name: "permission",
        mandatory: &[&["vhost"], &["user"], &["configure"], &["write"], &["read"]],
        optional: &[],
        json: &[],
        uri: "/permissions/{vhost}/{user}",
    },
    Shape {
        name: "policy",
        mandatory: &[&["name"], &["pattern"], &["definition"]],
        optional: &[("priority", Some(Int(0))), ("apply-to", None)],
        json: &["definition", "priority"],
        uri: "/policies/{vhost}/{name}",
    },
];

const DELETABLE: &[Shape] = &[
    Shape { name: "exchange", mandatory: &[&["name"]], optional: &[], json: &[], uri: "/exchanges/{vhost}/{name}" },
    Shape { name: "queue", mandatory: &[&["name"]], optional: &[], json: &[], uri: "/queues/{vhost}/{name}" },
    Shape {
        name: "binding",
        mandatory: &[&["source"], &["destination_type"], &["destination"]],
        optional: &[("properties_key", Some(Str("~")))],
        json: &[],
        uri: "/bindings/{vhost}/e/{source}/{destination_char}/{destination}/{properties_key}",
    },
    Shape { name: "vhost", mandatory: &[&["name"]], optional: &[], json: &[], uri: "/vhosts/{name}" },
    Shape { name: "user", mandatory: &[&["name"]], optional: &[], json: &[], uri: "/users/{name}" },
    Shape {
        name: "permission",
        mandatory: &[&["vhost"], &["user"]],
        optional: &[],
        json: &[],
        uri: "/permissions/{vhost}/{user}",
    },
    Shape { name: "policy", mandatory: &[&["name"]], optional: &[], json: &[], uri: "/policies/{vhost}/{name}" },
];

const CLOSABLE: &[Shape] =
    &[Shape { name: "connection", mandatory: &[&["name"]], optional: &[], json: &[], uri: "/connections/{name}" }];

const PURGABLE: &[Shape] = &[Shape {
    name: "queue",
    mandatory: &[&["name"]],
    optional: &[],
    json: &[],
    uri: "/queues/{vhost}/{name}/contents",
}];

const PUBLISH: Shape = Shape {
    name: "publish",
    mandatory: &[&["routing_key"]],
    optional: &[
        ("payload", None),
        ("properties", Some(EmptyObject)),
        ("exchange", Some(Str("amq.default"))),
        ("payload_encoding", Some(Str("string"))),
    ],
    json: &["properties"],
    uri: "/exchanges/{vhost}/{exchange}/publish",
};

const GET: Shape = Shape {
    name: "get",
    mandatory: &[&["queue"]],
    optional: &[
        ("count", Some(Str("1"))),
        ("ackmode", Some(Str("ack_requeue_true"))),
        ("payload_file", None),
        ("encoding", Some(Str("auto"))),
    ],
    json: &[],
    uri: "/queues/{vhost}/{queue}/get",
};

/// rabbitmqadmin's options.
struct AdminOptions {
    base: String,
    hostname: String,
    username: String,
    password: String,
    vhost: Option<String>,
    verbose: bool,
    format: String,
    sort: Option<String>,
    sort_reverse: bool,
    depth: usize,
    timeout: Option<f64>,
}

fn usage_failure(message: &str) -> Failure {
    Failure::bare(FAIL, format!("\nERROR: {message}\n\nrabbitmqadmin --help for help\n"))
}

fn die(message: &str) -> Failure {
    Failure::bare(FAIL, format!("*** {message}\n"))
}

fn parse(args: &[String], env: &dyn Fn(&str) -> Option<String>) -> Result<(AdminOptions, Vec<String>), Failure> {
    let mut host = "localhost".to_owned();
    let mut port = "15672".to_owned();
    let mut prefix = String::new();
    let mut base: Option<String> = env("WARREN_MANAGEMENT_URL").filter(|s| !s.is_empty());
    let mut o = AdminOptions {
        base: String::new(),
        hostname: String::new(),
        username: env("RABBITMQ_DEFAULT_USER").filter(|s| !s.is_empty()).unwrap_or_else(|| "guest".to_owned()),
        password: env("RABBITMQ_DEFAULT_PASS").filter(|s| !s.is_empty()).unwrap_or_else(|| "guest".to_owned()),
        vhost: None,
        verbose: true,
        format: "table".to_owned(),
        sort: None,
        sort_reverse: false,
        depth: 1,
        timeout: None,
    };
    let mut rest = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String, Failure> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            let v =
                args.get(i).cloned().ok_or_else(|| usage_failure(&format!("{name} option requires an argument")))?;
            i += 1;
            Ok(v)
        };
        match name.as_str() {
            "-H" | "--host" => {
                host = value()?;
                base = None;
            }
            "-P" | "--port" => {
                port = value()?;
                base = None;
            }
            "--path-prefix" => prefix = value()?,
            "-U" | "--base-uri" | "--url" => base = Some(value()?),
            "-V" | "--vhost" => o.vhost = Some(value()?),
            "-u" | "--username" => o.username = value()?,
            "-p" | "--password" => o.password = value()?,
            "-f" | "--format" => o.format = value()?,
            "-S" | "--sort" => o.sort = Some(value()?),
            "-d" | "--depth" => {
                let v = value()?;
                o.depth = v.parse().map_err(|_| usage_failure(&format!("invalid depth {v}")))?;
            }
            "-t" | "--request-timeout" => {
                let v = value()?;
                o.timeout = Some(v.parse().map_err(|_| usage_failure(&format!("invalid timeout {v}")))?);
            }
            "-c" | "--config" | "-N" | "--node" => {
                value()?;
            }
            "-q" | "--quiet" => o.verbose = false,
            "-R" | "--sort-reverse" => o.sort_reverse = true,
            "--version" => return Err(Failure::bare(0, format!("rabbitmqadmin {}", env!("CARGO_PKG_VERSION")))),
            "-h" | "--help" => rest.insert(0, "help".to_owned()),
            _ if arg.starts_with('-') && arg.len() > 1 && !arg.contains('=') => {
                return Err(usage_failure(&format!("no such option: {arg}")))
            }
            _ => rest.push(arg.clone()),
        }
    }
    match base {
        Some(b) => {
            o.hostname = super::diagnostics::url_host(&b);
            o.base = format!("{}{prefix}", b.trim_end_matches('/'));
        }
        None => {
            o.hostname = host.clone();
            o.base = format!("http://{host}:{port}{prefix}");
        }
    }
    Ok((o, rest))
}

pub fn run(args: &[String], env: &dyn Fn(&str) -> Option<String>, io: &mut Io) -> Result<(), Failure> {
    let (o, args) = match parse(args, env) {
        Ok(parsed) => parsed,
        Err(f) if f.code == 0 => {
            io.println(&f.message);
            return Ok(());
        }
        Err(f) => return Err(f),
    };
    let Some(action) = args.first() else { return Err(usage_failure("Action not specified")) };
    let args = &args[1..];
    let timeout = o.timeout.map(std::time::Duration::from_secs_f64);
    let api = Api::new(&o.base, &o.username, &o.password, timeout);
    let verbose = |io: &mut Io, line: &str| {
        if o.verbose {
            io.println(line);
        }
    };
    match action.as_str() {
        "help" => {
            io.print(&help());
            Ok(())
        }
        "list" => {
            let Some(kind) = args.first() else { return Err(usage_failure("Don't know how to list ")) };
            let kind = kind.as_str();
            let Some(info) = LISTABLE.iter().find(|l| l.name == kind) else {
                return Err(usage_failure(&format!("Don't know how to list {kind}")));
            };
            let mut uri = format!("/{}", kind.replace('_', "-"));
            if let (true, Some(vh)) = (info.vhost, &o.vhost) {
                uri.push_str(&format!("/{}", encode(vh)));
            }
            let mut cols: Vec<String> = args[1..].to_vec();
            if cols.is_empty() && o.depth == 1 && !o.format.contains("json") {
                cols = info.cols.iter().map(|c| c.to_string()).collect();
            }
            let mut query = Vec::new();
            if !cols.is_empty() {
                query.push(format!("columns={}", cols.join(",")));
            }
            if let Some(s) = &o.sort {
                query.push(format!("sort={s}"));
            }
            if o.sort_reverse {
                query.push("sort_reverse=true".to_owned());
            }
            if !query.is_empty() {
                uri = format!("{uri}?{}", query.join("&"));
            }
            let body = request(&api, "GET", &uri, None)?;
            format_list(io, &o, &body, &cols, info.json)
        }
        "show" => {
            if args.first().map(String::as_str) != Some("overview") {
                return Err(usage_failure(&format!(
                    "Don't know how to show {}",
                    args.first().map(String::as_str).unwrap_or("")
                )));
            }
            let mut cols: Vec<String> = args[1..].to_vec();
            if cols.is_empty() && o.depth == 1 && !o.format.contains("json") {
                cols = ["rabbitmq_version", "cluster_name", "queue_totals.messages", "object_totals.queues"]
                    .iter()
                    .map(|c| c.to_string())
                    .collect();
            }
            let body = request(&api, "GET", "/overview", None)?;
            format_list(io, &o, &format!("[{body}]"), &cols, &[])
        }
        "declare" => {
            let (shape, uri, upload) = declare_delete_parse(&o, args, DECLARABLE)?;
            let method = if shape.name == "binding" { "POST" } else { "PUT" };
            request(&api, method, &uri, Some(&upload))?;
            verbose(io, &format!("{} declared", shape.name));
            Ok(())
        }
        "delete" | "close" | "purge" => {
            let root = match action.as_str() {
                "delete" => DELETABLE,
                "close" => CLOSABLE,
                _ => PURGABLE,
            };
            let (shape, uri, _) = declare_delete_parse(&o, args, root)?;
            request(&api, "DELETE", &uri, None)?;
            let done = match action.as_str() {
                "delete" => "deleted",
                "close" => "closed",
                _ => "purged",
            };
            verbose(io, &format!("{} {done}", shape.name));
            Ok(())
        }
        "publish" => {
            let (uri, mut upload) = parse_args(&o, args, &PUBLISH)?;
            if !upload.contains_key("payload") {
                let mut data = Vec::new();
                std::io::Read::read_to_end(io.input, &mut data).map_err(|e| die(&format!("cannot read stdin: {e}")))?;
                use base64::Engine;
                upload.insert("payload".into(), json!(base64::engine::general_purpose::STANDARD.encode(data)));
                upload.insert("payload_encoding".into(), json!("base64"));
            }
            let body = request(&api, "POST", &uri, Some(&Value::Object(upload)))?;
            let routed = serde_json::from_str::<Value>(&body).ok().and_then(|v| v.get("routed")?.as_bool());
            verbose(io, if routed == Some(true) { "Message published" } else { "Message published but NOT routed" });
            Ok(())
        }
        "get" => {
            let (uri, upload) = parse_args(&o, args, &GET)?;
            let payload_file = upload.get("payload_file").and_then(Value::as_str).map(str::to_owned);
            if payload_file.is_some() && upload.get("count").and_then(Value::as_str) != Some("1") {
                return Err(usage_failure("Cannot get multiple messages using payload_file"));
            }
            let body = request(&api, "POST", &uri, Some(&Value::Object(upload)))?;
            if let Some(file) = payload_file {
                let messages: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let payload = messages.get(0).and_then(|m| m.get("payload")).and_then(Value::as_str).unwrap_or("");
                std::fs::write(&file, payload).map_err(|e| die(&format!("cannot write {file}: {e}")))?;
                let cols: Vec<String> = ["routing_key", "exchange", "message_count", "payload_bytes", "redelivered"]
                    .iter()
                    .map(|c| c.to_string())
                    .collect();
                format_list(io, &o, &body, &cols, &[])
            } else {
                format_list(io, &o, &body, &[], &[])
            }
        }
        "export" => {
            let [path] = args else { return Err(usage_failure("Exactly one argument required")) };
            let uri = match &o.vhost {
                Some(vh) => format!("/definitions/{}", encode(vh)),
                None => "/definitions".to_owned(),
            };
            let body = request(&api, "GET", &uri, None)?;
            std::fs::write(path, body).map_err(|e| die(&format!("cannot write {path}: {e}")))?;
            verbose(io, &format!("Exported definitions for {} to \"{path}\"", o.hostname));
            Ok(())
        }
        "import" => {
            let [path] = args else { return Err(usage_failure("Exactly one argument required")) };
            let text = std::fs::read_to_string(path).map_err(|e| die(&format!("cannot read {path}: {e}")))?;
            let uri = match &o.vhost {
                Some(vh) => format!("/definitions/{}", encode(vh)),
                None => "/definitions".to_owned(),
            };
            request_raw(&api, "POST", &uri, &text)?;
            // The real tool names host and path this way round.
            verbose(
                io,
                &format!(
                    "Uploaded definitions from \"{}\" to {path}. The import process may take some time. Consult server logs to track progress.",
                    o.hostname
                ),
            );
            Ok(())
        }
        other => Err(usage_failure(&format!("Action {other} not understood"))),
    }
}

fn help() -> String {
    let mut text = String::from(
        "Usage\n=====\n  rabbitmqadmin [options] subcommand\n\nWarren's rabbitmqadmin talks to the management API at \
         -H/--host and -P/--port (default localhost:15672), or -U/--base-uri / --url / env WARREN_MANAGEMENT_URL.\n\n\
         Display\n=======\n\n",
    );
    for l in LISTABLE {
        text.push_str(&format!("  list {} [<column>...]\n", l.name));
    }
    text.push_str("  show overview [<column>...]\n\nObject Manipulation\n===================\n\n");
    for (verb, root) in [("declare", DECLARABLE), ("delete", DELETABLE), ("close", CLOSABLE), ("purge", PURGABLE)] {
        for shape in root {
            let mandatory: Vec<String> = shape.mandatory.iter().map(|alts| format!("{}=...", alts.join("|"))).collect();
            let optional: Vec<String> = shape.optional.iter().map(|(k, _)| format!("{k}=...")).collect();
            text.push_str(&format!("  {verb} {} {} [{}]\n", shape.name, mandatory.join(" "), optional.join(" ")));
        }
    }
    text.push_str("\nBroker Definitions\n==================\n\n  export <file>\n  import <file>\n\n");
    text.push_str("Publishing and Consuming\n========================\n\n");
    text.push_str("  publish routing_key=... [payload=... properties=... exchange=... payload_encoding=...]\n");
    text.push_str("  get queue=... [count=... ackmode=... payload_file=... encoding=...]\n");
    text
}

fn declare_delete_parse<'a>(
    o: &AdminOptions,
    args: &[String],
    root: &'a [Shape],
) -> Result<(&'a Shape, String, Value), Failure> {
    let Some(kind) = args.first() else { return Err(usage_failure("Type not specified")) };
    let Some(shape) = root.iter().find(|s| s.name == kind) else {
        return Err(usage_failure(&format!("Type {kind} not recognised")));
    };
    let (uri, upload) = parse_args(o, &args[1..], shape)?;
    Ok((shape, uri, Value::Object(upload)))
}

/// rabbitmqadmin's `parse_args`: defaults, then `k=v` arguments (JSON for
/// JSON keys), mandatory keys checked, `vhost` added, the URI filled in
/// with each value percent-encoded.
fn parse_args(o: &AdminOptions, args: &[String], shape: &Shape) -> Result<(String, Map<String, Value>), Failure> {
    let mut upload = Map::new();
    for (k, default) in shape.optional {
        match default {
            Some(Str(s)) => upload.insert(k.to_string(), json!(s)),
            Some(EmptyObject) => upload.insert(k.to_string(), json!({})),
            Some(Int(n)) => upload.insert(k.to_string(), json!(n)),
            None => None,
        };
    }
    for arg in args {
        let Some((name, value)) = arg.split_once('=') else {
            return Err(usage_failure(&format!("Argument \"{arg}\" not in the name=value format")));
        };
        let known =
            shape.mandatory.iter().any(|alts| alts.contains(&name)) || shape.optional.iter().any(|(k, _)| *k == name);
        if !known {
            return Err(usage_failure(&format!("Argument \"{name}\" is not recognised")));
        }
        let value = if shape.json.contains(&name) {
            serde_json::from_str(value)
                .map_err(|_| Failure::bare(FAIL, format!("ERROR: Could not parse JSON:\n  {value}")))?
        } else {
            json!(value)
        };
        upload.insert(name.to_owned(), value);
    }
    for alts in shape.mandatory {
        if !alts.iter().any(|k| upload.contains_key(*k)) {
            return Err(usage_failure(&if alts.len() == 1 {
                format!("mandatory argument \"{}\" is required", alts[0])
            } else {
                format!("one of mandatory arguments \"{alts:?}\" is required")
            }));
        }
    }
    if !shape.mandatory.iter().any(|alts| alts.contains(&"vhost")) {
        upload.insert("vhost".into(), json!(o.vhost.clone().unwrap_or_else(|| "/".to_owned())));
    }
    if shape.name == "queue" {
        if let Some(queue_type) = upload.get("queue_type").cloned() {
            let args = upload.entry("arguments").or_insert_with(|| json!({}));
            if let Some(map) = args.as_object_mut() {
                map.insert("x-queue-type".into(), queue_type);
            }
        }
    }
    let mut uri = shape.uri.to_owned();
    for (k, v) in &upload {
        if let Some(s) = v.as_str().filter(|s| !s.is_empty()) {
            uri = uri.replace(&format!("{{{k}}}"), &encode(s));
            if k == "destination_type" {
                uri = uri.replace("{destination_char}", &s[..1]);
            }
        }
    }
    if uri.contains('{') {
        return Err(usage_failure(&format!("missing a value for {uri}")));
    }
    Ok((uri, upload))
}

fn request(api: &Api, method: &str, uri: &str, body: Option<&Value>) -> Result<String, Failure> {
    let path = format!("/api{uri}");
    let response = match (method, body) {
        ("GET", _) => api.get(&path),
        ("DELETE", _) => api.delete(&path, None),
        ("PUT", Some(b)) => api.put(&path, b),
        (_, Some(b)) => api.post(&path, b),
        (_, None) => api.post_raw(&path, ""),
    };
    check(&path, response)
}

fn request_raw(api: &Api, _method: &str, uri: &str, body: &str) -> Result<String, Failure> {
    let path = format!("/api{uri}");
    check(&path, api.post_raw(&path, body))
}

/// rabbitmqadmin's status handling: 400 prints the reason, 401 "Access
/// refused", 404 "Not found", each as `*** ...` with exit 1.
fn check(path: &str, response: Result<Response, Failure>) -> Result<String, Failure> {
    let response = match response {
        Ok(r) => r,
        Err(f) if f.code == super::client::exit::NO_PERM => return Err(die(&format!("Access refused: {path}"))),
        Err(f) => return Err(die(&format!("Could not connect: {}", f.message))),
    };
    match response.status {
        200..=299 => Ok(response.body),
        400 => Err(die(&response.reason())),
        404 => Err(die(&format!("Not found: {path}"))),
        status => Err(die(&format!("Received response {status} for path {path}\n{}", response.body))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> AdminOptions {
        parse(&[], &|_| None).unwrap().0
    }

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn python_json() {
        assert_eq!(py_json(&json!({"message-ttl": 60000})), r#"{"message-ttl": 60000}"#);
        assert_eq!(py_json(&json!([1, "é", {"a": null}])), r#"[1, "\u00e9", {"a": null}]"#);
    }

    #[test]
    fn declare_bodies_match_rabbitmqadmin() {
        let (uri, upload) = parse_args(&opts(), &strings(&["name=a/b", "durable=false"]), &DECLARABLE[1]).unwrap();
        assert_eq!(uri, "/queues/%2F/a%2Fb");
        assert_eq!(
            Value::Object(upload),
            json!({"auto_delete": "false", "durable": "false", "arguments": {}, "name": "a/b", "vhost": "/"})
        );
        let (uri, _) = parse_args(&opts(), &strings(&["source=x", "destination=q"]), &DECLARABLE[2]).unwrap();
        assert_eq!(uri, "/bindings/%2F/e/x/q/q");
        let (uri, _) =
            parse_args(&opts(), &strings(&["source=x", "destination=y", "destination_type=exchange"]), &DELETABLE[2])
                .unwrap();
        assert_eq!(uri, "/bindings/%2F/e/x/e/y/~");
        let (_, upload) = parse_args(
            &opts(),
            &strings(&["name=p", "pattern=^x", "definition={\"max-length\":1}", "priority=3"]),
            &DECLARABLE[6],
        )
        .unwrap();
        assert_eq!(upload["priority"], json!(3));
        assert_eq!(upload["definition"], json!({"max-length": 1}));
    }

    #[test]
    fn argument_errors_match_rabbitmqadmin() {
        let e = parse_args(&opts(), &[], &DECLARABLE[1]).unwrap_err();
        assert_eq!(e.message, "\nERROR: mandatory argument \"name\" is required\n\nrabbitmqadmin --help for help\n");
        let e = parse_args(&opts(), &strings(&["nosuch=1"]), &DECLARABLE[1]).unwrap_err();
        assert!(e.message.contains("Argument \"nosuch\" is not recognised"));
        let e = parse_args(&opts(), &strings(&["name"]), &DECLARABLE[1]).unwrap_err();
        assert!(e.message.contains("not in the name=value format"));
    }

    #[test]
    fn connection_options() {
        let (o, rest) = parse(&strings(&["-H", "h", "-P", "1", "-V", "v", "list", "queues"]), &|_| None).unwrap();
        assert_eq!((o.base.as_str(), o.vhost.as_deref()), ("http://h:1", Some("v")));
        assert_eq!(rest, ["list", "queues"]);
        let (o, _) = parse(&strings(&["-U", "http://x:2/", "--path-prefix", "/mgmt"]), &|_| None).unwrap();
        assert_eq!(o.base, "http://x:2/mgmt");
    }

    #[test]
    fn tables_centre_headers() {
        let t = ascii_table(&strings(&["name", "messages"]), &[strings(&["jobs", "1"]), strings(&["orders", "3"])]);
        assert_eq!(
            t,
            "+--------+----------+\n|  name  | messages |\n+--------+----------+\n| jobs   | 1        |\n| orders | 3        |\n+--------+----------+\n"
        );
    }
}
