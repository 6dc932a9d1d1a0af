"""pytest fixtures backed by a real Warren broker (AMQP 0-9-1, RabbitMQ-compatible).

Installing the wheel registers the plugin with pytest (entry point ``pytest11``):
the ``warren_broker`` and ``warren_broker_session`` fixtures are then available
in every test, with no import and no Docker.
"""

from .broker import Faults, WarrenBroker, WarrenError, find_binary

__all__ = ["Faults", "WarrenBroker", "WarrenError", "find_binary"]
