"""pika against the warren_broker fixture: publish/get, a fresh broker per
test, an hour-long TTL with dead-lettering on the virtual clock."""

import pika
import pytest


def connect(broker, **kw):
    return pika.BlockingConnection(pika.URLParameters(broker.url), **kw)


def test_publish_and_get(warren_broker):
    assert warren_broker.url == f"amqp://guest:guest@127.0.0.1:{warren_broker.port}/%2f"
    with connect(warren_broker) as conn:
        ch = conn.channel()
        ch.queue_declare("jobs")
        ch.basic_publish("", "jobs", b"hello", pika.BasicProperties(content_type="text/plain"))
        method, props, body = ch.basic_get("jobs", auto_ack=True)
        assert body == b"hello"
        assert props.content_type == "text/plain"
        assert method.message_count == 0


def test_each_test_gets_a_fresh_broker(warren_broker):
    # test_publish_and_get left a queue "jobs" on its own broker; this one has none.
    with connect(warren_broker) as conn:
        ch = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
            ch.queue_declare("jobs", passive=True)
        assert e.value.reply_code == 404


def test_hour_ttl_dead_letters_on_advance(warren_broker):
    with connect(warren_broker) as conn:
        ch = conn.channel()
        # The clock moves over HTTP, unordered with this socket: a confirmed
        # publish is in the queue (its TTL counting) before advance() runs.
        ch.confirm_delivery()
        ch.exchange_declare("dlx", "fanout")
        ch.queue_declare("dead")
        ch.queue_bind("dead", "dlx")
        ch.queue_declare("work", arguments={"x-message-ttl": 3_600_000, "x-dead-letter-exchange": "dlx"})
        ch.basic_publish("", "work", b"late")

        warren_broker.advance(3599)
        assert ch.queue_declare("work", passive=True).method.message_count == 1
        assert ch.queue_declare("dead", passive=True).method.message_count == 0

        reading = warren_broker.advance(1)
        assert reading["elapsed_ms"] == 3_600_000
        assert ch.queue_declare("work", passive=True).method.message_count == 0
        method, props, body = ch.basic_get("dead", auto_ack=True)
        assert body == b"late"
        death = props.headers["x-death"][0]
        assert death["reason"] == "expired"
        assert death["queue"] == "work"


def test_management_api(warren_broker):
    assert warren_broker.management_url == f"http://127.0.0.1:{warren_broker.management_port}"
    with connect(warren_broker) as conn:
        conn.channel().queue_declare("listed")
        names = [q["name"] for q in warren_broker.api("/api/queues/%2f")]
        assert "listed" in names
    assert warren_broker.clock()["mode"] == "manual"
