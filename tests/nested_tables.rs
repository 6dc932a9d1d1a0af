//! Field tables and arrays nested far deeper than any client sends: they must
//! never crash the broker (amq-protocol's parser recurses; a table about
//! 1,400 levels deep used to overflow a tokio worker's stack and abort the
//! process), before login or after. Raw sockets, so the bytes are exactly
//! what a hostile client would send. Each test also checks that the broker
//! still takes new connections afterwards.
mod common;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{connection, queue, AMQPClass};
use common::raw::*;
use common::*;

/// A table `{"a": {"a": ... {}}}` of `depth` tables, length prefix included.
/// Written outside in (each level's length is known), so linear time.
fn nested_tables(depth: usize) -> Vec<u8> {
    let mut t = Vec::with_capacity(7 * depth);
    for level in 0..depth {
        t.extend_from_slice(&((7 * (depth - 1 - level)) as u32).to_be_bytes());
        if level + 1 < depth {
            t.extend_from_slice(b"\x01aF");
        }
    }
    t
}

/// A value `[[[...]]]` of `depth` nested arrays, tag included.
fn nested_arrays(depth: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 * depth);
    for level in 0..depth {
        v.push(b'A');
        v.extend_from_slice(&((5 * (depth - 1 - level)) as u32).to_be_bytes());
    }
    v
}

/// A table of raw `(key, tagged value)` entries, length prefix included.
fn table(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, v) in entries {
        body.push(k.len() as u8);
        body.extend_from_slice(k.as_bytes());
        body.extend_from_slice(v);
    }
    let mut t = (body.len() as u32).to_be_bytes().to_vec();
    t.extend(body);
    t
}

fn tagged(tag: u8, table: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(table);
    v
}

/// connection.start-ok with raw client properties and PLAIN credentials.
fn start_ok(client_properties: &[u8], user: &str, pass: &str) -> Vec<u8> {
    let mut args = client_properties.to_vec();
    args.extend_from_slice(b"\x05PLAIN");
    let response = format!("\0{user}\0{pass}");
    args.extend_from_slice(&(response.len() as u32).to_be_bytes());
    args.extend_from_slice(response.as_bytes());
    args.extend_from_slice(b"\x05en_US");
    raw_method(0, 10, 11, &args)
}

/// The broker still does a full handshake and opens a channel.
async fn still_serves(b: &TestBroker) {
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.open_channel(1).await;
}

#[tokio::test]
async fn deep_client_properties_with_wrong_credentials_are_refused_not_fatal() {
    let b = broker().await;
    // 500 tables deep (3.5 KB, within the 4096-octet pre-tune limit) next
    // to the capabilities a client advertises: RabbitMQ reads both.
    let caps = table(&[("authentication_failure_close", b"t\x01")]);
    let deep = tagged(b'F', &nested_tables(500));
    let props = table(&[("capabilities", &tagged(b'F', &caps)), ("deep", &deep)]);
    let mut c = RawConn::connect(b.addr()).await;
    c.start().await;
    c.send_bytes(&start_ok(&props, "guest", "wrong")).await;
    let close = c.expect_connection_close().await;
    assert_eq!(
        (close.reply_code, close.reply_text.as_str(), close.class_id, close.method_id),
        (
            403,
            "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.",
            0,
            0
        )
    );
    c.expect_eof(WAIT).await;
    still_serves(&b).await;
}

#[tokio::test]
async fn deep_client_properties_with_good_credentials_log_in() {
    let b = broker().await;
    // 800 arrays deep, 4 KB: the deepest a pre-tune frame can carry.
    let props = table(&[("deep", &nested_arrays(800))]);
    let mut c = RawConn::connect(b.addr()).await;
    c.start().await;
    c.send_bytes(&start_ok(&props, "guest", "guest")).await;
    match c.recv_non_heartbeat().await {
        AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Tune(_))) => {}
        f => panic!("expected connection.tune, got {f:?}"),
    }
    still_serves(&b).await;
}

/// queue.declare on channel 1 with raw arguments.
fn queue_declare(name: &str, arguments: &[u8]) -> Vec<u8> {
    let mut args = vec![0, 0, name.len() as u8];
    args.extend_from_slice(name.as_bytes());
    args.push(0);
    args.extend_from_slice(arguments);
    raw_method(1, 50, 10, &args)
}

/// RabbitMQ decodes arguments of any depth (an Erlang process grows its
/// heap) and declares the queue. Warren decodes method arguments into
/// amq-protocol's types, whose parser and destructor recurse, so it refuses
/// tables nested past 64 levels with a channel error (406, the code
/// RabbitMQ gives arguments it will not take), and the connection carries
/// on. Against RabbitMQ the test checks RabbitMQ's answer instead.
#[tokio::test]
async fn method_arguments_nested_too_deep_are_a_channel_error() {
    let b = broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    for (depth, ok_on_warren) in [(63, true), (64, false), (10_000, false)] {
        let name = unique("deep-args");
        c.open_channel(1).await;
        // The arguments table is level 1, so `depth` tables in a value make depth + 1.
        let args = table(&[("x-ok", b"t\x01"), ("x-deep", &tagged(b'F', &nested_tables(depth)))]);
        c.send_bytes(&queue_declare(&name, &args)).await;
        if b.is_warren() && !ok_on_warren {
            let close = c.expect_channel_close().await;
            assert_eq!(
                (close.reply_code, close.reply_text.as_str(), close.class_id, close.method_id),
                (406, "PRECONDITION_FAILED - field table argument 'x-deep' nested deeper than 64 levels", 50, 10),
                "depth {depth}"
            );
        } else {
            match c.recv_non_heartbeat().await {
                AMQPFrame::Method(1, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(ok))) => {
                    assert_eq!(ok.queue.as_str(), name)
                }
                f => panic!("depth {depth}: expected queue.declare-ok, got {f:?}"),
            }
            cleanup_queue(&b, &name).await;
            c.send_method(
                1,
                AMQPClass::Channel(amq_protocol::protocol::channel::AMQPMethod::Close(
                    amq_protocol::protocol::channel::Close {
                        reply_code: 200,
                        reply_text: "".into(),
                        class_id: 0,
                        method_id: 0,
                    },
                )),
            )
            .await;
            match c.recv_non_heartbeat().await {
                AMQPFrame::Method(1, AMQPClass::Channel(amq_protocol::protocol::channel::AMQPMethod::CloseOk(_))) => {}
                f => panic!("expected channel.close-ok, got {f:?}"),
            }
        }
    }
    still_serves(&b).await;
}

// ---------------------------------------------------------------- publish

/// Reads one frame without decoding it (amq-protocol's parser would recurse
/// on a deep content header, in this test process).
async fn read_raw(c: &mut RawConn) -> (u8, u16, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    within(async {
        let mut head = [0u8; 7];
        c.stream.read_exact(&mut head).await.expect("frame header");
        let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
        let mut rest = vec![0u8; size + 1];
        c.stream.read_exact(&mut rest).await.expect("frame payload");
        assert_eq!(rest.pop(), Some(FRAME_END));
        (head[0], u16::from_be_bytes([head[1], head[2]]), rest)
    })
    .await
}

/// The next method frame (heartbeats skipped): (channel, class, method, payload).
async fn read_method(c: &mut RawConn) -> (u16, u16, u16, Vec<u8>) {
    loop {
        let (kind, ch, p) = read_raw(c).await;
        match kind {
            FRAME_HEARTBEAT => continue,
            FRAME_METHOD => return (ch, u16::from_be_bytes([p[0], p[1]]), u16::from_be_bytes([p[2], p[3]]), p),
            _ => panic!("expected a method frame, got type {kind}"),
        }
    }
}

async fn expect_method(c: &mut RawConn, class: u16, method: u16) -> Vec<u8> {
    let (_, cl, m, p) = read_method(c).await;
    assert_eq!((cl, m), (class, method), "unexpected method {cl}.{m}: {:?}", &p[..p.len().min(200)]);
    p
}

fn short(s: &str) -> Vec<u8> {
    let mut v = vec![s.len() as u8];
    v.extend_from_slice(s.as_bytes());
    v
}

/// basic.publish with raw properties and a short body.
async fn publish(c: &mut RawConn, ch: u16, exchange: &str, key: &str, props: &[u8]) {
    let mut args = vec![0, 0];
    args.extend(short(exchange));
    args.extend(short(key));
    args.push(0);
    let mut out = raw_method(ch, 60, 40, &args);
    let mut header = vec![0, 60, 0, 0];
    header.extend_from_slice(&2u64.to_be_bytes());
    header.extend_from_slice(props);
    out.extend(raw_frame(FRAME_HEADER, ch, &header));
    out.extend(raw_frame(FRAME_BODY, ch, b"hi"));
    c.send_bytes(&out).await;
}

/// basic.get (manual ack): the delivery tag and raw properties, or `None` on get-empty.
async fn get(c: &mut RawConn, ch: u16, queue: &str) -> Option<(u64, Vec<u8>)> {
    let mut args = vec![0, 0];
    args.extend(short(queue));
    args.push(0);
    c.send_bytes(&raw_method(ch, 60, 70, &args)).await;
    let (_, class, method, p) = read_method(c).await;
    match (class, method) {
        (60, 72) => return None,
        (60, 71) => {}
        _ => panic!("expected basic.get-ok, got {class}.{method}"),
    }
    let tag = u64::from_be_bytes(p[4..12].try_into().unwrap());
    let (kind, _, header) = read_raw(c).await;
    assert_eq!(kind, FRAME_HEADER);
    let (kind, _, body) = read_raw(c).await;
    assert_eq!((kind, &body[..]), (FRAME_BODY, &b"hi"[..]));
    Some((tag, header[12..].to_vec()))
}

/// As [`get`], retrying for a while: RabbitMQ routes a publish from
/// another channel (or a dead-lettering) asynchronously.
async fn get_eventually(c: &mut RawConn, ch: u16, queue: &str) -> Option<(u64, Vec<u8>)> {
    for _ in 0..100 {
        if let Some(got) = get(c, ch, queue).await {
            return Some(got);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    None
}

/// Declares `name` on `ch` with raw arguments and waits for declare-ok.
async fn declare(c: &mut RawConn, ch: u16, name: &str, durable: bool, arguments: &[u8]) {
    let mut args = vec![0, 0];
    args.extend(short(name));
    args.push(if durable { 2 } else { 0 });
    args.extend_from_slice(arguments);
    c.send_bytes(&raw_method(ch, 50, 10, &args)).await;
    expect_method(c, 50, 11).await;
}

async fn bind(c: &mut RawConn, ch: u16, queue: &str, exchange: &str, key: &str, arguments: &[u8]) {
    let mut args = vec![0, 0];
    args.extend(short(queue));
    args.extend(short(exchange));
    args.extend(short(key));
    args.push(0);
    args.extend_from_slice(arguments);
    c.send_bytes(&raw_method(ch, 50, 20, &args)).await;
    expect_method(c, 50, 21).await;
}

async fn delete(c: &mut RawConn, ch: u16, name: &str) {
    let mut args = vec![0, 0];
    args.extend(short(name));
    args.push(0);
    c.send_bytes(&raw_method(ch, 50, 40, &args)).await;
    expect_method(c, 50, 41).await;
}

/// Headers far deeper than anything decodes: 100,000 tables and 100,000
/// arrays on Warren (1.2 MB, so its frame_max is raised); on RabbitMQ, whose
/// frame_max is 128 KiB, 18,000 tables.
fn deep_entries() -> Vec<(&'static str, Vec<u8>)> {
    if external() {
        vec![("deep", tagged(b'F', &nested_tables(18_000)))]
    } else {
        vec![("deep", tagged(b'F', &nested_tables(100_000))), ("arrays", nested_arrays(100_000))]
    }
}

async fn deep_broker() -> TestBroker {
    broker_with(|c| c.frame_max = 4 << 20).await
}

/// A property list: flags (headers, plus delivery_mode 1) and the headers table.
fn props_with(headers: &[(&str, &[u8])]) -> Vec<u8> {
    let mut p = vec![0x30, 0x00];
    p.extend(table(headers));
    p.push(1);
    p
}

/// The raw value of header `key` in a property list with a headers table
/// (as `props_with` writes them; content_type/encoding absent).
fn header_value<'a>(props: &'a [u8], key: &str) -> Option<&'a [u8]> {
    assert_eq!(props[0] & 0xe0, 0x20, "headers and nothing before them");
    let len = u32::from_be_bytes(props[2..6].try_into().unwrap()) as usize;
    let body = &props[6..6 + len];
    let mut at = 0;
    while at < body.len() {
        let k = &body[at + 1..at + 1 + body[at] as usize];
        at += 1 + k.len();
        let start = at;
        let tag = body[at];
        at += 1 + match tag {
            b'S' | b'F' | b'A' | b'x' => 4 + u32::from_be_bytes(body[at + 1..at + 5].try_into().unwrap()) as usize,
            b'l' | b'T' | b'd' | b'L' => 8,
            b't' | b'b' | b'B' => 1,
            b'V' => 0,
            other => panic!("unexpected tag {other}"),
        };
        if k == key.as_bytes() {
            return Some(&body[start..at]);
        }
    }
    None
}

#[tokio::test]
async fn deep_headers_are_delivered_byte_for_byte() {
    let b = deep_broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.open_channel(1).await;
    let q = unique("deep-plain");
    declare(&mut c, 1, &q, false, &table(&[])).await;
    let deep = deep_entries();
    let mut headers: Vec<(&str, &[u8])> = vec![("z", b"S\0\0\0\x01z")];
    headers.extend(deep.iter().map(|(k, v)| (*k, &v[..])));
    headers.push(("a", b"t\x01"));
    let props = props_with(&headers);
    publish(&mut c, 1, "", &q, &props).await;
    let (_, got) = get(&mut c, 1, &q).await.expect("the message");
    assert!(got == props, "properties changed on the way ({} bytes sent, {} received)", props.len(), got.len());
    delete(&mut c, 1, &q).await;
    still_serves(&b).await;
}

#[tokio::test]
async fn deep_headers_through_cc_and_bcc() {
    let b = deep_broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.open_channel(1).await;
    let qs: Vec<String> = (1..=3).map(|i| unique(&format!("deep-cc{i}"))).collect();
    for q in &qs {
        declare(&mut c, 1, q, false, &table(&[])).await;
        bind(&mut c, 1, q, "amq.direct", q, &table(&[])).await;
    }
    let deep = deep_entries();
    let cc = tagged(b'A', &{
        let mut a = vec![b'S'];
        a.extend_from_slice(&(qs[1].len() as u32).to_be_bytes());
        a.extend_from_slice(qs[1].as_bytes());
        let mut t = (a.len() as u32).to_be_bytes().to_vec();
        t.extend(a);
        t
    });
    let bcc = {
        let mut a = vec![b'S'];
        a.extend_from_slice(&(qs[2].len() as u32).to_be_bytes());
        a.extend_from_slice(qs[2].as_bytes());
        let mut t = (a.len() as u32).to_be_bytes().to_vec();
        t.extend(a);
        tagged(b'A', &t)
    };
    let mut sent: Vec<(&str, &[u8])> = vec![("CC", &cc[..]), ("BCC", &bcc[..])];
    sent.extend(deep.iter().map(|(k, v)| (*k, &v[..])));
    let mut seen: Vec<(&str, &[u8])> = vec![("CC", &cc[..])];
    seen.extend(deep.iter().map(|(k, v)| (*k, &v[..])));
    publish(&mut c, 1, "amq.direct", &qs[0], &props_with(&sent)).await;
    let want = props_with(&seen);
    for q in &qs {
        let (_, got) = get(&mut c, 1, q).await.unwrap_or_else(|| panic!("{q} got nothing"));
        assert!(got == want, "{q}: BCC must go and every other byte stay ({} vs {} bytes)", got.len(), want.len());
        delete(&mut c, 1, q).await;
    }
    still_serves(&b).await;
}

#[tokio::test]
async fn deep_headers_through_direct_reply_to() {
    let b = deep_broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.open_channel(1).await;
    c.open_channel(2).await;
    let q = unique("deep-rpc");
    declare(&mut c, 1, &q, false, &table(&[])).await;
    // The requester consumes amq.rabbitmq.reply-to (no-ack) on channel 1.
    let mut args = vec![0, 0];
    args.extend(short("amq.rabbitmq.reply-to"));
    args.extend(short("rpc"));
    args.push(2);
    args.extend(table(&[]));
    c.send_bytes(&raw_method(1, 60, 20, &args)).await;
    expect_method(&mut c, 60, 21).await;
    let deep = deep_entries();
    let headers: Vec<(&str, &[u8])> = deep.iter().map(|(k, v)| (*k, &v[..])).collect();
    // flags: headers, reply_to
    let mut props = vec![0x22, 0x00];
    props.extend(table(&headers));
    props.extend(short("amq.rabbitmq.reply-to"));
    publish(&mut c, 1, "", &q, &props).await;
    // The responder (channel 2) sees its own address in reply_to and the headers as sent.
    let (_, got) = get_eventually(&mut c, 2, &q).await.expect("the request");
    let table_len = table(&headers).len();
    assert!(got[2..2 + table_len] == props[2..2 + table_len], "request headers changed");
    let reply_to = &got[2 + table_len + 1..];
    assert_eq!(got[2 + table_len] as usize, reply_to.len());
    let reply_to = String::from_utf8(reply_to.to_vec()).unwrap();
    assert!(reply_to.starts_with("amq.rabbitmq.reply-to."), "{reply_to}");
    // The reply, deep headers again, reaches the requester unchanged.
    let reply = props_with(&headers);
    publish(&mut c, 2, "", &reply_to, &reply).await;
    let deliver = expect_method(&mut c, 60, 60).await;
    assert_eq!(&deliver[5..8], b"rpc");
    let (kind, ch, header) = read_raw(&mut c).await;
    assert_eq!((kind, ch), (FRAME_HEADER, 1));
    assert!(header[12..] == reply[..], "reply headers changed");
    let (kind, _, _) = read_raw(&mut c).await;
    assert_eq!(kind, FRAME_BODY);
    delete(&mut c, 2, &q).await;
    still_serves(&b).await;
}

#[tokio::test]
async fn deep_headers_through_a_headers_exchange() {
    let b = deep_broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.open_channel(1).await;
    let token = unique("deep-hx");
    let value = tagged(b'S', &{
        let mut s = (token.len() as u32).to_be_bytes().to_vec();
        s.extend_from_slice(token.as_bytes());
        s
    });
    let queues: Vec<String> =
        ["other-key", "names-deep", "deep-present"].iter().map(|n| format!("{token}-{n}")).collect();
    // A binding that does not look at the deep header; one that compares it
    // with a (shallow) table; one that only asks for its presence.
    let bindings = [
        table(&[("x-match", b"S\0\0\0\x03all"), ("k", &value)]),
        table(&[("x-match", b"S\0\0\0\x03all"), ("k", &value), ("deep", &tagged(b'F', &nested_tables(3)))]),
        table(&[("x-match", b"S\0\0\0\x03all"), ("k", &value), ("deep", b"V")]),
    ];
    for (q, args) in queues.iter().zip(&bindings) {
        declare(&mut c, 1, q, false, &table(&[])).await;
        bind(&mut c, 1, q, "amq.headers", "", args).await;
    }
    let deep = deep_entries();
    let mut headers: Vec<(&str, &[u8])> = deep.iter().map(|(k, v)| (*k, &v[..])).collect();
    headers.push(("k", &value));
    let props = props_with(&headers);
    publish(&mut c, 1, "amq.headers", "", &props).await;
    let (_, got) = get(&mut c, 1, &queues[0]).await.expect("routed by the other key");
    assert!(got == props, "properties changed on the way");
    assert_eq!(get(&mut c, 1, &queues[1]).await, None, "a deep value equals no binding value");
    let (_, got) = get(&mut c, 1, &queues[2]).await.expect("void: presence is enough");
    assert!(got == props);
    for q in &queues {
        delete(&mut c, 1, q).await;
    }
    still_serves(&b).await;
}

#[tokio::test]
async fn deep_headers_when_dead_lettered() {
    let b = deep_broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.open_channel(1).await;
    let q = unique("deep-dl");
    let dlq = format!("{q}-dlq");
    declare(&mut c, 1, &dlq, false, &table(&[])).await;
    let dl_key = tagged(b'S', &{
        let mut s = (dlq.len() as u32).to_be_bytes().to_vec();
        s.extend_from_slice(dlq.as_bytes());
        s
    });
    let args = table(&[("x-dead-letter-exchange", b"S\0\0\0\0"), ("x-dead-letter-routing-key", &dl_key)]);
    declare(&mut c, 1, &q, false, &args).await;
    let deep = deep_entries();
    let headers: Vec<(&str, &[u8])> = deep.iter().map(|(k, v)| (*k, &v[..])).collect();
    publish(&mut c, 1, "", &q, &props_with(&headers)).await;
    let (tag, _) = get(&mut c, 1, &q).await.expect("the message");
    // basic.reject, requeue=false
    let mut args = tag.to_be_bytes().to_vec();
    args.push(0);
    c.send_bytes(&raw_method(1, 60, 90, &args)).await;
    let (_, got) = get_eventually(&mut c, 1, &dlq).await.expect("dead-lettered");
    // RabbitMQ sorts the headers when it adds x-death; Warren keeps their
    // order. Either way every deep header keeps its bytes.
    for (k, v) in &deep {
        assert!(header_value(&got, k) == Some(&v[..]), "header {k} changed");
    }
    assert!(header_value(&got, "x-death").is_some_and(|v| v[0] == b'A'));
    assert!(header_value(&got, "x-first-death-queue").is_some());
    delete(&mut c, 1, &q).await;
    delete(&mut c, 1, &dlq).await;
    still_serves(&b).await;
}

#[tokio::test]
async fn deep_headers_on_a_quorum_queue_get_a_delivery_count() {
    let b = deep_broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.open_channel(1).await;
    let q = unique("deep-qq");
    declare(&mut c, 1, &q, true, &table(&[("x-queue-type", b"S\0\0\0\x06quorum")])).await;
    let deep = deep_entries();
    let headers: Vec<(&str, &[u8])> = deep.iter().map(|(k, v)| (*k, &v[..])).collect();
    publish(&mut c, 1, "", &q, &props_with(&headers)).await;
    let (_, got) = get_eventually(&mut c, 1, &q).await.expect("the message");
    for (k, v) in &deep {
        assert!(header_value(&got, k) == Some(&v[..]), "header {k} changed");
    }
    assert_eq!(header_value(&got, "x-delivery-count").map(|v| v[0]), Some(b'l'));
    delete(&mut c, 1, &q).await;
    still_serves(&b).await;
}

/// RabbitMQ decodes the properties of every publish; when it cannot, its
/// channel process fails and the connection closes with a bare
/// `541 INTERNAL_ERROR`. So does Warren, instead of passing bytes on that
/// consumers' clients could not parse.
#[tokio::test]
async fn undecodable_properties_close_the_connection_with_internal_error() {
    let b = broker().await;
    let cases: [(&str, Vec<u8>); 4] = [
        ("bad tag deep inside the headers", {
            // 50 nested tables, the innermost holding one entry with an unknown tag.
            let mut deep = Vec::new();
            for level in 0..50usize {
                deep.extend_from_slice(&((7 * (49 - level) + 3) as u32).to_be_bytes());
                if level < 49 {
                    deep.extend_from_slice(b"\x01aF");
                }
            }
            deep.extend_from_slice(b"\x01kZ");
            props_with(&[("deep", &tagged(b'F', &deep))])
        }),
        ("the spec's U tag", props_with(&[("k", b"U\0\x01")])),
        ("bytes after the last property", vec![0x80, 0x00, 1, b'a', b'z']),
        ("a property cut short", vec![0x80, 0x00, 9, b'a']),
    ];
    for (name, props) in cases {
        let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
        c.open_channel(1).await;
        let q = unique("bad-props");
        declare(&mut c, 1, &q, false, &table(&[])).await;
        publish(&mut c, 1, "", &q, &props).await;
        let close = c.expect_connection_close().await;
        assert_eq!(
            (close.reply_code, close.reply_text.as_str(), close.class_id, close.method_id),
            (541, "INTERNAL_ERROR", 0, 0),
            "{name}"
        );
        cleanup_queue(&b, &q).await;
    }
    still_serves(&b).await;
}

/// user_id is validated from the property list without decoding the deep
/// headers before it.
#[tokio::test]
async fn user_id_is_checked_next_to_deep_headers() {
    let b = deep_broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.open_channel(1).await;
    let q = unique("deep-uid");
    declare(&mut c, 1, &q, false, &table(&[])).await;
    let deep = deep_entries();
    let headers: Vec<(&str, &[u8])> = deep.iter().map(|(k, v)| (*k, &v[..])).collect();
    let with_user = |user: &str| {
        // flags: headers, user_id
        let mut p = vec![0x20, 0x10];
        p.extend(table(&headers));
        p.extend(short(user));
        p
    };
    let good = with_user("guest");
    publish(&mut c, 1, "", &q, &good).await;
    let (_, got) = get(&mut c, 1, &q).await.expect("the message");
    assert!(got == good);
    publish(&mut c, 1, "", &q, &with_user("bob")).await;
    let close = c.expect_channel_close().await;
    assert_eq!(
        (close.reply_code, close.reply_text.as_str(), close.class_id, close.method_id),
        (406, "PRECONDITION_FAILED - user_id property set to 'bob' but authenticated user was 'guest'", 60, 40)
    );
    c.open_channel(1).await;
    delete(&mut c, 1, &q).await;
    still_serves(&b).await;
}
