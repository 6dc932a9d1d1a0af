"""Tutorial 1: one producer process sends "Hello World!" to a queue and a
separate consumer process, already waiting on that queue, receives it."""

from harness import check, cleanup, run_scenario, spawn, unique


def main() -> None:
    queue = unique("hello")
    try:
        receiver = spawn("receive.py", "receive.py", queue)
        receiver.expect("ready")  # consuming before anything is published

        spawn("send.py", "send.py", queue, "Hello World!").finish()

        got = receiver.expect("received")
        receiver.finish()
        check(got["body"] == "Hello World!", f"received body {got['body']!r}")
        check(got["routing_key"] == queue, f"routing key {got['routing_key']!r}, expected {queue!r}")
        check(not got["redelivered"], "first delivery was flagged redelivered")
        check(len(receiver.all("received")) == 1, "received more than one message")
    finally:
        cleanup(queues=[queue])


run_scenario(main)
