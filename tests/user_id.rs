//! Validated user_id: a published `user_id` property must be the
//! authenticated user's name, or the channel is closed with 406.
mod common;

use common::*;
use lapin::{options::*, BasicProperties};

fn as_user(u: &str) -> BasicProperties {
    BasicProperties::default().with_user_id(u.into())
}

#[tokio::test]
async fn matching_user_id_is_delivered_unchanged() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    let conf =
        within(ch.basic_publish("".into(), q.name().clone(), BasicPublishOptions::default(), b"me", as_user("guest")))
            .await
            .unwrap();
    assert!(within(conf).await.unwrap().is_ack());
    let m = within(ch.basic_get(q.name().clone(), BasicGetOptions { no_ack: true })).await.unwrap().unwrap();
    assert_eq!(m.delivery.properties.user_id().as_ref().map(|s| s.as_str()), Some("guest"));
}

#[tokio::test]
async fn no_user_id_is_fine() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    publish_confirmed(&ch, "", q.name().as_str(), b"anon").await;
    let m = within(ch.basic_get(q.name().clone(), BasicGetOptions { no_ack: true })).await.unwrap().unwrap();
    assert_eq!(m.delivery.properties.user_id(), &None, "the broker does not add a user_id");
}

async fn expect_rejected(user: &str) {
    let b = broker().await;
    let c = connect(&b).await;
    let mut ev = events(&c);
    let ch = within(c.create_channel()).await.unwrap();
    let q = declare_queue(&ch, "").await;
    publish_props(&ch, "", q.name().as_str(), b"x", as_user(user)).await;
    assert_amqp_error(
        next_error(&mut ev).await,
        406,
        &format!("PRECONDITION_FAILED - user_id property set to '{user}' but authenticated user was 'guest'"),
    );
    // the connection survives, and the message was not enqueued
    let ch2 = within(c.create_channel()).await.unwrap();
    assert_eq!(message_count(&ch2, q.name().as_str()).await, 0);
}

#[tokio::test]
async fn other_user_id_is_rejected() {
    expect_rejected("mallory").await;
}

#[tokio::test]
async fn user_id_comparison_is_case_sensitive() {
    expect_rejected("Guest").await;
}

#[tokio::test]
async fn empty_user_id_is_rejected() {
    expect_rejected("").await;
}

#[tokio::test]
async fn rejected_user_id_on_a_confirm_channel_closes_it_without_ack() {
    let b = broker().await;
    let c = connect(&b).await;
    let mut ev = events(&c);
    let ch = confirm_channel(&c).await;
    let q = declare_queue(&ch, "").await;
    let conf = within(ch.basic_publish(
        "".into(),
        q.name().clone(),
        BasicPublishOptions::default(),
        b"x",
        as_user("someone-else"),
    ))
    .await
    .unwrap();
    assert_amqp_error(
        next_error(&mut ev).await,
        406,
        "PRECONDITION_FAILED - user_id property set to 'someone-else' but authenticated user was 'guest'",
    );
    assert!(within(conf).await.is_err(), "no ack for the rejected publish");
}

#[tokio::test]
async fn user_id_is_checked_even_when_unroutable() {
    let b = broker().await;
    let c = connect(&b).await;
    let mut ev = events(&c);
    let ch = within(c.create_channel()).await.unwrap();
    publish_props(&ch, "amq.direct", &unique("nobody"), b"x", as_user("bob")).await;
    assert_amqp_error(
        next_error(&mut ev).await,
        406,
        "PRECONDITION_FAILED - user_id property set to 'bob' but authenticated user was 'guest'",
    );
}

#[tokio::test]
async fn user_id_is_checked_inside_a_transaction() {
    let b = broker().await;
    let c = connect(&b).await;
    let mut ev = events(&c);
    let ch = within(c.create_channel()).await.unwrap();
    within(ch.tx_select()).await.unwrap();
    let q = declare_queue(&ch, "").await;
    publish_props(&ch, "", q.name().as_str(), b"x", as_user("bob")).await;
    assert_amqp_error(
        next_error(&mut ev).await,
        406,
        "PRECONDITION_FAILED - user_id property set to 'bob' but authenticated user was 'guest'",
    );
}
