"""Foundation scenarios: AMQP 0-9-1 core behaviour as RabbitMQ implements it.

Conventions (see README.md):
- t.exchange()/t.queue()/t.bind()/t.pub() work on a setup channel in
  confirm mode, so a message published with t.pub() is enqueued before the
  next step; their replies are recorded too.
- `with t.err(): ...` records the channel/connection close the body causes
  (or "(no error)"); after a channel error, open a new channel.
"""

import decimal

from harness import scenario, words
from amqp import Typed


# -- connection ---------------------------------------------------------------

@scenario
def s_handshake(t):
    c = t.connect()
    t.rec("version", c.start.version_major, c.start.version_minor)
    # Which mechanisms and locales, not their order: RabbitMQ's mechanism
    # order differs between installs.
    t.rec("mechanisms", words(c.start.mechanisms), "locales", words(c.start.locales))
    t.rec("tune", c.tune.channel_max, c.tune.frame_max, c.tune.heartbeat)
    t.rec("capabilities", c.server_properties.get("capabilities"))
    t.rec("open-ok", c.open_ok.known_hosts)
    ch = t.chan(c)
    ch.close()
    r = c.close()
    t.rec("close-ok", r.NAME)


@scenario
def s_channel_open_twice(t):
    c = t.connect()
    t.chan(c)
    ch = c.channels[1]
    with t.err():
        ch.rpc(__import__("pika.spec").spec.Channel.Open())


@scenario
def s_method_on_unopened_channel(t):
    import pika.spec as spec
    c = t.connect()
    with t.err():
        c.send_method(7, spec.Queue.Declare(queue=t.name("q")))
        from amqp import Channel
        ch = Channel(c, 7)
        c.channels[7] = ch
        ch.wait_reply((spec.Queue.DeclareOk,), 3, "queue.declare")


@scenario
def s_channel_close_then_reuse_number(t):
    c = t.connect()
    ch = t.chan(c)
    ch.close()
    import pika.spec as spec
    from amqp import Channel
    again = Channel(c, ch.number)
    c.channels[ch.number] = again
    r = again.rpc(spec.Channel.Open())
    t.rec("reopen", r.NAME)


# -- exchange routing -----------------------------------------------------------

@scenario
def s_direct_routing(t):
    x = t.exchange("x", "direct")
    q1, q2 = t.queue("q1"), t.queue("q2")
    t.bind(q1, x, "a")
    t.bind(q1, x, "b")
    t.bind(q2, x, "b")
    t.bind(q2, x, "")
    for rk in ["a", "b", "c", "", "A", "a "]:
        t.pub(x, rk, f"m-{rk}")
    ch = t.chan()
    t.rec("q1", ch.get_all(q1))
    t.rec("q2", ch.get_all(q2))


@scenario
def s_duplicate_bindings_single_copy(t):
    x = t.exchange("x", "direct")
    f = t.exchange("f", "fanout")
    q = t.queue("q")
    t.bind(q, x, "k")
    t.bind(q, x, "k")
    t.bind(q, f, "one")
    t.bind(q, f, "two")
    t.pub(x, "k", "direct")
    t.pub(f, "whatever", "fanout")
    ch = t.chan()
    t.rec("q", ch.get_all(q))


@scenario
def s_fanout_routing(t):
    x = t.exchange("x", "fanout")
    qs = [t.queue(f"q{i}") for i in range(3)]
    for i, q in enumerate(qs):
        t.bind(q, x, f"ignored-{i}")
    t.pub(x, "any.key", "m1")
    t.pub(x, "", "m2")
    ch = t.chan()
    for q in qs:
        t.rec(q, ch.get_all(q))
    ch.queue_unbind(qs[0], x, "ignored-0")
    t.pub(x, "k", "m3")
    for q in qs:
        t.rec(q, ch.get_all(q))


@scenario
def s_topic_basic(t):
    x = t.exchange("x", "topic")
    pats = {"star": "stock.*.nyse", "hash": "stock.#", "exact": "stock.usd.nyse"}
    qs = {k: t.queue(k) for k in pats}
    for k, p in pats.items():
        t.bind(qs[k], x, p)
    for rk in ["stock.usd.nyse", "stock.eur.nyse", "stock", "stock.usd", "stock.a.b.nyse", "bond.usd"]:
        t.pub(x, rk, rk)
    ch = t.chan()
    for k in pats:
        t.rec(k, ch.get_all(qs[k]))


@scenario
def s_topic_edge_cases(t):
    x = t.exchange("x", "topic")
    patterns = ["#", "*", "a.#.b", "a.*.#", "#.#", "", "a..b", "*.*", "#.b", "a.#",
                "a.*", "*.b", "a.b", "#.a.#", "a.#.#.b", "*.#", ".", "a.", ".a"]
    qs = []
    for i, p in enumerate(patterns):
        q = t.queue(f"p{i}")
        t.bind(q, x, p)
        qs.append(q)
    keys = ["", "a", "b", "a.b", "a..b", "a.x.b", "a.x.y.b", "a.b.b", "a.b.c", ".a", "a.",
            ".", "..", "x.a.y", "b.a", "a.b.x.b", "aa.b", "a.bb"]
    for k in keys:
        t.pub(x, k, k)
    ch = t.chan()
    for p, q in zip(patterns, qs):
        t.rec(f"pattern {p!r}", sorted(ch.get_all(q)))


@scenario
def s_topic_rebind_unbind(t):
    x = t.exchange("x", "topic")
    q = t.queue("q")
    t.bind(q, x, "a.*")
    t.bind(q, x, "a.#")
    t.pub(x, "a.b", "both-match")
    ch = t.chan()
    ch.queue_unbind(q, x, "a.#")
    t.pub(x, "a.b.c", "only-hash")
    t.pub(x, "a.c", "star")
    t.rec("q", ch.get_all(q))


@scenario
def s_headers_all_any(t):
    x = t.exchange("x", "headers")
    qall, qany, qnone = t.queue("all"), t.queue("any"), t.queue("none")
    t.bind(qall, x, "", {"x-match": "all", "a": 1, "b": "two"})
    t.bind(qany, x, "", {"x-match": "any", "a": 1, "b": "two"})
    t.bind(qnone, x, "", {})
    msgs = [
        ("both", {"a": 1, "b": "two"}),
        ("a-only", {"a": 1}),
        ("b-only", {"b": "two"}),
        ("a-wrong", {"a": 2, "b": "two"}),
        ("extra", {"a": 1, "b": "two", "c": True}),
        ("a-as-string", {"a": "1", "b": "two"}),
        ("a-as-long", {"a": Typed("l", 1), "b": "two"}),
        ("no-headers", None),
    ]
    for body, h in msgs:
        t.pub(x, "ignored", body, {"headers": h} if h is not None else None)
    ch = t.chan()
    for n, q in (("all", qall), ("any", qany), ("none", qnone)):
        t.rec(n, ch.get_all(q))


@scenario
def s_headers_void_and_x_args(t):
    x = t.exchange("x", "headers")
    qv, qx = t.queue("void"), t.queue("xarg")
    t.bind(qv, x, "", {"x-match": "all", "k": None})
    t.bind(qx, x, "", {"x-match": "all", "x-custom": "v", "k": "v"})
    for body, h in [("k-void", {"k": None}), ("k-str", {"k": "v"}),
                    ("k-and-x", {"k": "v", "x-custom": "v"}), ("k-and-other-x", {"k": "v", "x-custom": "zz"})]:
        t.pub(x, "", body, {"headers": h})
    ch = t.chan()
    t.rec("void", ch.get_all(qv))
    t.rec("xarg", ch.get_all(qx))


@scenario
def s_headers_bad_x_match(t):
    x = t.exchange("x", "headers")
    q = t.queue("q")
    ch = t.chan()
    with t.err():
        ch.queue_bind(q, x, "", {"x-match": "some"})


@scenario
def s_exchange_to_exchange(t):
    src = t.exchange("src", "topic")
    mid = t.exchange("mid", "fanout")
    dst = t.exchange("dst", "direct")
    q1, q2 = t.queue("q1"), t.queue("q2")
    ch = t.chan()
    ch.exchange_bind(mid, src, "a.#")
    ch.exchange_bind(dst, mid, "")
    t.bind(q1, mid)
    t.bind(q2, dst, "a.b")
    for rk in ["a.b", "a.c", "b.a"]:
        t.pub(src, rk, rk)
    t.rec("q1", ch.get_all(q1))
    t.rec("q2", ch.get_all(q2))
    ch.exchange_unbind(mid, src, "a.#")
    t.pub(src, "a.b", "after-unbind")
    t.rec("q1", ch.get_all(q1))
    t.rec("q2", ch.get_all(q2))


@scenario
def s_exchange_bind_missing(t):
    x = t.exchange("x", "direct")
    ch = t.chan()
    with t.err():
        ch.exchange_bind(t.name("nope"), x, "k")
    ch = t.chan()
    with t.err():
        ch.exchange_bind(x, t.name("nope"), "k")


@scenario
def s_e2e_cycle_single_copy(t):
    a = t.exchange("a", "fanout")
    b = t.exchange("b", "fanout")
    q = t.queue("q")
    ch = t.chan()
    ch.exchange_bind(b, a)
    ch.exchange_bind(a, b)
    t.bind(q, a)
    t.bind(q, b)
    t.pub(a, "", "looped")
    t.rec("q", ch.get_all(q))


# -- default exchange and reserved names ----------------------------------------------

@scenario
def s_default_exchange(t):
    q = t.queue("q")
    t.pub("", q, "via-default")
    t.pub("", t.name("nope"), "lost")
    ch = t.chan()
    ch.get(q)
    with t.err():
        ch.exchange_declare("", "direct", passive=True)


@scenario
def s_default_exchange_bind_forbidden(t):
    q = t.queue("q")
    ch = t.chan()
    with t.err():
        ch.queue_bind(q, "", q)
    ch = t.chan()
    with t.err():
        ch.queue_unbind(q, "", q)
    ch = t.chan()
    with t.err():
        ch.exchange_delete("")
    ch = t.chan()
    with t.err():
        ch.exchange_declare("", "direct")


@scenario
def s_amq_prefix_exchange(t):
    ch = t.chan()
    with t.err():
        ch.exchange_declare("amq." + t.name("x"), "direct")
    ch = t.chan()
    ch.exchange_declare("amq.direct", "direct", passive=True)
    ch.exchange_declare("amq.topic", "fanout", passive=True)
    with t.err():
        ch.exchange_declare("amq.direct", "direct", durable=True)
    ch = t.chan()
    with t.err():
        ch.exchange_declare("amq.fanout", "fanout")
    ch = t.chan()
    with t.err():
        ch.exchange_declare("amq.headers", "direct", durable=True)


@scenario
def s_amq_exchange_delete_and_bind(t):
    ch = t.chan()
    with t.err():
        ch.exchange_delete("amq.direct")
    ch = t.chan()
    x = t.exchange("x", "fanout")
    with t.err():
        ch.exchange_bind("amq.fanout", x)
    ch = t.chan()
    q = t.queue("q")
    ch.queue_bind(q, "amq.topic", "a.#")
    t.pub("amq.topic", "a.b", "via-amq-topic")
    t.rec(ch.get_all(q))
    ch.queue_unbind(q, "amq.topic", "a.#")


@scenario
def s_amq_prefix_queue(t):
    ch = t.chan()
    with t.err():
        ch.queue_declare("amq." + t.name("q"))
    ch = t.chan()
    with t.err():
        ch.queue_declare("amq." + t.name("q"), passive=True)


@scenario
def s_predeclared_exchanges(t):
    ch = t.chan()
    for name, typ in [("amq.direct", "direct"), ("amq.fanout", "fanout"), ("amq.topic", "topic"),
                      ("amq.headers", "headers"), ("amq.match", "headers")]:
        ch.exchange_declare(name, typ, passive=True)
    with t.err():
        ch.exchange_declare("amq.rabbitmq.trace", "topic", passive=True)


# -- redeclare equivalence ------------------------------------------------------------

def _redeclare_exchange(t, first, second):
    name = t.name("x")
    ch = t.chan()
    ch.exchange_declare(name, **first)
    with t.err():
        ch.exchange_declare(name, **second)
    ch = t.chan()
    ch.exchange_declare(name, passive=True)


@scenario
def s_exchange_redeclare_type(t):
    _redeclare_exchange(t, {"type": "direct"}, {"type": "topic"})


@scenario
def s_exchange_redeclare_durable(t):
    _redeclare_exchange(t, {"type": "fanout"}, {"type": "fanout", "durable": True})


@scenario
def s_exchange_redeclare_auto_delete(t):
    _redeclare_exchange(t, {"type": "topic"}, {"type": "topic", "auto_delete": True})


@scenario
def s_exchange_redeclare_internal(t):
    _redeclare_exchange(t, {"type": "direct"}, {"type": "direct", "internal": True})


@scenario
def s_exchange_redeclare_args(t):
    _redeclare_exchange(t, {"type": "direct", "args": {"alternate-exchange": "ae1"}},
                        {"type": "direct", "args": {"alternate-exchange": "ae2"}})


@scenario
def s_exchange_redeclare_equivalent(t):
    name = t.name("x")
    ch = t.chan()
    ch.exchange_declare(name, "headers", durable=False, args={"foo": "bar"})
    ch.exchange_declare(name, "headers", durable=False, args={"foo": "other"})
    ch.exchange_declare(name, "headers", durable=False)


@scenario
def s_exchange_unknown_type(t):
    ch = t.chan()
    with t.err():
        ch.exchange_declare(t.name("x"), "no-such-type")
    ch = t.chan()
    with t.err():
        ch.exchange_declare(t.name("x2"), "x-consistent-hash")


def _redeclare_queue(t, first, second):
    name = t.name("q")
    ch = t.chan()
    ch.queue_declare(name, **first)
    with t.err():
        ch.queue_declare(name, **second)
    ch = t.chan()
    ch.queue_declare_ok(name, passive=True)


@scenario
def s_queue_redeclare_durable(t):
    _redeclare_queue(t, {"durable": True}, {"durable": False})


@scenario
def s_queue_redeclare_auto_delete(t):
    _redeclare_queue(t, {}, {"auto_delete": True})


@scenario
def s_queue_redeclare_exclusive(t):
    _redeclare_queue(t, {"exclusive": True}, {"exclusive": False})


@scenario
def s_queue_redeclare_args(t):
    _redeclare_queue(t, {"args": {"x-max-length": 10}}, {"args": {"x-max-length": 20}})
    name = t.name("q2")
    ch = t.chan()
    ch.queue_declare(name, args={"x-max-length": 10})
    with t.err():
        ch.queue_declare(name)
    ch = t.chan()
    ch.queue_declare(name, args={"x-max-length": 10, "x-custom": "ignored"})


# -- passive declares, exclusivity, delete/purge ----------------------------------------

@scenario
def s_passive_missing(t):
    ch = t.chan()
    with t.err():
        ch.exchange_declare(t.name("nope-x"), "direct", passive=True)
    ch = t.chan()
    with t.err():
        ch.queue_declare(t.name("nope-q"), passive=True)
    ch = t.chan()
    with t.err():
        ch.queue_declare("", passive=True)


@scenario
def s_exclusive_queue_other_connection(t):
    c1 = t.connect()
    ch1 = t.chan(c1)
    q = ch1.queue_declare(t.name("q"), exclusive=True)
    c2 = t.connect()
    for op in ["declare", "passive", "consume", "get", "purge", "delete", "bind"]:
        ch2 = t.chan(c2)
        with t.err():
            if op == "declare":
                ch2.queue_declare(q, exclusive=True)
            elif op == "passive":
                ch2.queue_declare(q, passive=True)
            elif op == "consume":
                ch2.consume(q)
            elif op == "get":
                ch2.get(q)
            elif op == "purge":
                ch2.queue_purge(q)
            elif op == "delete":
                ch2.queue_delete(q)
            elif op == "bind":
                ch2.queue_bind(q, "amq.direct", "k")
    ch1.queue_declare_ok(q, passive=True)


@scenario
def s_exclusive_queue_deleted_on_close(t):
    c1 = t.connect()
    ch1 = t.chan(c1)
    q = ch1.queue_declare(t.name("q"), exclusive=True)
    c1.close()
    ch = t.chan()
    exists = t.poll_until(lambda: t.count(q) is None, timeout=3)
    with t.err():
        ch.queue_declare(q, passive=True)


@scenario
def s_queue_delete_if_unused(t):
    q = t.queue("q")
    t.pub("", q, "m")
    ch = t.chan()
    tag = ch.consume(q, tag="c1")
    ch.expect(1)
    ch2 = t.chan()
    with t.err():
        ch2.queue_delete(q, if_unused=True)
    ch.cancel(tag)
    ch3 = t.chan()
    ch3.queue_delete(q, if_unused=True)


@scenario
def s_queue_delete_if_empty(t):
    q = t.queue("q")
    t.pubs("", q, ["a", "b"])
    ch = t.chan()
    with t.err():
        ch.queue_delete(q, if_empty=True)
    ch = t.chan()
    ch.queue_purge(q)
    ch.queue_delete(q, if_empty=True)


@scenario
def s_queue_delete_counts_and_missing(t):
    q = t.queue("q")
    t.pubs("", q, ["a", "b", "c"])
    ch = t.chan()
    ch.queue_delete(q)
    ch.queue_delete(q)
    ch.queue_delete(t.name("never"))
    ch.exchange_delete(t.name("never-x"))


@scenario
def s_queue_delete_unacked_count(t):
    q = t.queue("q")
    t.pubs("", q, ["a", "b", "c"])
    ch = t.chan()
    ch.get(q)
    ch2 = t.chan()
    ch2.queue_delete(q)


@scenario
def s_purge_counts(t):
    q = t.queue("q")
    t.pubs("", q, ["a", "b", "c", "d"])
    ch = t.chan()
    ch.get(q)   # one unacked: purge leaves it alone
    ch2 = t.chan()
    ch2.queue_purge(q)
    ch2.queue_purge(q)
    ch.close()  # the unacked one comes back
    # No declare-ok count here: RabbitMQ answers counts ahead of the requeue
    # the close triggered, so it reports 0 or 1 depending on timing.
    ch2.queue_purge(q)
    ch3 = t.chan()
    with t.err():
        ch3.queue_purge(t.name("nope"))


@scenario
def s_declare_ok_counts(t):
    q = t.queue("q")
    t.pubs("", q, ["a", "b", "c"])
    ch = t.chan()
    ch.queue_declare_ok(q)
    ch.queue_declare_ok(q, passive=True)
    c1 = t.chan()
    c1.qos(1)
    c1.consume(q, tag="one")
    c1.expect(1)
    ch.queue_declare_ok(q, passive=True)
    c2 = t.chan()
    c2.qos(1)
    c2.consume(q, tag="two")
    c2.expect(1)
    ch.queue_declare_ok(q, passive=True)


@scenario
def s_server_named_queue(t):
    ch = t.chan()
    q = ch.queue_declare("", exclusive=True)
    t.rec("generated prefix", q.startswith("amq.gen-"), len(q) > 8)
    ch.queue_bind(q, "amq.direct", t.name("k"))
    t.pub("amq.direct", t.name("k"), "to-generated")
    ch.get(q)
    q2 = ch.queue_declare("", exclusive=True)
    t.rec("distinct", q != q2)
    # the last declared queue is the channel's default for an empty name
    t.pub("", q2, "m")
    ch.get("")
    ch.queue_purge("")
    ch.queue_delete("")
    with t.err():
        ch.queue_declare(q2, passive=True)


@scenario
def s_empty_queue_name_without_default(t):
    ch = t.chan()
    with t.err():
        ch.get("")


# -- consumers ------------------------------------------------------------------------

@scenario
def s_consume_cancel(t):
    q = t.queue("q")
    t.pubs("", q, ["m1", "m2"])
    ch = t.chan()
    tag = ch.consume(q, tag="ctag-1", no_ack=True)
    ch.expect(2)
    t.pub("", q, "m3")
    ch.expect(1)
    ch.cancel(tag)
    t.pub("", q, "m4")
    ch.drain(0.2)
    ch.cancel("never-existed")
    ch.get(q, no_ack=True)


@scenario
def s_consume_server_tag(t):
    q = t.queue("q")
    ch = t.chan()
    tag = ch.consume(q)
    t.rec("server tag prefix", tag.startswith("amq.ctag-"))
    t.pub("", q, "m")
    ch.expect(1)
    ch.cancel(tag)


@scenario
def s_consume_missing_queue(t):
    ch = t.chan()
    with t.err():
        ch.consume(t.name("nope"))


@scenario
def s_exclusive_consumer(t):
    q = t.queue("q")
    ch1 = t.chan()
    ch1.consume(q, tag="excl", exclusive=True)
    ch2 = t.chan()
    with t.err():
        ch2.consume(q, tag="other")
    ch3 = t.chan()
    ch3.consume(t.queue("q2"), tag="first")
    with t.err():
        ch3.consume(t.name("q2"), tag="second-excl", exclusive=True)


@scenario
def s_consumer_tag_reuse(t):
    q = t.queue("q")
    ch = t.chan()
    ch.consume(q, tag="same")
    with t.err():
        ch.consume(q, tag="same")


@scenario
def s_consumer_tag_reuse_other_channel(t):
    q = t.queue("q")
    ch1 = t.chan()
    ch1.consume(q, tag="same")
    ch2 = t.chan()
    ch2.consume(q, tag="same")
    ch1.cancel("same")
    ch2.cancel("same")


@scenario
def s_round_robin_consumers(t):
    q = t.queue("q")
    ch1, ch2 = t.chan(), t.chan()
    ch1.consume(q, tag="a", no_ack=True)
    ch2.consume(q, tag="b", no_ack=True)
    for i in range(6):
        t.pub("", q, f"m{i}")
    ch1.expect(3)
    ch2.expect(3)


@scenario
def s_no_ack_consume_and_ack_error(t):
    q = t.queue("q")
    t.pubs("", q, ["a", "b"])
    ch = t.chan()
    ch.consume(q, tag="na", no_ack=True)
    ch.expect(2)
    ch.ack(1)
    ch.wait_close(2)
    ch2 = t.chan()
    ch2.queue_declare_ok(q, passive=True)


# -- basic.get and acknowledgements -----------------------------------------------------

@scenario
def s_basic_get_counts(t):
    q = t.queue("q")
    ch = t.chan()
    ch.get(q)
    t.pubs("", q, ["a", "b", "c"])
    ch.get(q)
    ch.get(q, no_ack=True)
    ch.get(q)
    ch.get(q)
    ch.ack(3)
    ch.ack(1)
    ch.queue_declare_ok(q, passive=True)
    with t.err():
        ch.get(t.name("missing"))


@scenario
def s_ack_multiple(t):
    q = t.queue("q")
    t.pubs("", q, [f"m{i}" for i in range(5)])
    ch = t.chan()
    ch.consume(q, tag="c")
    ch.expect(5)
    ch.ack(3, multiple=True)
    ch.ack(5)
    ch.cancel("c")
    ch.close()
    ch2 = t.chan()
    ch2.get_all(q)


@scenario
def s_ack_zero_multiple_all(t):
    q = t.queue("q")
    t.pubs("", q, ["a", "b", "c"])
    ch = t.chan()
    for _ in range(3):
        ch.get(q)
    ch.ack(0, multiple=True)
    ch.close()
    ch2 = t.chan()
    ch2.get(q)


@scenario
def s_nack_multiple_requeue_order(t):
    q = t.queue("q")
    t.pubs("", q, [f"m{i}" for i in range(5)])
    ch = t.chan()
    for _ in range(5):
        ch.get(q)
    ch.ack(2)
    ch.nack(4, multiple=True, requeue=True)   # requeues 1, 3, 4
    ch.get_all(q, no_ack=False)
    ch.nack(0, multiple=True, requeue=False)
    ch.get(q)


@scenario
def s_reject_requeue_order(t):
    q = t.queue("q")
    t.pubs("", q, ["a", "b", "c", "d"])
    ch = t.chan()
    ch.get(q)
    ch.get(q)
    ch.reject(2, requeue=True)   # 'b' goes back to its original place
    ch.get_all(q, no_ack=True)
    ch.reject(1, requeue=True)
    ch.get(q)


@scenario
def s_requeue_to_consumer_redelivered(t):
    q = t.queue("q")
    t.pubs("", q, ["a", "b", "c"])
    ch = t.chan()
    ch.qos(3)
    ch.consume(q, tag="c")
    ch.expect(3)
    ch.nack(3, multiple=True, requeue=True)
    ch.expect(3)
    ch.ack(0, multiple=True)


@scenario
def s_reject_no_requeue(t):
    q = t.queue("q")
    t.pubs("", q, ["a", "b"])
    ch = t.chan()
    ch.get(q)
    ch.reject(1, requeue=False)
    ch.get(q)
    ch.nack(2, requeue=False)
    ch.get(q)


@scenario
def s_ack_unknown_tag(t):
    q = t.queue("q")
    ch = t.chan()
    ch.ack(99)
    ch.wait_close()
    ch = t.chan()
    ch.nack(5)
    ch.wait_close()
    ch = t.chan()
    ch.reject(7)
    ch.wait_close()
    ch = t.chan()
    ch.ack(3, multiple=True)
    ch.wait_close()


@scenario
def s_double_ack(t):
    q = t.queue("q")
    t.pub("", q, "m")
    ch = t.chan()
    ch.get(q)
    ch.ack(1)
    ch.ack(1)
    ch.wait_close()
    ch2 = t.chan()
    ch2.queue_declare_ok(q, passive=True)


# -- qos ------------------------------------------------------------------------------------

@scenario
def s_qos_prefetch_per_consumer(t):
    q1, q2 = t.queue("q1"), t.queue("q2")
    t.pubs("", q1, [f"a{i}" for i in range(5)])
    t.pubs("", q2, [f"b{i}" for i in range(5)])
    ch = t.chan()
    ch.qos(2)
    ch.consume(q1, tag="c1")
    ch.expect(2, quiet=0.2)
    ch.consume(q2, tag="c2")
    ch.expect(2, quiet=0.2)
    ch.ack(1)
    ch.expect(1, quiet=0.2)


@scenario
def s_qos_global(t):
    q1, q2 = t.queue("q1"), t.queue("q2")
    t.pubs("", q1, [f"a{i}" for i in range(3)])
    t.pubs("", q2, [f"b{i}" for i in range(4)])
    ch = t.chan()
    ch.qos(3, global_=True)
    ch.consume(q1, tag="c1")
    ch.expect(3, quiet=0.2)
    ch.consume(q2, tag="c2")
    ch.drain(0.2)
    ch.ack(3, multiple=True)
    ch.expect(3, quiet=0.2)


@scenario
def s_qos_zero_unlimited_and_change(t):
    q = t.queue("q")
    t.pubs("", q, [f"m{i}" for i in range(6)])
    ch = t.chan()
    ch.qos(1)
    ch.consume(q, tag="c")
    ch.expect(1, quiet=0.2)
    ch.qos(3)        # applies to consumers created later
    ch.drain(0.3)
    ch.qos(0)
    ch.consume(q, tag="c-unlimited")
    ch.expect(5, quiet=0.2)


@scenario
def s_qos_prefetch_size(t):
    ch = t.chan()
    with t.err():
        ch.qos(10, prefetch_size=1000)


@scenario
def s_qos_get_ignores_prefetch(t):
    q = t.queue("q")
    t.pubs("", q, ["a", "b", "c"])
    ch = t.chan()
    ch.qos(1)
    ch.get(q)
    ch.get(q)
    ch.get(q)


# -- recover ----------------------------------------------------------------------------------

@scenario
def s_recover_requeue(t):
    q = t.queue("q")
    t.pubs("", q, ["a", "b", "c"])
    ch = t.chan()
    ch.consume(q, tag="c")
    ch.expect(3)
    ch.ack(2)
    ch.recover(requeue=True)
    ch.expect(2)


@scenario
def s_recover_requeue_false(t):
    q = t.queue("q")
    t.pubs("", q, ["a", "b"])
    ch = t.chan()
    ch.consume(q, tag="c")
    ch.expect(2)
    with t.err():
        ch.recover(requeue=False)
        ch.expect(2)


@scenario
def s_recover_async(t):
    import pika.spec as spec
    q = t.queue("q")
    t.pubs("", q, ["a"])
    ch = t.chan()
    ch.consume(q, tag="c")
    ch.expect(1)
    ch.ch.send(spec.Basic.RecoverAsync(requeue=True))
    ch.wait_close(1)


# -- closing requeues ------------------------------------------------------------------------

@scenario
def s_channel_close_requeues_in_order(t):
    q = t.queue("q")
    t.pubs("", q, [f"m{i}" for i in range(5)])
    ch = t.chan()
    ch.consume(q, tag="c")
    ch.expect(5)
    ch.ack(3)
    ch.close()
    ch2 = t.chan()
    ch2.consume(q, tag="c2")
    ch2.expect(4)


@scenario
def s_connection_close_requeues(t):
    q = t.queue("q")
    t.pubs("", q, ["a", "b", "c"])
    c = t.connect()
    ch = t.chan(c)
    ch.get(q)
    ch.get(q)
    c.close()
    t.wait_count(q, 3)
    ch2 = t.chan()
    ch2.get_all(q)


@scenario
def s_cancel_keeps_unacked(t):
    q = t.queue("q")
    t.pubs("", q, ["a", "b"])
    ch = t.chan()
    ch.consume(q, tag="c")
    ch.expect(2)
    ch.cancel("c")
    ch.ack(1)
    ch.get(q)
    ch.close()
    ch2 = t.chan()
    ch2.get_all(q)


# -- publishing --------------------------------------------------------------------------------

@scenario
def s_mandatory_unroutable(t):
    x = t.exchange("x", "direct")
    q = t.queue("q")
    t.bind(q, x, "yes")
    ch = t.chan()
    ch.publish(x, "no", "returned", {"content_type": "text/plain", "headers": {"h": 1}}, mandatory=True)
    ch.publish(x, "yes", "routed", mandatory=True)
    ch.publish(x, "no", "dropped-silently")
    ch.publish("", t.name("nope"), "to-missing-queue", mandatory=True)
    ch.expect(2)
    ch.get_all(q)


@scenario
def s_publish_missing_exchange(t):
    ch = t.chan()
    ch.publish(t.name("nope"), "k", "m")
    ch.wait_close()
    ch = t.chan()
    ch.publish("amq.direct", "k", "fine", mandatory=True)
    ch.expect(1)


@scenario
def s_publish_immediate(t):
    q = t.queue("q")
    ch = t.chan()
    ch.publish("", q, "m", immediate=True)
    ch.wait_close()


@scenario
def s_publish_empty_body(t):
    q = t.queue("q")
    ch = t.chan()
    ch.publish("", q, b"")
    ch.publish("", q, b"", {"content_type": "x"})
    ch.get(q)
    ch.get(q)


@scenario
def s_confirms_with_returns(t):
    x = t.exchange("x", "direct")
    q = t.queue("q")
    t.bind(q, x, "yes")
    ch = t.chan()
    ch.confirm_select()
    plan = ["yes", "no", "yes", "no", "no", "yes"]
    for i, rk in enumerate(plan):
        ch.publish(x, rk, f"m{i}", mandatory=True)
    ch.confirms(len(plan), bodies=[f"m{i}" for i in range(len(plan))])
    ch.get_all(q)


@scenario
def s_confirm_select_twice_and_nowait(t):
    import pika.spec as spec
    ch = t.chan()
    ch.confirm_select()
    ch.confirm_select()
    q = t.queue("q")
    ch.publish("", q, "m")
    ch.confirms(1)


@scenario
def s_confirms_to_missing_exchange(t):
    ch = t.chan()
    ch.confirm_select()
    ch.publish(t.name("nope"), "k", "m")
    ch.wait_close()


# -- properties and large messages --------------------------------------------------------

ALL_PROPS = {
    "content_type": "application/json",
    "content_encoding": "gzip",
    "headers": {"str": "value", "int": 42, "neg": -7, "bool": True, "false": False},
    "delivery_mode": 2,
    "priority": 7,
    "correlation_id": "corr-1",
    "reply_to": "reply.queue",
    "expiration": "600000",
    "message_id": "msg-1",
    "timestamp": 1700000000,
    "type": "order.created",
    "user_id": "guest",
    "app_id": "diff-harness",
    "cluster_id": "cluster-x",
}


@scenario
def s_properties_roundtrip(t):
    q = t.queue("q")
    t.pub("", q, "all-props", ALL_PROPS)
    t.pub("", q, "no-props")
    t.pub("", q, "some-props", {"delivery_mode": 1, "priority": 0, "headers": {}})
    ch = t.chan()
    ch.get_all(q)
    t.pub("", q, "consumed", ALL_PROPS)
    ch.consume(q, tag="c", no_ack=True)
    ch.expect(1)


@scenario
def s_header_types_roundtrip(t):
    q = t.queue("q")
    headers = {
        "b": Typed("b", -5), "B": Typed("B", 200), "s": Typed("s", -300), "u": Typed("u", 60000),
        "I": Typed("I", -70000), "i": Typed("i", 4000000000), "l": Typed("l", -2**40),
        "L": Typed("L", 2**63 + 5), "f": Typed("f", 1.5), "d": Typed("d", -2.25),
        "D": Typed("D", (2, 12345)), "D0": decimal.Decimal("7"),
        "T": Typed("T", 1700000000), "x": Typed("x", b"\x00\x01binary\xff"),
        "S": "text \u00e9", "empty": "", "t": True, "f0": False, "V": None,
        "nested": {"inner": {"deep": [1, "two", {"three": Typed("l", 3)}]}, "n": 1},
        "array": [1, "a", True, None, [Typed("b", 1), Typed("T", 5)], {"k": "v"}],
        "empty-array": [], "empty-table": {},
    }
    t.pub("", q, "typed", {"headers": headers})
    ch = t.chan()
    ch.get(q)


@scenario
def s_large_message_frames(t):
    body = bytes((i * 7) % 251 for i in range(300_000))
    c = t.connect(frame_max=4096)
    t.rec("negotiated frame_max", c.frame_max)
    ch = t.chan(c)
    q = ch.queue_declare(t.name("q"))
    ch.publish("", q, body, {"content_type": "application/octet-stream"})
    m = ch.get(q, no_ack=True)
    t.rec("equal", m is not None and m.body == body)
    ch.publish("", q, body[:4088])
    ch.publish("", q, body[:4089])
    ch.get(q, no_ack=True)
    ch.get(q, no_ack=True)
    c2 = t.connect()
    ch2 = t.chan(c2)
    ch.publish("", q, body)
    ch2.consume(q, tag="big", no_ack=True)
    ch2.expect(1)


@scenario
def s_frame_too_large(t):
    c = t.connect(frame_max=4096)
    ch = t.chan(c)
    q = ch.queue_declare(t.name("q"))
    with t.err():
        ch.ch.publish("", q, b"z" * 10000, frame_max=8192)
        ch.get(q)


# -- transactions -----------------------------------------------------------------------------

@scenario
def s_tx_publish_commit_rollback(t):
    q = t.queue("q")
    ch = t.chan()
    ch.tx_select()
    ch.publish("", q, "t1")
    ch.publish("", q, "t2")
    t.rec("before commit", t.count(q))
    ch.tx_commit()
    t.rec("after commit", t.count(q))
    ch.publish("", q, "t3")
    ch.tx_rollback()
    ch.tx_commit()
    ch2 = t.chan()
    ch2.get_all(q)


@scenario
def s_tx_acks(t):
    q = t.queue("q")
    t.pubs("", q, ["a", "b", "c"])
    ch = t.chan()
    ch.tx_select()
    for _ in range(3):
        ch.get(q)
    ch.ack(1)
    ch.tx_rollback()
    ch.ack(2)
    ch.tx_commit()
    ch.queue_declare_ok(q, passive=True)
    ch.close()
    ch2 = t.chan()
    ch2.get_all(q)


@scenario
def s_tx_nack_reject_requeue(t):
    q = t.queue("q")
    t.pubs("", q, ["a", "b"])
    ch = t.chan()
    ch.tx_select()
    ch.get(q)
    ch.get(q)
    ch.reject(1, requeue=True)
    ch.nack(2, requeue=True)
    t.rec("before commit", t.count(q))
    ch.tx_commit()
    ch.get_all(q)


@scenario
def s_tx_mandatory_return(t):
    ch = t.chan()
    ch.tx_select()
    ch.publish("amq.direct", t.name("nowhere"), "m", mandatory=True)
    ch.drain(0.2)
    ch.tx_commit()
    ch.drain(0.2)


@scenario
def s_tx_errors(t):
    ch = t.chan()
    with t.err():
        ch.tx_commit()
    ch = t.chan()
    with t.err():
        ch.tx_rollback()
    ch = t.chan()
    ch.tx_select()
    ch.tx_select()
    with t.err():
        ch.confirm_select()
    ch = t.chan()
    ch.confirm_select()
    with t.err():
        ch.tx_select()


# -- channel.flow -------------------------------------------------------------------------------

@scenario
def s_channel_flow(t):
    ch = t.chan()
    with t.err():
        ch.flow(True)
    ch = t.chan()
    with t.err():
        ch.flow(False)
