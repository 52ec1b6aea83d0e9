"""The Twisted driver on a ``Clock`` with a fake ``System``: effects carried out, answers sent back, order kept."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred, fail, succeed
from twisted.internet.task import Clock

from glusterd_mgr.core import effects as fx
from glusterd_mgr.core.effects import DiskOperation, ProcessResult
from glusterd_mgr.core.errors import StateError
from glusterd_mgr.core.fuse_client import ClientStats
from glusterd_mgr.core.holders import Change, Holder, HolderTable, Process
from glusterd_mgr.shell.driver import Engine

from .world import SPEC, World, config

I1 = Holder("instance", "i1")


class FakeSystem:
    """``System`` over the in-memory ``World``: every call answers at once."""

    systemd_booted = False
    own_unit = ""

    def __init__(self, world: World) -> None:
        self.world = world

    def _ask(self, effect: fx.Effect[Any]) -> Deferred[Any]:
        try:
            return succeed(self.world.answer(effect))
        except Exception as e:
            return fail(e)

    def read_mountinfo(self, fresh: bool = False) -> str:
        return self.world.table()

    def run(self, argv: Any, cwd: str, timeout: float) -> Deferred[ProcessResult]:
        return self._ask(fx.Run(tuple(argv), cwd, timeout))

    def statvfs(self, mountpoint: str, timeout: float, action: str) -> Deferred[dict[str, Any]]:
        return self._ask(fx.Statvfs(mountpoint, timeout, action))

    def make_mountpoint(self, path: str, timeout: float) -> Deferred[None]:
        return succeed(None)

    def log_size(self, path: str) -> Deferred[int]:
        return succeed(0)

    def log_tail(self, path: str, offset: int) -> Deferred[str]:
        return succeed("")

    def sweep_temps(self, mountpoint: str, folder: tuple[str, ...], timeout: float) -> Deferred[list[str]]:
        return succeed([])

    def disk(self, mountpoint: str, operation: DiskOperation, timeout: float) -> Deferred[dict[str, Any]]:
        return self._ask(fx.Disk(mountpoint, operation, timeout))

    def resolve(self, host: str) -> Deferred[frozenset[str]]:
        return succeed(frozenset({host}))

    def tcp_probe(self, host: str, port: int, timeout: float) -> Deferred[str | None]:
        return succeed(None)

    def pids_using(self, mountpoint: str) -> Deferred[list[int]]:
        return self._ask(fx.PidsUsing(mountpoint))

    def clients(self, mountpoint: str) -> Deferred[list[ClientStats]]:
        return self._ask(fx.Clients(mountpoint))

    def kill(self, pids: list[int]) -> None:
        self.world.answer(fx.Kill(tuple(pids)))

    def set_oom_score_adj(self, pid: int, value: int) -> Deferred[str | None]:
        return succeed(None)

    def write_state(self, path: str, data: bytes) -> Deferred[None]:
        return succeed(None)

    def living(self, processes: tuple[Process, ...]) -> Deferred[frozenset[Process]]:
        return self._ask(fx.LivingProcesses(processes))


class SlowJournal:
    """A journal whose writes land when the test says so."""

    def __init__(self) -> None:
        self.writes: list[tuple[Change, Deferred[None]]] = []

    def write(self, change: Change) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        self.writes.append((change, d))
        return d


def engine() -> tuple[Engine, World, SlowJournal, Clock]:
    world, journal, clock = World(), SlowJournal(), Clock()
    return Engine(clock, FakeSystem(world), journal, config(), HolderTable()), world, journal, clock


def test_an_acquire_is_answered_only_once_its_journal_line_is_durable() -> None:
    eng, world, journal, _clock = engine()
    answer = ensureDeferred(eng.acquire(SPEC, I1))
    assert not answer.called and len(world.stack()) == 1
    [(change, d)] = journal.writes
    assert (change.op, change.holder) == ("acquire", I1)
    d.callback(None)
    assert answer.result == {"mountpoint": config().storage_dir, "holders": 1, "mounted_now": True}
    assert eng.count(fx.Metric.MOUNT_ATTEMPTS, SPEC.key) == 1
    assert eng.registry.get_sample_value("ganeti_gluster_mount_duration_seconds_count", {"volume": SPEC.key}) == 1


def test_a_retried_acquire_waits_for_the_first_and_wakes_on_the_next_turn() -> None:
    eng, _world, journal, clock = engine()
    first = ensureDeferred(eng.acquire(SPEC, I1))
    retry = ensureDeferred(eng.acquire(SPEC, I1))
    journal.writes[0][1].callback(None)
    assert first.called and not retry.called
    clock.advance(0)
    assert retry.result == {"mountpoint": config().storage_dir, "holders": 1, "mounted_now": False}
    assert len(journal.writes) == 1


def test_a_failed_journal_write_fails_the_call_and_unmounts_for_nobody() -> None:
    eng, world, journal, clock = engine()
    answer = ensureDeferred(eng.acquire(SPEC, I1))
    journal.writes[0][1].errback(StateError("disk full"))
    failures: list[Any] = []
    answer.addErrback(failures.append)
    assert failures and failures[0].check(StateError)
    assert world.stack() == [] and eng.volumes[SPEC].holders == set()
    clock.advance(0)
    assert clock.getDelayedCalls() == []


def test_the_last_release_unmounts_and_leaves_no_lock_registered() -> None:
    eng, world, journal, clock = engine()
    first = ensureDeferred(eng.acquire(SPEC, I1))
    journal.writes[0][1].callback(None)
    assert first.called
    release = ensureDeferred(eng.release(SPEC, I1))
    journal.writes[1][1].callback(None)
    assert release.result == {"holders": 0, "known": True, "unmounted": True, "busy": False}
    assert world.stack() == [] and len(eng._locks) == 0  # the keyed lock is pruned: no growth per mountpoint
    clock.advance(0)
    assert clock.getDelayedCalls() == []
