"""The broker dies with the test run: stop(), and a killed pytest (Linux's
parent-death signal)."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from pytest_warren import WarrenBroker


def gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1].startswith("Z")
    except FileNotFoundError:
        return True


def test_stop_closes_the_port():
    broker = WarrenBroker().start()
    port = broker.port
    socket.create_connection(("127.0.0.1", port), 2).close()
    broker.stop()
    assert not broker.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), 2).close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_broker_dies_with_a_killed_parent(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import time; from pytest_warren import WarrenBroker\n"
         "b = WarrenBroker().start(); print(b.process.pid, flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ, TMPDIR=str(tmp_path)),
    )
    pid = int(child.stdout.readline())
    assert not gone(pid)
    child.send_signal(signal.SIGKILL)
    child.wait()
    deadline = time.monotonic() + 10
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(pid), f"warren {pid} outlived its killed parent"


def test_the_installed_plugin_and_binary(warren_broker):
    import pytest_warren

    # ci.sh runs this suite against the wheel: no source checkout on sys.path.
    assert "site-packages" in pytest_warren.__file__
    scripts = os.path.dirname(sys.executable)
    assert warren_broker.binary == os.path.join(scripts, "warren")
