"""The client checks with pika's SelectConnection: the asynchronous,
callback-driven adapter on pika's own ioloop (see clientcheck.py and
interop/README.md). Usage: checks.py CHECK

Each check is a generator run by `drive`: it yields a "waiter", a function
that starts an asynchronous pika call and arranges for resume(result) to be
called from pika's callback, so the checks read top to bottom while all I/O
goes through SelectConnection's callbacks.
"""

import pika
import pika.exceptions

from clientcheck import (HEARTBEAT_S, PAUSE_S, Failed, amqp_url, bodies, check,
                         compare, compare_headers, describe, headers, properties,
                         run, unique, url_parts, wrong_password_url)


def params(url=None, **extra):
    p = pika.URLParameters(url or amqp_url())
    p.socket_timeout = 5
    p.stack_timeout = 5
    for key, value in extra.items():
        setattr(p, key, value)
    return p


class Resume:
    def __init__(self, advance):
        self.advance = advance
        self.done = False

    def __call__(self, value=None):
        if not self.done:
            self.done = True
            self.advance(value=value)

    def fail(self, error):
        if not self.done:
            self.done = True
            self.advance(error=error)


def drive(body, parameters=None):
    """Open a SelectConnection, run the generator body(conn) on its ioloop,
    close the connection and return the generator's return value."""
    outcome = {}

    def finish(conn, key, value):
        outcome.setdefault(key, value)
        if conn.is_open:
            conn.close()
        elif not conn.is_closing:
            conn.ioloop.stop()

    def on_open(conn):
        gen = body(conn)

        def advance(value=None, error=None):
            try:
                waiter = gen.throw(error) if error is not None else gen.send(value)
            except StopIteration as stop:
                return finish(conn, "value", stop.value)
            except BaseException as e:  # the check failed
                return finish(conn, "error", e)
            waiter(Resume(advance))
        advance()

    def on_open_error(conn, error):
        outcome["open_error"] = error
        conn.ioloop.stop()

    def on_closed(conn, reason):
        outcome.setdefault("closed", reason)
        conn.ioloop.stop()

    conn = pika.SelectConnection(parameters or params(), on_open_callback=on_open,
                                 on_open_error_callback=on_open_error,
                                 on_close_callback=on_closed)
    conn.ioloop.start()
    if "open_error" in outcome:
        raise outcome["open_error"]
    if "error" in outcome:
        raise outcome["error"]
    if "value" not in outcome:
        raise Failed(f"connection closed before the check finished: {outcome.get('closed')!r}")
    return outcome["value"]


# ---- waiters -------------------------------------------------------------

def call(fn, *args, **kwargs):
    """fn(*args, callback=resume, **kwargs): for pika methods taking a completion callback."""
    return lambda resume: fn(*args, callback=resume, **kwargs)


def sleep(conn, seconds):
    return lambda resume: conn.ioloop.call_later(seconds, resume)


def open_channel(conn):
    return lambda resume: conn.channel(on_open_callback=resume)


def confirm_mode(ch, acks: list):
    return lambda resume: ch.confirm_delivery(ack_nack_callback=acks.append, callback=resume)


def until(conn, condition, timeout, what):
    """Poll condition() every 20 ms on the ioloop; fail after timeout."""
    def waiter(resume):
        deadline = [timeout]

        def poll():
            if condition():
                return resume()
            deadline[0] -= 0.02
            if deadline[0] <= 0:
                return resume.fail(Failed(what))
            conn.ioloop.call_later(0.02, poll)
        poll()
    return waiter


def get(ch, queue, auto_ack=True):
    """basic_get; resumes with (method, properties, body), or None when empty."""
    def waiter(resume):
        ch.basic_get(queue, lambda c, m, p, b: resume((m, p, b)), auto_ack=auto_ack)
        # pika calls back only for get-ok; get-empty arrives as a channel callback.
        ch.add_callback(lambda frame: resume(None), [pika.spec.Basic.GetEmpty], one_shot=True)
    return waiter


def get_one(conn, ch, queue, auto_ack=True):
    for _ in range(250):
        got = yield get(ch, queue, auto_ack)
        if got is not None:
            return got
        yield sleep(conn, 0.02)
    raise Failed(f"no message arrived in {queue} within 5s")


def temp_queue(ch):
    def waiter(resume):
        ch.queue_declare("", exclusive=True, callback=lambda frame: resume(frame.method.queue))
    return waiter


def count(ch, queue):
    def waiter(resume):
        ch.queue_declare(queue, passive=True, callback=lambda frame: resume(frame.method.message_count))
    return waiter


def confirmed(conn, acks, n, what="publishes"):
    return until(conn, lambda: _acked(acks) >= n, 5, f"{what}: only up to tag {_acked(acks)} of {n} confirmed")


# ---- checks --------------------------------------------------------------

def c_connect():
    p = url_parts()
    parameters = pika.ConnectionParameters(
        host=p["host"], port=p["port"], virtual_host="/",
        credentials=pika.PlainCredentials(p["user"], p["password"]), socket_timeout=5, stack_timeout=5)

    def body(conn):
        ch = yield open_channel(conn)
        check(ch.is_open, "channel did not open")
        yield lambda resume: (ch.add_on_close_callback(lambda c, r: resume()), ch.close())
        return f"server product {conn.server_properties.get('product')!r}"
    return drive(body, parameters)


def c_wrong_password():
    def body(conn):
        yield sleep(conn, 0)
    try:
        drive(body, params(wrong_password_url()))
    except pika.exceptions.ProbableAuthenticationError as error:
        return f"on_open_error_callback got ProbableAuthenticationError: {error}"
    except Exception as error:
        raise Failed(f"expected ProbableAuthenticationError (connection.close 403 ACCESS_REFUSED), "
                     f"got {type(error).__name__}: {error!r}")
    raise Failed("connected with a wrong password")


def c_exchange_types():
    def body(conn):
        ch = yield open_channel(conn)
        acks = []
        yield confirm_mode(ch, acks)
        names = {kind: unique(kind) for kind in ("direct", "fanout", "topic", "headers")}
        for kind, name in names.items():
            yield call(ch.exchange_declare, name, exchange_type=kind, auto_delete=True)
        q = {}
        for k in ("direct", "fanout1", "fanout2", "topic", "h_all", "h_any"):
            q[k] = yield temp_queue(ch)
        yield call(ch.queue_bind, q["direct"], names["direct"], routing_key="black")
        yield call(ch.queue_bind, q["fanout1"], names["fanout"])
        yield call(ch.queue_bind, q["fanout2"], names["fanout"])
        yield call(ch.queue_bind, q["topic"], names["topic"], routing_key="*.orange.#")
        yield call(ch.queue_bind, q["h_all"], names["headers"],
                   arguments={"x-match": "all", "format": "pdf", "type": "report"})
        yield call(ch.queue_bind, q["h_any"], names["headers"],
                   arguments={"x-match": "any", "format": "pdf", "type": "report"})
        publishes = [
            ("direct", "black", None, b"direct-hit"), ("direct", "white", None, b"direct-miss"),
            ("fanout", "ignored", None, b"fanout"),
            ("topic", "quick.orange.rabbit.x", None, b"topic-hit"),
            ("topic", "quick.brown.fox", None, b"topic-miss"),
            ("headers", "", {"format": "pdf", "type": "report"}, b"headers-both"),
            ("headers", "", {"format": "pdf", "type": "log"}, b"headers-one"),
            ("headers", "", {"format": "zip"}, b"headers-none"),
        ]
        for kind, key, hdrs, b in publishes:
            ch.basic_publish(names[kind], key, b, pika.BasicProperties(headers=hdrs))
        yield confirmed(conn, acks, len(publishes))
        want = {"direct": [b"direct-hit"], "fanout1": [b"fanout"], "fanout2": [b"fanout"],
                "topic": [b"topic-hit"], "h_all": [b"headers-both"],
                "h_any": [b"headers-both", b"headers-one"]}
        for key, w in want.items():
            got = []
            while (message := (yield get(ch, q[key]))) is not None:
                got.append(message[2])
            check(got == w, f"queue bound for {key}: got {got}, expected {w}")
        for name in names.values():
            yield call(ch.exchange_delete, name)
    return drive(body)


def c_bodies():
    def body(conn):
        ch = yield open_channel(conn)
        q = yield temp_queue(ch)
        for label, sent in bodies().items():
            ch.basic_publish("", q, sent)
            _, _, got = yield from get_one(conn, ch, q)
            check(got == sent, f"{label} body: got {describe(got)}, sent {describe(sent)}")
    return drive(body)


def c_properties():
    def body(conn):
        ch = yield open_channel(conn)
        q = yield temp_queue(ch)
        want = properties()
        ch.basic_publish("", q, b"props",
                         pika.BasicProperties(headers=headers(floats=False), **want))
        _, props, _ = yield from get_one(conn, ch, q)
        for key, value in want.items():
            compare(key, getattr(props, key), value)
        compare_headers(props.headers, headers(floats=False))
    return drive(body)


def c_confirms():
    def body(conn):
        ch = yield open_channel(conn)
        acks = []
        yield confirm_mode(ch, acks)
        q = yield temp_queue(ch)
        for i in range(200):
            ch.basic_publish("", q, str(i).encode())
        yield confirmed(conn, acks, 200)
        check(all(isinstance(f.method, pika.spec.Basic.Ack) for f in acks), "a publish was nacked")
        n = yield count(ch, q)
        check(n == 200, f"{n} messages in the queue after 200 confirmed publishes")
    return drive(body)


def _acked(acks):
    """The highest delivery tag confirmed so far (acks may be multiple)."""
    return max((f.method.delivery_tag for f in acks), default=0)


def c_basic_get():
    def body(conn):
        ch = yield open_channel(conn)
        acks = []
        yield confirm_mode(ch, acks)
        q = yield temp_queue(ch)
        ch.basic_publish("", q, b"first")
        ch.basic_publish("", q, b"second")
        yield confirmed(conn, acks, 2)
        method, _, b = yield get(ch, q, auto_ack=False)
        check(b == b"first" and method.message_count == 1,
              f"first get: {b!r} message_count {method.message_count}")
        check(not method.redelivered, "first delivery flagged redelivered")
        ch.basic_ack(method.delivery_tag)
        method, _, b = yield get(ch, q)
        check(b == b"second" and method.message_count == 0, f"second get: {b!r}")
        empty = yield get(ch, q)
        check(empty is None, f"get on an empty queue returned {empty}")
    return drive(body)


def c_nack_requeue():
    def body(conn):
        ch = yield open_channel(conn)
        q = yield temp_queue(ch)
        ch.basic_publish("", q, b"again")
        method, _, _ = yield from get_one(conn, ch, q, auto_ack=False)
        check(not method.redelivered, "first delivery flagged redelivered")
        ch.basic_nack(method.delivery_tag, requeue=True)
        method, _, b = yield from get_one(conn, ch, q, auto_ack=False)
        check(b == b"again" and method.redelivered,
              f"after nack(requeue): {b!r} redelivered={method.redelivered}")
        ch.basic_ack(method.delivery_tag)
    return drive(body)


def c_reject():
    def body(conn):
        ch = yield open_channel(conn)
        q = yield temp_queue(ch)
        ch.basic_publish("", q, b"requeue-me")
        method, _, _ = yield from get_one(conn, ch, q, auto_ack=False)
        ch.basic_reject(method.delivery_tag, requeue=True)
        method, _, b = yield from get_one(conn, ch, q, auto_ack=False)
        check(b == b"requeue-me" and method.redelivered,
              f"after reject(requeue): {b!r} redelivered={method.redelivered}")
        ch.basic_reject(method.delivery_tag, requeue=False)
        yield sleep(conn, 0.2)
        n = yield count(ch, q)
        check(n == 0, f"reject(requeue=False) left {n} message(s)")
    return drive(body)


def c_prefetch():
    def body(conn):
        ch = yield open_channel(conn)
        acks = []
        yield confirm_mode(ch, acks)
        q = yield temp_queue(ch)
        for i in range(10):
            ch.basic_publish("", q, str(i).encode())
        yield confirmed(conn, acks, 10)
        yield call(ch.basic_qos, prefetch_count=3)
        got = []
        ch.basic_consume(q, lambda c, m, p, b: got.append(m))
        yield sleep(conn, 0.5)
        check(len(got) == 3, f"with prefetch_count=3, {len(got)} unacked deliveries (expected 3)")
        ch.basic_ack(got[0].delivery_tag)
        yield sleep(conn, 0.5)
        check(len(got) == 4, f"after one ack, {len(got)} deliveries (expected 4)")
        ch.basic_ack(got[3].delivery_tag, multiple=True)
        yield sleep(conn, 0.5)
        check(len(got) == 7, f"after ack(multiple) of all, {len(got)} deliveries (expected 7)")
    return drive(body)


def c_consumer_cancel():
    def body(conn):
        ch = yield open_channel(conn)
        q = yield temp_queue(ch)
        got = []
        tag = ch.basic_consume(q, lambda c, m, p, b: got.append(b), auto_ack=True)
        ch.basic_publish("", q, b"before")
        yield until(conn, lambda: got, 3, "consumer got nothing")
        yield call(ch.basic_cancel, tag)
        ch.basic_publish("", q, b"after")
        yield sleep(conn, 0.3)
        check(got == [b"before"], f"cancelled consumer got {got[1:]}")
        n = yield count(ch, q)
        check(n == 1, f"{n} messages left after cancel (expected 1)")

        # The broker cancels a consumer whose queue is deleted.
        q2 = unique("cancel")
        yield call(ch.queue_declare, q2)
        cancelled = []
        ch.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
        tag2 = ch.basic_consume(q2, lambda c, m, p, b: None, auto_ack=True)
        other = yield open_channel(conn)
        yield call(other.queue_delete, q2)
        yield until(conn, lambda: cancelled, 3, "no broker basic.cancel after the queue was deleted")
        check(cancelled == [tag2], f"basic.cancel for {cancelled}, expected {tag2}")
        check(ch.is_open, "channel closed after the broker's basic.cancel")
    return drive(body)


def c_mandatory_return():
    def body(conn):
        ch = yield open_channel(conn)
        returns = []
        ch.add_on_return_callback(lambda c, m, p, b: returns.append((m, p, b)))
        key = unique("nowhere")
        ch.basic_publish("", key, b"lost", pika.BasicProperties(message_id="m-1"), mandatory=True)
        yield until(conn, lambda: returns, 5, "mandatory publish to an unroutable key was not returned")
        method, props, b = returns[0]
        check(method.reply_code == 312 and method.reply_text == "NO_ROUTE",
              f"basic.return {method.reply_code} {method.reply_text}, expected 312 NO_ROUTE")
        check(b == b"lost" and props.message_id == "m-1" and method.routing_key == key,
              f"returned message differs: {method}")
    return drive(body)


def c_heartbeat():
    def body(conn):
        check(conn.params.heartbeat == HEARTBEAT_S,
              f"negotiated heartbeat {conn.params.heartbeat}, asked for {HEARTBEAT_S}")
        ch = yield open_channel(conn)
        q = yield temp_queue(ch)
        yield sleep(conn, PAUSE_S)  # the ioloop answers and sends heartbeats meanwhile
        check(conn.is_open, "connection closed during the pause")
        ch.basic_publish("", q, b"alive")
        _, _, b = yield from get_one(conn, ch, q)
        check(b == b"alive", f"after the pause got {b!r}")
        return f"{PAUSE_S}s pause with a {HEARTBEAT_S}s heartbeat"
    return drive(body, params(heartbeat=HEARTBEAT_S))


def c_channel_error():
    def body(conn):
        ch = yield open_channel(conn)

        def declare_missing(resume):
            ch.add_on_close_callback(lambda c, reason: resume(reason))
            ch.queue_declare(unique("missing"), passive=True,
                             callback=lambda frame: resume.fail(Failed("passive declare of a missing queue succeeded")))
        reason = yield declare_missing
        check(isinstance(reason, pika.exceptions.ChannelClosedByBroker),
              f"channel closed with {reason!r}, expected ChannelClosedByBroker")
        check(reason.reply_code == 404 and reason.reply_text.startswith("NOT_FOUND"),
              f"reply {reason.reply_code} {reason.reply_text}, expected 404 NOT_FOUND")
        check(conn.is_open, "connection closed along with the channel")
        ch2 = yield open_channel(conn)
        q = yield temp_queue(ch2)
        ch2.basic_publish("", q, b"still works")
        _, _, b = yield from get_one(conn, ch2, q)
        check(b == b"still works", f"new channel after the 404 got {b!r}")
    return drive(body)


CHECKS = {name[2:]: fn for name, fn in globals().items() if name.startswith("c_")}

if __name__ == "__main__":
    run(CHECKS)
