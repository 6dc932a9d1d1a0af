//! The connection's timers, socket-free on a manual clock: heartbeats sent
//! and missed, the handshake deadline, the close deadlines. The same rules
//! `tests/raw_protocol.rs` and `tests/close_races.rs` check over sockets in
//! real time; here no test sleeps.

use std::time::Duration;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{basic, channel, connection, AMQPClass};
use amq_protocol::types::{AMQPValue, FieldTable, LongString};
use bytes::BytesMut;

use super::codec;
use super::connection::Event;
use super::frame::{split_frame, FrameKind};
use super::harness::Harness;
use crate::broker::alarms::AlarmSet;

const HEARTBEAT: &[u8] = &[8, 0, 0, 0, 0, 0, 0, 0xCE];

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn method(ch: u16, m: AMQPClass) -> Vec<u8> {
    let mut out = BytesMut::new();
    codec::write_method(&mut out, ch, m);
    out.to_vec()
}

/// The frames in `out`, decoded by amq-protocol.
fn frames(mut out: BytesMut) -> Vec<AMQPFrame> {
    let mut v = Vec::new();
    while let Ok(Some(f)) = split_frame(&mut out, u32::MAX) {
        let kind = match f.kind {
            FrameKind::Method => 1,
            FrameKind::Header => 2,
            FrameKind::Body => 3,
            FrameKind::Heartbeat => 8,
        };
        let mut raw = vec![kind];
        raw.extend_from_slice(&f.channel.to_be_bytes());
        raw.extend_from_slice(&(f.payload.len() as u32).to_be_bytes());
        raw.extend_from_slice(&f.payload);
        raw.push(0xCE);
        v.push(amq_protocol::frame::parse_frame(&raw[..]).expect("our own frame").1);
    }
    assert!(out.is_empty(), "a partial frame");
    v
}

fn heartbeats(out: BytesMut) -> usize {
    let got = frames(out);
    assert!(got.iter().all(|f| matches!(f, AMQPFrame::Heartbeat)), "only heartbeats: {got:?}");
    got.len()
}

fn header_and_start_ok(blocked_capability: bool) -> Vec<u8> {
    let mut props = FieldTable::default();
    if blocked_capability {
        let mut caps = FieldTable::default();
        caps.insert("connection.blocked".into(), AMQPValue::Boolean(true));
        props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
    }
    let mut hs = b"AMQP\x00\x00\x09\x01".to_vec();
    hs.extend(method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
            client_properties: props,
            mechanism: "PLAIN".into(),
            response: LongString::from("\0guest\0guest"),
            locale: "en_US".into(),
        })),
    ));
    hs
}

fn tune_ok_open_and_channel(heartbeat: u16) -> Vec<u8> {
    let mut hs = method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
            channel_max: 10,
            frame_max: 131072,
            heartbeat,
        })),
    );
    let vhost = connection::Open { virtual_host: "/".into() };
    hs.extend(method(0, AMQPClass::Connection(connection::AMQPMethod::Open(vhost))));
    hs.extend(method(1, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))));
    hs
}

/// An open connection with channel 1, on a manual clock, its output taken.
fn open_with(heartbeat: u16, blocked_capability: bool) -> Harness {
    let mut h = Harness::manual();
    let mut hs = header_and_start_ok(blocked_capability);
    hs.extend(tune_ok_open_and_channel(heartbeat));
    h.feed(&hs);
    let got = frames(h.take_output());
    assert!(matches!(got.last(), Some(AMQPFrame::Method(1, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))))));
    h
}

fn open(heartbeat: u16) -> Harness {
    open_with(heartbeat, false)
}

fn connection_close() -> Vec<u8> {
    let c = connection::Close { reply_code: 200, reply_text: "bye".into(), class_id: 0, method_id: 0 };
    method(0, AMQPClass::Connection(connection::AMQPMethod::Close(c)))
}

fn expect_connection_close(out: BytesMut, code: u16) {
    let got = frames(out);
    assert!(
        matches!(&got[..], [AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(c)))]
            if c.reply_code == code),
        "expected connection.close {code}: {got:?}"
    );
}

/// A publish of an empty message on channel 1 (routed nowhere).
fn publish() -> Vec<u8> {
    let p = basic::Publish { exchange: "".into(), routing_key: "nowhere".into(), mandatory: false, immediate: false };
    let mut v = method(1, AMQPClass::Basic(basic::AMQPMethod::Publish(p)));
    v.extend([2, 0, 1, 0, 0, 0, 14, 0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xCE]);
    v
}

#[test]
fn an_idle_connection_sends_a_heartbeat_every_half_interval() {
    let mut h = open(2);
    assert_eq!(h.next_timeout(), Some(ms(1000)));
    h.advance(ms(999));
    assert!(h.take_output().is_empty(), "nothing before half the interval");
    h.advance(ms(1));
    assert_eq!(&h.take_output()[..], HEARTBEAT);
    // The client keeps itself alive; we go on beating every second.
    h.feed(HEARTBEAT);
    h.advance(ms(1000));
    assert_eq!(&h.take_output()[..], HEARTBEAT);
    h.feed(HEARTBEAT);
    h.advance(ms(3000));
    assert_eq!(heartbeats(h.take_output()), 3);
    assert!(!h.closed());
}

#[test]
fn a_heartbeat_waits_for_half_an_interval_of_silence_from_us() {
    let mut h = open(2);
    h.advance(ms(900));
    // A reply goes out at 0.9 s: the next heartbeat is due 1 s after it.
    h.feed(&method(1, AMQPClass::Channel(channel::AMQPMethod::Flow(channel::Flow { active: true }))));
    assert_eq!(frames(h.take_output()).len(), 1);
    h.advance(ms(999));
    assert!(h.take_output().is_empty());
    h.advance(ms(1));
    assert_eq!(&h.take_output()[..], HEARTBEAT);
}

#[test]
fn a_silent_peer_is_dropped_after_more_than_two_intervals() {
    let mut h = open(1);
    // Heartbeats at 0.5, 1.0, 1.5 and 2.0 s; silent for exactly two
    // intervals is not yet too long.
    h.advance(ms(2400));
    assert_eq!(heartbeats(h.take_output()), 4);
    assert!(!h.closed() && !h.ended());
    // At the next heartbeat tick, 2.5 s of silence: dropped without a word.
    h.advance(ms(100));
    assert!(h.closed() && h.ended());
    assert!(h.take_output().is_empty());
    assert_eq!(h.next_timeout(), None);
}

#[test]
fn a_peer_that_sends_heartbeats_stays_connected() {
    let mut h = open(1);
    for _ in 0..20 {
        h.advance(ms(400));
        h.feed(HEARTBEAT);
    }
    assert!(!h.closed());
    heartbeats(h.take_output());
    h.feed(&method(2, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))));
    let got = frames(h.take_output());
    assert!(matches!(&got[..], [AMQPFrame::Method(2, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_)))]));
}

#[test]
fn any_frame_from_the_peer_counts_as_a_heartbeat() {
    let mut h = open(1);
    for _ in 0..10 {
        h.advance(ms(1500));
        h.feed(&method(1, AMQPClass::Channel(channel::AMQPMethod::Flow(channel::Flow { active: true }))));
    }
    assert!(!h.closed());
}

#[test]
fn heartbeat_zero_means_no_heartbeats_and_no_timeout() {
    let mut h = open(0);
    assert_eq!(h.next_timeout(), None);
    h.advance(Duration::from_secs(3600));
    assert!(h.take_output().is_empty());
    assert!(!h.closed());
}

#[test]
fn the_protocol_header_must_arrive_within_ten_seconds() {
    let mut h = Harness::manual();
    assert_eq!(h.next_timeout(), Some(Duration::from_secs(10)));
    h.advance(ms(9999));
    assert!(!h.closed());
    h.advance(ms(1));
    assert!(h.closed());
    assert!(h.take_output().is_empty());
}

#[test]
fn the_handshake_must_finish_within_ten_seconds_of_the_header() {
    let mut h = Harness::manual();
    h.advance(Duration::from_secs(5));
    h.feed(&header_and_start_ok(false));
    assert!(!frames(h.take_output()).is_empty(), "start and tune");
    // No tune-ok: the deadline runs from the header.
    h.advance(ms(9999));
    assert!(!h.closed());
    h.advance(ms(1));
    assert!(h.closed(), "handshake timed out");
    assert!(h.take_output().is_empty(), "dropped without a word");
}

#[test]
fn an_open_connection_has_no_handshake_deadline() {
    let mut h = open(0);
    h.advance(Duration::from_secs(60));
    assert!(!h.closed());
}

#[test]
fn after_close_ok_input_is_drained_for_three_seconds() {
    let mut h = open(0);
    h.feed(&connection_close());
    let got = frames(h.take_output());
    assert!(matches!(&got[..], [AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_)))]));
    assert!(h.ended() && !h.closed(), "draining: the peer may still be writing");
    assert_eq!(h.next_timeout(), Some(Duration::from_secs(3)));
    h.advance(ms(2999));
    assert!(!h.closed());
    h.advance(ms(1));
    assert!(h.closed());
    assert!(h.take_output().is_empty());
}

#[test]
fn after_a_frame_error_input_is_discarded_for_three_seconds() {
    let mut h = open(0);
    // Frame type 7 does not exist: 501, and the stream is no longer framed.
    h.feed(&[7, 0, 0, 0, 0, 0, 2, b'z', b'z', 0xCE]);
    expect_connection_close(h.take_output(), 501);
    assert!(h.ended() && !h.closed());
    h.advance(ms(2999));
    assert!(!h.closed());
    h.advance(ms(1));
    assert!(h.closed());
}

#[test]
fn a_connection_error_waits_three_seconds_for_close_ok() {
    let mut h = open(0);
    // A heartbeat on channel 1: 505, connection.close sent, close-ok awaited.
    h.feed(&[8, 0, 1, 0, 0, 0, 0, 0xCE]);
    expect_connection_close(h.take_output(), 505);
    assert!(!h.ended(), "closing, not draining: close-ok still counts");
    h.advance(ms(2999));
    assert!(!h.closed());
    h.advance(ms(1));
    assert!(h.closed());
}

#[test]
fn close_ok_for_our_close_ends_the_connection_at_once() {
    let mut h = open(0);
    h.feed(&[8, 0, 1, 0, 0, 0, 0, 0xCE]);
    expect_connection_close(h.take_output(), 505);
    h.advance(ms(1000));
    h.feed(&method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {}))));
    assert!(h.closed());
}

#[test]
fn while_closing_a_silent_peer_is_still_dropped_for_missed_heartbeats() {
    let mut h = open(1);
    h.advance(ms(1900));
    heartbeats(h.take_output());
    h.feed(&[8, 0, 1, 0, 0, 0, 0, 0xCE]);
    expect_connection_close(h.take_output(), 505);
    // Heard from at 1.9 s: gone once silent for more than 2 s, before the
    // 3 s close deadline.
    h.advance(ms(2000));
    assert!(!h.closed());
    h.advance(ms(1));
    assert!(h.closed());
}

#[test]
fn shutdown_closes_with_320_and_waits_for_close_ok() {
    let mut h = open(0);
    h.event(Event::Shutdown);
    expect_connection_close(h.take_output(), 320);
    h.advance(ms(2999));
    assert!(!h.closed());
    h.advance(ms(1));
    assert!(h.closed());
}

#[test]
fn shutdown_during_the_handshake_drops_the_connection() {
    let mut h = Harness::manual();
    h.feed(&header_and_start_ok(false));
    h.take_output();
    h.event(Event::Shutdown);
    assert!(h.closed());
}

#[test]
fn a_publisher_blocked_by_an_alarm_is_not_timed_out() {
    let mut h = open_with(1, true);
    h.feed(&publish());
    assert!(h.take_output().is_empty());
    let memory = AlarmSet { memory: true, ..AlarmSet::default() };
    h.event(Event::Alarms(memory));
    let got = frames(h.take_output());
    assert!(
        matches!(&got[..], [AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Blocked(b)))]
            if b.reason.as_str() == "low on memory"),
        "{got:?}"
    );
    // Not read from, so not expected to be heard from; we still beat.
    h.advance(Duration::from_secs(10));
    assert!(!h.closed());
    assert_eq!(heartbeats(h.take_output()), 20);
    // Cleared: read again, and the silence counts from now.
    h.event(Event::Alarms(AlarmSet::default()));
    let got = frames(h.take_output());
    assert!(matches!(&got[..], [AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Unblocked(_)))]));
    h.advance(ms(2000));
    assert!(!h.closed());
    h.advance(ms(1000));
    assert!(h.closed());
}

#[test]
fn a_consumer_is_not_blocked_by_an_alarm_and_still_times_out() {
    let mut h = open_with(1, true);
    h.event(Event::Alarms(AlarmSet { disk: true, ..AlarmSet::default() }));
    assert!(h.take_output().is_empty(), "connection.blocked goes to publishers only");
    h.advance(ms(2600));
    assert!(h.closed());
}
