"""kombu (the transport under Celery) against warren_broker."""

import kombu


def test_simple_queue_put_get(warren_broker):
    with kombu.Connection(warren_broker.url) as conn:
        queue = conn.SimpleQueue("kombu-jobs")
        queue.put({"task": "add", "args": [2, 3]})
        message = queue.get(block=True, timeout=5)
        assert message.payload == {"task": "add", "args": [2, 3]}
        message.ack()
        assert queue.qsize() == 0
        queue.close()


def test_ttl_expiry_with_kombu(warren_broker):
    with kombu.Connection(warren_broker.url) as conn:
        queue = conn.SimpleQueue("reminders", queue_args={"x-message-ttl": 86_400_000})
        queue.put("tomorrow")
        # A round trip on the same channel: the publish is in the queue, its
        # TTL counting, before the clock moves (over HTTP, another socket).
        assert queue.qsize() == 1
        warren_broker.advance(86_399)
        assert queue.qsize() == 1
        warren_broker.advance(1)
        assert queue.qsize() == 0
        queue.close()
