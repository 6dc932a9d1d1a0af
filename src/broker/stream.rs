//! Stream queues (`x-queue-type=stream`) over AMQP 0-9-1: what a `Queue`
//! holds when it is a stream (`Queue::stream`), the per-consumer cursor
//! over the log, and `x-stream-offset`. The log itself is `store::streams`.
//!
//! A stream is a `Queue` with an early branch in the few operations that
//! differ (enqueue, dispatch, settle, consumers): bindings, exclusivity
//! checks, the default exchange, confirms and stats then need nothing new.
//! Publishing appends through the store's writer and hands back its ticket
//! (a confirm waits for the fdatasync); every consumer reads the committed
//! log on its own from its start offset, with basic.qos prefetch as credit.
//! No I/O under an await: a chunk is read (pread, normally the page cache)
//! under the queue lock, by whoever dispatches.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use amq_protocol::types::{AMQPValue, FieldTable};

use super::args::{parse_interval_ms, StreamArgs};
use super::consumer::Consumer;
use super::error::{AmqpError, AmqpResult};
use super::vhost::{amqp_type_name, amqp_value_text};
use crate::message::Message;
use crate::store::stream_log::{entries, StartAt, StreamReader};
use crate::store::streams::{decode_entry, StreamHandle};
use crate::store::Store;

/// What a queue that is a stream has beyond a queue.
#[derive(Debug)]
pub struct StreamState {
    pub handle: Arc<StreamHandle>,
    pub args: StreamArgs,
    /// Woken by the writer after each commit; the stream's dispatcher task
    /// (started with its first consumer) waits on it.
    pub notify: Arc<tokio::sync::Notify>,
    /// Whether the dispatcher task runs.
    pub dispatcher: std::sync::atomic::AtomicBool,
}

/// Wakes a stream's dispatcher: what the store's writer holds.
struct CommitWaker(Arc<tokio::sync::Notify>);

impl std::task::Wake for CommitWaker {
    fn wake(self: Arc<Self>) {
        self.0.notify_one();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.notify_one();
    }
}

impl StreamState {
    pub fn new(handle: Arc<StreamHandle>, args: StreamArgs) -> StreamState {
        let notify = Arc::new(tokio::sync::Notify::new());
        handle.shared().set_on_commit(std::task::Waker::from(Arc::new(CommitWaker(Arc::clone(&notify)))));
        StreamState { handle, args, notify, dispatcher: std::sync::atomic::AtomicBool::new(false) }
    }

    /// The retention the arguments ask for.
    pub fn retention(&self) -> crate::store::streams::Retention {
        crate::store::streams::Retention { max_bytes: self.args.max_bytes, max_age_ms: self.args.max_age_ms }
    }

    /// Messages in the log (RabbitMQ's `messages` for a stream).
    pub fn message_count(&self) -> u64 {
        let shared = self.handle.shared();
        shared.committed().saturating_sub(shared.first_offset())
    }
}

/// One consumer's position in the stream.
pub(crate) struct Cursor {
    pub consumer: Arc<Consumer>,
    reader: StreamReader,
    /// Messages of the chunk read last still to deliver, with their offsets.
    pending: VecDeque<(u64, Arc<Message>)>,
    /// Entries below this offset are skipped: a numeric start inside a chunk
    /// starts exactly there, and one past the end waits for it.
    skip_below: u64,
    /// A read failed: logged once, the cursor stops.
    failed: bool,
}

impl std::fmt::Debug for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursor")
            .field("consumer", &self.consumer.tag)
            .field("position", &self.reader.position())
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Cursor {
    pub(crate) fn new(consumer: Arc<Consumer>, state: &StreamState, at: StartAt) -> std::io::Result<Cursor> {
        let (reader, start) = StreamReader::new(Arc::clone(state.handle.shared()), at)?;
        let skip_below = match at {
            StartAt::Offset(o) => o.max(start),
            _ => start,
        };
        Ok(Cursor { consumer, reader, pending: VecDeque::new(), skip_below, failed: false })
    }

    /// The next message to deliver (reading the next committed chunk if
    /// need be), or `None` when the cursor has read everything committed.
    pub(crate) fn peek(&mut self) -> Option<&(u64, Arc<Message>)> {
        while self.pending.is_empty() && !self.failed {
            let chunk = match self.reader.next_chunk() {
                Ok(Some(c)) => c,
                Ok(None) => return None,
                Err(e) => {
                    tracing::error!(consumer = %self.consumer.tag, "cannot read a stream chunk: {e}");
                    self.failed = true;
                    return None;
                }
            };
            let first = chunk.header.first_offset;
            for (i, e) in entries(&chunk.data).enumerate() {
                let offset = first + i as u64;
                if offset < self.skip_below {
                    continue;
                }
                if let Some(m) = decode_entry(&chunk.data, e) {
                    self.pending.push_back((offset, Arc::new(m)));
                }
            }
        }
        self.pending.front()
    }

    pub(crate) fn pop(&mut self) -> Option<(u64, Arc<Message>)> {
        self.pending.pop_front()
    }
}

fn invalid_offset(v: &AMQPValue, queue: &str, vhost: &str) -> AmqpError {
    let value = match v {
        AMQPValue::LongString(_) | AMQPValue::ShortString(_) => format!("<<\"{}\">>", amqp_value_text(v)),
        _ => amqp_value_text(v),
    };
    AmqpError::precondition_failed(format!(
        "invalid arg 'x-stream-offset' for queue '{queue}' in vhost '{vhost}': {{invalid_stream_offset_arg,{{{},{value}}}}}",
        amqp_type_name(v)
    ))
}

/// Where a consumer starts, from basic.consume's `x-stream-offset` (`next`
/// without it). `now_ms` is broker time (ms since the epoch), the origin of
/// interval strings. RabbitMQ 3.10 crashes (541) on some bad values; those
/// get the 406 its clean rejections have.
pub fn start_at(args: &FieldTable, queue: &str, vhost: &str, now_ms: i64) -> AmqpResult<StartAt> {
    let Some(v) = args.inner().get("x-stream-offset") else { return Ok(StartAt::Next) };
    let number = |n: i128| if n < 0 { StartAt::First } else { StartAt::Offset(n.min(u64::MAX as i128) as u64) };
    Ok(match v {
        AMQPValue::LongString(_) | AMQPValue::ShortString(_) => {
            let s = amqp_value_text(v);
            match s.as_str() {
                "first" => StartAt::First,
                "last" => StartAt::Last,
                "next" => StartAt::Next,
                _ => match parse_interval_ms(&s) {
                    Some(ms) => StartAt::Timestamp(now_ms.saturating_sub(ms.min(i64::MAX as u64) as i64)),
                    None => return Err(invalid_offset(v, queue, vhost)),
                },
            }
        }
        AMQPValue::Timestamp(secs) => StartAt::Timestamp((*secs).min(i64::MAX as u64 / 1000) as i64 * 1000),
        AMQPValue::ShortShortInt(n) => number(*n as i128),
        AMQPValue::ShortShortUInt(n) => number(*n as i128),
        AMQPValue::ShortInt(n) => number(*n as i128),
        AMQPValue::ShortUInt(n) => number(*n as i128),
        AMQPValue::LongInt(n) => number(*n as i128),
        AMQPValue::LongUInt(n) => number(*n as i128),
        AMQPValue::LongLongInt(n) => number(*n as i128),
        _ => return Err(invalid_offset(v, queue, vhost)),
    })
}

/// Where streams live in `--in-memory` mode: a private temporary directory
/// with a store of its own, made at the first stream declare and removed
/// at shutdown (`Broker::close`, or when the broker is dropped).
#[derive(Debug, Default)]
pub struct TempStreams {
    store: OnceLock<(Arc<Store>, PathBuf)>,
    /// Serialises the first open (the lock is not held across an await).
    init: parking_lot::Mutex<()>,
    closed: AtomicBool,
}

impl TempStreams {
    /// The store, opened on first use.
    pub fn store(&self) -> Result<Arc<Store>, String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        if let Some(store) = self.current() {
            return Ok(Arc::clone(store));
        }
        let _first = self.init.lock();
        if let Some(store) = self.current() {
            return Ok(Arc::clone(store));
        }
        let dir = std::env::temp_dir().join(format!(
            "warren-streams-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let (store, _) = Store::open(&dir).map_err(|e| e.to_string())?;
        tracing::info!(dir = %dir.display(), "in-memory mode: streams are kept in this temporary directory, removed at shutdown");
        let _ = self.store.set((Arc::clone(&store), dir));
        Ok(store)
    }

    /// The store if a stream made it: what confirms of stream publishes
    /// wait on in in-memory mode.
    pub fn current(&self) -> Option<&Arc<Store>> {
        self.store.get().map(|(s, _)| s)
    }

    /// Closes the store and removes its directory (once).
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some((store, dir)) = self.store.get() else { return };
        store.close();
        if let Err(e) = std::fs::remove_dir_all(dir) {
            tracing::warn!(dir = %dir.display(), "cannot remove the in-memory mode's stream directory: {e}");
        }
    }
}

impl Drop for TempStreams {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(v: AMQPValue) -> AmqpResult<StartAt> {
        let mut t = FieldTable::default();
        t.insert("x-stream-offset".into(), v);
        start_at(&t, "s", "/", 10_000_000)
    }

    #[test]
    fn stream_offsets_as_rabbitmq_reads_them() {
        assert_eq!(start_at(&FieldTable::default(), "s", "/", 0).unwrap(), StartAt::Next);
        assert_eq!(at(AMQPValue::LongString("first".into())).unwrap(), StartAt::First);
        assert_eq!(at(AMQPValue::LongString("last".into())).unwrap(), StartAt::Last);
        assert_eq!(at(AMQPValue::LongString("next".into())).unwrap(), StartAt::Next);
        assert_eq!(at(AMQPValue::ShortShortInt(4)).unwrap(), StartAt::Offset(4));
        assert_eq!(at(AMQPValue::LongLongInt(-3)).unwrap(), StartAt::First);
        assert_eq!(at(AMQPValue::Timestamp(47)).unwrap(), StartAt::Timestamp(47_000));
        assert_eq!(at(AMQPValue::LongString("1h".into())).unwrap(), StartAt::Timestamp(10_000_000 - 3_600_000));
        assert_eq!(
            at(AMQPValue::LongString("5".into())).unwrap_err().text,
            "PRECONDITION_FAILED - invalid arg 'x-stream-offset' for queue 's' in vhost '/': {invalid_stream_offset_arg,{longstr,<<\"5\">>}}"
        );
        assert!(at(AMQPValue::LongString("FIRST".into())).is_err());
        assert!(at(AMQPValue::Boolean(true)).is_err());
        assert!(at(AMQPValue::Double(5.0)).is_err());
    }
}
