"""Scenario modules; importing this package registers every scenario."""
from . import auth, foundation, extensions, limits, streams  # noqa: F401
