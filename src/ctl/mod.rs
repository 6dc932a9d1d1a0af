//! `warren ctl`: RabbitMQ's command-line tools over the management HTTP API.
//!
//! Owns argument parsing and output for four personalities, chosen by the
//! name the binary was invoked as (a symlink) or by `warren ctl`:
//! - `rabbitmqctl` ([`rabbitmqctl`]): the everyday verbs, rabbitmqctl's syntax,
//!   tab-separated output and exit codes;
//! - `rabbitmq-diagnostics` ([`diagnostics`]): ping, check_running,
//!   check_port_connectivity, as compose health checks call them;
//! - `rabbitmq-plugins` ([`diagnostics::plugins`]): no-ops, the features are built in;
//! - `rabbitmqadmin` ([`admin`]): `list`/`declare`/`delete`/`publish`/`get`/… with
//!   `name=value` arguments and ASCII tables.
//!
//! It talks only to a management API ([`client`]), never to broker internals,
//! so it works the same against Warren and against RabbitMQ. Nothing here
//! starts a runtime or touches the data directory.

pub mod admin;
pub mod client;
pub mod diagnostics;
pub mod format;
pub mod rabbitmqctl;

#[cfg(test)]
mod fixture_tests;

use std::io::Write;
use std::time::Duration;

use client::exit;
use format::Formatter;

/// Which tool the binary answers as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Rabbitmqctl,
    Diagnostics,
    Plugins,
    Admin,
}

impl Tool {
    /// The tool a program name stands for (`/usr/local/bin/rabbitmqctl`,
    /// `rabbitmqadmin.exe`), if any.
    pub fn from_program_name(argv0: &str) -> Option<Tool> {
        let name = std::path::Path::new(argv0).file_name()?.to_str()?;
        let name = name.strip_suffix(".exe").unwrap_or(name);
        match name {
            "rabbitmqctl" => Some(Tool::Rabbitmqctl),
            "rabbitmq-diagnostics" => Some(Tool::Diagnostics),
            "rabbitmq-plugins" => Some(Tool::Plugins),
            "rabbitmqadmin" => Some(Tool::Admin),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tool::Rabbitmqctl => "rabbitmqctl",
            Tool::Diagnostics => "rabbitmq-diagnostics",
            Tool::Plugins => "rabbitmq-plugins",
            Tool::Admin => "rabbitmqadmin",
        }
    }
}

/// A failed verb: the exit code and what to print on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: i32,
    pub message: String,
    /// Print the message as is, without rabbitmqctl's `Error:` line above it
    /// (usage errors, and the few errors rabbitmqctl prints bare).
    pub bare: bool,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Failure {
        Failure { code, message: message.into(), bare: false }
    }

    pub fn bare(code: i32, message: impl Into<String>) -> Failure {
        Failure { code, message: message.into(), bare: true }
    }
}

/// Where a verb writes. Tests pass buffers; the binary passes stdout/stderr.
pub struct Io<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    /// Standard input, for `import_definitions -` and `rabbitmqadmin publish`
    /// without `payload=`.
    pub input: &'a mut dyn std::io::Read,
}

impl Io<'_> {
    /// Writes to stdout; a closed pipe (`| head`) is not an error worth a message.
    pub fn print(&mut self, text: &str) {
        let _ = self.out.write_all(text.as_bytes());
    }

    pub fn println(&mut self, line: &str) {
        let _ = writeln!(self.out, "{line}");
    }
}

/// The default management API, where Warren (and RabbitMQ) listen.
pub const DEFAULT_URL: &str = "http://127.0.0.1:15672";

/// Options shared by rabbitmqctl, rabbitmq-diagnostics and rabbitmq-plugins.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--url` / `WARREN_MANAGEMENT_URL`.
    pub url: String,
    /// `--username` / `RABBITMQ_DEFAULT_USER`.
    pub username: String,
    /// `--password` / `RABBITMQ_DEFAULT_PASS`.
    pub password: String,
    /// `-p` / `--vhost`.
    pub vhost: String,
    /// `-q`: no "Listing ..." banners.
    pub quiet: bool,
    /// `-s`: no banners and no column headers.
    pub silent: bool,
    pub no_table_headers: bool,
    pub formatter: Formatter,
    /// `-t` / `--timeout`, in seconds.
    pub timeout: Option<f64>,
    /// `-n` / `--node`: accepted for scripts that pass it; the URL says which
    /// broker to talk to. Used only to name the node in messages.
    pub node: Option<String>,
    /// `set_policy --priority`.
    pub priority: Option<String>,
    /// `set_policy --apply-to`.
    pub apply_to: Option<String>,
    /// `delete_queue --if-empty` / `-e`.
    pub if_empty: bool,
    /// `delete_queue --if-unused` / `-u`.
    pub if_unused: bool,
    /// `add_vhost --description`.
    pub description: Option<String>,
    /// `add_vhost --tags`.
    pub tags: Option<String>,
    /// `add_vhost --default-queue-type`.
    pub default_queue_type: Option<String>,
    /// `list_user_limits --user`.
    pub user: Option<String>,
    /// `list_vhost_limits --global`, `list_user_limits --global`.
    pub global: bool,
    pub help: bool,
}

/// A parsed command line: options, the verb and its positional arguments.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub options: Options,
    pub verb: Option<String>,
    pub args: Vec<String>,
    /// The arguments as given, for "Arguments given:" in usage errors.
    pub given: Vec<String>,
}

impl Invocation {
    /// Whether banners ("Listing queues for vhost / ...") are printed.
    pub fn banners(&self) -> bool {
        !self.options.quiet && !self.options.silent && self.options.formatter == Formatter::Table
    }

    /// Whether list output starts with a column header line.
    pub fn headers(&self) -> bool {
        !self.options.silent && !self.options.no_table_headers
    }

    pub fn api(&self) -> client::Api {
        let timeout = self.options.timeout.map(|t| Duration::from_secs_f64(t.max(0.001)));
        client::Api::new(&self.options.url, &self.options.username, &self.options.password, timeout)
    }

    /// How messages name the node: `-n` if given, else the management URL.
    pub fn node_label(&self) -> String {
        self.options.node.clone().unwrap_or_else(|| self.options.url.clone())
    }

    /// The usage failure for a verb called with the wrong arguments.
    pub fn usage_error(&self, tool: Tool, problem: &str, usage: &str) -> Failure {
        Failure::bare(
            exit::USAGE,
            format!(
                "Error (argument validation): {problem}\nArguments given:\n\t{}\n\nUsage\n\n{usage}",
                self.given.join(" ")
            )
            .replace("rabbitmqctl [", &format!("{} [", tool.name())),
        )
    }
}

/// Options that take a value, by every name they are known under.
const VALUE_OPTIONS: &[(&str, &str)] = &[
    ("--url", "url"),
    ("--user", "user"),
    ("--username", "username"),
    ("--password", "password"),
    ("-p", "vhost"),
    ("--vhost", "vhost"),
    ("--formatter", "formatter"),
    ("-t", "timeout"),
    ("--timeout", "timeout"),
    ("-n", "node"),
    ("--node", "node"),
    ("--priority", "priority"),
    ("--apply-to", "apply-to"),
    ("--description", "description"),
    ("--tags", "tags"),
    ("--default-queue-type", "default-queue-type"),
    ("--erlang-cookie", "ignored"),
    ("--pattern", "ignored"),
];

/// Flags, by every name they are known under.
const FLAGS: &[(&str, &str)] = &[
    ("-q", "quiet"),
    ("--global", "global"),
    ("--quiet", "quiet"),
    ("-s", "silent"),
    ("--silent", "silent"),
    ("--no-table-headers", "no-table-headers"),
    ("-e", "if-empty"),
    ("--if-empty", "if-empty"),
    ("-u", "if-unused"),
    ("--if-unused", "if-unused"),
    ("-h", "help"),
    ("--help", "help"),
    // Accepted and ignored: they choose between nodes, Warren answers for itself.
    ("-l", "ignored"),
    ("--longnames", "ignored"),
    ("--online", "ignored"),
    ("--offline", "ignored"),
    ("--local", "ignored"),
    ("--verbose", "ignored"),
    ("-v", "ignored"),
    ("--minimal", "ignored"),
    ("--enabled", "ignored"),
    ("-E", "ignored"),
    ("--implicitly-enabled", "ignored"),
    ("--all", "ignored"),
];

/// Parses rabbitmqctl's command line: options may come before or after the
/// verb (`rabbitmqctl -q list_queues -p vh name`), `--opt=value` or
/// `--opt value`; `--` ends the options.
pub fn parse(args: &[String], env: &dyn Fn(&str) -> Option<String>) -> Result<Invocation, String> {
    let mut options = Options {
        url: env("WARREN_MANAGEMENT_URL").filter(|s| !s.is_empty()).unwrap_or_else(|| DEFAULT_URL.to_owned()),
        username: env("RABBITMQ_DEFAULT_USER").filter(|s| !s.is_empty()).unwrap_or_else(|| "guest".to_owned()),
        password: env("RABBITMQ_DEFAULT_PASS").filter(|s| !s.is_empty()).unwrap_or_else(|| "guest".to_owned()),
        vhost: "/".to_owned(),
        quiet: false,
        silent: false,
        no_table_headers: false,
        formatter: Formatter::Table,
        timeout: None,
        node: None,
        priority: None,
        apply_to: None,
        if_empty: false,
        if_unused: false,
        description: None,
        tags: None,
        default_queue_type: None,
        user: None,
        global: false,
        help: false,
    };
    let mut positional = Vec::new();
    let mut i = 0;
    let mut options_done = false;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if options_done || !arg.starts_with('-') || arg == "-" {
            positional.push(arg.clone());
            continue;
        }
        if arg == "--" {
            options_done = true;
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        if let Some((_, id)) = VALUE_OPTIONS.iter().find(|(n, _)| *n == name) {
            let value = match inline {
                Some(v) => v,
                None => {
                    let Some(v) = args.get(i) else { return Err(format!("option {name} needs a value")) };
                    i += 1;
                    v.clone()
                }
            };
            match *id {
                "url" => options.url = value,
                "username" => options.username = value,
                "password" => options.password = value,
                "vhost" => options.vhost = value,
                "formatter" => {
                    options.formatter = match value.as_str() {
                        "json" => Formatter::Json,
                        "table" | "tab" | "tsv" | "plain" => Formatter::Table,
                        other => return Err(format!("unsupported formatter '{other}' (json or table)")),
                    }
                }
                "timeout" => {
                    let seconds: f64 = value
                        .parse()
                        .ok()
                        .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                        .ok_or_else(|| format!("invalid timeout '{value}' (seconds)"))?;
                    options.timeout = Some(seconds);
                }
                "node" => options.node = Some(value),
                "user" => options.user = Some(value),
                "priority" => options.priority = Some(value),
                "apply-to" => options.apply_to = Some(value),
                "description" => options.description = Some(value),
                "tags" => options.tags = Some(value),
                "default-queue-type" => options.default_queue_type = Some(value),
                _ => {}
            }
            continue;
        }
        if inline.is_none() {
            if let Some((_, id)) = FLAGS.iter().find(|(n, _)| *n == name) {
                match *id {
                    "quiet" => options.quiet = true,
                    "global" => options.global = true,
                    "silent" => options.silent = true,
                    "no-table-headers" => options.no_table_headers = true,
                    "if-empty" => options.if_empty = true,
                    "if-unused" => options.if_unused = true,
                    "help" => options.help = true,
                    _ => {}
                }
                continue;
            }
        }
        // A negative number or other dash-led value is a positional argument
        // (set_permissions user "-" ...); unknown long options are errors.
        if name.starts_with("--") {
            return Err(format!("unknown option {name}"));
        }
        positional.push(arg.clone());
    }
    let mut positional = positional.into_iter();
    let verb = positional.next();
    Ok(Invocation { options, verb, args: positional.collect(), given: args.to_vec() })
}

/// Runs one tool with its arguments (without the program name); returns the exit code.
pub fn run(tool: Tool, args: &[String], env: &dyn Fn(&str) -> Option<String>, io: &mut Io) -> i32 {
    let result = match tool {
        Tool::Admin => admin::run(args, env, io),
        _ => match parse(args, env) {
            Err(problem) => Err(Failure::bare(
                exit::USAGE,
                format!("Error (argument validation): {problem}\nArguments given:\n\t{}", args.join(" ")),
            )),
            Ok(inv) => match tool {
                Tool::Rabbitmqctl => rabbitmqctl::run(&inv, io),
                Tool::Diagnostics => diagnostics::run(&inv, io),
                Tool::Plugins => diagnostics::plugins(&inv, io),
                Tool::Admin => unreachable!("handled above"),
            },
        },
    };
    match result {
        Ok(()) => {
            let _ = io.out.flush();
            exit::OK
        }
        Err(failure) => {
            let _ = io.out.flush();
            if failure.bare {
                let _ = writeln!(io.err, "{}", failure.message);
            } else {
                let _ = writeln!(io.err, "Error:\n{}", failure.message);
            }
            failure.code
        }
    }
}

/// The binary's entry: runs `tool` on the process's stdio and environment.
pub fn main(tool: Tool, args: &[String]) -> i32 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut err = stderr.lock();
    let mut input = stdin.lock();
    let env = |name: &str| std::env::var(name).ok();
    let mut io = Io { out: &mut out, err: &mut err, input: &mut input };
    run(tool, args, &env, &mut io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn program_names_choose_the_tool() {
        assert_eq!(Tool::from_program_name("/usr/sbin/rabbitmqctl"), Some(Tool::Rabbitmqctl));
        assert_eq!(Tool::from_program_name("rabbitmq-diagnostics"), Some(Tool::Diagnostics));
        assert_eq!(Tool::from_program_name("./rabbitmq-plugins"), Some(Tool::Plugins));
        assert_eq!(Tool::from_program_name("rabbitmqadmin"), Some(Tool::Admin));
        assert_eq!(Tool::from_program_name("/usr/bin/warren"), None);
    }

    #[test]
    fn options_anywhere_and_defaults() {
        let inv = parse(&strings(&["-q", "list_queues", "-p", "vh", "name", "--formatter=json", "messages"]), &no_env)
            .unwrap();
        assert_eq!(inv.verb.as_deref(), Some("list_queues"));
        assert_eq!(inv.args, ["name", "messages"]);
        assert_eq!(inv.options.vhost, "vh");
        assert!(inv.options.quiet);
        assert_eq!(inv.options.formatter, Formatter::Json);
        assert_eq!(inv.options.url, DEFAULT_URL);
        assert_eq!((inv.options.username.as_str(), inv.options.password.as_str()), ("guest", "guest"));
    }

    #[test]
    fn environment_supplies_url_and_credentials() {
        let env = |name: &str| match name {
            "WARREN_MANAGEMENT_URL" => Some("http://h:1".to_owned()),
            "RABBITMQ_DEFAULT_USER" => Some("u".to_owned()),
            "RABBITMQ_DEFAULT_PASS" => Some("p".to_owned()),
            _ => None,
        };
        let inv = parse(&strings(&["status"]), &env).unwrap();
        assert_eq!((inv.options.url.as_str(), inv.options.username.as_str()), ("http://h:1", "u"));
        let inv = parse(&strings(&["status", "--url", "http://x:2", "--username", "a", "--password=b"]), &env).unwrap();
        assert_eq!(
            (inv.options.url.as_str(), inv.options.username.as_str(), inv.options.password.as_str()),
            ("http://x:2", "a", "b")
        );
    }

    #[test]
    fn node_is_accepted_and_values_may_start_with_a_dash() {
        let inv = parse(
            &strings(&["-n", "rabbit@h", "set_policy", "--priority", "-1", "--apply-to", "queues", "p", "^x", "{}"]),
            &no_env,
        )
        .unwrap();
        assert_eq!(inv.options.node.as_deref(), Some("rabbit@h"));
        assert_eq!(inv.options.priority.as_deref(), Some("-1"));
        assert_eq!(inv.args, ["p", "^x", "{}"]);
        let inv = parse(&strings(&["export_definitions", "-"]), &no_env).unwrap();
        assert_eq!(inv.args, ["-"]);
    }

    #[test]
    fn bad_options_are_reported() {
        assert!(parse(&strings(&["list_queues", "--formatter", "xml"]), &no_env).is_err());
        assert!(parse(&strings(&["list_queues", "--nosuch"]), &no_env).is_err());
        assert!(parse(&strings(&["list_queues", "-t"]), &no_env).is_err());
        assert!(parse(&strings(&["list_queues", "-t", "soon"]), &no_env).is_err());
    }

    /// Runs a tool with no management API reachable (port 9: discard, unused).
    fn offline(tool: Tool, args: &[&str]) -> (i32, String, String) {
        let env = |name: &str| (name == "WARREN_MANAGEMENT_URL").then(|| "http://127.0.0.1:9".to_owned());
        let (mut out, mut err, mut input) = (Vec::new(), Vec::new(), std::io::empty());
        let mut io = Io { out: &mut out, err: &mut err, input: &mut input };
        let code = run(tool, &strings(args), &env, &mut io);
        (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
    }

    #[test]
    fn usage_errors_need_no_broker() {
        let (code, out, err) =
            offline(Tool::Rabbitmqctl, &["-n", "ref5673@localhost", "list_queues", "name", "nosuchcol"]);
        let recorded = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/management/rabbitmqctl/list_queues_bad_col.err"
        ))
        .unwrap();
        assert_eq!((code, out.as_str()), (64, ""));
        assert_eq!(err, recorded.replace("\x1b[1m", "").replace("\x1b[0m", ""));
        let (code, _, err) = offline(Tool::Rabbitmqctl, &["list_queues", "--formatter", "xml"]);
        assert_eq!(code, 64);
        assert!(err.contains("unsupported formatter 'xml'"));
    }

    #[test]
    fn plugins_are_built_in() {
        let (code, out, _) = offline(Tool::Plugins, &["enable", "rabbitmq_management", "rabbitmq_shovel"]);
        assert_eq!(code, 0);
        assert!(out.contains("rabbitmq_management is built into Warren"));
        assert!(out.ends_with("Plugin configuration unchanged.\n"));
        let (code, _, err) = offline(Tool::Plugins, &["enable", "nosuch_plugin"]);
        assert_eq!((code, err.as_str()), (70, "Error:\n{:plugins_not_found, [:nosuch_plugin]}\n"));
        let (code, out, _) = offline(Tool::Plugins, &["-q", "list", "prometheus"]);
        assert_eq!((code, out.trim_end()), (0, "[E*] rabbitmq_prometheus               built into Warren"));
        assert_eq!(offline(Tool::Plugins, &["is_enabled", "rabbitmq_management"]).0, 0);
        assert_eq!(offline(Tool::Plugins, &["is_enabled", "rabbitmq_mqtt"]).0, 69);
    }

    #[test]
    fn quiet_and_silent() {
        let q = parse(&strings(&["-q", "list_queues"]), &no_env).unwrap();
        assert!(!q.banners() && q.headers());
        let s = parse(&strings(&["-s", "list_queues"]), &no_env).unwrap();
        assert!(!s.banners() && !s.headers());
        let n = parse(&strings(&["list_queues"]), &no_env).unwrap();
        assert!(n.banners() && n.headers());
    }
}
