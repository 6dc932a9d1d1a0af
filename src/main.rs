//! The `warren` binary: parse flags, start the server, wait for a signal.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "warren", version, about = "An AMQP 0-9-1 message broker that RabbitMQ clients use unchanged")]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Run the broker (the default when no subcommand is given).
    Serve(ServeArgs),
    /// Load-test any AMQP 0-9-1 broker (this one or RabbitMQ) by URI.
    Perf(warren::perf::PerfArgs),
    /// rabbitmqctl over the management HTTP API: `warren ctl list_queues`,
    /// `warren ctl help`. `warren ctl diagnostics|plugins|admin ...` answer as
    /// rabbitmq-diagnostics, rabbitmq-plugins and rabbitmqadmin; so does the
    /// binary invoked through a symlink of that name.
    Ctl {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Print a password hash for a definitions file's `password_hash`, as
    /// `rabbitmqctl hash_password` does. Without PASSWORD it is read from
    /// the first line of standard input (so it stays out of `ps` and shell
    /// history).
    HashPassword {
        password: Option<String>,
        /// rabbit_password_hashing_sha256 (the default), _sha512 or _md5;
        /// put the same name in the user's `hashing_algorithm`.
        #[arg(long, default_value = "rabbit_password_hashing_sha256")]
        algorithm: String,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ClockMode {
    Real,
    Manual,
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0", env = "WARREN_BIND")]
    bind: IpAddr,
    /// AMQP port; 0 picks a free one (see --port-file).
    #[arg(long, default_value_t = 5672, env = "RABBITMQ_NODE_PORT")]
    port: u16,
    /// Write the port actually bound to this file once listening.
    #[arg(long)]
    port_file: Option<PathBuf>,
    /// Write the AMQPS port actually bound to this file once listening
    /// (with --tls-port 0).
    #[arg(long, requires = "tls_cert")]
    tls_port_file: Option<PathBuf>,
    /// `manual`: broker time (TTLs, expiration, x-expires, x-death
    /// timestamps) stands still until moved with POST /api/warren/clock,
    /// `warren ctl clock advance 1h` or the Rust API. Heartbeats and other
    /// socket timers stay on real time. For tests.
    #[arg(long, value_enum, default_value = "real", env = "WARREN_CLOCK")]
    clock: ClockMode,
    /// Serve /api/warren/faults/... (administrators only): close or drop
    /// connections, close channels, block publishers, slow writes, pause
    /// queues, nack publishes, cancel consumers, simulate a restart, raise
    /// alarms. For tests of clients' recovery; never in production.
    #[arg(long, env = "WARREN_ALLOW_FAULT_INJECTION")]
    allow_fault_injection: bool,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive.
    #[arg(long, default_value = "info", env = "WARREN_LOG")]
    log_level: String,
    /// The user created at start (RabbitMQ's RABBITMQ_DEFAULT_USER).
    #[arg(long, default_value = "guest", env = "RABBITMQ_DEFAULT_USER")]
    default_user: String,
    /// Its password (RABBITMQ_DEFAULT_PASS).
    #[arg(long, default_value = "guest", env = "RABBITMQ_DEFAULT_PASS", hide_env_values = true)]
    default_pass: String,
    /// The vhost created at start (RABBITMQ_DEFAULT_VHOST).
    #[arg(long, default_value = "/", env = "RABBITMQ_DEFAULT_VHOST")]
    default_vhost: String,
    /// Heartbeat interval proposed to clients, in seconds (0 disables).
    #[arg(long, default_value_t = 60)]
    heartbeat: u16,
    /// Largest frame accepted, in bytes.
    #[arg(long, default_value_t = 131072)]
    frame_max: u32,
    /// Most channels per connection.
    #[arg(long, default_value_t = 2047)]
    channel_max: u16,
    /// Largest message body accepted, in bytes with an optional unit (at most
    /// 512MiB). rabbitmq.conf's max_message_size.
    #[arg(long, default_value = "128MiB", value_parser = warren::config::parse_max_message_size)]
    max_message_size: u64,
    /// Milliseconds a client has from TCP connect to connection.open.
    /// rabbitmq.conf's handshake_timeout.
    #[arg(long, default_value_t = 10_000)]
    handshake_timeout: u64,
    /// New AMQP connections accepted per second; connections beyond it wait in
    /// the listen backlog. 0 or none: no limit. rabbitmq.conf-style key
    /// warren.connection_rate_limit (Warren's own; RabbitMQ has none).
    // clap takes an `Option` field as an optional flag, so the parser's
    // `Option` (none = no limit) is folded to 0 here and unfolded below.
    #[arg(long, default_value = "none", value_parser = |s: &str| {
        warren::config::parse_connection_rate_limit(s).map(|r| r.unwrap_or(0))
    })]
    connection_rate_limit: u32,
    /// Where durable definitions and persistent messages are kept
    /// [default: $XDG_DATA_HOME/warren or ~/.local/share/warren].
    #[arg(long, env = "WARREN_DATA_DIR", conflicts_with = "in_memory")]
    data_dir: Option<PathBuf>,
    /// Keep everything in memory: nothing is written to disk (durable flags
    /// are accepted). For tests.
    #[arg(long)]
    in_memory: bool,
    /// Import a RabbitMQ definitions file (as exported by its management UI)
    /// at start.
    #[arg(long, env = "WARREN_DEFINITIONS")]
    definitions: Option<PathBuf>,
    /// Block publishers while resident memory is above this: a fraction of
    /// RAM (≤ 1.0) or bytes; 0 disables. RabbitMQ's vm_memory_high_watermark.
    #[arg(long, default_value_t = 0.4)]
    memory_high_watermark: f64,
    /// Message bytes one queue keeps in RAM before paging newer messages to
    /// disk (in the data directory; not with --in-memory).
    #[arg(long, default_value_t = 32 * 1024 * 1024)]
    queue_memory_budget: u64,
    /// Block publishers while the data directory's filesystem has less free
    /// space than this: bytes with an optional unit (50000000, 50MB, 1GiB),
    /// or mem_relative:X for X times RAM. RabbitMQ's disk_free_limit.
    #[arg(long, default_value = "50MB", value_parser = warren::config::DiskFreeLimit::parse)]
    disk_free_limit: warren::config::DiskFreeLimit,
    /// Port of the management HTTP API and web UI; 0 turns it off.
    /// RabbitMQ's management.tcp.port.
    #[arg(long, default_value_t = 15672)]
    management_port: u16,
    /// Address the management API listens on [default: --bind].
    /// RabbitMQ's management.tcp.ip.
    #[arg(long)]
    management_bind: Option<IpAddr>,
    /// Port of the Prometheus metrics endpoint (/metrics); 0 turns it off.
    /// rabbitmq_prometheus's prometheus.tcp.port.
    #[arg(long, default_value_t = 15692)]
    prometheus_port: u16,
    /// AMQPS: the server certificate (PEM, chain after it). With --tls-key,
    /// starts a TLS listener on --tls-port. RabbitMQ's ssl_options.certfile.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM). ssl_options.keyfile.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA certificates (PEM) client certificates must chain to; given, the
    /// TLS listener asks clients for a certificate and verifies it
    /// (ssl_options.cacertfile with verify = verify_peer), and offers the
    /// EXTERNAL mechanism.
    #[arg(long, requires = "tls_cert")]
    tls_ca: Option<PathBuf>,
    /// Refuse TLS clients without a certificate (ssl_options.fail_if_no_peer_cert).
    #[arg(long, requires = "tls_ca")]
    tls_fail_if_no_peer_cert: bool,
    /// The AMQPS port (listeners.ssl.default); 0 picks a free one.
    #[arg(long, default_value_t = 5671)]
    tls_port: u16,
    /// No plain AMQP listener, only AMQPS (listeners.tcp = none).
    #[arg(long, requires = "tls_cert")]
    tls_only: bool,
    /// Serve the management API over HTTPS on this port too, with the
    /// --tls-cert certificate (management.ssl.port).
    #[arg(long, requires = "tls_cert")]
    management_tls_port: Option<u16>,
    /// Serve Prometheus metrics over HTTPS on this port too, with the
    /// --tls-cert certificate (prometheus.ssl.port).
    #[arg(long, requires = "tls_cert")]
    prometheus_tls_port: Option<u16>,
    /// A RabbitMQ rabbitmq.conf to honour (listeners.tcp.default, default_user,
    /// default_pass, default_vhost, load_definitions, heartbeat, frame_max,
    /// channel_max, max_message_size, handshake_timeout,
    /// warren.connection_rate_limit, vm_memory_high_watermark.*, disk_free_limit.*,
    /// loopback_users, management.tcp.port/ip, prometheus.tcp.port). Flags win.
    #[arg(long, env = "RABBITMQ_CONFIG_FILE")]
    config: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    if let Some(code) = ctl_main() {
        return code;
    }
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // Which settings the user gave (flag or env): those beat a config file.
    let serve_matches = matches.subcommand_matches("serve").unwrap_or(&matches).clone();
    let explicit = move |id: &str| {
        matches!(
            serve_matches.value_source(id),
            Some(clap::parser::ValueSource::CommandLine | clap::parser::ValueSource::EnvVariable)
        )
    };
    let result = match cli.command {
        None => serve(cli.serve, &explicit),
        Some(Command::Serve(args)) => serve(args, &explicit),
        Some(Command::Perf(args)) => warren::perf::main(args),
        Some(Command::Ctl { args }) => return ctl_exit(warren::ctl::main(warren::ctl::Tool::Rabbitmqctl, &args)),
        Some(Command::HashPassword { password, algorithm }) => hash_password(password, &algorithm),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One readable line with its causes, not a backtrace.
            eprintln!("warren: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `warren ctl ...`, or the binary invoked as `rabbitmqctl`, `rabbitmqadmin`,
/// `rabbitmq-diagnostics` or `rabbitmq-plugins` (a symlink): answered before
/// clap, whose syntax is not those tools'.
fn ctl_main() -> Option<std::process::ExitCode> {
    use warren::ctl::Tool;
    let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    if let Some(tool) = args.first().and_then(|a| Tool::from_program_name(a)) {
        return Some(ctl_exit(warren::ctl::main(tool, &args[1..])));
    }
    if args.get(1).map(String::as_str) != Some("ctl") {
        return None;
    }
    let (tool, rest) = match args.get(2).map(String::as_str) {
        Some("diagnostics" | "rabbitmq-diagnostics") => (Tool::Diagnostics, &args[3..]),
        Some("plugins" | "rabbitmq-plugins") => (Tool::Plugins, &args[3..]),
        Some("admin" | "rabbitmqadmin") => (Tool::Admin, &args[3..]),
        _ => (Tool::Rabbitmqctl, &args[2..]),
    };
    Some(ctl_exit(warren::ctl::main(tool, rest)))
}

fn hash_password(password: Option<String>, algorithm: &str) -> anyhow::Result<()> {
    let algorithm = warren::broker::HashingAlgorithm::parse(algorithm).map_err(anyhow::Error::msg)?;
    let password = match password {
        Some(p) => p,
        None => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).context("cannot read the password from standard input")?;
            line.strip_suffix('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).unwrap_or(&line).to_owned()
        }
    };
    println!("{}", algorithm.hash_password(&password));
    Ok(())
}

fn ctl_exit(code: i32) -> std::process::ExitCode {
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn serve(cli: ServeArgs, explicit: &dyn Fn(&str) -> bool) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log_level).context("invalid --log-level")?)
        .with_target(false)
        .with_ansi(log_colours())
        .init();
    let mut config =
        warren::Config {
            bind: cli.bind,
            port: cli.port,
            default_user: cli.default_user,
            default_pass: cli.default_pass,
            default_vhost: cli.default_vhost,
            heartbeat: cli.heartbeat,
            frame_max: cli.frame_max.max(4096),
            channel_max: cli.channel_max,
            max_message_size: cli.max_message_size,
            handshake_timeout: std::time::Duration::from_millis(cli.handshake_timeout),
            connection_rate_limit: (cli.connection_rate_limit != 0).then_some(cli.connection_rate_limit),
            data_dir: if cli.in_memory {
                None
            } else {
                Some(cli.data_dir.or_else(warren::Config::default_data_dir).context(
                    "no data directory: HOME and XDG_DATA_HOME are unset; pass --data-dir DIR or --in-memory",
                )?)
            },
            definitions: cli.definitions,
            memory_high_watermark: cli.memory_high_watermark,
            queue_memory_budget: cli.queue_memory_budget,
            disk_free_limit: cli.disk_free_limit,
            guest_loopback_only: true,
            clock: match cli.clock {
                ClockMode::Real => warren::clock::Clock::real(),
                ClockMode::Manual => warren::clock::Clock::manual(),
            },
            allow_fault_injection: cli.allow_fault_injection,
            management_port: (cli.management_port != 0).then_some(cli.management_port),
            management_bind: cli.management_bind,
            prometheus_port: (cli.prometheus_port != 0).then_some(cli.prometheus_port),
            ..warren::Config::default()
        };
    config.tls_port = cli.tls_port;
    config.tcp_listener = !cli.tls_only;
    if let (Some(cert), Some(key)) = (cli.tls_cert, cli.tls_key) {
        let mut tls = warren::tls::TlsSettings::new(cert, key);
        tls.verify_peer = cli.tls_ca.is_some();
        tls.ca = cli.tls_ca;
        tls.fail_if_no_peer_cert = cli.tls_fail_if_no_peer_cert;
        config.management_tls = cli.management_tls_port.map(|p| (p, tls.clone()));
        config.prometheus_tls = cli.prometheus_tls_port.map(|p| (p, tls.clone()));
        config.tls = Some(tls);
    }
    if let Some(path) = rabbitmq_config_path(cli.config.as_deref()) {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        let ignored =
            config.apply_rabbitmq_conf(&text, explicit).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        tracing::info!(file = %path.display(), "applied RabbitMQ config file");
        if !ignored.is_empty() {
            tracing::warn!("config keys Warren does not use (ignored): {}", ignored.join(", "));
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(config, cli.port_file, cli.tls_port_file))
}

/// Whether log lines get ANSI colours: only when they go to a terminal (a
/// file or a pipe gets plain text that tools can search), and never when
/// `NO_COLOR` is set to anything but the empty string (no-color.org).
fn log_colours() -> bool {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stdout().is_terminal()
}

/// `--config` / `RABBITMQ_CONFIG_FILE`. Like RabbitMQ, the name may be given
/// without its `.conf` extension.
fn rabbitmq_config_path(given: Option<&std::path::Path>) -> Option<PathBuf> {
    let given = given?;
    if given.exists() {
        return Some(given.to_owned());
    }
    let with_ext = given.with_extension("conf");
    Some(if with_ext.exists() { with_ext } else { given.to_owned() })
}

async fn run(config: warren::Config, port_file: Option<PathBuf>, tls_port_file: Option<PathBuf>) -> anyhow::Result<()> {
    let server = warren::Server::start(config.clone())
        .await
        .with_context(|| format!("cannot start Warren on {}:{}", config.bind, config.port))?;
    let addr = server.local_addr();
    if let Some(path) = port_file {
        std::fs::write(&path, format!("{}\n", addr.port()))
            .with_context(|| format!("cannot write the port file {}", path.display()))?;
    }
    if let (Some(path), Some(tls)) = (tls_port_file, server.tls_addr()) {
        std::fs::write(&path, format!("{}\n", tls.port()))
            .with_context(|| format!("cannot write the port file {}", path.display()))?;
    }
    if config.tcp_listener {
        tracing::info!("Warren {} listening for AMQP 0-9-1 on {addr}", env!("CARGO_PKG_VERSION"));
    }
    if let Some(tls) = server.tls_addr() {
        tracing::info!("Warren {} listening for AMQP 0-9-1 over TLS on {tls}", env!("CARGO_PKG_VERSION"));
    }
    if let Some(http) = server.management_addr() {
        tracing::info!("management API and web UI on http://{http}/");
    }
    if let Some(https) = server.management_tls_addr() {
        tracing::info!("management API and web UI on https://{https}/");
    }
    if let Some(metrics) = server.prometheus_addr() {
        tracing::info!("Prometheus metrics on http://{metrics}/metrics");
    }
    if let Some(metrics) = server.prometheus_tls_addr() {
        tracing::info!("Prometheus metrics on https://{metrics}/metrics");
    }
    if server.clock().is_manual() {
        tracing::warn!(
            "broker time is virtual (--clock manual): TTLs and x-expires wait for POST /api/warren/clock \
             or `warren ctl clock advance`; heartbeats run on real time"
        );
    }
    // Testcontainers' RabbitMQ module waits for this exact line.
    tracing::info!("Server startup complete; 0 plugins started.");
    wait_for_signal().await?;
    tracing::info!("shutting down: closing connections");
    server.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
