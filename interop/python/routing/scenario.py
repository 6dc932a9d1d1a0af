"""Tutorial 4: a direct exchange routes each log message by severity; each
subscriber process receives exactly the severities it bound, once each,
and a severity nobody bound ("debug") is dropped."""

from harness import check, cleanup, finish_all, run_scenario, send_end_markers, spawn, unique

LOGS = [
    ("info", "service started"),
    ("warning", "disk 80% full"),
    ("debug", "cache miss"),
    ("error", "cannot open file"),
    ("info", "request served"),
    ("error", "connection reset"),
    ("warning", "slow response"),
    ("debug", "gc ran"),
]

# Subscriber name -> severities it binds (both bind "error": the same key
# bound by two queues must reach both).
SUBSCRIBERS = {
    "warnings-and-errors": ["warning", "error"],
    "everything-but-debug": ["info", "warning", "error"],
}


def main() -> None:
    exchange = unique("direct_logs")
    try:
        subscribers = {name: spawn(name, "receive_logs_direct.py", exchange, *severities)
                       for name, severities in SUBSCRIBERS.items()}
        queues = [s.expect("ready")["queue"] for s in subscribers.values()]

        spawn("emit_log_direct.py", "emit_log_direct.py", exchange,
              *(f"{severity}:{message}" for severity, message in LOGS)).finish()
        send_end_markers(queues)
        finish_all(*subscribers.values())

        for name, subscriber in subscribers.items():
            got = [(e["routing_key"], e["body"]) for e in subscriber.all("received")]
            expected = [log for log in LOGS if log[0] in SUBSCRIBERS[name]]
            check(got == expected, f"{name} (bound to {SUBSCRIBERS[name]}) received {got}, "
                                   f"expected {expected}")
    finally:
        cleanup(exchanges=[exchange])


run_scenario(main)
