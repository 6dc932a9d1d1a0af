"""A small, raw AMQP 0-9-1 client for the differential harness.

pika is used only as a codec for method frames (pika.spec); everything else
(socket I/O, frame assembly, channel bookkeeping, field tables) is done here
so that the harness sees *exactly* what a broker sends: every method, in
arrival order, with the wire type tag of every field-table value.

Nothing here hides broker behaviour: a Channel.Close or Connection.Close is
answered with its -Ok and surfaced as an exception carrying code and text.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import socket
import struct
import time
import urllib.parse

import pika.data
import pika.spec as spec

FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_END = 0xCE

DEFAULT_RPC_TIMEOUT = 3.0


# --------------------------------------------------------------------------
# Field tables with explicit wire types
# --------------------------------------------------------------------------

class Typed:
    """A field value with an explicit AMQP type tag, e.g. Typed('b', -3).

    Decoded tables contain Typed values for every scalar so that a broker
    that answers with 'I' where RabbitMQ sends 'l' is caught. Nested
    tables are dicts, arrays are lists of Typed/dict/list.
    """

    __slots__ = ("tag", "value")

    def __init__(self, tag: str, value):
        self.tag = tag
        self.value = value

    def __eq__(self, other):
        return isinstance(other, Typed) and (self.tag, self.value) == (other.tag, other.value)

    def __hash__(self):
        return hash((self.tag, repr(self.value)))

    def __repr__(self):
        if self.tag == "V":
            return "V"
        if self.tag == "S":
            return repr(self.value)
        return f"{self.tag}:{self.value!r}"


_INT_FORMATS = {"b": ">b", "B": ">B", "s": ">h", "u": ">H", "I": ">i",
                "i": ">I", "l": ">q", "L": ">Q", "f": ">f", "d": ">d"}


def encode_value(pieces: list, value) -> int:
    if isinstance(value, Typed):
        tag, v = value.tag, value.value
        if tag in _INT_FORMATS:
            b = tag.encode() + struct.pack(_INT_FORMATS[tag], v)
        elif tag == "t":
            b = b"t" + struct.pack(">B", 1 if v else 0)
        elif tag in ("S", "x"):
            raw = v.encode() if isinstance(v, str) else v
            b = tag.encode() + struct.pack(">I", len(raw)) + raw
        elif tag == "T":
            b = b"T" + struct.pack(">Q", v)
        elif tag == "D":
            scale, raw = v
            b = b"D" + struct.pack(">Bi", scale, raw)
        elif tag == "V":
            b = b"V"
        else:
            raise ValueError(f"cannot encode tag {tag!r}")
        pieces.append(b)
        return len(b)
    if isinstance(value, dict):
        tmp: list = []
        n = encode_table(tmp, value)
        pieces.append(b"F")
        pieces.extend(tmp)
        return 1 + n
    if isinstance(value, (list, tuple)):
        tmp = []
        n = sum(encode_value(tmp, v) for v in value)
        pieces.append(b"A" + struct.pack(">I", n))
        pieces.extend(tmp)
        return 5 + n
    if value is None:
        pieces.append(b"V")
        return 1
    if isinstance(value, bool):
        return encode_value(pieces, Typed("t", value))
    if isinstance(value, int):
        if -2**31 <= value < 2**31:
            return encode_value(pieces, Typed("I", value))
        return encode_value(pieces, Typed("l", value))
    if isinstance(value, float):
        return encode_value(pieces, Typed("d", value))
    if isinstance(value, str):
        return encode_value(pieces, Typed("S", value))
    if isinstance(value, bytes):
        return encode_value(pieces, Typed("x", value))
    if isinstance(value, decimal.Decimal):
        t = value.as_tuple()
        scale = max(0, -t.exponent)
        return encode_value(pieces, Typed("D", (scale, int(value.scaleb(scale)))))
    if isinstance(value, datetime.datetime):
        return encode_value(pieces, Typed("T", int(value.timestamp())))
    raise ValueError(f"cannot encode {value!r}")


def encode_table(pieces: list, table) -> int:
    table = table or {}
    tmp: list = []
    n = 0
    for k, v in table.items():
        kb = k.encode()
        tmp.append(struct.pack(">B", len(kb)) + kb)
        n += 1 + len(kb)
        n += encode_value(tmp, v)
    pieces.append(struct.pack(">I", n))
    pieces.extend(tmp)
    return 4 + n


# pika.spec method encoders call pika.data.encode_table: route them through
# ours so that scenario-supplied Typed values reach the wire as written.
pika.data.encode_table = encode_table


def decode_value(buf: bytes, off: int):
    tag = chr(buf[off])
    off += 1
    if tag in _INT_FORMATS:
        fmt = _INT_FORMATS[tag]
        (v,) = struct.unpack_from(fmt, buf, off)
        return Typed(tag, v), off + struct.calcsize(fmt)
    if tag == "t":
        return Typed("t", bool(buf[off])), off + 1
    if tag in ("S", "x"):
        (n,) = struct.unpack_from(">I", buf, off)
        raw = buf[off + 4: off + 4 + n]
        if tag == "S":
            try:
                return Typed("S", raw.decode()), off + 4 + n
            except UnicodeDecodeError:
                return Typed("S", raw), off + 4 + n
        return Typed("x", raw), off + 4 + n
    if tag == "T":
        (v,) = struct.unpack_from(">Q", buf, off)
        return Typed("T", v), off + 8
    if tag == "D":
        scale, raw = struct.unpack_from(">Bi", buf, off)
        return Typed("D", (scale, raw)), off + 5
    if tag == "V":
        return Typed("V", None), off
    if tag == "F":
        return decode_table(buf, off)
    if tag == "A":
        (n,) = struct.unpack_from(">I", buf, off)
        end = off + 4 + n
        off += 4
        items = []
        while off < end:
            v, off = decode_value(buf, off)
            items.append(v)
        return items, end
    raise ValueError(f"unknown field type {tag!r} at {off - 1}")


def decode_table(buf: bytes, off: int):
    (n,) = struct.unpack_from(">I", buf, off)
    end = off + 4 + n
    off += 4
    table = {}
    while off < end:
        klen = buf[off]
        key = buf[off + 1: off + 1 + klen].decode(errors="replace")
        off += 1 + klen
        table[key], off = decode_value(buf, off)
    return table, end


# --------------------------------------------------------------------------
# Basic content properties
# --------------------------------------------------------------------------

# (name, kind) in wire order; flag bit 15 is the first.
PROPERTIES = [
    ("content_type", "shortstr"), ("content_encoding", "shortstr"),
    ("headers", "table"), ("delivery_mode", "octet"), ("priority", "octet"),
    ("correlation_id", "shortstr"), ("reply_to", "shortstr"),
    ("expiration", "shortstr"), ("message_id", "shortstr"),
    ("timestamp", "timestamp"), ("type", "shortstr"), ("user_id", "shortstr"),
    ("app_id", "shortstr"), ("cluster_id", "shortstr"),
]


def encode_properties(props: dict) -> bytes:
    flags = 0
    pieces: list = []
    for i, (name, kind) in enumerate(PROPERTIES):
        if name not in props or props[name] is None:
            continue
        flags |= 1 << (15 - i)
        v = props[name]
        if kind == "shortstr":
            b = v.encode() if isinstance(v, str) else v
            pieces.append(struct.pack(">B", len(b)) + b)
        elif kind == "octet":
            pieces.append(struct.pack(">B", v))
        elif kind == "timestamp":
            pieces.append(struct.pack(">Q", v))
        elif kind == "table":
            encode_table(pieces, v)
    unknown = set(props) - {n for n, _ in PROPERTIES}
    if unknown:
        raise ValueError(f"unknown properties {unknown}")
    return struct.pack(">H", flags) + b"".join(pieces)


def decode_properties(buf: bytes, off: int) -> dict:
    flag_words = []
    while True:
        (w,) = struct.unpack_from(">H", buf, off)
        off += 2
        flag_words.append(w)
        if not w & 1:
            break
    flags = flag_words[0]
    props = {}
    for i, (name, kind) in enumerate(PROPERTIES):
        if not flags & (1 << (15 - i)):
            continue
        if kind == "shortstr":
            n = buf[off]
            raw = buf[off + 1: off + 1 + n]
            try:
                props[name] = raw.decode()
            except UnicodeDecodeError:
                props[name] = raw
            off += 1 + n
        elif kind == "octet":
            props[name] = buf[off]
            off += 1
        elif kind == "timestamp":
            (props[name],) = struct.unpack_from(">Q", buf, off)
            off += 8
        elif kind == "table":
            props[name], off = decode_table(buf, off)
    if flags & 1 or len(flag_words) > 1:
        props["<extra-flag-words>"] = flag_words
    return props


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

class AMQPError(Exception):
    pass


class ChannelClosed(AMQPError):
    """The broker closed the channel (Channel.Close received)."""

    def __init__(self, channel, code, text, class_id, method_id):
        super().__init__(f"channel {channel} closed: {code} {text}")
        self.channel, self.code, self.text = channel, code, text
        self.class_id, self.method_id = class_id, method_id


class ConnectionClosed(AMQPError):
    """The broker closed the connection (Connection.Close received)."""

    def __init__(self, code, text, class_id, method_id):
        super().__init__(f"connection closed: {code} {text}")
        self.code, self.text = code, text
        self.class_id, self.method_id = class_id, method_id


class SocketClosed(AMQPError):
    """The TCP connection ended without a Connection.Close."""


class Timeout(AMQPError):
    pass


# --------------------------------------------------------------------------
# Messages and events
# --------------------------------------------------------------------------

class Message:
    """A method with content (Deliver, Return, GetOk) plus header and body."""

    def __init__(self, method, class_id=60):
        self.method = method
        self.props: dict = {}
        self.body_size = None
        self.body = b""
        self.body_frames: list[int] = []
        self.class_id = class_id
        self.weight = 0

    @property
    def complete(self):
        return self.body_size is not None and len(self.body) >= self.body_size


# --------------------------------------------------------------------------
# Connection and channels
# --------------------------------------------------------------------------

CLIENT_PROPERTIES = {
    "product": "warren-diff-harness",
    "platform": "Python",
    "capabilities": {
        "authentication_failure_close": True,
        "basic.nack": True,
        "connection.blocked": True,
        "consumer_cancel_notify": True,
        "publisher_confirms": True,
        "exchange_exchange_bindings": True,
        "per_consumer_qos": True,
    },
    "information": "differential test harness",
}


def parse_url(url: str):
    u = urllib.parse.urlparse(url)
    vhost = urllib.parse.unquote(u.path[1:]) if len(u.path) > 1 else "/"
    return (u.hostname or "127.0.0.1", u.port or 5672,
            urllib.parse.unquote(u.username or "guest"),
            urllib.parse.unquote(u.password or "guest"), vhost)


class Connection:
    def __init__(self, url: str, frame_max: int = 131072, channel_max: int = 2047,
                 heartbeat: int = 0, timeout: float = 5.0, client_properties=None,
                 user=None, password=None, vhost=None, mechanism="PLAIN", response=None):
        host, port, u, p, url_vhost = parse_url(url)
        vhost = url_vhost if vhost is None else vhost
        self.user = user if user is not None else u
        self.password = password if password is not None else p
        self.vhost = vhost
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.closed: AMQPError | None = None
        self.channels: dict[int, Channel] = {}
        self.conn_methods: collections.deque = collections.deque()
        self.next_channel = 1
        self.frame_max = frame_max
        self.server_properties = None
        self.tune = None
        self.open_ok = None
        self.send_raw(b"AMQP\x00\x00\x09\x01")
        start = self._wait_conn(spec.Connection.Start, timeout)
        self.start = start
        self.server_properties = start.server_properties
        resp = b"\x00" + self.user.encode() + b"\x00" + self.password.encode()
        self.send_method(0, spec.Connection.StartOk(
            client_properties=client_properties or CLIENT_PROPERTIES,
            mechanism=mechanism, response=resp if response is None else response, locale="en_US"))
        tune = self._wait_conn(spec.Connection.Tune, timeout)
        self.tune = tune
        cm = tune.channel_max or channel_max
        fm = min(x for x in (tune.frame_max, frame_max) if x) if (tune.frame_max or frame_max) else 0
        self.frame_max = fm
        self.send_method(0, spec.Connection.TuneOk(channel_max=min(cm, channel_max), frame_max=fm,
                                                   heartbeat=heartbeat))
        self.send_method(0, spec.Connection.Open(virtual_host=vhost))
        self.open_ok = self._wait_conn(spec.Connection.OpenOk, timeout)

    # -- raw I/O -----------------------------------------------------------
    def send_raw(self, data: bytes):
        if self.closed:
            raise self.closed
        try:
            self.sock.sendall(data)
        except OSError as e:
            self.closed = SocketClosed(f"send failed: {e}")
            raise self.closed

    def send_frame(self, ftype: int, channel: int, payload: bytes):
        self.send_raw(struct.pack(">BHI", ftype, channel, len(payload)) + payload + bytes([FRAME_END]))

    def send_method(self, channel: int, method):
        payload = struct.pack(">I", method.INDEX) + b"".join(method.encode())
        self.send_frame(FRAME_METHOD, channel, payload)

    def _read_frame(self, deadline: float):
        while True:
            if len(self.buf) >= 7:
                ftype, ch, size = struct.unpack_from(">BHI", self.buf, 0)
                if len(self.buf) >= 8 + size:
                    payload = bytes(self.buf[7:7 + size])
                    end = self.buf[7 + size]
                    del self.buf[:8 + size]
                    if end != FRAME_END:
                        raise AMQPError(f"bad frame end {end:#x}")
                    return ftype, ch, payload
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError as e:
                self.closed = SocketClosed(f"recv failed: {e}")
                raise self.closed
            if not data:
                self.closed = SocketClosed("connection closed by peer without Connection.Close")
                raise self.closed
            self.buf += data

    def pump(self, deadline: float) -> bool:
        """Read and dispatch one frame. False on timeout."""
        if self.closed:
            raise self.closed
        fr = self._read_frame(deadline)
        if fr is None:
            return False
        ftype, ch, payload = fr
        if ftype == FRAME_HEARTBEAT:
            return True
        if ch == 0:
            if ftype != FRAME_METHOD:
                raise AMQPError(f"non-method frame type {ftype} on channel 0")
            method = decode_method(payload)
            if isinstance(method, spec.Connection.Close):
                try:
                    self.send_method(0, spec.Connection.CloseOk())
                except AMQPError:
                    pass
                self.closed = ConnectionClosed(method.reply_code, method.reply_text,
                                               method.class_id, method.method_id)
                try:
                    self.sock.close()
                except OSError:
                    pass
                raise self.closed
            self.conn_methods.append(method)
            return True
        chan = self.channels.get(ch)
        if chan is None:
            chan = Channel(self, ch, opened=False)  # unexpected; keep what arrives
            self.channels[ch] = chan
        chan._on_frame(ftype, payload)
        return True

    def _wait_conn(self, cls, timeout):
        deadline = time.monotonic() + timeout
        while True:
            while self.conn_methods:
                m = self.conn_methods.popleft()
                if isinstance(m, cls):
                    return m
                if isinstance(m, (spec.Connection.Blocked, spec.Connection.Unblocked)):
                    continue
                raise AMQPError(f"expected {cls.NAME}, got {m.NAME}")
            if not self.pump(deadline):
                raise Timeout(f"timeout waiting for {cls.NAME}")

    # -- API -------------------------------------------------------------------
    def channel(self, number: int | None = None, timeout: float = DEFAULT_RPC_TIMEOUT) -> "Channel":
        if number is None:
            number = self.next_channel
            self.next_channel += 1
        ch = Channel(self, number, opened=False)
        self.channels[number] = ch
        ch.rpc(spec.Channel.Open(), timeout=timeout)
        ch.opened = True
        return ch

    def close(self, code=200, text="bye", timeout: float = DEFAULT_RPC_TIMEOUT):
        """Client-initiated close; returns the CloseOk (or raises)."""
        if self.closed:
            raise self.closed
        self.send_method(0, spec.Connection.Close(reply_code=code, reply_text=text, class_id=0, method_id=0))
        deadline = time.monotonic() + timeout
        while True:
            while self.conn_methods:
                m = self.conn_methods.popleft()
                if isinstance(m, spec.Connection.CloseOk):
                    self.closed = SocketClosed("closed by client")
                    self.sock.close()
                    return m
            if not self.pump(deadline):
                raise Timeout("timeout waiting for Connection.CloseOk")

    def abort(self):
        try:
            self.sock.close()
        except OSError:
            pass
        if not self.closed:
            self.closed = SocketClosed("aborted by client")


def decode_method(payload: bytes):
    (index,) = struct.unpack_from(">I", payload, 0)
    if index == spec.Connection.Start.INDEX:
        major, minor = payload[4], payload[5]
        props, off = decode_table(payload, 6)
        (n,) = struct.unpack_from(">I", payload, off)
        mechs = payload[off + 4: off + 4 + n]
        off += 4 + n
        (n,) = struct.unpack_from(">I", payload, off)
        locales = payload[off + 4: off + 4 + n]
        return spec.Connection.Start(version_major=major, version_minor=minor,
                                     server_properties=props, mechanisms=mechs, locales=locales)
    cls = spec.methods.get(index)
    if cls is None:
        raise AMQPError(f"unknown method index {index:#x}")
    m = cls()
    m.decode(payload, 4)
    return m


# Synchronous replies: request class -> accepted reply classes.
def _replies(method):
    if isinstance(method, spec.Basic.Get):
        return (spec.Basic.GetOk, spec.Basic.GetEmpty)
    name = type(method).__name__ + "Ok"
    owner = {
        "Channel": spec.Channel, "Exchange": spec.Exchange, "Queue": spec.Queue,
        "Basic": spec.Basic, "Tx": spec.Tx, "Confirm": spec.Confirm,
    }[method.NAME.split(".")[0]]
    return (getattr(owner, name),)


CONTENT_METHODS = (spec.Basic.Deliver, spec.Basic.Return, spec.Basic.GetOk)


class Channel:
    def __init__(self, conn: Connection, number: int, opened=True):
        self.conn = conn
        self.number = number
        self.opened = opened
        self.closed: AMQPError | None = None
        self.replies: collections.deque = collections.deque()   # sync replies
        self.events: collections.deque = collections.deque()    # async: Message / method
        self.partial: Message | None = None
        self.partial_is_sync = False

    # -- frame dispatch --------------------------------------------------------
    def _on_frame(self, ftype, payload):
        if ftype == FRAME_METHOD:
            method = decode_method(payload)
            if self.partial is not None:
                raise AMQPError(f"method {method.NAME} while content of "
                                f"{self.partial.method.NAME} incomplete")
            if isinstance(method, spec.Channel.Close):
                try:
                    self.conn.send_method(self.number, spec.Channel.CloseOk())
                except AMQPError:
                    pass
                self.closed = ChannelClosed(self.number, method.reply_code, method.reply_text,
                                            method.class_id, method.method_id)
                return
            if isinstance(method, CONTENT_METHODS):
                self.partial = Message(method)
                self.partial_is_sync = isinstance(method, spec.Basic.GetOk)
                return
            if isinstance(method, (spec.Basic.Ack, spec.Basic.Nack, spec.Basic.Cancel,
                                   spec.Channel.Flow)):
                self.events.append(method)
            else:
                self.replies.append(method)
        elif ftype == FRAME_HEADER:
            if self.partial is None or self.partial.body_size is not None:
                raise AMQPError("unexpected content header frame")
            class_id, weight, size = struct.unpack_from(">HHQ", payload, 0)
            self.partial.class_id, self.partial.weight = class_id, weight
            self.partial.body_size = size
            self.partial.props = decode_properties(payload, 12)
            self._maybe_done()
        elif ftype == FRAME_BODY:
            if self.partial is None or self.partial.body_size is None:
                raise AMQPError("unexpected content body frame")
            self.partial.body += payload
            self.partial.body_frames.append(len(payload))
            self._maybe_done()

    def _maybe_done(self):
        m = self.partial
        if m is not None and m.complete:
            self.partial = None
            (self.replies if self.partial_is_sync else self.events).append(m)

    # -- sending -------------------------------------------------------------
    def send(self, method):
        if self.closed:
            raise self.closed
        self.conn.send_method(self.number, method)

    def rpc(self, method, timeout: float = DEFAULT_RPC_TIMEOUT):
        """Send a synchronous method and wait for its reply."""
        self.send(method)
        return self.wait_reply(_replies(method), timeout, method.NAME)

    def wait_reply(self, classes, timeout, what=""):
        deadline = time.monotonic() + timeout
        while True:
            if self.replies:
                r = self.replies.popleft()
                m = r.method if isinstance(r, Message) else r
                if isinstance(m, classes):
                    return r
                raise AMQPError(f"expected {'/'.join(c.NAME for c in classes)}, got {m.NAME}")
            if self.closed:
                raise self.closed
            if not self.conn.pump(deadline):
                raise Timeout(f"no reply to {what} within {timeout}s")

    def publish(self, exchange, routing_key, body=b"", props=None, mandatory=False,
                immediate=False, frame_max=None):
        if isinstance(body, str):
            body = body.encode()
        m = spec.Basic.Publish(exchange=exchange, routing_key=routing_key,
                               mandatory=mandatory, immediate=immediate)
        data = [_frame(FRAME_METHOD, self.number,
                       struct.pack(">I", m.INDEX) + b"".join(m.encode()))]
        header = struct.pack(">HHQ", 60, 0, len(body)) + encode_properties(props or {})
        data.append(_frame(FRAME_HEADER, self.number, header))
        chunk = (frame_max or self.conn.frame_max or 131072) - 8
        for i in range(0, len(body), chunk):
            data.append(_frame(FRAME_BODY, self.number, body[i:i + chunk]))
        if self.closed:
            raise self.closed
        self.conn.send_raw(b"".join(data))

    # -- receiving async events ------------------------------------------------
    def poll(self, timeout: float):
        """Pump frames for up to timeout seconds (returns early if closed)."""
        deadline = time.monotonic() + timeout
        while not self.closed:
            if not self.conn.pump(deadline):
                return

    def wait_events(self, count: int, timeout: float, quiet: float = 0.05, pred=None):
        """Wait until `count` events (matching pred) are buffered, then for a
        further quiet period; return without raising on timeout."""
        deadline = time.monotonic() + timeout
        def n():
            return sum(1 for e in self.events if pred is None or pred(e))
        while n() < count and not self.closed:
            if not self.conn.pump(deadline):
                break
        if quiet and not self.closed:
            self.poll(quiet)

    def take_events(self):
        evs = list(self.events)
        self.events.clear()
        return evs


def _frame(ftype, channel, payload):
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + bytes([FRAME_END])
