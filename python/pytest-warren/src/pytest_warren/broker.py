"""Start and drive one Warren process: in memory, on free loopback ports, on a
virtual clock, with fault injection on. Standard library only."""

from __future__ import annotations

import atexit
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Dict, List, Optional
from urllib.parse import quote

__all__ = ["Faults", "WarrenBroker", "WarrenError", "find_binary"]

_EXE = "warren.exe" if os.name == "nt" else "warren"


class WarrenError(RuntimeError):
    """The broker could not be started, or an HTTP call to it failed.

    ``status`` is the HTTP status of a failed call (None when it is a start-up
    failure) and ``body`` what the broker answered."""

    def __init__(self, message: str, status: Optional[int] = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def find_binary(explicit: Optional[str] = None) -> str:
    """The ``warren`` executable: ``explicit`` (``--warren-bin``), else
    ``$WARREN_BIN``, else the one this wheel installed into the interpreter's
    scripts directory (``bin/`` of a venv, even when it is not on PATH), else
    ``warren`` on PATH."""
    for given in (explicit, os.environ.get("WARREN_BIN")):
        if given:
            if not (os.path.isfile(given) and os.access(given, os.X_OK)):
                raise WarrenError(f"pytest-warren: {given!r} is not an executable file")
            return given
    schemes = [None]
    try:
        schemes.append(sysconfig.get_preferred_scheme("user"))
    except (AttributeError, KeyError):  # Python < 3.10
        schemes.append(f"{os.name}_user")
    dirs: List[str] = [os.path.dirname(sys.executable)]
    for scheme in schemes:
        try:
            dirs.append(sysconfig.get_path("scripts", scheme) if scheme else sysconfig.get_path("scripts"))
        except KeyError:
            pass
    for d in dirs:
        candidate = os.path.join(d, _EXE)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    on_path = shutil.which("warren")
    if on_path:
        return on_path
    raise WarrenError(
        "pytest-warren: no warren binary found (looked in "
        + ", ".join(dirs)
        + " and PATH); reinstall the pytest-warren wheel, or pass --warren-bin / set WARREN_BIN"
    )


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """preexec_fn: on Linux, SIGKILL the broker when the thread that started
    it goes away (PR_SET_PDEATHSIG), so a killed pytest leaves no broker."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:
        pass


_live: "set[WarrenBroker]" = set()
_live_lock = threading.Lock()


@atexit.register
def _stop_all() -> None:
    with _live_lock:
        brokers = list(_live)
    for broker in brokers:
        broker.stop()


class WarrenBroker:
    """One Warren process. ``start()`` (or ``with WarrenBroker() as b:``)
    spawns it and returns once it accepts AMQP and answers its management
    API; ``stop()`` ends it.

    - ``url``: ``amqp://guest:guest@127.0.0.1:PORT/%2f`` for pika, kombu,
      Celery's ``broker_url``, aio-pika ...
    - ``port``, ``host``, ``management_url`` (``http://127.0.0.1:PORT``),
      ``management_port``;
    - ``advance(seconds)``: move the virtual clock (TTLs, expiration,
      x-expires) and wait until what fell due has run;
    - ``faults``: fault injection (:class:`Faults`);
    - ``api(path, method="GET", body=None)``: any management API call, as
      guest (an administrator);
    - ``log()``: what the broker has logged so far."""

    def __init__(
        self,
        binary: Optional[str] = None,
        *,
        host: str = "127.0.0.1",
        log_level: str = "info",
        extra_args: Optional[List[str]] = None,
        startup_timeout: float = 20.0,
    ) -> None:
        self.binary = find_binary(binary)
        self.host = host
        self.log_level = log_level
        self.extra_args = list(extra_args or [])
        self.startup_timeout = startup_timeout
        self.user = "guest"
        self.password = "guest"
        self.port: Optional[int] = None
        self.management_port: Optional[int] = None
        self.process: Optional[subprocess.Popen] = None
        self._dir: Optional[str] = None
        self._log_file = None
        self.faults = Faults(self)

    # -- life cycle -------------------------------------------------------

    def start(self) -> "WarrenBroker":
        if self.process is not None:
            return self
        self._dir = tempfile.mkdtemp(prefix="pytest-warren-")
        last: Optional[WarrenError] = None
        # The management port is picked here (Warren's 0 means "off"), so
        # another process may take it first: try again with another.
        for attempt in range(3):
            try:
                self._spawn(attempt)
                return self
            except WarrenError as e:
                last = e
                self._kill()
                if "in use" not in self.log().lower():
                    break
        self._cleanup_dir()
        assert last is not None
        raise last

    def _spawn(self, attempt: int) -> None:
        assert self._dir is not None
        port_file = os.path.join(self._dir, f"port-{attempt}")
        self.management_port = _free_port(self.host)
        args = [
            self.binary,
            "--in-memory",
            "--clock", "manual",
            "--allow-fault-injection",
            "--bind", self.host,
            "--port", "0",
            "--port-file", port_file,
            "--management-port", str(self.management_port),
            "--prometheus-port", "0",
            "--log-level", self.log_level,
            "--default-user", self.user,
            "--default-pass", self.password,
            "--default-vhost", "/",
            *self.extra_args,
        ]
        env = dict(os.environ, NO_COLOR="1")
        for var in ("RABBITMQ_CONFIG_FILE", "WARREN_DATA_DIR", "WARREN_DEFINITIONS", "RABBITMQ_NODE_PORT"):
            env.pop(var, None)
        self._log_path = os.path.join(self._dir, "warren.log")
        self._log_file = open(self._log_path, "ab")
        preexec = None
        if sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread():
            preexec = _die_with_parent
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self._dir,
            preexec_fn=preexec,
        )
        with _live_lock:
            _live.add(self)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.process.poll() is not None:
                raise WarrenError(
                    f"pytest-warren: {self.binary} exited with {self.process.returncode} while starting:\n{self.log()}"
                )
            if self.port is None:
                try:
                    with open(port_file) as f:
                        text = f.read().strip()
                    if text:
                        self.port = int(text)
                except (OSError, ValueError):
                    pass
            if self.port is not None and "Server startup complete" in self.log():
                try:
                    self.api("/api/overview")
                    return
                except (OSError, WarrenError):
                    pass
            if time.monotonic() > deadline:
                raise WarrenError(
                    f"pytest-warren: {self.binary} was not ready after {self.startup_timeout:.0f} s:\n{self.log()}"
                )
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (Warren closes its connections and exits), SIGKILL if it
        has not gone after ``timeout`` seconds. Idempotent."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._kill()
        self._cleanup_dir()

    def _kill(self) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        self.port = None
        with _live_lock:
            _live.discard(self)

    def _cleanup_dir(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> "WarrenBroker":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- addresses --------------------------------------------------------

    @property
    def url(self) -> str:
        """The AMQP URL of the default vhost ``/``."""
        return self.vhost_url("/")

    def vhost_url(self, vhost: str) -> str:
        self._require_started()
        path = quote(vhost, safe="").replace("%2F", "%2f")
        return f"amqp://{quote(self.user, safe='')}:{quote(self.password, safe='')}@{self.host}:{self.port}/{path}"

    @property
    def management_url(self) -> str:
        self._require_started()
        return f"http://{self.host}:{self.management_port}"

    def _require_started(self) -> None:
        if self.port is None:
            raise WarrenError("pytest-warren: the broker is not running (start() it first)")

    def log(self) -> str:
        """Everything the broker has logged (stdout and stderr) so far."""
        try:
            with open(self._log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (AttributeError, OSError):
            return ""

    # -- HTTP ---------------------------------------------------------------

    def api(self, path: str, method: str = "GET", body: Any = None, timeout: float = 30.0) -> Any:
        """Call the management API as guest: ``path`` like ``/api/queues/%2f/jobs``.
        Returns the parsed JSON answer (None for an empty one); raises
        :class:`WarrenError` with the status for a non-2xx answer."""
        if self.management_port is None:
            raise WarrenError("pytest-warren: the broker is not running (start() it first)")
        data = None if body is None else json.dumps(body).encode()
        if data is None and method in ("POST", "PUT"):
            data = b"{}"
        req = urllib.request.Request(
            f"http://{self.host}:{self.management_port}{path}", data=data, method=method
        )
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            text = e.read().decode("utf-8", "replace")
            raise WarrenError(f"{method} {path}: {e.code} {text}", status=e.code, body=text) from None
        return json.loads(raw) if raw.strip() else None

    def advance(self, seconds: float) -> Dict[str, Any]:
        """Move broker time forward by ``seconds`` (fractions allowed) and
        return once everything that fell due has run: TTL expiry,
        dead-lettering, x-expires. Returns the clock's reading
        (``elapsed_ms``, ``now_ms``)."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        return self.api("/api/warren/clock", "POST", {"advance_ms": int(round(seconds * 1000))})

    def clock(self) -> Dict[str, Any]:
        """The virtual clock's reading: ``{"mode", "now_ms", "elapsed_ms"}``."""
        return self.api("/api/warren/clock")

    def __repr__(self) -> str:
        state = f"amqp port {self.port}, management port {self.management_port}" if self.running else "stopped"
        return f"<WarrenBroker {state}>"


def _seg(s: str) -> str:
    return quote(s, safe="")


class Faults:
    """Warren's fault injection (``/api/warren/faults/...``). Connections are
    named by the management API's name or by the ``connection_name`` the
    client sent in its client properties. Every call returns once the broker
    has acted; an unknown connection, channel, queue or consumer raises
    :class:`WarrenError` with status 404."""

    def __init__(self, broker: WarrenBroker) -> None:
        self._broker = broker

    def _post(self, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        return self._broker.api("/api/warren/faults/" + path, "POST", body or {})

    # connections
    def close_connection(self, name: str, code: int = 320, reason: Optional[str] = None) -> None:
        """connection.close with this code (320 CONNECTION_FORCED by default)."""
        body: Dict[str, Any] = {"code": code}
        if reason is not None:
            body["reason"] = reason
        self._post(f"connections/{_seg(name)}/close", body)

    def drop_connection(self, name: str) -> None:
        """Close its socket with no close frame, as when a broker dies."""
        self._post(f"connections/{_seg(name)}/drop")

    def close_channel(self, name: str, channel: int, code: int = 406, reason: Optional[str] = None) -> None:
        """channel.close on one channel; the connection stays."""
        body: Dict[str, Any] = {"code": code}
        if reason is not None:
            body["reason"] = reason
        self._post(f"connections/{_seg(name)}/channels/{int(channel)}/close", body)

    def block(self, name: str, reason: Optional[str] = None) -> None:
        """connection.blocked (once it publishes); its publishes are not read."""
        self._post(f"connections/{_seg(name)}/block", {} if reason is None else {"reason": reason})

    def unblock(self, name: str) -> None:
        self._post(f"connections/{_seg(name)}/unblock")

    def latency(self, name: str, ms: int) -> None:
        """Hold back every write to the connection by ``ms`` (0 clears)."""
        self._post(f"connections/{_seg(name)}/latency", {"ms": int(ms)})

    # queues
    def pause_queue(self, queue: str, vhost: str = "/") -> None:
        """Consumers get nothing until resume_queue (basic.get still works)."""
        self._post(f"queues/{_seg(vhost)}/{_seg(queue)}/pause")

    def resume_queue(self, queue: str, vhost: str = "/") -> None:
        self._post(f"queues/{_seg(vhost)}/{_seg(queue)}/resume")

    def nack_publishes(self, queue: str, count: int, vhost: str = "/") -> None:
        """Refuse the next ``count`` publishes to the queue (basic.nack in confirm mode)."""
        self._post(f"queues/{_seg(vhost)}/{_seg(queue)}/nack-publishes", {"count": int(count)})

    def cancel_consumers(self, queue: str, consumer_tag: Optional[str] = None, vhost: str = "/") -> None:
        """basic.cancel to the queue's consumers (one, given its tag)."""
        body = {} if consumer_tag is None else {"consumer_tag": consumer_tag}
        self._post(f"queues/{_seg(vhost)}/{_seg(queue)}/cancel-consumers", body)

    # the node
    def restart(self, down_ms: int = 0) -> Dict[str, Any]:
        """A simulated broker restart: every socket dropped, connections
        refused for ``down_ms``, transient state gone. Returns what it took
        away: ``{"connections", "queues", "exchanges", "messages"}``."""
        return self._post("restart", {"down_ms": int(down_ms)})

    def raise_alarm(self, alarm: str = "memory") -> None:
        """A memory or disk alarm: publishers get connection.blocked."""
        self._post(f"alarms/{_seg(alarm)}/raise")

    def clear_alarm(self, alarm: str = "memory") -> None:
        self._post(f"alarms/{_seg(alarm)}/clear")

    def status(self) -> Dict[str, Any]:
        """``{"allowed": True, "injected_alarms": {"memory": ..., "disk": ...}}``."""
        return self._broker.api("/api/warren/faults")
