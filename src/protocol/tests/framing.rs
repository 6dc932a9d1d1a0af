//! Frame-level rules on an open connection: the frame splitter's errors
//! (501), frames where they make no sense (505), unknown and malformed
//! methods, and frames arriving in pieces.

use super::support::*;

#[test]
fn frame_larger_than_frame_max_is_a_frame_error() {
    let b = broker();
    let mut c = Client::handshake(&b, 2047, 4096);
    c.open_channel(1);
    let mut bytes = m(1, publish("", "nowhere"));
    bytes.extend(header(1, 10000));
    bytes.extend(body(1, &vec![b'x'; 10000]));
    let got = c.round(&bytes);
    assert_eq!(got.len(), 1, "{got:?}");
    // frame_max 4096 leaves 4088 octets of payload per frame
    assert_connection_close(
        &got[0],
        501,
        "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,10000,4088}",
        (0, 0),
    );
    assert!(c.ended(), "after a frame error the stream is only drained");
}

#[test]
fn an_oversized_frame_is_refused_from_its_header_alone() {
    let (_b, mut c) = open();
    // Seven octets claiming a 4 GiB method frame: nothing is buffered.
    let got = c.round(&[1, 0, 1, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_connection_close(
        &got[0],
        501,
        "FRAME_ERROR - type 1, all octets = <<>>: {frame_too_large,4294967295,131064}",
        (0, 0),
    );
    assert!(c.ended());
}

#[test]
fn a_frame_of_exactly_frame_max_is_accepted() {
    let b = broker();
    let mut c = Client::handshake(&b, 2047, 4096);
    c.open_channel(1);
    c.declare_queue(1, "q");
    let data = vec![7u8; 4088];
    let mut bytes = m(1, publish("", "q"));
    bytes.extend(header(1, 4088));
    bytes.extend(body(1, &data));
    assert!(c.round(&bytes).is_empty());
    let got = c.round(&m(1, get("q", true)));
    assert_names(&got, &["1 basic.get-ok", "1 header", "1 body"]);
    assert_eq!(messages(&got)[0].body, data);
}

#[test]
fn heartbeat_on_nonzero_channel() {
    let (_b, mut c) = open();
    let got = c.round(&raw_frame(FRAME_HEARTBEAT, 1, &[]));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_connection_close(&got[0], 505, "UNEXPECTED_FRAME - type 8, all octets = <<>>", (0, 0));
    assert!(!c.ended(), "the broker waits for close-ok");
    assert!(c.round(&m(0, conn_close_ok())).is_empty());
    assert!(c.ended());
}

#[test]
fn heartbeat_on_an_unopened_channel_is_the_same_error() {
    let (_b, mut c) = open();
    c.expect_connection_error(
        &raw_frame(FRAME_HEARTBEAT, 9, &[]),
        505,
        "UNEXPECTED_FRAME - type 8, all octets = <<>>",
        (0, 0),
    );
}

#[test]
fn heartbeats_on_channel_zero_are_accepted_silently() {
    let (_b, mut c) = open();
    for _ in 0..3 {
        assert!(c.round(&heartbeat()).is_empty());
    }
    // still usable
    c.open_channel(2);
    assert!(!c.ended());
}

#[test]
fn unknown_frame_type() {
    let (_b, mut c) = open();
    let got = c.round(&raw_frame(7, 0, b"zz"));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_connection_close(&got[0], 501, "FRAME_ERROR - type 7, all octets = <<\"zz\">>: unknown_frame", (0, 0));
    assert!(c.ended());
}

#[test]
fn a_frame_error_quotes_only_the_first_16_octets() {
    let (_b, mut c) = open();
    let got = c.round(&raw_frame(9, 1, &[1u8; 20]));
    assert_connection_close(
        &got[0],
        501,
        "FRAME_ERROR - type 9, first octets = <<1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1>>: unknown_frame",
        (0, 0),
    );
}

#[test]
fn bad_frame_end_octet() {
    let (_b, mut c) = open();
    let mut f = raw_method(1, 20, 10, &[0]);
    *f.last_mut().unwrap() = 0x00;
    let got = c.round(&f);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_connection_close(
        &got[0],
        501,
        "FRAME_ERROR - type 1, all octets = <<0,20,0,10,0>>: {invalid_frame_end_marker,0}",
        (0, 0),
    );
    assert!(c.ended());
}

#[test]
fn after_a_frame_error_the_rest_of_the_input_is_discarded() {
    let (_b, mut c) = open();
    let mut bytes = raw_frame(7, 0, b"zz");
    bytes.extend(m(1, declare("q")));
    let got = c.round(&bytes);
    assert_names(&got, &["0 connection.close"]);
    // Neither the declare behind it nor anything later is answered.
    c.feed(&m(2, ch_open()));
    c.feed(&m(0, conn_close()));
    assert!(c.raw_output().is_empty());
}

#[test]
fn method_of_unknown_class() {
    let (_b, mut c) = open();
    // RabbitMQ 3.x sends no connection.close here: it just drops the socket.
    c.expect_silent_drop(&raw_method(1, 999, 10, &[]));
}

#[test]
fn unknown_method_of_known_class() {
    let (_b, mut c) = open();
    // RabbitMQ 3.x sends no connection.close here: it just drops the socket.
    c.expect_silent_drop(&raw_method(1, 50, 99, &[]));
}

#[test]
fn unknown_method_on_channel_zero_is_dropped_too() {
    let (_b, mut c) = open();
    c.expect_silent_drop(&raw_method(0, 10, 99, &[]));
}

#[test]
fn truncated_method_arguments_are_a_frame_error() {
    let (_b, mut c) = open();
    c.expect_connection_error(&raw_method(1, 50, 10, &[0, 0]), 501, "FRAME_ERROR - cannot decode <<0,0>>", (50, 10));
}

#[test]
fn truncated_hand_decoded_methods_are_frame_errors_too() {
    // basic.ack is decoded by hand, not by amq-protocol.
    let (_b, mut c) = open();
    c.expect_connection_error(
        &raw_method(1, 60, 80, &[0, 0, 0, 1]),
        501,
        "FRAME_ERROR - cannot decode <<0,0,0,1>>",
        (60, 80),
    );
}

#[test]
fn non_connection_method_on_channel_zero() {
    let (_b, mut c) = open();
    // queue.declare(ticket=0, queue="q", flags=0, arguments={})
    c.expect_connection_error(
        &raw_method(0, 50, 10, &[0, 0, 1, b'q', 0, 0, 0, 0, 0]),
        504,
        "CHANNEL_ERROR - unexpected method in connection state running",
        (50, 10),
    );
}

#[test]
fn channel_open_on_channel_zero() {
    let (_b, mut c) = open();
    c.expect_connection_error(
        &m(0, ch_open()),
        504,
        "CHANNEL_ERROR - unexpected method in connection state running",
        (20, 10),
    );
}

#[test]
fn content_header_on_channel_zero() {
    let (_b, mut c) = open();
    c.expect_connection_error(
        &raw_frame(FRAME_HEADER, 0, &[0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        505,
        "UNEXPECTED_FRAME - type 2, all octets = <<0,60,0,0,0,0,0,0,0,0,0,0,0,0>>",
        (0, 0),
    );
}

#[test]
fn content_body_on_channel_zero() {
    let (_b, mut c) = open();
    c.expect_connection_error(&body(0, b"abc"), 505, "UNEXPECTED_FRAME - type 3, all octets = <<\"abc\">>", (0, 0));
}

#[test]
fn a_frame_split_into_single_octets_is_reassembled() {
    let (_b, mut c) = open();
    let frame = m(1, declare("q"));
    for (i, octet) in frame.iter().enumerate() {
        c.feed(&[*octet]);
        let got = c.output();
        if i + 1 < frame.len() {
            assert!(got.is_empty(), "nothing before the frame-end octet");
        } else {
            assert_names(&got, &["1 queue.declare-ok"]);
        }
    }
}

#[test]
fn frames_may_straddle_reads_anywhere() {
    let (_b, mut c) = open();
    let mut stream = m(1, declare("q"));
    stream.extend(message(1, "", "q", b"hello"));
    stream.extend(m(1, get("q", true)));
    let (a, rest) = stream.split_at(5);
    let (bb, rest) = rest.split_at(40);
    let mut got = c.round(a);
    got.extend(c.round(bb));
    got.extend(c.round(rest));
    assert_names(&got, &["1 queue.declare-ok", "1 basic.get-ok", "1 header", "1 body"]);
    assert_eq!(bodies(&got), ["hello"]);
}

#[test]
fn many_frames_in_one_read_are_all_answered_in_order() {
    let (_b, mut c) = open();
    let mut burst = Vec::new();
    for ch in 2..=5 {
        burst.extend(m(ch, ch_open()));
    }
    for ch in 2..=5 {
        burst.extend(m(ch, declare(&format!("q{ch}"))));
    }
    let got = c.round(&burst);
    assert_names(
        &got,
        &[
            "2 channel.open-ok",
            "3 channel.open-ok",
            "4 channel.open-ok",
            "5 channel.open-ok",
            "2 queue.declare-ok",
            "3 queue.declare-ok",
            "4 queue.declare-ok",
            "5 queue.declare-ok",
        ],
    );
}
