//! `warren perf`: a load generator for any AMQP 0-9-1 broker, in the spirit
//! of RabbitMQ's PerfTest and LavinMQ's lavinmqperf.
//!
//! It owns its own minimal client, because a general-purpose one costs more
//! CPU per message than the brokers it measures (amqprs ~3.5 µs, lapin
//! ~21 µs per message on the reference box; this one aims at ≤ 0.5 µs):
//!
//! - `conn`: TCP connect, handshake, one channel, control methods through
//!   amq-protocol (a few per run).
//! - `wire`: the per-message codec — a pre-encoded publish template, the
//!   ack encoder, a borrowing frame parser. No allocation per message.
//! - `producer` / `consumer`: one tokio task per connection, each with one
//!   write buffer flushed in large batches and one read buffer walked in
//!   place; counters are bumped once per batch.
//! - `stats`: counters, the shared clock, CPU from /proc.
//!
//! It does not touch Warren's broker or protocol modules: it is a client and
//! drives Warren, RabbitMQ or LavinMQ alike, by URI.

pub(crate) mod conn;
mod consumer;
mod producer;
mod stats;
mod transport;
pub(crate) mod wire;
mod workers;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use conn::{Conn, Target};
use stats::{cpu_secs, machine_busy_secs, Counters};

/// Flags of `warren perf`.
#[derive(clap::Parser, Debug, Clone)]
#[command(name = "warren perf", about = "Load-test any AMQP 0-9-1 broker")]
pub struct PerfArgs {
    /// Broker URI: amqp://user:pass@host:port/vhost (vhost percent-encoded).
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub uri: String,
    /// Publishing connections (one channel each).
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// Consuming connections (one channel each).
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// Body size in bytes; the first 8 carry the send timestamp.
    #[arg(long, default_value_t = 16)]
    pub size: usize,
    /// Seconds to publish; then consumers drain (see --drain-timeout) and the tool stops.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds left out of rates and latency at the start [default: min(2, duration/5)].
    #[arg(long)]
    pub warmup: Option<f64>,
    /// Most seconds to wait for consumers (and confirms) after publishing stops.
    #[arg(long, default_value_t = 5.0)]
    pub drain_timeout: f64,
    /// Publisher confirms, at most WINDOW unconfirmed messages per producer (0 = off).
    #[arg(long, default_value_t = 0, value_name = "WINDOW")]
    pub confirm: usize,
    /// delivery_mode 2, durable queues and exchange.
    #[arg(long)]
    pub persistent: bool,
    /// Application headers on every publish: N short long-string entries
    /// (`h000: "value-0000"`, ...), as tracing or correlation headers are,
    /// so the broker's path for publishes with headers is measured.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub headers: usize,
    /// Consumers use no_ack; otherwise they ack manually.
    #[arg(long)]
    pub autoack: bool,
    /// basic.qos prefetch count for manual-ack consumers (0 = no basic.qos).
    #[arg(long, default_value_t = 0)]
    pub prefetch: u16,
    /// Ack with multiple=true every N messages (0 or 1 = ack each message).
    #[arg(long, default_value_t = 0)]
    pub multi_ack_every: u64,
    /// Queues: producer i publishes to queue i%N, consumer j reads queue j%N.
    #[arg(long, default_value_t = 1)]
    pub queues: usize,
    /// direct: routing key per queue; fanout: every publish reaches all queues.
    #[arg(long, value_enum, default_value_t = ExchangeType::Direct)]
    pub exchange_type: ExchangeType,
    /// Total publish rate over all producers, msgs/s (0 = as fast as possible).
    #[arg(long, default_value_t = 0.0, value_name = "MSGS_PER_SEC")]
    pub rate: f64,
    /// Names are PREFIX-q<i> and PREFIX-x [default: perf-<pid>].
    #[arg(long)]
    pub queue_prefix: Option<String>,
    /// x-expires on the queues, ms, so a killed run leaves nothing behind for long (0 = off).
    #[arg(long, default_value_t = 600_000)]
    pub queue_expires_ms: u32,
    /// Broker process id: report its CPU time per message (from /proc/PID/stat).
    #[arg(long, value_name = "BROKER_PID")]
    pub pid: Option<u32>,
    /// Print one JSON summary line on stdout instead of the text summary.
    #[arg(long)]
    pub json: bool,
    /// No live line every second (on stderr).
    #[arg(long)]
    pub quiet: bool,
    /// For amqps:// URIs: the CA (PEM) that signed the broker's certificate.
    #[arg(long)]
    pub tls_ca: Option<std::path::PathBuf>,
    /// A client certificate (PEM) to present over TLS.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// Its private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Worker threads, each its own current-thread runtime (0 = min(cores, producers + consumers)).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

impl Default for PerfArgs {
    /// The flag defaults, e.g. for tests: `PerfArgs { uri, ..Default::default() }`.
    fn default() -> Self {
        <PerfArgs as clap::Parser>::parse_from(["warren-perf"])
    }
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeType {
    Direct,
    Fanout,
}

impl ExchangeType {
    fn name(self) -> &'static str {
        match self {
            ExchangeType::Direct => "direct",
            ExchangeType::Fanout => "fanout",
        }
    }
}

/// Why a run could not be carried out (failures during the load are
/// counted in `Summary::errors` instead).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("framing: {0}")]
    Frame(#[from] wire::FrameError),
    #[error("the broker closed with {code}: {text}")]
    Closed { code: u16, text: String },
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
}

/// Latency percentiles in microseconds, for messages sent after the warm-up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub samples: u64,
}

/// The result of one run. Rates and CPU cover the steady window (warm-up
/// end to deadline); message counts cover the whole run.
#[derive(Debug, Clone)]
pub struct Summary {
    pub args: PerfArgs,
    pub publish_rate: f64,
    pub consume_rate: f64,
    pub latency: Option<Latency>,
    pub sent: u64,
    pub received: u64,
    /// Deliveries owed: sent to consumed queues (times the queue count for fanout).
    pub expected: u64,
    pub confirmed: u64,
    pub nacked: u64,
    pub errors: u64,
    pub error_messages: Vec<String>,
    pub steady_secs: f64,
    pub drain_secs: f64,
    /// This process's CPU, % of one core.
    pub client_cpu_pct: Option<f64>,
    /// This process's CPU per message published or consumed, µs.
    pub client_cpu_us_per_msg: Option<f64>,
    pub broker_cpu_pct: Option<f64>,
    /// The --pid's CPU per message consumed (per message published when
    /// nothing consumes), µs.
    pub broker_cpu_us_per_msg: Option<f64>,
    /// Everything running on the machine, % of one core: shows the noise.
    pub machine_busy_pct: Option<f64>,
}

/// The `warren perf` command: runs on its own runtime, prints, and fails
/// when the run did (set-up failure, errors, or messages not received).
pub fn main(args: PerfArgs) -> anyhow::Result<()> {
    // The coordinator only samples counters; producers and consumers get
    // their own threads (see `workers`).
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let limit = Duration::from_secs_f64(args.duration.clamp(0.0, 3600.0) + args.drain_timeout.clamp(0.0, 600.0) + 90.0);
    let json = args.json;
    let result = runtime.block_on(async { tokio::time::timeout(limit, run(args)).await });
    runtime.shutdown_timeout(Duration::from_secs(1));
    // Failures are reported here and end the process with status 1, without
    // the backtrace anyhow would add when RUST_BACKTRACE is set.
    let fail = |msg: String| -> ! {
        eprintln!("warren perf: {msg}");
        std::process::exit(1)
    };
    let summary = match result {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            if json {
                println!("{{\"error\":{}}}", json_str(&e.to_string()));
            }
            fail(format!("run failed: {e}"));
        }
        Err(_) => fail(format!("run exceeded its overall time limit ({} s)", limit.as_secs())),
    };
    if json {
        println!("{}", summary.to_json());
    } else {
        print!("{}", summary.to_text());
    }
    if summary.errors > 0 || summary.received < summary.expected {
        fail(format!(
            "{} errors, {} of {} expected deliveries received",
            summary.errors, summary.received, summary.expected
        ));
    }
    Ok(())
}

impl PerfArgs {
    fn validate(&self) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::Config(m.to_string()));
        if !(self.duration > 0.0 && self.duration <= 3600.0) {
            return bad("--duration must be in (0, 3600] seconds");
        }
        if !(0.0..=600.0).contains(&self.drain_timeout) {
            return bad("--drain-timeout must be in [0, 600] seconds");
        }
        if self.queues == 0 || self.queues > 10_000 {
            return bad("--queues must be in 1..=10000");
        }
        if self.producers + self.consumers == 0 || self.producers > 10_000 || self.consumers > 10_000 {
            return bad("need at least one producer or consumer, at most 10000 of each");
        }
        if self.size > 128 << 20 {
            return bad("--size is at most 128 MiB");
        }
        if self.headers > 1000 {
            return bad("--headers is at most 1000");
        }
        if !(self.rate >= 0.0 && self.rate.is_finite()) {
            return bad("--rate must be >= 0");
        }
        if self.queue_prefix.as_ref().is_some_and(|p| p.len() > 200) {
            return bad("--queue-prefix is at most 200 bytes");
        }
        Ok(())
    }
}

/// Runs one load test to completion (bounded by --duration plus the drain
/// time) in the current tokio runtime and deletes what it declared.
pub async fn run(args: PerfArgs) -> Result<Summary, Error> {
    args.validate()?;
    stats::now_ns(); // start the shared clock
    let tls = args
        .tls_ca
        .as_deref()
        .map(|ca| conn::TlsFiles { ca, identity: args.tls_cert.as_deref().zip(args.tls_key.as_deref()) });
    let target = Target::parse(&args.uri, tls)?;
    let prefix = args.queue_prefix.clone().unwrap_or_else(|| format!("perf-{}", std::process::id()));
    let names = Names { exchange: format!("{prefix}-x"), prefix };
    let mut admin = Conn::open(&target, "warren-perf-admin").await?;
    let result = match declare(&mut admin, &args, &names).await {
        Ok(()) => run_load(&args, &target, &names).await,
        Err(e) => Err(e),
    };
    admin.close(Duration::from_secs(2)).await;
    // A fresh connection: the admin channel may have been closed by an error.
    match Conn::open(&target, "warren-perf-cleanup").await {
        Ok(mut c) => {
            for i in 0..args.queues {
                let _ = c.queue_delete(&names.queue(i)).await;
            }
            let _ = c.exchange_delete(&names.exchange).await;
            c.close(Duration::from_secs(2)).await;
        }
        Err(e) if result.is_ok() => return Err(e),
        Err(_) => {}
    }
    result
}

struct Names {
    prefix: String,
    exchange: String,
}

impl Names {
    fn queue(&self, i: usize) -> String {
        format!("{}-q{i}", self.prefix)
    }
}

fn routing_key(args: &PerfArgs, queue: usize) -> String {
    match args.exchange_type {
        ExchangeType::Direct => format!("q{queue}"),
        ExchangeType::Fanout => String::new(),
    }
}

async fn declare(admin: &mut Conn, args: &PerfArgs, names: &Names) -> Result<(), Error> {
    admin.exchange_declare(&names.exchange, args.exchange_type.name(), args.persistent).await?;
    for i in 0..args.queues {
        let q = names.queue(i);
        admin.queue_delete(&q).await?;
        admin.queue_declare(&q, args.persistent, args.queue_expires_ms).await?;
        admin.queue_bind(&q, &names.exchange, &routing_key(args, i)).await?;
    }
    Ok(())
}

/// Counters and CPU readings at one instant.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    at: Instant,
    sent: u64,
    received: u64,
    own_cpu: Option<f64>,
    broker_cpu: Option<f64>,
    busy: Option<f64>,
}

fn snapshot(counters: &Counters, pid: Option<u32>) -> Snapshot {
    Snapshot {
        at: Instant::now(),
        sent: counters.sent.load(Relaxed),
        received: counters.received.load(Relaxed),
        own_cpu: cpu_secs("self"),
        broker_cpu: pid.and_then(|p| cpu_secs(&p.to_string())),
        busy: machine_busy_secs(),
    }
}

async fn wait_ready(rx: &mut mpsc::Receiver<bool>, n: usize) -> Result<(), Error> {
    for _ in 0..n {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some(true)) => {}
            Ok(_) => return Err(Error::Protocol("a producer or consumer failed to set up".into())),
            Err(_) => return Err(Error::Timeout("producers and consumers to connect")),
        }
    }
    Ok(())
}

async fn run_load(args: &PerfArgs, target: &Target, names: &Names) -> Result<Summary, Error> {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let threads = if args.threads > 0 { args.threads } else { cores.min(args.producers + args.consumers) };
    let mut workers = workers::Workers::start(threads)?;
    let counters = Arc::new(Counters::new(args.queues));
    let warmup = args.warmup.unwrap_or((args.duration / 5.0).min(2.0)).clamp(0.0, args.duration * 0.9);
    let (go_tx, go_rx) = watch::channel(None);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::channel(args.producers + args.consumers + 1);
    let latency_from = Arc::new(AtomicU64::new(u64::MAX));
    let drain = Duration::from_secs_f64(args.drain_timeout);

    // Consumers first, so nothing is published before they listen.
    let multi_ack_every =
        if args.prefetch > 0 { args.multi_ack_every.min(args.prefetch as u64) } else { args.multi_ack_every };
    let consumers: Vec<JoinHandle<Histogram<u64>>> = (0..args.consumers)
        .map(|id| {
            let plan = consumer::Plan {
                id,
                queue: names.queue(id % args.queues),
                autoack: args.autoack,
                prefetch: args.prefetch,
                multi_ack_every,
            };
            let (c, r, l, s) = (counters.clone(), ready_tx.clone(), latency_from.clone(), stop_rx.clone());
            workers.spawn(consumer::run(target.clone(), plan, c, r, l, s))
        })
        .collect();
    let ready = wait_ready(&mut ready_rx, args.consumers).await;
    let per_producer_rate = args.rate / args.producers.max(1) as f64;
    let producers: Vec<JoinHandle<()>> = if ready.is_ok() {
        (0..args.producers)
            .map(|id| {
                let q = id % args.queues;
                let plan = producer::Plan {
                    id,
                    exchange: names.exchange.clone(),
                    routing_key: routing_key(args, q),
                    queue_idx: q,
                    size: args.size,
                    persistent: args.persistent,
                    headers: args.headers,
                    confirm: args.confirm,
                    rate: per_producer_rate,
                    drain,
                };
                workers.spawn(producer::run(target.clone(), plan, counters.clone(), ready_tx.clone(), go_rx.clone()))
            })
            .collect()
    } else {
        Vec::new()
    };
    let ready = match ready {
        Ok(()) => wait_ready(&mut ready_rx, args.producers).await,
        Err(e) => Err(e),
    };
    if let Err(e) = ready {
        drop(go_tx);
        let _ = stop_tx.send(true);
        for h in consumers {
            let _ = tokio::time::timeout(Duration::from_secs(5), h).await;
        }
        for h in producers {
            let _ = tokio::time::timeout(Duration::from_secs(5), h).await;
        }
        let detail = counters.messages.lock().map(|m| m.join("; ")).unwrap_or_default();
        return Err(Error::Protocol(format!("{e}: {detail}")));
    }

    let start = Instant::now() + Duration::from_millis(50);
    let deadline = start + Duration::from_secs_f64(args.duration);
    let warm_end = start + Duration::from_secs_f64(warmup);
    latency_from.store(stats::instant_ns(warm_end), Relaxed);
    let _ = go_tx.send(Some(producer::Go { start, deadline }));

    // Sample at the warm-up end and the deadline; a live line every second.
    let mut steady_from = None;
    let mut prev = snapshot(&counters, args.pid);
    let mut tick = start + Duration::from_secs(1);
    loop {
        let next = if steady_from.is_none() { tick.min(warm_end) } else { tick }.min(deadline);
        tokio::time::sleep_until(next.into()).await;
        let now = Instant::now();
        if steady_from.is_none() && now >= warm_end {
            steady_from = Some(snapshot(&counters, args.pid));
        }
        if now >= deadline {
            break;
        }
        if now >= tick {
            let s = snapshot(&counters, args.pid);
            if !args.quiet {
                eprintln!("{}", live_line(&prev, &s, start));
            }
            prev = s;
            tick += Duration::from_secs(1);
        }
    }
    let steady_to = snapshot(&counters, args.pid);
    let steady_from = steady_from.unwrap_or(steady_to);

    // Publishing has stopped: let consumers drain (bounded), then stop.
    let consumed_queues = args.consumers.min(args.queues);
    let expected = || -> u64 {
        let to: Vec<u64> = counters.sent_to.iter().map(|x| x.load(Relaxed)).collect();
        match args.exchange_type {
            ExchangeType::Fanout => to.iter().sum::<u64>() * consumed_queues as u64,
            ExchangeType::Direct => to[..consumed_queues].iter().sum(),
        }
    };
    let last_delivery = if args.consumers > 0 {
        drain_consumers(&counters, &expected, &producers, drain).await
    } else {
        Instant::now()
    };
    let _ = stop_tx.send(true);
    let mut hist = consumer::new_histogram();
    for h in consumers {
        if let Ok(Ok(h)) = tokio::time::timeout(Duration::from_secs(5), h).await {
            let _ = hist.add(h);
        }
    }
    for h in producers {
        let _ = tokio::time::timeout(drain + Duration::from_secs(5), h).await;
    }

    let dt = steady_to.at.saturating_duration_since(steady_from.at).as_secs_f64().max(1e-9);
    let d_sent = steady_to.sent - steady_from.sent;
    let d_received = steady_to.received - steady_from.received;
    let cpu = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
    let own = cpu(steady_from.own_cpu, steady_to.own_cpu);
    let broker = cpu(steady_from.broker_cpu, steady_to.broker_cpu);
    let broker_msgs = if args.consumers > 0 { d_received } else { d_sent };
    let per_msg = |secs: Option<f64>, n: u64| secs.filter(|_| n > 0).map(|s| s * 1e6 / n as f64);
    let latency = (!hist.is_empty()).then(|| Latency {
        p50_us: hist.value_at_quantile(0.50),
        p95_us: hist.value_at_quantile(0.95),
        p99_us: hist.value_at_quantile(0.99),
        max_us: hist.max(),
        samples: hist.len(),
    });
    Ok(Summary {
        args: args.clone(),
        publish_rate: d_sent as f64 / dt,
        consume_rate: d_received as f64 / dt,
        latency,
        sent: counters.sent.load(Relaxed),
        received: counters.received.load(Relaxed),
        expected: expected(),
        confirmed: counters.confirmed.load(Relaxed),
        nacked: counters.nacked.load(Relaxed),
        errors: counters.errors.load(Relaxed),
        error_messages: counters.messages.lock().map(|m| m.clone()).unwrap_or_default(),
        steady_secs: dt,
        drain_secs: last_delivery.saturating_duration_since(deadline).as_secs_f64(),
        client_cpu_pct: own.map(|s| s / dt * 100.0),
        client_cpu_us_per_msg: per_msg(own, d_sent + d_received),
        broker_cpu_pct: broker.map(|s| s / dt * 100.0),
        broker_cpu_us_per_msg: per_msg(broker, broker_msgs),
        machine_busy_pct: cpu(steady_from.busy, steady_to.busy).map(|s| s / dt * 100.0),
    })
}

/// After the deadline: waits until every expected delivery arrived, or no
/// progress for a second once producers are done, or `limit`. Returns when
/// the last delivery was seen.
async fn drain_consumers(
    counters: &Counters,
    expected: &dyn Fn() -> u64,
    producers: &[JoinHandle<()>],
    limit: Duration,
) -> Instant {
    let until = Instant::now() + limit;
    let (mut last, mut last_change) = (counters.received.load(Relaxed), Instant::now());
    while last < expected() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let r = counters.received.load(Relaxed);
        if r != last {
            (last, last_change) = (r, Instant::now());
        } else if last_change.elapsed() > Duration::from_secs(1) && producers.iter().all(|p| p.is_finished()) {
            break;
        }
    }
    last_change
}

fn live_line(prev: &Snapshot, now: &Snapshot, start: Instant) -> String {
    let dt = now.at.saturating_duration_since(prev.at).as_secs_f64().max(1e-9);
    let mut line = format!(
        "t={:>4.0}s  published {:>9.0} msg/s  consumed {:>9.0} msg/s",
        now.at.saturating_duration_since(start).as_secs_f64(),
        (now.sent - prev.sent) as f64 / dt,
        (now.received - prev.received) as f64 / dt,
    );
    if let (Some(a), Some(b)) = (prev.own_cpu, now.own_cpu) {
        let _ = write!(line, "  self CPU {:>3.0}%", (b - a) / dt * 100.0);
    }
    if let (Some(a), Some(b)) = (prev.broker_cpu, now.broker_cpu) {
        let _ = write!(line, "  broker CPU {:>3.0}%", (b - a) / dt * 100.0);
    }
    line
}

/// Parses a channel.close or connection.close from the broker into an
/// error; `None` for any other method.
pub(crate) fn broker_close(payload: &[u8]) -> Option<Error> {
    use amq_protocol::protocol::{channel, connection, AMQPClass};
    match wire::method_id(payload)? {
        (wire::CLASS_CONNECTION, wire::METHOD_CONNECTION_CLOSE) | (wire::CLASS_CHANNEL, wire::METHOD_CLOSE) => {}
        _ => return None,
    }
    Some(match amq_protocol::protocol::parse_class(payload) {
        Ok((_, AMQPClass::Connection(connection::AMQPMethod::Close(c)))) => {
            Error::Closed { code: c.reply_code, text: c.reply_text.to_string() }
        }
        Ok((_, AMQPClass::Channel(channel::AMQPMethod::Close(c)))) => {
            Error::Closed { code: c.reply_code, text: c.reply_text.to_string() }
        }
        _ => Error::Protocol("malformed close from the broker".into()),
    })
}

// ---------------------------------------------------------------- output

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A number rounded to 3 decimals, or null.
fn json_num(x: Option<f64>) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{}", (v * 1000.0).round() / 1000.0),
        _ => "null".into(),
    }
}

impl Summary {
    /// One JSON object on one line; field names follow amqp-bench's where
    /// they mean the same thing.
    pub fn to_json(&self) -> String {
        let a = &self.args;
        let lat = |f: fn(&Latency) -> u64| self.latency.as_ref().map_or("null".into(), |l| f(l).to_string());
        let mut o = String::with_capacity(1024);
        let _ = write!(
            o,
            "{{\"mode\":\"run\",\"tool\":\"warren perf\",\"publish_rate\":{},\"consume_rate\":{},\
             \"latency_p50_us\":{},\"latency_p95_us\":{},\"latency_p99_us\":{},\"latency_max_us\":{},\
             \"latency_samples\":{},\"messages_sent\":{},\"messages_received\":{},\"expected_received\":{},\
             \"confirmed\":{},\"nacked\":{},\"errors\":{},\"error_messages\":[{}],\"steady_secs\":{},\
             \"drain_secs\":{},\"client_cpu_pct\":{},\"client_cpu_us_per_msg\":{},\"broker_cpu_pct\":{},\
             \"broker_cpu_us_per_msg\":{},\"machine_busy_pct\":{},\"machine_cores\":{},",
            json_num(Some(self.publish_rate)),
            json_num(Some(self.consume_rate)),
            lat(|l| l.p50_us),
            lat(|l| l.p95_us),
            lat(|l| l.p99_us),
            lat(|l| l.max_us),
            self.latency.map_or(0, |l| l.samples),
            self.sent,
            self.received,
            self.expected,
            self.confirmed,
            self.nacked,
            self.errors,
            self.error_messages.iter().map(|m| json_str(m)).collect::<Vec<_>>().join(","),
            json_num(Some(self.steady_secs)),
            json_num(Some(self.drain_secs)),
            json_num(self.client_cpu_pct),
            json_num(self.client_cpu_us_per_msg),
            json_num(self.broker_cpu_pct),
            json_num(self.broker_cpu_us_per_msg),
            json_num(self.machine_busy_pct),
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        );
        let _ = write!(
            o,
            "\"config\":{{\"producers\":{},\"consumers\":{},\"size\":{},\"duration\":{},\"confirm\":{},\
             \"persistent\":{},\"headers\":{},\"autoack\":{},\"prefetch\":{},\"multi_ack_every\":{},\"queues\":{},\
             \"exchange_type\":\"{}\",\"rate\":{},\"broker_pid\":{}}}}}",
            a.producers,
            a.consumers,
            a.size,
            json_num(Some(a.duration)),
            a.confirm,
            a.persistent,
            a.headers,
            a.autoack,
            a.prefetch,
            a.multi_ack_every,
            a.queues,
            a.exchange_type.name(),
            json_num(Some(a.rate)),
            a.pid.map_or("null".into(), |p| p.to_string()),
        );
        o
    }

    /// The human-readable summary.
    pub fn to_text(&self) -> String {
        let a = &self.args;
        let mut o = String::new();
        let ack = if a.autoack {
            "autoack".to_string()
        } else {
            format!("manual ack (prefetch {}, multi-ack every {})", a.prefetch, a.multi_ack_every.max(1))
        };
        let _ = writeln!(
            o,
            "warren perf: {} producer(s), {} consumer(s), {} queue(s) via {}, {} B{}{}, confirm {}, {}, {}",
            a.producers,
            a.consumers,
            a.queues,
            a.exchange_type.name(),
            a.size,
            if a.persistent { " persistent" } else { "" },
            if a.headers > 0 { format!(" with {} headers", a.headers) } else { String::new() },
            a.confirm,
            ack,
            if a.rate > 0.0 { format!("rate {} msg/s", a.rate) } else { "unlimited rate".into() },
        );
        let _ = writeln!(
            o,
            "  rates      published {:.0} msg/s, consumed {:.0} msg/s (steady {:.1} s)",
            self.publish_rate, self.consume_rate, self.steady_secs
        );
        match &self.latency {
            Some(l) => {
                let _ = writeln!(
                    o,
                    "  latency    p50 {} µs, p95 {} µs, p99 {} µs, max {} µs ({} samples)",
                    l.p50_us, l.p95_us, l.p99_us, l.max_us, l.samples
                );
            }
            None => o.push_str("  latency    no samples\n"),
        }
        let _ = writeln!(
            o,
            "  messages   sent {}, received {} of {} expected, confirmed {}, nacked {}, errors {}, drained in {:.2} s",
            self.sent, self.received, self.expected, self.confirmed, self.nacked, self.errors, self.drain_secs
        );
        let fmt = |pct: Option<f64>, per: Option<f64>| match (pct, per) {
            (Some(p), Some(u)) => format!("{u:.3} µs/msg ({p:.0}% of a core)"),
            (Some(p), None) => format!("{p:.0}% of a core"),
            _ => "n/a".into(),
        };
        let _ = write!(o, "  CPU        this tool {}", fmt(self.client_cpu_pct, self.client_cpu_us_per_msg));
        if a.pid.is_some() {
            let _ = write!(o, ", broker {}", fmt(self.broker_cpu_pct, self.broker_cpu_us_per_msg));
        }
        if let Some(b) = self.machine_busy_pct {
            let _ = write!(o, ", whole machine {b:.0}%");
        }
        o.push('\n');
        for m in &self.error_messages {
            let _ = writeln!(o, "  error      {m}");
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_validate() {
        let a = PerfArgs::default();
        assert_eq!((a.producers, a.consumers, a.size, a.queues), (1, 1, 16, 1));
        assert!(a.validate().is_ok());
        assert!(PerfArgs { duration: 0.0, ..PerfArgs::default() }.validate().is_err());
        assert!(PerfArgs { queues: 0, ..PerfArgs::default() }.validate().is_err());
    }

    #[test]
    fn uri_parsing() {
        let t = Target::parse("amqp://u%40x:p%3Aw@h.example:5673/v%2fh", None).unwrap();
        assert_eq!((t.user.as_str(), t.pass.as_str(), t.host.as_str(), t.port), ("u@x", "p:w", "h.example", 5673));
        assert_eq!(t.vhost, "v/h");
        assert_eq!(Target::parse("amqp://guest:guest@127.0.0.1:5672/%2f", None).unwrap().vhost, "/");
        let e = Target::parse("amqps://h/", None).unwrap_err().to_string();
        assert!(e.contains("needs --tls-ca"), "{e}");
    }

    #[test]
    fn json_escapes_and_nulls() {
        assert_eq!(json_str("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
        assert_eq!(json_num(None), "null");
        assert_eq!(json_num(Some(f64::NAN)), "null");
        assert_eq!(json_num(Some(1.23456)), "1.235");
    }
}
