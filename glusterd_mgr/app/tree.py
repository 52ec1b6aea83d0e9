"""The daemon's parts as Twisted services: started in order, stopped in reverse, each stop awaited before the next."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, ensureDeferred, maybeDeferred
from twisted.internet.interfaces import IListeningPort

from ..shell.node import Node
from .rpc import JsonRpcResource

__all__ = ["DRAIN_SECONDS", "Draining", "Listener", "NodeService", "Sequence", "adopt"]

DRAIN_SECONDS = 30.0
"""How long a stop waits for the calls under way before it goes on (the mounts stay either way)."""


def adopt(parent: MultiService, *children: Service) -> None:
    """Add ``children`` to ``parent`` in this order; each starts at once if ``parent`` runs."""
    for child in children:
        Service.setServiceParent(child, parent)


class Sequence(MultiService):
    """Children start in the order they were added and stop in reverse, one at a time.

    ``MultiService`` stops its children all at once; here the node stops only
    once the calls that use it have drained, and those only once no new call
    can come in.
    """

    def __init__(self) -> None:
        MultiService.__init__(self)  # explicit: twisted.application is untyped

    def stopService(self) -> Deferred[None]:
        Service.stopService(self)
        return ensureDeferred(self._stop_children())

    async def _stop_children(self) -> None:
        for child in reversed(list(self)):
            await maybeDeferred(child.stopService)


class NodeService(Service):
    """The node: at start it restores the held mounts, then probes them; at stop its threads and journal close, mounts stay."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.restored: Deferred[None] = Deferred()
        """Fires once the held mounts are restored (the daemon answers no call before)."""

    def startService(self) -> None:
        Service.startService(self)  # explicit: twisted.application is untyped
        self.node.start().chainDeferred(self.restored)

    def stopService(self) -> None:
        Service.stopService(self)  # explicit: twisted.application is untyped
        self.node.stop()


class Listener(Service):
    """A listening socket, opened by ``listen`` at start and closed at stop (calls it accepted still finish)."""

    def __init__(self, listen: Callable[[], IListeningPort]) -> None:
        self.listen = listen
        self.port: Any = None  # an IListeningPort: its interface's methods take no self for mypy

    def startService(self) -> None:
        Service.startService(self)  # explicit: twisted.application is untyped
        self.port = self.listen()

    def stopService(self) -> Deferred[None] | None:
        Service.stopService(self)  # explicit: twisted.application is untyped
        return None if self.port is None else maybeDeferred(self.port.stopListening)


class Draining(Service):
    """At stop, waits (at most ``DRAIN_SECONDS``) for the RPC calls under way to be answered."""

    def __init__(self, rpc: JsonRpcResource, clock: Any) -> None:
        self.rpc = rpc
        self.clock = clock

    def stopService(self) -> Deferred[None]:
        Service.stopService(self)  # explicit: twisted.application is untyped
        return self.rpc.drained().addTimeout(DRAIN_SECONDS, self.clock, onTimeoutCancel=lambda _result, _timeout: None)
