"""Issue 3 extension scenarios: RabbitMQ's queue arguments and protocol
extensions (TTL, expiry, length limits, dead lettering, priorities,
single active consumer, queue types, alternate exchanges, consumer
priorities, consumer cancel notification, direct reply-to, CC/BCC,
validated user_id).

Waits are bounded polls (t.wait_count / t.poll_until) rather than sleeps;
TTLs are short so that the whole module stays within a few seconds.
"""

from harness import scenario
from amqp import Typed

TTL = 60  # ms


def _dlx_pair(t, kind="fanout", rk=""):
    """A dead-letter exchange with one queue bound to it."""
    dlx = t.exchange("dlx", kind)
    dlq = t.queue("dlq")
    t.bind(dlq, dlx, rk)
    return dlx, dlq


# -- message TTL ------------------------------------------------------------------------

@scenario
def s_queue_message_ttl(t):
    q = t.queue("q", args={"x-message-ttl": TTL})
    t.pubs("", q, ["a", "b"])
    t.wait_count(q, 0)
    ch = t.chan()
    ch.queue_declare_ok(q, passive=True)
    ch.get(q)


@scenario
def s_queue_message_ttl_zero(t):
    q = t.queue("q", args={"x-message-ttl": 0})
    t.pub("", q, "no-consumer")
    t.wait_count(q, 0)
    ch = t.chan()
    ch.get(q)
    ch.consume(q, tag="c", no_ack=True)
    t.pub("", q, "with-consumer")
    ch.expect(1)


@scenario
def s_message_ttl_consumer_before_expiry(t):
    q = t.queue("q", args={"x-message-ttl": 5000})
    t.pub("", q, "fresh")
    ch = t.chan()
    ch.get(q, no_ack=True)


@scenario
def s_per_message_expiration(t):
    q = t.queue("q")
    t.pub("", q, "expiring", {"expiration": str(TTL)})
    t.pub("", q, "stays")
    t.wait_count(q, 1)
    ch = t.chan()
    ch.get_all(q)


@scenario
def s_per_message_expiration_behind_head(t):
    q = t.queue("q")
    t.pub("", q, "head")
    t.pub("", q, "expiring", {"expiration": str(TTL)})
    t.sleep(TTL * 3 / 1000)
    ch = t.chan()
    ch.get(q)      # head; the expired one behind it is dropped when it reaches the head
    ch.ack(1)
    ch.get(q)


@scenario
def s_per_message_expiration_zero_and_min(t):
    q = t.queue("q", args={"x-message-ttl": 5000})
    t.pub("", q, "zero", {"expiration": "0"})
    t.pub("", q, "short", {"expiration": str(TTL)})
    t.pub("", q, "long", {"expiration": "100000"})
    t.wait_count(q, 1)
    ch = t.chan()
    ch.get_all(q)


@scenario
def s_per_message_expiration_invalid(t):
    q = t.queue("q")
    for bad in ["abc", "-1", "1.5", ""]:
        ch = t.chan()
        ch.publish("", q, f"bad-{bad}", {"expiration": bad})
        ch.wait_close(2)


@scenario
def s_expiration_to_consumer_keeps_property(t):
    q = t.queue("q")
    ch = t.chan()
    ch.consume(q, tag="c", no_ack=True)
    t.pub("", q, "m", {"expiration": "60000"})
    ch.expect(1)


# -- queue expiry -----------------------------------------------------------------------

@scenario
def s_queue_expires(t):
    q = t.queue("q", args={"x-expires": 100})
    # a passive declare counts as use: poll less often than x-expires
    t.poll_until(lambda: t.count(q) is None, timeout=4, interval=0.3)
    ch = t.chan()
    with t.err():
        ch.queue_declare(q, passive=True)


@scenario
def s_queue_expires_consumer_keeps_alive(t):
    q = t.queue("q", args={"x-expires": 100})
    ch = t.chan()
    ch.consume(q, tag="c")
    t.sleep(0.4)
    ch.queue_declare_ok(q, passive=True)
    ch.cancel("c")
    t.poll_until(lambda: t.count(q) is None, timeout=4, interval=0.3)
    ch2 = t.chan()
    with t.err():
        ch2.queue_declare(q, passive=True)


# -- length limits and overflow -----------------------------------------------------------

@scenario
def s_max_length_drop_head(t):
    q = t.queue("q", args={"x-max-length": 2})
    t.pubs("", q, ["m1", "m2", "m3", "m4"])
    ch = t.chan()
    ch.queue_declare_ok(q, passive=True)
    ch.get_all(q)


@scenario
def s_max_length_zero(t):
    q = t.queue("q", args={"x-max-length": 0})
    t.pub("", q, "gone")
    ch = t.chan()
    ch.get(q)


@scenario
def s_max_length_bytes(t):
    q = t.queue("q", args={"x-max-length-bytes": 10})
    t.pubs("", q, ["aaaa", "bbbb", "cccc", "dddd"])
    ch = t.chan()
    ch.queue_declare_ok(q, passive=True)
    ch.get_all(q)
    t.pub("", q, "x" * 20)
    ch.get(q)


@scenario
def s_max_length_counts_unacked(t):
    q = t.queue("q", args={"x-max-length": 2})
    t.pubs("", q, ["m1", "m2"])
    ch = t.chan()
    ch.get(q)
    t.pub("", q, "m3")
    ch.queue_declare_ok(q, passive=True)
    ch.get_all(q)
    ch.close()
    ch2 = t.chan()
    ch2.get_all(q)


@scenario
def s_overflow_reject_publish(t):
    q = t.queue("q", args={"x-max-length": 2, "x-overflow": "reject-publish"})
    ch = t.chan()
    ch.confirm_select()
    for i in range(4):
        ch.publish("", q, f"m{i}")
    ch.confirms(4)
    ch.get_all(q)
    ch.publish("", q, "after-drain")
    ch.confirms(5)
    ch.get_all(q)


@scenario
def s_overflow_reject_publish_no_confirms(t):
    q = t.queue("q", args={"x-max-length": 1, "x-overflow": "reject-publish"})
    ch = t.chan()
    ch.publish("", q, "kept")
    ch.publish("", q, "dropped", mandatory=True)
    ch.get_all(q)
    ch.drain(0.2)


@scenario
def s_overflow_reject_publish_dlx(t):
    dlx, dlq = _dlx_pair(t)
    q = t.queue("q", args={"x-max-length": 1, "x-overflow": "reject-publish-dlx",
                           "x-dead-letter-exchange": dlx})
    ch = t.chan()
    ch.confirm_select()
    for i in range(3):
        ch.publish("", q, f"m{i}", {"headers": {"n": i}})
    ch.confirms(3)
    t.wait_count(dlq, 2)
    ch.get_all(q)
    ch.get_all(dlq)


@scenario
def s_overflow_drop_head_dlx(t):
    dlx, dlq = _dlx_pair(t)
    q = t.queue("q", args={"x-max-length": 1, "x-overflow": "drop-head",
                           "x-dead-letter-exchange": dlx})
    t.pubs("", q, ["m1", "m2", "m3"])
    t.wait_count(dlq, 2)
    ch = t.chan()
    ch.get_all(q)
    ch.get_all(dlq)


# -- dead lettering ---------------------------------------------------------------------------

@scenario
def s_dlx_on_reject(t):
    dlx, dlq = _dlx_pair(t)
    x = t.exchange("x", "direct")
    q = t.queue("q", args={"x-dead-letter-exchange": dlx})
    t.bind(q, x, "rk")
    t.pub(x, "rk", "rejected", {"headers": {"keep": "me"}, "message_id": "id-1"})
    ch = t.chan()
    ch.get(q)
    ch.reject(1, requeue=False)
    t.wait_count(dlq, 1)
    ch.get(dlq, no_ack=True)


@scenario
def s_dlx_on_nack_multiple(t):
    dlx, dlq = _dlx_pair(t)
    q = t.queue("q", args={"x-dead-letter-exchange": dlx})
    t.pubs("", q, ["n1", "n2", "n3"])
    ch = t.chan()
    for _ in range(3):
        ch.get(q)
    ch.nack(2, multiple=True, requeue=False)
    ch.nack(3, requeue=True)
    t.wait_count(dlq, 2)
    ch.get_all(dlq)
    ch.get_all(q)


@scenario
def s_dlx_requeue_true_does_not_dead_letter(t):
    dlx, dlq = _dlx_pair(t)
    q = t.queue("q", args={"x-dead-letter-exchange": dlx})
    t.pub("", q, "m")
    ch = t.chan()
    ch.get(q)
    ch.reject(1, requeue=True)
    ch.get(q)
    ch.get(dlq)


@scenario
def s_dlx_on_expiry_with_routing_key(t):
    dlx, dlq = _dlx_pair(t, "direct", "dead")
    x = t.exchange("x", "topic")
    q = t.queue("q", args={"x-message-ttl": TTL, "x-dead-letter-exchange": dlx,
                           "x-dead-letter-routing-key": "dead"})
    t.bind(q, x, "orig.#")
    t.pub(x, "orig.key", "expired", {"headers": {"CC": ["orig.cc"]}})
    t.wait_count(dlq, 1)
    ch = t.chan()
    ch.get(dlq, no_ack=True)


@scenario
def s_dlx_per_message_expiration(t):
    dlx, dlq = _dlx_pair(t)
    q = t.queue("q", args={"x-dead-letter-exchange": dlx})
    t.pub("", q, "short-lived", {"expiration": str(TTL), "priority": 3})
    t.wait_count(dlq, 1)
    ch = t.chan()
    ch.get(dlq, no_ack=True)


@scenario
def s_dlx_default_exchange_routing(t):
    target = t.queue("target")
    q = t.queue("q", args={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": target})
    t.pub("", q, "to-target")
    ch = t.chan()
    ch.get(q)
    ch.reject(1, requeue=False)
    t.wait_count(target, 1)
    ch.get(target, no_ack=True)


@scenario
def s_dlx_twice_counts(t):
    q1 = t.name("q1")
    q2 = t.name("q2")
    t.queue("q1", args={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": q2})
    t.queue("q2", args={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": q1})
    t.pub("", q1, "bounced")
    ch = t.chan()
    for q, nxt in [(q1, q2), (q2, q1), (q1, q2)]:
        m = ch.get(q)
        if m is None:
            break
        ch.reject(m.method.delivery_tag, requeue=False)
        t.wait_count(nxt, 1)
    ch.get(q2, no_ack=True)


@scenario
def s_dlx_cycle_dropped(t):
    q1 = t.name("q1")
    q2 = t.name("q2")
    t.queue("q1", args={"x-message-ttl": TTL, "x-dead-letter-exchange": "",
                        "x-dead-letter-routing-key": q2})
    t.queue("q2", args={"x-message-ttl": TTL, "x-dead-letter-exchange": "",
                        "x-dead-letter-routing-key": q1})
    t.pub("", q1, "cycling")
    both_empty = t.poll_until(lambda: t.count(q1) == 0 and t.count(q2) == 0, timeout=3)
    t.sleep(0.4)
    t.rec("settled counts", t.count(q1), t.count(q2))


@scenario
def s_dlx_cycle_with_consumer_reject_continues(t):
    q1 = t.name("q1")
    t.queue("q1", args={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": q1})
    t.pub("", q1, "again")
    ch = t.chan()
    for _ in range(2):
        m = ch.get(q1)
        if m is None:
            break
        ch.reject(m.method.delivery_tag, requeue=False)
        t.wait_count(q1, 1)
    ch.get(q1, no_ack=True)


@scenario
def s_dlx_missing_exchange(t):
    q = t.queue("q", args={"x-dead-letter-exchange": t.name("missing")})
    t.pub("", q, "m")
    ch = t.chan()
    ch.get(q)
    ch.reject(1, requeue=False)
    ch.get(q)
    ch.queue_declare_ok(q, passive=True)


@scenario
def s_dlx_from_consumer_with_cc(t):
    dlx, dlq = _dlx_pair(t, "topic", "#")
    x = t.exchange("x", "direct")
    q = t.queue("q", args={"x-dead-letter-exchange": dlx})
    t.bind(q, x, "a")
    t.bind(q, x, "b")
    t.pub(x, "a", "cc-msg", {"headers": {"CC": ["b"], "BCC": ["c"]}})
    ch = t.chan()
    ch.qos(5)
    ch.consume(q, tag="c")
    ch.expect(1)
    ch.nack(1, requeue=False)
    t.wait_count(dlq, 1)
    ch2 = t.chan()
    ch2.get(dlq, no_ack=True)


# -- priorities ------------------------------------------------------------------------------

@scenario
def s_max_priority_ordering(t):
    q = t.queue("q", args={"x-max-priority": 5})
    for body, prio in [("p0", 0), ("p3", 3), ("none", None), ("p5", 5), ("p9", 9), ("p1", 1),
                       ("p3b", 3)]:
        t.pub("", q, body, {"priority": prio} if prio is not None else None)
    ch = t.chan()
    ch.get_all(q)


@scenario
def s_max_priority_requeue(t):
    q = t.queue("q", args={"x-max-priority": 10})
    t.pub("", q, "low", {"priority": 1})
    t.pub("", q, "high", {"priority": 8})
    ch = t.chan()
    ch.get(q)
    t.pub("", q, "mid", {"priority": 5})
    ch.reject(1, requeue=True)
    ch.get_all(q)


@scenario
def s_max_priority_invalid(t):
    for v in [300, -1, "high", 0]:
        ch = t.chan()
        with t.err():
            ch.queue_declare(t.name(f"q{v}"), args={"x-max-priority": v})


@scenario
def s_consumer_priorities(t):
    q = t.queue("q")
    low, high = t.chan(), t.chan()
    low.qos(2)
    high.qos(2)
    low.consume(q, tag="low", args={"x-priority": 0})
    high.consume(q, tag="high", args={"x-priority": 10})
    for i in range(3):
        t.pub("", q, f"m{i}")
    high.expect(2, quiet=0.2)
    low.expect(1, quiet=0.2)
    high.ack(2, multiple=True)
    t.pub("", q, "m3")
    high.expect(1, quiet=0.2)
    low.drain(0.1)


@scenario
def s_consumer_priority_invalid(t):
    q = t.queue("q")
    ch = t.chan()
    with t.err():
        ch.consume(q, tag="bad", args={"x-priority": "high"})


# -- single active consumer ----------------------------------------------------------------

@scenario
def s_single_active_consumer(t):
    q = t.queue("q", args={"x-single-active-consumer": True})
    ch1, ch2 = t.chan(), t.chan()
    ch1.consume(q, tag="first")
    ch2.consume(q, tag="second")
    t.pubs("", q, ["a", "b", "c"])
    ch1.expect(3, quiet=0.2)
    ch2.drain(0.1)
    ch1.ack(1)
    ch1.queue_declare_ok(q, passive=True)
    ch1.cancel("first")
    ch1.close()   # b, c go back and the second consumer takes over
    ch2.expect(2, quiet=0.2)


@scenario
def s_single_active_consumer_invalid(t):
    ch = t.chan()
    with t.err():
        ch.queue_declare(t.name("q"), args={"x-single-active-consumer": "yes"})


# -- queue types -------------------------------------------------------------------------------

@scenario
def s_queue_type_classic(t):
    q = t.queue("q", args={"x-queue-type": "classic"})
    t.pub("", q, "m")
    ch = t.chan()
    ch.get(q, no_ack=True)
    ch.queue_declare_ok(q, args={"x-queue-type": "classic"})
    with t.err():
        ch.queue_declare_ok(q, args={"x-queue-type": "quorum"})


@scenario
def s_queue_type_quorum(t):
    ch = t.chan()
    with t.err():
        ch.queue_declare(t.name("nondurable"), args={"x-queue-type": "quorum"})
    ch = t.chan()
    with t.err():
        ch.queue_declare(t.name("excl"), durable=True, exclusive=True, args={"x-queue-type": "quorum"})
    ch = t.chan()
    with t.err():
        ch.queue_declare(t.name("autodel"), durable=True, auto_delete=True,
                         args={"x-queue-type": "quorum"})
    ch = t.chan()
    q = ch.queue_declare(t.name("qq"), durable=True, args={"x-queue-type": "quorum"})
    t.pub("", q, "quorum-msg")
    ch.get(q)
    ch.reject(1, requeue=True)
    ch.get(q)
    ch.ack(2)
    ch.queue_delete(q)


@scenario
def s_queue_type_stream(t):
    ch = t.chan()
    q = ch.queue_declare(t.name("st"), durable=True, args={"x-queue-type": "stream"})
    t.pub("", q, "stream-msg")
    with t.err():
        ch.get(q)
    ch = t.chan()
    with t.err():
        ch.consume(q, tag="noqos")
    ch = t.chan()
    ch.qos(10)
    ch.consume(q, tag="s", args={"x-stream-offset": "first"})
    ch.expect(1)
    ch.ack(1)
    ch.cancel("s")
    ch.queue_delete(q)


@scenario
def s_queue_type_invalid(t):
    ch = t.chan()
    with t.err():
        ch.queue_declare(t.name("q"), args={"x-queue-type": "bogus"})


# -- invalid arguments -----------------------------------------------------------------------

INVALID_ARGS = [
    ("ttl-negative", {"x-message-ttl": -1}),
    ("ttl-string", {"x-message-ttl": "1000"}),
    ("ttl-too-big", {"x-message-ttl": Typed("l", 2**40)}),
    ("expires-zero", {"x-expires": 0}),
    ("expires-negative", {"x-expires": -5}),
    ("maxlen-negative", {"x-max-length": -1}),
    ("maxlen-string", {"x-max-length": "10"}),
    ("maxbytes-negative", {"x-max-length-bytes": -1}),
    ("overflow-bogus", {"x-overflow": "explode"}),
    ("overflow-int", {"x-overflow": 1}),
    ("dlx-int", {"x-dead-letter-exchange": 5}),
    ("dlrk-without-dlx", {"x-dead-letter-routing-key": "k"}),
    ("ttl-float", {"x-message-ttl": 1.5}),
    ("ttl-long-ok", {"x-message-ttl": Typed("l", 1000)}),
    ("ttl-short-ok", {"x-message-ttl": Typed("s", 1000)}),
    ("ttl-bool", {"x-message-ttl": True}),
]


def _invalid_args_scenario(label, args):
    def fn(t):
        ch = t.chan()
        with t.err():
            ch.queue_declare(t.name("q"), args=args)
    fn.__name__ = "s_invalid_arg_" + label.replace("-", "_")
    return scenario(fn)


for _label, _args in INVALID_ARGS:
    _invalid_args_scenario(_label, _args)


# -- alternate exchange and internal exchanges -------------------------------------------------

@scenario
def s_alternate_exchange(t):
    ae = t.exchange("ae", "fanout")
    qae = t.queue("qae")
    t.bind(qae, ae)
    x = t.exchange("x", "direct", args={"alternate-exchange": ae})
    q = t.queue("q")
    t.bind(q, x, "routed")
    ch = t.chan()
    ch.publish(x, "routed", "normal", mandatory=True)
    ch.publish(x, "other", "to-ae", mandatory=True)
    ch.drain(0.2)
    ch.get_all(q)
    ch.get_all(qae)


@scenario
def s_alternate_exchange_missing_or_unroutable(t):
    x = t.exchange("x", "direct", args={"alternate-exchange": t.name("missing-ae")})
    ae2 = t.exchange("ae2", "direct")
    y = t.exchange("y", "direct", args={"alternate-exchange": ae2})
    ch = t.chan()
    ch.publish(x, "k", "ae-missing", mandatory=True)
    ch.publish(y, "k", "ae-unroutable", mandatory=True)
    ch.expect(2)


@scenario
def s_publish_internal_exchange(t):
    ix = t.exchange("ix", "fanout", internal=True)
    front = t.exchange("front", "fanout")
    q = t.queue("q")
    t.bind(q, ix)
    ch = t.chan()
    ch.exchange_bind(ix, front)
    t.pub(front, "", "via-e2e")
    ch.get_all(q)
    ch.publish(ix, "", "direct-to-internal")
    ch.wait_close()


# -- consumer cancel notification --------------------------------------------------------------

@scenario
def s_server_cancel_on_queue_delete(t):
    q = t.queue("q")
    ch = t.chan()
    ch.consume(q, tag="watched")
    t.pub("", q, "m")
    ch.expect(1)
    other = t.chan()
    other.queue_delete(q)
    ch.expect(1, pred=lambda e: type(e).__name__ == "Cancel")
    ch.ack(1)
    ch.drain(0.2)
    ch.queue_declare_ok(t.name("alive"))


@scenario
def s_no_cancel_notify_without_capability(t):
    c = t.connect(client_properties={"product": "old-client"})
    q = t.queue("q")
    ch = t.chan(c)
    ch.consume(q, tag="watched")
    t.chan().queue_delete(q)
    ch.drain(0.3)


# -- direct reply-to -------------------------------------------------------------------------

@scenario
def s_direct_reply_to(t):
    server_q = t.queue("rpc")
    client = t.chan()
    client.consume("amq.rabbitmq.reply-to", tag="client", no_ack=True)
    client.publish("", server_q, "request", {"reply_to": "amq.rabbitmq.reply-to",
                                             "correlation_id": "c-1"})
    server = t.chan()
    t.wait_count(server_q, 1)
    req = server.get(server_q, no_ack=True)
    if req is None:
        return
    reply_to = req.props.get("reply_to", "")
    t.rec("reply_to rewritten", reply_to.startswith("amq.rabbitmq.reply-to."))
    # (no mandatory flag: RabbitMQ 3.10 also returns a delivered reply-to
    # message as NO_ROUTE when mandatory is set, a quirk not worth pinning)
    server.publish("", reply_to, "response", {"correlation_id": "c-1"})
    client.expect(1)
    server.drain(0.1)
    server.queue_declare_ok(reply_to, passive=True)


@scenario
def s_direct_reply_to_errors(t):
    q = t.queue("q")
    ch = t.chan()
    ch.publish("", q, "no-consumer", {"reply_to": "amq.rabbitmq.reply-to"})
    ch.wait_close()
    ch = t.chan()
    with t.err():
        ch.consume("amq.rabbitmq.reply-to", tag="acking", no_ack=False)
    ch = t.chan()
    ch.publish("", "amq.rabbitmq.reply-to.bogus", "to-bogus", mandatory=True)
    ch.drain(0.3)


# -- CC / BCC ----------------------------------------------------------------------------------

@scenario
def s_cc_bcc(t):
    x = t.exchange("x", "direct")
    qs = {k: t.queue(k) for k in ["a", "b", "c", "d"]}
    for k, q in qs.items():
        t.bind(q, x, k)
    t.pub(x, "a", "cc-bcc", {"headers": {"CC": ["b"], "BCC": ["c"], "other": 1}})
    t.pub(x, "zz", "only-bcc", {"headers": {"BCC": ["d", "d"]}})
    ch = t.chan()
    for k, q in qs.items():
        t.rec("queue", k)
        ch.get_all(q)


@scenario
def s_cc_invalid_type(t):
    x = t.exchange("x", "direct")
    q = t.queue("q")
    t.bind(q, x, "a")
    t.bind(q, x, "b")
    ch = t.chan()
    ch.publish(x, "a", "cc-string", {"headers": {"CC": "b"}})
    ch.wait_close()
    ch = t.chan()
    ch.publish(x, "a", "cc-mixed", {"headers": {"CC": ["b", 5]}})
    ch.wait_close(1)
    ch = t.chan()
    ch.get_all(q)


# -- validated user id ---------------------------------------------------------------------------

@scenario
def s_validated_user_id(t):
    q = t.queue("q")
    ch = t.chan()
    ch.publish("", q, "ok", {"user_id": "guest"})
    ch.get(q, no_ack=True)
    ch.publish("", q, "forged", {"user_id": "mallory"})
    ch.wait_close()
    ch2 = t.chan()
    ch2.get(q)
