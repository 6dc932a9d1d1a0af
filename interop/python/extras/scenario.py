"""Extra checks beyond the tutorials: basic_get, nack with requeue, and a
channel-level error (404 on a passive declare) that must not take the
connection down."""

from harness import check, cleanup, run_scenario, spawn, unique


def main() -> None:
    queue = unique("extras")
    try:
        spawn("publish.py", "publish.py", queue, "first", "second").finish()
        checks = spawn("checks.py", "checks.py", queue)
        checks.finish()
        seen = {e["name"]: e for e in checks.all("observed")}

        def observed(name):
            check(name in seen, f"checks.py stopped before observing '{name}'")
            return seen[name]

        first = observed("get-1")
        check(first["body"] == "first" and first["message_count"] == 1,
              f"first basic_get: {first}, expected 'first' with 1 message left")
        check(not first["redelivered"], "a first delivery was flagged redelivered")
        second = observed("get-2")
        check(second["body"] == "second" and second["message_count"] == 0,
              f"second basic_get: {second}, expected 'second' with 0 left")

        again = observed("get-after-nack")
        check(again["body"] == "second", f"after nack(requeue=True) got {again['body']!r}, "
                                         "expected 'second' back")
        check(again["redelivered"] is True, "requeued message was not flagged redelivered")
        check(observed("get-empty")["body"] is None,
              f"basic_get on an empty queue returned {observed('get-empty')['body']!r}")

        passive = observed("passive-missing")
        check(passive["raised"] == "ChannelClosedByBroker",
              "passive declare of a missing queue did not close the channel")
        check(passive["reply_code"] == 404, f"reply code {passive['reply_code']}, expected 404 "
                                            f"({passive['reply_text']})")
        after = observed("after-404")
        check(not after["channel_open"], "channel still open after the 404")
        check(after["connection_open"], "the connection closed along with the channel")
        check(observed("new-channel")["body"] == "still works",
              "a new channel on the same connection did not work after the 404")
    finally:
        cleanup(queues=[queue])


run_scenario(main)
