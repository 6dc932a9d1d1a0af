//! The connection task: the only code in `protocol/` that touches tokio or
//! a socket (mini-redis's shape). It owns the socket halves, sizes the read
//! buffer, and polls in one `select!` what the `Connection` asks for:
//! socket readable (unless it wants no input), socket writable (when it has
//! output), its outbox's `Notify`, its next deadline, the alarms watch and
//! the shutdown watch. Reads and writes are polled together so a client
//! that stops reading cannot wedge us while it is still sending acks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::connection::{Connection, ConnectionParams, Event, TlsPeer};
use crate::broker::alarms::AlarmSet;
use crate::broker::Broker;
use crate::clock::Clock;
use crate::Config;

const READ_CHUNK: usize = 64 * 1024;
/// What an idle connection's read buffer starts with.
const IDLE_READ_BUFFER: usize = 2048;
/// How long the last words of an ended connection may take to go out.
const FINAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Everything a connection needs from the server that accepted it.
#[derive(Clone)]
pub(crate) struct ConnectionContext {
    pub broker: Arc<Broker>,
    pub config: Arc<Config>,
    pub shutdown: watch::Receiver<bool>,
    /// The resource alarms: while any is on, connections that publish are blocked.
    pub alarm: watch::Receiver<AlarmSet>,
    /// The listener's address.
    pub local: SocketAddr,
}

/// Serves a plain TCP connection.
pub(crate) async fn serve(stream: TcpStream, peer: SocketAddr, ctx: ConnectionContext) {
    let _ = stream.set_nodelay(true);
    // The listener's address if the socket cannot say (it always can on
    // a connected TCP socket).
    let local = stream.local_addr().unwrap_or(ctx.local);
    // Owned halves: no lock between the reading and the writing side.
    let (rd, wr) = stream.into_split();
    if let Some((rd, wr)) = run(rd, wr, peer, local, None, ctx).await {
        if let Ok(stream) = rd.reunite(wr) {
            let _ = stream.set_zero_linger();
        }
    }
}

/// Serves a connection whose TLS handshake is done.
pub(crate) async fn serve_tls(
    stream: tokio_rustls::server::TlsStream<TcpStream>,
    peer: SocketAddr,
    tls: TlsPeer,
    ctx: ConnectionContext,
) {
    let local = stream.get_ref().0.local_addr().unwrap_or(ctx.local);
    let (rd, wr) = tokio::io::split(stream);
    if let Some((rd, wr)) = run(rd, wr, peer, local, Some(tls), ctx).await {
        let _ = rd.unsplit(wr).get_ref().0.set_zero_linger();
    }
}

/// Writes `out`, or, with nothing to write, flushes what an earlier write
/// left buffered (a TLS stream takes plaintext it could not yet send as
/// records); `Ok(0)` then means flushed.
async fn write_or_flush<W: AsyncWrite + Unpin>(wr: &mut W, out: &[u8]) -> std::io::Result<usize> {
    if out.is_empty() {
        wr.flush().await.map(|()| 0)
    } else {
        wr.write(out).await
    }
}

/// Runs the connection to its end. Returns the halves when the socket is to
/// be reset rather than closed (after a silent close), for the caller to set
/// a zero linger on before dropping it.
async fn run<R, W>(
    mut rd: R,
    mut wr: W,
    peer: SocketAddr,
    local: SocketAddr,
    tls: Option<TlsPeer>,
    ctx: ConnectionContext,
) -> Option<(R, W)>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // Plain TCP writes go straight to the socket; TLS ones may stay in
    // rustls's buffer until flushed.
    let buffered_writes = tls.is_some();
    let mut unflushed = false;
    // Socket timers run on real time even when broker time is virtual
    // (unless a test gives them a manual clock too).
    let clock = ctx.config.socket_clock.clone();
    let broker_clock = ctx.broker.clock().clone();
    let mut shutdown = ctx.shutdown.clone();
    let mut alarm = ctx.alarm.clone();
    let mut alarm_open = true;
    let alarms = *alarm.borrow();
    let mut conn = Connection::new(ConnectionParams {
        broker: ctx.broker,
        config: ctx.config,
        peer,
        local,
        alarms,
        tls,
        wire_clock: clock.clone(),
    });
    let outbox = Arc::clone(conn.outbox());
    // Socket counters and the close request (`Broker::close_connection`).
    let entry = Arc::clone(conn.registry_entry());
    conn.io().0.reserve(IDLE_READ_BUFFER);

    // Whether the last read filled all the room it had: then traffic is
    // heavy and a large buffer saves syscalls.
    let mut read_filled = false;
    let mut shutting_down = false;
    let mut half_closed = false;
    // Injected write latency (fault injection): output waits until then.
    let mut write_at: Option<Instant> = None;

    while !conn.is_ended() {
        if conn.wants_half_close() && !half_closed {
            // Our last words are out; a FIN tells the peer, and we keep
            // reading until it closes too.
            let _ = wr.shutdown().await;
            half_closed = true;
        }
        // An alarm raised since the last wake-up stops a publisher's reads
        // before the next one, not only once `select!` picks its branch.
        if alarm_open && alarm.has_changed().unwrap_or(false) {
            let set = *alarm.borrow_and_update();
            conn.handle_event(Event::Alarms(set), clock.now());
            continue;
        }
        let reading = conn.wants_read();
        let room = conn.wants_deliveries();
        // Read before the deadline, so that a move in between wakes us.
        let broker_time = conn.waits_on_broker_time().then(|| broker_clock.millis());
        let deadline = conn.poll_timeout();
        let (rbuf, out) = conn.io();
        let spare = rbuf.capacity() - rbuf.len();
        if read_filled && spare < READ_CHUNK / 2 {
            rbuf.reserve(READ_CHUNK);
        } else if spare < IDLE_READ_BUFFER / 2 {
            rbuf.reserve(IDLE_READ_BUFFER);
        }
        let room_before = rbuf.capacity() - rbuf.len();
        let has_output = (!out.is_empty() || unflushed) && !half_closed;
        let delay = entry.write_delay();
        if delay.is_zero() || !has_output {
            write_at = None;
        } else if write_at.is_none() {
            write_at = Some(clock.now() + delay);
        }
        let write_due = write_at.is_none_or(|at| clock.now() >= at);

        tokio::select! {
            changed = alarm.changed(), if alarm_open => {
                if changed.is_err() {
                    alarm_open = false;
                } else {
                    let set = *alarm.borrow_and_update();
                    conn.handle_event(Event::Alarms(set), clock.now());
                }
            }
            changed = shutdown.changed(), if !shutting_down => {
                shutting_down = true;
                if changed.is_ok() {
                    conn.handle_event(Event::Shutdown, clock.now());
                }
            }
            _ = entry.close_requested(), if !shutting_down => {
                shutting_down = true;
                conn.handle_event(Event::ForceClose, clock.now());
            }
            _ = entry.fault_injected(), if !shutting_down => conn.handle_event(Event::Faults, clock.now()),
            _ = sleep_until(write_at, &clock), if !write_due => {}
            r = rd.read_buf(rbuf), if reading => {
                match r {
                    Ok(0) | Err(_) => conn.handle_event(Event::Closed, clock.now()),
                    Ok(n) => {
                        entry.add_recv(n);
                        read_filled = n >= room_before;
                        conn.handle_read(clock.now());
                    }
                }
            }
            w = write_or_flush(&mut wr, out), if has_output && write_due => {
                write_at = None;
                match w {
                    Ok(0) if out.is_empty() => unflushed = false,
                    Ok(0) | Err(_) => conn.handle_event(Event::Closed, clock.now()),
                    Ok(n) => {
                        entry.add_send(n);
                        unflushed = buffered_writes;
                        conn.handle_written(n, clock.now());
                    }
                }
            }
            _ = outbox.notified(), if room => conn.handle_event(Event::OutboxWoken, clock.now()),
            _ = sleep_until(deadline, &clock) => conn.handle_timeout(clock.now()),
            _ = broker_clock.moved_from(broker_time.unwrap_or_default()), if broker_time.is_some() => {
                conn.handle_timeout(clock.now())
            }
        }
    }

    if conn.wants_reset() {
        tracing::debug!(%peer, id = %conn.id(), "connection reset after a failed handshake");
        return Some((rd, wr));
    }
    // Best effort: let the peer see any close we queued.
    let out = conn.transmit();
    if !out.is_empty() && !half_closed {
        let _ = tokio::time::timeout(FINAL_WRITE_TIMEOUT, wr.write_all(out)).await;
    }
    let _ = wr.shutdown().await;
    tracing::debug!(%peer, id = %conn.id(), "connection closed");
    None
}

/// Sleeps until `clock` reads `at` (a manual clock wakes it when moved).
async fn sleep_until(at: Option<Instant>, clock: &Clock) {
    match at {
        Some(at) => clock.sleep_until(at).await,
        None => std::future::pending().await,
    }
}
