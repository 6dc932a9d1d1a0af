"""Tutorial 3: a fanout exchange copies every log message to two subscriber
processes, each with its own exclusive server-named queue."""

from harness import check, cleanup, finish_all, run_scenario, send_end_markers, spawn, unique

MESSAGES = [f"log line {i}: something happened" for i in range(1, 11)]


def main() -> None:
    exchange = unique("logs")
    try:
        subscribers = [spawn(f"receive_logs-{i}", "receive_logs.py", exchange) for i in (1, 2)]
        queues = [s.expect("ready")["queue"] for s in subscribers]
        check(queues[0] != queues[1], f"both subscribers got the same server-named queue {queues[0]}")
        for queue in queues:
            check(queue != "", "server-named queue came back empty")

        spawn("emit_log.py", "emit_log.py", exchange, *MESSAGES).finish()
        send_end_markers(queues)
        finish_all(*subscribers)

        for subscriber in subscribers:
            got = [e["body"] for e in subscriber.all("received")]
            check(got == MESSAGES, f"{subscriber.name} received {got}, expected all "
                                   f"{len(MESSAGES)} messages in order")
            check(all(e["exchange"] == exchange for e in subscriber.all("received")),
                  f"{subscriber.name}: deliveries name the wrong exchange")
    finally:
        cleanup(exchanges=[exchange])


run_scenario(main)
