"""Celery: a real worker process (celery worker, kombu/py-amqp transport)
runs tasks sent by this driver; results come back through the rpc://
result backend. Checks a simple result, several tasks in flight at once, a
large result, that a task's exception reaches the caller, and that a
remote-control shutdown broadcast stops the worker."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from harness import ScenarioFailed, check, cleanup, run_scenario

HERE = Path(__file__).resolve().parent


def main() -> None:
    queue = f"interop.celery.{uuid.uuid4().hex[:12]}"
    os.environ["INTEROP_CELERY_QUEUE"] = queue
    sys.path.insert(0, str(HERE))
    import tasks  # noqa: E402  (reads the queue name from the environment)

    node = f"interop-{uuid.uuid4().hex[:8]}@localhost"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--pool=solo",
         "--loglevel=WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat",
         "-n", node, "-Q", queue],
        cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"})
    try:
        try:
            result = tasks.add.delay(2, 3)
            value = result.get(timeout=20)
        except Exception as error:
            if worker.poll() is not None:
                raise ScenarioFailed(f"celery worker exited ({worker.returncode}): "
                                     f"{worker.stdout.read()[-500:]}")
            raise ScenarioFailed(f"add(2, 3) gave no result: {type(error).__name__}: {error}")
        check(value == 5, f"add(2, 3) returned {value!r}")

        many = [tasks.add.delay(i, i) for i in range(20)]
        values = [r.get(timeout=10) for r in many]
        check(values == [2 * i for i in range(20)], f"20 tasks in flight returned {values}")

        big = tasks.echo_bytes.delay(300_000).get(timeout=10)
        check(big == "x" * 300_000, f"large result came back as {len(big)} characters")

        try:
            tasks.fail.delay("boom").get(timeout=10)
            raise ScenarioFailed("a failing task's exception did not reach the caller")
        except tasks.ExpectedFailure as error:
            check(str(error) == "boom", f"task exception text {error!r}")

        # Remote control: a broadcast through the worker's pidbox (fanout) exchange.
        tasks.app.control.shutdown(destination=[node])
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise ScenarioFailed("the worker did not stop on a remote-control shutdown broadcast")
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGQUIT)  # cold shutdown
        try:
            output, _ = worker.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
            output, _ = worker.communicate()
        if output.strip():
            print(output[-2000:], file=sys.stderr)
        cleanup(queues=[queue])


run_scenario(main)
