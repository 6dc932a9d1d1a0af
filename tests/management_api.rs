//! The management HTTP API end to end: a real HTTP client (ureq) against
//! the real listener, with real AMQP clients (lapin) on the other side to
//! see that what the API says and does is what the broker does.
//!
//! Every expectation here was checked against the reference RabbitMQ: run
//! `WARREN_TEST_URI=amqp://guest:guest@127.0.0.1:5673/%2f
//! WARREN_TEST_MGMT_URL=http://127.0.0.1:15673 cargo nextest run --test
//! management_api` with `reference-rabbitmq start` (tests that need
//! Warren-only features skip themselves there).

mod common;

use common::http::{blocking, seg, Http};
use common::*;
use lapin::options::*;
use lapin::types::FieldTable;
use serde_json::{json, Value};

struct Mgmt {
    broker: TestBroker,
    api: Http,
}

impl Mgmt {
    fn warren(&self) -> bool {
        self.broker.is_warren()
    }
}

async fn mgmt_with(configure: impl FnOnce(&mut warren::Config)) -> Mgmt {
    let broker = broker_with(|c| {
        c.management_port = Some(0);
        configure(c);
    })
    .await;
    let base = match broker.server() {
        Some(s) => format!("http://{}", s.management_addr().expect("management is on")),
        None => std::env::var("WARREN_TEST_MGMT_URL").expect("WARREN_TEST_MGMT_URL with WARREN_TEST_URI"),
    };
    Mgmt { broker, api: Http::new(&base, Some(("guest", "guest"))) }
}

async fn mgmt() -> Mgmt {
    mgmt_with(|_| {}).await
}

/// GETs `path` until `key` has `want`: RabbitMQ's statistics (message
/// counts, a new queue's state) lag by its collection interval, Warren's
/// do not.
fn settled(api: &Http, path: &str, key: &str, want: Value) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let v = api.json(path);
        if v[key] == want || std::time::Instant::now() > deadline {
            assert_eq!(v[key], want, "{key} of {path}");
            return v;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
    k.sort();
    k
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/management/api/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_and_tags_answer_as_rabbitmq() {
    let m = mgmt().await;
    let base = m.api.base().to_owned();
    let (mgr, nobody) = (unique("mgr"), unique("nobody"));
    blocking(move || {
        let anonymous = Http::new(&base, None);
        let r = anonymous.get("/api/overview");
        assert_eq!(r.status, 401);
        assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"RabbitMQ Management\""));
        assert_eq!(r.text, "", "no credentials: an empty 401 that makes a browser ask");

        let r = anonymous.as_user("guest", "wrong").get("/api/overview");
        assert_eq!(r.status, 401);
        assert_eq!(r.json(), json!({"error": "not_authorized", "reason": "Login failed"}));

        let api = anonymous.as_user("guest", "guest");
        assert_eq!(api.put(&format!("/api/users/{mgr}"), &json!({"password": "pw", "tags": "management"})).status, 201);
        assert_eq!(api.put(&format!("/api/users/{nobody}"), &json!({"password": "pw", "tags": ""})).status, 201);
        let r = api.as_user(&nobody, "pw").get("/api/overview");
        assert_eq!((r.status, r.json()), (401, json!({"error": "not_authorised", "reason": "Not management user"})));
        let as_mgr = api.as_user(&mgr, "pw");
        let r = as_mgr.get("/api/users");
        assert_eq!((r.status, r.json()), (401, json!({"error": "not_authorised", "reason": "Not administrator user"})));
        let r = as_mgr.get("/api/nodes");
        assert_eq!((r.status, r.json()), (401, json!({"error": "not_authorised", "reason": "Not monitor user"})));
        assert_eq!(as_mgr.json("/api/whoami"), json!({"name": mgr, "tags": ["management"]}));
        // No permissions anywhere: it sees no vhost and no queue.
        assert_eq!(as_mgr.json("/api/vhosts"), json!([]));
        assert_eq!(as_mgr.json("/api/queues"), json!([]));
        let r = api.put(&format!("/api/users/{mgr}"), &json!({"password": "pw"}));
        assert_eq!((r.status, r.json()), (400, json!({"error": "bad_request", "reason": "tags_not_present"})));
        for u in [&mgr, &nobody] {
            assert_eq!(api.delete(&format!("/api/users/{u}")).status, 204);
        }
        assert_eq!(
            api.get(&format!("/api/users/{mgr}")).json(),
            json!({"error": "Object Not Found", "reason": "Not Found"})
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_and_vhost_made_over_http_can_log_in_over_amqp() {
    let m = mgmt().await;
    let (user, vhost) = (unique("alice"), unique("vh"));
    let api = m.api.as_user("guest", "guest");
    let (u, v) = (user.clone(), vhost.clone());
    let api2 = m.api.as_user("guest", "guest");
    blocking(move || {
        assert_eq!(
            api2.put(&format!("/api/vhosts/{}", seg(&v)), &json!({"description": "for tests", "tags": "a,b"})).status,
            201
        );
        assert_eq!(api2.put(&format!("/api/vhosts/{}", seg(&v)), &json!({"description": "changed"})).status, 204);
        let got = api2.json(&format!("/api/vhosts/{}", seg(&v)));
        assert_eq!((got["name"].as_str(), got["description"].as_str()), (Some(v.as_str()), Some("changed")));
        assert_eq!(got["tags"], json!([]), "a PUT replaces the tags as RabbitMQ does");
        assert_eq!(
            api2.put(&format!("/api/users/{u}"), &json!({"password": "s3cret", "tags": ["monitoring"]})).status,
            201
        );
        let r = api2.put(&format!("/api/permissions/{}/{u}", seg(&v)), &json!({"configure": ".*"}));
        assert_eq!((r.status, r.json()["reason"].clone()), (400, json!("[{key_missing,write},{key_missing,read}]")));
        let r = api2.put(
            &format!("/api/permissions/{}/nosuchuser", seg(&v)),
            &json!({"configure": ".*", "write": ".*", "read": ".*"}),
        );
        assert_eq!((r.status, r.json()["reason"].clone()), (400, json!("vhost_or_user_not_found")));
        let r = api2.put(
            &format!("/api/permissions/{}/{u}", seg(&v)),
            &json!({"configure": "^own-", "write": ".*", "read": ".*"}),
        );
        assert_eq!(r.status, 201);
        let p = api2.json(&format!("/api/permissions/{}/{u}", seg(&v)));
        assert_eq!(p, json!({"user": u, "vhost": v, "configure": "^own-", "write": ".*", "read": ".*"}));
        assert_eq!(api2.json(&format!("/api/users/{u}/permissions")).as_array().unwrap().len(), 1);
    })
    .await;
    // The new user logs in to the new vhost over AMQP and is held to the
    // permissions set over HTTP.
    let uri = m.broker.uri_with(&user, "s3cret", &vhost);
    let conn = within(lapin::Connection::connect(&uri, lapin::ConnectionProperties::default())).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare("own-q".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    let refused = ch.queue_declare("other-q".into(), QueueDeclareOptions::default(), FieldTable::default()).await;
    assert_eq!(amqp_error(&refused.unwrap_err()).0, 403);
    let (u, v) = (user.clone(), vhost.clone());
    blocking(move || {
        let q = api.json(&format!("/api/queues/{}/own-q", seg(&v)));
        assert_eq!(q["vhost"], json!(v));
        assert_eq!(api.delete(&format!("/api/permissions/{}/{u}", seg(&v))).status, 204);
        assert_eq!(api.delete(&format!("/api/permissions/{}/{u}", seg(&v))).status, 404);
        assert_eq!(api.delete(&format!("/api/vhosts/{}", seg(&v))).status, 204);
        assert_eq!(api.get(&format!("/api/vhosts/{}", seg(&v))).status, 404);
        assert_eq!(api.get(&format!("/api/queues/{}/own-q", seg(&v))).status, 404, "its queues went with it");
        assert_eq!(api.delete(&format!("/api/users/{u}")).status, 204);
    })
    .await;
    let _ = conn.close(200, "bye".into()).await;
}

/// A `password_hash` given without `hashing_algorithm` is read with the
/// node's `password_hashing_module` (rabbit_password:hashing_mod()), as is
/// a new user's missing password; a given algorithm still wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_hash_without_an_algorithm_gets_password_hashing_module() {
    use warren::broker::HashingAlgorithm;
    let m = mgmt_with(|c| c.password_hashing = HashingAlgorithm::Sha512).await;
    if !m.warren() {
        return; // the reference node's module is not configured here
    }
    let api = m.api.as_user("guest", "guest");
    let (hashed, bare, given) = (unique("hashed"), unique("bare"), unique("given"));
    blocking(move || {
        let hash = HashingAlgorithm::Sha512.hash_password("pw");
        let r = api.put(&format!("/api/users/{hashed}"), &json!({"password_hash": hash, "tags": "management"}));
        assert_eq!(r.status, 201, "{}", r.text);
        let u = api.json(&format!("/api/users/{hashed}"));
        assert_eq!(u["hashing_algorithm"], json!("rabbit_password_hashing_sha512"));
        assert_eq!(u["password_hash"], json!(hash));
        assert_eq!(api.as_user(&hashed, "pw").json("/api/whoami")["name"], json!(hashed), "the hash verifies");

        assert_eq!(api.put(&format!("/api/users/{bare}"), &json!({"tags": ""})).status, 201);
        assert_eq!(
            api.json(&format!("/api/users/{bare}"))["hashing_algorithm"],
            json!("rabbit_password_hashing_sha512")
        );

        let md5 = HashingAlgorithm::Md5.hash_password("old");
        let body =
            json!({"password_hash": md5, "hashing_algorithm": "rabbit_password_hashing_md5", "tags": "management"});
        assert_eq!(api.put(&format!("/api/users/{given}"), &body).status, 201);
        assert_eq!(api.json(&format!("/api/users/{given}"))["hashing_algorithm"], json!("rabbit_password_hashing_md5"));
        assert_eq!(api.as_user(&given, "old").json("/api/whoami")["name"], json!(given));
        for u in [hashed, bare, given] {
            assert_eq!(api.delete(&format!("/api/users/{u}")).status, 204);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_and_exchanges_are_declared_listed_and_deleted_with_rabbitmqs_checks() {
    let m = mgmt().await;
    let (q, x) = (unique("q"), unique("x"));
    let (_conn, ch) = connect_confirm_channel(&m.broker).await;
    let api = m.api.as_user("guest", "guest");
    let (q2, x2) = (q.clone(), x.clone());
    blocking(move || {
        let qp = format!("/api/queues/%2F/{q2}");
        assert_eq!(api.put(&qp, &json!({"durable": true, "arguments": {"x-max-length": 10}})).status, 201);
        assert_eq!(api.put(&qp, &json!({"durable": true, "arguments": {"x-max-length": 10}})).status, 204);
        let r = api.put(&qp, &json!({"durable": false}));
        assert_eq!(r.status, 400);
        assert_eq!(
            r.json(),
            json!({"error": "bad_request", "reason": format!("inequivalent arg 'durable' for queue '{q2}' in vhost '/': received 'false' but current is 'true'")})
        );
        let r = api.send("PUT", &qp, "{\"durable\":tru");
        assert_eq!((r.status, r.json()), (400, json!({"error": "bad_request", "reason": "not_json"})));
        let got = settled(&api, &qp, "state", json!("running"));
        assert_eq!((got["name"].as_str(), got["durable"].as_bool()), (Some(q2.as_str()), Some(true)));
        assert_eq!(got["arguments"], json!({"x-max-length": 10}));
        assert_eq!((got["type"].as_str(), got["state"].as_str()), (Some("classic"), Some("running")));
        let xp = format!("/api/exchanges/%2F/{x2}");
        assert_eq!(api.put(&xp, &json!({"type": "topic", "durable": true})).status, 201);
        let r = api.put(&format!("/api/exchanges/%2F/{x2}-bad"), &json!({"type": "nope"}));
        assert_eq!(r.json(), json!({"error": "bad_request", "reason": "unknown exchange type 'nope'"}));
        let r = api.put("/api/exchanges/%2F/amq.custom", &json!({"type": "topic"}));
        assert_eq!((r.status, r.json()), (401, json!({"error": "not_authorised", "reason": "Access refused."})));
        let got = api.json(&xp);
        assert_eq!((got["type"].as_str(), got["durable"].as_bool()), (Some("topic"), Some(true)));
        assert!(api.json("/api/exchanges/%2F").as_array().unwrap().iter().any(|e| e["name"] == "amq.topic"));
        assert_eq!(api.json("/api/exchanges/%2F/amq.default")["name"], json!(""));
        assert_eq!(api.get("/api/queues/%2F/no-such-queue").json(), json!({"error": "Object Not Found", "reason": "Not Found"}));
        assert_eq!(api.get("/api/queues/no-such-vhost").status, 404);
        assert_eq!(api.post("/api/queues/%2F/x", &json!({})).status, 405);
    })
    .await;
    // The queue is the AMQP one: a passive declare sees it and its limit.
    let ok = ch
        .queue_declare(
            q.as_str().into(),
            QueueDeclareOptions { passive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    let (_c2, ch2) = connect_channel(&m.broker).await;
    let consumer = ch2
        .basic_consume(q.as_str().into(), "c".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let api = m.api.as_user("guest", "guest");
    let q2 = q.clone();
    blocking(move || {
        let qp = format!("/api/queues/%2F/{q2}");
        settled(&api, &qp, "consumers", json!(1));
        let r = api.delete(&format!("{qp}?if-unused=true"));
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(api.json(&qp)["name"], json!(q2), "still there");
    })
    .await;
    drop(consumer);
    ch2.close(200, "bye".into()).await.unwrap();
    publish_confirmed(&ch, "", &q, b"one").await;
    let api = m.api.as_user("guest", "guest");
    let (q2, x2) = (q.clone(), x.clone());
    blocking(move || {
        let qp = format!("/api/queues/%2F/{q2}");
        assert_eq!(api.delete(&format!("{qp}?if-empty=true")).status, 400);
        assert_eq!(api.delete(&format!("{qp}?if-unused=true")).status, 204);
        assert_eq!(api.get(&qp).status, 404);
        assert_eq!(api.delete(&qp).status, 404);
        assert_eq!(api.delete(&format!("/api/exchanges/%2F/{x2}")).status, 204);
        assert_eq!(api.get(&format!("/api/exchanges/%2F/{x2}")).status, 404);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_get_purge_and_browse_work_on_the_queues_amqp_clients_use() {
    let m = mgmt().await;
    let q = unique("pg");
    let (_conn, ch) = connect_confirm_channel(&m.broker).await;
    declare_queue(&ch, &q).await;
    for body in ["a", "b", "c"] {
        publish_confirmed(&ch, "", &q, body.as_bytes()).await;
    }
    let warren = m.warren();
    let api = m.api.as_user("guest", "guest");
    let q2 = q.clone();
    blocking(move || {
        let qp = format!("/api/queues/%2F/{q2}");
        if warren {
            // Browsing leaves the queue as it was: same order, not redelivered.
            for _ in 0..2 {
                let seen = api.json(&format!("{qp}/messages?offset=1&count=5"));
                let bodies: Vec<&str> =
                    seen.as_array().unwrap().iter().map(|m| m["payload"].as_str().unwrap()).collect();
                assert_eq!(bodies, ["b", "c"]);
                assert_eq!(seen[0]["redelivered"], json!(false));
                assert_eq!(seen[0]["position"], json!(1));
            }
        }
        let got = api.post(
            &format!("{qp}/get"),
            &json!({"count": 2, "ackmode": "ack_requeue_true", "encoding": "auto", "truncate": 50000}),
        );
        assert_eq!(got.status, 200, "{}", got.text);
        let got = got.json();
        assert_eq!(got.as_array().unwrap().len(), 2);
        assert_eq!(got[0]["payload"], json!("a"));
        assert_eq!(got[1]["payload"], json!("b"), "both taken before either went back");
        assert_eq!(got[0]["message_count"], json!(2));
        assert_eq!(got[0]["routing_key"], json!(q2));
        assert_eq!(got[0]["payload_encoding"], json!("string"));
        let again = api
            .post(&format!("{qp}/get"), &json!({"count": 1, "ackmode": "ack_requeue_false", "encoding": "base64"}))
            .json();
        assert_eq!(again[0]["payload"], json!("YQ=="), "base64 of 'a'");
        assert_eq!(again[0]["redelivered"], json!(true), "it went back after the first get");
        let r = api.post(
            "/api/exchanges/%2F/amq.default/publish",
            &json!({"routing_key": q2, "payload": "from http", "payload_encoding": "string",
                    "properties": {"delivery_mode": 2, "headers": {"h": 1}, "content_type": "text/plain"}}),
        );
        assert_eq!((r.status, r.json()), (200, json!({"routed": true})));
        let r = api.post(
            "/api/exchanges/%2F/amq.default/publish",
            &json!({"routing_key": "nowhere-at-all", "payload": "x", "payload_encoding": "string", "properties": {}}),
        );
        assert_eq!(r.json(), json!({"routed": false}));
        let r = api.post(
            "/api/exchanges/%2F/amq.default/publish",
            &json!({"routing_key": q2, "payload": "x", "properties": {}}),
        );
        assert_eq!((r.status, r.json()["reason"].clone()), (400, json!("[{key_missing,payload_encoding}]")));
        settled(&api, &qp, "messages", json!(3));
    })
    .await;
    // The message published over HTTP reaches an AMQP consumer with its properties.
    let drained = drain(&ch, &q).await;
    assert_eq!(drained, ["b", "c", "from http"]);
    publish_confirmed(&ch, "", &q, b"to purge").await;
    let api = m.api.as_user("guest", "guest");
    let q2 = q.clone();
    blocking(move || {
        let qp = format!("/api/queues/%2F/{q2}");
        assert_eq!(api.delete(&format!("{qp}/contents")).status, 204);
        settled(&api, &qp, "messages", json!(0));
        assert_eq!(api.delete("/api/queues/%2F/no-such-queue/contents").status, 404);
        assert_eq!(api.delete(&qp).status, 204);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_made_over_http_route_amqp_publishes_and_delete_by_properties_key() {
    let m = mgmt().await;
    let (q, x) = (unique("bq"), unique("bx"));
    let (_conn, ch) = connect_confirm_channel(&m.broker).await;
    declare_queue(&ch, &q).await;
    let api = m.api.as_user("guest", "guest");
    let (q2, x2) = (q.clone(), x.clone());
    blocking(move || {
        assert_eq!(api.put(&format!("/api/exchanges/%2F/{x2}"), &json!({"type": "direct"})).status, 201);
        let r = api.post(&format!("/api/bindings/%2F/e/{x2}/q/{q2}"), &json!({"routing_key": "a/b", "arguments": {}}));
        assert_eq!(r.status, 201, "{}", r.text);
        assert!(r.header("location").is_some());
        let r = api.post(&format!("/api/bindings/%2F/e/amq.direct/e/{x2}"), &json!({"routing_key": "fwd"}));
        assert_eq!(r.status, 201, "{}", r.text);
        let list = api.json(&format!("/api/bindings/%2F/e/{x2}/q/{q2}"));
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert_eq!(list[0]["properties_key"], json!("a%2Fb"));
        let b = &list[0];
        for k in ["source", "vhost", "destination", "destination_type", "routing_key", "arguments", "properties_key"] {
            assert!(b.get(k).is_some(), "binding has {k}");
        }
        let qb = api.json(&format!("/api/queues/%2F/{q2}/bindings"));
        assert_eq!(qb[0]["source"], json!(""), "the default exchange's binding comes first");
        assert_eq!(qb[1]["source"], json!(x2));
        let src = api.json(&format!("/api/exchanges/%2F/{x2}/bindings/source"));
        assert_eq!(src.as_array().unwrap().len(), 1);
        let dst = api.json(&format!("/api/exchanges/%2F/{x2}/bindings/destination"));
        assert_eq!(dst[0]["source"], json!("amq.direct"));
    })
    .await;
    publish_confirmed(&ch, &x, "a/b", b"direct").await;
    publish_confirmed(&ch, "amq.direct", "fwd", b"wrong key").await;
    assert_eq!(drain(&ch, &q).await, ["direct"]);
    let api = m.api.as_user("guest", "guest");
    let (q2, x2) = (q.clone(), x.clone());
    blocking(move || {
        // The key goes into the URL encoded once more, as rabbitmqadmin does.
        let path = format!("/api/bindings/%2F/e/{x2}/q/{q2}/{}", seg("a%2Fb"));
        assert_eq!(api.json(&path)["routing_key"], json!("a/b"));
        assert_eq!(api.delete(&path).status, 204);
        assert_eq!(api.delete(&path).status, 404);
        assert_eq!(api.json(&format!("/api/bindings/%2F/e/{x2}/q/{q2}")), json!([]));
    })
    .await;
    publish_confirmed(&ch, &x, "a/b", b"unbound").await;
    assert!(drain(&ch, &q).await.is_empty());
    cleanup_queue(&m.broker, &q).await;
    cleanup_exchange(&m.broker, &x).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_filter_sort_and_select_columns() {
    let m = mgmt().await;
    let prefix = unique("page");
    let api = m.api.as_user("guest", "guest");
    blocking(move || {
        for i in 0..25 {
            assert_eq!(api.put(&format!("/api/queues/%2F/{prefix}-{i:02}"), &json!({})).status, 201);
        }
        let p = api.json(&format!("/api/queues?page=2&page_size=10&name={prefix}&columns=name"));
        assert_eq!((p["page"].as_u64(), p["page_size"].as_u64(), p["page_count"].as_u64()), (Some(2), Some(10), Some(3)));
        assert_eq!((p["filtered_count"].as_u64(), p["item_count"].as_u64()), (Some(25), Some(10)));
        assert!(p["total_count"].as_u64().unwrap() >= 25);
        assert_eq!(p["items"][0], json!({"name": format!("{prefix}-10")}), "sorted by name, only the column asked for");
        let p = api.json(&format!("/api/queues?page=1&page_size=3&name={prefix}&sort=name&sort_reverse=true&columns=name"));
        assert_eq!(p["items"][0]["name"], json!(format!("{prefix}-24")));
        let r = api.get("/api/queues?page=1&page_size=1000");
        assert_eq!(
            (r.status, r.json()),
            (400, json!({"error": "invalid_pagination_parameters", "reason": "Invalid pagination parameters: page number 1, page size 1000"}))
        );
        for i in 0..25 {
            assert_eq!(api.delete(&format!("/api/queues/%2F/{prefix}-{i:02}")).status, 204);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_and_the_aliveness_test() {
    let m = mgmt().await;
    let amqp_port = m.broker.addr().port();
    let api = m.api.as_user("guest", "guest");
    blocking(move || {
        assert_eq!(api.json("/api/health/checks/alarms"), json!({"status": "ok"}));
        assert_eq!(api.json("/api/health/checks/local-alarms"), json!({"status": "ok"}));
        assert_eq!(api.json("/api/health/checks/virtual-hosts"), json!({"status": "ok"}));
        assert_eq!(
            api.json(&format!("/api/health/checks/port-listener/{amqp_port}")),
            json!({"status": "ok", "port": amqp_port})
        );
        let r = api.get("/api/health/checks/port-listener/1");
        assert_eq!(r.status, 503);
        assert_eq!((r.json()["status"].clone(), r.json()["missing"].clone()), (json!("failed"), json!(1)));
        assert_eq!(api.json("/api/aliveness-test/%2F"), json!({"status": "ok"}));
        assert_eq!(api.get("/api/aliveness-test/no-such-vhost").status, 404);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_have_rabbitmqs_fields() {
    let m = mgmt().await;
    let q = unique("shape");
    let api = m.api.as_user("guest", "guest");
    let warren = m.warren();
    blocking(move || {
        assert_eq!(api.put(&format!("/api/queues/%2F/{q}"), &json!({"durable": true})).status, 201);
        // Fields RabbitMQ reports about its Erlang processes and its
        // classic-queue internals, which Warren has no equivalent of.
        let erlang_only = [
            "backing_queue_status",
            "garbage_collection",
            "reductions",
            "reductions_details",
            "memory",
            "consumer_capacity",
            "consumer_utilisation",
            "head_message_timestamp",
            "idle_since",
            "message_bytes_paged_out",
            "message_bytes_persistent",
            "message_bytes_ram",
            "messages_paged_out",
            "messages_persistent",
            "messages_ram",
            "messages_ready_ram",
            "messages_unacknowledged_ram",
            "message_bytes",
            "message_bytes_ready",
            "message_bytes_unacknowledged",
        ];
        let got = settled(&api, &format!("/api/queues/%2F/{q}"), "state", json!("running"));
        let want: Vec<String> =
            keys(&fixture("queue_tmpq")).into_iter().filter(|k| !erlang_only.contains(&k.as_str())).collect();
        let have = keys(&got);
        let missing: Vec<&String> = want.iter().filter(|k| !have.contains(k)).collect();
        assert!(missing.is_empty() || !warren, "queue fields missing: {missing:?}");
        for (name, path) in [("whoami", "/api/whoami"), ("overview", "/api/overview")] {
            let want = keys(&fixture(name));
            let have = keys(&api.json(path));
            let missing: Vec<&String> = want.iter().filter(|k| !have.contains(k)).collect();
            assert!(missing.is_empty(), "{name} fields missing: {missing:?}");
        }
        let x = api.json("/api/exchanges/%2F/amq.direct");
        for k in keys(&fixture("exchanges")[0].clone()) {
            // RabbitMQ leaves out message_stats until the exchange saw traffic.
            assert!(x.get(&k).is_some() || (k == "message_stats" && !warren), "exchange field {k}");
        }
        let u = api.json("/api/users/guest");
        for k in ["name", "password_hash", "hashing_algorithm", "tags", "limits"] {
            assert!(u.get(k).is_some(), "user field {k}");
        }
        assert_eq!(api.delete(&format!("/api/queues/%2F/{q}")).status, 204);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_export_from_one_broker_import_into_another() {
    let a = mgmt().await;
    if !a.warren() {
        return; // needs two brokers
    }
    let b = mgmt().await;
    let (api_a, api_b) = (a.api.as_user("guest", "guest"), b.api.as_user("guest", "guest"));
    blocking(move || {
        assert_eq!(api_a.put("/api/vhosts/staging", &json!({"description": "s"})).status, 201);
        assert_eq!(api_a.put("/api/users/carol", &json!({"password": "pw", "tags": "management"})).status, 201);
        let perms = json!({"configure": ".*", "write": ".*", "read": ".*"});
        assert_eq!(api_a.put("/api/permissions/staging/carol", &perms).status, 201);
        assert_eq!(
            api_a
                .put("/api/queues/staging/jobs", &json!({"durable": true, "arguments": {"x-message-ttl": 5000}}))
                .status,
            201
        );
        assert_eq!(api_a.put("/api/exchanges/staging/events", &json!({"type": "fanout", "durable": true})).status, 201);
        assert_eq!(api_a.post("/api/bindings/staging/e/events/q/jobs", &json!({"routing_key": ""})).status, 201);
        let policy =
            json!({"pattern": "^jobs$", "definition": {"max-length": 50}, "apply-to": "queues", "priority": 2});
        assert_eq!(api_a.put("/api/policies/staging/cap", &policy).status, 201);
        let op = json!({"pattern": "^jobs$", "definition": {"max-length": 40}});
        assert_eq!(api_a.put("/api/operator-policies/staging/opcap", &op).status, 201);
        let defs = api_a.json("/api/definitions");
        assert!(defs.get("warren_journal_seq").is_none());
        let r = api_b.post("/api/definitions", &defs);
        assert_eq!(r.status, 204, "{}", r.text);
        let q = api_b.json("/api/queues/staging/jobs");
        assert_eq!(q["arguments"], json!({"x-message-ttl": 5000}));
        assert_eq!(api_b.json("/api/bindings/staging/e/events/q/jobs").as_array().unwrap().len(), 1);
        assert_eq!(api_b.json("/api/policies/staging/cap")["definition"], json!({"max-length": 50}));
        assert_eq!(api_b.json("/api/operator-policies/staging/opcap")["definition"], json!({"max-length": 40}));
        let jobs = api_b.json("/api/queues/staging/jobs");
        assert_eq!((jobs["policy"].as_str(), jobs["operator_policy"].as_str()), (Some("cap"), Some("opcap")));
        assert_eq!(api_b.as_user("carol", "pw").json("/api/whoami")["name"], json!("carol"), "the password came along");
        let one = api_a.json("/api/definitions/staging");
        assert!(one.get("users").is_none(), "a vhost's export has no users");
        assert_eq!(one["queues"].as_array().unwrap().len(), 1);
        let r = api_b.send("POST", "/api/definitions", "{not json");
        assert_eq!(r.status, 400);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_over_http_survive_a_restart() {
    if external() {
        return;
    }
    let dir = std::env::temp_dir().join(unique("mgmt-restart"));
    let d = dir.clone();
    let m = mgmt_with(|c| c.data_dir = Some(d)).await;
    let api = m.api.as_user("guest", "guest");
    blocking(move || {
        assert_eq!(api.put("/api/vhosts/kept", &json!({})).status, 201);
        assert_eq!(api.put("/api/users/dave", &json!({"password": "pw", "tags": "administrator"})).status, 201);
        assert_eq!(api.put("/api/permissions/kept/dave", &json!({"configure": ".*", "write": ".*", "read": ".*"})).status, 201);
        assert_eq!(api.put("/api/queues/kept/durable-q", &json!({"durable": true})).status, 201);
        let r = api.post(
            "/api/exchanges/kept/amq.default/publish",
            &json!({"routing_key": "durable-q", "payload": "persisted", "payload_encoding": "string", "properties": {"delivery_mode": 2}}),
        );
        assert_eq!(r.json(), json!({"routed": true}));
    })
    .await;
    let Mgmt { mut broker, .. } = m;
    broker.take_server().unwrap().shutdown().await;
    let d = dir.clone();
    let m = mgmt_with(|c| c.data_dir = Some(d)).await;
    let api = m.api.as_user("dave", "pw");
    blocking(move || {
        let q = api.json("/api/queues/kept/durable-q");
        assert_eq!(q["messages"], json!(1));
        let got = api.post(
            "/api/queues/kept/durable-q/get",
            &json!({"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"}),
        );
        assert_eq!(got.json()[0]["payload"], json!("persisted"));
    })
    .await;
    drop(m);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_set_over_http_apply_to_live_queues() {
    let m = mgmt().await;
    let q = unique("polq");
    let (_conn, ch) = connect_confirm_channel(&m.broker).await;
    declare_queue(&ch, &q).await;
    for i in 0..5 {
        publish_confirmed(&ch, "", &q, format!("m{i}").as_bytes()).await;
    }
    let api = m.api.as_user("guest", "guest");
    let (pol, op) = (unique("pol"), unique("op"));
    let q2 = q.clone();
    blocking(move || {
        let qp = format!("/api/queues/%2F/{q2}");
        let pp = format!("/api/policies/%2F/{pol}");
        let body = json!({"pattern": format!("^{q2}$"), "definition": {"max-length": 2}, "priority": 1, "apply-to": "queues"});
        assert_eq!(api.put(&pp, &body).status, 201);
        assert_eq!(api.put(&pp, &body).status, 204);
        assert_eq!(
            api.json(&pp),
            json!({"vhost": "/", "name": pol, "pattern": format!("^{q2}$"), "apply-to": "queues", "definition": {"max-length": 2}, "priority": 1})
        );
        settled(&api, &qp, "messages", json!(2));
        let got = settled(&api, &qp, "policy", json!(pol));
        assert_eq!(got["effective_policy_definition"], json!({"max-length": 2}));
        let r = api.put(&format!("/api/policies/%2F/{pol}-bad"), &json!({"pattern": "x", "definition": {"max-length": "x"}}));
        assert_eq!(r.status, 400);
        assert!(r.json()["reason"].as_str().unwrap().starts_with("Validation failed"), "{}", r.text);
        let r = api.put(&format!("/api/policies/%2F/{pol}-bad"), &json!({"definition": {"max-length": 1}}));
        assert_eq!(r.json()["reason"], json!("[{key_missing,pattern}]"));
        let r = api.put("/api/policies/no-such-vhost/p", &json!({"pattern": "x", "definition": {"max-length": 1}}));
        assert_eq!((r.status, r.json()), (404, json!({"error": "not_found", "reason": "vhost_not_found"})));
        let opp = format!("/api/operator-policies/%2F/{op}");
        assert_eq!(api.put(&opp, &json!({"pattern": format!("^{q2}$"), "definition": {"max-length": 1}})).status, 201);
        settled(&api, &qp, "messages", json!(1));
        let got = settled(&api, &qp, "operator_policy", json!(op));
        assert_eq!(got["effective_policy_definition"]["max-length"], json!(1), "the stricter value wins");
        assert!(api.json("/api/policies/%2F").as_array().unwrap().iter().any(|p| p["name"] == pol));
        assert!(api.json("/api/definitions")["policies"].as_array().unwrap().iter().any(|p| p["name"] == pol));
        assert_eq!(api.delete(&opp).status, 204);
        assert_eq!(api.delete(&pp).status, 204);
        assert_eq!(api.delete(&pp).status, 404);
        assert_eq!(settled(&api, &qp, "policy", Value::Null)["policy"], Value::Null);
    })
    .await;
    // Without the policy the queue takes more messages again.
    for i in 0..3 {
        publish_confirmed(&ch, "", &q, format!("n{i}").as_bytes()).await;
    }
    let api = m.api.as_user("guest", "guest");
    let q2 = q.clone();
    blocking(move || settled(&api, &format!("/api/queues/%2F/{q2}"), "messages", json!(4))).await;
    cleanup_queue(&m.broker, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_channels_and_consumers_are_listed_and_a_connection_closed_with_the_reason() {
    let m = mgmt().await;
    let q = unique("cq");
    let props = lapin::ConnectionProperties::default().with_connection_name("mgmt-test-conn".into());
    let conn = within(lapin::Connection::connect(&m.broker.uri(), props)).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.basic_qos(7, BasicQosOptions::default()).await.unwrap();
    declare_queue(&ch, &q).await;
    let (_pc, pch) = connect_confirm_channel(&m.broker).await;
    publish_confirmed(&pch, "", &q, b"held").await;
    let mut consumer = ch
        .basic_consume(q.as_str().into(), "ctag-mgmt".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();
    use futures_lite::StreamExt;
    let delivery = within(consumer.next()).await.unwrap().unwrap();
    let api = m.api.as_user("guest", "guest");
    let q2 = q.clone();
    let name = blocking(move || {
        let qp = format!("/api/queues/%2F/{q2}");
        settled(&api, &qp, "messages_unacknowledged", json!(1));
        let c = settled(&api, &qp, "consumers", json!(1));
        assert_eq!((c["messages_ready"].clone(), c["messages"].clone()), (json!(0), json!(1)));
        assert_eq!(c["consumer_details"][0]["consumer_tag"], json!("ctag-mgmt"));
        assert_eq!(c["consumer_details"][0]["prefetch_count"], json!(7));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let conn = loop {
            let all = api.json("/api/connections");
            let found = all.as_array().unwrap().iter().find(|c| c["user_provided_name"] == "mgmt-test-conn").cloned();
            if let Some(c) = found.filter(|c| c["channels"] == json!(1)) {
                break c;
            }
            assert!(std::time::Instant::now() < deadline, "connection not listed: {all}");
            std::thread::sleep(std::time::Duration::from_millis(250));
        };
        for k in [
            "name",
            "user",
            "vhost",
            "state",
            "client_properties",
            "peer_host",
            "peer_port",
            "port",
            "protocol",
            "channels",
            "recv_oct",
            "send_oct",
            "timeout",
            "frame_max",
            "connected_at",
        ] {
            assert!(conn.get(k).is_some(), "connection field {k}");
        }
        assert_eq!(
            (conn["user"].as_str(), conn["vhost"].as_str(), conn["state"].as_str()),
            (Some("guest"), Some("/"), Some("running"))
        );
        let name = conn["name"].as_str().unwrap().to_owned();
        assert!(name.contains(" -> "), "RabbitMQ's connection name: {name}");
        assert_eq!(api.json(&format!("/api/connections/{}", seg(&name)))["name"], json!(name));
        let mine = api.json("/api/connections/username/guest");
        assert!(mine.as_array().unwrap().iter().any(|c| c["name"] == json!(name)), "{mine}");
        let chans = api.json(&format!("/api/connections/{}/channels", seg(&name)));
        assert_eq!(chans.as_array().unwrap().len(), 1);
        assert_eq!(chans[0]["name"], json!(format!("{name} (1)")));
        assert_eq!(chans[0]["prefetch_count"], json!(7));
        assert_eq!(chans[0]["consumer_count"], json!(1));
        assert_eq!(chans[0]["messages_unacknowledged"], json!(1));
        let consumers = api.json("/api/consumers/%2F");
        let c = consumers
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["consumer_tag"] == "ctag-mgmt")
            .expect("consumer listed")
            .clone();
        assert_eq!(c["queue"], json!({"name": q2, "vhost": "/"}));
        assert_eq!(c["channel_details"]["connection_name"], json!(name));
        assert_eq!(c["ack_required"], json!(true));
        let overview = api.json("/api/overview");
        assert!(overview["object_totals"]["connections"].as_u64().unwrap() >= 2);
        assert!(overview["object_totals"]["channels"].as_u64().unwrap() >= 2);
        name
    })
    .await;
    delivery.ack(BasicAckOptions::default()).await.unwrap();
    // Listening before the close is asked for: an event before it is not kept.
    let mut ev = events(&conn);
    let api = m.api.as_user("guest", "guest");
    let q2 = q.clone();
    let n2 = name.clone();
    blocking(move || {
        settled(&api, &format!("/api/queues/%2F/{q2}"), "messages_unacknowledged", json!(0));
        let stats = api.json(&format!("/api/queues/%2F/{q2}"))["message_stats"].clone();
        assert_eq!(
            (stats["publish"].clone(), stats["deliver"].clone(), stats["ack"].clone()),
            (json!(1), json!(1), json!(1))
        );
        let r = api.delete_with(&format!("/api/connections/{}", seg(&n2)), &[("X-Reason", "maintenance window")]);
        assert_eq!(r.status, 204, "{}", r.text);
    })
    .await;
    let closed = within(next_error(&mut ev)).await;
    let (code, text) = amqp_error(&closed.unwrap_err());
    assert_eq!((code, text.as_str()), (320, "CONNECTION_FORCED - maintenance window"));
    let api = m.api.as_user("guest", "guest");
    blocking(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while api.get(&format!("/api/connections/{}", seg(&name))).status != 404 {
            assert!(std::time::Instant::now() < deadline, "the closed connection is still listed");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    })
    .await;
    cleanup_queue(&m.broker, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_metrics_use_rabbitmqs_names() {
    if external() {
        return;
    }
    let broker = broker_with(|c| {
        c.management_port = Some(0);
        c.prometheus_port = Some(0);
    })
    .await;
    let server = broker.server().unwrap();
    let metrics = format!("http://{}", server.prometheus_addr().unwrap());
    let api = Http::new(&format!("http://{}", server.management_addr().unwrap()), Some(("guest", "guest")));
    let (_c, ch) = connect_confirm_channel(&broker).await;
    let q = unique("prom");
    declare_queue(&ch, &q).await;
    publish_confirmed(&ch, "", &q, b"one").await;
    publish_confirmed(&ch, "", "no-such-queue-anywhere", b"dropped").await;
    let q2 = q.clone();
    blocking(move || {
        let plain = Http::new(&metrics, None);
        let r = plain.get("/metrics");
        assert_eq!(r.status, 200);
        assert!(r.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
        let value = |text: &str, series: &str| -> f64 {
            let line = text.lines().find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '));
            line.unwrap_or_else(|| panic!("no {series} in:\n{text}")).rsplit(' ').next().unwrap().parse().unwrap()
        };
        let t = r.text;
        assert_eq!(value(&t, "rabbitmq_connections"), 1.0);
        assert_eq!(value(&t, "rabbitmq_channels"), 1.0);
        assert!(value(&t, "rabbitmq_queues") >= 1.0);
        assert!(value(&t, "rabbitmq_queue_messages_ready") >= 1.0);
        assert_eq!(value(&t, "rabbitmq_global_messages_received_total"), 2.0);
        assert_eq!(value(&t, "rabbitmq_global_messages_routed_total"), 1.0);
        assert_eq!(value(&t, "rabbitmq_global_messages_unroutable_dropped_total"), 1.0);
        assert_eq!(value(&t, "rabbitmq_global_messages_confirmed_total"), 2.0);
        assert!(value(&t, "rabbitmq_process_resident_memory_bytes") > 1e6);
        assert_eq!(value(&t, "rabbitmq_alarms_memory_used_watermark"), 0.0);
        assert!(!t.contains(&format!("queue=\"{q2}\"")), "aggregated by default");
        let per = plain.get("/metrics/per-object").text;
        assert_eq!(value(&per, &format!("rabbitmq_queue_messages_ready{{vhost=\"/\",queue=\"{q2}\"}}")), 1.0);
        assert_eq!(value(&per, &format!("rabbitmq_queue_messages_published_total{{vhost=\"/\",queue=\"{q2}\"}}")), 1.0);
        // The management API's overview agrees.
        assert_eq!(api.json("/api/overview")["message_stats"]["publish"], json!(2));
    })
    .await;
}
