//! Publisher confirms (confirm.select) and transactions (tx.*), and the
//! rule that a channel is in one mode or the other.

use super::support::*;

fn confirm_ack(f: &AMQPFrame) -> (u16, u64, bool) {
    match f {
        AMQPFrame::Method(ch, AMQPClass::Basic(basic::AMQPMethod::Ack(a))) => (*ch, a.delivery_tag, a.multiple),
        _ => panic!("expected basic.ack, got {f:?}"),
    }
}

fn confirming() -> (std::sync::Arc<crate::broker::Broker>, Client) {
    let (b, mut c) = open();
    c.declare_queue(1, "q");
    assert_names(&c.round(&m(1, confirm_select())), &["1 confirm.select-ok"]);
    (b, c)
}

#[test]
fn a_confirmed_publish_is_acked_with_its_sequence_number() {
    let (_b, mut c) = confirming();
    let got = c.round(&message(1, "", "q", b"one"));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(confirm_ack(&got[0]), (1, 1, false));
    let got = c.round(&message(1, "", "q", b"two"));
    assert_eq!(confirm_ack(&got[0]), (1, 2, false));
}

#[test]
fn a_batch_of_publishes_is_confirmed_with_one_multiple_ack() {
    let (_b, mut c) = confirming();
    let mut bytes = Vec::new();
    for i in 0..3 {
        bytes.extend(message(1, "", "q", format!("{i}").as_bytes()));
    }
    let got = c.round(&bytes);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(confirm_ack(&got[0]), (1, 3, true));
    // The next one alone is not multiple.
    let got = c.round(&message(1, "", "q", b"4"));
    assert_eq!(confirm_ack(&got[0]), (1, 4, false));
}

#[test]
fn unroutable_publishes_are_confirmed_too() {
    let (_b, mut c) = confirming();
    let got = c.round(&message(1, "amq.direct", "nowhere", b"x"));
    assert_eq!(confirm_ack(&got[0]), (1, 1, false));
}

#[test]
fn a_mandatory_return_comes_before_its_confirm() {
    let (_b, mut c) = confirming();
    let p = basic::Publish { mandatory: true, ..publish("amq.direct", "nowhere") };
    let got = c.round(&content(1, p, AMQPProperties::default(), b"x"));
    assert_names(&got, &["1 basic.return", "1 header", "1 body", "1 basic.ack"]);
    assert_eq!(confirm_ack(&got[3]), (1, 1, false));
}

#[test]
fn confirm_select_nowait_sends_nothing_but_confirms() {
    let (_b, mut c) = open();
    c.declare_queue(1, "q");
    assert!(c.round(&m(1, confirm::Select { nowait: true })).is_empty());
    let got = c.round(&message(1, "", "q", b"x"));
    assert_eq!(confirm_ack(&got[0]), (1, 1, false));
}

#[test]
fn confirm_select_twice_is_fine_and_keeps_counting() {
    let (_b, mut c) = confirming();
    c.round(&message(1, "", "q", b"x"));
    assert_names(&c.round(&m(1, confirm_select())), &["1 confirm.select-ok"]);
    let got = c.round(&message(1, "", "q", b"y"));
    assert_eq!(confirm_ack(&got[0]), (1, 2, false));
}

#[test]
fn confirms_are_counted_per_channel() {
    let (_b, mut c) = confirming();
    c.open_channel(2);
    assert_names(&c.round(&m(2, confirm_select())), &["2 confirm.select-ok"]);
    let mut bytes = message(1, "", "q", b"a");
    bytes.extend(message(2, "", "q", b"b"));
    bytes.extend(message(1, "", "q", b"c"));
    let got = c.round(&bytes);
    let mut acks: Vec<(u16, u64, bool)> = got.iter().map(confirm_ack).collect();
    acks.sort_unstable();
    assert_eq!(acks, [(1, 2, true), (2, 1, false)]);
}

#[test]
fn a_rejecting_queue_gets_a_nack() {
    let (_b, mut c) = open();
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongInt(1));
    args.insert("x-overflow".into(), AMQPValue::LongString("reject-publish".into()));
    c.expect_declare_ok(&m(1, queue::Declare { arguments: args, ..declare("full") }), "full", 0, 0);
    c.round(&m(1, confirm_select()));
    let got = c.round(&message(1, "", "full", b"fits"));
    assert_eq!(confirm_ack(&got[0]), (1, 1, false));
    let got = c.round(&message(1, "", "full", b"rejected"));
    let [AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Nack(n)))] = &got[..] else {
        panic!("expected basic.nack, got {got:?}")
    };
    assert_eq!((n.delivery_tag, n.multiple), (2, false));
}

#[test]
fn a_failed_publish_in_confirm_mode_closes_the_channel_without_a_confirm() {
    let (_b, mut c) = confirming();
    let got = c.round(&message(1, "nope", "", b"x"));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_channel_close(&got[0], 1, 404, "NOT_FOUND - no exchange 'nope' in vhost '/'", (60, 40));
}

#[test]
fn tx_select_after_confirm_is_refused() {
    let (_b, mut c) = confirming();
    c.expect_channel_error(
        &m(1, tx_select()),
        1,
        406,
        "PRECONDITION_FAILED - cannot switch from confirm to tx mode",
        (90, 10),
    );
}

#[test]
fn confirm_select_after_tx_is_refused() {
    let (_b, mut c) = open();
    assert_names(&c.round(&m(1, tx_select())), &["1 tx.select-ok"]);
    c.expect_channel_error(
        &m(1, confirm_select()),
        1,
        406,
        "PRECONDITION_FAILED - cannot switch from tx to confirm mode",
        (85, 10),
    );
}

#[test]
fn commit_and_rollback_without_select_are_refused() {
    let (_b, mut c) = open();
    c.expect_channel_error(&m(1, tx_commit()), 1, 406, "PRECONDITION_FAILED - channel is not transactional", (90, 20));
    c.expect_channel_error(
        &m(1, tx_rollback()),
        1,
        406,
        "PRECONDITION_FAILED - channel is not transactional",
        (90, 30),
    );
}

#[test]
fn transactional_publishes_wait_for_commit() {
    let (_b, mut c) = open();
    c.declare_queue(1, "q");
    c.open_channel(2);
    assert_names(&c.round(&m(1, tx_select())), &["1 tx.select-ok"]);
    let mut bytes = message(1, "", "q", b"a");
    bytes.extend(message(1, "", "q", b"b"));
    assert!(c.round(&bytes).is_empty());
    c.expect_declare_ok(&m(2, passive("q")), "q", 0, 0);
    assert_names(&c.round(&m(1, tx_commit())), &["1 tx.commit-ok"]);
    c.expect_declare_ok(&m(2, passive("q")), "q", 2, 0);
    // The channel stays transactional: the next publish waits again.
    c.feed(&message(1, "", "q", b"c"));
    c.expect_declare_ok(&m(2, passive("q")), "q", 2, 0);
}

#[test]
fn rollback_discards_the_publishes() {
    let (_b, mut c) = open();
    c.declare_queue(1, "q");
    c.round(&m(1, tx_select()));
    c.feed(&message(1, "", "q", b"a"));
    assert_names(&c.round(&m(1, tx_rollback())), &["1 tx.rollback-ok"]);
    assert_names(&c.round(&m(1, tx_commit())), &["1 tx.commit-ok"]);
    c.expect_declare_ok(&m(1, passive("q")), "q", 0, 0);
}

#[test]
fn a_mandatory_transactional_publish_is_returned_at_commit() {
    let (_b, mut c) = open();
    c.round(&m(1, tx_select()));
    let p = basic::Publish { mandatory: true, ..publish("amq.direct", "nowhere") };
    assert!(c.round(&content(1, p, AMQPProperties::default(), b"x")).is_empty());
    let got = c.round(&m(1, tx_commit()));
    assert_names(&got, &["1 basic.return", "1 header", "1 body", "1 tx.commit-ok"]);
}

#[test]
fn transactional_acks_take_effect_at_commit() {
    let (_b, mut c) = open();
    c.declare_queue(1, "q");
    c.feed(&message(1, "", "q", b"a"));
    c.round(&m(1, tx_select()));
    assert_eq!(messages(&c.round(&m(1, get("q", false))))[0].tag(), 1);
    c.feed(&m(1, ack(1, false)));
    assert_names(&c.round(&m(1, tx_rollback())), &["1 tx.rollback-ok"]);
    // Rolled back: the delivery is still unacked and comes back on recover.
    let got = c.round(&m(1, recover(true)));
    assert_names(&got, &["1 basic.recover-ok"]);
    let got = messages(&c.round(&m(1, get("q", false))));
    assert_eq!((got[0].tag(), got[0].redelivered()), (2, true));
    c.feed(&m(1, ack(2, false)));
    assert_names(&c.round(&m(1, tx_commit())), &["1 tx.commit-ok"]);
    assert_names(&c.round(&m(1, recover(true))), &["1 basic.recover-ok"]);
    assert_names(&c.round(&m(1, get("q", false))), &["1 basic.get-empty"]);
}
