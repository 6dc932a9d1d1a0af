//! Listener, accept loop and graceful shutdown.
//!
//! One shutdown mechanism: a `watch` channel every connection task holds.
//! Flipping it makes the accept loop stop and each connection send
//! connection.close 320 CONNECTION_FORCED; `shutdown` then waits (bounded)
//! for the connection tasks to finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::broker::alarms::AlarmSet;
use crate::broker::Broker;
use crate::protocol::driver::{serve, ConnectionContext};
use crate::rate_limit::RateLimiter;
use crate::store::Health;
use crate::Config;

/// A running broker. Dropping it stops it (without waiting); `shutdown`
/// stops it and waits for connections to close.
pub struct Server {
    addr: SocketAddr,
    management: Option<SocketAddr>,
    prometheus: Option<SocketAddr>,
    broker: Arc<Broker>,
    stop: watch::Sender<bool>,
    accept_task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Binds the listener and starts accepting. Must run inside a tokio runtime.
    pub async fn start(config: Config) -> std::io::Result<Server> {
        let listener = TcpListener::bind((config.bind, config.port)).await?;
        let addr = listener.local_addr()?;
        let management_bind = config.management_bind.unwrap_or(config.bind);
        let management = match config.management_port {
            Some(port) => Some(TcpListener::bind((management_bind, port)).await.map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot listen for the management API on {management_bind}:{port}: {e} (--management-port 0 turns it off)"),
                )
            })?),
            None => None,
        };
        let management_addr = management.as_ref().map(TcpListener::local_addr).transpose()?;
        let prometheus = match config.prometheus_port {
            Some(port) => Some(TcpListener::bind((management_bind, port)).await.map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot listen for Prometheus on {management_bind}:{port}: {e} (--prometheus-port 0 turns it off)"),
                )
            })?),
            None => None,
        };
        let prometheus_addr = prometheus.as_ref().map(TcpListener::local_addr).transpose()?;
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
        tokio::spawn(memory_monitor(limit, Arc::clone(&alarm_tx), ctx.shutdown.clone()));
        if let Some(store) = broker.store() {
            tokio::spawn(disk_monitor(Arc::clone(store), disk_limit, alarm_tx, ctx.shutdown.clone()));
        }
        if management.is_some() || prometheus.is_some() {
            let mut listeners = vec![crate::http::Listener { protocol: "amqp", addr }];
            listeners.extend(management_addr.map(|addr| crate::http::Listener { protocol: "http", addr }));
            listeners.extend(prometheus_addr.map(|addr| crate::http::Listener { protocol: "http/prometheus", addr }));
            let api = crate::http::Api::new(Arc::clone(&broker), Arc::clone(&ctx.config), ctx.alarm.clone(), listeners);
            tokio::spawn(crate::http::serve(management, prometheus, api, ctx.shutdown.clone()));
        }
        let accept_task = tokio::spawn(accept_loop(listener, ctx));
        Ok(Server {
            addr,
            management: management_addr,
            prometheus: prometheus_addr,
            broker,
            stop,
            accept_task: Some(accept_task),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
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

    /// Where Prometheus metrics are served, if on.
    pub fn prometheus_addr(&self) -> Option<SocketAddr> {
        self.prometheus
    }

    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
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

async fn accept_loop(listener: TcpListener, ctx: ConnectionContext) {
    let mut stop = ctx.shutdown.clone();
    let timers = tokio::spawn(run_timers(Arc::clone(&ctx.broker), ctx.shutdown.clone()));
    let mut connections = JoinSet::new();
    let mut rate = ctx.config.connection_rate_limit.map(|r| RateLimiter::new(r, std::time::Instant::now()));
    loop {
        let wait = rate.as_mut().map_or(Duration::ZERO, |r| r.delay(std::time::Instant::now()));
        tokio::select! {
            _ = stop.changed() => break,
            // Over the rate: leave connections in the listen backlog.
            _ = tokio::time::sleep(wait), if !wait.is_zero() => {}
            accepted = listener.accept(), if wait.is_zero() => match accepted {
                Ok((stream, peer)) => {
                    if let Some(r) = rate.as_mut() {
                        r.take(std::time::Instant::now());
                    }
                    connections.spawn(serve(stream, peer, ctx.clone()));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain).await.is_err() {
        connections.abort_all();
    }
    let _ = timers.await;
    // Connections are gone: flush the store and mark the shutdown clean.
    let broker = ctx.broker;
    let _ = tokio::task::spawn_blocking(move || broker.close()).await;
}
