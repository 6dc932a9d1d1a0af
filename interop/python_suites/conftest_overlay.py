"""Stands in for the shipped tests/conftest.py, which run.sh renames to
tests/_shipped_conftest.py. Every fixture of the shipped one is kept; only
the broker changes: instead of starting a RabbitMQ container through Docker
(there is no Docker daemon here), `rabbitmq_container` names the Warren that
run.sh started, with the shipped certificates on its TLS listener.
"""

import os

import pytest
from yarl import URL

from tests._shipped_conftest import *  # noqa: F401,F403  (the shipped fixtures)
from tests.docker_client import ContainerInfo


def pytest_configure(config):
    """The shipped hook refuses to run without a Docker daemon."""


@pytest.fixture(scope="session")
def rabbitmq_container() -> ContainerInfo:
    return ContainerInfo(
        id="warren",
        host="127.0.0.1",
        ports={
            "5672/tcp": int(os.environ["WARREN_AMQP_PORT"]),
            "5671/tcp": int(os.environ["WARREN_AMQPS_PORT"]),
        },
    )


@pytest.fixture(scope="session")
def amqp_direct_url(rabbitmq_container: ContainerInfo) -> URL:
    # As aio-pika's conftest defines it; aiormq's published conftest uses
    # this fixture without shipping it.
    return URL.build(
        scheme="amqp",
        user="guest",
        password="guest",
        path="//",
        host=rabbitmq_container.host,
        port=rabbitmq_container.ports["5672/tcp"],
    )
