"""Shared plumbing for the Python interop scenarios.

Two kinds of programs use this module:

* role programs (send.py, worker.py, ...): the RabbitMQ tutorial programs,
  each a separate process talking to the broker with pika. They report what
  they see to the driver as JSON lines on stdout (see `emit`).
* scenario drivers (<scenario>/scenario.py): spawn role programs (see
  `Child`), wait for their reports and assert on them. `run_scenario` turns
  a failed check into a non-zero exit with a one-line reason, which is what
  interop/runner.py reports.

Everything that waits is bounded, so a broker that stops answering makes
a scenario fail instead of hang: drivers' waits take timeouts, and both
drivers and role programs have a hard deadline (pika's blocking calls have
no timeout of their own, e.g. a queue_declare whose DeclareOk never comes).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable

import pika

# Hard deadlines (whole seconds, for signal.alarm). A role program outlives
# its driver's waits, so normally the driver reports the failure first; the
# role's deadline makes sure an orphaned role still exits by itself. The
# driver's deadline stays below the runner's per-scenario timeout (45s in
# interop.toml) so a stuck driver can still say where it was stuck.
ROLE_DEADLINE_S = int(os.environ.get("INTEROP_ROLE_DEADLINE", "40"))
DRIVER_DEADLINE_S = int(os.environ.get("INTEROP_DRIVER_DEADLINE", "40"))

# The default wait for any single expected event in a driver.
DEFAULT_WAIT_S = 15.0

# Body of the message that tells a subscriber it has seen everything.
END_MARKER = b"__interop_end__"


class ScenarioFailed(Exception):
    """A check failed; the message is the one-line reason shown by the runner."""


# --------------------------------------------------------------------------
# Used by role programs and drivers alike
# --------------------------------------------------------------------------

def amqp_url() -> str:
    url = os.environ.get("AMQP_URL")
    if not url:
        raise SystemExit("AMQP_URL is not set (e.g. amqp://guest:guest@127.0.0.1:5672/%2f)")
    return url


def connect(handshake_timeout: float = 5) -> pika.BlockingConnection:
    params = pika.URLParameters(amqp_url())
    # Bound the TCP connect and the AMQP handshake so a dead broker fails fast.
    params.socket_timeout = handshake_timeout
    params.stack_timeout = handshake_timeout
    params.blocked_connection_timeout = 10
    return pika.BlockingConnection(params)


def unique(kind: str) -> str:
    """A queue/exchange name no other run uses, so a shared broker is fine."""
    return f"interop.{kind}.{uuid.uuid4().hex[:12]}"


def check(condition: bool, reason: str) -> None:
    if not condition:
        raise ScenarioFailed(reason)


def _where(frame: Any) -> str:
    """Where a process is stuck, as the innermost line of the scenario or
    role program plus the innermost harness line under it, e.g.
    'scenario.py:40 in main > harness.py:300 in send_end_markers'
    (pika's internals would say little)."""
    harness = Path(__file__).resolve()
    ours = [entry for entry in traceback.extract_stack(frame)
            if Path(entry.filename).resolve().is_relative_to(harness.parent)]
    callers = [entry for entry in ours if Path(entry.filename).resolve() != harness]
    picked = callers[-1:]
    if ours and ours[-1] not in picked:
        picked.append(ours[-1])
    return " > ".join(f"{Path(e.filename).name}:{e.lineno} in {e.name}" for e in picked) or "unknown"


# --------------------------------------------------------------------------
# Role-program side
# --------------------------------------------------------------------------

def emit(event: str, **fields: Any) -> None:
    """Report one event to the driver (one JSON object per stdout line)."""
    print(json.dumps({"event": event, **fields}), flush=True)


def text(body: bytes) -> str:
    return body.decode("utf-8")


def run_role(main: Callable[[], None]) -> None:
    """Entry point of a role program: run main() under a hard deadline.

    When the deadline hits, report 'timeout' (with where we were stuck) and
    exit at once, whatever pika call we are blocked in.
    """

    def on_deadline(signum: int, frame: Any) -> None:
        emit("timeout", after_s=ROLE_DEADLINE_S, stuck_at=_where(frame))
        os._exit(3)

    def on_where(signum: int, frame: Any) -> None:
        emit("where", at=_where(frame))

    signal.signal(signal.SIGALRM, on_deadline)
    signal.signal(signal.SIGUSR1, on_where)  # see Child.stuck_at()
    signal.alarm(ROLE_DEADLINE_S)
    main()


def read_command() -> str | None:
    """Read one line the driver wrote to our stdin; None if the driver is gone."""
    line = sys.stdin.readline()
    return line.strip() if line else None


def consume_until_end(connection: pika.BlockingConnection, channel: Any, queue: str) -> None:
    """Subscriber loop shared by the exchange tutorials: report each message
    as 'received' until the driver's END_MARKER arrives (see send_end_markers).

    Reports 'ready' (with the queue name, which may be server-named) once the
    consumer is registered; the caller must have bound the queue already.
    """

    def callback(ch, method, properties, body):
        if body == END_MARKER:
            emit("end")
            ch.stop_consuming()
            return
        emit("received", body=text(body), routing_key=method.routing_key,
             exchange=method.exchange)

    channel.basic_consume(queue=queue, on_message_callback=callback, auto_ack=True)
    emit("ready", queue=queue)
    channel.start_consuming()


# --------------------------------------------------------------------------
# Driver side
# --------------------------------------------------------------------------

_children: list["Child"] = []


class Child:
    """A role program running as a separate process.

    Its stdout JSON events are collected by a reader thread so the driver can
    wait for them with a timeout; its stderr is kept for failure messages.
    """

    def __init__(self, name: str, script: Path, *args: str) -> None:
        self.name = name
        self.events: list[dict[str, Any]] = []
        self._seen = 0  # events[:_seen] were already looked at by expect()
        self._eof = False
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stderr: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, str(script), *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, bufsize=1,
        )
        self._out_thread = threading.Thread(target=self._read_stdout, daemon=True)
        self._err_thread = threading.Thread(target=self._read_stderr, daemon=True)
        self._out_thread.start()
        self._err_thread.start()
        _children.append(self)

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                # Stray prints are not events, but keep them for diagnostics.
                self._stderr.append(f"(stdout) {line}")
                continue
            self._inbox.put(event)
        self._inbox.put(None)  # EOF: the process is gone

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line.rstrip())

    def _pump(self, timeout: float) -> bool:
        """Move one event from the reader thread into self.events.
        Returns False on timeout or once stdout has hit EOF."""
        if self._eof:
            return False
        try:
            event = self._inbox.get(timeout=max(timeout, 0))
        except queue.Empty:
            return False
        if event is None:
            self._eof = True
            return False
        self.events.append(event)
        return True

    def diagnostics(self) -> str:
        """The gist of why it failed: its last stderr line (for a traceback,
        the exception), shortened to fit a one-line reason."""
        lines = [line.strip() for line in self._stderr if line.strip()]
        if not lines:
            return "no stderr output"
        return lines[-1] if len(lines[-1]) <= 300 else lines[-1][:297] + "..."

    def stuck_at(self) -> str:
        """Ask a still-running child which line of ours it is blocked in, to
        say more in a failure than "did not answer"."""
        if self.proc.poll() is not None:
            return "it has exited"
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            if self.events and self.events[-1]["event"] == "where":
                return f"it is at {self.events[-1]['at']}"
            self._pump(0.05)
        return "it did not say where it is"

    def timeout_reason(self) -> str | None:
        for event in self.events:
            if event["event"] == "timeout":
                return (f"{self.name} hit its {event['after_s']}s deadline, "
                        f"stuck at {event['stuck_at']}")
        return None

    def expect(self, event: str, timeout: float = DEFAULT_WAIT_S) -> dict[str, Any]:
        """Wait for the next `event` this child reports after the ones already
        returned. A 'timeout' event from the child fails immediately."""
        deadline = time.monotonic() + timeout
        while True:
            while self._seen < len(self.events):
                got = self.events[self._seen]
                self._seen += 1
                if got["event"] == event:
                    return got
                if got["event"] == "timeout":
                    raise ScenarioFailed(f"{self.timeout_reason()} before reporting '{event}'")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ScenarioFailed(f"{self.name} did not report '{event}' within "
                                     f"{timeout:.0f}s; {self.stuck_at()}")
            if not self._pump(remaining) and self._eof:
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass  # closed stdout but still running; report it anyway
                self._err_thread.join(1)
                raise ScenarioFailed(f"{self.name} exited (code {self.proc.returncode}) before "
                                     f"reporting '{event}': {self.diagnostics()}")

    def send(self, line: str) -> None:
        """Write one command line to the child's stdin."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = DEFAULT_WAIT_S) -> list[dict[str, Any]]:
        """Wait for the child to exit by itself with status 0; return all its events."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            where = self.stuck_at()
            self.kill()
            raise ScenarioFailed(f"{self.name} did not exit within {timeout:.0f}s; {where}")
        self._out_thread.join(5)
        self._err_thread.join(5)
        while self._pump(0):
            pass
        if self.timeout_reason():
            raise ScenarioFailed(self.timeout_reason())
        if self.proc.returncode != 0:
            raise ScenarioFailed(f"{self.name} exited with code {self.proc.returncode}: "
                                 f"{self.diagnostics()}")
        return self.events

    def all(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == event]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def spawn(name: str, script: str, *args: str) -> Child:
    """Start the role program `script` that sits next to the calling driver."""
    caller = Path(sys._getframe(1).f_globals["__file__"]).resolve().parent
    return Child(name, caller / script, *args)


def wait_until(children: list[Child], condition: Callable[[], bool], what: str,
               timeout: float = DEFAULT_WAIT_S) -> None:
    """Collect events from several children until condition() holds.

    For waits that depend on which of several processes does something
    (e.g. whichever worker the broker picked); condition() reads the
    children's .events lists.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise ScenarioFailed(f"timed out after {timeout:.0f}s waiting until {what}")
        if all(child._eof for child in children):
            raise ScenarioFailed(f"every process exited before {what}: "
                                 + "; ".join(f"{c.name}: {c.diagnostics()}" for c in children))
        for child in children:
            while child._pump(0.02):  # drain what is there, then poll the next one
                pass


def finish_all(*children: Child, timeout: float = DEFAULT_WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    for child in children:
        child.finish(max(deadline - time.monotonic(), 0.1))


def send_end_markers(queues: list[str]) -> None:
    """Put an end marker straight into each queue via the default exchange.

    Queues are FIFO, so once the emitter's publishes are confirmed (they are
    routed) a marker published afterwards is delivered after all of them: a
    subscriber that reads up to the marker has seen everything meant for it,
    and nothing extra can still be on its way. That makes "got exactly these
    messages" checkable without waiting for silence.
    """
    connection = connect()
    try:
        channel = connection.channel()
        channel.confirm_delivery()  # so a lost marker fails here, not later
        for name in queues:
            channel.basic_publish(exchange="", routing_key=name, body=END_MARKER)
    finally:
        connection.close()


def cleanup(queues: Iterable[str] = (), exchanges: Iterable[str] = ()) -> None:
    """Best-effort removal of durable/non-auto-delete objects a run created,
    so repeated runs against a shared broker don't pile them up.

    Runs in a thread given a few seconds: after a failure the broker may be
    the thing that stopped answering, and pika's calls would wait forever.
    """

    def delete() -> None:
        try:
            connection = connect(handshake_timeout=2)
            for name in queues:
                connection.channel().queue_delete(name)
            for name in exchanges:
                connection.channel().exchange_delete(name)
            connection.close()
        except Exception:
            pass

    worker = threading.Thread(target=delete, daemon=True)
    worker.start()
    worker.join(5)


def run_scenario(main: Callable[[], None]) -> None:
    """Run a driver's main() under DRIVER_DEADLINE_S: exit 0 on success; on
    failure print the children's stderr (context for the runner) and then
    the reason as the last line, and exit 1. Children are always killed."""

    def on_deadline(signum: int, frame: Any) -> None:
        raise ScenarioFailed(f"scenario passed its {DRIVER_DEADLINE_S}s deadline, "
                             f"stuck at {_where(frame)}")

    signal.signal(signal.SIGALRM, on_deadline)
    signal.alarm(DRIVER_DEADLINE_S)
    try:
        main()
    except Exception as error:
        signal.alarm(0)  # cleanup and reporting must not be interrupted
        for child in _children:
            for line in child._stderr:
                print(f"[{child.name}] {line}", file=sys.stderr)
        if isinstance(error, ScenarioFailed):
            reason = str(error)
        else:  # a bug, or a broker reply pika did not expect
            traceback.print_exc()
            reason = f"{type(error).__name__}: {error}"
        print(reason, file=sys.stderr)
        sys.exit(1)
    finally:
        signal.alarm(0)
        for child in _children:
            child.kill()
