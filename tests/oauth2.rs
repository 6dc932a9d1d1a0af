//! OAuth 2.0 tokens (rabbit_auth_backend_oauth2): a JWT made in the test is
//! the password; its scopes are the permissions; update-secret swaps it; an
//! expired token closes the connection. Warren only: the reference node has
//! no oauth2 plugin configured.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use amq_protocol::protocol::{connection, AMQPClass};
use amq_protocol::types::{LongString, ShortString};
use base64::Engine;
use common::raw::{Close, RawConn};
use common::*;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::json;

const SECRET: &[u8] = b"a-test-secret-that-is-long-enough";

struct Keys {
    dir: PathBuf,
    es256: EncodingKey,
}

impl Drop for Keys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An HS256 JWK file (kid `hs`) and a fresh ES256 key pair (kid `es`, the
/// public half as a PEM file), made here.
fn keys() -> Keys {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let dir = std::env::temp_dir().join(unique("oauth2"));
    std::fs::create_dir_all(&dir).unwrap();
    let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(SECRET);
    std::fs::write(dir.join("hs.json"), json!({"kty": "oct", "k": k}).to_string()).unwrap();
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    // SubjectPublicKeyInfo for id-ecPublicKey / prime256v1, then the point.
    let mut spki = hex("3059301306072a8648ce3d020106082a8648ce3d030107034200");
    spki.extend_from_slice(pair.public_key().as_ref());
    let b64 = base64::engine::general_purpose::STANDARD.encode(&spki);
    let pem = format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n");
    std::fs::write(dir.join("es.pem"), pem).unwrap();
    Keys { es256: EncodingKey::from_ec_der(pkcs8.as_ref()), dir }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn conf(dir: &Path) -> String {
    format!(
        "auth_backends.1 = rabbit_auth_backend_oauth2\n\
         auth_backends.2 = internal\n\
         auth_oauth2.resource_server_id = rabbitmq\n\
         auth_oauth2.default_key = hs\n\
         auth_oauth2.signing_keys.hs = {}\n\
         auth_oauth2.signing_keys.es = {}\n",
        dir.join("hs.json").display(),
        dir.join("es.pem").display()
    )
}

async fn oauth2_broker(keys: &Keys, clock: Option<warren::clock::Clock>) -> TestBroker {
    let mut config = warren::Config::ephemeral();
    config.apply_rabbitmq_conf(&conf(&keys.dir), &|_| false).unwrap();
    if let Some(c) = clock {
        config.clock = c;
    }
    broker_with_config(config).await
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn claims(scope: &str, exp: u64) -> serde_json::Value {
    json!({"sub": "svc", "aud": ["rabbitmq"], "exp": exp, "scope": scope})
}

fn hs256(claims: &serde_json::Value, secret: &[u8]) -> String {
    encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn es256(keys: &Keys, claims: &serde_json::Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("es".into());
    encode(&h, claims, &keys.es256).unwrap()
}

const ALL: &str = "rabbitmq.read:*/* rabbitmq.write:*/* rabbitmq.configure:*/*";

async fn connect_with(b: &TestBroker, user: &str, token: &str) -> lapin::Result<Connection> {
    within(Connection::connect(&b.uri_with(user, token, "/"), ConnectionProperties::default())).await
}

#[tokio::test]
async fn a_valid_token_logs_in_with_any_user_name_and_bad_ones_are_refused() {
    if external() {
        return;
    }
    let keys = keys();
    let b = oauth2_broker(&keys, None).await;
    let good = claims(ALL, now() + 300);
    for token in [hs256(&good, SECRET), es256(&keys, &good)] {
        let c = connect_with(&b, "ignored", &token).await.expect("a valid token logs in");
        let ch = within(c.create_channel()).await.unwrap();
        within(ch.queue_declare(unique("q").as_str().into(), QueueDeclareOptions::default(), FieldTable::default()))
            .await
            .unwrap();
        let who = b.server().unwrap().broker().connections();
        assert!(who.iter().any(|i| i.user == "svc"), "the user is the token's sub: {who:?}");
    }
    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("someone-else");
    let refused = [
        ("bad aud", hs256(&wrong_aud, SECRET)),
        ("expired", hs256(&claims(ALL, now() - 1), SECRET)),
        ("wrong key", hs256(&good, b"not-the-configured-secret-at-all!")),
        ("wrong algorithm for the key", {
            let mut h = Header::new(Algorithm::HS256);
            h.kid = Some("es".into());
            encode(&h, &good, &EncodingKey::from_secret(SECRET)).unwrap()
        }),
        ("garbage", "eyJhbGciOi.not.a-token".to_owned()),
    ];
    for (why, token) in refused {
        assert!(connect_with(&b, "svc", &token).await.is_err(), "{why} must be refused");
    }
    // auth_backends.2 = internal: passwords still work, even one with the
    // dots of a JWT.
    assert!(connect_with(&b, "guest", "guest").await.is_ok());
    let broker = b.server().unwrap().broker();
    broker.put_user(&warren::broker::User::new("dots", "a.b.c", &[]).to_def()).unwrap();
    broker.set_permissions(warren::store::definitions::PermissionDef {
        user: "dots".into(),
        vhost: "/".into(),
        configure: ".*".into(),
        write: ".*".into(),
        read: ".*".into(),
    });
    assert!(connect_with(&b, "dots", "a.b.c").await.is_ok());
    assert!(connect_with(&b, "dots", "a.b.d").await.is_err());
}

/// An RS256 key pair made with `openssl` (ring cannot generate RSA keys);
/// the test says so and passes without it where openssl is missing.
fn rsa_key_pair(dir: &Path) -> Option<EncodingKey> {
    let private = dir.join("rsa-private.pem");
    let made = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
        .arg(&private)
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?
        .success()
        && std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(dir.join("rsa.pem"))
            .status()
            .ok()?
            .success();
    made.then(|| EncodingKey::from_rsa_pem(&std::fs::read(&private).unwrap()).unwrap())
}

#[tokio::test]
async fn rs256_tokens_verify_against_a_pem_public_key() {
    if external() {
        return;
    }
    let keys = keys();
    let Some(rsa) = rsa_key_pair(&keys.dir) else {
        eprintln!("openssl is not installed: RS256 not tested");
        return;
    };
    let mut config = warren::Config::ephemeral();
    let conf = format!("{}auth_oauth2.signing_keys.rsa = {}\n", conf(&keys.dir), keys.dir.join("rsa.pem").display());
    config.apply_rabbitmq_conf(&conf, &|_| false).unwrap();
    let b = broker_with_config(config).await;
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("rsa".into());
    let token = encode(&h, &claims(ALL, now() + 300), &rsa).unwrap();
    assert!(connect_with(&b, "", &token).await.is_ok());
    // The same claims signed with the EC key but naming the RSA key.
    let mut forged = Header::new(Algorithm::ES256);
    forged.kid = Some("rsa".into());
    let forged = encode(&forged, &claims(ALL, now() + 300), &keys.es256).unwrap();
    assert!(connect_with(&b, "", &forged).await.is_err());
}

#[tokio::test]
async fn scopes_decide_what_the_connection_may_do() {
    if external() {
        return;
    }
    let keys = keys();
    let b = oauth2_broker(&keys, None).await;
    let q = unique("q");
    {
        let admin = connect_with(&b, "", &hs256(&claims(ALL, now() + 300), SECRET)).await.unwrap();
        let ch = within(admin.create_channel()).await.unwrap();
        within(ch.queue_declare(q.as_str().into(), QueueDeclareOptions::default(), FieldTable::default()))
            .await
            .unwrap();
    }
    let token = hs256(&claims("rabbitmq.write:%2F/* rabbitmq.read:%2F/wt-* other.configure:*/*", now() + 300), SECRET);
    let c = connect_with(&b, "", &token).await.unwrap();
    let ch = within(c.create_channel()).await.unwrap();
    let confirm = within(ch.basic_publish(
        "".into(),
        q.as_str().into(),
        BasicPublishOptions::default(),
        b"m",
        BasicProperties::default(),
    ))
    .await
    .expect("write on / lets it publish");
    drop(confirm);
    let err =
        within(ch.queue_declare(unique("new").as_str().into(), QueueDeclareOptions::default(), FieldTable::default()))
            .await
            .expect_err("no configure scope for this resource server");
    let text = err.to_string();
    assert!(text.contains("ACCESS_REFUSED - access to queue 'wt-new-"), "{text}");
    assert!(text.contains("in vhost '/' refused for user 'svc'"), "{text}");
}

/// The routing-key segment of a scope is the topic permission, as in the
/// plugin: a `write` scope's for publishes to a topic exchange its name
/// segment matches, a `read` scope's for bindings from one. A scope with two
/// segments grants no topic access (`write:*/*` alone cannot publish to
/// amq.topic). The refusal is the one password users' topic permissions get.
#[tokio::test]
async fn routing_key_scopes_restrict_topic_publishes_and_bindings() {
    if external() {
        return;
    }
    let keys = keys();
    let b = oauth2_broker(&keys, None).await;
    let x = unique("events");
    let q = unique("q");
    {
        let admin = connect_with(&b, "", &hs256(&claims(ALL, now() + 300), SECRET)).await.unwrap();
        let ch = within(admin.create_channel()).await.unwrap();
        let o = lapin::options::ExchangeDeclareOptions::default();
        within(ch.exchange_declare(x.as_str().into(), lapin::ExchangeKind::Topic, o, FieldTable::default()))
            .await
            .unwrap();
        declare_queue(&ch, &q).await;
    }
    let scope = format!(
        "{ALL} rabbitmq.write:%2F/{x}/orders.* rabbitmq.read:%2F/{x}/*.eu rabbitmq.write:%2F/amq.topic/other.vhost"
    );
    let token = hs256(&claims(&scope, now() + 300), SECRET);
    let text = |x: &str, key: &str| {
        format!("ACCESS_REFUSED - access to topic '{key}' in exchange '{x}' in vhost '/' refused for user 'svc'")
    };

    let c = connect_with(&b, "", &token).await.unwrap();
    let confirm = confirm_channel(&c).await;
    let bind = |ch: lapin::Channel, key: &'static str| {
        let (q, x) = (q.clone(), x.clone());
        async move {
            let o = lapin::options::QueueBindOptions::default();
            within(ch.queue_bind(q.as_str().into(), x.as_str().into(), key.into(), o, FieldTable::default())).await
        }
    };
    let ch = within(c.create_channel()).await.unwrap();
    bind(ch.clone(), "orders.eu").await.expect("read:%2F/<x>/*.eu allows binding with orders.eu");
    publish_confirmed(&confirm, &x, "orders.eu", b"allowed").await;
    assert_eq!(get_body(&ch, &q).await.as_deref(), Some(&b"allowed"[..]));

    let mut ev = events(&c);
    publish(&confirm, &x, "invoices.eu", b"m").await;
    assert_amqp_error(next_error(&mut ev).await, 403, &text(&x, "invoices.eu"));

    // Read is the binding side, and a write scope does not grant it.
    let ch = within(c.create_channel()).await.unwrap();
    assert_amqp_error(bind(ch, "orders.us").await, 403, &text(&x, "orders.us"));
    let ch = within(c.create_channel()).await.unwrap();
    let r =
        within(ch.queue_unbind(q.as_str().into(), x.as_str().into(), "orders.*".into(), FieldTable::default())).await;
    assert_amqp_error(r, 403, &text(&x, "orders.*"));

    // amq.topic is named by one scope only, for another key; the ALL scopes
    // (two segments) give no topic access.
    // A fresh connection: lapin reports the closes above as events too.
    let c = connect_with(&b, "", &token).await.unwrap();
    let ch = within(c.create_channel()).await.unwrap();
    let mut ev = events(&c);
    publish(&ch, "amq.topic", "orders.eu", b"m").await;
    assert_amqp_error(next_error(&mut ev).await, 403, &text("amq.topic", "orders.eu"));
}

/// A raw connection that logged in with `token` and opened "/".
async fn raw_login(b: &TestBroker, token: &str) -> RawConn {
    let mut c = RawConn::connect(b.addr()).await;
    c.start().await;
    let tune = c.start_ok("svc", token).await;
    c.tune_ok(tune.channel_max, tune.frame_max, 0).await;
    c.open("/").await;
    c
}

async fn update_secret(c: &mut RawConn, token: &str) {
    let m = connection::UpdateSecret {
        new_secret: LongString::from(token.as_bytes().to_vec()),
        reason: ShortString::from("refresh"),
    };
    c.send_method(0, AMQPClass::Connection(connection::AMQPMethod::UpdateSecret(m))).await;
}

#[tokio::test]
async fn update_secret_takes_a_fresh_token_and_refuses_a_bad_one_with_530() {
    if external() {
        return;
    }
    let keys = keys();
    let b = oauth2_broker(&keys, None).await;
    // With lapin: a fresh token is accepted.
    let c = connect_with(&b, "", &hs256(&claims(ALL, now() + 60), SECRET)).await.unwrap();
    within(c.update_secret(hs256(&claims(ALL, now() + 600), SECRET).into(), "refresh".into()))
        .await
        .expect("a fresh token is accepted");
    // Raw: a token for another audience closes the connection.
    let mut raw = raw_login(&b, &hs256(&claims(ALL, now() + 60), SECRET)).await;
    let mut bad = claims(ALL, now() + 600);
    bad["aud"] = json!("other");
    update_secret(&mut raw, &hs256(&bad, SECRET)).await;
    let close: Close = raw.expect_connection_close().await;
    assert_eq!(close.reply_code, 530);
    assert_eq!(close.reply_text, "NOT_ALLOWED - New secret was refused by one of the backends");
    assert_eq!((close.class_id, close.method_id), (10, 70));
}

#[tokio::test]
async fn an_expired_token_closes_the_connection_and_a_refreshed_one_keeps_it() {
    if external() {
        return;
    }
    let keys = keys();
    let clock = warren::clock::Clock::manual();
    let b = oauth2_broker(&keys, Some(clock.clone())).await;
    let t0 = clock.unix_millis() / 1000;
    let mut short = raw_login(&b, &hs256(&claims(ALL, t0 + 60), SECRET)).await;
    let mut refreshed = raw_login(&b, &hs256(&claims(ALL, t0 + 60), SECRET)).await;
    update_secret(&mut refreshed, &hs256(&claims(ALL, t0 + 3600), SECRET)).await;
    match refreshed.recv_non_heartbeat().await {
        amq_protocol::frame::AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::UpdateSecretOk(_))) => {
        }
        f => panic!("expected update-secret-ok, got {f:?}"),
    }
    clock.advance(Duration::from_secs(30));
    assert!(short.recv_timeout(Duration::from_millis(200)).await.is_err(), "still valid at 30 s");
    clock.advance(Duration::from_secs(31));
    let close = short.expect_connection_close().await;
    assert_eq!(close.reply_code, 320);
    assert_eq!(close.reply_text, "CONNECTION_FORCED - credential expired");
    assert!(refreshed.recv_timeout(Duration::from_millis(200)).await.is_err(), "the refreshed token has an hour left");
}
