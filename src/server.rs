//! Listener, accept loop and graceful shutdown.
//!
//! One shutdown mechanism: a `watch` channel every connection task holds.
//! Flipping it makes the accept loop stop and each connection send
//! connection.close 320 CONNECTION_FORCED; `shutdown` then waits (bounded)
//! for the connection tasks to finish.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::broker::alarms::AlarmSet;
use crate::broker::Broker;
use crate::faults::Faults;
use crate::http::HttpListener;
use crate::protocol::driver::{serve, serve_tls, ConnectionContext};
use crate::rate_limit::RateLimiter;
use crate::store::Health;
use crate::tls::{TlsEndpoint, TlsSettings};
use crate::Config;

/// A running broker. Dropping it stops it (without waiting); `shutdown`
/// stops it and waits for connections to close.
pub struct Server {
    addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    management: Option<SocketAddr>,
    management_tls: Option<SocketAddr>,
    prometheus: Option<SocketAddr>,
    prometheus_tls: Option<SocketAddr>,
    broker: Arc<Broker>,
    stop: watch::Sender<bool>,
    accept_task: Option<tokio::task::JoinHandle<()>>,
    faults: Faults,
}

/// Binds `what` on `ip:port`, with an error that says which listener and
/// how to move or turn it off.
async fn bind(what: &str, ip: IpAddr, port: u16, off: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind((ip, port))
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen for {what} on {ip}:{port}: {e} ({off})")))
}

/// An HTTPS listener's socket and TLS config.
async fn bind_https(
    what: &'static str,
    ip: IpAddr,
    tls: &Option<(u16, TlsSettings)>,
) -> std::io::Result<Option<HttpListener>> {
    let Some((port, settings)) = tls else { return Ok(None) };
    let endpoint = TlsEndpoint::new(what, settings.clone(), &[b"http/1.1"]).map_err(std::io::Error::other)?;
    let tcp = bind(what, ip, *port, "change or remove its ssl.port setting").await?;
    Ok(Some(HttpListener { tcp, tls: Some(endpoint) }))
}

impl Server {
    /// Binds the listeners and starts accepting. Must run inside a tokio
    /// runtime. Certificates are checked here: a TLS setting that cannot
    /// work stops the start with a message that says why.
    pub async fn start(config: Config) -> std::io::Result<Server> {
        let plain = match config.tcp_listener {
            true => Some(bind("AMQP", config.bind, config.port, "--port picks another").await?),
            false => None,
        };
        let amqps = match &config.tls {
            Some(settings) => {
                let endpoint = TlsEndpoint::new("AMQP", settings.clone(), &[]).map_err(std::io::Error::other)?;
                let ip = config.tls_bind.unwrap_or(config.bind);
                Some((bind("AMQPS", ip, config.tls_port, "--tls-port picks another").await?, endpoint))
            }
            None => None,
        };
        let tls_addr = amqps.as_ref().map(|(l, _)| l.local_addr()).transpose()?;
        let addr = match (&plain, tls_addr) {
            (Some(l), _) => l.local_addr()?,
            (None, Some(a)) => a,
            (None, None) => {
                return Err(std::io::Error::other(
                    "no AMQP listener: listeners.tcp = none needs a TLS listener (ssl_options.certfile/keyfile or --tls-cert/--tls-key)",
                ))
            }
        };
        let management_bind = config.management_bind.unwrap_or(config.bind);
        let management = match config.management_port {
            Some(port) => {
                Some(bind("the management API", management_bind, port, "--management-port 0 turns it off").await?)
            }
            None => None,
        };
        let management_addr = management.as_ref().map(TcpListener::local_addr).transpose()?;
        let management_https = bind_https("management", management_bind, &config.management_tls).await?;
        let management_tls_addr = management_https.as_ref().map(|l| l.tcp.local_addr()).transpose()?;
        let prometheus = match config.prometheus_port {
            Some(port) => Some(bind("Prometheus", management_bind, port, "--prometheus-port 0 turns it off").await?),
            None => None,
        };
        let prometheus_addr = prometheus.as_ref().map(TcpListener::local_addr).transpose()?;
        let prometheus_https = bind_https("Prometheus", management_bind, &config.prometheus_tls).await?;
        let prometheus_tls_addr = prometheus_https.as_ref().map(|l| l.tcp.local_addr()).transpose()?;
        let mut endpoints: Vec<Arc<TlsEndpoint>> = amqps.iter().map(|(_, e)| Arc::clone(e)).collect();
        endpoints.extend(management_https.iter().chain(&prometheus_https).filter_map(|l| l.tls.clone()));

        let broker = Arc::new(Broker::open(&config).map_err(std::io::Error::other)?);
        let (stop, stop_rx) = watch::channel(false);
        let (alarm_tx, alarm) = watch::channel(AlarmSet::default());
        let alarm_tx = Arc::new(alarm_tx);
        let limit = config.memory_limit();
        let disk_limit = config.disk_free_limit.bytes();
        let ctx = ConnectionContext {
            broker: Arc::clone(&broker),
            config: Arc::new(config),
            shutdown: stop_rx,
            alarm,
            local: addr,
        };
        let faults = Faults::new(Arc::clone(&broker), Arc::clone(&alarm_tx), ctx.config.socket_clock.clone());
        tokio::spawn(memory_monitor(limit, Arc::clone(&alarm_tx), ctx.shutdown.clone()));
        if let Some(store) = broker.store() {
            tokio::spawn(disk_monitor(Arc::clone(store), disk_limit, alarm_tx, ctx.shutdown.clone()));
        }
        tokio::spawn(crate::tls::watch_certificates(endpoints, ctx.shutdown.clone()));
        let mut listeners = Vec::new();
        let mut add = |protocol: &'static str, addr: Option<SocketAddr>| {
            listeners.extend(addr.map(|addr| crate::http::Listener { protocol, addr }))
        };
        add("amqp", plain.as_ref().map(|_| addr));
        add("amqp/ssl", tls_addr);
        add("http", management_addr);
        add("https", management_tls_addr);
        add("http/prometheus", prometheus_addr);
        add("https/prometheus", prometheus_tls_addr);
        let management: Vec<HttpListener> =
            management.map(|tcp| HttpListener { tcp, tls: None }).into_iter().chain(management_https).collect();
        let metrics: Vec<HttpListener> =
            prometheus.map(|tcp| HttpListener { tcp, tls: None }).into_iter().chain(prometheus_https).collect();
        if !management.is_empty() || !metrics.is_empty() {
            let api = crate::http::Api::new(
                Arc::clone(&broker),
                Arc::clone(&ctx.config),
                ctx.alarm.clone(),
                listeners,
                faults.clone(),
            );
            tokio::spawn(crate::http::serve(management, metrics, api, ctx.shutdown.clone()));
        }
        let accept_task = tokio::spawn(accept_loop(plain, amqps, ctx, faults.clone()));
        Ok(Server {
            addr,
            tls_addr,
            management: management_addr,
            management_tls: management_tls_addr,
            prometheus: prometheus_addr,
            prometheus_tls: prometheus_tls_addr,
            broker,
            stop,
            accept_task: Some(accept_task),
            faults,
        })
    }

    /// The plain AMQP listener's address (the AMQPS one's when there is no
    /// plain listener).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The AMQPS listener's address, if there is one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/%2f` for clients in tests.
    pub fn amqp_uri(&self) -> String {
        let host = if self.addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { self.addr.ip().to_string() };
        format!("amqp://guest:guest@{}:{}/%2f", host, self.addr.port())
    }

    /// Where the management API and web UI listen, if on.
    pub fn management_addr(&self) -> Option<SocketAddr> {
        self.management
    }

    /// Where the management API is served over HTTPS, if it is.
    pub fn management_tls_addr(&self) -> Option<SocketAddr> {
        self.management_tls
    }

    /// Where Prometheus metrics are served, if on.
    pub fn prometheus_addr(&self) -> Option<SocketAddr> {
        self.prometheus
    }

    /// Where Prometheus metrics are served over HTTPS, if they are.
    pub fn prometheus_tls_addr(&self) -> Option<SocketAddr> {
        self.prometheus_tls
    }

    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    pub(crate) fn fault_injector(&self) -> &Faults {
        &self.faults
    }

    /// Broker time: the clock `Config::clock` gave. On a manual clock
    /// (`Clock::manual()`, `--clock manual`), `server.clock().advance(d)`
    /// moves it and the server's timer task runs what became due right
    /// after; [`Server::advance`] runs it before returning.
    pub fn clock(&self) -> &crate::clock::Clock {
        self.broker.clock()
    }

    /// Moves a manual clock forward by `by` and runs what became due (TTL
    /// expiry, dead-lettering, x-expires) before returning, so the next
    /// look at a queue sees it. False, and nothing moves, on the real clock.
    pub fn advance(&self, by: std::time::Duration) -> bool {
        self.broker.advance(by)
    }

    /// Stops accepting, closes every connection with 320 CONNECTION_FORCED
    /// and waits for them (at most a few seconds).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.accept_task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Raises the memory alarm while the broker's resident memory is above
/// `limit` bytes (RabbitMQ's vm_memory_high_watermark): publishers are
/// blocked until it drops below again.
async fn memory_monitor(limit: Option<u64>, alarm: Arc<watch::Sender<AlarmSet>>, mut stop: watch::Receiver<bool>) {
    let Some(limit) = limit else { return };
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let Some(rss) = resident_bytes() else { return };
        let on = rss > limit;
        if on != alarm.borrow().memory {
            if on {
                tracing::warn!(
                    "memory alarm: resident {} MiB above the {} MiB watermark; blocking publishers",
                    rss >> 20,
                    limit >> 20
                );
            } else {
                tracing::info!("memory alarm cleared: resident {} MiB", rss >> 20);
            }
            alarm.send_modify(|a| a.memory = on);
        }
    }
}

/// How often free disk space is checked: every second, and ten times a
/// second once less than [`DISK_NEAR`] is left above the limit (RabbitMQ
/// also checks faster as the limit nears), so a fast publisher cannot fill
/// the margin between two checks.
const DISK_CHECK_INTERVAL: Duration = Duration::from_secs(1);
const DISK_CHECK_NEAR_INTERVAL: Duration = Duration::from_millis(100);
const DISK_NEAR: u64 = 256 << 20;

/// Raises the disk alarm (RabbitMQ's disk_free_limit) while the data
/// directory's filesystem has less than `limit` bytes free, or while the
/// store's writes fail for want of space; and the store-backlog alarm while
/// more bytes wait for the writer than it may hold. Both clear by
/// themselves. A write error, and every few MiB written, trigger a check at
/// once.
async fn disk_monitor(
    store: Arc<crate::store::Store>,
    limit: u64,
    alarm: Arc<watch::Sender<AlarmSet>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut next_check = DISK_CHECK_INTERVAL;
    let mut health = store.health();
    // Free space seen when a write failed: the alarm holds until clearly more
    // is free again, whatever the configured limit (which may be 0). While it
    // holds, publishers are blocked, so no write would tell us otherwise.
    let mut failed_at: Option<u64> = None;
    let mut failures_seen = 0;
    let mut last = (Health::default(), 0u64, tokio::time::Instant::now());
    tracing::info!("disk free limit set to {} MB", limit / 1_000_000);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(next_check) => {}
            changed = health.changed() => if changed.is_err() { return },
            _ = stop.changed() => return,
        }
        let h = *health.borrow_and_update();
        // Megabytes written only matter near the limit: far from it, the
        // timer's check is soon enough, and a busy writer does not cost a
        // statvfs every few MiB.
        let (seen, free_then, at) = last;
        let only_written = h.failed_writes == seen.failed_writes && h.backlog_full == seen.backlog_full;
        if only_written && free_then >= limit.saturating_add(DISK_NEAR) && at.elapsed() < next_check {
            continue;
        }
        let dir = store.dir().to_owned();
        let free = match tokio::task::spawn_blocking(move || crate::store::free_bytes(&dir)).await {
            Ok(Ok(free)) => free,
            Ok(Err(e)) => {
                tracing::warn!("cannot read free disk space of {}: {e}", store.dir().display());
                continue;
            }
            Err(_) => continue,
        };
        if h.failed_writes > failures_seen {
            failures_seen = h.failed_writes;
            failed_at = Some(failed_at.map_or(free, |at| at.min(free)));
        } else if failed_at.is_some_and(|at| free > at.saturating_add(1 << 20)) {
            // Space came back: 1 MiB beyond what was free at the failure.
            failed_at = None;
        }
        last = (h, free, tokio::time::Instant::now());
        next_check =
            if free < limit.saturating_add(DISK_NEAR) { DISK_CHECK_NEAR_INTERVAL } else { DISK_CHECK_INTERVAL };
        let disk = free < limit || failed_at.is_some();
        let current = *alarm.borrow();
        if disk != current.disk {
            if disk {
                tracing::warn!(
                    "disk alarm: {} MB free on the data directory's filesystem, limit {} MB{}; blocking publishers",
                    free / 1_000_000,
                    limit / 1_000_000,
                    if failed_at.is_some() { ", and writes are failing" } else { "" }
                );
            } else {
                tracing::info!("disk alarm cleared: {} MB free", free / 1_000_000);
            }
        }
        if h.backlog_full != current.store_backlog {
            if h.backlog_full {
                tracing::warn!(
                    "the store's writer is behind by more than {} MiB; blocking publishers",
                    crate::store::BACKLOG_HIGH >> 20
                );
            } else {
                tracing::info!("the store's writer caught up; unblocking publishers");
            }
        }
        alarm.send_if_modified(|a| {
            let changed = a.disk != disk || a.store_backlog != h.backlog_full;
            a.disk = disk;
            a.store_backlog = h.backlog_full;
            changed
        });
    }
}

/// VmRSS of this process, from /proc (Linux).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs queue deadlines (message expiry, x-expires) as they fall due: it
/// sleeps until the earliest one, and is woken early when a queue registers
/// an earlier one. Each run touches only the queues that are due. A manual
/// clock does not move by itself: `Broker::advance` runs what it makes due
/// before returning, and a plain `Clock::advance` wakes this task.
async fn run_timers(broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let clock = broker.clock().clone();
    loop {
        broker.run_due();
        // Deadlines are on the clock's millisecond scale; a manual clock
        // wakes this when it is moved past the next one.
        let next =
            broker.next_deadline().map(|at| clock.now() + Duration::from_millis(at.saturating_sub(clock.millis())));
        let sleep = async {
            match next {
                Some(at) => clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        // A deadline registered since `next_deadline` left a permit in the
        // Notify, so this wakes at once: none is missed.
        tokio::select! {
            _ = broker.deadlines_changed() => {}
            _ = sleep => {}
            _ = stop.changed() => break,
        }
    }
}

/// Accepts on `listener` if there is one; never returns otherwise.
async fn accept_on(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

async fn accept_loop(
    plain: Option<TcpListener>,
    amqps: Option<(TcpListener, Arc<TlsEndpoint>)>,
    ctx: ConnectionContext,
    faults: Faults,
) {
    let mut stop = ctx.shutdown.clone();
    let timers = tokio::spawn(run_timers(Arc::clone(&ctx.broker), ctx.shutdown.clone()));
    let mut connections = JoinSet::new();
    let mut rate = ctx.config.connection_rate_limit.map(|r| RateLimiter::new(r, std::time::Instant::now()));
    loop {
        let wait = rate.as_mut().map_or(Duration::ZERO, |r| r.delay(std::time::Instant::now()));
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            // Over the rate: leave connections in the listen backlog.
            _ = tokio::time::sleep(wait), if !wait.is_zero() => continue,
            accepted = accept_on(plain.as_ref()), if wait.is_zero() => {
                accepted.map(|(stream, peer)| (stream, peer, None))
            }
            accepted = accept_on(amqps.as_ref().map(|(l, _)| l)), if wait.is_zero() => {
                accepted.map(|(stream, peer)| (stream, peer, amqps.as_ref().map(|(_, e)| e.acceptor())))
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        if accepted.is_ok() {
            if let Some(r) = rate.as_mut() {
                r.take(std::time::Instant::now());
            }
        }
        match accepted {
            // A simulated restart (fault injection): the node is "down".
            Ok(_) if faults.refusing_connections() => {}
            Ok((stream, peer, None)) => {
                connections.spawn(serve(stream, peer, ctx.clone()));
            }
            Ok((stream, peer, Some(acceptor))) => {
                connections.spawn(serve_amqps(stream, peer, acceptor, ctx.clone()));
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(plain);
    drop(amqps);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain).await.is_err() {
        connections.abort_all();
    }
    let _ = timers.await;
    // Connections are gone: flush the store and mark the shutdown clean.
    let broker = ctx.broker;
    let _ = tokio::task::spawn_blocking(move || broker.close()).await;
}

/// The TLS handshake, within `ssl_handshake_timeout`, then AMQP. A client
/// that fails it (no certificate when one is required, an unknown CA,
/// plaintext on the TLS port) or stalls is dropped here, before it is a
/// connection anyone lists or waits for.
async fn serve_amqps(stream: TcpStream, peer: SocketAddr, acceptor: tokio_rustls::TlsAcceptor, ctx: ConnectionContext) {
    let _ = stream.set_nodelay(true);
    let timeout = ctx.config.tls_handshake_timeout;
    let stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            let text = e.to_string();
            let hint = if text.contains("UnsupportedCertVersion") {
                " (an X.509 v1 certificate: only v3 is accepted; reissue it with extensions, e.g. openssl x509 -req ... -extfile)"
            } else {
                ""
            };
            tracing::info!(%peer, "TLS handshake failed: {text}{hint}");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, "TLS handshake timed out after {} ms; closing", timeout.as_millis());
            return;
        }
    };
    let verify_peer = ctx.config.tls.as_ref().is_some_and(|t| t.verify_peer);
    let tls = crate::tls::peer(stream.get_ref().1, &ctx.config.cert_login, verify_peer);
    serve_tls(stream, peer, tls, ctx).await
}
