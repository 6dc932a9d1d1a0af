//! Message rates (`*_details.rate`), sampled as RabbitMQ's `basic` rates
//! mode does: every few seconds the counters of every queue, exchange,
//! vhost and connection are read, and a rate is the change since the
//! previous sample over the time between them.
//!
//! The hot path only bumps the broker's atomics; this task reads them. The
//! table is rebuilt at each sample, so objects that are gone leave it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::broker::Broker;
use crate::ids::ConnectionId;

/// RabbitMQ's default `collect_statistics_interval`.
pub(crate) const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// How many counters one object has (unused slots stay 0).
pub(crate) const N: usize = 8;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Global,
    Vhost(String),
    Queue(String, String),
    Exchange(String, String),
    Connection(ConnectionId),
}

#[derive(Clone, Copy, Debug)]
struct Sample {
    counts: [u64; N],
    rates: [f64; N],
}

#[derive(Debug)]
pub(crate) struct Rates {
    table: Mutex<(Instant, HashMap<Key, Sample>)>,
}

impl Default for Rates {
    fn default() -> Self {
        Rates { table: Mutex::new((Instant::now(), HashMap::new())) }
    }
}

/// Queue counters, in this order: publish, deliver, deliver_no_ack, get,
/// get_no_ack, ack, redeliver, messages (depth).
pub(crate) mod queue {
    pub(crate) const PUBLISH: usize = 0;
    pub(crate) const DELIVER: usize = 1;
    pub(crate) const DELIVER_NO_ACK: usize = 2;
    pub(crate) const GET: usize = 3;
    pub(crate) const GET_NO_ACK: usize = 4;
    pub(crate) const ACK: usize = 5;
    pub(crate) const REDELIVER: usize = 6;
    pub(crate) const MESSAGES: usize = 7;
}

/// Vhost and global counters: received, routed, dropped unroutable,
/// returned unroutable, confirmed, delivered (deliver + get), acknowledged.
pub(crate) mod totals {
    pub(crate) const RECEIVED: usize = 0;
    pub(crate) const DROPPED: usize = 2;
    pub(crate) const RETURNED: usize = 3;
    pub(crate) const CONFIRMED: usize = 4;
    pub(crate) const DELIVERED: usize = 5;
    pub(crate) const ACKNOWLEDGED: usize = 6;
}

pub(crate) fn queue_counts(q: &crate::broker::queue::Queue) -> [u64; N] {
    let s = q.stats();
    [
        s.publish,
        s.deliver,
        s.deliver_no_ack,
        s.get,
        s.get_no_ack,
        s.ack,
        s.redeliver,
        s.messages_ready + s.messages_unacknowledged as u64,
    ]
}

pub(crate) fn totals_counts(c: &crate::broker::MessageCounts) -> [u64; N] {
    [c.received, c.routed, c.unroutable_dropped, c.unroutable_returned, c.confirmed, c.delivered, c.acknowledged, 0]
}

impl Rates {
    /// The per-second rates of an object's counters at the last sample
    /// (zeros for an object first seen since).
    pub(crate) fn of(&self, key: &Key) -> [f64; N] {
        self.table.lock().1.get(key).map_or([0.0; N], |s| s.rates)
    }

    /// Takes one sample of everything.
    pub(crate) fn sample(&self, broker: &Broker) {
        let mut fresh: Vec<(Key, [u64; N])> = Vec::new();
        let g = broker.global_stats();
        fresh.push((
            Key::Global,
            [
                g.messages_received,
                g.messages_routed,
                g.messages_unroutable_dropped,
                g.messages_unroutable_returned,
                g.messages_confirmed,
                g.messages_delivered,
                g.messages_acknowledged,
                0,
            ],
        ));
        for v in broker.vhosts() {
            fresh.push((Key::Vhost(v.name.clone()), totals_counts(&v.message_stats())));
            for q in v.queues() {
                fresh.push((Key::Queue(v.name.clone(), q.name.clone()), queue_counts(&q)));
            }
            for x in v.exchanges() {
                let s = x.stats();
                fresh.push((
                    Key::Exchange(v.name.clone(), x.name.clone()),
                    [s.publish_in, s.publish_out, 0, 0, 0, 0, 0, 0],
                ));
            }
        }
        for c in broker.connections() {
            fresh.push((Key::Connection(c.id), [c.recv_oct, c.send_oct, c.recv_cnt, c.send_cnt, 0, 0, 0, 0]));
        }
        let now = Instant::now();
        let mut table = self.table.lock();
        let dt = now.duration_since(table.0).as_secs_f64();
        let mut next = HashMap::with_capacity(fresh.len());
        for (key, counts) in fresh {
            let mut rates = [0.0; N];
            if let (Some(old), true) = (table.1.get(&key), dt > 0.0) {
                for i in 0..N {
                    // A gauge (depth) may fall; a counter only grows.
                    rates[i] = (counts[i] as f64 - old.counts[i] as f64) / dt;
                }
            }
            next.insert(key, Sample { counts, rates });
        }
        *table = (now, next);
    }
}

/// Samples every `SAMPLE_INTERVAL` until `stop` flips.
pub(crate) async fn run(rates: Arc<Rates>, broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        let (r, b) = (Arc::clone(&rates), Arc::clone(&broker));
        // Reading 10,000 queues takes milliseconds: off the async workers.
        if tokio::task::spawn_blocking(move || r.sample(&b)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_is_the_change_between_two_samples_over_their_interval() {
        let b = Broker::in_memory("guest", "guest", "/");
        let v = b.vhost("/").unwrap();
        crate::broker::vhost::tests_support::declare_q(&v, "q");
        let rates = Rates::default();
        rates.sample(&b);
        let key = Key::Queue("/".into(), "q".into());
        assert_eq!(rates.of(&key), [0.0; N], "one sample: no rate yet");
        b.add_message_counts(Some(&v), &crate::broker::MessageCounts { received: 10, ..Default::default() });
        std::thread::sleep(Duration::from_millis(50));
        rates.sample(&b);
        let r = rates.of(&Key::Global)[totals::RECEIVED];
        assert!(r > 10.0 && r < 10.0 / 0.05 + 1.0, "10 messages over ~50 ms: {r}");
        assert_eq!(rates.of(&Key::Vhost("/".into()))[totals::RECEIVED], r);
        v.queue_delete("q", false, false, ConnectionId(0)).unwrap();
        rates.sample(&b);
        assert_eq!(rates.table.lock().1.get(&key).map(|_| ()), None, "a deleted queue leaves the table");
    }
}
