"""The unmount grace: the one unmount attempt after the last holder left, put off."""

from __future__ import annotations

from glusterd_mgr.core import effects as fx
from glusterd_mgr.core.holders import Holder, HolderTable
from glusterd_mgr.core.machine import Core
from glusterd_mgr.core.mounts import CLIENT
from glusterd_mgr.core.requests import AcquireParams, DiskInfoParams, ReleaseParams
from glusterd_mgr.core.state import Phase
from glusterd_mgr.testing import SPEC, Scheduler, World, config

I1, I2 = Holder("instance", "i1"), Holder("instance", "i2")


def node(grace: float) -> tuple[World, Core, Scheduler]:
    world = World()
    cfg = config()
    cfg.unmount_grace = grace
    core = Core(cfg, HolderTable())
    return world, core, Scheduler(world, core)


def mounts_and_unmounts(world: World) -> list[str]:
    return [e.argv[0] for e in world.done if isinstance(e, fx.Run)]


def test_without_grace_the_last_release_unmounts_at_once() -> None:
    world, core, sched = node(0)
    sched.run(core.request(AcquireParams(SPEC, I1)))
    assert sched.run(core.request(ReleaseParams(SPEC, I1))).outcome["unmounted"] is True
    assert world.later == [] and world.stack() == []


def test_with_grace_the_unmount_waits_and_then_is_attempted_once() -> None:
    world, core, sched = node(30)
    sched.run(core.request(AcquireParams(SPEC, I1)))
    released = sched.run(core.request(ReleaseParams(SPEC, I1)))
    assert released.outcome == {"holders": 0, "known": True, "unmounted": False, "busy": False}
    [later] = world.later
    assert later.seconds == 30 and len(world.stack()) == 1, "still mounted during the grace"
    sched.run(later.proc)
    assert world.stack() == [] and mounts_and_unmounts(world) == [CLIENT, "umount"]
    assert core.volumes[SPEC].phase is Phase.UNMOUNTED


def test_a_holder_that_comes_back_within_the_grace_finds_the_mount_and_keeps_it() -> None:
    world, core, sched = node(30)
    sched.run(core.request(AcquireParams(SPEC, I1)))
    sched.run(core.request(ReleaseParams(SPEC, I1)))
    assert sched.run(core.request(AcquireParams(SPEC, I2))).outcome["mounted_now"] is False
    sched.run(world.later[0].proc)
    assert len(world.stack()) == 1 and mounts_and_unmounts(world) == [CLIENT], "no unmount under I2"


def test_only_the_last_idle_spell_unmounts() -> None:
    """Held, released, held and released again within the grace: the first spell's timer does nothing."""
    world, core, sched = node(30)
    sched.run(core.request(AcquireParams(SPEC, I1)))
    sched.run(core.request(ReleaseParams(SPEC, I1)))
    sched.run(core.request(DiskInfoParams(SPEC, "ganeti/d1")))  # a look: a job holder comes and goes
    first, second = world.later
    sched.run(first.proc)
    assert len(world.stack()) == 1, "the first spell ended when the look came"
    sched.run(second.proc)
    assert world.stack() == [] and mounts_and_unmounts(world) == [CLIENT, "umount"]
