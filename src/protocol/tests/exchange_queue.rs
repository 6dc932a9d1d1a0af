//! exchange.* and queue.* methods: declare and redeclare, passive, reserved
//! names, exclusivity across connections, bind/unbind, delete and purge.

use super::support::*;

const LOCKED: &str = "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'q' in vhost '/'. It could be \
originally declared on another connection or the exclusive property value does not match that of the original \
declaration.";

fn declare_exchange(c: &mut Client, d: exchange::Declare) {
    assert_names(&c.round(&m(1, d)), &["1 exchange.declare-ok"]);
}

#[test]
fn exchange_declare_and_identical_redeclare_succeed() {
    let (_b, mut c) = open();
    declare_exchange(&mut c, exchange_declare("x", "direct"));
    declare_exchange(&mut c, exchange_declare("x", "direct"));
    declare_exchange(&mut c, exchange::Declare { passive: true, ..exchange_declare("x", "") });
}

#[test]
fn exchange_declare_nowait_sends_nothing() {
    let (_b, mut c) = open();
    assert!(c.round(&m(1, exchange::Declare { nowait: true, ..exchange_declare("x", "topic") })).is_empty());
    declare_exchange(&mut c, exchange::Declare { passive: true, ..exchange_declare("x", "") });
}

#[test]
fn exchange_redeclare_with_other_properties_is_inequivalent() {
    let cases = [
        (
            exchange_declare("x", "fanout"),
            "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'x' in vhost '/': received 'fanout' but current is 'direct'",
        ),
        (
            exchange::Declare { durable: true, ..exchange_declare("x", "direct") },
            "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange 'x' in vhost '/': received 'true' but current is 'false'",
        ),
        (
            exchange::Declare { auto_delete: true, ..exchange_declare("x", "direct") },
            "PRECONDITION_FAILED - inequivalent arg 'auto_delete' for exchange 'x' in vhost '/': received 'true' but current is 'false'",
        ),
        (
            exchange::Declare { internal: true, ..exchange_declare("x", "direct") },
            "PRECONDITION_FAILED - inequivalent arg 'internal' for exchange 'x' in vhost '/': received 'true' but current is 'false'",
        ),
    ];
    let (_b, mut c) = open();
    declare_exchange(&mut c, exchange_declare("x", "direct"));
    for (d, text) in cases {
        c.expect_channel_error(&m(1, d), 1, 406, text, (40, 10));
    }
}

#[test]
fn passive_exchange_declare_of_a_missing_exchange_is_not_found() {
    let (_b, mut c) = open();
    c.expect_channel_error(
        &m(1, exchange::Declare { passive: true, ..exchange_declare("nope", "direct") }),
        1,
        404,
        "NOT_FOUND - no exchange 'nope' in vhost '/'",
        (40, 10),
    );
}

#[test]
fn exchange_names_starting_with_amq_are_reserved() {
    let (_b, mut c) = open();
    c.expect_channel_error(
        &m(1, exchange_declare("amq.foo", "direct")),
        1,
        403,
        "ACCESS_REFUSED - exchange name 'amq.foo' contains reserved prefix 'amq.*'",
        (40, 10),
    );
    // Redeclaring a predefined one as it is, is fine.
    declare_exchange(&mut c, exchange::Declare { durable: true, ..exchange_declare("amq.direct", "direct") });
}

#[test]
fn the_default_exchange_cannot_be_declared() {
    let (_b, mut c) = open();
    c.expect_channel_error(
        &m(1, exchange_declare("", "direct")),
        1,
        403,
        "ACCESS_REFUSED - operation not permitted on the default exchange",
        (40, 10),
    );
}

#[test]
fn an_unknown_exchange_type_closes_the_connection() {
    let (_b, mut c) = open();
    c.expect_connection_error(
        &m(1, exchange_declare("x", "nope")),
        503,
        "COMMAND_INVALID - unknown exchange type 'nope'",
        (40, 10),
    );
}

#[test]
fn exchange_delete_rules() {
    let (_b, mut c) = open();
    // A missing exchange deletes fine.
    assert_names(&c.round(&m(1, exchange_delete("missing"))), &["1 exchange.delete-ok"]);
    c.expect_channel_error(
        &m(1, exchange_delete("amq.direct")),
        1,
        403,
        "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed",
        (40, 20),
    );
    declare_exchange(&mut c, exchange_declare("x", "direct"));
    c.declare_queue(1, "q");
    assert_names(&c.round(&m(1, bind("q", "x", "k"))), &["1 queue.bind-ok"]);
    c.expect_channel_error(
        &m(1, exchange::Delete { if_unused: true, ..exchange_delete("x") }),
        1,
        406,
        "PRECONDITION_FAILED - exchange 'x' in vhost '/' in use",
        (40, 20),
    );
    assert_names(&c.round(&m(1, exchange_delete("x"))), &["1 exchange.delete-ok"]);
    c.expect_channel_error(
        &m(1, exchange::Declare { passive: true, ..exchange_declare("x", "") }),
        1,
        404,
        "NOT_FOUND - no exchange 'x' in vhost '/'",
        (40, 10),
    );
}

#[test]
fn exchange_to_exchange_bindings_route() {
    let (_b, mut c) = open();
    declare_exchange(&mut c, exchange_declare("src", "fanout"));
    declare_exchange(&mut c, exchange_declare("dst", "direct"));
    c.declare_queue(1, "q");
    assert_names(&c.round(&m(1, bind("q", "dst", "k"))), &["1 queue.bind-ok"]);
    assert_names(&c.round(&m(1, exchange_bind("dst", "src", ""))), &["1 exchange.bind-ok"]);
    let mut bytes = message(1, "src", "k", b"via e2e");
    bytes.extend(m(1, get("q", true)));
    assert_eq!(bodies(&c.round(&bytes)), ["via e2e"]);
    assert_names(&c.round(&m(1, exchange_unbind("dst", "src", ""))), &["1 exchange.unbind-ok"]);
    let mut bytes = message(1, "src", "k", b"dropped");
    bytes.extend(m(1, get("q", true)));
    assert_names(&c.round(&bytes), &["1 basic.get-empty"]);
}

#[test]
fn exchange_bind_errors() {
    let (_b, mut c) = open();
    declare_exchange(&mut c, exchange_declare("x", "direct"));
    c.expect_channel_error(
        &m(1, exchange_bind("x", "nope", "")),
        1,
        404,
        "NOT_FOUND - no exchange 'nope' in vhost '/'",
        (40, 30),
    );
    c.expect_channel_error(
        &m(1, exchange_bind("nope", "x", "")),
        1,
        404,
        "NOT_FOUND - no exchange 'nope' in vhost '/'",
        (40, 30),
    );
    c.expect_channel_error(
        &m(1, exchange_bind("x", "", "")),
        1,
        403,
        "ACCESS_REFUSED - operation not permitted on the default exchange",
        (40, 30),
    );
    // Unbinding what does not exist succeeds, as in RabbitMQ.
    assert_names(&c.round(&m(1, exchange_unbind("x", "nope", ""))), &["1 exchange.unbind-ok"]);
}

#[test]
fn queue_declare_reports_counts() {
    let (_b, mut c) = open();
    c.declare_queue(1, "q");
    let mut bytes = message(1, "", "q", b"a");
    bytes.extend(message(1, "", "q", b"b"));
    c.feed(&bytes);
    c.expect_declare_ok(&m(1, declare("q")), "q", 2, 0);
    c.open_channel(2);
    assert_names(
        &c.round(&m(2, consume("q", "c"))),
        &["2 basic.consume-ok", "2 basic.deliver", "2 header", "2 body", "2 basic.deliver", "2 header", "2 body"],
    );
    c.expect_declare_ok(&m(1, passive("q")), "q", 0, 1);
}

#[test]
fn a_server_named_queue_gets_an_amq_gen_name() {
    let (_b, mut c) = open();
    let got = c.round(&m(1, declare("")));
    let [AMQPFrame::Method(1, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(ok)))] = &got[..] else {
        panic!("expected declare-ok, got {got:?}")
    };
    assert!(ok.queue.as_str().starts_with("amq.gen-"), "{}", ok.queue);
    // The empty name then means the queue declared last.
    let mut bytes = message(1, "", ok.queue.as_str(), b"x");
    bytes.extend(m(1, get("", true)));
    assert_eq!(bodies(&c.round(&bytes)), ["x"]);
}

#[test]
fn queue_redeclare_with_other_properties_is_inequivalent() {
    let mut ttl = FieldTable::default();
    ttl.insert("x-message-ttl".into(), AMQPValue::LongInt(100));
    let mut ttl2 = FieldTable::default();
    ttl2.insert("x-message-ttl".into(), AMQPValue::LongInt(200));
    let cases = [
        (
            queue::Declare { durable: true, ..declare("q") },
            "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q' in vhost '/': received 'true' but current is 'false'",
        ),
        (
            queue::Declare { auto_delete: true, ..declare("q") },
            "PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue 'q' in vhost '/': received 'true' but current is 'false'",
        ),
        (
            queue::Declare { arguments: ttl2, ..declare("q") },
            "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'q' in vhost '/': received '200' but current is '100'",
        ),
        (
            declare("q"),
            "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'q' in vhost '/': received none but current is the value '100' of type 'signedint'",
        ),
    ];
    let (_b, mut c) = open();
    c.expect_declare_ok(&m(1, queue::Declare { arguments: ttl, ..declare("q") }), "q", 0, 0);
    for (d, text) in cases {
        c.expect_channel_error(&m(1, d), 1, 406, text, (50, 10));
    }
}

#[test]
fn passive_queue_declare_of_a_missing_queue_is_not_found() {
    let (_b, mut c) = open();
    c.expect_channel_error(&m(1, passive("q")), 1, 404, "NOT_FOUND - no queue 'q' in vhost '/'", (50, 10));
}

#[test]
fn queue_names_starting_with_amq_are_reserved() {
    let (_b, mut c) = open();
    c.expect_channel_error(
        &m(1, declare("amq.q")),
        1,
        403,
        "ACCESS_REFUSED - queue name 'amq.q' contains reserved prefix 'amq.*'",
        (50, 10),
    );
}

#[test]
fn an_exclusive_queue_is_locked_to_its_connection() {
    let b = broker();
    let mut owner = Client::open(&b);
    owner.expect_declare_ok(&m(1, queue::Declare { exclusive: true, ..declare("q") }), "q", 0, 0);
    let mut other = Client::open(&b);
    let cases: Vec<(Vec<u8>, (u16, u16))> = vec![
        (m(1, queue::Declare { exclusive: true, ..declare("q") }), (50, 10)),
        (m(1, declare("q")), (50, 10)),
        (m(1, passive("q")), (50, 10)),
        (m(1, bind("q", "amq.direct", "k")), (50, 20)),
        (m(1, purge("q")), (50, 30)),
        (m(1, delete("q")), (50, 40)),
        (m(1, consume("q", "c")), (60, 20)),
        (m(1, get("q", true)), (60, 70)),
    ];
    for (bytes, ids) in cases {
        other.expect_channel_error(&bytes, 1, 405, LOCKED, ids);
    }
    // The owner still uses it.
    owner.expect_declare_ok(&m(1, passive("q")), "q", 0, 0);
}

#[test]
fn redeclaring_a_queue_as_exclusive_on_its_own_connection_is_locked_too() {
    let (_b, mut c) = open();
    c.declare_queue(1, "q");
    c.expect_channel_error(&m(1, queue::Declare { exclusive: true, ..declare("q") }), 1, 405, LOCKED, (50, 10));
}

#[test]
fn an_exclusive_queue_goes_with_its_connection() {
    let b = broker();
    let mut owner = Client::open(&b);
    owner.expect_declare_ok(&m(1, queue::Declare { exclusive: true, ..declare("q") }), "q", 0, 0);
    assert_names(&owner.round(&m(0, conn_close())), &["0 connection.close-ok"]);
    let mut other = Client::open(&b);
    other.expect_channel_error(&m(1, passive("q")), 1, 404, "NOT_FOUND - no queue 'q' in vhost '/'", (50, 10));
    other.declare_queue(1, "q");
}

#[test]
fn queue_bind_errors() {
    let (_b, mut c) = open();
    c.declare_queue(1, "q");
    let cases = [
        (bind("q", "nope", "k"), 404, "NOT_FOUND - no exchange 'nope' in vhost '/'"),
        (bind("missing", "amq.direct", "k"), 404, "NOT_FOUND - no queue 'missing' in vhost '/'"),
        (bind("q", "", "k"), 403, "ACCESS_REFUSED - operation not permitted on the default exchange"),
    ];
    for (bnd, code, text) in cases {
        c.expect_channel_error(&m(1, bnd), 1, code, text, (50, 20));
    }
}

#[test]
fn bind_with_an_empty_queue_name_and_no_queue_declared_is_not_found() {
    let (_b, mut c) = open();
    c.expect_channel_error(
        &m(1, bind("", "amq.direct", "k")),
        1,
        404,
        "NOT_FOUND - no previously declared queue",
        (50, 20),
    );
}

#[test]
fn a_headers_binding_needs_a_valid_x_match() {
    let (_b, mut c) = open();
    c.declare_queue(1, "q");
    let mut args = FieldTable::default();
    args.insert("x-match".into(), AMQPValue::LongString("foo".into()));
    c.expect_channel_error(
        &m(1, queue::Bind { arguments: args, ..bind("q", "amq.headers", "") }),
        1,
        406,
        "PRECONDITION_FAILED - Invalid x-match field value <<\"foo\">>; expected all, any, all-with-x, or any-with-x",
        (50, 20),
    );
}

#[test]
fn queue_unbind_rules() {
    let (_b, mut c) = open();
    c.declare_queue(1, "q");
    assert_names(&c.round(&m(1, bind("q", "amq.direct", "k"))), &["1 queue.bind-ok"]);
    assert_names(&c.round(&m(1, unbind("q", "amq.direct", "k"))), &["1 queue.unbind-ok"]);
    let mut bytes = message(1, "amq.direct", "k", b"x");
    bytes.extend(m(1, get("q", true)));
    assert_names(&c.round(&bytes), &["1 basic.get-empty"]);
    // Unbinding what is not bound, or from a missing exchange, succeeds.
    assert_names(&c.round(&m(1, unbind("q", "amq.direct", "k"))), &["1 queue.unbind-ok"]);
    assert_names(&c.round(&m(1, unbind("q", "nope", "k"))), &["1 queue.unbind-ok"]);
    c.expect_channel_error(
        &m(1, unbind("q", "", "q")),
        1,
        403,
        "ACCESS_REFUSED - operation not permitted on the default exchange",
        (50, 50),
    );
}

fn delete_ok(got: &[AMQPFrame]) -> u32 {
    match got {
        [AMQPFrame::Method(_, AMQPClass::Queue(queue::AMQPMethod::DeleteOk(ok)))] => ok.message_count,
        _ => panic!("expected queue.delete-ok, got {got:?}"),
    }
}

#[test]
fn queue_delete_if_unused_and_if_empty() {
    let (_b, mut c) = open();
    c.declare_queue(1, "q");
    c.feed(&message(1, "", "q", b"x"));
    c.expect_channel_error(
        &m(1, queue::Delete { if_empty: true, ..delete("q") }),
        1,
        406,
        "PRECONDITION_FAILED - queue 'q' in vhost '/' not empty",
        (50, 40),
    );
    c.open_channel(2);
    c.round(&m(2, consume("q", "c")));
    c.expect_channel_error(
        &m(1, queue::Delete { if_unused: true, ..delete("q") }),
        1,
        406,
        "PRECONDITION_FAILED - queue 'q' in vhost '/' in use",
        (50, 40),
    );
}

#[test]
fn queue_delete_reports_messages_and_cancels_consumers() {
    let (_b, mut c) = open();
    c.declare_queue(1, "q");
    let mut bytes = message(1, "", "q", b"a");
    bytes.extend(message(1, "", "q", b"b"));
    c.feed(&bytes);
    assert_eq!(delete_ok(&c.round(&m(1, delete("q")))), 2);
    // A missing queue deletes fine, with no messages.
    assert_eq!(delete_ok(&c.round(&m(1, delete("q")))), 0);
    // Without consumer_cancel_notify, a consumer is dropped without a word.
    c.declare_queue(1, "q2");
    c.open_channel(2);
    assert_names(&c.round(&m(2, consume("q2", "watcher"))), &["2 basic.consume-ok"]);
    assert_names(&c.round(&m(1, delete("q2"))), &["1 queue.delete-ok"]);
}

#[test]
fn a_consumer_that_asked_hears_of_its_queues_deletion() {
    let b = broker();
    let mut c = Client::open_with_capabilities(&b, &["consumer_cancel_notify"]);
    c.declare_queue(1, "q");
    c.open_channel(2);
    assert_names(&c.round(&m(2, consume("q", "watcher"))), &["2 basic.consume-ok"]);
    let got = c.round(&m(1, delete("q")));
    assert_names(&got, &["1 queue.delete-ok", "2 basic.cancel"]);
    let AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Cancel(cancel))) = &got[1] else { panic!() };
    assert_eq!((cancel.consumer_tag.as_str(), cancel.nowait), ("watcher", true));
    // The consumer is gone: its tag can be used again.
    c.declare_queue(1, "q");
    assert_names(&c.round(&m(2, consume("q", "watcher"))), &["2 basic.consume-ok"]);
}

#[test]
fn queue_purge_removes_ready_messages() {
    let (_b, mut c) = open();
    c.declare_queue(1, "q");
    let mut bytes = Vec::new();
    for i in 0..3 {
        bytes.extend(message(1, "", "q", format!("m{i}").as_bytes()));
    }
    c.feed(&bytes);
    let got = c.round(&m(1, purge("q")));
    let [AMQPFrame::Method(1, AMQPClass::Queue(queue::AMQPMethod::PurgeOk(ok)))] = &got[..] else {
        panic!("expected purge-ok, got {got:?}")
    };
    assert_eq!(ok.message_count, 3);
    assert_names(&c.round(&m(1, get("q", true))), &["1 basic.get-empty"]);
    c.expect_channel_error(&m(1, purge("missing")), 1, 404, "NOT_FOUND - no queue 'missing' in vhost '/'", (50, 30));
}

#[test]
fn an_invalid_queue_argument_is_refused() {
    let (_b, mut c) = open();
    let mut args = FieldTable::default();
    args.insert("x-message-ttl".into(), AMQPValue::LongInt(-1));
    c.expect_channel_error(
        &m(1, queue::Declare { arguments: args, ..declare("q") }),
        1,
        406,
        "PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q' in vhost '/': {value_negative,-1}",
        (50, 10),
    );
}
