//! Closing the connection from either side: close-ok, what is dropped after
//! it, errors while closing, and what a connection leaves behind.

use super::support::*;

#[test]
fn connection_close_is_answered_with_close_ok() {
    let (_b, mut c) = open();
    let got = c.round(&m(0, conn_close()));
    assert_names(&got, &["0 connection.close-ok"]);
    assert!(c.ended(), "the state machine only drains now; the task half-closes and waits for EOF");
}

#[test]
fn after_close_ok_the_rest_of_the_burst_is_dropped_quietly() {
    let (_b, mut c) = open();
    let mut burst = m(0, conn_close());
    burst.extend(m(1, declare("q")));
    burst.extend(message(1, "", "q", b"x"));
    c.feed(&burst);
    c.feed(&m(1, ch_close()));
    c.feed(&raw_frame(7, 0, b"garbage"));
    assert_names(&c.output(), &["0 connection.close-ok"]);
    // Nothing after the close ran.
    let b = _b;
    let mut other = Client::open(&b);
    other.expect_channel_error(&m(1, passive("q")), 1, 404, "NOT_FOUND - no queue 'q' in vhost '/'", (50, 10));
}

#[test]
fn after_the_brokers_close_only_close_and_close_ok_count() {
    let (_b, mut c) = open();
    let got = c.round(&m(5, declare("q")));
    assert_connection_close(&got[0], 504, "CHANNEL_ERROR - expected 'channel.open'", (50, 10));
    // Methods on any channel, content, heartbeats: all ignored, no reply.
    let mut late = m(1, declare("q"));
    late.extend(m(2, ch_open()));
    late.extend(message(1, "", "q", b"x"));
    late.extend(heartbeat());
    late.extend(m(0, conn_open("/")));
    assert!(c.round(&late).is_empty());
    assert!(!c.ended(), "still waiting for close-ok");
    assert!(c.round(&m(0, conn_close_ok())).is_empty());
    assert!(c.ended());
}

#[test]
fn a_close_crossing_the_brokers_close_is_answered() {
    let (_b, mut c) = open();
    let got = c.round(&m(5, declare("q")));
    assert_eq!(Closed::of(&got[0]).map(|c| c.code), Some(504));
    // The client closed at the same time: it gets close-ok, and the
    // connection is over without waiting for our close-ok.
    assert_names(&c.round(&m(0, conn_close())), &["0 connection.close-ok"]);
    assert!(c.ended());
}

#[test]
fn a_frame_error_while_closing_drops_the_connection_silently() {
    let (_b, mut c) = open();
    c.round(&m(5, declare("q")));
    c.feed(&raw_frame(7, 0, b"zz"));
    assert!(c.raw_output().is_empty(), "no second close");
    assert!(c.ended());
}

#[test]
fn an_oversized_frame_while_closing_drops_the_connection_silently() {
    let (_b, mut c) = open();
    c.round(&m(5, declare("q")));
    c.feed(&[3, 0, 1, 0xff, 0xff, 0xff, 0xff]);
    assert!(c.raw_output().is_empty());
    assert!(c.ended());
}

#[test]
fn connection_close_cancels_consumers_and_requeues_deliveries() {
    let b = broker();
    let mut c = Client::open(&b);
    c.declare_queue(1, "q");
    c.feed(&message(1, "", "q", b"held"));
    assert_eq!(bodies(&c.round(&m(1, consume("q", "c")))), ["held"]);
    assert_names(&c.round(&m(0, conn_close())), &["0 connection.close-ok"]);
    let mut other = Client::open(&b);
    other.expect_declare_ok(&m(1, passive("q")), "q", 1, 0);
    let got = messages(&other.round(&m(1, get("q", true))));
    assert_eq!((got[0].redelivered(), &got[0].body[..]), (true, &b"held"[..]));
}

#[test]
fn dropping_a_connection_cleans_up_like_a_close() {
    let b = broker();
    let mut c = Client::open(&b);
    c.expect_declare_ok(&m(1, queue::Declare { exclusive: true, ..declare("mine") }), "mine", 0, 0);
    c.declare_queue(1, "shared");
    c.feed(&message(1, "", "shared", b"held"));
    c.round(&m(1, consume("shared", "c")));
    drop(c);
    let mut other = Client::open(&b);
    other.expect_channel_error(&m(1, passive("mine")), 1, 404, "NOT_FOUND - no queue 'mine' in vhost '/'", (50, 10));
    other.expect_declare_ok(&m(1, passive("shared")), "shared", 1, 0);
}

#[test]
fn connection_close_with_a_channel_closing_is_still_answered() {
    let (_b, mut c) = open();
    let got = c.round(&m(1, passive("missing")));
    assert_eq!(Closed::of(&got[0]).map(|c| c.code), Some(404));
    assert_names(&c.round(&m(0, conn_close())), &["0 connection.close-ok"]);
    assert!(c.ended());
}

#[test]
fn update_secret_is_acknowledged() {
    let (_b, mut c) = open();
    let secret = connection::UpdateSecret { new_secret: LongString::from(b"token".to_vec()), reason: "refresh".into() };
    assert_names(&c.round(&m(0, secret)), &["0 connection.update-secret-ok"]);
}

#[test]
fn errors_on_two_channels_in_one_read_close_each() {
    let (_b, mut c) = open();
    c.open_channel(2);
    let mut bytes = m(1, passive("a"));
    bytes.extend(m(2, passive("b")));
    let got = c.round(&bytes);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_channel_close(&got[0], 1, 404, "NOT_FOUND - no queue 'a' in vhost '/'", (50, 10));
    assert_channel_close(&got[1], 2, 404, "NOT_FOUND - no queue 'b' in vhost '/'", (50, 10));
}

/// Warren runs a read's frames in order, so nothing behind the error runs.
/// (RabbitMQ's channels are processes of their own: there, frames behind a
/// channel-level cause may still run before the connection closes.)
#[test]
fn a_connection_error_stops_the_rest_of_the_read() {
    let (_b, mut c) = open();
    let mut bytes = m(1, ch_open());
    bytes.extend(m(1, declare("q")));
    let got = c.round(&bytes);
    assert_names(&got, &["0 connection.close"]);
    assert_connection_close(&got[0], 504, "CHANNEL_ERROR - second 'channel.open' seen", (20, 10));
    assert!(c.round(&m(0, conn_close_ok())).is_empty());
    let b = _b;
    let mut other = Client::open(&b);
    other.expect_channel_error(&m(1, passive("q")), 1, 404, "NOT_FOUND - no queue 'q' in vhost '/'", (50, 10));
}
