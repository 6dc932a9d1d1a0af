"""Scenario modules; importing this package registers every scenario."""
from . import foundation, extensions  # noqa: F401
