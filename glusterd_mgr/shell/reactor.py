"""What the shell asks of Twisted's reactor, as typing protocols.

The reactor's own types are zope interfaces, whose methods mypy cannot call;
these name just the methods used, so ``twisted.internet.task.Clock`` is a
``Clock`` in the tests and the real reactor is everything at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import ClientFactory, ProcessProtocol

__all__ = ["Clock", "NodeReactor"]


class Clock(Protocol):
    def seconds(self) -> float: ...

    def callLater(self, delay: float, callable: Callable[..., object], *args: object, **kw: object) -> IDelayedCall: ...


class NodeReactor(Clock, Protocol):
    """The clock, processes and TCP connections: what answering the node's effects takes."""

    def spawnProcess(
        self,
        processProtocol: ProcessProtocol,
        executable: str,
        args: Sequence[str],
        env: Mapping[str, str] | None = None,
        path: str | None = None,
    ) -> object: ...

    def connectTCP(self, host: str, port: int, factory: ClientFactory, timeout: float = 30) -> object: ...
