//! basic.*: publish and return, consume and deliver, ack / nack / reject /
//! recover, qos, get, cancel.

use super::support::*;

/// Channel 1 open with queue `q` declared.
fn with_queue() -> (std::sync::Arc<crate::broker::Broker>, Client) {
    let (b, mut c) = open();
    c.declare_queue(1, "q");
    (b, c)
}

fn publish_n(c: &mut Client, n: usize) {
    let mut bytes = Vec::new();
    for i in 1..=n {
        bytes.extend(message(1, "", "q", format!("m{i}").as_bytes()));
    }
    assert!(c.round(&bytes).is_empty());
}

fn tags(frames: &[AMQPFrame]) -> Vec<u64> {
    messages(frames).iter().map(|d| d.tag()).collect()
}

#[test]
fn publish_to_a_missing_exchange_is_not_found() {
    let (_b, mut c) = open();
    c.expect_channel_error(
        &message(1, "nope", "k", b"x"),
        1,
        404,
        "NOT_FOUND - no exchange 'nope' in vhost '/'",
        (60, 40),
    );
}

#[test]
fn mandatory_unroutable_publish_is_returned_with_no_route() {
    let (_b, mut c) = open();
    let props = AMQPProperties::default().with_message_id("m-1".into());
    let p = basic::Publish { mandatory: true, ..publish("amq.direct", "nowhere") };
    let got = c.round(&content(1, p, props.clone(), b"back"));
    assert_names(&got, &["1 basic.return", "1 header", "1 body"]);
    let AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Return(r))) = &got[0] else { panic!("{got:?}") };
    assert_eq!(
        (r.reply_code, r.reply_text.as_str(), r.exchange.as_str(), r.routing_key.as_str()),
        (312, "NO_ROUTE", "amq.direct", "nowhere")
    );
    let d = messages(&got);
    assert_eq!((&d[0].body[..], &d[0].properties), (&b"back"[..], &props));
}

#[test]
fn unroutable_publish_without_mandatory_is_dropped_silently() {
    let (_b, mut c) = open();
    assert!(c.round(&message(1, "amq.direct", "nowhere", b"gone")).is_empty());
    assert!(c.round(&message(1, "", "no-such-queue", b"gone")).is_empty());
}

#[test]
fn consume_then_deliver() {
    let (_b, mut c) = with_queue();
    publish_n(&mut c, 1);
    let got = c.round(&m(1, consume("q", "ctag")));
    assert_names(&got, &["1 basic.consume-ok", "1 basic.deliver", "1 header", "1 body"]);
    let AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(ok))) = &got[0] else { panic!() };
    assert_eq!(ok.consumer_tag.as_str(), "ctag");
    let AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Deliver(d))) = &got[1] else { panic!() };
    assert_eq!(
        (d.consumer_tag.as_str(), d.delivery_tag, d.redelivered, d.exchange.as_str(), d.routing_key.as_str()),
        ("ctag", 1, false, "", "q")
    );
    assert_eq!(bodies(&got), ["m1"]);
    // A publish now is delivered in the same batch.
    let got = c.round(&message(1, "", "q", b"live"));
    assert_names(&got, &["1 basic.deliver", "1 header", "1 body"]);
    assert_eq!(tags(&got), [2]);
}

#[test]
fn consume_without_a_tag_gets_a_generated_one() {
    let (_b, mut c) = with_queue();
    let got = c.round(&m(1, consume("q", "")));
    let [AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(ok)))] = &got[..] else {
        panic!("{got:?}")
    };
    assert!(ok.consumer_tag.as_str().starts_with("amq.ctag-"), "{}", ok.consumer_tag);
}

#[test]
fn consume_from_a_missing_queue_is_not_found() {
    let (_b, mut c) = open();
    c.expect_channel_error(&m(1, consume("nope", "c")), 1, 404, "NOT_FOUND - no queue 'nope' in vhost '/'", (60, 20));
}

#[test]
fn consumer_tag_reuse_is_not_allowed() {
    let (_b, mut c) = with_queue();
    assert_names(&c.round(&m(1, consume("q", "dup"))), &["1 basic.consume-ok"]);
    c.expect_connection_error(
        &m(1, consume("q", "dup")),
        530,
        "NOT_ALLOWED - attempt to reuse consumer tag 'dup'",
        (60, 20),
    );
}

#[test]
fn the_same_consumer_tag_on_another_channel_is_fine() {
    let (_b, mut c) = with_queue();
    c.open_channel(2);
    assert_names(&c.round(&m(1, consume("q", "same"))), &["1 basic.consume-ok"]);
    assert_names(&c.round(&m(2, consume("q", "same"))), &["2 basic.consume-ok"]);
}

#[test]
fn an_exclusive_consumer_keeps_others_out() {
    let (_b, mut c) = with_queue();
    c.open_channel(2);
    let exclusive = basic::Consume { exclusive: true, ..consume("q", "only") };
    assert_names(&c.round(&m(1, exclusive)), &["1 basic.consume-ok"]);
    c.expect_channel_error(
        &m(2, consume("q", "second")),
        2,
        403,
        "ACCESS_REFUSED - queue 'q' in vhost '/' in exclusive use",
        (60, 20),
    );
}

#[test]
fn cancel_stops_deliveries() {
    let (_b, mut c) = with_queue();
    let mut bytes = m(1, basic::Consume { no_ack: true, ..consume("q", "c") });
    bytes.extend(m(1, cancel("c")));
    let got = c.round(&bytes);
    assert_names(&got, &["1 basic.consume-ok", "1 basic.cancel-ok"]);
    let AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::CancelOk(ok))) = &got[1] else { panic!() };
    assert_eq!(ok.consumer_tag.as_str(), "c");
    assert!(c.round(&message(1, "", "q", b"kept")).is_empty());
    c.expect_declare_ok(&m(1, passive("q")), "q", 1, 0);
    // Cancelling an unknown tag is answered all the same.
    assert_names(&c.round(&m(1, cancel("never"))), &["1 basic.cancel-ok"]);
}

#[test]
fn consumers_on_one_queue_take_turns() {
    let (_b, mut c) = with_queue();
    let mut bytes = m(1, basic::Consume { no_ack: true, ..consume("q", "a") });
    bytes.extend(m(1, basic::Consume { no_ack: true, ..consume("q", "b") }));
    c.feed(&bytes);
    c.output();
    let mut bytes = Vec::new();
    for i in 0..4 {
        bytes.extend(message(1, "", "q", format!("{i}").as_bytes()));
    }
    let got = messages(&c.round(&bytes));
    let who: Vec<&str> = got.iter().map(|d| d.consumer_tag()).collect();
    assert_eq!(who, ["a", "b", "a", "b"]);
}

#[test]
fn ack_removes_a_delivery_for_good() {
    let (_b, mut c) = with_queue();
    publish_n(&mut c, 1);
    assert_eq!(tags(&c.round(&m(1, get("q", false)))), [1]);
    assert!(c.round(&m(1, ack(1, false))).is_empty());
    assert_names(&c.round(&m(1, recover(true))), &["1 basic.recover-ok"]);
    assert_names(&c.round(&m(1, get("q", false))), &["1 basic.get-empty"]);
}

#[test]
fn ack_multiple_settles_every_tag_up_to_it() {
    let (_b, mut c) = with_queue();
    publish_n(&mut c, 3);
    assert_eq!(tags(&c.round(&m(1, consume("q", "c")))), [1, 2, 3]);
    assert!(c.round(&m(1, ack(2, true))).is_empty());
    // Only tag 3 is left: acking 1 again is an error.
    c.expect_channel_error(&m(1, ack(1, false)), 1, 406, "PRECONDITION_FAILED - unknown delivery tag 1", (60, 80));
    // The channel error requeued tag 3 only.
    c.expect_declare_ok(&m(1, passive("q")), "q", 1, 0);
}

#[test]
fn ack_multiple_with_tag_zero_settles_everything() {
    let (_b, mut c) = with_queue();
    publish_n(&mut c, 3);
    assert_eq!(tags(&c.round(&m(1, consume("q", "c")))), [1, 2, 3]);
    assert!(c.round(&m(1, ack(0, true))).is_empty());
    assert_names(&c.round(&m(1, ch_close())), &["1 channel.close-ok"]);
    c.open_channel(1);
    c.expect_declare_ok(&m(1, passive("q")), "q", 0, 0);
}

#[test]
fn unknown_delivery_tag_is_a_precondition_failure() {
    let (_b, mut c) = with_queue();
    c.expect_channel_error(&m(1, ack(5, false)), 1, 406, "PRECONDITION_FAILED - unknown delivery tag 5", (60, 80));
    c.expect_channel_error(
        &m(1, nack(6, false, true)),
        1,
        406,
        "PRECONDITION_FAILED - unknown delivery tag 6",
        (60, 120),
    );
    c.expect_channel_error(&m(1, reject(7, true)), 1, 406, "PRECONDITION_FAILED - unknown delivery tag 7", (60, 90));
}

#[test]
fn double_ack_is_an_unknown_delivery_tag() {
    let (_b, mut c) = with_queue();
    publish_n(&mut c, 1);
    c.round(&m(1, get("q", false)));
    let mut bytes = m(1, ack(1, false));
    bytes.extend(m(1, ack(1, false)));
    c.expect_channel_error(&bytes, 1, 406, "PRECONDITION_FAILED - unknown delivery tag 1", (60, 80));
}

#[test]
fn no_ack_deliveries_cannot_be_acked() {
    let (_b, mut c) = with_queue();
    publish_n(&mut c, 1);
    let got = c.round(&m(1, basic::Consume { no_ack: true, ..consume("q", "c") }));
    assert_eq!(tags(&got), [1]);
    c.expect_channel_error(&m(1, ack(1, false)), 1, 406, "PRECONDITION_FAILED - unknown delivery tag 1", (60, 80));
}

#[test]
fn nack_with_requeue_redelivers() {
    let (_b, mut c) = with_queue();
    publish_n(&mut c, 1);
    let got = messages(&c.round(&m(1, consume("q", "c"))));
    assert_eq!((got[0].tag(), got[0].redelivered()), (1, false));
    let got = messages(&c.round(&m(1, nack(1, false, true))));
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].tag(), got[0].redelivered(), &got[0].body[..]), (2, true, &b"m1"[..]));
}

#[test]
fn nack_multiple_requeues_in_the_original_order() {
    let (_b, mut c) = with_queue();
    publish_n(&mut c, 3);
    c.round(&m(1, get("q", false)));
    c.round(&m(1, get("q", false)));
    c.round(&m(1, get("q", false)));
    assert!(c.round(&m(1, nack(3, true, true))).is_empty());
    let mut bytes = Vec::new();
    for _ in 0..3 {
        bytes.extend(m(1, get("q", true)));
    }
    let got = messages(&c.round(&bytes));
    let seen: Vec<(u64, bool, &[u8])> = got.iter().map(|d| (d.tag(), d.redelivered(), &d.body[..])).collect();
    assert_eq!(seen, [(4, true, &b"m1"[..]), (5, true, &b"m2"[..]), (6, true, &b"m3"[..])]);
}

#[test]
fn reject_without_requeue_drops_the_message() {
    let (_b, mut c) = with_queue();
    publish_n(&mut c, 1);
    c.round(&m(1, get("q", false)));
    assert!(c.round(&m(1, reject(1, false))).is_empty());
    assert_names(&c.round(&m(1, recover(true))), &["1 basic.recover-ok"]);
    assert_names(&c.round(&m(1, get("q", true))), &["1 basic.get-empty"]);
}

#[test]
fn reject_with_requeue_puts_it_back() {
    let (_b, mut c) = with_queue();
    publish_n(&mut c, 1);
    c.round(&m(1, get("q", false)));
    assert!(c.round(&m(1, reject(1, true))).is_empty());
    let got = messages(&c.round(&m(1, get("q", true))));
    assert_eq!((got[0].tag(), got[0].redelivered()), (2, true));
}

#[test]
fn recover_redelivers_every_unacked_delivery_after_recover_ok() {
    let (_b, mut c) = with_queue();
    publish_n(&mut c, 2);
    assert_eq!(tags(&c.round(&m(1, consume("q", "c")))), [1, 2]);
    let got = c.round(&m(1, recover(true)));
    assert_names(
        &got,
        &["1 basic.recover-ok", "1 basic.deliver", "1 header", "1 body", "1 basic.deliver", "1 header", "1 body"],
    );
    let d = messages(&got);
    let seen: Vec<(u64, bool)> = d.iter().map(|d| (d.tag(), d.redelivered())).collect();
    assert_eq!(seen, [(3, true), (4, true)]);
}

#[test]
fn recover_async_redelivers_without_a_reply() {
    let (_b, mut c) = with_queue();
    publish_n(&mut c, 1);
    c.round(&m(1, consume("q", "c")));
    let got = c.round(&m(1, basic::RecoverAsync { requeue: true }));
    assert_names(&got, &["1 basic.deliver", "1 header", "1 body"]);
    assert!(messages(&got)[0].redelivered());
}

#[test]
fn recover_without_requeue_is_not_implemented() {
    let (_b, mut c) = with_queue();
    c.expect_connection_error(&m(1, recover(false)), 540, "NOT_IMPLEMENTED - requeue=false", (60, 110));
}

#[test]
fn qos_prefetch_limits_deliveries_in_flight() {
    let (_b, mut c) = with_queue();
    publish_n(&mut c, 5);
    assert_names(&c.round(&m(1, qos(2, false))), &["1 basic.qos-ok"]);
    assert_eq!(tags(&c.round(&m(1, consume("q", "c")))), [1, 2]);
    // Each ack makes room for one more.
    assert_eq!(tags(&c.round(&m(1, ack(1, false)))), [3]);
    assert_eq!(bodies(&c.round(&m(1, ack(3, false)))), ["m4"]);
    // Acking two at once lets two through (only one is left).
    assert_eq!(tags(&c.round(&m(1, ack(4, true)))), [5]);
    assert!(c.round(&m(1, ack(5, false))).is_empty());
}

#[test]
fn global_qos_limits_the_whole_channel() {
    let (_b, mut c) = with_queue();
    c.declare_queue(1, "q2");
    publish_n(&mut c, 2);
    let mut bytes = message(1, "", "q2", b"other1");
    bytes.extend(message(1, "", "q2", b"other2"));
    c.feed(&bytes);
    assert_names(&c.round(&m(1, qos(3, true))), &["1 basic.qos-ok"]);
    let mut bytes = m(1, consume("q", "a"));
    bytes.extend(m(1, consume("q2", "b")));
    let got = c.round(&bytes);
    assert_eq!(messages(&got).len(), 3, "three deliveries across both consumers: {got:?}");
    assert_eq!(messages(&c.round(&m(1, ack(0, true)))).len(), 1, "the fourth after the acks");
}

#[test]
fn qos_with_a_prefetch_size_is_not_implemented() {
    let (_b, mut c) = open();
    c.expect_connection_error(&qos_raw(1, 1000, 0, false), 540, "NOT_IMPLEMENTED - prefetch_size!=0 (1000)", (60, 10));
}

#[test]
fn get_reports_the_messages_left_then_get_empty() {
    let (_b, mut c) = with_queue();
    publish_n(&mut c, 2);
    let got = c.round(&m(1, get("q", true)));
    assert_names(&got, &["1 basic.get-ok", "1 header", "1 body"]);
    let AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::GetOk(ok))) = &got[0] else { panic!() };
    assert_eq!(
        (ok.delivery_tag, ok.redelivered, ok.exchange.as_str(), ok.routing_key.as_str(), ok.message_count),
        (1, false, "", "q", 1)
    );
    let got = c.round(&m(1, get("q", true)));
    let AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::GetOk(ok))) = &got[0] else { panic!() };
    assert_eq!((ok.delivery_tag, ok.message_count), (2, 0));
    assert_names(&c.round(&m(1, get("q", true))), &["1 basic.get-empty"]);
}

#[test]
fn get_from_a_missing_queue_is_not_found() {
    let (_b, mut c) = open();
    c.expect_channel_error(&m(1, get("nope", true)), 1, 404, "NOT_FOUND - no queue 'nope' in vhost '/'", (60, 70));
}

#[test]
fn deliveries_cross_connections() {
    let b = broker();
    let mut consumer = Client::open(&b);
    consumer.declare_queue(1, "q");
    assert_names(&consumer.round(&m(1, consume("q", "c"))), &["1 basic.consume-ok"]);
    let mut publisher = Client::open(&b);
    assert!(publisher.round(&message(1, "", "q", b"hello")).is_empty());
    let got = consumer.poll();
    assert_names(&got, &["1 basic.deliver", "1 header", "1 body"]);
    assert_eq!(bodies(&got), ["hello"]);
}

#[test]
fn direct_topic_and_fanout_routing() {
    let (_b, mut c) = open();
    for q in ["d", "t", "f"] {
        c.declare_queue(1, q);
    }
    let mut bytes = m(1, bind("d", "amq.direct", "k"));
    bytes.extend(m(1, bind("t", "amq.topic", "a.*.c")));
    bytes.extend(m(1, bind("f", "amq.fanout", "ignored")));
    assert_names(&c.round(&bytes), &["1 queue.bind-ok", "1 queue.bind-ok", "1 queue.bind-ok"]);
    let mut bytes = message(1, "amq.direct", "k", b"direct");
    bytes.extend(message(1, "amq.direct", "other", b"lost"));
    bytes.extend(message(1, "amq.topic", "a.b.c", b"topic"));
    bytes.extend(message(1, "amq.topic", "a.b.c.d", b"lost"));
    bytes.extend(message(1, "amq.fanout", "anything", b"fanout"));
    c.feed(&bytes);
    for (q, want) in [("d", "direct"), ("t", "topic"), ("f", "fanout")] {
        let got = c.round(&m(1, get(q, true)));
        let AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::GetOk(ok))) = &got[0] else { panic!("{got:?}") };
        assert_eq!((bodies(&got)[0].as_str(), ok.message_count), (want, 0), "queue {q}");
    }
}
