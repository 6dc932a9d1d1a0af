//! Content assembly: basic.publish, its content header and body frames, in
//! order and in pieces, and what goes wrong when they are not.

use super::support::*;

#[test]
fn content_header_without_publish_is_unexpected_frame() {
    let (_b, mut c) = open();
    c.expect_connection_error(
        &header(1, 3),
        505,
        "UNEXPECTED_FRAME - expected method frame, got non method frame instead",
        (0, 0),
    );
}

#[test]
fn body_without_publish_is_unexpected_frame() {
    let (_b, mut c) = open();
    c.expect_connection_error(
        &body(1, b"abc"),
        505,
        "UNEXPECTED_FRAME - expected method frame, got non method frame instead",
        (0, 0),
    );
}

#[test]
fn method_instead_of_content_header_is_unexpected_frame() {
    let (_b, mut c) = open();
    let mut bytes = m(1, publish("", "nowhere"));
    bytes.extend(m(1, publish("", "nowhere")));
    c.expect_connection_error_ids_aside(
        &bytes,
        505,
        "UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead",
    );
}

#[test]
fn body_instead_of_content_header_is_unexpected_frame() {
    let (_b, mut c) = open();
    let mut bytes = m(1, publish("", "nowhere"));
    bytes.extend(body(1, b"abc"));
    c.expect_connection_error_ids_aside(
        &bytes,
        505,
        "UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead",
    );
}

#[test]
fn method_during_the_body_is_unexpected_frame() {
    let (_b, mut c) = open();
    let mut bytes = m(1, publish("", "nowhere"));
    bytes.extend(header(1, 6));
    bytes.extend(body(1, b"abc"));
    bytes.extend(m(1, declare("q")));
    c.expect_connection_error_ids_aside(
        &bytes,
        505,
        "UNEXPECTED_FRAME - expected content body, got non content body frame instead",
    );
}

#[test]
fn a_second_content_header_is_unexpected_frame() {
    let (_b, mut c) = open();
    let mut bytes = m(1, publish("", "nowhere"));
    bytes.extend(header(1, 6));
    bytes.extend(header(1, 6));
    c.expect_connection_error_ids_aside(
        &bytes,
        505,
        "UNEXPECTED_FRAME - expected content body, got non content body frame instead",
    );
}

#[test]
fn content_header_of_another_class_is_unexpected_frame() {
    let (_b, mut c) = open();
    let mut bytes = m(1, publish("", "nowhere"));
    bytes.extend(header_of_class(1, 50, 3));
    c.expect_connection_error_ids_aside(
        &bytes,
        505,
        "UNEXPECTED_FRAME - expected content header for class 60, got one for class 50 instead",
    );
}

/// Stricter than RabbitMQ 3.10.8, which takes the extra octets without a
/// word and goes on waiting for the body to end.
#[test]
fn body_larger_than_declared_size_is_a_frame_error() {
    let (_b, mut c) = open();
    let mut bytes = m(1, publish("", "nowhere"));
    bytes.extend(header(1, 3));
    bytes.extend(body(1, b"abcd"));
    c.expect_connection_error(&bytes, 501, "FRAME_ERROR - content body exceeds the declared size of 3 bytes", (0, 0));
}

#[test]
fn a_later_body_frame_overrunning_the_size_is_a_frame_error() {
    let (_b, mut c) = open();
    let mut bytes = m(1, publish("", "nowhere"));
    bytes.extend(header(1, 5));
    bytes.extend(body(1, b"abc"));
    bytes.extend(body(1, b"def"));
    c.expect_connection_error(&bytes, 501, "FRAME_ERROR - content body exceeds the declared size of 5 bytes", (0, 0));
}

/// Refused at the content header; RabbitMQ 3.10.8 refuses the same
/// message (same text) only once its body has arrived.
#[test]
fn a_message_over_the_size_limit_is_refused_on_its_channel() {
    let (_b, mut c) = open();
    let mut bytes = m(1, publish("", "nowhere"));
    bytes.extend(header(1, 200 * 1024 * 1024));
    c.expect_channel_error(
        &bytes,
        1,
        406,
        "PRECONDITION_FAILED - message size 209715200 is larger than configured max size 134217728",
        (60, 40),
    );
}

#[test]
fn publish_split_across_many_small_body_frames() {
    let b = broker();
    let mut c = Client::handshake(&b, 2047, 4096);
    c.open_channel(1);
    c.declare_queue(1, "raw-split");
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let mut bytes = m(1, publish("", "raw-split"));
    bytes.extend(header(1, data.len() as u64));
    for chunk in data.chunks(1000) {
        bytes.extend(body(1, chunk));
    }
    assert!(c.round(&bytes).is_empty());
    let got = c.round(&m(1, get("raw-split", true)));
    // get-ok, header, then the body cut at the negotiated frame_max
    assert_names(&got, &["1 basic.get-ok", "1 header", "1 body", "1 body", "1 body"]);
    let AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::GetOk(ok))) = &got[0] else { panic!("{got:?}") };
    assert_eq!(ok.message_count, 0);
    let AMQPFrame::Header(_, h) = &got[1] else { panic!("{got:?}") };
    assert_eq!(h.body_size, 10_000);
    let sizes: Vec<usize> = got[2..].iter().map(|f| if let AMQPFrame::Body(_, d) = f { d.len() } else { 0 }).collect();
    assert_eq!(sizes, [4088, 4088, 1824], "body frames fill frame_max 4096 less 8 octets of framing");
    assert_eq!(messages(&got)[0].body, data);
    // orderly close
    assert_names(&c.round(&m(0, conn_close())), &["0 connection.close-ok"]);
}

#[test]
fn content_state_survives_across_reads() {
    let (_b, mut c) = open();
    c.declare_queue(1, "q");
    c.feed(&m(1, publish("", "q")));
    c.feed(&header(1, 6));
    c.feed(&body(1, b"abc"));
    assert!(c.output().is_empty());
    // Three octets are still due: a method now is out of place.
    c.expect_connection_error_ids_aside(
        &m(1, passive("q")),
        505,
        "UNEXPECTED_FRAME - expected content body, got non content body frame instead",
    );
}

#[test]
fn a_publish_completes_when_the_last_body_octet_arrives() {
    let (_b, mut c) = open();
    c.declare_queue(1, "q");
    c.feed(&m(1, publish("", "q")));
    c.feed(&header(1, 6));
    c.feed(&body(1, b"abc"));
    c.feed(&body(1, b"def"));
    c.expect_declare_ok(&m(1, passive("q")), "q", 1, 0);
}

#[test]
fn an_empty_body_needs_no_body_frame() {
    let (_b, mut c) = open();
    c.declare_queue(1, "q");
    let mut bytes = m(1, publish("", "q"));
    bytes.extend(header(1, 0));
    bytes.extend(m(1, get("q", true)));
    let got = c.round(&bytes);
    assert_names(&got, &["1 basic.get-ok", "1 header"]);
    let AMQPFrame::Header(1, h) = &got[1] else { panic!("{got:?}") };
    assert_eq!(h.body_size, 0);
}

#[test]
fn content_on_different_channels_may_interleave() {
    let (_b, mut c) = open();
    c.open_channel(2);
    c.declare_queue(1, "q");
    let mut bytes = m(1, publish("", "q"));
    bytes.extend(m(2, publish("", "q")));
    bytes.extend(header(2, 3));
    bytes.extend(header(1, 3));
    bytes.extend(body(1, b"one"));
    bytes.extend(body(2, b"two"));
    bytes.extend(m(1, get("q", true)));
    bytes.extend(m(1, get("q", true)));
    let got = c.round(&bytes);
    assert_eq!(bodies(&got), ["one", "two"]);
}

#[test]
fn properties_reach_the_consumer_as_published() {
    let (_b, mut c) = open();
    c.declare_queue(1, "q");
    let mut headers = FieldTable::default();
    headers.insert("k".into(), AMQPValue::LongString("v".into()));
    let props = AMQPProperties::default()
        .with_content_type("text/plain".into())
        .with_delivery_mode(2)
        .with_priority(3)
        .with_correlation_id("corr".into())
        .with_message_id("id-1".into())
        .with_headers(headers);
    let mut bytes = content(1, publish("", "q"), props.clone(), b"body");
    bytes.extend(m(1, get("q", true)));
    let got = messages(&c.round(&bytes));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].properties, props);
}

#[test]
fn undecodable_properties_close_the_connection_with_a_bare_internal_error() {
    let (_b, mut c) = open();
    let mut bytes = m(1, publish("", "nowhere"));
    // Headers flag set, and a table holding a value of unknown type 'Z'.
    let mut p = vec![0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0x00];
    p.extend_from_slice(&[0, 0, 0, 3, 1, b'a', b'Z']);
    bytes.extend(raw_frame(FRAME_HEADER, 1, &p));
    c.expect_connection_error(&bytes, 541, "INTERNAL_ERROR", (0, 0));
}

#[test]
fn an_invalid_expiration_is_a_channel_error() {
    let (_b, mut c) = open();
    let props = AMQPProperties::default().with_expiration("abc".into());
    c.expect_channel_error(
        &content(1, publish("", "q"), props, b"x"),
        1,
        406,
        "PRECONDITION_FAILED - invalid expiration 'abc': no_integer",
        (60, 40),
    );
}

#[test]
fn a_user_id_other_than_the_login_is_refused() {
    let (_b, mut c) = open();
    let props = AMQPProperties::default().with_user_id("bob".into());
    c.expect_channel_error(
        &content(1, publish("", "q"), props, b"x"),
        1,
        406,
        "PRECONDITION_FAILED - user_id property set to 'bob' but authenticated user was 'guest'",
        (60, 40),
    );
}

#[test]
fn the_own_user_id_is_accepted() {
    let (_b, mut c) = open();
    c.declare_queue(1, "q");
    let props = AMQPProperties::default().with_user_id("guest".into());
    let mut bytes = content(1, publish("", "q"), props, b"x");
    bytes.extend(m(1, get("q", true)));
    let got = messages(&c.round(&bytes));
    assert_eq!(got[0].properties.user_id().as_ref().map(|u| u.as_str()), Some("guest"));
}

#[test]
fn immediate_publish_is_not_implemented() {
    let (_b, mut c) = open();
    let p = basic::Publish { immediate: true, ..publish("", "q") };
    c.expect_connection_error(
        &content(1, p, AMQPProperties::default(), b"x"),
        540,
        "NOT_IMPLEMENTED - immediate=true",
        (60, 40),
    );
}

#[test]
fn publish_to_an_internal_exchange_is_refused() {
    let (_b, mut c) = open();
    let got = c.round(&m(1, exchange::Declare { internal: true, ..exchange_declare("ix", "fanout") }));
    assert_names(&got, &["1 exchange.declare-ok"]);
    c.expect_channel_error(
        &message(1, "ix", "", b"x"),
        1,
        403,
        "ACCESS_REFUSED - cannot publish to internal exchange 'ix' in vhost '/'",
        (60, 40),
    );
}

#[test]
fn heartbeats_may_come_between_content_frames() {
    let (_b, mut c) = open();
    c.declare_queue(1, "q");
    let mut bytes = m(1, publish("", "q"));
    bytes.extend(heartbeat());
    bytes.extend(header(1, 6));
    bytes.extend(body(1, b"abc"));
    bytes.extend(heartbeat());
    bytes.extend(body(1, b"def"));
    bytes.extend(m(1, get("q", true)));
    assert_eq!(bodies(&c.round(&bytes)), ["abcdef"]);
}

#[test]
fn channel_zero_methods_may_come_between_content_frames() {
    let (_b, mut c) = open();
    let mut bytes = m(1, publish("", "q"));
    bytes.extend(header(1, 6));
    bytes.extend(body(1, b"abc"));
    bytes.extend(heartbeat());
    bytes.extend(m(0, conn_close()));
    assert_names(&c.round(&bytes), &["0 connection.close-ok"]);
}
