//! The protocol header, connection.start / start-ok / tune / tune-ok / open,
//! and what the broker does with a handshake that goes wrong: RabbitMQ drops
//! the socket without a word for most of them.

use super::support::*;

#[test]
fn wrong_protocol_header_gets_supported_header_and_close() {
    let b = broker();
    for bad in [&b"AMQP\x00\x00\x08\x00"[..], b"AMQP\x00\x00\x0a\x00", b"AMQP\x00\x01\x00\x00", b"HTTP/1.1"] {
        let mut c = Client::new(&b);
        c.feed(bad);
        assert_eq!(c.raw_output(), PROTOCOL_HEADER, "reply to header {bad:?}");
        assert!(c.ended(), "closed after a bad protocol header {bad:?}");
    }
}

#[test]
fn a_bad_header_ends_the_connection_even_with_frames_behind_it() {
    let b = broker();
    let mut c = Client::new(&b);
    let mut bytes = b"AMQP\x00\x00\x09\x02".to_vec();
    bytes.extend(m(0, plain("guest", "guest")));
    c.feed(&bytes);
    assert_eq!(c.raw_output(), PROTOCOL_HEADER);
    assert!(c.ended());
    c.feed(&m(0, tune_ok(2047, 131072, 0)));
    assert!(c.raw_output().is_empty(), "nothing after the end");
}

#[test]
fn protocol_header_may_arrive_one_octet_at_a_time() {
    let b = broker();
    let mut c = Client::new(&b);
    for (i, octet) in PROTOCOL_HEADER.iter().enumerate() {
        c.feed(&[*octet]);
        let out = c.output();
        if i < 7 {
            assert!(out.is_empty(), "nothing before the 8th octet, got {out:?}");
        } else {
            assert_names(&out, &["0 connection.start"]);
        }
    }
    assert!(!c.ended());
}

#[test]
fn the_0_9_header_rabbitmq_also_accepts_starts_the_handshake() {
    let b = broker();
    let mut c = Client::new(&b);
    assert_names(&c.round(b"AMQP\x01\x01\x00\x09"), &["0 connection.start"]);
}

#[test]
fn connection_start_advertises_server_properties() {
    let b = broker();
    let mut c = Client::new(&b);
    let got = c.round(PROTOCOL_HEADER);
    let [AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Start(start)))] = &got[..] else {
        panic!("expected connection.start, got {got:?}")
    };
    assert_eq!((start.version_major, start.version_minor), (0, 9));
    let mechs = String::from_utf8_lossy(start.mechanisms.as_bytes()).to_string();
    let mut mechs: Vec<&str> = mechs.split(' ').collect();
    mechs.sort_unstable();
    assert_eq!(mechs, ["AMQPLAIN", "PLAIN"]);
    assert_eq!(String::from_utf8_lossy(start.locales.as_bytes()), "en_US");
    let props = start.server_properties.inner();
    for key in ["product", "version", "platform", "copyright", "information", "capabilities", "cluster_name"] {
        assert!(props.contains_key(key), "server_properties lacks {key}: {props:?}");
    }
    assert_eq!(props.get("product"), Some(&AMQPValue::LongString("Warren".into())));
    let Some(AMQPValue::FieldTable(caps)) = props.get("capabilities") else { panic!("capabilities: {props:?}") };
    let mut names: Vec<&str> = caps.inner().keys().map(|k| k.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "authentication_failure_close",
            "basic.nack",
            "connection.blocked",
            "consumer_cancel_notify",
            "consumer_priorities",
            "direct_reply_to",
            "exchange_exchange_bindings",
            "per_consumer_qos",
            "publisher_confirms",
        ]
    );
    assert!(caps.inner().values().all(|v| *v == AMQPValue::Boolean(true)), "every capability is true: {caps:?}");
}

#[test]
fn tune_advertises_limits() {
    let b = broker();
    let mut c = Client::started(&b);
    let got = c.round(&m(0, plain("guest", "guest")));
    let [AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Tune(t)))] = &got[..] else {
        panic!("expected connection.tune, got {got:?}")
    };
    assert_eq!((t.channel_max, t.frame_max, t.heartbeat), (2047, 131072, 60));
}

#[test]
fn tune_offers_what_the_config_says() {
    let b = broker();
    let config = crate::Config { channel_max: 16, frame_max: 8192, heartbeat: 5, ..crate::Config::ephemeral() };
    let mut c = Client::with_config(&b, config);
    c.feed(PROTOCOL_HEADER);
    c.output();
    let got = c.round(&m(0, plain("guest", "guest")));
    let [AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Tune(t)))] = &got[..] else {
        panic!("expected connection.tune, got {got:?}")
    };
    assert_eq!((t.channel_max, t.frame_max, t.heartbeat), (16, 8192, 5));
    // A value above this offer is refused as above the default one.
    c.expect_silent_drop(&m(0, tune_ok(16, 8193, 0)));
}

#[test]
fn amqplain_logs_in() {
    let b = broker();
    let mut c = Client::started(&b);
    let mut response = b"\x05LOGINS\x00\x00\x00\x05guest".to_vec();
    response.extend_from_slice(b"\x08PASSWORDS\x00\x00\x00\x05guest");
    let got = c.round(&m(0, start_ok("AMQPLAIN", &response, FieldTable::default())));
    assert_names(&got, &["0 connection.tune"]);
}

#[test]
fn amqplain_with_a_wrong_password_is_dropped() {
    let b = broker();
    let mut c = Client::started(&b);
    let mut response = b"\x05LOGINS\x00\x00\x00\x05guest".to_vec();
    response.extend_from_slice(b"\x08PASSWORDS\x00\x00\x00\x05wrong");
    c.expect_silent_drop(&m(0, start_ok("AMQPLAIN", &response, FieldTable::default())));
}

/// Errors during the handshake (before connection.open-ok) are "silent":
/// RabbitMQ sends no connection.close and drops the socket.
#[test]
fn handshake_errors_close_the_connection_silently() {
    let b = broker();
    let bad_tunes = [
        (2047, 1000),   // frame_max below the 4096 minimum
        (2047, 200000), // frame_max above the server's
        (2047, 0),      // 0 = unlimited, above the server's
        (0, 131072),    // 0 = unlimited channels, above the server's
        (2048, 131072), // more channels than connection.tune offered
    ];
    for (i, (channel_max, frame_max)) in bad_tunes.into_iter().enumerate() {
        let mut c = Client::tuned(&b);
        let mut bytes = m(0, tune_ok(channel_max, frame_max, 0));
        bytes.extend(m(0, conn_open("/")));
        c.feed(&bytes);
        assert_eq!(c.raw_output(), Vec::<u8>::new(), "tune case {i}: nothing before closing");
        assert!(c.ended(), "tune case {i}: dropped");
    }
    let bad_start_oks = [
        start_ok("FOO", b"x", FieldTable::default()),
        // Wrong password, client without the authentication_failure_close capability.
        plain("guest", "wrong"),
        plain("nobody", "guest"),
        // A PLAIN response without its NUL separators.
        start_ok("PLAIN", b"guestguest", FieldTable::default()),
    ];
    for ok in bad_start_oks {
        let mut c = Client::started(&b);
        c.expect_silent_drop(&m(0, ok));
    }
}

#[test]
fn tune_ok_at_or_below_the_offer_is_accepted() {
    let b = broker();
    for (channel_max, frame_max) in [(2047, 131072), (1, 4096), (100, 65536)] {
        let mut c = Client::tuned(&b);
        let mut bytes = m(0, tune_ok(channel_max, frame_max, 30));
        bytes.extend(m(0, conn_open("/")));
        assert_names(&c.round(&bytes), &["0 connection.open-ok"]);
    }
}

fn failure_close_capability() -> FieldTable {
    capabilities(&["authentication_failure_close"])
}

#[test]
fn auth_failure_with_capability_gets_access_refused() {
    let b = broker();
    let mut c = Client::started(&b);
    c.expect_connection_error(
        &m(0, start_ok("PLAIN", b"\0guest\0wrong", failure_close_capability())),
        403,
        "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.",
        (0, 0),
    );
}

#[test]
fn unknown_user_with_capability_gets_the_same_access_refused() {
    let b = broker();
    let mut c = Client::started(&b);
    c.expect_connection_error(
        &m(0, start_ok("PLAIN", b"\0mallory\0guest", failure_close_capability())),
        403,
        "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.",
        (0, 0),
    );
}

#[test]
fn unknown_mechanism_is_dropped_even_with_the_capability() {
    let b = broker();
    let mut c = Client::started(&b);
    c.expect_silent_drop(&m(0, start_ok("EXTERNAL", b"", failure_close_capability())));
}

#[test]
fn after_a_refused_login_only_close_ok_counts() {
    let b = broker();
    let mut c = Client::started(&b);
    let got = c.round(&m(0, start_ok("PLAIN", b"\0guest\0wrong", failure_close_capability())));
    assert_eq!(Closed::of(&got[0]).map(|c| c.code), Some(403));
    // A tune-ok and an open are ignored: no tune, no open-ok.
    let mut more = m(0, tune_ok(2047, 131072, 0));
    more.extend(m(0, conn_open("/")));
    assert!(c.round(&more).is_empty());
    assert!(!c.ended());
    assert!(c.round(&m(0, conn_close_ok())).is_empty());
    assert!(c.ended());
}

#[test]
fn unknown_vhost_is_not_allowed() {
    let b = broker();
    let mut c = Client::tuned(&b);
    c.feed(&m(0, tune_ok(2047, 131072, 0)));
    c.expect_connection_error(
        &m(0, conn_open("no-such-vhost")),
        530,
        "NOT_ALLOWED - vhost no-such-vhost not found",
        (10, 40),
    );
}

#[test]
fn vhost_without_permissions_is_not_allowed() {
    let b = broker();
    b.clear_permissions("guest", "/");
    let mut c = Client::tuned(&b);
    c.feed(&m(0, tune_ok(2047, 131072, 0)));
    c.expect_connection_error(
        &m(0, conn_open("/")),
        530,
        "NOT_ALLOWED - access to vhost '/' refused for user 'guest'",
        (10, 40),
    );
}

/// A connection.start-ok of exactly `size` payload octets (PLAIN guest/guest,
/// client properties padded with one long string).
fn start_ok_of_payload(size: usize) -> Vec<u8> {
    let pad = size - 45;
    let mut p = vec![0, 10, 0, 11];
    p.extend_from_slice(&(pad as u32 + 9).to_be_bytes());
    p.extend_from_slice(b"\x03padS");
    p.extend_from_slice(&(pad as u32).to_be_bytes());
    p.extend(std::iter::repeat_n(b'x', pad));
    p.extend_from_slice(b"\x05PLAIN\x00\x00\x00\x0c\x00guest\x00guest\x05en_US");
    assert_eq!(p.len(), size);
    raw_frame(FRAME_METHOD, 0, &p)
}

/// Before tune-ok nothing is negotiated: RabbitMQ takes frames of at most
/// frame-min-size (4096 octets of payload) and drops the connection without
/// a word for a larger one, such as a 10 KB start-ok.
#[test]
fn frames_before_tune_ok_are_limited_to_frame_min_size() {
    let b = broker();
    let mut at_limit = Client::started(&b);
    assert_names(&at_limit.round(&start_ok_of_payload(4096)), &["0 connection.tune"]);
    for size in [4097, 10_000] {
        let mut c = Client::started(&b);
        c.expect_silent_drop(&start_ok_of_payload(size));
    }
    // Only the header of an oversized frame is needed to refuse it.
    let mut c = Client::started(&b);
    c.expect_silent_drop(&start_ok_of_payload(10_000)[..7]);
    // The broker carries on.
    let mut c = Client::handshake(&b, 2047, 131072);
    c.open_channel(1);
}

#[test]
fn the_pre_tune_limit_also_holds_between_start_ok_and_tune_ok() {
    let b = broker();
    let mut c = Client::tuned(&b);
    let mut tune = m(0, tune_ok(2047, 131072, 0));
    // A 5000-octet payload: the tune-ok is padded with trailing argument octets.
    let pad = 5000 - (tune.len() - 8);
    tune.pop();
    tune.extend(std::iter::repeat_n(0u8, pad));
    tune.push(0xCE);
    tune[3..7].copy_from_slice(&5000u32.to_be_bytes());
    c.expect_silent_drop(&tune);
}

#[test]
fn frames_before_start_ok_other_than_start_ok_drop_the_connection() {
    let b = broker();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("tune-ok first", m(0, tune_ok(2047, 131072, 0))),
        ("open first", m(0, conn_open("/"))),
        ("channel.open first", m(1, ch_open())),
        ("start-ok on channel 1", m(1, plain("guest", "guest"))),
        ("a content header", header(0, 3)),
        ("a queue method on channel 0", m(0, declare("q"))),
    ];
    for (what, bytes) in cases {
        let mut c = Client::started(&b);
        c.feed(&bytes);
        assert_eq!(c.raw_output(), Vec::<u8>::new(), "{what}: nothing written");
        assert!(c.ended(), "{what}: dropped");
    }
}

#[test]
fn methods_out_of_order_after_start_ok_drop_the_connection() {
    let b = broker();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("start-ok twice", m(0, plain("guest", "guest"))),
        ("open before tune-ok", m(0, conn_open("/"))),
        ("channel.open before tune-ok", m(1, ch_open())),
    ];
    for (what, bytes) in cases {
        let mut c = Client::tuned(&b);
        c.feed(&bytes);
        assert_eq!(c.raw_output(), Vec::<u8>::new(), "{what}: nothing written");
        assert!(c.ended(), "{what}: dropped");
    }
}

#[test]
fn heartbeats_during_the_handshake_are_ignored() {
    let b = broker();
    let mut c = Client::started(&b);
    assert!(c.round(&heartbeat()).is_empty());
    let mut rest = m(0, plain("guest", "guest"));
    rest.extend(heartbeat());
    rest.extend(m(0, tune_ok(2047, 131072, 0)));
    rest.extend(heartbeat());
    rest.extend(m(0, conn_open("/")));
    assert_names(&c.round(&rest), &["0 connection.tune", "0 connection.open-ok"]);
}

#[test]
fn the_whole_handshake_in_one_read() {
    let b = broker();
    let mut c = Client::new(&b);
    let mut all = PROTOCOL_HEADER.to_vec();
    all.extend(m(0, plain("guest", "guest")));
    all.extend(m(0, tune_ok(2047, 131072, 0)));
    all.extend(m(0, conn_open("/")));
    all.extend(m(1, ch_open()));
    all.extend(m(1, declare("q")));
    let got = c.round(&all);
    assert_names(
        &got,
        &["0 connection.start", "0 connection.tune", "0 connection.open-ok", "1 channel.open-ok", "1 queue.declare-ok"],
    );
}

#[test]
fn connection_open_again_once_open_is_a_channel_error_on_the_connection() {
    let (_b, mut c) = open();
    c.expect_connection_error(
        &m(0, conn_open("/")),
        504,
        "CHANNEL_ERROR - unexpected method in connection state running",
        (10, 40),
    );
}
