"""The client checks with aio-pika (asyncio, on aiormq); see clientcheck.py
and interop/README.md. Usage: checks.py CHECK"""

import asyncio
import datetime
import logging
import ssl
import time
import urllib.parse

import aio_pika
import aiormq.exceptions
import yarl

from clientcheck import (HEARTBEAT_S, PAUSE_S, Failed, FaultBroker, amqp_url, bodies, check,
                         compare, compare_headers, describe, headers, is_verify_error,
                         properties, run, tls_env, unique, url_parts, wrong_password_url)


async def connect(url: str | None = None) -> aio_pika.abc.AbstractConnection:
    return await aio_pika.connect(url or amqp_url(), timeout=5)


async def channel(conn, **kwargs):
    return await conn.channel(**kwargs)  # publisher confirms are on by default


async def temp_queue(ch):
    return await ch.declare_queue(exclusive=True)


async def get_one(queue, no_ack=True):
    for _ in range(250):
        msg = await queue.get(no_ack=no_ack, fail=False)
        if msg is not None:
            return msg
        await asyncio.sleep(0.02)
    raise Failed(f"no message arrived in {queue.name} within 5s")


async def drain(queue):
    got = []
    while (msg := await queue.get(no_ack=True, fail=False)) is not None:
        got.append(msg.body)
    return got


async def message_count(ch, name):
    return (await ch.declare_queue(name, passive=True)).declaration_result.message_count


async def c_connect():
    p = url_parts()
    conn = await aio_pika.connect(host=p["host"], port=p["port"], login=p["user"],
                                  password=p["password"], virtualhost="/", timeout=5)
    ch = await conn.channel()
    check(not ch.is_closed, "channel did not open")
    product = conn.transport.connection.server_properties.get("product")
    await conn.close()
    check(conn.is_closed, "connection did not close")
    return f"server product {product!r}"


async def c_wrong_password():
    try:
        conn = await connect(wrong_password_url())
    except aiormq.exceptions.ProbableAuthenticationError as error:
        return f"ProbableAuthenticationError: {error}"
    except Exception as error:
        raise Failed(f"expected aiormq ProbableAuthenticationError (connection.close 403), "
                     f"got {type(error).__name__}: {error!r}")
    await conn.close()
    raise Failed("connected with a wrong password")


async def c_exchange_types():
    conn = await connect()
    ch = await channel(conn)
    ex = {}
    for kind in ("direct", "fanout", "topic", "headers"):
        ex[kind] = await ch.declare_exchange(unique(kind), aio_pika.ExchangeType(kind), auto_delete=True)
    q = {k: await temp_queue(ch) for k in ("direct", "fanout1", "fanout2", "topic", "h_all", "h_any")}
    await q["direct"].bind(ex["direct"], "black")
    await q["fanout1"].bind(ex["fanout"])
    await q["fanout2"].bind(ex["fanout"])
    await q["topic"].bind(ex["topic"], "*.orange.#")
    await q["h_all"].bind(ex["headers"], arguments={"x-match": "all", "format": "pdf", "type": "report"})
    await q["h_any"].bind(ex["headers"], arguments={"x-match": "any", "format": "pdf", "type": "report"})
    for kind, key, hdrs, body in [
        ("direct", "black", None, b"direct-hit"), ("direct", "white", None, b"direct-miss"),
        ("fanout", "ignored", None, b"fanout"),
        ("topic", "quick.orange.rabbit.x", None, b"topic-hit"),
        ("topic", "quick.brown.fox", None, b"topic-miss"),
        ("headers", "", {"format": "pdf", "type": "report"}, b"headers-both"),
        ("headers", "", {"format": "pdf", "type": "log"}, b"headers-one"),
        ("headers", "", {"format": "zip"}, b"headers-none"),
    ]:
        await ex[kind].publish(aio_pika.Message(body, headers=hdrs), key)
    want = {"direct": [b"direct-hit"], "fanout1": [b"fanout"], "fanout2": [b"fanout"],
            "topic": [b"topic-hit"], "h_all": [b"headers-both"],
            "h_any": [b"headers-both", b"headers-one"]}
    for key, w in want.items():
        got = await drain(q[key])
        check(got == w, f"queue bound for {key}: got {got}, expected {w}")
    for e in ex.values():
        await e.delete()
    await conn.close()


async def c_bodies():
    conn = await connect()
    ch = await channel(conn)
    q = await temp_queue(ch)
    for label, body in bodies().items():
        await ch.default_exchange.publish(aio_pika.Message(body), q.name)
        got = (await get_one(q)).body
        check(got == body, f"{label} body: got {describe(got)}, sent {describe(body)}")
    await conn.close()


async def c_properties():
    conn = await connect()
    ch = await channel(conn)
    q = await temp_queue(ch)
    want = properties()
    sent = dict(want)
    # aio-pika takes expiration in seconds and timestamp as a datetime.
    sent["expiration"] = int(want["expiration"]) / 1000
    sent["timestamp"] = datetime.datetime.fromtimestamp(want["timestamp"], datetime.timezone.utc)
    await ch.default_exchange.publish(aio_pika.Message(b"props", headers=headers(byte_array=bytearray), **sent), q.name)
    msg = await get_one(q)
    raw = msg.properties  # the pamqp Basic.Properties as received
    compare("content_type", msg.content_type, want["content_type"])
    compare("content_encoding", msg.content_encoding, want["content_encoding"])
    compare("delivery_mode", int(msg.delivery_mode), want["delivery_mode"])
    compare("priority", msg.priority, want["priority"])
    compare("correlation_id", msg.correlation_id, want["correlation_id"])
    compare("reply_to", msg.reply_to, want["reply_to"])
    compare("expiration", raw.expiration, want["expiration"])
    compare("message_id", msg.message_id, want["message_id"])
    check(msg.timestamp is not None and int(msg.timestamp.timestamp()) == want["timestamp"],
          f"timestamp: got {msg.timestamp}, sent {want['timestamp']}")
    compare("type", msg.type, want["type"])
    compare("user_id", msg.user_id, want["user_id"])
    compare("app_id", msg.app_id, want["app_id"])

    def normalise(value):  # pamqp decodes timestamps as aware UTC datetimes
        if isinstance(value, datetime.datetime) and value.tzinfo:
            return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return value
    compare_headers(msg.headers, headers(byte_array=bytearray), normalise)
    await conn.close()


async def c_confirms():
    conn = await connect()
    ch = await channel(conn)
    q = await temp_queue(ch)
    results = await asyncio.gather(*(ch.default_exchange.publish(aio_pika.Message(str(i).encode()), q.name)
                                     for i in range(200)))
    check(all(isinstance(r, aiormq.spec.Basic.Ack) for r in results),
          f"not every publish was acked: {[r for r in results if not isinstance(r, aiormq.spec.Basic.Ack)][:3]}")
    count = await message_count(ch, q.name)
    check(count == 200, f"{count} messages in the queue after 200 confirmed publishes")
    await conn.close()


async def c_basic_get():
    conn = await connect()
    ch = await channel(conn)
    q = await temp_queue(ch)
    for body in (b"first", b"second"):
        await ch.default_exchange.publish(aio_pika.Message(body), q.name)
    msg = await q.get(no_ack=False)
    check(msg.body == b"first" and msg.message_count == 1,
          f"first get: {msg.body!r} message_count {msg.message_count}")
    check(not msg.redelivered, "first delivery flagged redelivered")
    await msg.ack()
    msg = await q.get(no_ack=True)
    check(msg.body == b"second" and msg.message_count == 0, f"second get: {msg.body!r}")
    msg = await q.get(no_ack=True, fail=False)
    check(msg is None, f"get on an empty queue returned {msg and msg.body!r}")
    await conn.close()


async def c_nack_requeue():
    conn = await connect()
    ch = await channel(conn)
    q = await temp_queue(ch)
    await ch.default_exchange.publish(aio_pika.Message(b"again"), q.name)
    msg = await get_one(q, no_ack=False)
    check(not msg.redelivered, "first delivery flagged redelivered")
    await msg.nack(requeue=True)
    msg = await get_one(q, no_ack=False)
    check(msg.body == b"again" and msg.redelivered,
          f"after nack(requeue): {msg.body!r} redelivered={msg.redelivered}")
    await msg.ack()
    await conn.close()


async def c_reject():
    conn = await connect()
    ch = await channel(conn)
    q = await temp_queue(ch)
    await ch.default_exchange.publish(aio_pika.Message(b"requeue-me"), q.name)
    await (await get_one(q, no_ack=False)).reject(requeue=True)
    msg = await get_one(q, no_ack=False)
    check(msg.body == b"requeue-me" and msg.redelivered,
          f"after reject(requeue): {msg.body!r} redelivered={msg.redelivered}")
    await msg.reject(requeue=False)
    await asyncio.sleep(0.2)
    count = await message_count(ch, q.name)
    check(count == 0, f"reject(requeue=False) left {count} message(s)")
    await conn.close()


async def c_prefetch():
    conn = await connect()
    ch = await channel(conn)
    q = await temp_queue(ch)
    for i in range(10):
        await ch.default_exchange.publish(aio_pika.Message(str(i).encode()), q.name)
    await ch.set_qos(prefetch_count=3)
    got = []

    async def on_message(msg):
        got.append(msg)
    await q.consume(on_message)
    await asyncio.sleep(0.5)
    check(len(got) == 3, f"with prefetch_count=3, {len(got)} unacked deliveries (expected 3)")
    await got[0].ack()
    await asyncio.sleep(0.5)
    check(len(got) == 4, f"after one ack, {len(got)} deliveries (expected 4)")
    await got[3].ack(multiple=True)
    await asyncio.sleep(0.5)
    check(len(got) == 7, f"after ack(multiple) of all, {len(got)} deliveries (expected 7)")
    await conn.close()


async def c_consumer_cancel():
    conn = await connect()
    ch = await channel(conn)
    q = await temp_queue(ch)
    got = []

    async def on_message(msg):
        got.append(msg.body)
    tag = await q.consume(on_message, no_ack=True)
    await ch.default_exchange.publish(aio_pika.Message(b"before"), q.name)
    await asyncio.sleep(0.3)
    check(got == [b"before"], f"consumer got {got} before cancel")
    await q.cancel(tag)
    await ch.default_exchange.publish(aio_pika.Message(b"after"), q.name)
    await asyncio.sleep(0.3)
    check(got == [b"before"], f"cancelled consumer still got {got[1:]}")
    count = await message_count(ch, q.name)
    check(count == 1, f"{count} messages left after cancel (expected 1)")

    # The broker cancels a consumer whose queue is deleted.
    q2 = await ch.declare_queue(unique("cancel"))
    cancelled = asyncio.get_running_loop().create_future()
    underlay = await ch.get_underlay_channel()
    underlay.on_consumer_cancel_callbacks.add(
        lambda frame: cancelled.done() or cancelled.set_result(frame.consumer_tag))
    tag2 = await q2.consume(on_message, no_ack=True)
    other = await conn.channel()
    await other.queue_delete(q2.name)
    try:
        got_tag = await asyncio.wait_for(cancelled, 3)
    except asyncio.TimeoutError:
        raise Failed("no broker basic.cancel after the queue was deleted")
    check(got_tag == tag2, f"basic.cancel for {got_tag}, expected {tag2}")
    check(not ch.is_closed, "channel closed after the broker's basic.cancel")
    await conn.close()


async def c_mandatory_return():
    conn = await connect()
    ch = await channel(conn, on_return_raises=True)
    key = unique("nowhere")
    try:
        await ch.default_exchange.publish(aio_pika.Message(b"lost", message_id="m-1"), key, mandatory=True)
    except aio_pika.exceptions.DeliveryError as error:
        frame, message = error.frame, error.message
        check(frame.reply_code == 312 and frame.reply_text == "NO_ROUTE",
              f"basic.return {frame.reply_code} {frame.reply_text}, expected 312 NO_ROUTE")
        check(message.body == b"lost" and message.header.properties.message_id == "m-1" and frame.routing_key == key,
              f"returned message differs: {frame}")
    else:
        raise Failed("mandatory publish to an unroutable key was not returned")
    await conn.close()


async def c_heartbeat():
    url = yarl.URL(amqp_url()).update_query(heartbeat=HEARTBEAT_S)
    conn = await connect(str(url))
    negotiated = conn.transport.connection.connection_tune.heartbeat
    check(negotiated == HEARTBEAT_S, f"negotiated heartbeat {negotiated}, asked for {HEARTBEAT_S}")
    ch = await channel(conn)
    q = await temp_queue(ch)
    await asyncio.sleep(PAUSE_S)
    check(not conn.is_closed, "connection closed during the pause")
    await ch.default_exchange.publish(aio_pika.Message(b"alive"), q.name)
    check((await get_one(q)).body == b"alive", "wrong body after the pause")
    await conn.close()
    return f"{PAUSE_S}s pause with a {HEARTBEAT_S}s heartbeat"


async def c_channel_error():
    conn = await connect()
    ch = await channel(conn)
    try:
        await ch.declare_queue(unique("missing"), passive=True)
        raise Failed("passive declare of a missing queue succeeded")
    except aiormq.exceptions.ChannelNotFoundEntity as error:
        check(str(error.args[0]).startswith("NOT_FOUND"), f"reply text {error}")
    check(not conn.is_closed, "connection closed with the channel")
    ch2 = await channel(conn)
    q = await temp_queue(ch2)
    await ch2.default_exchange.publish(aio_pika.Message(b"still works"), q.name)
    check((await get_one(q)).body == b"still works", "new channel did not work")
    await conn.close()


def with_query(url: str, **query) -> str:
    return str(yarl.URL(url).update_query(query))


async def tls_declare_publish_get(conn, user_id: str | None = None) -> str:
    """In the spirit of aio-pika's tests/test_amqps.py: over the amqps
    connection, declare a queue, publish to it, get the message back."""
    ch = await channel(conn)
    queue = await ch.declare_queue(unique("tls"), auto_delete=False)
    try:
        for body in (b"over tls", bodies()["1 MiB"]):
            await ch.default_exchange.publish(aio_pika.Message(body, user_id=user_id), queue.name)
            msg = await get_one(queue)
            check(msg.body == body, f"got {describe(msg.body)}, sent {describe(body)}")
            check(msg.user_id == user_id, f"user_id came back as {msg.user_id!r}")
    finally:
        await queue.delete(if_unused=False, if_empty=False)
    # aiormq keeps no handle on its stream; that this is TLS is shown by the
    # AMQPS port answering at all, and by tls_untrusted_ca's refusal.
    return conn.transport.connection.url.scheme


# tests/test_amqps.py runs with both connection fabrics.
FABRICS = {"connect": aio_pika.connect, "connect_robust": aio_pika.connect_robust}


async def c_tls_connect():
    env = tls_env()
    versions = []
    for fabric in FABRICS.values():
        # The CA as a URL parameter (aiormq's cafile=), then as an SSLContext.
        conn = await fabric(with_query(env["url"], cafile=env["ca"]), timeout=5)
        versions.append(await tls_declare_publish_get(conn))
        await conn.close()
        context = ssl.create_default_context(cafile=env["ca"])
        conn = await fabric(env["url"], ssl_context=context, timeout=5)
        versions.append(await tls_declare_publish_get(conn))
        await conn.close()
    check(versions == ["amqps"] * 4, f"connected with {versions}")
    return "amqps: connect and connect_robust, cafile= URL and ssl_context, declare + publish + get"


async def c_tls_external():
    env = tls_env()
    # No user or password in the URL: aiormq's auth=external with our certificate.
    parsed = yarl.URL(env["url"])
    url = with_query(str(parsed.with_user(None)), cafile=env["ca"], certfile=env["cert"],
                     keyfile=env["key"], auth="external")
    conn = await aio_pika.connect(url, timeout=5)
    # user_id must equal the connection's user, so this passes only if
    # EXTERNAL logged in as the certificate's subject.
    version = await tls_declare_publish_get(conn, user_id=env["external_user"])
    await conn.close()
    return f"{version}, EXTERNAL as {env['external_user']!r}"


async def c_tls_untrusted_ca():
    env = tls_env()
    # As tests/test_amqps.py's test_default_context: with no context (the
    # system's CAs) and a default one, the connection fails with
    # ConnectionError; and so it does with a context trusting another CA.
    contexts = {"no ssl_context": None, "a default ssl_context": ssl.create_default_context(),
                "an ssl_context trusting another CA": ssl.create_default_context(cafile=env["other_ca"])}
    slowest = 0.0
    for fabric_name, fabric in FABRICS.items():
        for what, context in contexts.items():
            started = time.monotonic()
            try:
                conn = await fabric(env["url"], ssl_context=context, timeout=5)
            except ConnectionError as error:
                check(is_verify_error(error), f"{fabric_name} with {what}: expected a certificate "
                                              f"verification error, got {error!r}")
                slowest = max(slowest, time.monotonic() - started)
                check(slowest < 10, f"{fabric_name} with {what}: the refusal took {slowest:.1f}s")
                continue
            await conn.close()
            raise Failed(f"{fabric_name} with {what} connected, although it does not trust our CA")
    return f"connect and connect_robust refused {len(contexts)} ways, slowest in {slowest:.2f}s"


# --- Fault injection: a Warren of each check's own (clientcheck.FaultBroker)
# misbehaves on demand, and aio-pika's robust connection (connect_robust)
# has to ride it out.

RECONNECT_S = 0.1  # connect_robust's reconnect_interval (default 5s)


async def robust(broker: FaultBroker, name: str) -> aio_pika.abc.AbstractRobustConnection:
    """connect_robust with a connection_name, so that faults can name it."""
    return await aio_pika.connect_robust(broker.url, timeout=5, reconnect_interval=RECONNECT_S,
                                         client_properties={"connection_name": name})


async def fault(broker: FaultBroker, path: str, body: dict | None = None, expect: int = 204):
    # In a thread: the HTTP call must not stall the event loop (a restart
    # answers once the connections have gone).
    return await asyncio.to_thread(broker.fault, path, body, expect)


async def until(what: str, condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise Failed(f"{what} within {timeout:.0f}s")
        await asyncio.sleep(0.02)


async def next_item(queue: asyncio.Queue, what: str, timeout: float = 5.0):
    try:
        return await asyncio.wait_for(queue.get(), timeout)
    except asyncio.TimeoutError:
        raise Failed(f"{what} within {timeout:.0f}s")


def watch_reconnects(conn) -> list:
    """The exceptions the robust connection closed with and its reconnects."""
    seen = {"closed": [], "reconnects": 0}

    def on_close(_conn, exc=None):
        seen["closed"].append(exc)

    def on_reconnect(_conn):
        seen["reconnects"] += 1
    conn.close_callbacks.add(on_close)
    conn.reconnect_callbacks.add(on_reconnect)
    return seen


async def consumer(queue) -> asyncio.Queue:
    got: asyncio.Queue = asyncio.Queue()

    async def on_message(msg):
        got.put_nowait(msg.body)
    await queue.consume(on_message, no_ack=True)
    return got


async def c_fault_close():
    with FaultBroker() as broker:
        conn = await robust(broker, "aio-close")
        seen = watch_reconnects(conn)
        ch = await conn.channel()
        q = await ch.declare_queue(unique("close"))
        got = await consumer(q)
        await ch.default_exchange.publish(aio_pika.Message(b"before"), q.name)
        check(await next_item(got, "no delivery before the close") == b"before", "wrong first delivery")

        await fault(broker, "connections/aio-close/close", {"code": 320, "reason": "robust test"})
        await until("the robust connection did not reconnect", lambda: seen["reconnects"] >= 1)
        exc = seen["closed"][0] if seen["closed"] else None
        check(isinstance(exc, aiormq.exceptions.ConnectionClosed) and exc.args[:1] == (320,)
              and "CONNECTION_FORCED - robust test" in str(exc.args[1:2]),
              f"closed with {exc!r}, expected ConnectionClosed(320, 'CONNECTION_FORCED - robust test')")
        await ch.ready()
        # The restored consumer gets what is published after the reconnect.
        await ch.default_exchange.publish(aio_pika.Message(b"after"), q.name)
        check(await next_item(got, "the restored consumer got nothing") == b"after", "wrong delivery after")
        await conn.close()
    return f"closed with {exc.args[0]}, reconnected, consumer restored"


async def c_fault_drop():
    with FaultBroker() as broker:
        conn = await robust(broker, "aio-drop")
        seen = watch_reconnects(conn)
        ch = await conn.channel()
        q = await ch.declare_queue(unique("drop"))
        got = await consumer(q)
        await fault(broker, "connections/aio-drop/drop")
        await until("the robust connection did not reconnect after the socket dropped",
                    lambda: seen["reconnects"] >= 1)
        exc = seen["closed"][0] if seen["closed"] else None
        check(not isinstance(exc, aiormq.exceptions.ConnectionClosed) or exc.args[:1] != (320,),
              f"a dropped socket sends no close frame, yet aio-pika saw {exc!r}")
        await ch.ready()
        await ch.default_exchange.publish(aio_pika.Message(b"after drop"), q.name)
        check(await next_item(got, "the restored consumer got nothing") == b"after drop", "wrong delivery")
        await conn.close()
    return f"dropped ({type(exc).__name__}), reconnected, consumer restored"


async def c_fault_restart():
    down_ms = 600
    with FaultBroker() as broker:
        conn = await robust(broker, "aio-restart")
        seen = watch_reconnects(conn)
        ch = await conn.channel()
        # robust=False: aio-pika would declare them again on reconnect, and
        # this is about what the broker kept.
        kept = await ch.declare_queue(unique("kept"), durable=True, robust=False)
        lost = await ch.declare_queue(unique("lost"), durable=False, robust=False)
        await ch.default_exchange.publish(
            aio_pika.Message(b"persistent", delivery_mode=aio_pika.DeliveryMode.PERSISTENT), kept.name)
        await ch.default_exchange.publish(aio_pika.Message(b"transient"), kept.name)

        started = time.monotonic()
        report = await fault(broker, "restart", {"down_ms": down_ms}, expect=200)
        check(report == {"connections": 1, "queues": 1, "exchanges": 0, "messages": 1},
              f"restart took away {report}")
        await until("the robust connection did not reconnect after the restart",
                    lambda: seen["reconnects"] >= 1, timeout=10)
        took = time.monotonic() - started
        check(took >= down_ms / 1000, f"reconnected after {took:.2f}s, while the node was down {down_ms} ms")
        await ch.ready()
        msg = await kept.get(no_ack=True, fail=False)
        check(msg is not None and msg.body == b"persistent", f"the durable queue held {msg and msg.body!r}")
        msg = await kept.get(no_ack=True, fail=False)
        check(msg is None, f"a transient message survived the restart: {msg and msg.body!r}")
        try:
            await ch.declare_queue(lost.name, passive=True, robust=False)
            raise Failed("the transient queue survived the restart")
        except aiormq.exceptions.ChannelNotFoundEntity:
            pass
        await conn.close()
    return f"reconnected {took:.2f}s after a {down_ms} ms restart; durable + persistent kept, transient gone"


async def c_fault_nack_publishes():
    with FaultBroker() as broker:
        conn = await robust(broker, "aio-nack")
        ch = await conn.channel()  # publisher confirms on
        q = await ch.declare_queue(unique("nack"))
        await fault(broker, f"queues/%2F/{q.name}/nack-publishes", {"count": 2})
        outcomes = []
        for body in (b"one", b"two", b"three"):
            try:
                result = await ch.default_exchange.publish(aio_pika.Message(body), q.name)
                outcomes.append(type(result).__name__)
            except aio_pika.exceptions.DeliveryError as error:
                outcomes.append(type(error.frame).__name__)
        check(outcomes == ["Nack", "Nack", "Ack"], f"confirms {outcomes}, expected Nack, Nack, Ack")
        msgs = []
        while (m := await q.get(no_ack=True, fail=False)) is not None:
            msgs.append(m.body)
        check(msgs == [b"three"], f"the queue holds {msgs}, expected only the acked publish")
        await conn.close()
    return "DeliveryError(Basic.Nack) twice, then Basic.Ack"


async def c_fault_cancel_consumers():
    with FaultBroker() as broker:
        conn = await robust(broker, "aio-cancel")
        ch = await conn.channel()
        q = await ch.declare_queue(unique("cancel"))
        got = await consumer(q)
        cancelled: asyncio.Queue = asyncio.Queue()
        underlay = await ch.get_underlay_channel()
        underlay.on_consumer_cancel_callbacks.add(lambda frame: cancelled.put_nowait(frame.consumer_tag))
        tag = next(iter(underlay.consumers))
        await fault(broker, f"queues/%2F/{q.name}/cancel-consumers", {"consumer_tag": tag})
        got_tag = await next_item(cancelled, "no basic.cancel reached aio-pika")
        check(got_tag == tag, f"basic.cancel for {got_tag}, expected {tag}")
        # A robust channel consumes again, with the same tag, when the
        # broker cancels a consumer of a queue that still exists.
        await until("aio-pika did not consume again after basic.cancel", lambda: tag in underlay.consumers)

        await until("the broker did not see the consumer come back", lambda: broker.queue_consumers(q.name) == 1)
        await ch.default_exchange.publish(aio_pika.Message(b"after cancel"), q.name)
        check(await next_item(got, "the re-made consumer got nothing") == b"after cancel", "wrong delivery")
        check(not ch.is_closed and not conn.is_closed, "the channel or connection closed")
        await conn.close()
    return f"basic.cancel for {tag}; the robust channel consumed again with the same tag"


class LogRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def c_fault_memory_alarm():
    records = LogRecords()
    # aiormq has no callback for connection.blocked: it logs it (a warning).
    logging.getLogger("aiormq.connection").addHandler(records)
    with FaultBroker() as broker:
        conn = await robust(broker, "aio-alarm")
        ch = await conn.channel()
        q = await ch.declare_queue(unique("alarm"))
        await ch.default_exchange.publish(aio_pika.Message(b"before"), q.name)
        await fault(broker, "alarms/memory/raise")
        # RabbitMQ tells only publishers: this publish brings connection.blocked
        # and is not read (so not confirmed) until the alarm clears.
        pending = asyncio.create_task(ch.default_exchange.publish(aio_pika.Message(b"blocked"), q.name))
        await until("no connection.blocked logged by aiormq",
                    lambda: any("was blocked by: 'low on memory'" in m for m in records.messages))
        await asyncio.sleep(0.3)
        check(not pending.done(), f"a publish was confirmed during the memory alarm: {pending}")
        await fault(broker, "alarms/memory/clear")
        await until("no connection.unblocked logged by aiormq",
                    lambda: any("was unblocked" in m for m in records.messages))
        result = await asyncio.wait_for(pending, 5)
        check(isinstance(result, aiormq.spec.Basic.Ack), f"the held publish was confirmed with {result!r}")
        # Asked over HTTP: a robust channel answers a passive declare of a
        # queue it declared from its first declaration.
        await until("the held publish did not reach the queue", lambda: broker.queue_messages(q.name) == 2)
        await conn.close()
    return "blocked 'low on memory', the publish held until cleared, then acked"


CHECKS = {name[2:]: (lambda fn=fn: asyncio.run(fn()))
          for name, fn in list(globals().items()) if name.startswith("c_")}

if __name__ == "__main__":
    run(CHECKS)
