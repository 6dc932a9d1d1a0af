//! Dead lettering as RabbitMQ does it: the message that leaves a queue
//! (rejected, expired, or pushed out by a length limit) is republished to
//! the queue's dead-letter exchange with an `x-death` history.
//!
//! x-death is an array of tables, newest first, one per (queue, reason):
//! `count` (long), `reason`, `queue`, `time` (timestamp, seconds),
//! `exchange`, `routing-keys` (the original key and CC keys), and
//! `original-expiration` when the message carried a per-message TTL (the
//! `expiration` property itself is removed, so it does not expire again).
//! `x-first-death-{reason,queue,exchange}` record the first death only. BCC
//! is stripped; CC is kept.

use bytes::Bytes;

use super::queue::DeathReason;
use crate::message::Message;
use crate::wire::properties::{self, Property, PropertyScan};
use crate::wire::table::{self, Edit, Entry};

/// A header's (or an x-death field's) long-string value as text.
fn text_of(body: &[u8], key: &[u8]) -> Option<String> {
    let e = table::find(body, key)?;
    table::long_string(e.tag, e.value).map(|s| String::from_utf8_lossy(s).into_owned())
}

/// The routing keys a message was published with: its key, then the long
/// strings of its first CC header. `headers` is the raw headers table body.
pub fn original_routing_keys(message: &Message, headers: Option<&[u8]>) -> Vec<String> {
    let mut keys = vec![String::from_utf8_lossy(&message.routing_key).into_owned()];
    let cc = headers.and_then(|h| table::find(h, b"CC")).and_then(|e| table::array_value(e.tag, e.value));
    if let Some(cc) = cc {
        keys.extend(
            table::items(cc)
                .map_while(Result::ok)
                .filter_map(|i| table::long_string(i.tag, i.value))
                .map(|k| String::from_utf8_lossy(k).into_owned()),
        );
    }
    keys
}

/// The fields of one new x-death entry.
struct Death<'a> {
    queue: &'a str,
    reason: &'a str,
    time: u64,
    exchange: &'a [u8],
    routing_keys: &'a [String],
    original_expiration: Option<&'a [u8]>,
}

impl Death<'_> {
    /// Writes the entry as a table value (tag included). RabbitMQ writes the
    /// first death of a message in this order and sorts the keys of every
    /// later one (`rabbit_misc:sort_field_table`); so do we.
    fn write(&self, out: &mut Vec<u8>, sorted: bool) {
        out.push(b'F');
        let at = table::begin(out);
        let mut fields: [(&[u8], u8); 7] = [
            (b"count", 0),
            (b"reason", 1),
            (b"queue", 2),
            (b"time", 3),
            (b"exchange", 4),
            (b"routing-keys", 5),
            (b"original-expiration", 6),
        ];
        if sorted {
            fields.sort_by_key(|f| f.0);
        }
        for (key, which) in fields {
            if which == 6 && self.original_expiration.is_none() {
                continue;
            }
            table::put_key(out, key);
            match which {
                0 => table::put_long(out, 1),
                1 => table::put_long_string(out, self.reason.as_bytes()),
                2 => table::put_long_string(out, self.queue.as_bytes()),
                3 => table::put_timestamp(out, self.time),
                4 => table::put_long_string(out, self.exchange),
                5 => {
                    out.push(b'A');
                    let keys_at = table::begin(out);
                    for k in self.routing_keys {
                        table::put_long_string(out, k.as_bytes());
                    }
                    table::finish(out, keys_at);
                }
                _ => table::put_long_string(out, self.original_expiration.unwrap_or_default()),
            }
        }
        table::finish(out, at);
    }
}

/// Writes an earlier x-death entry counted once more, as RabbitMQ does:
/// `count` replaced by count + 1 (or added as 1), keys sorted (stably),
/// every value but the count copied byte for byte.
fn write_counted(entry_body: &[u8], out: &mut Vec<u8>) {
    let mut entries: Vec<Entry<'_>> = table::entries(entry_body).map_while(Result::ok).collect();
    let count = entries.iter().position(|e| e.key == b"count");
    let next = count.and_then(|i| table::integer(entries[i].tag, entries[i].value)).unwrap_or(0) as i64 + 1;
    let mut count_value = Vec::with_capacity(9);
    table::put_long(&mut count_value, next);
    let mut count_entry = vec![5, b'c', b'o', b'u', b'n', b't'];
    count_entry.extend_from_slice(&count_value);
    let replacement = Entry { key: b"count", tag: b'l', value: &count_value[1..], raw: &count_entry };
    match count {
        Some(i) => entries[i] = replacement,
        None => entries.insert(0, replacement),
    }
    entries.sort_by(|a, b| a.key.cmp(b.key));
    out.push(b'F');
    let at = table::begin(out);
    for e in entries {
        out.extend_from_slice(e.raw);
    }
    table::finish(out, at);
}

/// Builds the dead-lettered copy of `message` and the routing keys to
/// publish it with on the dead-letter exchange. Also returns the x-death
/// history, newest first, as (queue, reason) pairs for cycle detection.
///
/// The properties are edited raw (`crate::wire`), never decoded: headers
/// the publisher sent keep their bytes and places at any depth, and so do
/// earlier x-death entries other than the one counted again.
pub fn dead_letter_message(
    message: &Message,
    queue: &str,
    reason: DeathReason,
    dlx: &str,
    dlrk: Option<&str>,
) -> (Message, Vec<String>, Vec<(String, String)>) {
    let now = crate::clock::Clock::real().unix_millis() / 1000;
    dead_letter_message_at(message, queue, reason, dlx, dlrk, now)
}

/// As [`dead_letter_message`], with x-death's `time` (Unix seconds) from the
/// broker's clock: what the vhost uses.
pub fn dead_letter_message_at(
    message: &Message,
    queue: &str,
    reason: DeathReason,
    dlx: &str,
    dlrk: Option<&str>,
    now: u64,
) -> (Message, Vec<String>, Vec<(String, String)>) {
    // Publishes are checked on arrival; should stored bytes not scan, the
    // copy carries the dead-letter headers alone.
    let mut props: &[u8] = &message.properties;
    let mut scan = PropertyScan::new(props);
    if scan.check(props).is_err() {
        props = &[0, 0];
        scan = PropertyScan::new(props);
    }
    let headers = scan.headers(props).unwrap_or_default();
    let keys = original_routing_keys(message, Some(headers));
    let death = Death {
        queue,
        reason: reason.as_str(),
        time: now,
        exchange: &message.exchange,
        routing_keys: &keys,
        original_expiration: scan.get(props, Property::Expiration),
    };

    let prior = table::find(headers, b"x-death");
    let prior_items = prior.and_then(|e| table::array_value(e.tag, e.value));
    let mut deaths = vec![b'A'];
    let deaths_at = table::begin(&mut deaths);
    let mut history = vec![(queue.to_owned(), reason.as_str().to_owned())];
    match prior_items {
        Some(items) => {
            // The same queue and reason again: count it and move it to the
            // front. The other entries follow in their order, unchanged.
            let is_same = |i: &table::Item<'_>| {
                table::table_value(i.tag, i.value).is_some_and(|t| {
                    text_of(t, b"queue").as_deref() == Some(queue)
                        && text_of(t, b"reason").as_deref() == Some(reason.as_str())
                })
            };
            let same = table::items(items).map_while(Result::ok).position(|i| is_same(&i));
            match same.and_then(|n| table::items(items).nth(n)).and_then(Result::ok) {
                Some(i) => write_counted(table::table_value(i.tag, i.value).unwrap_or_default(), &mut deaths),
                None => death.write(&mut deaths, true),
            }
            for (n, item) in table::items(items).map_while(Result::ok).enumerate() {
                if Some(n) == same {
                    continue;
                }
                deaths.extend_from_slice(item.raw);
                if let Some(t) = table::table_value(item.tag, item.value) {
                    history.push((text_of(t, b"queue").unwrap_or_default(), text_of(t, b"reason").unwrap_or_default()));
                }
            }
        }
        // No x-death yet, or one that is not an array (RabbitMQ then starts
        // it over, leaving x-first-death-* alone).
        None => death.write(&mut deaths, false),
    }
    table::finish(&mut deaths, deaths_at);

    let exchange_value = {
        let mut v = Vec::new();
        table::put_long_string(&mut v, &message.exchange);
        v
    };
    let (mut reason_value, mut queue_value) = (Vec::new(), Vec::new());
    table::put_long_string(&mut reason_value, reason.as_str().as_bytes());
    table::put_long_string(&mut queue_value, queue.as_bytes());
    let mut edits: Vec<Edit<'_>> = Vec::with_capacity(6);
    if prior.is_none() {
        // The first death also gets top-level headers (RabbitMQ 3.8+).
        edits.push(Edit::Set(b"x-first-death-reason", &reason_value));
        edits.push(Edit::Set(b"x-first-death-queue", &queue_value));
        edits.push(Edit::Set(b"x-first-death-exchange", &exchange_value));
    }
    edits.push(Edit::Set(b"x-death", &deaths));
    // BCC never travels on; CC goes too when the dead-letter routing key
    // replaces the original keys.
    edits.push(Edit::Remove(b"BCC"));
    if dlrk.is_some() {
        edits.push(Edit::Remove(b"CC"));
    }
    // The expiration property goes (it is in the entry as
    // original-expiration), so the copy does not expire again.
    let raw = properties::edit_headers(props, &scan, &edits, &[(Property::Expiration, None)]).unwrap_or_default();
    let routing_keys = match dlrk {
        Some(k) => vec![k.to_owned()],
        None => keys,
    };
    let new = Message::new(
        Bytes::copy_from_slice(dlx.as_bytes()),
        Bytes::copy_from_slice(routing_keys[0].as_bytes()),
        Bytes::from(raw),
        message.body.clone(),
    );
    (new, routing_keys, history)
}

/// RabbitMQ's cycle rule: delivering to `target` closes a cycle if the
/// history reaches back to `target` with no rejection on the way (a fully
/// automatic loop, e.g. expiry to expiry), and then the copy is dropped.
pub fn is_cycle(target: &str, history: &[(String, String)]) -> bool {
    match history.iter().position(|(q, _)| q == target) {
        None => false,
        Some(i) => history[..=i].iter().all(|(_, reason)| reason != "rejected"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::protocol::basic::{gen_properties, AMQPProperties};
    use amq_protocol::types::AMQPValue;

    fn text(s: &str) -> AMQPValue {
        AMQPValue::LongString(s.into())
    }

    fn message(props: &AMQPProperties) -> Message {
        let raw = cookie_factory::gen_simple(gen_properties(props), Vec::new()).unwrap();
        Message::new(Bytes::from_static(b"ex"), Bytes::from_static(b"rk"), Bytes::from(raw), Bytes::new())
    }

    /// Properties `[flags = headers | expiration][headers][expiration "9"]`
    /// with the given raw header entries.
    fn with_raw_headers(entries: &[u8]) -> Message {
        let mut p = vec![0x21, 0x00];
        p.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        p.extend_from_slice(entries);
        p.extend_from_slice(b"\x019");
        Message::new(Bytes::from_static(b"ex"), Bytes::from_static(b"rk"), Bytes::from(p), Bytes::new())
    }

    fn headers_of(m: &Message) -> Vec<u8> {
        let scan = PropertyScan::new(&m.properties);
        assert!(scan.check(&m.properties).is_ok());
        scan.headers(&m.properties).unwrap().to_vec()
    }

    #[test]
    fn x_death_is_added_counted_and_moved_to_the_front() {
        let m = message(&AMQPProperties::default().with_expiration("500".into()));
        let (m1, keys, hist) = dead_letter_message(&m, "q1", DeathReason::Expired, "dlx", None);
        assert_eq!(keys, vec!["rk"]);
        assert_eq!(hist, vec![("q1".to_string(), "expired".to_string())]);
        let p = m1.decode_properties().unwrap();
        assert!(p.expiration().is_none());
        assert_eq!(&m1.exchange[..], b"dlx");
        let h = p.headers().clone().unwrap();
        let AMQPValue::FieldArray(deaths) = h.inner().get("x-death").unwrap() else { panic!() };
        let AMQPValue::FieldTable(first) = &deaths.as_slice()[0] else { panic!() };
        assert_eq!(first.inner().get("count"), Some(&AMQPValue::LongLongInt(1)));
        assert_eq!(first.inner().get("original-expiration"), Some(&text("500")));
        assert_eq!(first.inner().get("exchange"), Some(&text("ex")));
        assert!(matches!(first.inner().get("time"), Some(AMQPValue::Timestamp(_))));
        let (m2, _, hist) = dead_letter_message(&m1, "q2", DeathReason::Rejected, "dlx2", Some("k2"));
        assert_eq!(hist.len(), 2);
        assert_eq!(&m2.routing_key[..], b"k2");
        let (m3, _, hist) = dead_letter_message(&m2, "q1", DeathReason::Expired, "dlx", None);
        assert_eq!(hist[0], ("q1".to_string(), "expired".to_string()));
        assert_eq!(hist.len(), 2);
        let h = m2.decode_properties().unwrap().headers().clone().unwrap();
        assert_eq!(h.inner().get("x-first-death-queue"), Some(&text("q1")));
        assert_eq!(h.inner().get("x-first-death-reason"), Some(&text("expired")));
        let h = m3.decode_properties().unwrap().headers().clone().unwrap();
        let AMQPValue::FieldArray(deaths) = h.inner().get("x-death").unwrap() else { panic!() };
        let AMQPValue::FieldTable(front) = &deaths.as_slice()[0] else { panic!() };
        assert_eq!(front.inner().get("count"), Some(&AMQPValue::LongLongInt(2)));
        assert_eq!(front.inner().get("queue"), Some(&text("q1")));
        // The first death keeps RabbitMQ's field order; a counted one is sorted.
        let order = |m: &Message| {
            let h = headers_of(m);
            let xd = table::find(&h, b"x-death").unwrap();
            let items = table::array_value(xd.tag, xd.value).unwrap();
            let first = table::items(items).next().unwrap().unwrap();
            let body = table::table_value(first.tag, first.value).unwrap();
            table::entries(body).map(|e| String::from_utf8(e.unwrap().key.to_vec()).unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(order(&m1), ["count", "reason", "queue", "time", "exchange", "routing-keys", "original-expiration"]);
        assert_eq!(order(&m3), ["count", "exchange", "original-expiration", "queue", "reason", "routing-keys", "time"]);
    }

    #[test]
    fn other_headers_keep_their_bytes_places_and_depth() {
        // A deep header, a duplicate key, a BCC and a CC, in this order.
        let deep = crate::wire::table::tests_support::nested_tables(50_000);
        let mut entries = Vec::new();
        table::put_key(&mut entries, b"deep");
        entries.push(b'F');
        entries.extend_from_slice(&deep);
        for (k, v) in [(&b"dup"[..], &b"t\x01"[..]), (b"BCC", b"A\x00\x00\x00\x06S\x00\x00\x00\x01b"), (b"dup", b"V")] {
            table::put_key(&mut entries, k);
            entries.extend_from_slice(v);
        }
        table::put_key(&mut entries, b"CC");
        entries.extend_from_slice(b"A\x00\x00\x00\x06S\x00\x00\x00\x01c");
        let m = with_raw_headers(&entries);
        let run = move || {
            let (m1, keys, _) = dead_letter_message(&m, "q", DeathReason::Rejected, "dlx", None);
            assert_eq!(keys, ["rk", "c"]);
            let h = headers_of(&m1);
            let got: Vec<&[u8]> = table::entries(&h).map(|e| e.unwrap().key).collect();
            assert_eq!(
                got,
                [
                    &b"deep"[..],
                    b"dup",
                    b"dup",
                    b"CC",
                    b"x-first-death-reason",
                    b"x-first-death-queue",
                    b"x-first-death-exchange",
                    b"x-death"
                ]
            );
            assert_eq!(table::find(&h, b"deep").unwrap().value, &deep[..]);
            let scan = PropertyScan::new(&m1.properties);
            assert_eq!(scan.get(&m1.properties, Property::Expiration), None);
            // Again, with a routing key: CC goes; the deep header stays.
            let (m2, keys, hist) = dead_letter_message(&m1, "q", DeathReason::Rejected, "dlx", Some("k"));
            assert_eq!((keys, hist.len()), (vec!["k".to_string()], 1));
            let h = headers_of(&m2);
            assert!(table::find(&h, b"CC").is_none());
            assert_eq!(table::find(&h, b"deep").unwrap().value, &deep[..]);
        };
        // No recursion anywhere on the way: a small stack is enough.
        std::thread::Builder::new().stack_size(256 * 1024).spawn(run).unwrap().join().unwrap();
    }

    #[test]
    fn an_earlier_entry_nested_deep_is_counted_without_decoding_it() {
        let deep = crate::wire::table::tests_support::nested_tables(10_000);
        let mut entry = Vec::new();
        entry.push(b'F');
        let at = table::begin(&mut entry);
        table::put_key(&mut entry, b"queue");
        table::put_long_string(&mut entry, b"q");
        table::put_key(&mut entry, b"reason");
        table::put_long_string(&mut entry, b"rejected");
        table::put_key(&mut entry, b"extra");
        entry.push(b'F');
        entry.extend_from_slice(&deep);
        table::finish(&mut entry, at);
        let mut entries = Vec::new();
        table::put_key(&mut entries, b"x-death");
        entries.push(b'A');
        let at = table::begin(&mut entries);
        entries.extend_from_slice(b"S\x00\x00\x00\x01?");
        entries.extend_from_slice(&entry);
        table::finish(&mut entries, at);
        let m = with_raw_headers(&entries);
        let (m1, _, hist) = dead_letter_message(&m, "q", DeathReason::Rejected, "dlx", None);
        assert_eq!(hist, vec![("q".to_string(), "rejected".to_string())]);
        let h = headers_of(&m1);
        // Not a first death: no x-first-death-* headers.
        assert!(table::find(&h, b"x-first-death-queue").is_none());
        let xd = table::find(&h, b"x-death").unwrap();
        let items: Vec<_> = table::items(table::array_value(xd.tag, xd.value).unwrap()).map(|i| i.unwrap()).collect();
        assert_eq!(items.len(), 2);
        let front = table::table_value(items[0].tag, items[0].value).unwrap();
        let count = table::find(front, b"count").unwrap();
        assert_eq!(table::integer(count.tag, count.value), Some(1));
        assert_eq!(table::find(front, b"extra").unwrap().value, &deep[..]);
        assert_eq!(items[1].raw, b"S\x00\x00\x00\x01?");
        let (m2, _, _) = dead_letter_message(&m1, "q", DeathReason::Rejected, "dlx", None);
        let h = headers_of(&m2);
        let xd = table::find(&h, b"x-death").unwrap();
        let front = table::items(table::array_value(xd.tag, xd.value).unwrap()).next().unwrap().unwrap();
        let count = table::find(table::table_value(front.tag, front.value).unwrap(), b"count").unwrap();
        assert_eq!(table::integer(count.tag, count.value), Some(2));
    }

    #[test]
    fn cycles_without_rejection_are_detected() {
        let h = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        assert!(is_cycle("q1", &h(&[("q2", "expired"), ("q1", "expired")])));
        assert!(!is_cycle("q1", &h(&[("q2", "rejected"), ("q1", "expired")])));
        assert!(!is_cycle("q3", &h(&[("q2", "expired")])));
    }
}
