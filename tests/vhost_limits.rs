//! Vhost limits (max-connections, max-queues) and user limits
//! (max-connections, max-channels), set through the management API and
//! enforced on the wire with RabbitMQ's codes and texts.
//!
//! Against the reference RabbitMQ:
//! WARREN_TEST_URI=amqp://guest:guest@127.0.0.1:5673/ WARREN_TEST_MGMT_URL=http://127.0.0.1:15673 \
//!     cargo nextest run --test vhost_limits

mod common;

use common::http::{seg, Http};
use common::*;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use serde_json::{json, Value};

struct World {
    broker: TestBroker,
    api: Http,
    vhost: String,
    user: String,
}

impl World {
    async fn new() -> World {
        let broker = broker_with(|c| c.management_port = Some(0)).await;
        let base = match broker.server() {
            Some(s) => format!("http://{}", s.management_addr().expect("management is on")),
            None => std::env::var("WARREN_TEST_MGMT_URL").expect("WARREN_TEST_MGMT_URL with WARREN_TEST_URI"),
        };
        let api = Http::new(&base, Some(("guest", "guest")));
        let vhost = unique("limits-vh");
        let user = unique("limits-user");
        let w = World { broker, api, vhost, user };
        let (v, u) = (seg(&w.vhost), seg(&w.user));
        let all = json!({"configure": ".*", "write": ".*", "read": ".*"});
        w.call(move |api| {
            assert_eq!(api.put(&format!("/api/vhosts/{v}"), &json!({})).status / 100, 2);
            assert_eq!(api.put(&format!("/api/users/{u}"), &json!({"password": "pw", "tags": ""})).status / 100, 2);
            assert_eq!(api.put(&format!("/api/permissions/{v}/{u}"), &all).status / 100, 2);
            assert_eq!(api.put(&format!("/api/permissions/{v}/guest"), &all).status / 100, 2);
        })
        .await;
        w
    }

    async fn call<T: Send + 'static>(&self, f: impl FnOnce(&Http) -> T + Send + 'static) -> T {
        let api = self.api.as_user("guest", "guest");
        tokio::task::spawn_blocking(move || f(&api)).await.unwrap()
    }

    async fn put(&self, path: String, body: Value) -> u16 {
        self.call(move |api| api.put(&path, &body).status).await
    }

    async fn delete(&self, path: String) -> u16 {
        self.call(move |api| api.delete(&path).status).await
    }

    async fn get(&self, path: String) -> Value {
        self.call(move |api| api.json(&path)).await
    }

    async fn connect_as(&self, user: &str, pass: &str) -> lapin::Result<Connection> {
        within(Connection::connect(&self.broker.uri_with(user, pass, &self.vhost), ConnectionProperties::default()))
            .await
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let (v, u) = (seg(&self.vhost), seg(&self.user));
        let _ = self.api.delete(&format!("/api/vhosts/{v}"));
        let _ = self.api.delete(&format!("/api/users/{u}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vhost_max_connections_refuses_connection_open_beyond_it() {
    let w = World::new().await;
    let v = seg(&w.vhost);
    assert_eq!(w.put(format!("/api/vhost-limits/{v}/max-connections"), json!({"value": 1})).await, 204);
    let first = w.connect_as("guest", "guest").await.expect("the first connection is within the limit");
    let r = w.connect_as("guest", "guest").await;
    let text = format!(
        "NOT_ALLOWED - access to vhost '{}' refused for user 'guest': connection limit (1) is reached",
        w.vhost
    );
    assert_amqp_error(r, 530, &text);
    // The limit counts open connections: one closed makes room.
    first.close(200, "bye".into()).await.unwrap();
    let again = within_d(std::time::Duration::from_secs(10), async {
        loop {
            match w.connect_as("guest", "guest").await {
                Ok(c) => break c,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    })
    .await;
    // 0: none allowed; -1 (negative): no limit.
    assert_eq!(w.put(format!("/api/vhost-limits/{v}/max-connections"), json!({"value": 0})).await, 204);
    let r = w.connect_as("guest", "guest").await;
    let text = format!(
        "NOT_ALLOWED - access to vhost '{}' refused for user 'guest': connection limit (0) is reached",
        w.vhost
    );
    assert_amqp_error(r, 530, &text);
    assert_eq!(w.put(format!("/api/vhost-limits/{v}/max-connections"), json!({"value": -1})).await, 204);
    let third = w.connect_as("guest", "guest").await.expect("-1 is no limit");
    let listed = w.get(format!("/api/vhost-limits/{v}")).await;
    assert_eq!(listed, json!([{"vhost": w.vhost, "value": {"max-connections": -1}}]));
    assert_eq!(w.delete(format!("/api/vhost-limits/{v}/max-connections")).await, 204);
    assert_eq!(w.get(format!("/api/vhost-limits/{v}")).await, json!([]));
    let _ = again.close(200, "bye".into()).await;
    let _ = third.close(200, "bye".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vhost_max_queues_refuses_a_new_queue_but_not_a_redeclare() {
    let w = World::new().await;
    let v = seg(&w.vhost);
    assert_eq!(w.put(format!("/api/vhost-limits/{v}/max-queues"), json!({"value": 1})).await, 204);
    let c = w.connect_as("guest", "guest").await.unwrap();
    let ch = within(c.create_channel()).await.unwrap();
    within(ch.queue_declare("q1".into(), QueueDeclareOptions::default(), FieldTable::default())).await.unwrap();
    within(ch.queue_declare("q1".into(), QueueDeclareOptions::default(), FieldTable::default()))
        .await
        .expect("redeclaring an existing queue is not a new queue");
    let r = within(ch.queue_declare("q2".into(), QueueDeclareOptions::default(), FieldTable::default())).await;
    let text =
        format!("PRECONDITION_FAILED - cannot declare queue 'q2': queue limit in vhost '{}' (1) is reached", w.vhost);
    assert_amqp_error(r, 406, &text);
    let ch = within(c.create_channel()).await.unwrap();
    assert_eq!(w.put(format!("/api/vhost-limits/{v}/max-queues"), json!({"value": 0})).await, 204);
    let r = within(ch.queue_declare("q3".into(), QueueDeclareOptions::default(), FieldTable::default())).await;
    let text =
        format!("PRECONDITION_FAILED - cannot declare queue 'q3': queue limit in vhost '{}' (0) is reached", w.vhost);
    assert_amqp_error(r, 406, &text);
    let ch = within(c.create_channel()).await.unwrap();
    assert_eq!(w.delete(format!("/api/vhost-limits/{v}/max-queues")).await, 204);
    within(ch.queue_declare("q3".into(), QueueDeclareOptions::default(), FieldTable::default()))
        .await
        .expect("no limit once cleared");
    let _ = c.close(200, "bye".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_max_connections_and_max_channels() {
    let w = World::new().await;
    let u = seg(&w.user);
    assert_eq!(w.put(format!("/api/user-limits/{u}/max-connections"), json!({"value": 1})).await, 204);
    assert_eq!(w.put(format!("/api/user-limits/{u}/max-channels"), json!({"value": 1})).await, 204);
    let listed = w.get(format!("/api/user-limits/{u}")).await;
    assert_eq!(listed, json!([{"user": w.user, "value": {"max-connections": 1, "max-channels": 1}}]));
    let shown = w.get(format!("/api/users/{u}")).await;
    assert_eq!(shown["limits"], json!({"max-connections": 1, "max-channels": 1}));
    let c = w.connect_as(&w.user, "pw").await.expect("the first connection is within the limit");
    let r = w.connect_as(&w.user, "pw").await;
    let text = format!("NOT_ALLOWED - connection refused for user '{}': user connection limit (1) is reached", w.user);
    assert_amqp_error(r, 530, &text);
    let _ch = within(c.create_channel()).await.expect("the first channel is within the limit");
    let r = within(c.create_channel()).await;
    let text = format!(
        "NOT_ALLOWED - number of channels opened for user '{}' has reached the maximum allowed user limit of (1)",
        w.user
    );
    assert_amqp_error(r, 530, &text);
    assert_eq!(w.delete(format!("/api/user-limits/{u}/max-connections")).await, 204);
    assert_eq!(w.delete(format!("/api/user-limits/{u}/max-channels")).await, 204);
    assert_eq!(w.get(format!("/api/user-limits/{u}")).await, json!([]));
}

/// Limits from a definitions file (RabbitMQ 3.10's `vhost-limits`
/// parameter and user `limits`) are enforced, exported in the same shape,
/// and survive a restart from the data directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_from_definitions_are_exported_and_survive_a_restart() {
    if external() {
        return;
    }
    let dir = std::env::temp_dir().join(unique("limits-defs"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("defs.json");
    let guest = serde_json::to_value(warren::broker::User::new("guest", "guest", &["administrator"]).to_def()).unwrap();
    let defs = json!({
        "vhosts": [{"name": "/"}, {"name": "capped"}],
        "users": [
            guest,
            {"name": "few", "password_hash": "", "tags": [], "limits": {"max-channels": 3, "max-connections": 2}}
        ],
        "permissions": [{"user": "guest", "vhost": "capped", "configure": ".*", "write": ".*", "read": ".*"}],
        "parameters": [{"vhost": "capped", "component": "vhost-limits", "name": "limits",
                        "value": {"max-queues": 0, "max-connections": 5}}]
    });
    std::fs::write(&file, defs.to_string()).unwrap();
    let data = dir.join("data");
    let config = |definitions: Option<std::path::PathBuf>| warren::Config {
        data_dir: Some(data.clone()),
        definitions,
        management_port: Some(0),
        ..warren::Config::ephemeral()
    };
    let b = broker_with_config(config(Some(file))).await;
    let broker = std::sync::Arc::clone(b.server().unwrap().broker());
    assert_eq!(broker.vhost("capped").unwrap().limits().max_queues, Some(0));
    assert_eq!(broker.user_limits("few").max_channels, Some(3));
    let exported = serde_json::to_value(broker.export_definitions()).unwrap();
    let param = exported["parameters"].as_array().unwrap().iter().find(|p| p["component"] == "vhost-limits").cloned();
    assert_eq!(
        param,
        Some(json!({"vhost": "capped", "component": "vhost-limits", "name": "limits",
                    "value": {"max-queues": 0, "max-connections": 5}}))
    );
    let few = exported["users"].as_array().unwrap().iter().find(|u| u["name"] == "few").cloned().unwrap();
    assert_eq!(few["limits"], json!({"max-channels": 3, "max-connections": 2}));
    // Enforced: no queue may be declared in `capped`.
    let c = within(Connection::connect(&b.uri_with("guest", "guest", "capped"), ConnectionProperties::default()))
        .await
        .unwrap();
    let ch = within(c.create_channel()).await.unwrap();
    let r = within(ch.queue_declare("q".into(), QueueDeclareOptions::default(), FieldTable::default())).await;
    assert_amqp_error(
        r,
        406,
        "PRECONDITION_FAILED - cannot declare queue 'q': queue limit in vhost 'capped' (0) is reached",
    );
    let _ = c.close(200, "bye".into()).await;
    // Changed over HTTP, then restarted without the definitions file.
    let base = format!("http://{}", b.server().unwrap().management_addr().unwrap());
    let api = Http::new(&base, Some(("guest", "guest")));
    let status = tokio::task::spawn_blocking(move || {
        let a = api.put("/api/vhost-limits/capped/max-queues", &json!({"value": 7})).status;
        let b = api.delete("/api/user-limits/few/max-connections").status;
        let c = api.put("/api/vhost-limits/capped/max-bogus", &json!({"value": 7}));
        (a, b, c.status, c.json()["reason"].as_str().unwrap_or_default().to_owned())
    })
    .await
    .unwrap();
    assert_eq!((status.0, status.1, status.2), (204, 204, 400));
    assert!(
        status.3.starts_with("Validation failed\n\nUnrecognised terms [{<<\"max-bogus\">>,7}] in limits"),
        "{}",
        status.3
    );
    drop(broker);
    let mut b = b;
    b.take_server().unwrap().shutdown().await;
    let b = broker_with_config(config(None)).await;
    let broker = b.server().unwrap().broker();
    assert_eq!(broker.vhost("capped").unwrap().limits().max_queues, Some(7));
    assert_eq!(broker.vhost("capped").unwrap().limits().max_connections, Some(5));
    assert_eq!(broker.user_limits("few").max_connections, None);
    assert_eq!(broker.user_limits("few").max_channels, Some(3));
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}
