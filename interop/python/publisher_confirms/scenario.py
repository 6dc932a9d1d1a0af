"""Tutorial 7: every message published on a confirming channel is confirmed,
a mandatory unroutable publish raises UnroutableError, and a consumer
process started afterwards receives all confirmed messages exactly once."""

from harness import check, cleanup, run_scenario, spawn, unique

COUNT = 200


def main() -> None:
    queue = unique("confirms")
    try:
        producer = spawn("producer.py", "producer.py", queue, str(COUNT))
        producer.finish(timeout=30)
        check(producer.expect("confirmed")["count"] == COUNT, "not every publish was confirmed")
        unroutable = producer.expect("unroutable")
        check(unroutable["raised"] == "UnroutableError",
              "mandatory publish to an unroutable key did not raise UnroutableError")
        check(unroutable["returned"] == ["lost"],
              f"UnroutableError carried {unroutable['returned']}, expected the returned 'lost'")
        producer.expect("dropped_ok")

        consumer = spawn("consumer.py", "consumer.py", queue)
        consumer.finish()
        got = [e["body"] for e in consumer.all("received")]
        expected = [f"message {i}" for i in range(COUNT)]
        check(len(got) == COUNT, f"consumer received {len(got)} messages, expected {COUNT}")
        check(got == expected, "consumer received the messages out of order or altered")
        check(all(e["persistent"] for e in consumer.all("received")),
              "delivery_mode=2 (persistent) was not preserved")
    finally:
        cleanup(queues=[queue])


run_scenario(main)
