"""Cross-language RPC: a server process in one language answers fib(n)
requests from a client process in another, over reply_to/correlation_id
(RabbitMQ's tutorial 6). Usage: rpc.py SERVER-server_CLIENT-client
e.g. rpc.py go-server_python-client.

Every language's program speaks the same protocol: the request body is n
as decimal text; the reply goes to the request's reply_to with its
correlation_id and fib(n) as the body. Each prints JSON lines: the server
'ready' then one 'request' per request (n, reply_to, correlation_id), the
client 'ready' (callback_queue) then one 'result' per n (n, result,
correlation_id). The clients send all their requests before reading any
reply (Python: a few one at a time first), so replies must be told apart by
correlation_id alone. The C client (amqp-tools) has no correlation_id
option: it sends one request at a time and reads the reply with amqp-get.
"""

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

INTEROP = Path(__file__).resolve().parent.parent
PYTHON = str(INTEROP / ".venv" / "bin" / "python")
NS = [0, 1, 2, 10, 30, 5, 20, 7, 40, 15]
WAIT_S = 15


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def server_command(lang, q, count):
    return {
        "python": [PYTHON, str(INTEROP / "python/rpc/rpc_server.py"), q, str(count)],
        "go": [str(INTEROP / ".cache/bin/interop-go"), "rpc-server", q, str(count)],
        "node": ["node", str(INTEROP / "node/promise/checks.js"), "rpc-server", q, str(count)],
        "ruby": ["ruby", str(INTEROP / "ruby/checks.rb"), "rpc-server", q, str(count)],
        "php": ["php", str(INTEROP / "php/checks.php"), "rpc-server", q, str(count)],
    }[lang]


def client_command(lang, q, ns):
    args = [q, *map(str, ns)]
    return {
        "python": [PYTHON, str(INTEROP / "python/rpc/rpc_client.py"), q,
                   "--sequential", *map(str, ns[:3]), "--burst", *map(str, ns[3:])],
        "go": [str(INTEROP / ".cache/bin/interop-go"), "rpc-client", *args],
        "node": ["node", str(INTEROP / "node/promise/checks.js"), "rpc-client", *args],
        "ruby": ["ruby", str(INTEROP / "ruby/checks.rb"), "rpc-client", *args],
        "php": ["php", str(INTEROP / "php/checks.php"), "rpc-client", *args],
    }[lang]


class Process:
    """A child whose stdout JSON lines are collected by a thread."""

    def __init__(self, name, command):
        self.name = name
        self.events = queue.Queue()
        self.all = []
        self.output = []
        env = {**os.environ, "PYTHONPATH": str(INTEROP / "python")}
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.output.append(line.rstrip())
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict) and "event" in event:
                self.all.append(event)
                self.events.put(event)
        self.events.put(None)

    def expect(self, name, timeout=WAIT_S):
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self.events.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise Failed(f"{self.name} did not report '{name}' within {timeout}s")
            if event is None:
                self.proc.wait(5)
                raise Failed(f"{self.name} exited ({self.proc.returncode}) before '{name}': "
                             f"{self.last_line()}")
            if event["event"] == name:
                return event

    def finish(self, timeout=WAIT_S):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Failed(f"{self.name} did not exit within {timeout}s: {self.last_line()}")
        time.sleep(0.05)  # let the reader thread drain
        if self.proc.returncode != 0:
            raise Failed(f"{self.name} exited with {self.proc.returncode}: {self.last_line()}")

    def last_line(self):
        lines = [line for line in self.output if line.strip()]
        return lines[-1] if lines else "no output"

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()


class Failed(Exception):
    pass


def check(cond, reason):
    if not cond:
        raise Failed(reason)


def c_client(q, ns):
    """rabbitmq-c's tools as an RPC client: a server-named reply queue,
    amqp-publish --reply-to, then amqp-get until the reply is there."""
    url = ["--url", os.environ["AMQP_URL"]]

    def run(*args):
        proc = subprocess.run(list(args), capture_output=True, timeout=10)
        return proc.returncode, proc.stdout.decode(), proc.stderr.decode().strip()

    code, reply_q, err = run("amqp-declare-queue", *url, "-q", "")
    check(code == 0, f"amqp-declare-queue: {err}")
    reply_q = reply_q.strip()
    results = []
    try:
        for n in ns:
            code, _, err = run("amqp-publish", *url, "-r", q, "-t", reply_q, "-b", str(n))
            check(code == 0, f"amqp-publish: {err}")
            deadline = time.monotonic() + 10
            while True:
                code, out, err = run("amqp-get", *url, "-q", reply_q)
                if code == 0:
                    results.append({"n": n, "result": int(out), "correlation_id": None})
                    break
                check(code == 2 and time.monotonic() < deadline, f"no reply to fib({n}): {err}")
                time.sleep(0.05)
    finally:
        run("amqp-delete-queue", *url, "-q", reply_q)
    return reply_q, results


def main():
    name = sys.argv[1]
    server_lang, client_lang = (part.split("-")[0] for part in name.split("_"))
    q = f"interop.rpc.{name}.{uuid.uuid4().hex[:8]}"
    ns = NS if client_lang != "c" else NS[:4]
    server = Process(f"{server_lang} server", server_command(server_lang, q, len(ns)))
    client = None
    try:
        server.expect("ready")
        if client_lang == "c":
            callback_queue, results = c_client(q, ns)
        else:
            client = Process(f"{client_lang} client", client_command(client_lang, q, ns))
            callback_queue = client.expect("ready")["callback_queue"]
            client.finish()
            results = [e for e in client.all if e["event"] == "result"]
        server.finish()

        check([r["n"] for r in results] == ns, f"client got answers for {[r['n'] for r in results]}, "
                                               f"asked for {ns}")
        for r in results:
            check(r["result"] == fib(r["n"]), f"fib({r['n']}) answered {r['result']}")
        requests = [e for e in server.all if e["event"] == "request"]
        check(sorted(r["n"] for r in requests) == sorted(ns), f"server saw requests {[r['n'] for r in requests]}")
        check(all(r["reply_to"] == callback_queue for r in requests),
              f"reply_to seen by the server is not the client's queue {callback_queue}: "
              f"{sorted({r['reply_to'] for r in requests})}")
        if client_lang != "c":
            sent = sorted(r["correlation_id"] for r in results)
            check(len(set(sent)) == len(sent), "correlation ids were not unique")
            check(sorted(r["correlation_id"] for r in requests) == sent,
                  "correlation ids seen by the server differ from those the client sent")
        print(f"{name}: ok ({len(ns)} calls)")
    except Failed as error:
        for p in (server, client):
            if p:
                for line in p.output[-8:]:
                    print(f"[{p.name}] {line}")
        print(f"{name}: {error}")
        sys.exit(1)
    finally:
        for p in (server, client):
            if p:
                p.kill()
        sys.path.insert(0, str(INTEROP / "python"))
        from harness import cleanup  # the Python server's queue is not auto-delete
        cleanup(queues=[q])


if __name__ == "__main__":
    main()
