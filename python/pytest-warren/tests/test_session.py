"""warren_broker_session: one broker for the run. The second test sees what
the first left (pytest runs a module's tests in order)."""

import pika

seen_ports = []


def test_session_first(warren_broker_session, warren_broker):
    assert warren_broker_session.port != warren_broker.port
    seen_ports.append(warren_broker_session.port)
    with pika.BlockingConnection(pika.URLParameters(warren_broker_session.url)) as conn:
        ch = conn.channel()
        ch.queue_declare("shared")
        ch.basic_publish("", "shared", b"from the first test")


def test_session_second(warren_broker_session):
    assert seen_ports == [warren_broker_session.port]
    with pika.BlockingConnection(pika.URLParameters(warren_broker_session.url)) as conn:
        _, _, body = conn.channel().basic_get("shared", auto_ack=True)
        assert body == b"from the first test"
