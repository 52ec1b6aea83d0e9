"""The Twisted driver on a ``Clock`` with the in-memory world: effects carried out, answers sent back, order kept."""

from __future__ import annotations

from typing import Any, cast

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, formatEvent, globalLogPublisher

from glusterd_mgr.core import effects as fx
from glusterd_mgr.core.errors import StateError
from glusterd_mgr.core.holders import Holder, HolderTable
from glusterd_mgr.core.requests import AcquireParams, ReleaseParams
from glusterd_mgr.shell.driver import Engine
from glusterd_mgr.testing import SPEC, World, config

I1 = Holder("instance", "i1")


def engine() -> tuple[Engine, World, Clock]:
    """An engine on a ``Clock`` over the in-memory world, whose journal writes land when the test fires them."""
    world, clock = World(hold=(fx.WriteJournal,)), Clock()
    return Engine(clock, world, config(), HolderTable()), world, clock


def durable(world: World, n: int) -> Deferred[None]:
    """The ``n``-th journal write the engine asked for (the test fires it)."""
    return world.held[n][1]


def test_an_acquire_is_answered_only_once_its_journal_line_is_durable() -> None:
    eng, world, _clock = engine()
    answer = ensureDeferred(eng.call(AcquireParams(SPEC, I1)))
    assert not answer.called and len(world.stack()) == 1
    [(write, d)] = world.held
    assert isinstance(write, fx.WriteJournal) and (write.change.op, write.change.holder) == ("acquire", I1)
    d.callback(None)
    assert answer.result == {"mountpoint": config().storage_dir, "holders": 1, "mounted_now": True}
    assert eng.count(fx.Metric.MOUNT_ATTEMPTS, SPEC.key) == 1
    assert eng.registry.get_sample_value("ganeti_gluster_mount_duration_seconds_count", {"volume": SPEC.key}) == 1


def test_a_retried_acquire_waits_for_the_first_under_the_holders_lock() -> None:
    eng, world, _clock = engine()
    first = ensureDeferred(eng.call(AcquireParams(SPEC, I1)))
    retry = ensureDeferred(eng.call(AcquireParams(SPEC, I1)))
    assert not retry.called and len(world.held) == 1
    durable(world, 0).callback(None)
    assert first.result == {"mountpoint": config().storage_dir, "holders": 1, "mounted_now": True}
    assert retry.result == {"mountpoint": config().storage_dir, "holders": 1, "mounted_now": False}
    assert len(world.held) == 1


def test_a_failed_journal_write_fails_the_call_and_unmounts_for_nobody() -> None:
    eng, world, clock = engine()
    answer = ensureDeferred(eng.call(AcquireParams(SPEC, I1)))
    durable(world, 0).errback(StateError("disk full"))
    failures: list[Any] = []
    answer.addErrback(failures.append)
    assert failures and failures[0].check(StateError)
    assert world.stack() == [] and eng.volumes[SPEC].holders == set()
    assert clock.getDelayedCalls() == [], "nothing waits for a later turn"


def test_the_last_release_unmounts_and_leaves_no_lock_registered() -> None:
    eng, world, clock = engine()
    first = ensureDeferred(eng.call(AcquireParams(SPEC, I1)))
    durable(world, 0).callback(None)
    assert first.called
    release = ensureDeferred(eng.call(ReleaseParams(SPEC, I1)))
    durable(world, 1).callback(None)
    assert release.result == {"holders": 0, "known": True, "unmounted": True, "busy": False}
    assert world.stack() == [] and len(eng._locks) == 0  # the keyed lock is pruned: no growth per mountpoint
    assert clock.getDelayedCalls() == [], "nothing waits for a later turn"


def test_a_log_line_escapes_control_characters_and_line_breaks_in_its_fields() -> None:
    """Process names, paths and a client's log reach the daemon's log as fields: none can forge a line or drive a terminal."""
    eng, _world, _clock = engine()
    events: list[dict[str, Any]] = []
    observer = cast(ILogObserver, events.append)
    globalLogPublisher.addObserver(observer)
    try:

        def proc() -> fx.Proc[None]:
            fields: dict[str, object] = {"pids": [1], "mountpoint": "/mnt/\x1b[2J", "said": "busy\nERROR forged line\u202e"}
            yield fx.Say(fx.Level.INFO, "{mountpoint} stays mounted: {said} (pids {pids})", fields)

        ensureDeferred(eng.run(proc()))
    finally:
        globalLogPublisher.removeObserver(observer)
    [text] = [formatEvent(e) for e in events if "stays mounted" in e.get("log_format", "")]
    assert text == "/mnt/\\x1b[2J stays mounted: busy\\nERROR forged line\\u202e (pids [1])"
