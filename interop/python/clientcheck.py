"""Shared by the Python per-client check programs (pika_blocking/checks.py,
pika_select/checks.py, aio_pika/checks.py).

Each program runs one named check (its first argument) against $AMQP_URL and
exits 0 if it held. On failure it prints the reason as its last line and
exits 1; interop/runner.py shows that line. Each check declares its own
uniquely named queues and exchanges and deletes them (or makes them
exclusive/auto-delete), so checks can run against a shared broker.

The same checks exist for every client in the suite (see interop/README.md):
the values below are the ones every language uses.
"""

from __future__ import annotations

import datetime
import decimal
import os
import signal
import ssl
import sys
import traceback
import urllib.parse
import uuid
from contextlib import suppress as contextlib_suppress
from typing import Any, Callable

# Below the runner's per-scenario timeout, so a stuck check says where it was.
DEADLINE_S = int(os.environ.get("INTEROP_CHECK_DEADLINE", "25"))

ONE_MIB = 1 << 20
HEARTBEAT_S = 1  # negotiated heartbeat for the heartbeat check
PAUSE_S = 5  # the pause, > 2 heartbeat intervals (and > RabbitMQ's 2-interval timeout)


class Failed(Exception):
    """A check failed; the message is the one-line reason."""


def check(condition: Any, reason: str) -> None:
    if not condition:
        raise Failed(reason)


def amqp_url() -> str:
    url = os.environ.get("AMQP_URL")
    if not url:
        raise SystemExit("AMQP_URL is not set (e.g. amqp://guest:guest@127.0.0.1:5672/%2f)")
    return url


def url_parts() -> dict[str, Any]:
    parsed = urllib.parse.urlparse(amqp_url())
    vhost = urllib.parse.unquote(parsed.path[1:]) if len(parsed.path) > 1 else "/"
    return {
        "host": parsed.hostname or "127.0.0.1",
        "port": parsed.port or 5672,
        "user": urllib.parse.unquote(parsed.username or "guest"),
        "password": urllib.parse.unquote(parsed.password or "guest"),
        "vhost": vhost,
    }


def wrong_password_url() -> str:
    p = url_parts()
    return (f"amqp://{urllib.parse.quote(p['user'], safe='')}:"
            f"{urllib.parse.quote(p['password'] + '-wrong', safe='')}@{p['host']}:{p['port']}/"
            f"{urllib.parse.quote(p['vhost'], safe='')}")


class Skipped(Exception):
    """The check cannot run here (e.g. no AMQPS_URL); exits SKIP_EXIT."""


SKIP_EXIT = 77  # runner.py counts this exit status as skipped


def tls_env() -> dict[str, str]:
    """The TLS scenarios' settings (run.sh exports them; see interop/README.md):
    url (amqps://...), ca, other_ca, cert, key, external_user."""
    names = {"url": "AMQPS_URL", "ca": "TLS_CA_FILE", "other_ca": "TLS_OTHER_CA_FILE",
             "cert": "TLS_CLIENT_CERT", "key": "TLS_CLIENT_KEY",
             "external_user": "TLS_EXTERNAL_USER"}
    if not os.environ.get("AMQPS_URL"):
        raise Skipped("skipped: no AMQPS_URL")
    missing = [var for var in names.values() if not os.environ.get(var)]
    check(not missing, f"AMQPS_URL is set but not {', '.join(missing)}")
    return {key: os.environ[var] for key, var in names.items()}


def clock_env() -> dict[str, str]:
    """The virtual-clock broker run.sh starts (Warren with --clock manual):
    url (amqp://...) and mgmt (its management API, guest/guest)."""
    if not os.environ.get("CLOCK_AMQP_URL"):
        raise Skipped("skipped: no CLOCK_AMQP_URL (a Warren with --clock manual)")
    check(bool(os.environ.get("CLOCK_MGMT_URL")), "CLOCK_AMQP_URL is set but not CLOCK_MGMT_URL")
    return {"url": os.environ["CLOCK_AMQP_URL"], "mgmt": os.environ["CLOCK_MGMT_URL"]}


def management(base: str, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
    """One management API call as guest: (status, decoded JSON body or None)."""
    import base64
    import json
    import urllib.error
    import urllib.request
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        return error.code, None


class FaultBroker:
    """A Warren of the check's own with --allow-fault-injection (restarts and
    alarms hit the whole broker, and the suite's broker is shared): started
    from $WARREN_BIN, in memory, on free loopback ports; stopped by stop(),
    and killed with the check (setpriv --pdeathsig) if it dies first. A
    restart is simulated in-process, so durable queues and persistent
    messages survive it in memory too. Skipped without WARREN_BIN (e.g.
    against a real RabbitMQ: fault injection is Warren's own)."""

    def __init__(self) -> None:
        import shutil
        import socket
        import subprocess
        import tempfile
        import time
        binary = os.environ.get("WARREN_BIN")
        if not binary:
            raise Skipped("skipped: no WARREN_BIN (fault injection needs a Warren of its own)")
        check(os.access(binary, os.X_OK), f"WARREN_BIN={binary} is not executable")
        self._dir = tempfile.mkdtemp(prefix="warren-fault.")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            mgmt_port = s.getsockname()[1]
        port_file = os.path.join(self._dir, "port")
        log = open(os.path.join(self._dir, "broker.log"), "wb")
        prefix = ["setpriv", "--pdeathsig", "TERM"] if shutil.which("setpriv") else []
        self._proc = subprocess.Popen(
            [*prefix, binary, "--in-memory", "--allow-fault-injection", "--port", "0",
             "--port-file", port_file, "--bind", "127.0.0.1", "--management-port", str(mgmt_port),
             "--prometheus-port", "0"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.mgmt = f"http://127.0.0.1:{mgmt_port}"
        deadline = time.monotonic() + 10
        port = ""
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            with contextlib_suppress(OSError):
                port = open(port_file).read().strip()
            if port.isdigit():
                break
            time.sleep(0.05)
        if not port.isdigit():
            tail = open(os.path.join(self._dir, "broker.log"), errors="replace").read()[-500:]
            self.stop()
            raise Failed(f"the fault broker did not start: {tail!r}")
        self.port = int(port)
        self.url = f"amqp://guest:guest@127.0.0.1:{port}/%2f"
        # The management listener may come up a moment after the AMQP one.
        while time.monotonic() < deadline:
            with contextlib_suppress(OSError):
                if management(self.mgmt, "GET", "/api/warren/faults")[0] == 200:
                    return
            time.sleep(0.05)
        self.stop()
        raise Failed(f"the fault broker's management API at {self.mgmt} did not answer")

    def fault(self, path: str, body: dict | None = None, expect: int = 204) -> Any:
        """POST /api/warren/faults/<path>; checks the status, returns the JSON body."""
        status, reply = management(self.mgmt, "POST", "/api/warren/faults/" + path, body or {})
        check(status == expect, f"POST /api/warren/faults/{path} answered {status}, expected {expect}")
        return reply

    def management_json(self, path: str) -> Any:
        """GET a management API path: its JSON, or None unless 200."""
        status, reply = management(self.mgmt, "GET", path)
        return reply if status == 200 else None

    def queue_messages(self, queue: str) -> Any:
        return (self.management_json(f"/api/queues/%2F/{urllib.parse.quote(queue, safe='')}") or {}).get("messages")

    def queue_consumers(self, queue: str) -> Any:
        return (self.management_json(f"/api/queues/%2F/{urllib.parse.quote(queue, safe='')}") or {}).get("consumers")

    def stop(self) -> None:
        import shutil
        import subprocess
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "FaultBroker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def tls_parts() -> dict[str, Any]:
    parsed = urllib.parse.urlparse(tls_env()["url"])
    return {"host": parsed.hostname or "localhost", "port": parsed.port or 5671,
            "user": urllib.parse.unquote(parsed.username or "guest"),
            "password": urllib.parse.unquote(parsed.password or "guest")}


def is_verify_error(error: BaseException) -> bool:
    """Whether error (or what caused it) is a certificate verification failure."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(error):
            return True
        if any(isinstance(a, BaseException) and is_verify_error(a) for a in error.args):
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False


def unique(kind: str) -> str:
    return f"interop.{kind}.{uuid.uuid4().hex[:12]}"


def bodies() -> dict[str, bytes]:
    """Bodies whose bytes must come back exactly: empty, one byte, and
    1 MiB of random bytes (many frames at any frame_max)."""
    return {"empty": b"", "one byte": b"\x00", "1 MiB": os.urandom(ONE_MIB)}


def describe(body: bytes) -> str:
    return f"{len(body)} bytes" + (f" starting {body[:8].hex()}" if body else "")


def properties() -> dict[str, Any]:
    """Every basic property except headers (see headers())."""
    return {
        "content_type": "application/x-interop",
        "content_encoding": "x-identity",
        "delivery_mode": 2,
        "priority": 5,
        "correlation_id": "corr-7f3a",
        "reply_to": "interop.reply-to",
        "expiration": "60000",
        "message_id": "msg-0001",
        "timestamp": 1700000000,
        "type": "interop.event",
        "user_id": url_parts()["user"],  # RabbitMQ insists it is the connection's user
        "app_id": "interop-suite",
    }


def headers(floats: bool = True, byte_array: type = bytes) -> dict[str, Any]:
    """A headers table with each value type Python clients can encode.
    pika and aiormq pick the integer width themselves (32 bits when it fits,
    else 64); the Go, Node and PHP checks send every width explicitly.
    pika 1.3.2 cannot encode floats (UnsupportedAMQPFieldException); pamqp
    (aio-pika) encodes a bytearray, not bytes, as a byte array ('x')."""
    table = {
        "string": "h\u00e9llo, w\u00f6rld",
        "empty-string": "",
        "true": True,
        "false": False,
        "int": 7,
        "int-negative": -2147483648,
        "int-large": 1234567890123,
        "int-negative-large": -1234567890123,
        "float": 1.5,
        "decimal": decimal.Decimal("3.14"),
        "timestamp": datetime.datetime(2023, 11, 14, 22, 13, 20),
        "bytes": byte_array(b"\x00\x01\xfe\xff"),
        "void": None,
        "array": [1, "two", True, {"k": "v"}, [3, 4]],
        "nested": {"level1": {"level2": {"n": 42, "s": "deep"}}, "list": ["a", 1]},
    }
    if not floats:
        del table["float"]
    return table


def compare(name: str, got: Any, want: Any) -> None:
    same_type = isinstance(got, type(want)) and isinstance(got, bool) == isinstance(want, bool)
    check(got == want and same_type,
          f"{name}: got {got!r} ({type(got).__name__}), sent {want!r} ({type(want).__name__})")


def compare_headers(got: Any, want: dict[str, Any], normalise: Callable[[Any], Any] = lambda v: v) -> None:
    check(isinstance(got, dict), f"headers: got {got!r}")
    check(sorted(got) == sorted(want), f"header keys: got {sorted(got)}, sent {sorted(want)}")
    for key, value in want.items():
        compare(f"header {key!r}", normalise(got[key]), value)


def run(checks: dict[str, Callable[[], Any]]) -> None:
    """Entry point: run the check named by argv[1] under DEADLINE_S."""
    if len(sys.argv) != 2 or sys.argv[1] not in checks:
        raise SystemExit(f"usage: {sys.argv[0]} {{{','.join(checks)}}}")
    name = sys.argv[1]

    def on_deadline(signum: int, frame: Any) -> None:
        where = [e for e in traceback.extract_stack(frame)
                 if e.filename == sys.argv[0] or e.filename.endswith("checks.py")]
        at = f" at line {where[-1].lineno} ({where[-1].line})" if where else ""
        print(f"{name}: still running after its {DEADLINE_S}s deadline{at}", flush=True)
        os._exit(3)

    signal.signal(signal.SIGALRM, on_deadline)
    signal.alarm(DEADLINE_S)
    try:
        result = checks[name]()
    except Skipped as why:
        print(f"{name}: {why}", flush=True)
        os._exit(SKIP_EXIT)
    except Failed as error:
        print(f"{name}: {error}", flush=True)
        os._exit(1)  # no interpreter teardown: its warnings would bury the reason
    except Exception as error:  # an unexpected exception from the client
        traceback.print_exc()
        sys.stderr.flush()
        print(f"{name}: {type(error).__name__}: {error}", flush=True)
        os._exit(1)
    print(f"{name}: ok" + (f" ({result})" if result else ""), flush=True)
