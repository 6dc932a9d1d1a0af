#!/usr/bin/env python3
"""Writes the committed seed corpora of the fuzz targets (fuzz/corpus/frames/
and fuzz/corpus/connection/). Run it again after changing a seed; the files are
committed so that CI's bounded fuzz run and tests/fuzz_smoke.rs start from
the same inputs.

The deep cases nest beyond what amq-protocol's recursive parser survives on
a 2 MiB stack (about 1,200 tables or 1,500 arrays in a release build): the
broker must walk them iteratively, refuse to decode them, and never crash.
Each file stays small (at most ~15 KB)."""
import os
import struct

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def frame(kind, channel, payload):
    return bytes([kind]) + struct.pack(">HI", channel, len(payload)) + payload + b"\xce"


def method(channel, cls, mid, args):
    return frame(1, channel, struct.pack(">HH", cls, mid) + args)


def short(s):
    return bytes([len(s)]) + s


def long(s):
    return struct.pack(">I", len(s)) + s


def table(entries):
    body = b"".join(short(k) + v for k, v in entries)
    return struct.pack(">I", len(body)) + body


def nested_tables(depth):
    """{"a": {"a": ... {}}}: depth tables, length prefix included."""
    out = b""
    for level in range(depth):
        out += struct.pack(">I", 7 * (depth - 1 - level))
        if level + 1 < depth:
            out += b"\x01aF"
    return out


def nested_arrays(depth):
    """[[[...]]]: depth arrays, tag included."""
    return b"".join(b"A" + struct.pack(">I", 5 * (depth - 1 - level)) for level in range(depth))


def header(channel, props, body_size=2):
    return frame(2, channel, struct.pack(">HHQ", 60, 0, body_size) + props)


def publish(channel, exchange, key, props, body=b"hi"):
    return (method(channel, 60, 40, b"\0\0" + short(exchange) + short(key) + b"\0")
            + header(channel, props, len(body)) + frame(3, channel, body))


def longstr(s):
    return b"S" + long(s)


def array(values):
    body = b"".join(values)
    return b"A" + struct.pack(">I", len(body)) + body


HEADERS = 1 << 13
DEEP_T = b"F" + nested_tables(2000)          # 14 KB
DEEP_A = nested_arrays(2100)                 # 10.5 KB

SEEDS = {
    # The small seeds tests/fuzz_smoke.rs started from.
    "publish": method(1, 60, 40, b"\0\0\x03amq\x01k\x03"),
    "queue-declare": method(1, 50, 10, b"\0\0\x01q\0\0\0\0\0"),
    "ack": method(1, 60, 80, b"\0\0\0\0\0\0\0\x09\x01"),
    "start-ok-empty": method(0, 10, 11, b"\0\0\0\0\x05PLAIN\0\0\0\0\x05en_US"),
    "header-small": frame(2, 1, bytes([0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0x30, 0, 0, 0, 0, 4, ord("h"), 0, 0, 0, 0, 2])),
    "body": frame(3, 1, b"abc"),
    "heartbeat": frame(8, 0, b""),
    # Everything the raw edits touch: CC, BCC, x-death, x-delivery-count,
    # reply_to, expiration, user_id, duplicates.
    "publish-edits": publish(1, b"amq.direct", b"k", struct.pack(">H", HEADERS | (1 << 9) | (1 << 8) | (1 << 4))
                             + table([(b"CC", array([longstr(b"k2")])), (b"BCC", array([longstr(b"k3")])),
                                      (b"x-death", array([b"F" + table([(b"queue", longstr(b"q")), (b"reason", longstr(b"rejected")),
                                                                         (b"count", b"l" + struct.pack(">q", 2))])])),
                                      (b"x-delivery-count", b"l" + struct.pack(">q", 1)),
                                      (b"dup", b"t\x01"), (b"dup", b"V")])
                             + short(b"amq.rabbitmq.reply-to") + short(b"60000") + short(b"guest")),
    "amqplain-start-ok": method(0, 10, 11, table([]) + short(b"AMQPLAIN")
                                + long(table([(b"LOGIN", longstr(b"guest")), (b"PASSWORD", longstr(b"guest"))])[4:])
                                + short(b"en_US")),
    # Deep nesting, in every place a peer can put a table.
    "start-ok-deep-client-properties": method(0, 10, 11, table([(b"capabilities", b"F" + table([])), (b"deep", DEEP_T)])
                                              + short(b"PLAIN") + long(b"\0guest\0guest") + short(b"en_US")),
    "start-ok-deep-arrays": method(0, 10, 11, table([(b"deep", DEEP_A)]) + short(b"PLAIN")
                                   + long(b"\0guest\0guest") + short(b"en_US")),
    "amqplain-deep": method(0, 10, 11, table([]) + short(b"AMQPLAIN")
                            + long(table([(b"LOGIN", longstr(b"guest")), (b"deep", DEEP_T)])[4:]) + short(b"en_US")),
    "queue-declare-deep-arguments": method(1, 50, 10, b"\0\0\x01q\0" + table([(b"x-deep", DEEP_T)])),
    "queue-bind-deep-arguments": method(1, 50, 20, b"\0\0\x01q\x0bamq.headers\0\0" + table([(b"x-match", longstr(b"any")), (b"a", DEEP_A)])),
    "consume-deep-arguments": method(1, 60, 20, b"\0\0\x01q\x01t\0" + table([(b"x-priority", DEEP_A)])),
    "exchange-declare-deep-arguments": method(1, 40, 10, b"\0\0\x01x\x07headers\0" + table([(b"alternate-exchange", DEEP_T)])),
    "connection-start-deep": method(0, 10, 10, b"\0\x09" + table([(b"deep", DEEP_T)]) + long(b"PLAIN") + long(b"en_US")),
    "publish-deep-headers": publish(1, b"amq.headers", b"", struct.pack(">H", HEADERS) + table([(b"deep", DEEP_T), (b"BCC", array([longstr(b"q")]))])),
    "publish-deep-arrays": publish(1, b"", b"q", struct.pack(">H", HEADERS) + table([(b"CC", DEEP_A)])),
    "publish-deep-x-death": publish(1, b"", b"q", struct.pack(">H", HEADERS | (1 << 8))
                                    + table([(b"x-death", array([b"F" + table([(b"queue", longstr(b"q")), (b"reason", longstr(b"expired")), (b"deep", DEEP_T)])]))])
                                    + short(b"5")),
    # Unframed: fuzz_input also reads its input as a table and as a property list.
    "raw-table-deep": nested_tables(2000),
    "raw-table-deep-arrays": table([(b"a", DEEP_A)]),
    "raw-properties-deep": struct.pack(">H", HEADERS | (1 << 12)) + table([(b"deep", DEEP_T)]) + b"\x02",
    # Found by the fuzzer: the continuation bit made the scan stop before
    # the headers, which amq-protocol (ignoring the bit) then parsed.
    "raw-properties-continuation-deep": struct.pack(">H", HEADERS | 1) + table([(b"deep", DEEP_T)]),
    "header-continuation-deep": header(1, struct.pack(">H", HEADERS | 1) + table([(b"deep", DEEP_T)])),
}


# The `connection` target: the first byte picks a handshake first (even) and
# the read size (1 + (byte >> 1) * 5); the rest is what a client sends next,
# on channel 1 (already open after the handshake).
def qdeclare(ch, name, durable=False):
    return method(ch, 50, 10, b"\0\0" + short(name) + bytes([2 if durable else 0]) + table([]))


CONNECTION = {
    "session-topic": b"\x00" + qdeclare(1, b"q") + method(1, 50, 20, b"\0\0\x01q\x09amq.topic\x01#\0" + table([]))
    + publish(1, b"amq.topic", b"a.b", b"\0\0") + method(1, 60, 20, b"\0\0\x01q\x01c\0" + table([]))
    + publish(1, b"amq.topic", b"a.c", b"\0\0") + method(1, 60, 80, b"\0" * 8 + b"\x01")
    + method(1, 60, 30, b"\x01c\0") + method(1, 20, 40, b"\0\xc8\0\0\0\0\0"),
    "session-confirm-get": b"\x0a" + qdeclare(1, b"q") + method(1, 85, 10, b"\0")
    + publish(1, b"", b"q", struct.pack(">H", 1 << 12) + b"\x02") + publish(1, b"", b"nowhere", b"\0\0")
    + method(1, 60, 70, b"\0\0\x01q\0") + method(1, 60, 120, struct.pack(">Q", 1) + b"\x02"),
    "session-tx": b"\x00" + qdeclare(1, b"q") + method(1, 90, 10, b"") + publish(1, b"", b"q", b"\0\0")
    + method(1, 90, 20, b"") + publish(1, b"", b"q", b"\0\0") + method(1, 90, 30, b""),
    "session-crossing-closes": b"\x00" + publish(1, b"missing", b"k", b"\0\0") + method(1, 20, 40, b"\0\xc8\0\0\0\0\0")
    + method(1, 20, 41, b"") + method(1, 20, 10, b"\0") + qdeclare(1, b"again"),
    "session-close-then-more": b"\x00" + method(0, 10, 50, b"\0\xc8\0\0\0\0\0") + publish(1, b"", b"q", b"\0\0"),
    "session-deep-headers": b"\x00" + qdeclare(1, b"q") + method(1, 60, 20, b"\0\0\x01q\x01c\x02" + table([]))
    + publish(1, b"", b"q", struct.pack(">H", HEADERS) + table([(b"deep", DEEP_T), (b"BCC", array([longstr(b"q")]))])),
    "session-deep-arguments": b"\x00" + qdeclare(1, b"q") + method(1, 50, 20, b"\0\0\x01q\x0bamq.headers\0\0" + table([(b"x-match", longstr(b"any")), (b"a", DEEP_A)])),
    "handshake-deep-start-ok": b"\x01AMQP\x00\x00\x09\x01" + SEEDS["start-ok-deep-client-properties"],
    "handshake-bad-tune": b"\x01AMQP\x00\x00\x09\x01" + SEEDS["start-ok-empty"].replace(b"\x05PLAIN\0\0\0\0", b"\x05PLAIN\0\0\0\x0c\0guest\0guest")
    + method(0, 10, 31, struct.pack(">HIH", 4096, 131072, 0)),
}

for target, seeds in (("frames", SEEDS), ("connection", CONNECTION)):
    out = os.path.join(CORPUS, target)
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        os.remove(os.path.join(out, name))
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(seeds)} seeds to {out}")
