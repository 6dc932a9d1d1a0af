"""The client checks with pika's BlockingConnection (see clientcheck.py and
interop/README.md). Usage: checks.py CHECK"""

import calendar
import ssl
import time

import pika
import pika.exceptions

from clientcheck import (HEARTBEAT_S, PAUSE_S, Failed, amqp_url, bodies, check, clock_env,
                         compare, compare_headers, describe, headers, is_verify_error,
                         management, properties, run, tls_env, tls_parts, unique, url_parts,
                         wrong_password_url)


def params(url: str | None = None, **extra) -> pika.URLParameters:
    p = pika.URLParameters(url or amqp_url())
    p.socket_timeout = 5
    p.stack_timeout = 5
    for key, value in extra.items():
        setattr(p, key, value)
    return p


def connect(**extra) -> pika.BlockingConnection:
    return pika.BlockingConnection(params(**extra))


def get_one(channel, queue, auto_ack=True, tries=100):
    """basic_get until a message is there (a publish is asynchronous)."""
    for _ in range(tries):
        method, props, body = channel.basic_get(queue, auto_ack=auto_ack)
        if method is not None:
            return method, props, body
        channel.connection.sleep(0.02)
    raise Failed(f"no message arrived in {queue} within {tries * 0.02:.0f}s")


def pump(conn, seconds: float, until=lambda: False) -> None:
    """Process I/O and callbacks for `seconds` (or until until() holds);
    process_data_events alone returns as soon as anything happened."""
    deadline = time.monotonic() + seconds
    while not until() and time.monotonic() < deadline:
        conn.process_data_events(time_limit=max(deadline - time.monotonic(), 0))


def temp_queue(channel) -> str:
    return channel.queue_declare("", exclusive=True).method.queue


def c_connect():
    p = url_parts()
    credentials = pika.PlainCredentials(p["user"], p["password"])
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        host=p["host"], port=p["port"], virtual_host="/", credentials=credentials,
        socket_timeout=5, stack_timeout=5))
    props = conn._impl.server_properties
    ch = conn.channel()
    check(ch.is_open, "channel did not open")
    conn.close()
    check(conn.is_closed, "connection did not close")
    return f"server product {props.get('product', b'?')!r}"


def c_wrong_password():
    try:
        conn = pika.BlockingConnection(params(wrong_password_url()))
    except pika.exceptions.ProbableAuthenticationError as error:
        return f"ProbableAuthenticationError: {error}"
    except pika.exceptions.AMQPConnectionError as error:
        raise Failed(f"expected ProbableAuthenticationError (connection.close 403 "
                     f"ACCESS_REFUSED), got {type(error).__name__}: {error!r}")
    conn.close()
    raise Failed("connected with a wrong password")


def c_exchange_types():
    conn = connect()
    ch = conn.channel()
    ch.confirm_delivery()
    names = {kind: unique(kind) for kind in ("direct", "fanout", "topic", "headers")}
    try:
        for kind, name in names.items():
            ch.exchange_declare(name, exchange_type=kind, auto_delete=True)
        q = {k: temp_queue(ch) for k in ("direct", "fanout1", "fanout2", "topic", "h_all", "h_any")}
        ch.queue_bind(q["direct"], names["direct"], routing_key="black")
        ch.queue_bind(q["fanout1"], names["fanout"])
        ch.queue_bind(q["fanout2"], names["fanout"])
        ch.queue_bind(q["topic"], names["topic"], routing_key="*.orange.#")
        ch.queue_bind(q["h_all"], names["headers"],
                      arguments={"x-match": "all", "format": "pdf", "type": "report"})
        ch.queue_bind(q["h_any"], names["headers"],
                      arguments={"x-match": "any", "format": "pdf", "type": "report"})
        publishes = [
            ("direct", "black", None, b"direct-hit"), ("direct", "white", None, b"direct-miss"),
            ("fanout", "ignored", None, b"fanout"),
            ("topic", "quick.orange.rabbit.x", None, b"topic-hit"),
            ("topic", "quick.brown.fox", None, b"topic-miss"),
            ("headers", "", {"format": "pdf", "type": "report"}, b"headers-both"),
            ("headers", "", {"format": "pdf", "type": "log"}, b"headers-one"),
            ("headers", "", {"format": "zip"}, b"headers-none"),
        ]
        for kind, key, hdrs, body in publishes:
            ch.basic_publish(names[kind], key, body, pika.BasicProperties(headers=hdrs))
        expected = {"direct": [b"direct-hit"], "fanout1": [b"fanout"], "fanout2": [b"fanout"],
                    "topic": [b"topic-hit"], "h_all": [b"headers-both"],
                    "h_any": [b"headers-both", b"headers-one"]}
        for key, want in expected.items():
            got = []
            while True:
                method, _, body = ch.basic_get(q[key], auto_ack=True)
                if method is None:
                    break
                got.append(body)
            check(got == want, f"queue bound for {key}: got {got}, expected {want}")
    finally:
        for name in names.values():
            ch.exchange_delete(name)
        conn.close()


def c_bodies():
    conn = connect()
    ch = conn.channel()
    ch.confirm_delivery()
    q = temp_queue(ch)
    for label, body in bodies().items():
        ch.basic_publish("", q, body)
        _, _, got = get_one(ch, q)
        check(got == body, f"{label} body: got {describe(got)}, sent {describe(body)}")
    conn.close()


def c_properties():
    conn = connect()
    ch = conn.channel()
    ch.confirm_delivery()
    q = temp_queue(ch)
    want = properties()
    ch.basic_publish("", q, b"props",
                     pika.BasicProperties(headers=headers(floats=False), **want))
    _, props, body = get_one(ch, q)
    for key, value in want.items():
        compare(key, getattr(props, key), value)
    compare_headers(props.headers, headers(floats=False))
    conn.close()


def c_confirms():
    conn = connect()
    ch = conn.channel()
    ch.confirm_delivery()
    q = temp_queue(ch)
    for i in range(200):  # each basic_publish waits for its basic.ack
        ch.basic_publish("", q, str(i).encode())
    count = ch.queue_declare(q, passive=True).method.message_count
    check(count == 200, f"{count} messages in the queue after 200 confirmed publishes")
    conn.close()


def c_basic_get():
    conn = connect()
    ch = conn.channel()
    ch.confirm_delivery()
    q = temp_queue(ch)
    for body in (b"first", b"second"):
        ch.basic_publish("", q, body)
    method, _, body = ch.basic_get(q, auto_ack=False)
    check(body == b"first" and method.message_count == 1,
          f"first get: {body!r} with message_count {method and method.message_count}, "
          "expected b'first' with 1")
    check(not method.redelivered, "first delivery flagged redelivered")
    ch.basic_ack(method.delivery_tag)
    method, _, body = ch.basic_get(q, auto_ack=True)
    check(body == b"second" and method.message_count == 0, f"second get: {body!r}")
    method, _, body = ch.basic_get(q, auto_ack=True)
    check(method is None, f"get on an empty queue returned {body!r}")
    conn.close()


def c_nack_requeue():
    conn = connect()
    ch = conn.channel()
    ch.confirm_delivery()
    q = temp_queue(ch)
    ch.basic_publish("", q, b"again")
    method, _, _ = get_one(ch, q, auto_ack=False)
    check(not method.redelivered, "first delivery flagged redelivered")
    ch.basic_nack(method.delivery_tag, requeue=True)
    method, _, body = get_one(ch, q, auto_ack=False)
    check(body == b"again" and method.redelivered,
          f"after nack(requeue=True): {body!r} redelivered={method.redelivered}")
    ch.basic_ack(method.delivery_tag)
    conn.close()


def c_reject():
    conn = connect()
    ch = conn.channel()
    ch.confirm_delivery()
    q = temp_queue(ch)
    ch.basic_publish("", q, b"requeue-me")
    method, _, _ = get_one(ch, q, auto_ack=False)
    ch.basic_reject(method.delivery_tag, requeue=True)
    method, _, body = get_one(ch, q, auto_ack=False)
    check(body == b"requeue-me" and method.redelivered,
          f"after reject(requeue=True): {body!r} redelivered={method.redelivered}")
    ch.basic_reject(method.delivery_tag, requeue=False)
    conn.sleep(0.2)
    count = ch.queue_declare(q, passive=True).method.message_count
    check(count == 0, f"reject(requeue=False) left {count} message(s) in the queue")
    conn.close()


def c_prefetch():
    conn = connect()
    ch = conn.channel()
    ch.confirm_delivery()
    q = temp_queue(ch)
    for i in range(10):
        ch.basic_publish("", q, str(i).encode())
    ch.basic_qos(prefetch_count=3)
    delivered = []
    ch.basic_consume(q, lambda c, m, p, b: delivered.append(m))
    pump(conn, 0.5)
    check(len(delivered) == 3, f"with prefetch_count=3, {len(delivered)} unacked deliveries "
                               "(expected 3)")
    ch.basic_ack(delivered[0].delivery_tag)
    pump(conn, 0.5)
    check(len(delivered) == 4, f"after one ack, {len(delivered)} deliveries (expected 4)")
    ch.basic_ack(delivered[-1].delivery_tag, multiple=True)
    pump(conn, 0.5)
    check(len(delivered) == 7, f"after ack(multiple) of all, {len(delivered)} (expected 7)")
    conn.close()


def c_consumer_cancel():
    conn = connect()
    ch = conn.channel()
    ch.confirm_delivery()
    q = temp_queue(ch)
    got = []
    tag = ch.basic_consume(q, lambda c, m, p, b: got.append(b), auto_ack=True)
    ch.basic_publish("", q, b"before")
    pump(conn, 0.3)
    check(got == [b"before"], f"consumer got {got} before cancel")
    ch.basic_cancel(tag)  # waits for cancel-ok
    ch.basic_publish("", q, b"after")
    pump(conn, 0.3)
    check(got == [b"before"], f"cancelled consumer still got {got[1:]}")
    count = ch.queue_declare(q, passive=True).method.message_count
    check(count == 1, f"{count} messages left after cancel (expected 1)")

    # The broker cancels a consumer whose queue is deleted (consumer_cancel_notify).
    q2 = ch.queue_declare(unique("cancel")).method.queue
    cancelled = []
    ch.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    tag2 = ch.basic_consume(q2, lambda c, m, p, b: None, auto_ack=True)
    other = conn.channel()
    other.queue_delete(q2)
    pump(conn, 3, until=lambda: cancelled)
    check(cancelled == [tag2], f"no broker basic.cancel for {tag2} after its queue was deleted "
                               f"(got {cancelled})")
    check(ch.is_open, "channel closed after the broker's basic.cancel")
    conn.close()


def c_mandatory_return():
    conn = connect()
    ch = conn.channel()
    ch.confirm_delivery()
    key = unique("nowhere")
    try:
        ch.basic_publish("", key, b"lost", pika.BasicProperties(message_id="m-1"), mandatory=True)
    except pika.exceptions.UnroutableError as error:
        returned = error.messages[0]
        check(returned.method.reply_code == 312 and returned.method.reply_text == "NO_ROUTE",
              f"basic.return {returned.method.reply_code} {returned.method.reply_text}, "
              "expected 312 NO_ROUTE")
        check(returned.body == b"lost" and returned.properties.message_id == "m-1"
              and returned.method.routing_key == key,
              f"returned message differs: {returned}")
    else:
        raise Failed("mandatory publish to an unroutable key was not returned")
    # Also without confirms: the return arrives through the on-return callback.
    ch2 = conn.channel()
    returns = []
    ch2.add_on_return_callback(lambda c, m, p, b: returns.append((m.reply_code, b)))
    ch2.basic_publish("", key, b"lost-2", mandatory=True)
    pump(conn, 0.5)
    check(returns == [(312, b"lost-2")], f"on-return callback got {returns}")
    conn.close()


def c_heartbeat():
    conn = connect(heartbeat=HEARTBEAT_S)
    negotiated = conn._impl.params.heartbeat
    check(negotiated == HEARTBEAT_S, f"negotiated heartbeat {negotiated}, asked for {HEARTBEAT_S}")
    ch = conn.channel()
    q = temp_queue(ch)
    conn.sleep(PAUSE_S)  # services heartbeats in both directions while idle
    check(conn.is_open, "connection closed during the pause")
    ch.confirm_delivery()
    ch.basic_publish("", q, b"alive")
    _, _, body = get_one(ch, q)
    check(body == b"alive", f"after the pause got {body!r}")
    conn.close()
    return f"{PAUSE_S}s pause with a {HEARTBEAT_S}s heartbeat"


def c_channel_error():
    conn = connect()
    ch = conn.channel()
    missing = unique("missing")
    try:
        ch.queue_declare(missing, passive=True)
        raise Failed("passive declare of a missing queue succeeded")
    except pika.exceptions.ChannelClosedByBroker as error:
        check(error.reply_code == 404, f"reply code {error.reply_code} {error.reply_text}, "
                                       "expected 404")
        check(error.reply_text.startswith("NOT_FOUND"), f"reply text {error.reply_text!r}")
    check(ch.is_closed and conn.is_open, f"after the 404: channel closed={ch.is_closed}, "
                                         f"connection open={conn.is_open}")
    ch = conn.channel()
    q = temp_queue(ch)
    ch.basic_publish("", q, b"still works")
    _, _, body = get_one(ch, q)
    check(body == b"still works", f"new channel after the 404 got {body!r}")
    conn.close()


def tls_params(ca: str, client_cert: bool = False) -> pika.ConnectionParameters:
    """Parameters for the AMQPS listener: the server is verified against ca
    (and its name, localhost); with client_cert, our certificate is sent and
    we log in with EXTERNAL."""
    env, p = tls_env(), tls_parts()
    context = ssl.create_default_context(cafile=ca)
    if client_cert:
        context.load_cert_chain(env["cert"], env["key"])
        credentials = pika.credentials.ExternalCredentials()
    else:
        credentials = pika.PlainCredentials(p["user"], p["password"])
    return pika.ConnectionParameters(
        host=p["host"], port=p["port"], virtual_host="/", credentials=credentials,
        ssl_options=pika.SSLOptions(context, server_hostname=p["host"]),
        socket_timeout=5, stack_timeout=5, blocked_connection_timeout=5)


def tls_round_trip(conn, user_id: str | None = None) -> str:
    """Publish (confirmed) to a temporary queue and consume it back over conn."""
    ch = conn.channel()
    ch.confirm_delivery()
    q = temp_queue(ch)
    sent = [b"over tls", bodies()["1 MiB"]]
    for body in sent:
        ch.basic_publish("", q, body, pika.BasicProperties(user_id=user_id), mandatory=True)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: (got.append((p.user_id, b)), c.basic_ack(m.delivery_tag)))
    pump(conn, 10, until=lambda: len(got) == len(sent))
    check([b for _, b in got] == sent, f"consumed {[describe(b) for _, b in got]}, "
                                       f"sent {[describe(b) for b in sent]}")
    check(all(u == user_id for u, _ in got), f"user_id came back as {[u for u, _ in got]}")
    version = conn._impl._transport._sock.version()
    return version


def c_tls_connect():
    conn = pika.BlockingConnection(tls_params(tls_env()["ca"]))
    version = tls_round_trip(conn)
    check(version in ("TLSv1.2", "TLSv1.3"), f"negotiated {version}")
    conn.close()
    return f"{version}, PLAIN login, publish + consume"


def c_tls_external():
    env = tls_env()
    conn = pika.BlockingConnection(tls_params(env["ca"], client_cert=True))
    # A broker checks user_id against the connection's user, so this round
    # trip holds only if EXTERNAL logged us in as the certificate's subject.
    version = tls_round_trip(conn, user_id=env["external_user"])
    ch = conn.channel()
    q = temp_queue(ch)
    try:
        ch.basic_publish("", q, b"x", pika.BasicProperties(user_id="guest"))
        ch.queue_declare(q, passive=True)  # its declare-ok comes after the publish's refusal
        raise Failed(f"user_id 'guest' was accepted on the EXTERNAL login of {env['external_user']!r}")
    except pika.exceptions.ChannelClosedByBroker as error:
        check(error.reply_code == 406, f"user_id 'guest': {error.reply_code} {error.reply_text}, "
                                       "expected 406 PRECONDITION_FAILED")
    conn.close()
    return f"{version}, EXTERNAL as {env['external_user']!r}"


def c_tls_untrusted_ca():
    started = time.monotonic()
    try:
        conn = pika.BlockingConnection(tls_params(tls_env()["other_ca"]))
    except (pika.exceptions.AMQPConnectionError, ssl.SSLError) as error:
        check(is_verify_error(error), f"expected a certificate verification error, got "
                                      f"{type(error).__name__}: {error!r}")
        seconds = time.monotonic() - started
        check(seconds < 10, f"the refusal took {seconds:.1f}s")
        return f"refused in {seconds:.2f}s: {error!r}"[:200]
    conn.close()
    raise Failed("connected although the client trusts another CA")


HOUR_MS = 3_600_000


def c_virtual_clock():
    """An hour-long TTL with dead-lettering, and x-expires, in milliseconds:
    Warren's virtual clock (--clock manual) moved by POST /api/warren/clock."""
    env = clock_env()
    conn = pika.BlockingConnection(params(env["url"]))
    ch = conn.channel()
    dlx, dead, hour, idle = unique("dlx"), unique("dead"), unique("hour"), unique("idle")
    ch.exchange_declare(dlx, "fanout")
    ch.queue_declare(dead)
    ch.queue_bind(dead, dlx)
    ch.queue_declare(hour, arguments={"x-message-ttl": HOUR_MS, "x-dead-letter-exchange": dlx})
    ch.queue_declare(idle, arguments={"x-expires": HOUR_MS})
    ch.basic_publish("", hour, b"an hour to live")
    # A round trip: the publish has arrived before time moves.
    depth = ch.queue_declare(hour, passive=True).method.message_count
    check(depth == 1, f"{hour} holds {depth} messages, expected 1")
    started = time.monotonic()
    status, clock = management(env["mgmt"], "POST", "/api/warren/clock", {"advance_ms": HOUR_MS})
    check(status == 200, f"POST /api/warren/clock answered {status}")
    _, props, body = get_one(ch, dead)
    check(body == b"an hour to live", f"dead-lettered {body!r}")
    death = (props.headers or {}).get("x-death", [{}])[0]
    check(death.get("reason") == "expired" and death.get("queue") == hour, f"x-death {death}")
    # pika gives a timestamp as a naive UTC datetime.
    died_ms = calendar.timegm(death["time"].utctimetuple()) * 1000
    check(abs(died_ms - clock["now_ms"]) < 1000,
          f"x-death time {death['time']} is not the virtual time {clock['now_ms']} ms")
    status, _ = management(env["mgmt"], "GET", f"/api/queues/%2F/{idle}")
    check(status == 404, f"the idle queue is still there after an hour of x-expires (HTTP {status})")
    elapsed_ms = (time.monotonic() - started) * 1000
    check(conn.is_open, "an hour of broker time closed the connection (heartbeats must stay real)")
    ch.queue_delete(dead)
    ch.queue_delete(hour)
    ch.exchange_delete(dlx)
    conn.close()
    return f"an hour of TTL, dead-lettering and x-expires in {elapsed_ms:.0f} ms"


CHECKS = {name[2:]: fn for name, fn in globals().items() if name.startswith("c_")}

if __name__ == "__main__":
    run(CHECKS)
