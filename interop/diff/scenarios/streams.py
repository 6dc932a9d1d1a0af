"""Stream queues (x-queue-type=stream) over AMQP 0-9-1: declare rules,
consume rules and offsets. Cases and RabbitMQ 3.10.8's texts are listed in
docs/STREAMS-reference.md. Offsets are compared only where they are
deterministic on both brokers: few, small messages published one at a time
with confirms (each its own chunk, one segment, so no offset gaps)."""

from harness import scenario

STREAM = {"x-queue-type": "stream"}


def _args(**extra):
    a = dict(STREAM)
    a.update(extra)
    return a


def _stream(t, suffix, n=0, **extra):
    """A durable stream with n confirmed messages m0..m{n-1}."""
    q = t.queue(suffix, durable=True, args=_args(**extra))
    t.pubs("", q, [f"m{i}" for i in range(n)])
    return q


# -- declare --------------------------------------------------------------------------------

@scenario
def s_stream_declare_properties(t):
    # invalid properties on a new stream, then the priority among them
    for suffix, kw in (("nd", dict(durable=False)),
                       ("ex", dict(durable=True, exclusive=True)),
                       ("ad", dict(durable=True, auto_delete=True))):
        ch = t.chan()
        with t.err():
            ch.queue_declare(t.name(suffix), args=_args(), **kw)
    ch = t.chan()
    with t.err():
        ch.queue_declare("", durable=True, args=_args())


@scenario
def s_stream_declare_property_priority(t):
    # several invalid properties at once: RabbitMQ reports 'auto-delete' first
    ch = t.chan()
    with t.err():
        ch.queue_declare(t.name("all"), durable=False, exclusive=True, auto_delete=True,
                         args=_args())
    # an invalid argument is reported before an invalid property
    ch = t.chan()
    with t.err():
        ch.queue_declare(t.name("argwins"), durable=True, exclusive=True,
                         args=_args(**{"x-message-ttl": 1000}))


@scenario
def s_stream_declare_forbidden_args(t):
    for suffix, extra in (("prio", {"x-max-priority": 10}),
                          ("ttl", {"x-message-ttl": 1000}),
                          ("maxlen", {"x-max-length": 10}),
                          ("sac", {"x-single-active-consumer": True})):
        ch = t.chan()
        with t.err():
            ch.queue_declare(t.name(suffix), durable=True, args=_args(**extra))
    # an unknown x- argument is accepted
    ch = t.chan()
    ch.queue_declare(t.name("bogus"), durable=True, args=_args(**{"x-bogus-arg": "x"}))


@scenario
def s_stream_declare_max_age(t):
    ch = t.chan()
    ch.queue_declare(t.name("ok"), durable=True, args=_args(**{"x-max-age": "7D"}))
    for suffix, v in (("10x", "10x"), ("0s", "0s"), ("1d", "1d"), ("bare", "10"), ("int", 10)):
        ch = t.chan()
        with t.err():
            ch.queue_declare(t.name(suffix), durable=True, args=_args(**{"x-max-age": v}))


@scenario
def s_stream_declare_max_length_bytes(t):
    ch = t.chan()
    ch.queue_declare(t.name("ok"), durable=True, args=_args(**{"x-max-length-bytes": 1000000}))
    ch.queue_declare(t.name("zero"), durable=True, args=_args(**{"x-max-length-bytes": 0}))
    for suffix, v in (("neg", -1), ("str", "1000")):
        ch = t.chan()
        with t.err():
            ch.queue_declare(t.name(suffix), durable=True, args=_args(**{"x-max-length-bytes": v}))


@scenario
def s_stream_redeclare_inequivalent(t):
    ch = t.chan()
    q = ch.queue_declare(t.name("s"), durable=True, args=_args(**{"x-max-age": "7D"}))
    ch.queue_declare(q, durable=True, args=_args(**{"x-max-age": "7D"}))   # same: ok
    for args in (_args(**{"x-max-age": "1D"}),                               # changed
                 _args(),                                                    # dropped
                 _args(**{"x-max-age": "7D", "x-max-length-bytes": 5}),      # added
                 {"x-max-age": "7D"},                                        # no x-queue-type
                 {"x-queue-type": "quorum", "x-max-age": "7D"}):
        ch = t.chan()
        with t.err():
            ch.queue_declare(q, durable=True, args=args)
    ch = t.chan()
    with t.err():
        ch.queue_declare(q, durable=False, args=_args(**{"x-max-age": "7D"}))


@scenario
def s_stream_declare_passive(t):
    q = _stream(t, "s", 2)
    ch = t.chan()
    ch.queue_declare_ok(q, passive=True)
    ch.queue_declare_ok(q, durable=True, args=_args())   # redeclare: counts are 0
    with t.err():
        ch.queue_declare_ok(t.name("missing"), passive=True)


# -- consume rules ----------------------------------------------------------------------------

@scenario
def s_stream_consume_needs_qos(t):
    q = _stream(t, "s", 1)
    ch = t.chan()
    with t.err():
        ch.consume(q, tag="noqos")
    ch = t.chan()
    ch.qos(0)
    with t.err():
        ch.consume(q, tag="zero")
    ch = t.chan()
    ch.qos(10, global_=True)
    with t.err():
        ch.consume(q, tag="global")


@scenario
def s_stream_unsupported_operations(t):
    # each of these closes the connection with 540
    q = _stream(t, "s", 2)
    ch = t.chan()
    ch.qos(10)
    with t.err():
        ch.consume(q, tag="noack", no_ack=True)
        ch.drain(0.5)
    ch = t.chan()
    with t.err():
        ch.get(q)
    ch = t.chan()
    with t.err():
        ch.queue_purge(q)


@scenario
def s_stream_nack_reject(t):
    q = _stream(t, "s", 2)
    for kind in ("nack", "reject"):
        ch = t.chan()
        ch.qos(10)
        ch.consume(q, tag=kind, args={"x-stream-offset": "first"})
        ch.expect(2)
        if kind == "nack":
            ch.nack(1, requeue=True)
        else:
            ch.reject(1, requeue=False)
        ch.wait_close()


# -- offsets ------------------------------------------------------------------------------

def _consume_from(t, q, offset, tag, n, late=()):
    ch = t.chan()
    ch.qos(20)
    ch.consume(q, tag=tag, args={"x-stream-offset": offset})
    if n:
        ch.expect(n)
    else:
        ch.drain(0.3)
    if late:
        t.pubs("", q, list(late))
        ch.expect(len(late))
    ch.cancel(tag)


@scenario
def s_stream_offset_first(t):
    q = _stream(t, "s", 10)
    _consume_from(t, q, "first", "first", 10, late=["late0"])


@scenario
def s_stream_offset_numeric(t):
    q = _stream(t, "s", 10)
    _consume_from(t, q, 5, "five", 5, late=["late0"])
    _consume_from(t, q, -1, "neg", 11)


@scenario
def s_stream_offset_next(t):
    q = _stream(t, "s", 10)
    _consume_from(t, q, "next", "next", 0, late=["late0"])
    _consume_from(t, q, 11, "eleven", 0, late=["late1"])


@scenario
def s_stream_offset_last(t):
    # every message published alone with a confirm wait: the last chunk holds one message
    q = _stream(t, "s", 3)
    _consume_from(t, q, "last", "last", 1, late=["late0"])


@scenario
def s_stream_offset_invalid_string(t):
    q = _stream(t, "s", 1)
    ch = t.chan()
    ch.qos(10)
    with t.err():
        ch.consume(q, tag="bad", args={"x-stream-offset": "5"})
