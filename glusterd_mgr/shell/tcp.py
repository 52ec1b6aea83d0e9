"""Whether a Gluster server accepts TCP connections, and in words why not: what a failed mount's diagnosis says."""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import error as twisted_error
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ClientFactory
from twisted.internet.protocol import Protocol as TwistedProtocol
from twisted.python.failure import Failure

from .reactor import NodeReactor

__all__ = ["tcp_probe"]


def tcp_probe(reactor: NodeReactor, host: str, port: int, timeout: float) -> Deferred[str | None]:
    """None when ``host:port`` accepts a TCP connection, else why not."""
    factory = _ProbeFactory()
    reactor.connectTCP(host, port, factory, timeout=timeout)

    def why(f: Failure) -> str:
        if f.check(twisted_error.ConnectionRefusedError):
            return "connection refused (glusterd not running there?)"
        if f.check(twisted_error.TimeoutError):
            return f"no answer within {timeout:g} s (host down or firewalled?)"
        if f.check(twisted_error.DNSLookupError):
            return "the host name does not resolve"
        if f.check(twisted_error.NoRouteError):
            return "no route to host"
        value = f.value
        return os.strerror(value.errno) if isinstance(value, OSError) and value.errno else f.getErrorMessage()

    return factory.result.addCallback(lambda failed: None if failed is None else why(failed[0]))


class _Hangup(TwistedProtocol):
    """Connected: that was all the probe wanted to know."""

    def connectionMade(self) -> None:
        assert isinstance(self.factory, _ProbeFactory)
        if not self.factory.result.called:
            self.factory.result.callback(None)
        transport: Any = self.transport
        transport.loseConnection()


class _ProbeFactory(ClientFactory):
    """Fires ``result`` with None on connect, or with the connection's Failure (in a tuple).

    (``reactor.connectTCP`` rather than endpoints: ``twisted.internet.endpoints``
    imports TLS support, which fails where pyOpenSSL is installed without
    service_identity, as it may be on a Ganeti node.)
    """

    protocol = _Hangup

    def __init__(self) -> None:
        # The Failure travels in a tuple: a bare one would turn the callback into an errback.
        self.result: Deferred[tuple[Failure] | None] = Deferred()

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        if not self.result.called:
            self.result.callback((reason,))
