//! The management API through a client nobody here wrote:
//! `rabbitmq_http_client` (the library behind rabbitmqadmin v2), blocking
//! client, against an in-process Warren. It deserialises every response
//! into its own typed structs, so a field Warren leaves out or spells
//! differently fails here even when a hand-written JSON test would pass.
//! `interop/http_client/run.sh` runs the crate's own integration suite.
//!
//! Every test also runs against the reference RabbitMQ:
//! `WARREN_TEST_URI=amqp://guest:guest@127.0.0.1:5673/%2f
//! WARREN_TEST_MGMT_URL=http://127.0.0.1:15673 cargo nextest run --test
//! http_client` with `reference-rabbitmq start`.

mod common;

use std::time::{Duration, Instant};

use common::http::blocking;
use common::*;
use rabbitmq_http_client::blocking_api::Client;
use rabbitmq_http_client::commons::{BindingDestinationType, ExchangeType, PolicyTarget, QueueType, SupportedProtocol};
use rabbitmq_http_client::password_hashing;
use rabbitmq_http_client::requests::{
    BindingDeletionParams, ExchangeParams, MessageProperties, Permissions, PolicyParams, QueueParams, UserParams,
    VirtualHostParams,
};
use rabbitmq_http_client::responses::QueueInfo;
use serde_json::{json, Map, Value};

type Api = Client<String, String, String>;

/// A broker with the management API on, and the base URL the crate wants
/// (ending in `/api`).
async fn start() -> (TestBroker, String) {
    let broker = broker_with(|c| c.management_port = Some(0)).await;
    let base = match broker.server() {
        Some(s) => format!("http://{}/api", s.management_addr().expect("management is on")),
        None => {
            format!("{}/api", std::env::var("WARREN_TEST_MGMT_URL").expect("WARREN_TEST_MGMT_URL with WARREN_TEST_URI"))
        }
    };
    (broker, base)
}

fn client(base: &str, user: &str, pass: &str) -> Api {
    Client::new(base.to_owned(), user.to_owned(), pass.to_owned())
}

fn guest(base: &str) -> Api {
    client(base, "guest", "guest")
}

/// `get_queue_info` until `done` holds: RabbitMQ's message counts lag by
/// its statistics interval, Warren's do not.
fn queue_until(api: &Api, vhost: &str, name: &str, done: impl Fn(&QueueInfo) -> bool) -> QueueInfo {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let q = api.get_queue_info(vhost, name).expect("get_queue_info");
        if done(&q) || Instant::now() > deadline {
            return q;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn args(v: Value) -> Option<Map<String, Value>> {
    v.as_object().cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_whoami_and_version() {
    let (broker, base) = start().await;
    let warren = broker.is_warren();
    blocking(move || {
        let api = guest(&base);
        let o = api.overview().expect("overview");
        assert!(!o.rabbitmq_version.is_empty());
        assert!(!o.node.is_empty());
        assert!(o.object_totals.exchanges >= 7, "the default exchanges: {:?}", o.object_totals);
        if warren {
            assert_eq!(o.object_totals.connections, 0);
        }
        assert_eq!(api.server_version().expect("server_version"), o.rabbitmq_version);

        let me = api.current_user().expect("whoami");
        assert_eq!(me.name, "guest");
        assert!(me.tags.0.iter().any(|t| t == "administrator"), "tags {:?}", me.tags);

        let wrong = client(&base, "guest", "not-the-password").overview().unwrap_err();
        assert!(wrong.is_unauthorized(), "{wrong:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vhosts_declare_get_list_delete() {
    let (_broker, base) = start().await;
    blocking(move || {
        let api = guest(&base);
        let name = unique("hc-vhost");
        let params = VirtualHostParams {
            name: &name,
            description: Some("made by rabbitmq_http_client"),
            tags: Some(vec!["qa", "rust"]),
            default_queue_type: Some(QueueType::Classic),
            tracing: false,
        };
        api.create_vhost(&params).expect("create_vhost");

        let vh = api.get_vhost(&name).expect("get_vhost");
        assert_eq!(vh.name, name);
        assert_eq!(vh.description.as_deref(), Some("made by rabbitmq_http_client"));
        let mut tags = vh.tags.expect("tags").0;
        tags.sort();
        assert_eq!(tags, ["qa", "rust"]);
        assert_eq!(vh.default_queue_type.as_deref(), Some("classic"));

        let all = api.list_vhosts().expect("list_vhosts");
        assert!(all.iter().any(|v| v.name == "/"));
        assert!(all.iter().any(|v| v.name == name));

        // The creator (guest) gets no permissions by itself over the API;
        // grant them, then objects can live there.
        api.grant_full_permissions("guest", &name).expect("grant_full_permissions");
        api.declare_queue(&name, &QueueParams::new_durable_classic_queue("in-the-vhost", None))
            .expect("declare_queue in the new vhost");
        assert_eq!(api.list_queues_in(&name).expect("list_queues_in").len(), 1);

        api.delete_vhost(&name, false).expect("delete_vhost");
        assert!(api.get_vhost(&name).unwrap_err().is_not_found());
        assert!(api.delete_vhost(&name, false).unwrap_err().is_not_found());
        api.delete_vhost(&name, true).expect("idempotent delete of a missing vhost");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_with_password_hashes_and_permissions() {
    let (broker, base) = start().await;
    let amqp = broker.addr();
    let user = unique("hc-user");
    let pass = "s3cret-from-a-hash";
    let (u, b) = (user.clone(), base.clone());
    blocking(move || {
        let api = guest(&b);
        let salt = password_hashing::salt();
        let hash = password_hashing::base64_encoded_salted_password_hash_sha256(&salt, pass);
        api.create_user(&UserParams { name: &u, password_hash: &hash, tags: "management,monitoring" })
            .expect("create_user");

        let got = api.get_user(&u).expect("get_user");
        let mut tags = got.tags.0.clone();
        tags.sort();
        assert_eq!(tags, ["management", "monitoring"]);
        assert!(api.list_users().expect("list_users").iter().any(|x| x.name == u));
        assert!(api.list_users_without_permissions().expect("without permissions").iter().any(|x| x.name == u));

        // The hash the crate made is one the broker checks a password against.
        let me = client(&b, &u, pass).current_user().expect("whoami as the new user");
        assert_eq!(me.name, u);
        assert!(client(&b, &u, "wrong").current_user().unwrap_err().is_unauthorized());

        api.declare_permissions(&Permissions { user: &u, vhost: "/", configure: "^hc\\.", write: ".*", read: "^$" })
            .expect("declare_permissions");
        let p = api.get_permissions("/", &u).expect("get_permissions");
        assert_eq!((p.configure.as_str(), p.write.as_str(), p.read.as_str()), ("^hc\\.", ".*", "^$"));
        assert_eq!(api.list_permissions_of(&u).expect("list_permissions_of").len(), 1);
        assert!(api.list_permissions_in("/").expect("list_permissions_in").iter().any(|p| p.user == u));
        assert!(!api.list_users_without_permissions().expect("without permissions").iter().any(|x| x.name == u));
    })
    .await;

    // The permissions bind AMQP clients too: configure only on ^hc\.
    let conn =
        lapin::Connection::connect(&format!("amqp://{user}:{pass}@{amqp}/%2f"), lapin::ConnectionProperties::default())
            .await
            .expect("AMQP login with the hashed password");
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare("hc.allowed".into(), lapin::options::QueueDeclareOptions::default(), Default::default())
        .await
        .expect("configure on ^hc\\.");
    let denied =
        ch.queue_declare("elsewhere".into(), lapin::options::QueueDeclareOptions::default(), Default::default()).await;
    assert_eq!(amqp_error(&denied.unwrap_err()).0, 403);
    let _ = conn.close(200, "bye".into()).await;

    blocking(move || {
        let api = guest(&base);
        api.delete_queue("/", "hc.allowed", true).expect("delete_queue");
        api.clear_permissions("/", &user, false).expect("clear_permissions");
        assert!(api.get_permissions("/", &user).unwrap_err().is_not_found());
        api.delete_user(&user, false).expect("delete_user");
        assert!(api.get_user(&user).unwrap_err().is_not_found());
        api.delete_user(&user, true).expect("idempotent delete of a missing user");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_declare_with_arguments_inspect_purge_delete() {
    let (_broker, base) = start().await;
    blocking(move || {
        let api = guest(&base);
        let q = unique("hc-queue");
        let params = QueueParams::new(
            &q,
            QueueType::Classic,
            true,
            false,
            args(json!({"x-max-length": 10, "x-message-ttl": 60000, "x-dead-letter-exchange": "amq.fanout"})),
        );
        api.declare_queue("/", &params).expect("declare_queue");

        let info = api.get_queue_info("/", &q).expect("get_queue_info");
        assert_eq!(info.name, q);
        assert_eq!(info.vhost, "/");
        assert!(info.durable && !info.auto_delete && !info.exclusive);
        assert_eq!(info.queue_type, "classic");
        let a = &info.arguments.0;
        assert_eq!(a["x-max-length"], json!(10));
        assert_eq!(a["x-message-ttl"], json!(60000));
        assert_eq!(a["x-dead-letter-exchange"], json!("amq.fanout"));
        assert_eq!(info.message_count, 0);

        // Redeclaring with other arguments is PRECONDITION_FAILED, a 400.
        let other = QueueParams::new(&q, QueueType::Classic, true, false, args(json!({"x-max-length": 11})));
        let e = api.declare_queue("/", &other).unwrap_err();
        assert_eq!(e.status_code().map(|s| s.as_u16()), Some(400), "{e:?}");

        assert!(api.list_queues().expect("list_queues").iter().any(|x| x.name == q));
        assert!(api.list_queues_in("/").expect("list_queues_in").iter().any(|x| x.name == q));
        assert!(api.list_classic_queues_in("/").expect("list_classic_queues_in").iter().any(|x| x.name == q));

        for i in 0..3 {
            let routed = api
                .publish_message("/", "", &q, &format!("m{i}"), MessageProperties::default())
                .expect("publish_message");
            assert!(routed.routed);
        }
        let info = queue_until(&api, "/", &q, |i| i.message_count == 3);
        assert_eq!(info.message_count, 3);
        assert_eq!(info.message_bytes, 6);

        api.purge_queue("/", &q).expect("purge_queue");
        assert_eq!(queue_until(&api, "/", &q, |i| i.message_count == 0).message_count, 0);
        assert!(api.get_messages("/", &q, 1, "ack_requeue_false").expect("get after purge").is_empty());

        api.delete_queue("/", &q, false).expect("delete_queue");
        assert!(api.get_queue_info("/", &q).unwrap_err().is_not_found());
        assert!(api.delete_queue("/", &q, false).unwrap_err().is_not_found());
        api.delete_queue("/", &q, true).expect("idempotent delete of a missing queue");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchanges_and_bindings_route_as_listed() {
    let (_broker, base) = start().await;
    blocking(move || {
        let api = guest(&base);
        let x = unique("hc-topic");
        let x2 = unique("hc-fanout");
        let q = unique("hc-bound");
        api.declare_exchange("/", &ExchangeParams::durable(&x, ExchangeType::Topic, None)).expect("declare topic");
        api.declare_exchange(
            "/",
            &ExchangeParams::fanout(&x2, false, true, args(json!({"alternate-exchange": "amq.direct"}))),
        )
        .expect("declare fanout");
        api.declare_queue("/", &QueueParams::new_durable_classic_queue(&q, None)).expect("declare_queue");

        let info = api.get_exchange_info("/", &x).expect("get_exchange_info");
        assert_eq!(
            (info.name.as_str(), info.exchange_type.as_str(), info.durable, info.auto_delete),
            (x.as_str(), "topic", true, false)
        );
        let info2 = api.get_exchange_info("/", &x2).expect("get_exchange_info fanout");
        assert_eq!(info2.exchange_type, "fanout");
        assert!(info2.auto_delete);
        assert_eq!(info2.arguments.0["alternate-exchange"], json!("amq.direct"));
        let listed = api.list_exchanges_in("/").expect("list_exchanges_in");
        assert!(listed.iter().any(|e| e.name == x));
        assert!(listed.iter().any(|e| e.name.is_empty() && e.exchange_type == "direct"), "the default exchange");

        // x2 (fanout) -> x (topic) -> q on "a.*".
        api.bind_queue("/", &q, &x, Some("a.*"), None).expect("bind_queue");
        api.bind_exchange("/", &x, &x2, Some("ignored"), None).expect("bind_exchange");

        let qb = api.list_queue_bindings("/", &q).expect("list_queue_bindings");
        assert!(qb
            .iter()
            .any(|b| b.source == x && b.routing_key == "a.*" && b.destination_type == BindingDestinationType::Queue));
        assert!(qb.iter().any(|b| b.source.is_empty() && b.routing_key == q), "the default exchange's binding");
        let from_x2 = api.list_exchange_bindings_with_source("/", &x2).expect("with_source");
        assert_eq!(from_x2.len(), 1);
        assert_eq!(
            (from_x2[0].destination.as_str(), &from_x2[0].destination_type),
            (x.as_str(), &BindingDestinationType::Exchange)
        );
        let to_x = api.list_exchange_bindings_with_destination("/", &x).expect("with_destination");
        assert_eq!(to_x.len(), 1);
        assert!(api
            .list_bindings_in("/")
            .expect("list_bindings_in")
            .iter()
            .any(|b| b.source == x && b.destination == q));

        let r =
            api.publish_message("/", &x2, "a.b", "through two hops", MessageProperties::default()).expect("publish");
        assert!(r.routed);
        assert!(
            !api.publish_message("/", &x, "b.a", "no match", MessageProperties::default()).expect("publish").routed
        );
        let got = api.get_messages("/", &q, 5, "ack_requeue_false").expect("get_messages");
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].payload.as_str(), got[0].exchange.as_str(), got[0].routing_key.as_str()),
            ("through two hops", x2.as_str(), "a.b")
        );

        api.delete_binding(
            &BindingDeletionParams {
                virtual_host: "/",
                source: &x,
                destination: &q,
                destination_type: BindingDestinationType::Queue,
                routing_key: "a.*",
                arguments: None,
            },
            false,
        )
        .expect("delete_binding");
        assert!(!api.list_queue_bindings("/", &q).unwrap().iter().any(|b| b.source == x));
        assert!(!api.publish_message("/", &x, "a.b", "unbound", MessageProperties::default()).unwrap().routed);

        api.delete_queue("/", &q, false).expect("delete_queue");
        api.delete_exchange("/", &x, false).expect("delete_exchange");
        assert!(api.get_exchange_info("/", &x).unwrap_err().is_not_found());
        // x2 was auto-delete, but its binding to x went with x: RabbitMQ
        // deletes it then. Either way an idempotent delete succeeds.
        api.delete_exchange("/", &x2, true).expect("idempotent delete_exchange");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_published_and_got_with_properties() {
    let (_broker, base) = start().await;
    blocking(move || {
        let api = guest(&base);
        let q = unique("hc-messages");
        api.declare_queue("/", &QueueParams::new_durable_classic_queue(&q, None)).unwrap();
        let mut props = Map::new();
        props.insert("content_type".into(), json!("text/plain"));
        props.insert("delivery_mode".into(), json!(2));
        props.insert("headers".into(), json!({"k": "v"}));
        props.insert("timestamp".into(), json!(123456789));
        assert!(api.publish_message("/", "amq.default", &q, "first", props.clone()).expect("publish").routed);
        assert!(api.publish_message("/", "", &q, "second", MessageProperties::default()).expect("publish").routed);

        // ack_requeue_true leaves it there, redelivered.
        let peek = api.get_messages("/", &q, 1, "ack_requeue_true").expect("get requeue");
        assert_eq!(peek.len(), 1);
        assert_eq!(peek[0].payload, "first");
        assert_eq!(peek[0].payload_bytes, 5);
        assert_eq!(peek[0].payload_encoding, "string");
        assert_eq!(peek[0].message_count, 1);
        assert!(!peek[0].redelivered);
        assert_eq!(peek[0].properties.0, props);

        let both = api.get_messages("/", &q, 10, "ack_requeue_false").expect("get");
        assert_eq!(both.iter().map(|m| m.payload.as_str()).collect::<Vec<_>>(), ["first", "second"]);
        assert!(both[0].redelivered);
        assert!(api.get_messages("/", &q, 1, "ack_requeue_false").unwrap().is_empty());

        let missing =
            api.publish_message("/", "hc-no-such-exchange", "k", "x", MessageProperties::default()).unwrap_err();
        assert!(missing.is_not_found(), "{missing:?}");
        api.delete_queue("/", &q, false).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_declare_list_apply_delete() {
    let (_broker, base) = start().await;
    blocking(move || {
        let api = guest(&base);
        let q = unique("hc-pol");
        let pattern = format!("^{q}$");
        api.declare_queue("/", &QueueParams::new_durable_classic_queue(&q, None)).unwrap();
        let mut definition = Map::new();
        definition.insert("max-length".into(), json!(2));
        definition.insert("overflow".into(), json!("reject-publish"));
        let params =
            PolicyParams::new("/", "hc-limit", &pattern, definition.clone()).apply_to(PolicyTarget::Queues).priority(7);
        api.declare_policy(&params).expect("declare_policy");

        let p = api.get_policy("/", "hc-limit").expect("get_policy");
        assert_eq!(
            (p.name.as_str(), p.vhost.as_str(), p.pattern.as_str(), p.priority),
            ("hc-limit", "/", pattern.as_str(), 7)
        );
        assert_eq!(p.apply_to, PolicyTarget::Queues);
        assert_eq!(p.definition.0.as_ref(), Some(&definition));
        assert!(api.list_policies().expect("list_policies").iter().any(|p| p.name == "hc-limit"));
        assert_eq!(api.list_policies_in("/").expect("list_policies_in").len(), 1);

        // It applies: the queue names it, and the broker enforces it.
        let info = queue_until(&api, "/", &q, |i| i.policy.is_some());
        assert_eq!(info.policy.as_deref(), Some("hc-limit"));
        for i in 0..3 {
            api.publish_message("/", "", &q, &format!("m{i}"), MessageProperties::default()).unwrap();
        }
        assert_eq!(queue_until(&api, "/", &q, |i| i.message_count >= 2).message_count, 2);

        api.delete_policy("/", "hc-limit", false).expect("delete_policy");
        assert!(api.get_policy("/", "hc-limit").unwrap_err().is_not_found());
        assert!(api.list_policies_in("/").expect("list_policies_in").is_empty());
        assert_eq!(queue_until(&api, "/", &q, |i| i.policy.is_none()).policy, None);
        api.delete_policy("/", "hc-limit", true).expect("idempotent delete_policy");
        api.delete_queue("/", &q, false).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_export_and_import() {
    let (_broker, base) = start().await;
    blocking(move || {
        let api = guest(&base);
        let q = unique("hc-def-q");
        let x = unique("hc-def-x");
        api.declare_exchange("/", &ExchangeParams::durable(&x, ExchangeType::Direct, None)).unwrap();
        api.declare_queue("/", &QueueParams::new_durable_classic_queue(&q, args(json!({"x-max-priority": 5}))))
            .unwrap();
        api.bind_queue("/", &q, &x, Some("rk"), None).unwrap();

        let defs = api.export_cluster_wide_definitions_as_data().expect("export as data");
        assert!(defs.users.iter().any(|u| u.name == "guest"));
        assert!(defs.virtual_hosts.iter().any(|v| v.name == "/"));
        assert!(defs.permissions.iter().any(|p| p.user == "guest" && p.vhost == "/"));
        let qd = defs.queues.iter().find(|d| d.name == q).expect("the queue is exported");
        assert_eq!(qd.arguments.0["x-max-priority"], json!(5));
        assert!(defs.exchanges.iter().any(|e| e.name == x && e.exchange_type == "direct"));
        assert!(defs.bindings.iter().any(|b| b.source == x && b.destination == q && b.routing_key == "rk"));
        assert!(!defs.exchanges.iter().any(|e| e.name.starts_with("amq.")), "built-in exchanges are not exported");

        let vdefs = api.export_vhost_definitions_as_data("/").expect("vhost export");
        assert!(vdefs.queues.iter().any(|d| d.name == q));
        assert!(vdefs.bindings.iter().any(|b| b.source == x));

        let text: Value =
            serde_json::from_str(&api.export_cluster_wide_definitions().expect("export as text")).unwrap();
        assert!(text["rabbit_version"].is_string());

        // Import: a vhost, a queue in it, a policy.
        let vh = unique("hc-def-vh");
        let imported_q = unique("hc-imported");
        api.import_cluster_wide_definitions(json!({
            "vhosts": [{"name": vh}],
            "permissions": [{"user": "guest", "vhost": vh, "configure": ".*", "write": ".*", "read": ".*"}],
            "queues": [{"name": imported_q, "vhost": vh, "durable": true, "auto_delete": false,
                        "arguments": {"x-message-ttl": 1000}}],
            "exchanges": [], "bindings": [],
            "policies": [{"vhost": vh, "name": "hc-imported-pol", "pattern": ".*", "apply-to": "queues",
                          "priority": 0, "definition": {"max-length": 9}}]
        }))
        .expect("import");
        let iq = api.get_queue_info(&vh, &imported_q).expect("the imported queue");
        assert_eq!(iq.arguments.0["x-message-ttl"], json!(1000));
        assert_eq!(
            api.get_policy(&vh, "hc-imported-pol")
                .expect("the imported policy")
                .definition
                .0
                .as_ref()
                .map(|d| d["max-length"].clone()),
            Some(json!(9))
        );

        let vq = unique("hc-vhost-import");
        api.import_vhost_definitions(
            &vh,
            json!({"queues": [{"name": vq, "durable": true, "auto_delete": false, "arguments": {}}]}),
        )
        .expect("vhost import");
        assert!(api.get_queue_info(&vh, &vq).expect("vhost-imported queue").durable);

        api.delete_vhost(&vh, false).unwrap();
        api.delete_queue("/", &q, false).unwrap();
        api.delete_exchange("/", &x, false).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_pass_and_fail_as_rabbitmq() {
    let (broker, base) = start().await;
    let amqp_port = broker.addr().port();
    blocking(move || {
        let api = guest(&base);
        api.health_check_local_alarms().expect("no local alarms");
        api.health_check_cluster_wide_alarms().expect("no cluster alarms");
        api.health_check_if_node_is_quorum_critical().expect("not quorum critical");
        api.health_check_protocol_listener(SupportedProtocol::AMQP).expect("an AMQP listener");
        api.health_check_port_listener(amqp_port).expect("the AMQP port listens");
        // A port nothing listens on: the check answers 503 and the crate
        // reports a failed health check, not a transport error.
        let e = api.health_check_port_listener(1).unwrap_err();
        assert!(matches!(e, rabbitmq_http_client::error::Error::HealthCheckFailed { .. }), "{e:?}");
        let e = api.health_check_protocol_listener(SupportedProtocol::Stream).unwrap_err();
        assert!(matches!(e, rabbitmq_http_client::error::Error::HealthCheckFailed { .. }), "{e:?}");
    })
    .await;
}
