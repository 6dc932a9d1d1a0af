//! Fault injection (`--allow-fault-injection`, `/api/warren/faults/...`):
//! a connection closed with a chosen code, or its socket dropped without a
//! close frame, as a lapin client sees it; the neighbours do not notice; and
//! the endpoints are refused when the node does not allow them.

mod common;

use std::time::Duration;

use common::http::{seg, Http};
use common::*;
use lapin::{Connection, ConnectionProperties};
use serde_json::json;

async fn broker(allow: bool) -> TestBroker {
    broker_with(|c| {
        c.management_port = Some(0);
        c.allow_fault_injection = allow;
    })
    .await
}

fn api(b: &TestBroker) -> Http {
    let addr = b.server().expect("in-process Warren").management_addr().expect("management is on");
    Http::new(&format!("http://{addr}"), Some(("guest", "guest")))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking call")
}

async fn named(b: &TestBroker, name: &str) -> Connection {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    within(Connection::connect(&b.uri(), props)).await.expect("connect")
}

/// The management API's name of the connection the client called `client_name`.
async fn connection_name(b: &TestBroker, client_name: &str) -> String {
    let http = api(b);
    let client_name = client_name.to_owned();
    blocking(move || {
        for _ in 0..200 {
            let list = http.json("/api/connections");
            if let Some(c) = list.as_array().into_iter().flatten().find(|c| c["user_provided_name"] == client_name) {
                return c["name"].as_str().unwrap().to_owned();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no connection named {client_name} in /api/connections");
    })
    .await
}

async fn fault(b: &TestBroker, name: &str, action: &str, body: serde_json::Value) -> common::http::Reply {
    let http = api(b);
    let path = format!("/api/warren/faults/connections/{}/{action}", seg(name));
    blocking(move || http.post(&path, &body)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closes_with_the_code_and_text_asked_for() {
    if external() {
        return;
    }
    let b = broker(true).await;
    let victim = named(&b, "victim").await;
    let neighbour = named(&b, "neighbour").await;
    let mut victim_events = events(&victim);
    let name = connection_name(&b, "victim").await;

    let r = fault(&b, &name, "close", json!({"code": 541, "reason": "injected"})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let err = next_error(&mut victim_events).await.expect_err("the connection is closed");
    assert_eq!(amqp_error(&err), (541, "INTERNAL_ERROR - injected".to_owned()));

    // The neighbour works on.
    let ch = neighbour.create_channel().await.unwrap();
    let q = unique("after-fault");
    declare_queue(&ch, &q).await;
    publish_confirmed(&confirm_channel(&neighbour).await, "", &q, b"still here").await;
    assert_eq!(get_body(&ch, &q).await.as_deref(), Some(&b"still here"[..]));

    // Without a code: 320, as a forced close.
    let second = named(&b, "second").await;
    let mut second_events = events(&second);
    let name = connection_name(&b, "second").await;
    assert_eq!(fault(&b, &name, "close", json!({})).await.status, 204);
    let err = next_error(&mut second_events).await.expect_err("closed");
    assert_eq!(amqp_error(&err), (320, "CONNECTION_FORCED - Closed via fault injection".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_socket_ends_without_a_close_frame() {
    if external() {
        return;
    }
    let b = broker(true).await;
    let addr = b.addr();
    let mut raw = raw::RawConn::handshake(addr, 0, 0).await.0;
    let client_name = {
        // The raw client has no connection_name: find it as the one
        // connection there is.
        let http = api(&b);
        blocking(move || {
            for _ in 0..200 {
                if let Some(c) = http.json("/api/connections").as_array().and_then(|a| a.first().cloned()) {
                    return c["name"].as_str().unwrap().to_owned();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("the raw connection is not listed");
        })
        .await
    };
    assert_eq!(fault(&b, &client_name, "drop", json!({})).await.status, 204);
    let (frames, eof) = raw.read_until_eof(Duration::from_secs(5)).await;
    assert!(eof, "the socket closed");
    assert!(frames.is_empty(), "nothing was sent before the socket closed, not even connection.close: {frames:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_refused_unless_allowed_and_checked_when_they_are() {
    if external() {
        return;
    }
    let off = broker(false).await;
    let _c = named(&off, "c").await;
    let name = connection_name(&off, "c").await;
    let r = fault(&off, &name, "drop", json!({})).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("--allow-fault-injection"), "{}", r.text);

    let on = broker(true).await;
    let _c = named(&on, "c").await;
    let name = connection_name(&on, "c").await;
    let r = fault(&on, &name, "close", json!({"code": 404})).await;
    assert_eq!(r.status, 400, "a channel-level code is not a connection close: {}", r.text);
    assert_eq!(fault(&on, "no such connection", "drop", json!({})).await.status, 404);
    let http = api(&on);
    let path = format!("/api/warren/faults/connections/{}/drop", seg(&name));
    let r = blocking(move || {
        http.put("/api/users/watcher", &json!({"password": "w", "tags": "monitoring"}));
        http.as_user("watcher", "w").post(&path, &json!({}))
    })
    .await;
    assert_eq!(r.status, 401, "administrators only: {}", r.text);
}
