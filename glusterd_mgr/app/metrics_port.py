"""The TCP metrics port (a seam for its tests; unbounded as before)."""

from __future__ import annotations

from typing import Any

from twisted.internet.protocol import Factory
from twisted.web.resource import Resource

from .web import site

__all__ = ["MAX_BODY", "PER_PEER", "REQUEST_DEADLINE", "RESERVE", "TOTAL", "metrics_port"]

MAX_BODY = 4096
REQUEST_DEADLINE = 10.0
PER_PEER = 4
TOTAL = 32
RESERVE = 128


def metrics_port(resource: Resource, reactor: Any, descriptors: Any = None) -> Factory[Any]:
    """What listens on the TCP metrics port."""
    return site({b"metrics": resource})
