//! Transactions (tx.select / tx.commit / tx.rollback) for publishes and
//! acknowledgements, and the tx/confirm mode-switch errors.
mod common;

use common::*;
use lapin::{options::*, types::FieldTable, Channel, Connection};

async fn tx_channel(c: &Connection) -> Channel {
    let ch = within(c.create_channel()).await.expect("create_channel");
    within(ch.tx_select()).await.expect("tx.select");
    ch
}

#[tokio::test]
async fn publishes_are_invisible_until_commit() {
    let b = broker().await;
    let c = connect(&b).await;
    let ch = tx_channel(&c).await;
    let observer = within(c.create_channel()).await.unwrap();
    let q = declare_queue(&observer, "").await.name().to_string();
    publish(&ch, "", &q, b"t1").await;
    publish(&ch, "", &q, b"t2").await;
    assert_eq!(get_body(&observer, &q).await, None, "uncommitted");
    assert_eq!(message_count(&observer, &q).await, 0);
    within(ch.tx_commit()).await.unwrap();
    assert_eq!(message_count(&observer, &q).await, 2);
    assert_eq!(drain(&observer, &q).await, ["t1", "t2"]);
}

#[tokio::test]
async fn rollback_discards_publishes() {
    let b = broker().await;
    let c = connect(&b).await;
    let ch = tx_channel(&c).await;
    let observer = within(c.create_channel()).await.unwrap();
    let q = declare_queue(&observer, "").await.name().to_string();
    publish(&ch, "", &q, b"discarded").await;
    within(ch.tx_rollback()).await.unwrap();
    within(ch.tx_commit()).await.unwrap();
    assert_eq!(message_count(&observer, &q).await, 0);
    // the channel is still transactional
    publish(&ch, "", &q, b"kept").await;
    assert_eq!(get_body(&observer, &q).await, None);
    within(ch.tx_commit()).await.unwrap();
    assert_eq!(drain(&observer, &q).await, ["kept"]);
}

#[tokio::test]
async fn each_commit_starts_a_new_transaction() {
    let b = broker().await;
    let c = connect(&b).await;
    let ch = tx_channel(&c).await;
    let observer = within(c.create_channel()).await.unwrap();
    let q = declare_queue(&observer, "").await.name().to_string();
    publish(&ch, "", &q, b"one").await;
    within(ch.tx_commit()).await.unwrap();
    publish(&ch, "", &q, b"two").await;
    within(ch.tx_rollback()).await.unwrap();
    publish(&ch, "", &q, b"three").await;
    within(ch.tx_commit()).await.unwrap();
    assert_eq!(drain(&observer, &q).await, ["one", "three"]);
}

#[tokio::test]
async fn empty_commit_and_rollback_are_fine() {
    let b = broker().await;
    let c = connect(&b).await;
    let ch = tx_channel(&c).await;
    within(ch.tx_commit()).await.unwrap();
    within(ch.tx_rollback()).await.unwrap();
    within(ch.tx_select()).await.expect("tx.select again is a no-op");
    within(ch.tx_commit()).await.unwrap();
}

#[tokio::test]
async fn acks_take_effect_on_commit() {
    let b = broker().await;
    let c = connect(&b).await;
    let setup = confirm_channel(&c).await;
    let q = unique("tx-ack");
    declare_queue(&setup, &q).await;
    publish_confirmed(&setup, "", &q, b"m").await;
    let ch = tx_channel(&c).await;
    let m = within(ch.basic_get(q.as_str().into(), BasicGetOptions::default())).await.unwrap().unwrap();
    within(ch.basic_ack(m.delivery.delivery_tag, BasicAckOptions::default())).await.unwrap();
    within(ch.tx_commit()).await.unwrap();
    within(ch.close(200, "bye".into())).await.unwrap();
    // acked: nothing comes back when the channel closes
    assert_eq!(message_count(&setup, &q).await, 0);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn rolled_back_acks_leave_messages_unacked() {
    let b = broker().await;
    let c = connect(&b).await;
    let setup = confirm_channel(&c).await;
    let q = unique("tx-ack-rollback");
    declare_queue(&setup, &q).await;
    publish_confirmed(&setup, "", &q, b"m").await;
    let ch = tx_channel(&c).await;
    let m = within(ch.basic_get(q.as_str().into(), BasicGetOptions::default())).await.unwrap().unwrap();
    within(ch.basic_ack(m.delivery.delivery_tag, BasicAckOptions::default())).await.unwrap();
    within(ch.tx_rollback()).await.unwrap();
    // still unacked (not requeued by the rollback)
    assert_eq!(message_count(&setup, &q).await, 0);
    within(ch.close(200, "bye".into())).await.unwrap();
    // closing the channel requeues the unacked message
    assert_eq!(message_count(&setup, &q).await, 1);
    let again = within(setup.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })).await.unwrap().unwrap();
    assert!(again.delivery.redelivered);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn rolled_back_ack_can_be_acked_again() {
    let b = broker().await;
    let c = connect(&b).await;
    let setup = confirm_channel(&c).await;
    let q = unique("tx-ack-again");
    declare_queue(&setup, &q).await;
    publish_confirmed(&setup, "", &q, b"m").await;
    let ch = tx_channel(&c).await;
    let m = within(ch.basic_get(q.as_str().into(), BasicGetOptions::default())).await.unwrap().unwrap();
    within(ch.basic_ack(m.delivery.delivery_tag, BasicAckOptions::default())).await.unwrap();
    within(ch.tx_rollback()).await.unwrap();
    within(ch.basic_ack(m.delivery.delivery_tag, BasicAckOptions::default())).await.unwrap();
    within(ch.tx_commit()).await.unwrap();
    within(ch.close(200, "bye".into())).await.unwrap();
    assert_eq!(message_count(&setup, &q).await, 0);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn reject_with_requeue_waits_for_commit() {
    let b = broker().await;
    let c = connect(&b).await;
    let setup = confirm_channel(&c).await;
    let q = unique("tx-reject");
    declare_queue(&setup, &q).await;
    publish_confirmed(&setup, "", &q, b"m").await;
    let ch = tx_channel(&c).await;
    let m = within(ch.basic_get(q.as_str().into(), BasicGetOptions::default())).await.unwrap().unwrap();
    within(ch.basic_reject(m.delivery.delivery_tag, BasicRejectOptions { requeue: true })).await.unwrap();
    assert_eq!(get_body(&setup, &q).await, None, "not requeued before commit");
    within(ch.tx_commit()).await.unwrap();
    assert_eq!(get_body(&setup, &q).await.as_deref(), Some(&b"m"[..]));
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn publish_and_ack_commit_together() {
    let b = broker().await;
    let c = connect(&b).await;
    let setup = confirm_channel(&c).await;
    let (inq, outq) = (unique("tx-in"), unique("tx-out"));
    declare_queue(&setup, &inq).await;
    declare_queue(&setup, &outq).await;
    publish_confirmed(&setup, "", &inq, b"work").await;
    let ch = tx_channel(&c).await;
    let m = within(ch.basic_get(inq.as_str().into(), BasicGetOptions::default())).await.unwrap().unwrap();
    publish(&ch, "", &outq, b"result").await;
    within(ch.basic_ack(m.delivery.delivery_tag, BasicAckOptions::default())).await.unwrap();
    assert_eq!(message_count(&setup, &outq).await, 0);
    within(ch.tx_commit()).await.unwrap();
    within(ch.close(200, "bye".into())).await.unwrap();
    assert_eq!(message_count(&setup, &inq).await, 0);
    assert_eq!(drain(&setup, &outq).await, ["result"]);
    cleanup_queue(&b, &inq).await;
    cleanup_queue(&b, &outq).await;
}

#[tokio::test]
async fn consumer_acks_in_a_transaction() {
    let b = broker().await;
    let c = connect(&b).await;
    let setup = confirm_channel(&c).await;
    let q = unique("tx-consumer");
    declare_queue(&setup, &q).await;
    let ch = tx_channel(&c).await;
    let mut consumer =
        within(ch.basic_consume(q.as_str().into(), "tx".into(), BasicConsumeOptions::default(), FieldTable::default()))
            .await
            .unwrap();
    publish_confirmed(&setup, "", &q, b"a").await;
    publish_confirmed(&setup, "", &q, b"b").await;
    let _d1 = next_delivery(&mut consumer).await;
    let d2 = next_delivery(&mut consumer).await;
    within(ch.basic_ack(d2.delivery_tag, BasicAckOptions { multiple: true })).await.unwrap();
    within(ch.tx_commit()).await.unwrap();
    within(ch.basic_cancel("tx".into(), BasicCancelOptions::default())).await.unwrap();
    within(ch.close(200, "bye".into())).await.unwrap();
    assert_eq!(message_count(&setup, &q).await, 0);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn commit_without_select_is_an_error() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    assert_amqp_error(within(ch.tx_commit()).await, 406, "PRECONDITION_FAILED - channel is not transactional");
}

#[tokio::test]
async fn rollback_without_select_is_an_error() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    assert_amqp_error(within(ch.tx_rollback()).await, 406, "PRECONDITION_FAILED - channel is not transactional");
}

#[tokio::test]
async fn confirm_select_on_a_tx_channel_is_an_error() {
    let b = broker().await;
    let c = connect(&b).await;
    let ch = tx_channel(&c).await;
    assert_amqp_error(
        within(ch.confirm_select(ConfirmSelectOptions::default())).await,
        406,
        "PRECONDITION_FAILED - cannot switch from tx to confirm mode",
    );
    // a channel error: the connection is still usable
    let ch2 = within(c.create_channel()).await.unwrap();
    declare_queue(&ch2, "").await;
}

#[tokio::test]
async fn tx_select_on_a_confirm_channel_is_an_error() {
    let b = broker().await;
    let c = connect(&b).await;
    let ch = confirm_channel(&c).await;
    assert_amqp_error(within(ch.tx_select()).await, 406, "PRECONDITION_FAILED - cannot switch from confirm to tx mode");
    let ch2 = within(c.create_channel()).await.unwrap();
    declare_queue(&ch2, "").await;
}

#[tokio::test]
async fn unroutable_mandatory_in_tx_is_returned() {
    let b = broker().await;
    let c = connect(&b).await;
    let ch = tx_channel(&c).await;
    within(ch.basic_publish(
        "amq.direct".into(),
        unique("tx-nobody").as_str().into(),
        BasicPublishOptions { mandatory: true, ..Default::default() },
        b"ret",
        lapin::BasicProperties::default(),
    ))
    .await
    .unwrap();
    within(ch.tx_commit()).await.unwrap();
    // outside confirm mode lapin hands basic.returns out here; the return
    // comes before commit-ok
    let returned = within(ch.wait_for_confirms()).await.unwrap();
    assert_eq!(returned.len(), 1, "one basic.return by the time of commit-ok");
    assert_eq!((returned[0].reply_code, returned[0].reply_text.as_str()), (312, "NO_ROUTE"));
    assert_eq!(returned[0].delivery.data, b"ret");
}
