"""Scenario API and runner for the differential harness.

A scenario is a Python function taking a `T` (one per broker). It drives the
broker through recording wrappers (`T.chan()`, `RChannel` methods) and adds
its own observations with `t.rec(...)`. The same function runs against
broker A (the reference, RabbitMQ) and broker B (Warren); the two
observation lists are normalised and must be identical.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import re
import secrets
import json
import os
import threading
import urllib.error
import urllib.request
from urllib.parse import quote
import time
import traceback

import pika.spec as spec

import amqp
from amqp import Typed, ChannelClosed, ConnectionClosed, Timeout, AMQPError, Message

SCENARIOS: list = []


def scenario(fn=None, *, timeout: float = 20.0, tags=()):
    """Register a scenario. Its name is the function name without 's_'."""
    def deco(f):
        name = f.__name__
        if name.startswith("s_"):
            name = name[2:]
        SCENARIOS.append((name, f, timeout, tuple(tags)))
        return f
    return deco(fn) if fn is not None else deco


# --------------------------------------------------------------------------
# Rendering and normalisation
# --------------------------------------------------------------------------

def render(v) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k!r}: {render(v[k])}" for k in sorted(v)) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(render(x) for x in v) + "]"
    if isinstance(v, bytes) and len(v) > 80:
        return f"<{len(v)} bytes sha1={hashlib.sha1(v).hexdigest()[:12]}>"
    return repr(v)


class Unordered:
    """A list whose order is not part of the contract, rendered sorted, so
    two brokers that list the same members in another order compare equal
    (DESIGN.md: compare sets where RabbitMQ's output order is not fixed).
    Duplicates still count."""

    def __init__(self, items):
        self.items = sorted(items)

    def __repr__(self):
        return "unordered[" + ", ".join(repr(i) for i in self.items) + "]"


def words(space_separated) -> Unordered:
    """A space-separated list such as connection.start's mechanisms
    (RabbitMQ lists `AMQPLAIN PLAIN` on one install and `PLAIN AMQPLAIN` on
    another) or locales, as an `Unordered` of its words."""
    if isinstance(space_separated, (bytes, bytearray)):
        space_separated = bytes(space_separated).decode("utf-8", "replace")
    return Unordered(space_separated.split())


def _normalise_headers(headers):
    """Mask values the broker legitimately makes up: x-death 'time'."""
    if not isinstance(headers, dict):
        return headers
    out = dict(headers)
    xd = out.get("x-death")
    if isinstance(xd, list):
        new = []
        for entry in xd:
            if isinstance(entry, dict) and "time" in entry:
                entry = dict(entry)
                t = entry["time"]
                entry["time"] = Typed(t.tag if isinstance(t, Typed) else "?", "<time>")
            new.append(entry)
        out["x-death"] = new
    return out


def render_props(props: dict) -> str:
    p = dict(props)
    if "headers" in p:
        p["headers"] = _normalise_headers(p["headers"])
    return render(p)


def render_body(body: bytes) -> str:
    return render(bytes(body))


def render_message(m: Message) -> str:
    meth = m.method
    parts = []
    if isinstance(meth, spec.Basic.Deliver):
        parts.append(f"deliver ctag={meth.consumer_tag} tag={meth.delivery_tag} "
                     f"redelivered={meth.redelivered}")
    elif isinstance(meth, spec.Basic.GetOk):
        parts.append(f"get-ok tag={meth.delivery_tag} redelivered={meth.redelivered} "
                     f"message_count={meth.message_count}")
    elif isinstance(meth, spec.Basic.Return):
        parts.append(f"return {meth.reply_code} {meth.reply_text!r}")
    parts.append(f"exchange={meth.exchange!r} rk={meth.routing_key!r}")
    parts.append(f"body={render_body(m.body)}")
    if m.props:
        parts.append(f"props={render_props(m.props)}")
    if len(m.body_frames) != 1:
        parts.append(f"body_frames={m.body_frames}")
    if (m.class_id, m.weight) != (60, 0):
        parts.append(f"header_class={m.class_id} weight={m.weight}")
    return " ".join(parts)


def render_method(m) -> str:
    if isinstance(m, Message):
        return render_message(m)
    fields = {k: v for k, v in vars(m).items() if k not in ("ticket",)}
    inner = ", ".join(f"{k}={render(v)}" for k, v in fields.items())
    return f"{m.NAME}({inner})"


GENERATED = [
    ("amq.gen-", re.compile(r"amq\.gen-[A-Za-z0-9_\-]+")),
    ("amq.ctag-", re.compile(r"amq\.ctag-[A-Za-z0-9_\-]+")),
    ("amq.rabbitmq.reply-to.", re.compile(r"amq\.rabbitmq\.reply-to\.[A-Za-z0-9_\-+/=.]+")),
]


def normalise(lines: list[str], token: str) -> list[str]:
    """Replace the scenario's unique resource prefix with '~' and number
    server-generated names in order of first appearance."""
    maps: dict[str, dict[str, str]] = {p: {} for p, _ in GENERATED}
    out = []
    for line in lines:
        line = line.replace(token, "~")
        for prefix, rx in GENERATED:
            m = maps[prefix]
            def sub(mo, m=m, prefix=prefix):
                s = mo.group(0)
                if s not in m:
                    m[s] = f"{prefix}<{len(m) + 1}>"
                return m[s]
            line = rx.sub(sub, line)
        out.append(line)
    return out


# --------------------------------------------------------------------------
# Recording channel
# --------------------------------------------------------------------------

class RChannel:
    """Wraps amqp.Channel; every synchronous reply is recorded."""

    def __init__(self, t: "T", ch: amqp.Channel, label: str):
        self.t, self.ch, self.label = t, ch, label

    @property
    def number(self):
        return self.ch.number

    @property
    def closed(self):
        return self.ch.closed

    def _call(self, what: str, method, timeout=amqp.DEFAULT_RPC_TIMEOUT, record=True):
        try:
            r = self.ch.rpc(method, timeout=timeout)
        except AMQPError as e:
            self.t.rec_error(e, f"{self.label} {what}")
            raise
        if record:
            self.t.rec(f"{self.label} {what} -> {render_method(r)}")
        return r

    def _send(self, what, method):
        try:
            self.ch.send(method)
        except AMQPError as e:
            self.t.rec_error(e, f"{self.label} {what}")
            raise

    # exchanges
    def exchange_declare(self, name, type="direct", passive=False, durable=False,
                         auto_delete=False, internal=False, args=None, nowait=False):
        if not passive and not name.startswith("amq.") and name:
            self.t.track("exchange", name)
        m = spec.Exchange.Declare(exchange=name, type=type, passive=passive, durable=durable,
                                  auto_delete=auto_delete, internal=internal, nowait=nowait,
                                  arguments=args or {})
        if nowait:
            return self._send("exchange.declare(nowait)", m)
        return self._call("exchange.declare", m)

    def exchange_delete(self, name, if_unused=False):
        return self._call("exchange.delete", spec.Exchange.Delete(exchange=name, if_unused=if_unused))

    def exchange_bind(self, dest, source, rk="", args=None):
        return self._call("exchange.bind", spec.Exchange.Bind(destination=dest, source=source,
                                                              routing_key=rk, arguments=args or {}))

    def exchange_unbind(self, dest, source, rk="", args=None):
        return self._call("exchange.unbind", spec.Exchange.Unbind(destination=dest, source=source,
                                                                  routing_key=rk, arguments=args or {}))

    # queues
    def queue_declare(self, name="", passive=False, durable=False, exclusive=False,
                      auto_delete=False, args=None):
        m = spec.Queue.Declare(queue=name, passive=passive, durable=durable, exclusive=exclusive,
                               auto_delete=auto_delete, arguments=args or {})
        r = self._call("queue.declare", m)
        if not passive:
            self.t.track("queue", r.queue)
        return r.queue

    def queue_declare_ok(self, name, **kw):
        """Like queue_declare but returns the DeclareOk (for counts)."""
        m = spec.Queue.Declare(queue=name, passive=kw.get("passive", False),
                               durable=kw.get("durable", False), exclusive=kw.get("exclusive", False),
                               auto_delete=kw.get("auto_delete", False), arguments=kw.get("args") or {})
        return self._call("queue.declare", m)

    def queue_bind(self, queue, exchange, rk="", args=None):
        return self._call("queue.bind", spec.Queue.Bind(queue=queue, exchange=exchange,
                                                        routing_key=rk, arguments=args or {}))

    def queue_unbind(self, queue, exchange, rk="", args=None):
        return self._call("queue.unbind", spec.Queue.Unbind(queue=queue, exchange=exchange,
                                                            routing_key=rk, arguments=args or {}))

    def queue_purge(self, queue):
        return self._call("queue.purge", spec.Queue.Purge(queue=queue))

    def queue_delete(self, queue, if_unused=False, if_empty=False):
        return self._call("queue.delete", spec.Queue.Delete(queue=queue, if_unused=if_unused,
                                                            if_empty=if_empty))

    # basic
    def qos(self, prefetch_count=0, prefetch_size=0, global_=False):
        return self._call("basic.qos", spec.Basic.Qos(prefetch_size=prefetch_size,
                                                      prefetch_count=prefetch_count,
                                                      global_qos=global_))

    def consume(self, queue, tag="", no_ack=False, exclusive=False, args=None, no_local=False):
        r = self._call("basic.consume", spec.Basic.Consume(queue=queue, consumer_tag=tag,
                                                           no_ack=no_ack, exclusive=exclusive,
                                                           no_local=no_local,
                                                           arguments=args or {}))
        return r.consumer_tag

    def cancel(self, tag):
        return self._call("basic.cancel", spec.Basic.Cancel(consumer_tag=tag))

    def get(self, queue, no_ack=False):
        r = self._call("basic.get", spec.Basic.Get(queue=queue, no_ack=no_ack))
        return r if isinstance(r, Message) else None

    def get_all(self, queue, no_ack=True, limit=100):
        """basic.get until get-empty; returns the bodies (all recorded)."""
        bodies = []
        for _ in range(limit):
            m = self.get(queue, no_ack=no_ack)
            if m is None:
                break
            bodies.append(m.body)
        return bodies

    def ack(self, tag, multiple=False):
        self._send("basic.ack", spec.Basic.Ack(delivery_tag=tag, multiple=multiple))

    def nack(self, tag, multiple=False, requeue=True):
        self._send("basic.nack", spec.Basic.Nack(delivery_tag=tag, multiple=multiple, requeue=requeue))

    def reject(self, tag, requeue=True):
        self._send("basic.reject", spec.Basic.Reject(delivery_tag=tag, requeue=requeue))

    def recover(self, requeue=True):
        return self._call("basic.recover", spec.Basic.Recover(requeue=requeue))

    def publish(self, exchange, rk, body=b"", props=None, mandatory=False, immediate=False):
        try:
            self.ch.publish(exchange, rk, body, props, mandatory=mandatory, immediate=immediate)
        except AMQPError as e:
            self.t.rec_error(e, f"{self.label} basic.publish")
            raise

    # tx / confirm / flow
    def tx_select(self):
        return self._call("tx.select", spec.Tx.Select())

    def tx_commit(self):
        return self._call("tx.commit", spec.Tx.Commit())

    def tx_rollback(self):
        return self._call("tx.rollback", spec.Tx.Rollback())

    def confirm_select(self):
        return self._call("confirm.select", spec.Confirm.Select())

    def flow(self, active):
        return self._call("channel.flow", spec.Channel.Flow(active=active))

    def close(self):
        return self._call("channel.close", spec.Channel.Close(reply_code=200, reply_text="ok",
                                                              class_id=0, method_id=0))

    # async events
    def expect(self, n, timeout=3.0, quiet=0.1, pred=None):
        """Wait for n async events (deliveries, returns, acks, cancels) and
        record every buffered event. Returns the events."""
        try:
            self.ch.wait_events(n, timeout, quiet=quiet, pred=pred)
        except AMQPError as e:
            self.t.rec_error(e, f"{self.label} waiting for events")
            self._record_events()
            raise
        return self._record_events()

    def drain(self, timeout=0.3):
        """Record whatever arrives within `timeout` (use to assert silence)."""
        return self.expect(10**9, timeout=timeout, quiet=0)

    def _record_events(self):
        evs = self.ch.take_events()
        for e in evs:
            self.t.rec(f"{self.label} {render_event(e)}")
        return evs

    def confirms(self, upto, timeout=3.0, bodies=None):
        """Wait until publisher confirms cover delivery tags 1..upto and
        record, per tag not yet recorded, Ack/Nack and whether its
        basic.return (if any) came first. Acks may legitimately be
        coalesced (multiple=True) or arrive out of order across queues,
        so the raw event order is not compared."""
        st = getattr(self, "_confirm_state", None)
        if st is None:
            st = self._confirm_state = {"outcome": {}, "returned": set(), "recorded": set(),
                                        "seq": 0}
        outcome, returned = st["outcome"], st["returned"]

        def absorb():
            for e in self.ch.take_events():
                if isinstance(e, Message):
                    body = e.body.decode(errors="replace")
                    self.t.rec(f"{self.label} {render_event(e)}")
                    returned.add(body)
                    st.setdefault("returned_order", []).append(body)
                    continue
                if isinstance(e, (spec.Basic.Ack, spec.Basic.Nack)):
                    kind = "ack" if isinstance(e, spec.Basic.Ack) else "nack"
                    tags = [e.delivery_tag] if not e.multiple else \
                        [n for n in range(1, e.delivery_tag + 1) if n not in outcome]
                    for n in tags:
                        if n in outcome:
                            outcome[n] = "DUPLICATE " + kind
                        else:
                            outcome[n] = (kind, len(st.get("returned_order", [])))
                    continue
                self.t.rec(f"{self.label} {render_event(e)}")

        deadline = time.monotonic() + timeout
        try:
            while True:
                absorb()
                if all(n in outcome for n in range(1, upto + 1)):
                    break
                if self.ch.closed:
                    raise self.ch.closed
                if not self.ch.conn.pump(deadline):
                    break
            self.ch.poll(0.05)
            absorb()
        except AMQPError as e:
            self.t.rec_error(e, f"{self.label} waiting for confirms")
            raise
        for n in sorted(set(outcome) | set(range(1, upto + 1))):
            if n in st["recorded"]:
                continue
            st["recorded"].add(n)
            o = outcome.get(n, "missing")
            extra = ""
            if isinstance(o, tuple):
                kind, seen = o
                o = kind
                if bodies is not None and n <= len(bodies):
                    order = st.get("returned_order", [])
                    b = bodies[n - 1]
                    if b in order:
                        extra = " (returned " + ("before" if order.index(b) < seen else "AFTER") + \
                            " its confirm)"
            self.t.rec(f"{self.label} confirm tag={n} {o}{extra}")
        return outcome

    def wait_close(self, timeout=3.0):
        """Wait for the broker to close this channel; record the outcome."""
        deadline = time.monotonic() + timeout
        try:
            while not self.ch.closed:
                if not self.ch.conn.pump(deadline):
                    break
        except AMQPError as e:
            self.t.rec_error(e, f"{self.label} waiting for close")
            return e
        self._record_events()
        if self.ch.closed:
            self.t.rec_error(self.ch.closed, f"{self.label} async")
            return self.ch.closed
        self.t.rec(f"{self.label} still open after {timeout}s")
        return None


def render_event(e) -> str:
    if isinstance(e, Message):
        return render_message(e)
    if isinstance(e, (spec.Basic.Ack, spec.Basic.Nack)):
        kind = "ack" if isinstance(e, spec.Basic.Ack) else "nack"
        extra = f" requeue={e.requeue}" if isinstance(e, spec.Basic.Nack) else ""
        return f"confirm-{kind} tag={e.delivery_tag} multiple={e.multiple}{extra}"
    return render_method(e)


# --------------------------------------------------------------------------
# Per-broker scenario context
# --------------------------------------------------------------------------

class T:
    def __init__(self, url: str, side: str):
        self.url = url
        self.side = side
        # The broker's management API (DIFF_A_MGMT / DIFF_B_MGMT), for the
        # state AMQP cannot set: vhosts, users, limits.
        self.mgmt = os.environ.get(f"DIFF_{side}_MGMT", "").rstrip("/")
        self.token = "dx" + secrets.token_hex(5)
        self.lines: list[str] = []
        self.conns: list[amqp.Connection] = []
        self.chans: list[RChannel] = []
        self.created: list[tuple[str, str]] = []
        self._conn = None
        self._pubch = None
        self._nconn = 0
        self._probe = None
        self._probe_ch = None

    # naming
    def name(self, suffix: str) -> str:
        return f"{self.token}-{suffix}"

    def track(self, kind, name):
        if name and (kind, name) not in self.created:
            self.created.append((kind, name))

    # observations
    def rec(self, *items):
        self.lines.append(" ".join(i if isinstance(i, str) else render(i) for i in items))

    def rec_error(self, e: Exception, where: str):
        if getattr(e, "_recorded", False):
            return
        try:
            e._recorded = True
        except AttributeError:
            pass
        if isinstance(e, ChannelClosed):
            self.rec(f"{where} -> CHANNEL-CLOSE {e.code} {e.text!r} "
                     f"(class={e.class_id} method={e.method_id})")
        elif isinstance(e, ConnectionClosed):
            self.rec(f"{where} -> CONNECTION-CLOSE {e.code} {e.text!r} "
                     f"(class={e.class_id} method={e.method_id})")
        elif isinstance(e, Timeout):
            self.rec(f"{where} -> TIMEOUT ({e})")
        else:
            self.rec(f"{where} -> {type(e).__name__} ({e})")

    @contextlib.contextmanager
    def err(self):
        """Swallow (after recording) a channel/connection close or timeout."""
        try:
            yield
        except AMQPError as e:
            self.rec_error(e, "error")
        else:
            self.rec("(no error)")

    # connections / channels
    def connect(self, **kw) -> amqp.Connection:
        self._nconn += 1
        label = f"c{self._nconn}"
        try:
            c = amqp.Connection(self.url, **kw)
        except AMQPError as e:
            self.rec_error(e, f"{label} connect")
            raise
        c.label = label
        self.conns.append(c)
        return c

    @property
    def conn(self) -> amqp.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = self.connect()
        return self._conn

    def chan(self, conn: amqp.Connection | None = None) -> RChannel:
        conn = conn or self.conn
        try:
            ch = conn.channel()
        except AMQPError as e:
            self.rec_error(e, f"{getattr(conn, 'label', 'c?')} channel.open")
            raise
        label = f"{getattr(conn, 'label', 'c?')}.ch{ch.number}"
        rc = RChannel(self, ch, label)
        self.chans.append(rc)
        return rc

    # convenience -------------------------------------------------------------
    def exchange(self, suffix, type="direct", **kw) -> str:
        name = self.name(suffix)
        self.setup_chan().exchange_declare(name, type, **kw)
        return name

    def queue(self, suffix, **kw) -> str:
        name = self.name(suffix) if suffix else ""
        return self.setup_chan().queue_declare(name, **kw)

    def setup_chan(self) -> RChannel:
        if self._pubch is None or self._pubch.closed or self._pubch.ch.conn.closed:
            self._pubch = self.chan()
            self._pubch.label = self._pubch.label + "(setup)"
            self._pubch.confirm_select()
        return self._pubch

    def bind(self, queue, exchange, rk="", args=None):
        return self.setup_chan().queue_bind(queue, exchange, rk, args)

    def pub(self, exchange, rk, body=b"", props=None, mandatory=False, timeout=3.0):
        """Publish on the setup channel (confirm mode) and wait for its
        confirm, so that the message is enqueued before the scenario goes
        on. Returns and nacks are recorded."""
        ch = self.setup_chan()
        ch.publish(exchange, rk, body, props, mandatory=mandatory)
        evs = ch.ch
        deadline = time.monotonic() + timeout
        try:
            while not any(isinstance(e, (spec.Basic.Ack, spec.Basic.Nack)) for e in evs.events):
                if evs.closed:
                    raise evs.closed
                if not evs.conn.pump(deadline):
                    raise Timeout(f"no publisher confirm within {timeout}s")
        except AMQPError as e:
            self.rec_error(e, f"{ch.label} publish+confirm")
            raise
        for e in evs.take_events():
            if isinstance(e, spec.Basic.Ack):
                continue  # the normal case: not worth a line
            self.rec(f"{ch.label} {render_event(e)}")

    def pubs(self, exchange, rk, bodies, props=None):
        for b in bodies:
            self.pub(exchange, rk, b, props)

    def sleep(self, seconds):
        time.sleep(seconds)

    def poll_until(self, fn, timeout=3.0, interval=0.05):
        """Call fn() until truthy or timeout; returns the last value."""
        deadline = time.monotonic() + timeout
        while True:
            v = fn()
            if v or time.monotonic() >= deadline:
                return v
            time.sleep(interval)

    def count(self, queue, timeout=amqp.DEFAULT_RPC_TIMEOUT):
        """message_count of a queue via a passive declare on a separate,
        unrecorded probe connection (so that polling does not change the
        channel numbers the scenario records). None if the queue is missing
        (or locked); note that a passive declare counts as use for x-expires."""
        try:
            if self._probe is None or self._probe.closed:
                self._probe = amqp.Connection(self.url, timeout=timeout)
                self._probe_ch = None
            if self._probe_ch is None or self._probe_ch.closed:
                self._probe_ch = self._probe.channel()
            r = self._probe_ch.rpc(spec.Queue.Declare(queue=queue, passive=True), timeout=timeout)
            return r.message_count
        except ChannelClosed:
            return None
        except AMQPError:
            return None

    def wait_count(self, queue, n, timeout=3.0):
        """Poll until queue holds n messages (or is missing when n is None)."""
        return self.poll_until(lambda: self.count(queue) == n, timeout=timeout)

    # teardown ------------------------------------------------------------------
    def finish(self):
        # Record whatever is still buffered or arrives shortly (stragglers).
        for rc in self.chans:
            if rc.ch.closed or rc.ch.conn.closed:
                continue
            try:
                rc.ch.poll(0.02)
            except AMQPError:
                pass
            evs = rc.ch.take_events()
            for e in evs:
                self.rec(f"{rc.label} (unconsumed) {render_event(e)}")
        for c in self.conns:
            c.abort()
        if self._probe is not None:
            self._probe.abort()

    # management API ----------------------------------------------------------
    def http(self, method: str, path: str, body=None) -> int:
        """A management API call as guest; returns the HTTP status."""
        if not self.mgmt:
            raise AMQPError(f"no management API for side {self.side} (set DIFF_{self.side}_MGMT)")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.mgmt + path, data=data, method=method,
                                     headers={"content-type": "application/json",
                                              "authorization": "Basic Z3Vlc3Q6Z3Vlc3Q="})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def vhost(self, suffix: str, users=("guest",)) -> str:
        """A fresh vhost (deleted at cleanup) where `users` may do anything."""
        name = self.name(suffix)
        self.created.append(("vhost", name))
        self.http("PUT", f"/api/vhosts/{quote(name)}", {})
        for u in users:
            self.http("PUT", f"/api/permissions/{quote(name)}/{quote(u)}",
                      {"configure": ".*", "write": ".*", "read": ".*"})
        return name

    def user(self, suffix: str, password: str) -> str:
        """A fresh user (deleted at cleanup) with no permissions yet."""
        name = self.name(suffix)
        self.created.append(("user", name))
        self.http("PUT", f"/api/users/{quote(name)}", {"password": password, "tags": ""})
        return name

    def limit(self, kind: str, owner: str, name: str, value: int):
        """A vhost limit (kind "vhost") or a user limit (kind "user")."""
        status = self.http("PUT", f"/api/{kind}-limits/{quote(owner)}/{name}", {"value": value})
        self.rec(f"set {kind} limit {name} = {value}: HTTP {status}")

    def cleanup(self):
        for kind, name in self.created:
            if kind in ("vhost", "user"):
                try:
                    self.http("DELETE", f"/api/{kind}s/{quote(name)}")
                except Exception:
                    pass
        self.created = [(k, n) for k, n in self.created if k not in ("vhost", "user")]
        if not self.created:
            return
        try:
            c = amqp.Connection(self.url, timeout=3)
        except Exception:
            return
        try:
            ch = None
            for kind, name in self.created:
                try:
                    if ch is None or ch.closed:
                        ch = c.channel()
                    if kind == "queue":
                        ch.rpc(spec.Queue.Delete(queue=name), timeout=2)
                    else:
                        ch.rpc(spec.Exchange.Delete(exchange=name), timeout=2)
                except ChannelClosed:
                    ch = None
                except AMQPError:
                    break
        finally:
            c.abort()


def run_side(fn, url, side, timeout):
    t = T(url, side)
    try:
        fn(t)
    except AMQPError as e:
        t.rec_error(e, "scenario")
        t.rec(f"scenario aborted by {type(e).__name__}")
    except Exception as e:  # a bug in the scenario or a malformed reply
        tb = traceback.format_exception_only(type(e), e)[-1].strip()
        t.rec(f"scenario raised {tb}")
    try:
        t.finish()
    except Exception as e:
        t.rec(f"finish raised {e!r}")
    try:
        t.cleanup()
    except Exception:
        pass
    return normalise(t.lines, t.token)


def run_scenario(fn, url_a, url_b, timeout):
    """Run a scenario on both brokers concurrently; returns (lines_a, lines_b)."""
    results = {}

    def go(key, url):
        try:
            results[key] = run_side(fn, url, key, timeout)
        except Exception as e:  # pragma: no cover - harness bug
            results[key] = [f"harness error: {e!r}"]

    threads = [threading.Thread(target=go, args=(k, u), daemon=True)
               for k, u in (("A", url_a), ("B", url_b))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout)
    for k in ("A", "B"):
        results.setdefault(k, [f"scenario did not finish within {timeout}s"])
    return results["A"], results["B"]


def diff_lines(a, b, name_a, name_b):
    return list(difflib.unified_diff(a, b, fromfile=name_a, tofile=name_b, lineterm="", n=3))
