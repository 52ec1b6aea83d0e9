"""The service tree's order (children stop in reverse, each stop awaited) and the RPC resource's ``drained``."""

from __future__ import annotations

import json

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from glusterd_mgr.app.rpc import JsonRpcResource
from glusterd_mgr.app.tree import DRAIN_SECONDS, Draining, Sequence, adopt

from .test_rpc import dispatcher, post, req


class Part(Service):
    """A child that notes its start and stop; its stop lasts until the test fires it."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log
        self.stopping: Deferred[None] = Deferred()

    def startService(self) -> None:
        Service.startService(self)
        self.log.append(f"start {self.name}")

    def stopService(self) -> Deferred[None]:
        Service.stopService(self)
        self.log.append(f"stop {self.name}")
        return self.stopping


def test_children_start_in_order_and_stop_in_reverse_each_stop_awaited() -> None:
    log: list[str] = []
    tree, a, b = Sequence(), Part("a", log), Part("b", log)
    adopt(tree, a, b)
    MultiService.startService(tree)
    assert log == ["start a", "start b"]
    stopped = tree.stopService()
    assert log[2:] == ["stop b"], "a stops only once b has stopped"
    b.stopping.callback(None)
    assert log[2:] == ["stop b", "stop a"] and not stopped.called
    a.stopping.callback(None)
    assert stopped.called


def test_drained_fires_at_once_when_idle_and_once_the_last_call_is_answered() -> None:
    d, _world, _ = dispatcher()
    resource = JsonRpcResource(d)
    assert resource.drained().called
    gate: Deferred[object] = Deferred()

    async def slow(_params: object) -> object:
        return await gate

    d.call = slow
    _request, finished = post(resource, b'{"jsonrpc": "2.0", "method": "status", "id": 1}')
    drained = resource.drained()
    assert not drained.called and resource.in_flight == 1
    gate.callback({})
    assert finished.called and drained.called


def test_a_stop_waits_for_the_calls_under_way_at_most_the_drain_time() -> None:
    d, _world, _ = dispatcher()
    d.call = lambda _params: Deferred()  # never answered
    resource, clock = JsonRpcResource(d), Clock()
    post(resource, json.dumps(req("status", id_=1)).encode())
    stopped = Draining(resource, clock).stopService()
    clock.advance(DRAIN_SECONDS - 1)
    assert not stopped.called
    clock.advance(1)
    assert stopped.called and stopped.result is None
    assert resource._drain_waiters == [], "the timed-out wait left nothing behind"
