//! channel.open / close / close-ok / flow: the channel's life and its
//! closing handshake in both directions (spec 4.2.4).

use super::support::*;

#[test]
fn method_on_unopened_channel_is_channel_error() {
    let (_b, mut c) = open();
    c.expect_connection_error(&m(5, declare("x")), 504, "CHANNEL_ERROR - expected 'channel.open'", (50, 10));
}

#[test]
fn channel_open_twice_is_channel_error() {
    let (_b, mut c) = open();
    c.expect_connection_error(&m(1, ch_open()), 504, "CHANNEL_ERROR - second 'channel.open' seen", (20, 10));
}

#[test]
fn channel_count_limited_by_negotiated_channel_max() {
    let b = broker();
    let mut c = Client::handshake(&b, 3, 131072);
    c.open_channel(1);
    c.open_channel(2);
    // RabbitMQ 3.x limits the NUMBER of open channels, not the channel id:
    // an id above channel_max (even above the server's 2047) is accepted.
    c.open_channel(3000);
    c.expect_connection_error(
        &m(4, ch_open()),
        530,
        "NOT_ALLOWED - number of channels opened (3) has reached the negotiated channel_max (3)",
        (0, 0),
    );
}

#[test]
fn a_closed_channel_frees_its_place_under_channel_max() {
    let b = broker();
    let mut c = Client::handshake(&b, 2, 131072);
    c.open_channel(1);
    c.open_channel(2);
    assert_names(&c.round(&m(2, ch_close())), &["2 channel.close-ok"]);
    c.open_channel(7);
}

#[test]
fn the_highest_channel_number_can_be_opened() {
    let (_b, mut c) = open();
    c.open_channel(65535);
    assert_names(&c.round(&m(65535, declare("q"))), &["65535 queue.declare-ok"]);
}

#[test]
fn client_close_is_answered_and_the_number_can_be_reused() {
    let (_b, mut c) = open();
    assert_names(&c.round(&m(1, ch_close())), &["1 channel.close-ok"]);
    c.open_channel(1);
    c.declare_queue(1, "q");
}

#[test]
fn a_method_on_a_closed_channel_is_the_unopened_channel_error() {
    let (_b, mut c) = open();
    assert_names(&c.round(&m(1, ch_close())), &["1 channel.close-ok"]);
    c.expect_connection_error(&m(1, declare("q")), 504, "CHANNEL_ERROR - expected 'channel.open'", (50, 10));
}

#[test]
fn crossing_channel_closes_keep_the_channel_until_our_close_is_acknowledged() {
    let (_b, mut c) = open();
    // A publish to a missing exchange and the client's own close, at once.
    let mut burst = message(1, "nope", "", b"");
    burst.extend(m(1, ch_close()));
    let got = c.round(&burst);
    assert_names(&got, &["1 channel.close", "1 channel.close-ok"]);
    assert_channel_close(&got[0], 1, 404, "NOT_FOUND - no exchange 'nope' in vhost '/'", (60, 40));
    // The close-ok for the broker's close arrives now: no error, and the
    // channel number is free again.
    assert!(c.round(&m(1, ch_close_ok())).is_empty());
    c.open_channel(1);
    assert!(!c.ended());
}

#[test]
fn a_closing_channel_ignores_methods_and_messages_until_close_ok() {
    let (_b, mut c) = open();
    let got = c.round(&m(1, passive("missing")));
    assert_channel_close(&got[0], 1, 404, "NOT_FOUND - no queue 'missing' in vhost '/'", (50, 10));
    // Methods and whole messages on the closing channel are dropped (a stray
    // body frame is not: see rabbitmq_differences).
    let mut late = m(1, declare("q"));
    late.extend(message(1, "", "q", b"late"));
    late.extend(m(1, get("q", true)));
    assert!(c.round(&late).is_empty());
    assert!(!c.ended());
    assert!(c.round(&m(1, ch_close_ok())).is_empty());
    // None of the dropped frames ran: there is no queue q.
    c.open_channel(1);
    let got = c.round(&m(1, passive("q")));
    assert_channel_close(&got[0], 1, 404, "NOT_FOUND - no queue 'q' in vhost '/'", (50, 10));
}

#[test]
fn a_channel_error_leaves_the_other_channels_working() {
    let (_b, mut c) = open();
    c.open_channel(2);
    c.declare_queue(2, "q");
    let mut burst = m(1, passive("missing"));
    burst.extend(message(2, "", "q", b"on two"));
    burst.extend(m(2, get("q", true)));
    let got = c.round(&burst);
    assert_names(&got, &["1 channel.close", "2 basic.get-ok", "2 header", "2 body"]);
    let d = messages(&got);
    assert_eq!((d[0].channel, &d[0].body[..]), (2, &b"on two"[..]));
}

#[test]
fn close_ok_on_an_unopened_channel_is_a_channel_error() {
    let (_b, mut c) = open();
    c.expect_connection_error(&m(9, ch_close_ok()), 504, "CHANNEL_ERROR - expected 'channel.open'", (20, 41));
}

#[test]
fn flow_active_is_acknowledged() {
    let (_b, mut c) = open();
    let got = c.round(&m(1, flow(true)));
    let [AMQPFrame::Method(1, AMQPClass::Channel(channel::AMQPMethod::FlowOk(ok)))] = &got[..] else {
        panic!("expected channel.flow-ok, got {got:?}")
    };
    assert!(ok.active);
}

#[test]
fn flow_inactive_is_not_implemented() {
    let (_b, mut c) = open();
    c.expect_connection_error(&m(1, flow(false)), 540, "NOT_IMPLEMENTED - active=false", (20, 20));
}

#[test]
fn access_request_is_answered_for_old_clients() {
    let (_b, mut c) = open();
    let request = access::Request {
        realm: "/data".into(),
        exclusive: false,
        passive: true,
        active: true,
        write: true,
        read: true,
    };
    assert_names(&c.round(&m(1, request)), &["1 access.request-ok"]);
}

#[test]
fn closing_a_channel_requeues_its_unacknowledged_deliveries() {
    let (_b, mut c) = open();
    c.declare_queue(1, "q");
    let mut burst = message(1, "", "q", b"one");
    burst.extend(message(1, "", "q", b"two"));
    burst.extend(m(1, consume("q", "c")));
    let got = c.round(&burst);
    assert_eq!(bodies(&got), ["one", "two"]);
    assert_names(&c.round(&m(1, ch_close())), &["1 channel.close-ok"]);
    c.open_channel(2);
    let got = c.round(&m(2, get("q", true)));
    assert_names(&got, &["2 basic.get-ok", "2 header", "2 body"]);
    let AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::GetOk(ok))) = &got[0] else { panic!("{got:?}") };
    assert_eq!(ok.message_count, 1, "the second message waits behind it");
    let d = messages(&got);
    assert_eq!((d[0].tag(), d[0].redelivered(), &d[0].body[..]), (1, true, &b"one"[..]));
}

#[test]
fn a_channel_error_releases_the_channel_at_once() {
    let (_b, mut c) = open();
    c.declare_queue(1, "q");
    c.feed(&message(1, "", "q", b"held"));
    let got = c.round(&m(1, consume("q", "c")));
    assert_names(&got, &["1 basic.consume-ok", "1 basic.deliver", "1 header", "1 body"]);
    // An error on the channel requeues its delivery before close-ok arrives.
    let got = c.round(&m(1, ack(99, false)));
    assert_channel_close(&got[0], 1, 406, "PRECONDITION_FAILED - unknown delivery tag 99", (60, 80));
    c.open_channel(2);
    let got = c.round(&m(2, get("q", false)));
    let d = messages(&got);
    assert_eq!((d[0].redelivered(), &d[0].body[..]), (true, &b"held"[..]));
}
