//! AMQPS and HTTPS with real clients (lapin over rustls, amqprs over
//! tokio-rustls, and a bare rustls client where a test needs the handshake
//! itself), against certificates made in the test with rcgen.
//!
//! Refusals are checked from both sides: the refused client gets an error
//! (not a hang), and a connection already open on the same listener goes on
//! publishing and consuming.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::certs::{Ca, Issued, Pki};
use common::*;
use futures_lite::StreamExt;
use lapin::options::*;
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use warren::tls::{CertLogin, TlsSettings, TlsVersion};

async fn tls_broker(settings: TlsSettings, edit: impl FnOnce(&mut warren::Config)) -> warren::Server {
    let mut config = warren::Config::ephemeral();
    config.tls = Some(settings);
    config.tls_port = 0;
    edit(&mut config);
    within(warren::Server::start(config)).await.expect("start a TLS broker")
}

fn amqps_uri(server: &warren::Server, user: &str) -> String {
    let port = server.tls_addr().expect("a TLS listener").port();
    format!("amqps://{user}:{user}@localhost:{port}/%2f")
}

fn roots(ca_pems: &[&str]) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for pem in ca_pems {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    roots
}

/// A rustls client trusting `ca_pems`, presenting `identity` if given.
fn client_config(
    ca_pems: &[&str],
    identity: Option<&Issued>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots(ca_pems));
    Arc::new(match identity {
        Some(id) => {
            let certs = CertificateDer::pem_slice_iter(id.cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>().unwrap();
            let key = PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(certs, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    })
}

const BOTH: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

async fn handshake(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(config).connect(ServerName::try_from("localhost").unwrap(), tcp).await
}

/// Sends the AMQP header over TLS and reads what comes back: the
/// connection.start frame, or an error if the server refused us.
async fn amqp_start(addr: SocketAddr, config: Arc<ClientConfig>) -> std::io::Result<Vec<u8>> {
    let mut s = handshake(addr, config).await?;
    s.write_all(b"AMQP\x00\x00\x09\x01").await?;
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await?;
    if n == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed without a word"));
    }
    buf.truncate(n);
    Ok(buf)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A lapin connection over TLS that trusts the test CA.
async fn lapin_tls(uri: &str, ca: &str, identity: Option<OwnedIdentity>) -> lapin::Result<Connection> {
    let tls = OwnedTLSConfig { identity, cert_chain: Some(ca.to_owned()) };
    within(Connection::connect_with_config(
        uri,
        ConnectionProperties::default(),
        tls,
        lapin::runtime::default_runtime().unwrap(),
    ))
    .await
}

/// Declares a queue, publishes `n` messages with confirms and consumes them.
async fn round_trip(conn: &Connection, n: usize) {
    let ch = within(conn.create_channel()).await.unwrap();
    within(ch.confirm_select(ConfirmSelectOptions::default())).await.unwrap();
    let q = unique("tls-q");
    within(ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions { auto_delete: true, ..Default::default() },
        Default::default(),
    ))
    .await
    .unwrap();
    let mut consumer = within(ch.basic_consume(
        q.as_str().into(),
        "".into(),
        BasicConsumeOptions { no_ack: true, ..Default::default() },
        Default::default(),
    ))
    .await
    .unwrap();
    for i in 0..n {
        let body = format!("m{i}").repeat(1 + i * 500);
        let confirm = within(ch.basic_publish(
            "".into(),
            q.as_str().into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            BasicProperties::default(),
        ))
        .await
        .unwrap();
        assert!(within(confirm).await.unwrap().is_ack());
    }
    for i in 0..n {
        let d = within(consumer.next()).await.unwrap().unwrap();
        assert_eq!(d.data, format!("m{i}").repeat(1 + i * 500).into_bytes());
    }
    within(ch.close(200, "bye".into())).await.unwrap();
}

#[tokio::test]
async fn lapin_and_amqprs_publish_and_consume_over_tls() {
    let pki = Pki::new("clients");
    let server = tls_broker(pki.settings(false, false), |_| {}).await;
    // lapin over rustls, large bodies included (several TLS records each).
    let conn = lapin_tls(&amqps_uri(&server, "guest"), &pki.ca.pem, None).await.expect("lapin over TLS");
    round_trip(&conn, 20).await;

    // amqprs over tokio-rustls.
    use amqprs::channel::{BasicConsumeArguments, BasicPublishArguments, QueueDeclareArguments};
    use amqprs::connection::{Connection as AConn, OpenConnectionArguments};
    let tls = amqprs::tls::TlsAdaptor::without_client_auth(Some(&pki.ca_file), "localhost".into()).unwrap();
    let port = server.tls_addr().unwrap().port();
    let args = OpenConnectionArguments::new("localhost", port, "guest", "guest").tls_adaptor(tls).finish();
    let aconn = within(AConn::open(&args)).await.expect("amqprs over TLS");
    let ach = within(aconn.open_channel(None)).await.unwrap();
    let name = unique("tls-amqprs");
    within(ach.queue_declare(QueueDeclareArguments::transient_autodelete(&name))).await.unwrap();
    let (_tag, mut rx) =
        within(ach.basic_consume_rx(BasicConsumeArguments::new(&name, "").manual_ack(false).finish())).await.unwrap();
    within(ach.basic_publish(
        amqprs::BasicProperties::default(),
        b"hello".to_vec(),
        BasicPublishArguments::new("", &name),
    ))
    .await
    .unwrap();
    assert_eq!(within(rx.recv()).await.unwrap().content.unwrap(), b"hello");

    // Both are listed as TLS connections, with the session's protocol.
    let conns = server.broker().connections();
    assert_eq!(conns.len(), 2);
    for c in &conns {
        let tls = c.tls.as_ref().expect("a TLS connection says so");
        assert_eq!(tls.protocol, "tlsv1.3");
        assert!(tls.cipher.starts_with("TLS13_"), "{}", tls.cipher);
        assert_eq!(tls.peer_cert_subject, None, "no client certificate was asked for");
    }
    within(aconn.close()).await.unwrap();
    within(conn.close(200, "bye".into())).await.unwrap();
}

#[tokio::test]
async fn external_logs_in_as_the_user_the_certificate_names() {
    let pki = Pki::new("external");
    let server = tls_broker(pki.settings(true, true), |c| c.cert_login = CertLogin::CommonName).await;
    let broker = server.broker();
    // A user without a password: only EXTERNAL can log in as alice.
    broker
        .put_user(&warren::store::definitions::UserDef {
            name: "alice".into(),
            password_hash: String::new(),
            hashing_algorithm: "rabbit_password_hashing_sha256".into(),
            tags: serde_json::json!([]),
            limits: None,
        })
        .unwrap();
    broker.set_permissions(warren::store::definitions::PermissionDef {
        user: "alice".into(),
        vhost: "/".into(),
        configure: ".*".into(),
        write: ".*".into(),
        read: ".*".into(),
    });
    // EXTERNAL is offered on a listener that verifies peers.
    let start =
        amqp_start(server.tls_addr().unwrap(), client_config(&[&pki.ca.pem], Some(&pki.client), BOTH)).await.unwrap();
    assert!(contains(&start, b"PLAIN AMQPLAIN EXTERNAL"), "{start:?}");

    use amqprs::connection::{Connection as AConn, OpenConnectionArguments};
    use amqprs::security::SecurityCredentials;
    let tls = amqprs::tls::TlsAdaptor::with_client_auth(
        Some(&pki.ca_file),
        &pki.client.cert,
        &pki.client.key,
        "localhost".into(),
    )
    .unwrap();
    let port = server.tls_addr().unwrap().port();
    // The user name and password given are not used by EXTERNAL.
    let args = OpenConnectionArguments::new("localhost", port, "nobody", "wrong")
        .credentials(SecurityCredentials::new_external())
        .tls_adaptor(tls)
        .finish();
    let conn = within(AConn::open(&args)).await.expect("EXTERNAL login as alice");
    let ch = within(conn.open_channel(None)).await.unwrap();
    let q = unique("ext");
    within(ch.queue_declare(amqprs::channel::QueueDeclareArguments::transient_autodelete(&q))).await.unwrap();
    let listed = broker.connections();
    let c = listed.iter().find(|c| c.user == "alice").expect("alice's connection");
    assert_eq!(c.auth_mechanism, "EXTERNAL");
    let tls = c.tls.as_ref().unwrap();
    assert_eq!(tls.peer_cert_subject.as_deref(), Some("CN=alice,O=Warren tests"));
    assert_eq!(tls.peer_cert_issuer.as_deref(), Some("CN=Warren test CA"));
    within(conn.close()).await.unwrap();

    // A certificate whose user does not exist is refused.
    let bob = pki.ca.issue(&pki.dir, "bob", "bob", &[]);
    let tls =
        amqprs::tls::TlsAdaptor::with_client_auth(Some(&pki.ca_file), &bob.cert, &bob.key, "localhost".into()).unwrap();
    let args = OpenConnectionArguments::new("localhost", port, "bob", "")
        .credentials(SecurityCredentials::new_external())
        .tls_adaptor(tls)
        .finish();
    assert!(within(AConn::open(&args)).await.is_err(), "bob is not a user");
}

#[tokio::test]
async fn external_is_offered_only_where_peers_are_verified() {
    let pki = Pki::new("no-external");
    let server = tls_broker(pki.settings(false, false), |_| {}).await;
    let start = amqp_start(server.tls_addr().unwrap(), client_config(&[&pki.ca.pem], None, BOTH)).await.unwrap();
    assert!(contains(&start, b"PLAIN AMQPLAIN"), "{start:?}");
    assert!(!contains(&start, b"EXTERNAL"), "EXTERNAL offered without peer verification");
    // Nor on the plain listener of the same broker.
    let mut plain = TcpStream::connect(server.local_addr()).await.unwrap();
    plain.write_all(b"AMQP\x00\x00\x09\x01").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = within(plain.read(&mut buf)).await.unwrap();
    assert!(contains(&buf[..n], b"PLAIN AMQPLAIN") && !contains(&buf[..n], b"EXTERNAL"));
}

#[tokio::test]
async fn bad_clients_are_refused_and_the_open_connection_does_not_notice() {
    let pki = Pki::new("refusals");
    let server = tls_broker(pki.settings(true, true), |c| c.tls_handshake_timeout = Duration::from_millis(400)).await;
    let addr = server.tls_addr().unwrap();
    let identity = OwnedIdentity::PKCS8 {
        pem: pki.client.cert_pem.clone().into_bytes(),
        key: pki.client.key_pem.clone().into_bytes(),
    };
    let good = lapin_tls(&amqps_uri(&server, "guest"), &pki.ca.pem, Some(identity)).await.expect("a good client");
    round_trip(&good, 3).await;

    // No client certificate, where one is required.
    let refused = amqp_start(addr, client_config(&[&pki.ca.pem], None, BOTH)).await;
    assert!(refused.is_err(), "no certificate: {refused:?}");
    assert!(lapin_tls(&amqps_uri(&server, "guest"), &pki.ca.pem, None).await.is_err());

    // A certificate from a CA the broker does not know.
    let rogue_ca = Ca::new("Rogue CA");
    let rogue = rogue_ca.issue(&pki.dir, "rogue", "alice", &[]);
    let refused = amqp_start(addr, client_config(&[&pki.ca.pem], Some(&rogue), BOTH)).await;
    assert!(refused.is_err(), "unknown CA: {refused:?}");

    // Plaintext AMQP on the TLS port: closed, no AMQP answer.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain.write_all(b"AMQP\x00\x00\x09\x01").await.unwrap();
    let mut buf = [0u8; 64];
    if let Ok(n) = within(plain.read(&mut buf)).await {
        assert!(!buf[..n].starts_with(b"AMQP") && !buf[..n].starts_with(&[1, 0, 0]), "{:?}", &buf[..n]);
    }

    // A handshake that stalls (a TCP connect, then silence) is dropped at
    // the handshake timeout.
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    let t0 = std::time::Instant::now();
    let n = within(stalled.read(&mut buf)).await.unwrap_or(0);
    assert_eq!(n, 0, "dropped without a word");
    assert!(t0.elapsed() >= Duration::from_millis(300), "dropped at the timeout, not before: {:?}", t0.elapsed());
    // Half a ClientHello, then silence: the same.
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await.unwrap();
    assert_eq!(within(half.read(&mut buf)).await.unwrap_or(0), 0);

    // None of these became a connection, and the good one carries on.
    assert_eq!(server.broker().connections().len(), 1);
    round_trip(&good, 3).await;
    within(good.close(200, "bye".into())).await.unwrap();
}

#[tokio::test]
async fn broken_certificate_settings_stop_the_start_with_a_clear_error() {
    let pki = Pki::new("start-errors");
    let start_err = |settings: TlsSettings| async move {
        let mut config = warren::Config::ephemeral();
        config.tls = Some(settings);
        config.tls_port = 0;
        match warren::Server::start(config).await {
            Ok(_) => panic!("started with broken TLS settings"),
            Err(e) => e.to_string(),
        }
    };
    let expired = pki.ca.issue_with(&pki.dir, "expired", "localhost", &["localhost"], |p| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    let e = start_err(TlsSettings::new(&expired.cert, &expired.key)).await;
    assert!(e.contains("expired on") && e.contains("expired.pem"), "{e}");

    let future = pki.ca.issue_with(&pki.dir, "future", "localhost", &["localhost"], |p| {
        p.not_before = rcgen::date_time_ymd(2999, 1, 1);
        p.not_after = rcgen::date_time_ymd(3000, 1, 1);
    });
    let e = start_err(TlsSettings::new(&future.cert, &future.key)).await;
    assert!(e.contains("is not valid before"), "{e}");

    // The client's key with the server's certificate.
    let e = start_err(TlsSettings::new(&pki.server.cert, &pki.client.key)).await;
    assert!(e.contains("does not belong to the certificate"), "{e}");

    let e = start_err(TlsSettings::new(pki.dir.join("missing.pem"), &pki.server.key)).await;
    assert!(e.contains("cannot read the certificate file") && e.contains("missing.pem"), "{e}");

    // A key file given as the certificate: no certificate in it.
    let e = start_err(TlsSettings::new(&pki.server.key, &pki.server.key)).await;
    assert!(e.contains("holds no PEM certificate"), "{e}");

    let mut s = TlsSettings::new(&pki.server.cert, &pki.server.key);
    s.verify_peer = true;
    let e = start_err(s).await;
    assert!(e.contains("needs ssl_options.cacertfile"), "{e}");
}

/// Pads a PEM file to a fixed size (text outside PEM blocks is ignored), so
/// that a rewrite in place with the old mtime looks unchanged from outside.
fn write_padded(path: &Path, pem: &str) {
    const SIZE: usize = 8192;
    assert!(pem.len() < SIZE);
    let mut text = pem.to_owned();
    text.push_str(&"\n".repeat(SIZE - pem.len()));
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    std::fs::write(path, text).unwrap();
    if let Some(m) = modified {
        std::fs::File::options().write(true).open(path).unwrap().set_modified(m).unwrap();
    }
}

async fn served_certificate(addr: SocketAddr, config: Arc<ClientConfig>) -> Vec<u8> {
    let s = within(handshake(addr, config)).await.expect("a TLS handshake");
    s.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

async fn wait_for_certificate(addr: SocketAddr, config: &Arc<ClientConfig>, want: &[u8]) {
    within_d(Duration::from_secs(10), async {
        while served_certificate(addr, Arc::clone(config)).await != want {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
}

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
}

#[tokio::test]
async fn certificates_reload_when_their_files_change_and_on_sighup() {
    let pki = Pki::new("reload");
    let ca2 = Ca::new("Second CA");
    write_padded(&pki.server.cert, &pki.server.cert_pem);
    write_padded(&pki.server.key, &pki.server.key_pem);
    let server = tls_broker(pki.settings(false, false), |_| {}).await;
    let addr = server.tls_addr().unwrap();
    let trust_both = client_config(&[&pki.ca.pem, &ca2.pem], None, BOTH);
    assert_eq!(served_certificate(addr, Arc::clone(&trust_both)).await, der(&pki.server.cert_pem));
    let open = lapin_tls(&amqps_uri(&server, "guest"), &pki.ca.pem, None).await.unwrap();

    // A renewal tool writes new files: new connections get the new certificate.
    let renewed = ca2.issue(&pki.dir, "renewed", "localhost", &["localhost"]);
    std::fs::write(&pki.server.key, &renewed.key_pem).unwrap();
    std::fs::write(&pki.server.cert, &renewed.cert_pem).unwrap();
    wait_for_certificate(addr, &trust_both, &der(&renewed.cert_pem)).await;
    // The connection made before goes on, on its old session.
    round_trip(&open, 2).await;

    // A broken file is not taken: the last good certificate stays.
    std::fs::write(&pki.server.cert, "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(served_certificate(addr, Arc::clone(&trust_both)).await, der(&renewed.cert_pem));

    // SIGHUP: the files are rewritten so that nothing outside shows it (same
    // size and inode, the old mtime), and only the signal makes it reload.
    write_padded(&pki.server.cert, &renewed.cert_pem);
    write_padded(&pki.server.key, &renewed.key_pem);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let third = pki.ca.issue(&pki.dir, "third", "localhost", &["localhost"]);
    write_padded(&pki.server.cert, &third.cert_pem);
    write_padded(&pki.server.key, &third.key_pem);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        served_certificate(addr, Arc::clone(&trust_both)).await,
        der(&renewed.cert_pem),
        "no reload without a visible change or a signal"
    );
    let pid = std::process::id().to_string();
    assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    wait_for_certificate(addr, &trust_both, &der(&third.cert_pem)).await;
    round_trip(&open, 2).await;
    within(open.close(200, "bye".into())).await.unwrap();
}

#[tokio::test]
async fn tls_versions_can_be_narrowed_to_one() {
    let pki = Pki::new("versions");
    let mut settings = pki.settings(false, false);
    settings.versions = vec![TlsVersion::Tls12];
    let server = tls_broker(settings, |_| {}).await;
    let addr = server.tls_addr().unwrap();
    let only13 = client_config(&[&pki.ca.pem], None, &[&rustls::version::TLS13]);
    assert!(handshake(addr, only13).await.is_err(), "a TLS 1.3-only client on a TLS 1.2 listener");
    let conn = lapin_tls(&amqps_uri(&server, "guest"), &pki.ca.pem, None).await.unwrap();
    round_trip(&conn, 1).await;
    let tls = server.broker().connections()[0].tls.clone().unwrap();
    assert_eq!(tls.protocol, "tlsv1.2");
    assert!(tls.cipher.starts_with("TLS_ECDHE_"), "{}", tls.cipher);
}

#[tokio::test]
async fn a_tls_only_node_has_no_plain_listener() {
    let pki = Pki::new("tls-only");
    let server = tls_broker(pki.settings(false, false), |c| c.tcp_listener = false).await;
    assert_eq!(Some(server.local_addr()), server.tls_addr());
    let conn = lapin_tls(&amqps_uri(&server, "guest"), &pki.ca.pem, None).await.unwrap();
    round_trip(&conn, 1).await;
    // Neither listener on: refused with a reason.
    let mut config = warren::Config::ephemeral();
    config.tcp_listener = false;
    let e = warren::Server::start(config).await.err().expect("no listener at all");
    assert!(e.to_string().contains("listeners.tcp = none needs a TLS listener"), "{e}");
}

/// A GET over HTTPS with guest's basic auth: status and body.
async fn https_get(addr: SocketAddr, config: Arc<ClientConfig>, path: &str) -> (u16, String) {
    let mut s = within(handshake(addr, config)).await.expect("HTTPS handshake");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = within(s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn management_and_prometheus_over_https() {
    let pki = Pki::new("https");
    let settings = pki.settings(false, false);
    let server = tls_broker(settings.clone(), |c| {
        c.management_tls = Some((0, settings.clone()));
        c.prometheus_tls = Some((0, settings));
    })
    .await;
    let client = client_config(&[&pki.ca.pem], None, BOTH);
    let conn = lapin_tls(&amqps_uri(&server, "guest"), &pki.ca.pem, None).await.unwrap();
    let mgmt = server.management_tls_addr().expect("management over HTTPS");
    let (status, body) = https_get(mgmt, Arc::clone(&client), "/api/overview").await;
    assert_eq!(status, 200, "{body}");
    let overview: serde_json::Value = serde_json::from_str(&body).unwrap();
    let protocols: Vec<&str> =
        overview["listeners"].as_array().unwrap().iter().filter_map(|l| l["protocol"].as_str()).collect();
    assert!(protocols.contains(&"amqp/ssl") && protocols.contains(&"https"), "{protocols:?}");
    let (status, body) = https_get(mgmt, Arc::clone(&client), "/api/connections").await;
    assert_eq!(status, 200);
    let conns: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(conns[0]["ssl"], true, "{conns}");
    assert_eq!(conns[0]["ssl_protocol"], "tlsv1.3");
    assert_eq!(conns[0]["ssl_key_exchange"], "any");
    let (status, _) = https_get(mgmt, Arc::clone(&client), "/api/health/checks/protocol-listener/amqps").await;
    assert_eq!(status, 200);

    let metrics = server.prometheus_tls_addr().expect("Prometheus over HTTPS");
    let (status, body) = https_get(metrics, client, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("rabbitmq_connections 1"), "{body}");

    // Plain HTTP on the HTTPS port gets no HTTP answer.
    let mut plain = TcpStream::connect(mgmt).await.unwrap();
    plain.write_all(b"GET /api/overview HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = within(plain.read_to_end(&mut buf)).await;
    assert!(!buf.starts_with(b"HTTP/"), "{:?}", String::from_utf8_lossy(&buf));
    within(conn.close(200, "bye".into())).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warren_perf_runs_over_tls() {
    let pki = Pki::new("perf");
    let server = tls_broker(pki.settings(false, false), |_| {}).await;
    for (size, confirm) in [(16, 100), (40_000, 10)] {
        let args = warren::perf::PerfArgs {
            uri: amqps_uri(&server, "guest"),
            tls_ca: Some(pki.ca_file.clone()),
            duration: 1.0,
            size,
            confirm,
            prefetch: 100,
            quiet: true,
            drain_timeout: 3.0,
            queue_prefix: Some(unique("perf-tls")),
            ..Default::default()
        };
        let s = warren::perf::run(args).await.expect("perf over TLS");
        assert_eq!(s.errors, 0, "{:?}", s.error_messages);
        assert!(s.sent > 0);
        assert_eq!((s.received, s.confirmed), (s.sent, s.sent), "{}", s.to_text());
    }
    // Without the CA it says what is missing.
    let args = warren::perf::PerfArgs { uri: amqps_uri(&server, "guest"), quiet: true, ..Default::default() };
    let e = warren::perf::run(args).await.expect_err("amqps without --tls-ca").to_string();
    assert!(e.contains("--tls-ca"), "{e}");
}

#[tokio::test]
async fn the_certificate_expiration_check_names_certificates_about_to_expire() {
    let pki = Pki::new("expiry");
    // Valid for about ten more days.
    let soon = warren::tls::rfc3339(std::time::SystemTime::now() + Duration::from_secs(10 * 86_400));
    let ymd: Vec<i32> = soon[..10].split('-').map(|p| p.parse().unwrap()).collect();
    let short = pki.ca.issue_with(&pki.dir, "short", "localhost", &["localhost"], |p| {
        p.not_after = rcgen::date_time_ymd(ymd[0], ymd[1] as u8, ymd[2] as u8);
    });
    let long = pki.settings(false, false);
    let server = tls_broker(TlsSettings::new(&short.cert, &short.key), |c| {
        c.management_tls = Some((0, long.clone()));
    })
    .await;
    let client = client_config(&[&pki.ca.pem], None, BOTH);
    let mgmt = server.management_tls_addr().unwrap();
    let check = |path: &'static str| https_get(mgmt, Arc::clone(&client), path);
    assert_eq!(check("/api/health/checks/certificate-expiration/1/weeks").await.0, 200);
    let (status, body) = check("/api/health/checks/certificate-expiration/1/months").await;
    assert_eq!(status, 503, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["reason"], "Certificates expiring");
    let expired = body["expired"].as_array().unwrap();
    assert_eq!(expired.len(), 1, "only the AMQPS certificate: {expired:?}");
    assert_eq!(expired[0]["protocol"], "amqp/ssl");
    assert!(expired[0]["certfile"].as_str().unwrap().ends_with("short.pem"));
    assert_eq!(expired[0]["certfile_expires_on"].as_str().unwrap()[..10], soon[..10]);
    assert_eq!(check("/api/health/checks/certificate-expiration/1/fortnights").await.0, 400);
}
