//! Queue and consumer arguments (`x-message-ttl`, `x-max-length`, …) parsed
//! once at declare time, with RabbitMQ's validation and its error texts.

use amq_protocol::types::{AMQPValue, FieldTable};

use super::error::{AmqpError, AmqpResult};
use super::headers::as_number;
use super::vhost::amqp_type_name;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overflow {
    #[default]
    DropHead,
    RejectPublish,
    RejectPublishDlx,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QueueType {
    #[default]
    Classic,
    /// Accepted with a quorum queue's declare rules and its
    /// `x-delivery-count` header; replication itself is not there yet.
    Quorum,
    /// An append-only log (`broker/stream.rs`): read by offset, never
    /// consumed away.
    Stream,
}

/// What a queue's arguments ask for. Unknown `x-` arguments are kept on the
/// queue (and in definitions) but mean nothing, as in RabbitMQ.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueArgs {
    pub message_ttl: Option<u64>,
    pub expires: Option<u64>,
    pub max_length: Option<u64>,
    pub max_length_bytes: Option<u64>,
    pub overflow: Overflow,
    pub dead_letter_exchange: Option<String>,
    pub dead_letter_routing_key: Option<String>,
    pub max_priority: Option<u8>,
    pub single_active_consumer: bool,
    pub queue_type: QueueType,
}

/// RabbitMQ's largest TTL: 2^32 - 1 ms... it checks against its timer limit.
const MAX_TTL: i128 = 4_294_967_295;

fn invalid(arg: &str, queue: &str, vhost: &str, why: impl std::fmt::Display) -> AmqpError {
    AmqpError::precondition_failed(format!("invalid arg '{arg}' for queue '{queue}' in vhost '{vhost}': {why}"))
}

fn integer(v: &AMQPValue) -> Result<i128, String> {
    as_number(v).ok_or_else(|| format!("\"expected integer, got {}\"", amqp_type_name(v)))
}

use super::headers::as_text as string;

impl QueueArgs {
    pub fn parse(args: &FieldTable, queue: &str, vhost: &str) -> AmqpResult<QueueArgs> {
        let mut out = QueueArgs::default();
        let get = |k: &str| args.inner().get(k);
        let err = |arg: &str, why: String| invalid(arg, queue, vhost, why);
        if get("x-queue-type").and_then(string).as_deref() == Some("stream") {
            let stream = StreamArgs::parse(args, queue, vhost)?;
            out.queue_type = QueueType::Stream;
            out.max_length_bytes = stream.max_bytes;
            return Ok(out);
        }
        let non_negative = |arg: &str, v: &AMQPValue| -> AmqpResult<u64> {
            let n = integer(v).map_err(|e| err(arg, e))?;
            if n < 0 {
                return Err(err(arg, format!("{{value_negative,{n}}}")));
            }
            Ok(n as u64)
        };
        if let Some(v) = get("x-message-ttl") {
            let n = non_negative("x-message-ttl", v)?;
            if n as i128 > MAX_TTL {
                return Err(err("x-message-ttl", format!("{{value_too_large,{n}}}")));
            }
            out.message_ttl = Some(n);
        }
        if let Some(v) = get("x-expires") {
            let n = non_negative("x-expires", v)?;
            if n == 0 {
                return Err(err("x-expires", "{value_zero,0}".into()));
            }
            if n as i128 > MAX_TTL {
                return Err(err("x-expires", format!("{{value_too_large,{n}}}")));
            }
            out.expires = Some(n);
        }
        if let Some(v) = get("x-max-length") {
            out.max_length = Some(non_negative("x-max-length", v)?);
        }
        if let Some(v) = get("x-max-length-bytes") {
            out.max_length_bytes = Some(non_negative("x-max-length-bytes", v)?);
        }
        if let Some(v) = get("x-overflow") {
            out.overflow = match string(v).as_deref() {
                Some("drop-head") => Overflow::DropHead,
                Some("reject-publish") => Overflow::RejectPublish,
                Some("reject-publish-dlx") => Overflow::RejectPublishDlx,
                Some(_) => return Err(err("x-overflow", "invalid_overflow".into())),
                None => return Err(err("x-overflow", format!("{{unacceptable_type,{}}}", amqp_type_name(v)))),
            };
        }
        if let Some(v) = get("x-dead-letter-exchange") {
            out.dead_letter_exchange = Some(string(v).ok_or_else(|| {
                AmqpError::precondition_failed(format!(
                    "invalid type '{}' for arg 'x-dead-letter-exchange' in queue '{queue}' in vhost '{vhost}'",
                    amqp_type_name(v)
                ))
            })?);
        }
        if let Some(v) = get("x-dead-letter-routing-key") {
            let rk = string(v).ok_or_else(|| {
                AmqpError::precondition_failed(format!(
                    "invalid type '{}' for arg 'x-dead-letter-routing-key' in queue '{queue}' in vhost '{vhost}'",
                    amqp_type_name(v)
                ))
            })?;
            if out.dead_letter_exchange.is_none() {
                return Err(err("x-dead-letter-routing-key", "routing_key_but_no_dlx_defined".into()));
            }
            out.dead_letter_routing_key = Some(rk);
        }
        if let Some(v) = get("x-max-priority") {
            let n = non_negative("x-max-priority", v)?;
            if n > 255 {
                return Err(err("x-max-priority", format!("{{max_value_exceeded,{n}}}")));
            }
            out.max_priority = Some(n as u8);
        }
        if let Some(v) = get("x-single-active-consumer") {
            out.single_active_consumer = match v {
                AMQPValue::Boolean(b) => *b,
                other => {
                    return Err(err(
                        "x-single-active-consumer",
                        format!("{{unacceptable_type,{}}}", amqp_type_name(other)),
                    ))
                }
            };
        }
        if let Some(v) = get("x-queue-type") {
            out.queue_type = match string(v).as_deref() {
                Some("classic") => QueueType::Classic,
                Some("quorum") => QueueType::Quorum,
                Some("stream") => QueueType::Stream,
                Some(other) => {
                    return Err(err("x-queue-type", format!("\"unsupported queue type '{other}'\"")));
                }
                None => return Err(err("x-queue-type", format!("{{unacceptable_type,{}}}", amqp_type_name(v)))),
            };
        }
        Ok(out)
    }

    /// A quorum queue must be durable, shared and permanent (RabbitMQ's texts).
    pub fn check_quorum_properties(
        &self,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        queue: &str,
        vhost: &str,
    ) -> AmqpResult<()> {
        if !matches!(self.queue_type, QueueType::Quorum | QueueType::Stream) {
            return Ok(());
        }
        // rabbit_queue_type_util's order: auto-delete, exclusive, durable
        // (a declare wrong in several ways names the first).
        let bad = if auto_delete {
            "auto-delete"
        } else if exclusive {
            "exclusive-owner"
        } else if !durable {
            "non-durable"
        } else {
            return Ok(());
        };
        Err(AmqpError::precondition_failed(format!("invalid property '{bad}' for queue '{queue}' in vhost '{vhost}'")))
    }
}

/// Arguments of classic and quorum queues that a stream refuses
/// (RabbitMQ 3.10's `rabbit_stream_queue` capabilities).
const NOT_FOR_STREAMS: &[&str] = &[
    "x-max-priority",
    "x-overflow",
    "x-message-ttl",
    "x-expires",
    "x-max-length",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-single-active-consumer",
    "x-queue-mode",
    "x-queue-master-locator",
    "x-delivery-limit",
    "x-dead-letter-strategy",
    "x-quorum-initial-group-size",
    "x-queue-version",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
];

/// RabbitMQ's largest `x-stream-max-segment-size-bytes` (3 GB).
const MAX_SEGMENT_SIZE: i128 = 3_000_000_000;

/// What a stream's arguments ask for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamArgs {
    /// `x-max-length-bytes`: retention by size.
    pub max_bytes: Option<u64>,
    /// `x-max-age`: retention by age, in milliseconds.
    pub max_age_ms: Option<u64>,
    /// `x-stream-max-segment-size-bytes`.
    pub max_segment_size: Option<u64>,
}

impl StreamArgs {
    /// Validates a stream's arguments with RabbitMQ's texts; unknown `x-`
    /// arguments pass, those of other queue types do not.
    pub fn parse(args: &FieldTable, queue: &str, vhost: &str) -> AmqpResult<StreamArgs> {
        for key in NOT_FOR_STREAMS {
            if args.inner().contains_key(*key) {
                return Err(AmqpError::precondition_failed(format!(
                    "invalid arg '{key}' for queue '{queue}' in vhost '{vhost}' of queue type rabbit_stream_queue"
                )));
            }
        }
        let get = |k: &str| args.inner().get(k);
        let err = |arg: &str, why: String| invalid(arg, queue, vhost, why);
        let non_negative = |arg: &str, v: &AMQPValue| -> AmqpResult<i128> {
            let n = integer(v).map_err(|e| err(arg, e))?;
            if n < 0 {
                return Err(err(arg, format!("{{value_negative,{n}}}")));
            }
            Ok(n)
        };
        let mut out = StreamArgs::default();
        if let Some(v) = get("x-max-length-bytes") {
            out.max_bytes = Some(non_negative("x-max-length-bytes", v)?.min(u64::MAX as i128) as u64);
        }
        if let Some(v) = get("x-max-age") {
            let Some(s) = string(v) else {
                return Err(err("x-max-age", format!("{{unacceptable_type,{}}}", amqp_type_name(v))));
            };
            // RabbitMQ 3.10 crashes (541) on a value without leading digits;
            // the clean 406 is the sane equivalent.
            match parse_interval_ms(&s) {
                Some(ms) if ms > 0 => out.max_age_ms = Some(ms),
                _ => return Err(err("x-max-age", "invalid_max_age".into())),
            }
        }
        if let Some(v) = get("x-stream-max-segment-size-bytes") {
            let n = non_negative("x-stream-max-segment-size-bytes", v)?;
            if n > MAX_SEGMENT_SIZE {
                return Err(AmqpError::precondition_failed("Exceeded max value for x-stream-max-segment-size-bytes"));
            }
            out.max_segment_size = Some(n as u64);
        }
        if let Some(v) = get("x-initial-cluster-size") {
            if non_negative("x-initial-cluster-size", v)? == 0 {
                return Err(err("x-initial-cluster-size", "{value_zero,0}".into()));
            }
        }
        if let Some(v) = get("x-queue-leader-locator") {
            match string(v).as_deref() {
                Some("client-local" | "balanced" | "random" | "least-leaders") => {}
                _ => return Err(err("x-queue-leader-locator", "invalid_queue_locator_arg".into())),
            }
        }
        Ok(out)
    }
}

/// RabbitMQ's interval strings (`x-max-age`, `x-stream-offset`): digits and
/// one case-sensitive unit, `Y` `M` `D` `h` `m` `s`; in milliseconds.
pub fn parse_interval_ms(s: &str) -> Option<u64> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (n, unit) = s.split_at(digits);
    let n: u64 = n.parse().ok()?;
    let secs: u64 = match unit {
        "Y" => 365 * 24 * 3600,
        "M" => 30 * 24 * 3600,
        "D" => 24 * 3600,
        "h" => 3600,
        "m" => 60,
        "s" => 1,
        _ => return None,
    };
    n.checked_mul(secs)?.checked_mul(1000)
}

/// `x-priority` on basic.consume.
pub fn consumer_priority(args: &FieldTable, queue: &str, vhost: &str) -> AmqpResult<i32> {
    match args.inner().get("x-priority") {
        None => Ok(0),
        Some(v) => {
            let n = integer(v).map_err(|e| invalid("x-priority", queue, vhost, e))?;
            Ok(n.clamp(i32::MIN as i128, i32::MAX as i128) as i32)
        }
    }
}

/// The per-message `expiration` property: a non-negative integer of
/// milliseconds written as a string. Errors carry RabbitMQ's text.
pub fn parse_expiration(s: &str) -> AmqpResult<u64> {
    crate::message::parse_expiration(s)
        .map_err(|why| AmqpError::precondition_failed(format!("invalid expiration '{s}': {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in pairs {
            t.insert((*k).into(), v.clone());
        }
        t
    }

    fn err(pairs: &[(&str, AMQPValue)]) -> String {
        QueueArgs::parse(&table(pairs), "q", "/").unwrap_err().text
    }

    #[test]
    fn intervals_as_rabbitmq_reads_x_max_age() {
        assert_eq!(parse_interval_ms("7D"), Some(7 * 86_400_000));
        assert_eq!(parse_interval_ms("12h"), Some(12 * 3_600_000));
        assert_eq!(parse_interval_ms("30m"), Some(30 * 60_000));
        assert_eq!(parse_interval_ms("10s"), Some(10_000));
        assert_eq!(parse_interval_ms("1Y"), Some(365 * 86_400_000));
        assert_eq!(parse_interval_ms("2M"), Some(2 * 30 * 86_400_000));
        assert_eq!(parse_interval_ms("0s"), Some(0), "refused as 0 by the caller");
        for bad in ["", "abc", "-1h", "1d", "1H", "10", "10x", "1hh", "99999999999999999999s"] {
            assert_eq!(parse_interval_ms(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rabbitmq_texts_for_invalid_arguments() {
        let p = "PRECONDITION_FAILED - invalid arg";
        assert_eq!(
            err(&[("x-message-ttl", AMQPValue::LongInt(-1))]),
            format!("{p} 'x-message-ttl' for queue 'q' in vhost '/': {{value_negative,-1}}")
        );
        assert_eq!(
            err(&[("x-message-ttl", AMQPValue::LongString("5".into()))]),
            format!("{p} 'x-message-ttl' for queue 'q' in vhost '/': \"expected integer, got longstr\"")
        );
        assert!(err(&[("x-message-ttl", AMQPValue::LongLongInt(1 << 40))]).ends_with("{value_too_large,1099511627776}"));
        assert!(err(&[("x-message-ttl", AMQPValue::Double(1.5))]).ends_with("\"expected integer, got double\""));
        assert!(err(&[("x-expires", AMQPValue::LongInt(0))]).ends_with("{value_zero,0}"));
        assert!(err(&[("x-overflow", AMQPValue::LongString("bogus".into()))]).ends_with("invalid_overflow"));
        assert!(err(&[("x-overflow", AMQPValue::LongInt(1))]).ends_with("{unacceptable_type,signedint}"));
        assert!(err(&[("x-dead-letter-routing-key", AMQPValue::LongString("k".into()))])
            .ends_with("routing_key_but_no_dlx_defined"));
        assert_eq!(
            err(&[("x-dead-letter-exchange", AMQPValue::LongInt(1))]),
            "PRECONDITION_FAILED - invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'"
        );
        assert!(err(&[("x-max-priority", AMQPValue::LongInt(300))]).ends_with("{max_value_exceeded,300}"));
        assert!(err(&[("x-single-active-consumer", AMQPValue::LongString("y".into()))])
            .ends_with("{unacceptable_type,longstr}"));
        assert!(err(&[("x-queue-type", AMQPValue::LongString("bogus".into()))])
            .ends_with("\"unsupported queue type 'bogus'\""));
    }

    #[test]
    fn valid_arguments_parse() {
        let a = QueueArgs::parse(
            &table(&[
                ("x-message-ttl", AMQPValue::ShortInt(100)),
                ("x-max-length", AMQPValue::LongLongInt(10)),
                ("x-overflow", AMQPValue::LongString("reject-publish".into())),
                ("x-dead-letter-exchange", AMQPValue::LongString("dlx".into())),
                ("x-max-priority", AMQPValue::ShortShortUInt(9)),
                ("x-custom", AMQPValue::Boolean(true)),
            ]),
            "q",
            "/",
        )
        .unwrap();
        assert_eq!(a.message_ttl, Some(100));
        assert_eq!(a.max_length, Some(10));
        assert_eq!(a.overflow, Overflow::RejectPublish);
        assert_eq!(a.dead_letter_exchange.as_deref(), Some("dlx"));
        assert_eq!(a.max_priority, Some(9));
    }

    #[test]
    fn expiration_property() {
        assert_eq!(parse_expiration("1500"), Ok(1500));
        assert_eq!(parse_expiration("0"), Ok(0));
        assert_eq!(
            parse_expiration("abc").unwrap_err().text,
            "PRECONDITION_FAILED - invalid expiration 'abc': no_integer"
        );
        assert_eq!(parse_expiration("").unwrap_err().text, "PRECONDITION_FAILED - invalid expiration '': no_integer");
        assert_eq!(
            parse_expiration("-1").unwrap_err().text,
            "PRECONDITION_FAILED - invalid expiration '-1': {value_negative,-1}"
        );
        assert_eq!(
            parse_expiration("1.5").unwrap_err().text,
            "PRECONDITION_FAILED - invalid expiration '1.5': {leftover_string,\".5\"}"
        );
    }
}
