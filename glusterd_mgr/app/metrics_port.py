"""The TCP metrics port, bounded: any local user can reach it, and none may make the daemon spool, wait or run out.

- small requests: a body announced or grown past ``MAX_BODY`` is answered 413 before it is read, and the
  connection closed (twisted.web alone spools any body to a file in /tmp); methods other than GET and HEAD
  get the resource's 405;
- a deadline: each request must arrive whole within ``REQUEST_DEADLINE`` of the connection or of the previous
  answer, so a sender of one byte now and then (which beats an idle timeout) holds nothing for long;
- few connections: ``PER_PEER`` from one address, ``TOTAL`` in all, and none once the daemon's open descriptors
  come within ``RESERVE`` of its limit: the RPC socket, the journal and the helpers keep theirs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, cast

from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from twisted.web import http, server
from twisted.web.resource import Resource

from ..shell.descriptors import Usage
from ..shell.descriptors import usage as process_usage
from .web import site

__all__ = ["MAX_BODY", "PER_PEER", "REQUEST_DEADLINE", "RESERVE", "TOTAL", "metrics_port", "refusal"]

MAX_BODY = 4096
REQUEST_DEADLINE = 10.0
"""Seconds: Prometheus's default scrape timeout; a request on any network arrives in far less."""
PER_PEER = 4
TOTAL = 32
RESERVE = 128
"""Descriptors the metrics port never takes: RPC calls, 16 file-system threads, helpers' pipes, the journal."""
REFUSALS_LOGGED_EVERY = 60.0

log = Logger()


def refusal(from_peer: int, in_all: int, fds: Usage) -> str | None:
    """Why one more connection is refused (given those open from its peer and in all), or None to take it."""
    if in_all >= TOTAL:
        return f"{TOTAL} connections are open"
    if from_peer >= PER_PEER:
        return f"{PER_PEER} connections are open from this address"
    if fds.open >= fds.limit - RESERVE:
        return f"{fds.open} of {fds.limit} file descriptors are in use, and the last {RESERVE} are kept for the RPC socket"
    return None


class SmallRequest(server.Request):
    """A request whose body is refused past ``MAX_BODY`` before it is read: 413, and the connection closed."""

    received = 0
    refused = False

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > MAX_BODY:
            self._refuse()
        # A body of unknown length (chunked) is counted as it comes, and kept in memory meanwhile.
        super().gotLength(0 if length is None or self.refused else length)  # type: ignore[no-untyped-call]

    def handleContentChunk(self, data: bytes) -> None:
        if self.refused:
            return
        self.received += len(data)
        if self.received > MAX_BODY:
            self._refuse()
            return
        super().handleContentChunk(data)  # type: ignore[no-untyped-call]

    def _refuse(self) -> None:
        self.refused = True
        self.requestHeaders.removeHeader(b"expect")  # so twisted.web sends no "100 Continue" after the refusal
        transport: Any = self.channel.transport
        transport.write(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        transport.loseConnection()  # reads no more


class DeadlineChannel(http.HTTPChannel):
    """Each request must arrive whole within ``REQUEST_DEADLINE`` of the connection or of the previous answer."""

    _deadline: Any = None  # an IDelayedCall: its interface's methods take no self for mypy

    def connectionMade(self) -> None:
        super().connectionMade()  # type: ignore[no-untyped-call]
        self._arm()

    def allContentReceived(self) -> None:
        self._disarm()
        super().allContentReceived()  # type: ignore[no-untyped-call]

    def requestDone(self, request: Any) -> None:
        self._arm()  # first: a pipelined request parsed in there disarms it
        super().requestDone(request)  # type: ignore[no-untyped-call]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._disarm()
        super().connectionLost(reason)  # type: ignore[no-untyped-call]

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.callLater(REQUEST_DEADLINE, self._expired)  # type: ignore[no-untyped-call]  # the site's reactor's

    def _disarm(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        transport: Any = self.transport
        transport.abortConnection()


class _Counted(ProtocolWrapper):
    """A connection that remembers its peer's address, so that its end frees that peer's place."""

    peer = ""


class BoundedFactory(WrappingFactory):
    """Takes a connection only while ``refusal`` finds no reason not to; a refusal closes it at once."""

    protocol = _Counted
    noisy = False  # no "Starting factory" lines: the port's own line says it listens

    def __init__(self, wrapped: Any, clock: Any, descriptors: Callable[[], Usage]) -> None:
        super().__init__(wrapped)  # type: ignore[no-untyped-call]
        self.clock = clock
        self.descriptors = descriptors
        self.peers: Counter[str] = Counter()
        self.refused = 0
        self._logged_at: float | None = None

    def buildProtocol(self, addr: IAddress | None) -> _Counted | None:  # type: ignore[override]  # None refuses, as IProtocolFactory allows
        peer = str(getattr(addr, "host", ""))
        why = refusal(self.peers[peer], len(self.protocols), self.descriptors())
        if why is not None:
            self._note_refusal(peer, why)
            return None
        wrapper = cast(_Counted, super().buildProtocol(addr))
        wrapper.peer = peer
        return wrapper

    def registerProtocol(self, p: _Counted) -> None:
        super().registerProtocol(p)  # type: ignore[no-untyped-call]
        self.peers[p.peer] += 1

    def unregisterProtocol(self, p: _Counted) -> None:
        super().unregisterProtocol(p)  # type: ignore[no-untyped-call]
        self.peers[p.peer] -= 1
        if not self.peers[p.peer]:
            del self.peers[p.peer]

    def _note_refusal(self, peer: str, why: str) -> None:
        """Logged once a minute at most: a flood must not flood the journal too."""
        self.refused += 1
        now = self.clock.seconds()
        if self._logged_at is None or now - self._logged_at >= REFUSALS_LOGGED_EVERY:
            self._logged_at = now
            log.warn(
                "metrics port: refused a connection from {peer}: {why} ({refused} refused since the start)",
                peer=peer,
                why=why,
                refused=self.refused,
            )


def metrics_port(resource: Resource, reactor: Any, descriptors: Callable[[], Usage] = process_usage) -> BoundedFactory:
    """What listens on the TCP metrics port: ``resource`` at /metrics, behind the bounds above."""
    inner = site({b"metrics": resource}, reactor=reactor)
    inner.requestFactory = SmallRequest
    inner.protocol = DeadlineChannel  # type: ignore[method-assign,assignment]  # a plain HTTP/1.1 channel, no HTTP/2
    return BoundedFactory(inner, reactor, descriptors)
