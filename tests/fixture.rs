//! `warren::Server::builder()` and its inspection helpers, as a test author
//! uses them (the lib.rs doctest runs the one-line example too).

use std::io::ErrorKind;
use std::time::Duration;

use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};

async fn login(server: &warren::Server, user: &str, pass: &str, vhost: &str) -> lapin::Result<Connection> {
    let vhost = if vhost == "/" { "%2f" } else { vhost };
    Connection::connect(
        &format!("amqp://{user}:{pass}@{}/{vhost}", server.local_addr()),
        ConnectionProperties::default(),
    )
    .await
}

#[tokio::test]
async fn the_builder_makes_users_and_vhosts_that_just_work() {
    let server = warren::Server::builder()
        .in_memory()
        .user("app", "secret")
        .user("other", "pw")
        .vhost("tenant-a")
        .management()
        .start()
        .await
        .expect("start");
    for (user, pass) in [("app", "secret"), ("other", "pw"), ("guest", "guest")] {
        for vhost in ["/", "tenant-a"] {
            let conn = login(&server, user, pass, vhost).await.unwrap_or_else(|e| panic!("{user} on {vhost}: {e}"));
            let ch = conn.create_channel().await.unwrap();
            ch.queue_declare("q".into(), QueueDeclareOptions::default(), FieldTable::default())
                .await
                .unwrap_or_else(|e| panic!("{user} may configure on {vhost}: {e}"));
            conn.close(200, "".into()).await.unwrap();
        }
    }
    assert!(login(&server, "app", "wrong", "/").await.is_err(), "a wrong password is still refused");
    assert!(login(&server, "app", "secret", "nowhere").await.is_err(), "an unknown vhost is still refused");
    assert!(server.management_addr().is_some());
    server.shutdown().await;
}

#[tokio::test]
async fn inspection_helpers_wait_for_clients_and_name_what_is_missing() {
    let server = warren::Server::builder().vhost("v").start().await.unwrap();
    let conn = login(&server, "guest", "guest", "v").await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare("jobs".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();

    let err = server.wait_until_consumers("v", "jobs", 1, Duration::from_millis(30)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(err.to_string().contains("did not reach 1 consumers"), "{err}");

    ch.basic_consume("jobs".into(), "worker".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();
    server.wait_until_consumers("v", "jobs", 1, Duration::from_secs(5)).await.unwrap();
    assert_eq!(server.queue("v", "jobs").unwrap().consumer_count(), 1);

    let err = server.queue("v", "nope").unwrap_err();
    assert_eq!((err.kind(), err.to_string()), (ErrorKind::NotFound, "no queue 'nope' in vhost 'v'".to_owned()));
    let err = server.queue("w", "jobs").unwrap_err();
    assert_eq!(err.to_string(), "no vhost 'w'");
    server.shutdown().await;
}
