"""The pytest plugin (entry point ``pytest11: warren``): fixtures
``warren_broker`` (a fresh broker for each test) and ``warren_broker_session``
(one for the whole run), and the ``--warren-bin`` / ``--warren-log-level``
options."""

from __future__ import annotations

from typing import Iterator

import pytest

from .broker import WarrenBroker


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("warren", "Warren AMQP broker fixtures")
    group.addoption(
        "--warren-bin",
        default=None,
        help="the warren binary to run (default: $WARREN_BIN, else the one installed with pytest-warren)",
    )
    group.addoption(
        "--warren-log-level",
        default="info",
        help="the brokers' --log-level (their logs are printed with a failing test's output)",
    )


def _broker(config: pytest.Config) -> WarrenBroker:
    return WarrenBroker(
        config.getoption("warren_bin"),
        log_level=config.getoption("warren_log_level"),
    )


@pytest.fixture
def warren_broker(request: pytest.FixtureRequest) -> Iterator[WarrenBroker]:
    """A fresh, empty Warren for this test: in memory, AMQP and management on
    free loopback ports, broker time on a virtual clock (``.advance``), fault
    injection on (``.faults``). Stopped when the test ends."""
    broker = _broker(request.config).start()
    try:
        yield broker
    finally:
        log = broker.log()
        broker.stop()
        if getattr(request.node, "_warren_failed", False) and log:
            print(f"--- warren log ---\n{log}")


@pytest.fixture(scope="session")
def warren_broker_session(request: pytest.FixtureRequest) -> Iterator[WarrenBroker]:
    """One Warren shared by every test of the run that asks for it (state
    carries over between them); otherwise as ``warren_broker``."""
    broker = _broker(request.config).start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        item._warren_failed = True  # type: ignore[attr-defined]
