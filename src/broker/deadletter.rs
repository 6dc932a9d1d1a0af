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

use amq_protocol::protocol::basic::AMQPProperties;
use amq_protocol::types::{AMQPValue, FieldArray, FieldTable, LongString};
use bytes::Bytes;

use super::message::Message;
use super::queue::DeathReason;

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

use super::headers::{as_text as value_str, without_keys};
use super::message::encode_properties;

/// The routing keys a message was published with: its key, then CC's.
pub fn original_routing_keys(message: &Message, headers: Option<&FieldTable>) -> Vec<String> {
    let mut keys = vec![String::from_utf8_lossy(&message.routing_key).into_owned()];
    if let Some(AMQPValue::FieldArray(cc)) = headers.and_then(|h| h.inner().get("CC")) {
        keys.extend(cc.as_slice().iter().filter_map(value_str));
    }
    keys
}

/// Builds the dead-lettered copy of `message` and the routing keys to
/// publish it with on the dead-letter exchange. Also returns the x-death
/// history, newest first, as (queue, reason) pairs for cycle detection.
pub fn dead_letter_message(
    message: &Message,
    queue: &str,
    reason: DeathReason,
    dlx: &str,
    dlrk: Option<&str>,
) -> (Message, Vec<String>, Vec<(String, String)>) {
    let props = message.decode_properties().unwrap_or_default();
    let mut headers = props.headers().clone().unwrap_or_default();
    let keys = original_routing_keys(message, Some(&headers));

    let mut entry = FieldTable::default();
    entry.insert("count".into(), AMQPValue::LongLongInt(1));
    entry.insert("reason".into(), text(reason.as_str()));
    entry.insert("queue".into(), text(queue));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    entry.insert("time".into(), AMQPValue::Timestamp(now));
    entry.insert("exchange".into(), text(&String::from_utf8_lossy(&message.exchange)));
    entry.insert(
        "routing-keys".into(),
        AMQPValue::FieldArray(FieldArray::from(keys.iter().map(|k| text(k)).collect::<Vec<_>>())),
    );
    if let Some(exp) = props.expiration() {
        entry.insert("original-expiration".into(), text(exp.as_str()));
    }

    let mut deaths: Vec<AMQPValue> = match headers.inner().get("x-death") {
        Some(AMQPValue::FieldArray(a)) => a.as_slice().to_vec(),
        _ => Vec::new(),
    };
    let same = |d: &AMQPValue| match d {
        AMQPValue::FieldTable(t) => {
            t.inner().get("queue").and_then(value_str).as_deref() == Some(queue)
                && t.inner().get("reason").and_then(value_str).as_deref() == Some(reason.as_str())
        }
        _ => false,
    };
    if let Some(i) = deaths.iter().position(same) {
        // The same queue and reason again: count it and move it to the front.
        if let AMQPValue::FieldTable(mut t) = deaths.remove(i) {
            let count = match t.inner().get("count") {
                Some(v) => super::headers::as_number(v).unwrap_or(0) as i64,
                None => 0,
            };
            t.insert("count".into(), AMQPValue::LongLongInt(count + 1));
            deaths.insert(0, AMQPValue::FieldTable(t));
        }
    } else {
        deaths.insert(0, AMQPValue::FieldTable(entry));
    }
    let history = deaths
        .iter()
        .filter_map(|d| match d {
            AMQPValue::FieldTable(t) => Some((
                t.inner().get("queue").and_then(value_str).unwrap_or_default(),
                t.inner().get("reason").and_then(value_str).unwrap_or_default(),
            )),
            _ => None,
        })
        .collect();
    headers.insert("x-death".into(), AMQPValue::FieldArray(FieldArray::from(deaths)));
    if !headers.contains_key("x-first-death-reason") {
        headers.insert("x-first-death-reason".into(), text(reason.as_str()));
        headers.insert("x-first-death-queue".into(), text(queue));
        headers.insert("x-first-death-exchange".into(), text(&String::from_utf8_lossy(&message.exchange)));
    }
    // BCC never travels on; CC goes too when the dead-letter routing key
    // replaces the original keys.
    let stripped = without_keys(&headers, |k| k == "BCC" || (k == "CC" && dlrk.is_some()));
    let props = without_expiration(props).with_headers(stripped);
    let raw = encode_properties(&props).unwrap_or_default();
    let routing_keys = match dlrk {
        Some(k) => vec![k.to_owned()],
        None => keys,
    };
    let new = Message::new(
        Bytes::copy_from_slice(dlx.as_bytes()),
        Bytes::copy_from_slice(routing_keys[0].as_bytes()),
        raw,
        message.body.clone(),
    );
    (new, routing_keys, history)
}

fn without_expiration(p: AMQPProperties) -> AMQPProperties {
    let mut out = AMQPProperties::default();
    if let Some(v) = p.content_type() {
        out = out.with_content_type(v.clone());
    }
    if let Some(v) = p.content_encoding() {
        out = out.with_content_encoding(v.clone());
    }
    if let Some(v) = p.delivery_mode() {
        out = out.with_delivery_mode(*v);
    }
    if let Some(v) = p.priority() {
        out = out.with_priority(*v);
    }
    if let Some(v) = p.correlation_id() {
        out = out.with_correlation_id(v.clone());
    }
    if let Some(v) = p.reply_to() {
        out = out.with_reply_to(v.clone());
    }
    if let Some(v) = p.message_id() {
        out = out.with_message_id(v.clone());
    }
    if let Some(v) = p.timestamp() {
        out = out.with_timestamp(*v);
    }
    if let Some(v) = p.kind() {
        out = out.with_type(v.clone());
    }
    if let Some(v) = p.user_id() {
        out = out.with_user_id(v.clone());
    }
    if let Some(v) = p.app_id() {
        out = out.with_app_id(v.clone());
    }
    if let Some(v) = p.cluster_id() {
        out = out.with_cluster_id(v.clone());
    }
    out
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
    use amq_protocol::protocol::basic::gen_properties;

    #[test]
    fn x_death_is_added_counted_and_moved_to_the_front() {
        let props = AMQPProperties::default().with_expiration("500".into());
        let raw = cookie_factory::gen_simple(gen_properties(&props), Vec::new()).unwrap();
        let m = Message::new(Bytes::from_static(b"ex"), Bytes::from_static(b"rk"), Bytes::from(raw), Bytes::new());
        let (m1, keys, hist) = dead_letter_message(&m, "q1", DeathReason::Expired, "dlx", None);
        assert_eq!(keys, vec!["rk"]);
        assert_eq!(hist, vec![("q1".to_string(), "expired".to_string())]);
        let p = m1.decode_properties().unwrap();
        assert!(p.expiration().is_none());
        assert_eq!(&m1.exchange[..], b"dlx");
        let (m2, _, hist) = dead_letter_message(&m1, "q2", DeathReason::Rejected, "dlx2", Some("k2"));
        assert_eq!(hist.len(), 2);
        assert_eq!(&m2.routing_key[..], b"k2");
        let (_, _, hist) = dead_letter_message(&m2, "q1", DeathReason::Expired, "dlx", None);
        assert_eq!(hist[0], ("q1".to_string(), "expired".to_string()));
        assert_eq!(hist.len(), 2);
        let h = m2.decode_properties().unwrap().headers().clone().unwrap();
        assert_eq!(h.inner().get("x-first-death-queue"), Some(&text("q1")));
    }

    #[test]
    fn cycles_without_rejection_are_detected() {
        let h = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        assert!(is_cycle("q1", &h(&[("q2", "expired"), ("q1", "expired")])));
        assert!(!is_cycle("q1", &h(&[("q2", "rejected"), ("q1", "expired")])));
        assert!(!is_cycle("q3", &h(&[("q2", "expired")])));
    }
}
