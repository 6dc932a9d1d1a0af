"""warren_broker.faults: what pika sees when the broker misbehaves."""

import time

import pika
import pytest


def named(broker, name):
    params = pika.URLParameters(broker.url)
    params.client_properties = {"connection_name": name}
    return pika.BlockingConnection(params)


def test_close_connection_320(warren_broker):
    conn = named(warren_broker, "worker-1")
    conn.channel()
    warren_broker.faults.close_connection("worker-1", 320, "test says goodbye")
    deadline = time.monotonic() + 10
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        while time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.2)
    assert e.value.reply_code == 320
    assert "test says goodbye" in e.value.reply_text


def test_nack_publishes(warren_broker):
    with named(warren_broker, "publisher") as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare("orders")
        warren_broker.faults.nack_publishes("orders", 1)
        with pytest.raises(pika.exceptions.NackError):
            ch.basic_publish("", "orders", b"refused")
        ch.basic_publish("", "orders", b"accepted")


def test_status_and_unknown_connection(warren_broker):
    from pytest_warren import WarrenError

    assert warren_broker.faults.status()["allowed"] is True
    warren_broker.faults.raise_alarm("memory")
    assert warren_broker.faults.status()["injected_alarms"]["memory"] is True
    warren_broker.faults.clear_alarm("memory")
    with pytest.raises(WarrenError) as e:
        warren_broker.faults.drop_connection("nobody")
    assert e.value.status == 404
