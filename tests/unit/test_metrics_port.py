"""The TCP metrics port in memory, as a hostile local user meets it: bodies, slow senders, many connections.

Driven with Twisted's fakes: ``StringTransport`` for each connection, ``MemoryReactorClock`` for the deadlines.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Request

from glusterd_mgr.app import metrics_port as mp
from glusterd_mgr.shell.descriptors import Usage


class Hello(Resource):
    """A stand-in for the metrics resource."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def render_GET(self, request: Request) -> bytes:
        return b"hello"


def plenty() -> Usage:
    """Far from the reserve."""
    return Usage(open=20, limit=65536)


def port(descriptors: Any = plenty) -> tuple[Any, MemoryReactorClock]:
    clock = MemoryReactorClock()
    return mp.metrics_port(Hello(), clock, descriptors), clock


def connect(factory: Any, host: str = "127.0.0.1") -> tuple[Any, StringTransport]:
    """A connection from ``host`` as the listening port makes it; the protocol is None when the factory refused it."""
    address = IPv4Address("TCP", host, 40000)
    protocol = factory.buildProtocol(address)
    transport = StringTransport(peerAddress=address, hostAddress=IPv4Address("TCP", "127.0.0.1", 9100))
    if protocol is not None:
        protocol.makeConnection(transport)
    return protocol, transport


def closed(transport: StringTransport) -> bool:
    return bool(transport.disconnecting or transport.disconnected)


def hang_up(protocol: Any) -> None:
    protocol.connectionLost(Failure(ConnectionDone()))


def test_a_small_get_and_a_head_are_answered() -> None:
    factory, _ = port()
    protocol, transport = connect(factory)
    protocol.dataReceived(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.value().startswith(b"HTTP/1.1 200 ") and transport.value().endswith(b"hello")
    transport.clear()
    protocol.dataReceived(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.value().startswith(b"HTTP/1.1 200 ") and not transport.value().endswith(b"hello")


def test_a_post_is_405() -> None:
    factory, _ = port()
    protocol, transport = connect(factory)
    protocol.dataReceived(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    assert transport.value().startswith(b"HTTP/1.1 405 ")


def test_a_body_announced_too_large_is_refused_before_it_is_read() -> None:
    factory, _ = port()
    protocol, transport = connect(factory)
    protocol.dataReceived(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n" + b"x" * 65536)
    assert transport.value().startswith(b"HTTP/1.1 413 "), transport.value()[:200]
    assert closed(transport)
    assert all(r.content is None or r.content.tell() == 0 for r in protocol.wrappedProtocol.requests), "no byte of it was kept"


def test_a_chunked_body_growing_past_the_cap_is_refused() -> None:
    factory, _ = port()
    protocol, transport = connect(factory)
    protocol.dataReceived(b"POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * (mp.MAX_BODY + 1)
    protocol.dataReceived(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    assert transport.value().startswith(b"HTTP/1.1 413 ") and closed(transport)


def test_a_slow_sender_is_cut_at_the_request_deadline() -> None:
    """One header byte a second (a slowloris) keeps no connection past the deadline, though it is never idle."""
    factory, clock = port()
    protocol, transport = connect(factory)
    protocol.dataReceived(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    for _ in range(int(mp.REQUEST_DEADLINE) - 1):
        clock.advance(1)
        protocol.dataReceived(b"X")
    assert not closed(transport)
    clock.advance(2)
    assert closed(transport)


def test_a_kept_alive_connection_must_bring_its_next_request_within_the_deadline() -> None:
    factory, clock = port()
    protocol, transport = connect(factory)
    clock.advance(mp.REQUEST_DEADLINE - 1)
    protocol.dataReceived(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.value().endswith(b"hello")
    clock.advance(mp.REQUEST_DEADLINE - 1)
    assert not closed(transport), "the deadline starts again after each answer"
    clock.advance(2)
    assert closed(transport)
    hang_up(protocol)
    assert not clock.getDelayedCalls(), "nothing left behind"


def test_connections_are_limited_per_peer_and_a_closed_one_frees_its_place() -> None:
    factory, _ = port()
    held = [connect(factory, "127.0.0.1")[0] for _ in range(mp.PER_PEER)]
    assert None not in held
    assert connect(factory, "127.0.0.1")[0] is None, "one more from the same peer"
    assert connect(factory, "127.0.0.2")[0] is not None, "another peer still gets in"
    hang_up(held[0])
    assert connect(factory, "127.0.0.1")[0] is not None


def test_connections_are_limited_in_total() -> None:
    factory, _ = port()
    held = [connect(factory, f"10.0.{i // 200}.{i % 200}")[0] for i in range(mp.TOTAL)]
    assert None not in held
    assert connect(factory, "10.9.9.9")[0] is None


def test_the_port_leaves_a_reserve_of_descriptors_for_the_rpc_socket() -> None:
    in_use = {"open": 10}
    limit = mp.RESERVE + 20
    factory, _ = port(lambda: Usage(in_use["open"], limit))
    assert connect(factory)[0] is not None
    in_use["open"] = limit - mp.RESERVE
    assert connect(factory, "127.0.0.2")[0] is None, "within the reserve: refused"
