"""``process`` holders: a volume held while a process lives, let go when it ends, in memory."""

from __future__ import annotations

import pytest

from glusterd_mgr.core import effects as fx
from glusterd_mgr.core.errors import InvalidParams
from glusterd_mgr.core.holders import Holder, HolderTable, Process
from glusterd_mgr.core.machine import Core
from glusterd_mgr.core.requests import AcquireParams
from glusterd_mgr.core.state import Phase
from glusterd_mgr.testing import SPEC, Scheduler, World, config

REQUEST = Process(4242, 987654)
ANOTHER = Process(4243, 987655)
I1 = Holder("instance", "i1")


def process_holder(process: Process) -> Holder:
    return Holder("process", str(process))


def test_a_process_holder_names_its_process_and_nothing_else_does() -> None:
    assert process_holder(REQUEST).process == REQUEST
    assert Holder("job", "4242@987654").process is None
    for bad in ("4242", "x@1", "0@5", "4242@", "@1", "1@2@3"):
        with pytest.raises(InvalidParams, match="PID@START_TICKS"):
            Holder("process", bad)


def test_a_stat_line_gives_the_process_and_a_zombie_none() -> None:
    stat = b"4242 (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615"
    assert Process.from_stat(4242, stat) == REQUEST
    assert Process.from_stat(4242, stat.replace(b") S ", b") Z ")) is None


def test_the_probe_lets_go_of_ended_processes_and_unmounts_after_the_last() -> None:
    world = World(processes={REQUEST, ANOTHER})
    core = Core(config(), HolderTable())
    sched = Scheduler(world, core)
    for process in (REQUEST, ANOTHER):
        assert sched.run(core.request(AcquireParams(SPEC, process_holder(process)))).error is None
    sched.run(core.probe_all())
    assert world.durable() == {process_holder(REQUEST), process_holder(ANOTHER)}, "both still run"
    world.processes.discard(REQUEST)
    sched.run(core.probe_all())
    assert world.durable() == {process_holder(ANOTHER)} and len(world.stack()) == 1
    world.processes.clear()
    sched.run(core.probe_all())
    assert world.durable() == set() and world.stack() == [], "the last one's end unmounts"
    assert core.volumes[SPEC].phase is Phase.UNMOUNTED


def test_an_instance_holder_outlives_the_request_that_took_the_volume_first() -> None:
    world = World(processes={REQUEST})
    core = Core(config(), HolderTable())
    sched = Scheduler(world, core)
    sched.run(core.request(AcquireParams(SPEC, process_holder(REQUEST))))
    sched.run(core.request(AcquireParams(SPEC, I1)))
    world.processes.clear()
    sched.run(core.probe_all())
    assert world.durable() == {I1} and len(world.stack()) == 1
    assert [e for e in world.done if isinstance(e, fx.Run) and e.argv[0] == "umount"] == []


def test_no_process_holder_asks_nothing() -> None:
    world = World()
    core = Core(config(), HolderTable())
    sched = Scheduler(world, core)
    sched.run(core.request(AcquireParams(SPEC, I1)))
    sched.run(core.probe_all())
    assert world.of(fx.LivingProcesses(())) == []


def test_a_failed_look_at_the_processes_leaves_the_holders_and_the_probe_goes_on() -> None:
    world = World(processes={REQUEST})
    core = Core(config(), HolderTable())
    sched = Scheduler(world, core)
    sched.run(core.request(AcquireParams(SPEC, process_holder(REQUEST))))
    world.processes.clear()
    original = world.answer

    def failing(effect: fx.Effect[object]) -> object:
        if isinstance(effect, fx.LivingProcesses):
            raise OSError("proc unreadable")
        return original(effect)

    world.answer = failing  # type: ignore[method-assign]
    task = sched.run(core.probe_all())
    assert task.error is None and world.durable() == {process_holder(REQUEST)}
    assert any(isinstance(e, fx.Statvfs) for e in world.done), "the mounts were probed all the same"


def test_a_process_holder_is_watched_from_its_acquire_and_released_when_its_end_is_told() -> None:
    world = World(processes={REQUEST, ANOTHER})
    core = Core(config(), HolderTable())
    sched = Scheduler(world, core)
    for process in (REQUEST, ANOTHER):
        sched.run(core.request(AcquireParams(SPEC, process_holder(process))))
    assert world.of(fx.WatchProcess(REQUEST)) == [fx.WatchProcess(REQUEST), fx.WatchProcess(ANOTHER)], "watched as acquired"
    world.processes.discard(REQUEST)
    sched.run(core.release_ended_processes())  # what the shell runs when a watched process ends
    assert world.durable() == {process_holder(ANOTHER)}, "given back without waiting for a probe"
    watched = [fx.WatchProcess(REQUEST), fx.WatchProcess(ANOTHER), fx.WatchProcess(ANOTHER)]
    assert world.of(fx.WatchProcess(REQUEST)) == watched, "the living one is watched again: a restart's holders are too"
