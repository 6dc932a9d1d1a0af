"""The client checks with aio-pika (asyncio, on aiormq); see clientcheck.py
and interop/README.md. Usage: checks.py CHECK"""

import asyncio
import datetime
import ssl
import time
import urllib.parse

import aio_pika
import aiormq.exceptions
import yarl

from clientcheck import (HEARTBEAT_S, PAUSE_S, Failed, amqp_url, bodies, check,
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


CHECKS = {name[2:]: (lambda fn=fn: asyncio.run(fn()))
          for name, fn in list(globals().items()) if name.startswith("c_")}

if __name__ == "__main__":
    run(CHECKS)
