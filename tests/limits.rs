//! RabbitMQ's limits: max_message_size, handshake_timeout, and Warren's
//! connection-rate limit on the listener, with real clients over real sockets.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_lite::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions};
use lapin::types::FieldTable;
use lapin::BasicProperties;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn a_body_over_max_message_size_closes_the_channel_with_rabbitmqs_text() {
    if external() {
        return; // needs a broker configured with a small max_message_size
    }
    let b = broker_with(|c| c.max_message_size = 1000).await;
    let (c, ch) = connect_confirm_channel(&b).await;
    let q = unique("mms");
    declare_queue(&ch, &q).await;
    // Exactly the limit is allowed, as in RabbitMQ (the check is `>`).
    publish_confirmed(&ch, "", &q, &[7u8; 1000]).await;
    let mut ev = events(&c);
    let r = async {
        within(ch.basic_publish(
            "".into(),
            q.as_str().into(),
            BasicPublishOptions::default(),
            &[7u8; 1001],
            BasicProperties::default(),
        ))
        .await?
        .await?;
        Ok::<_, lapin::Error>(())
    }
    .await;
    let r = if r.is_err() { r } else { next_error(&mut ev).await };
    assert_amqp_error(r, 406, "PRECONDITION_FAILED - message size 1001 is larger than configured max size 1000");
    // Only the channel: the connection still works.
    let ch2 = within(c.create_channel()).await.expect("a new channel after the 406");
    let q2 = within(ch2.queue_declare(q.as_str().into(), Default::default(), FieldTable::default())).await.unwrap();
    assert_eq!(q2.message_count(), 1, "the message at the limit was enqueued, the one over it not");
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn a_client_that_never_finishes_the_handshake_is_dropped_at_handshake_timeout() {
    if external() {
        return;
    }
    let b = broker_with(|c| c.handshake_timeout = Duration::from_millis(300)).await;
    let started = Instant::now();
    let mut s = TcpStream::connect(b.addr()).await.unwrap();
    // Silent after connect: not even the protocol header.
    let mut buf = [0u8; 64];
    let n = within(s.read(&mut buf)).await;
    assert!(matches!(n, Ok(0) | Err(_)), "the broker closes the socket, got {n:?}");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(290) && took < Duration::from_secs(5), "closed after {took:?}");

    // After the header, the timer runs again for the methods.
    let started = Instant::now();
    let mut s = TcpStream::connect(b.addr()).await.unwrap();
    s.write_all(b"AMQP\x00\x00\x09\x01").await.unwrap();
    let mut got = Vec::new();
    within(async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(!got.is_empty(), "connection.start was sent before the timeout");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(290) && took < Duration::from_secs(5), "closed after {took:?}");
}

/// One connect of the storm: TCP connect, protocol header, wait for
/// connection.start (proof the broker accepted it), drop.
async fn storm_connect(addr: std::net::SocketAddr) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        s.write_all(b"AMQP\x00\x00\x09\x01").await.ok()?;
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf).await.ok()?;
        (n > 0).then_some(())
    };
    tokio::time::timeout(Duration::from_secs(20), attempt).await.ok().flatten().is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_storm_is_paced_and_an_established_client_keeps_its_round_trips() {
    if external() {
        return;
    }
    const RATE: u32 = 500;
    const STORM: usize = 1500;
    const CONCURRENCY: usize = 100;
    let b = broker_with(|c| c.connection_rate_limit = Some(RATE)).await;
    let addr = b.addr();

    // The established client: publish and consume one message at a time.
    let (c, ch) = connect_channel(&b).await;
    let q = unique("storm");
    declare_queue(&ch, &q).await;
    let mut consumer =
        within(ch.basic_consume(q.as_str().into(), "".into(), BasicConsumeOptions::default(), FieldTable::default()))
            .await
            .unwrap();

    let storm = tokio::spawn(async move {
        let started = Instant::now();
        let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..CONCURRENCY {
            let next = std::sync::Arc::clone(&next);
            workers.spawn(async move {
                let mut ok = 0usize;
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < STORM {
                    ok += usize::from(storm_connect(addr).await);
                }
                ok
            });
        }
        let mut accepted = 0;
        while let Some(n) = workers.join_next().await {
            accepted += n.unwrap();
        }
        (accepted, started.elapsed())
    });

    let mut worst = Duration::ZERO;
    let mut total = Duration::ZERO;
    let mut rounds = 0u32;
    while !storm.is_finished() {
        let t = Instant::now();
        publish(&ch, "", &q, b"ping").await;
        let d = within(consumer.next()).await.expect("consumer ended").expect("delivery");
        within(d.ack(BasicAckOptions::default())).await.unwrap();
        let rtt = t.elapsed();
        worst = worst.max(rtt);
        total += rtt;
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (accepted, took) = storm.await.unwrap();
    eprintln!(
        "storm: {accepted}/{STORM} accepted in {took:?} at {RATE}/s; established client: {rounds} round trips, \
         mean {:?}, worst {worst:?}",
        total / rounds.max(1)
    );
    assert_eq!(accepted, STORM, "every storm connection is accepted in the end, only later");
    // The bucket holds one second's burst, then RATE a second.
    let floor = Duration::from_secs_f64((STORM as f64 - RATE as f64) / RATE as f64 * 0.9);
    assert!(took >= floor, "{STORM} connections took {took:?}: the rate limit did not pace them (>= {floor:?})");
    assert!(rounds >= 10, "the established client made only {rounds} round trips during the storm");
    assert!(worst < Duration::from_secs(1), "an established client's round trip took {worst:?} during the storm");
    drop(consumer);
    cleanup_queue(&b, &q).await;
    let _ = c.close(200, "bye".into()).await;
}
