"""The client checks with rabbitmq-c, through its command-line tools
(Debian's amqp-tools: amqp-declare-queue, amqp-publish, amqp-consume,
amqp-get, amqp-delete-queue). Usage: checks.py CHECK

The tools are what rabbitmq-c users script with, so each check runs them as
its users would and looks at their output and exit status. Where the tools
cannot show something (properties on delivery, a binding being in place,
unacked counts), a pika connection observes the broker: pika is only the
witness, every action under test is the C client's.

Not expressible through the tools (they have no option for it): exchange
declaration (the predeclared amq.* exchanges are used), publisher confirms,
mandatory/returns, nack/reject, consumer cancel.
"""

import os
import subprocess
import tempfile
import time
from pathlib import Path

import pika

from clientcheck import (HEARTBEAT_S, PAUSE_S, Failed, amqp_url, check, describe, run,
                         unique, url_parts, wrong_password_url)

TOOL_TIMEOUT_S = 10


def url_args(url=None):
    return ["--url", url or amqp_url()]


def tool(name, *args, stdin=b"", url=None, expect_ok=True):
    """Run one amqp-tools command; returns (exit code, stdout bytes, stderr text)."""
    proc = subprocess.run([name, *url_args(url), *args], input=stdin, capture_output=True,
                          timeout=TOOL_TIMEOUT_S)
    err = proc.stderr.decode(errors="replace").strip()
    if expect_ok and proc.returncode != 0:
        raise Failed(f"{name} {' '.join(args)} exited {proc.returncode}: {err}")
    return proc.returncode, proc.stdout, err


def observer():
    params = pika.URLParameters(amqp_url())
    params.socket_timeout = 5
    return pika.BlockingConnection(params)


def declare(name=""):
    _, out, _ = tool("amqp-declare-queue", "-q", name)
    return out.decode().strip()


def get(queue):
    """amqp-get: the body, or None when the queue is empty (exit status 2)."""
    code, out, err = tool("amqp-get", "-q", queue, expect_ok=False)
    if code == 2 and not err:
        return None
    check(code == 0, f"amqp-get -q {queue} exited {code}: {err}")
    return out


def c_connect():
    p = url_parts()
    proc = subprocess.run(
        ["amqp-declare-queue", "--server", p["host"], "--port", str(p["port"]), "--vhost", "/",
         "--username", p["user"], "--password", p["password"], "-q", ""],
        capture_output=True, timeout=TOOL_TIMEOUT_S)
    check(proc.returncode == 0, f"amqp-declare-queue exited {proc.returncode}: {proc.stderr.decode()}")
    name = proc.stdout.decode().strip()
    check(name.startswith("amq.gen-"), f"server-named queue is {name!r}")
    tool("amqp-delete-queue", "-q", name)
    return f"declared {name}"


def c_wrong_password():
    code, _, err = tool("amqp-declare-queue", "-q", unique("never"), url=wrong_password_url(),
                        expect_ok=False)
    check(code != 0, "amqp-declare-queue succeeded with a wrong password")
    check("server connection error 403" in err and "ACCESS_REFUSED" in err,
          f"expected 'logging in to AMQP server: server connection error 403, message: "
          f"ACCESS_REFUSED ...', got: {err}")
    return err


def consume_bound(exchange, key, count, probe_key):
    """Start amqp-consume on an exclusive queue bound to exchange/key, and
    wait (with mandatory probes, via pika) until the binding is in place.
    The probe is the consumer's first message."""
    proc = subprocess.Popen(["amqp-consume", *url_args(), "-e", exchange, "-r", key, "-x",
                             "-c", str(count), "--", "sh", "-c", "cat; echo"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    conn = observer()
    ch = conn.channel()
    ch.confirm_delivery()
    deadline = time.monotonic() + 5
    while True:
        try:
            ch.basic_publish(exchange, probe_key, b"probe", mandatory=True)
            break
        except pika.exceptions.UnroutableError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise Failed(f"amqp-consume -e {exchange} -r {key!r} did not bind its queue: "
                             f"{proc.stderr.read().decode()}")
            time.sleep(0.05)
    conn.close()
    return proc


def c_exchange_types():
    cases = [  # exchange, binding key, probe key, [(routing key, body, headers)], expected
        ("amq.direct", "black", "black", [("white", "direct-miss"), ("black", "direct-hit")], ["direct-hit"]),
        # amqp-consume 0.11 binds nothing for -r '' and crashes without -r:
        # fanout and headers bindings get a key they ignore.
        ("amq.fanout", "ignored", "any", [("other", "fanout")], ["fanout"]),
        ("amq.topic", "*.orange.#", "probe.orange", [("quick.brown.fox", "topic-miss"),
                                                       ("quick.orange.rabbit.x", "topic-hit")], ["topic-hit"]),
        # amqp-consume cannot give binding arguments: an empty header
        # binding matches every message.
        ("amq.headers", "ignored", "", [("", "headers")], ["headers"]),
    ]
    for exchange, key, probe_key, publishes, want in cases:
        consumer = consume_bound(exchange, key, 1 + len(want), probe_key)
        for routing_key, body in publishes:
            tool("amqp-publish", "-e", exchange, "-r", routing_key, "-b", body, "-H", "format: pdf")
        try:
            out, err = consumer.communicate(timeout=TOOL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            consumer.kill()
            raise Failed(f"amqp-consume on {exchange} did not get {want}")
        got = out.decode().split("\n")[:-1]
        check(got == ["probe", *want], f"{exchange} bound with {key!r}: consumer got {got[1:]}, "
                                       f"expected {want}")


def c_bodies():
    q = declare(unique("bodies"))
    try:
        for label, body in {"empty": b"", "one byte": b"\x00", "1 MiB": os.urandom(1 << 20)}.items():
            tool("amqp-publish", "-r", q, stdin=body)  # the body from standard input
            got = get(q)
            check(got == body, f"{label} body: got {describe(got) if got is not None else 'nothing'}, "
                               f"sent {describe(body)}")
    finally:
        tool("amqp-delete-queue", "-q", q, expect_ok=False)


def c_properties():
    """The properties amqp-publish can set, as a pika consumer sees them."""
    q = declare(unique("props"))
    try:
        tool("amqp-publish", "-r", q, "-b", "props", "-C", "application/x-interop",
             "-E", "x-identity", "-p", "-t", "interop.reply-to",
             "-H", "string: h\u00e9llo", "-H", "other: two words")
        conn = observer()
        method, props, body = conn.channel().basic_get(q, auto_ack=True)
        conn.close()
        check(method is not None, "the message did not arrive")
        got = {"content_type": props.content_type, "content_encoding": props.content_encoding,
               "delivery_mode": props.delivery_mode, "reply_to": props.reply_to,
               "headers": props.headers, "body": body}
        want = {"content_type": "application/x-interop", "content_encoding": "x-identity",
                "delivery_mode": 2, "reply_to": "interop.reply-to",
                "headers": {"string": "h\u00e9llo", "other": "two words"}, "body": b"props"}
        for key, value in want.items():
            check(got[key] == value, f"{key}: got {got[key]!r}, sent {value!r}")
    finally:
        tool("amqp-delete-queue", "-q", q, expect_ok=False)


def c_basic_get():
    q = declare(unique("get"))
    try:
        for body in ("first", "second"):
            tool("amqp-publish", "-r", q, "-b", body)
        check(get(q) == b"first", "first amqp-get did not return 'first'")
        check(get(q) == b"second", "second amqp-get did not return 'second'")
        check(get(q) is None, "amqp-get on an empty queue did not exit with status 2")
    finally:
        tool("amqp-delete-queue", "-q", q, expect_ok=False)


def c_consume():
    """amqp-consume -c N runs a command per message, acking after each."""
    q = declare(unique("consume"))
    try:
        for i in range(5):
            tool("amqp-publish", "-r", q, "-b", f"m{i}")
        proc = subprocess.run(["amqp-consume", *url_args(), "-q", q, "-c", "5", "--", "sh", "-c", "cat; echo"],
                              capture_output=True, timeout=TOOL_TIMEOUT_S)
        check(proc.returncode == 0, f"amqp-consume exited {proc.returncode}: {proc.stderr.decode()}")
        got = proc.stdout.decode().split("\n")[:-1]
        check(got == [f"m{i}" for i in range(5)], f"amqp-consume got {got}")
        _, out, _ = tool("amqp-delete-queue", "-q", q)
        check(out.decode().strip() == "0", f"{out.decode().strip()} messages left after consuming "
                                           "(all should have been acked)")
    finally:
        tool("amqp-delete-queue", "-q", q, expect_ok=False)


def c_prefetch():
    """amqp-consume -p 3: while its command is stuck on the first message,
    the broker has delivered exactly 3, so 2 of 5 are still ready."""
    q = declare(unique("prefetch"))
    try:
        for i in range(5):
            tool("amqp-publish", "-r", q, "-b", f"m{i}")
        with tempfile.TemporaryDirectory() as tmp:
            running, go = Path(tmp, "running"), Path(tmp, "go")
            script = (f"cat >/dev/null; touch {running}; "
                      f"while [ ! -e {go} ]; do sleep 0.02; done")
            proc = subprocess.Popen(["amqp-consume", *url_args(), "-q", q, "-p", "3", "-c", "5",
                                     "--", "sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                deadline = time.monotonic() + 5
                while not running.exists():
                    check(time.monotonic() < deadline and proc.poll() is None,
                          f"amqp-consume did not start its command: {proc.stderr.read1().decode() if proc.poll() is not None else ''}")
                    time.sleep(0.02)
                time.sleep(0.3)  # let any excess deliveries arrive
                conn = observer()
                frame = conn.channel().queue_declare(q, passive=True)
                conn.close()
                ready = frame.method.message_count
                check(ready == 2, f"with prefetch 3 and 5 messages, {ready} ready (expected 2, "
                                  f"i.e. 3 delivered unacked)")
                go.touch()
                _, err = proc.communicate(timeout=TOOL_TIMEOUT_S)
                check(proc.returncode == 0, f"amqp-consume exited {proc.returncode}: {err.decode()}")
            finally:
                if proc.poll() is None:
                    proc.kill()
    finally:
        tool("amqp-delete-queue", "-q", q, expect_ok=False)


def c_heartbeat():
    """amqp-consume --heartbeat=1 waits idle for 5 s, then gets a message."""
    q = declare(unique("heartbeat"))
    try:
        proc = subprocess.Popen(["amqp-consume", *url_args(), f"--heartbeat={HEARTBEAT_S}", "-q", q,
                                 "-c", "1", "--", "cat"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(PAUSE_S)
        if proc.poll() is not None:
            raise Failed(f"amqp-consume exited during the pause ({proc.returncode}): "
                         f"{proc.stderr.read().decode().strip()}")
        tool("amqp-publish", "-r", q, "-b", "alive")
        try:
            out, err = proc.communicate(timeout=TOOL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise Failed("amqp-consume did not get the message published after the pause")
        check(proc.returncode == 0 and out == b"alive",
              f"after the pause amqp-consume exited {proc.returncode} with {out!r}: {err.decode()}")
        return f"{PAUSE_S}s idle with a {HEARTBEAT_S}s heartbeat"
    finally:
        tool("amqp-delete-queue", "-q", q, expect_ok=False)


def c_channel_error():
    """amqp-get on a missing queue: basic.get gets channel.close 404, which
    rabbitmq-c reports as a server channel error; the broker goes on."""
    code, _, err = tool("amqp-get", "-q", unique("missing"), expect_ok=False)
    check(code not in (0, 2), f"amqp-get on a missing queue exited {code}")
    check("server channel error 404" in err and "NOT_FOUND" in err,
          f"expected 'server channel error 404, message: NOT_FOUND ...', got: {err}")
    name = declare()
    check(name.startswith("amq.gen-"), "the broker did not serve the next command")
    tool("amqp-delete-queue", "-q", name)
    return err


CHECKS = {name[2:]: fn for name, fn in globals().items() if name.startswith("c_")}

if __name__ == "__main__":
    run(CHECKS)
