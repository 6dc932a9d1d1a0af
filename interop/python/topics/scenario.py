"""Tutorial 5: a topic exchange with "*" and "#" patterns; each subscriber
process receives exactly the expected set of routing keys, once each even
when several of its patterns match.

The expected sets are written out by hand (not computed by a matcher of our
own) so the check cannot share a bug with the broker.
"""

from harness import check, cleanup, finish_all, run_scenario, send_end_markers, spawn, unique

ROUTING_KEYS = [
    "quick.orange.rabbit",
    "lazy.orange.elephant",
    "quick.orange.fox",
    "lazy.brown.fox",
    "lazy.pink.rabbit",
    "quick.brown.fox",
    "orange",
    "quick.orange.male.rabbit",
    "lazy.orange.male.rabbit",
    "lazy",
    "a.b",
    "a.x.b",
    "a.x.y.b",
    "a.b.b",
    "a.b.c",
    "x.a.b",
]

# name -> (binding patterns, routing keys it must receive, in publish order)
SUBSCRIBERS = {
    "hash-alone": (["#"], ROUTING_KEYS),
    "orange": (["*.orange.*"], ["quick.orange.rabbit", "lazy.orange.elephant", "quick.orange.fox"]),
    # The tutorial's second queue: "lazy.pink.rabbit" matches both
    # patterns but must arrive once.
    "rabbit-or-lazy": (["*.*.rabbit", "lazy.#"],
                       ["quick.orange.rabbit", "lazy.orange.elephant", "lazy.brown.fox",
                        "lazy.pink.rabbit", "lazy.orange.male.rabbit", "lazy"]),
    # "#" in the middle may match zero words ("a.b") or several.
    "a-hash-b": (["a.#.b"], ["a.b", "a.x.b", "a.x.y.b", "a.b.b"]),
    "one-word": (["*"], ["orange", "lazy"]),
}


def main() -> None:
    exchange = unique("topic_logs")
    try:
        subscribers = {name: spawn(name, "receive_logs_topic.py", exchange, *patterns)
                       for name, (patterns, _) in SUBSCRIBERS.items()}
        queues = [s.expect("ready")["queue"] for s in subscribers.values()]

        spawn("emit_log_topic.py", "emit_log_topic.py", exchange, *ROUTING_KEYS).finish()
        send_end_markers(queues)
        finish_all(*subscribers.values())

        for name, subscriber in subscribers.items():
            patterns, expected = SUBSCRIBERS[name]
            got = [e["routing_key"] for e in subscriber.all("received")]
            missing = [k for k in expected if k not in got]
            extra = [k for k in got if k not in expected]
            duplicated = sorted({k for k in got if got.count(k) > 1})
            check(not (missing or extra or duplicated),
                  f"{name} bound {patterns}: missing {missing}, unexpected {extra}, "
                  f"duplicated {duplicated}")
            check(got == expected, f"{name} bound {patterns}: got {got} out of publish order")
            check(all(e["body"] == f"message for {e['routing_key']}" for e in subscriber.all("received")),
                  f"{name}: a body does not match its routing key")
    finally:
        cleanup(exchanges=[exchange])


run_scenario(main)
