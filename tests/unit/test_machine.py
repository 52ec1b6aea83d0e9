"""The core's decisions, one by one: answers in, effects and outcomes out (no Twisted, no root)."""

from __future__ import annotations

import pytest

from glusterd_mgr.core import effects as fx
from glusterd_mgr.core.errors import MountFailed, OperationTimeout, StateError, VolumeConflict
from glusterd_mgr.core.holders import Holder, HolderTable
from glusterd_mgr.core.machine import Core
from glusterd_mgr.core.mounts import CLIENT
from glusterd_mgr.core.requests import AcquireParams, DiskInfoParams, DiskRemoveParams, ReleaseParams
from glusterd_mgr.core.state import Phase
from glusterd_mgr.testing import MOUNTPOINT, SPEC, Mount, Scheduler, World, config, request

I1, I2 = Holder("instance", "i1"), Holder("instance", "i2")


def node(table: HolderTable | None = None) -> tuple[World, Core, Scheduler]:
    world = World()
    core = Core(config(), table or HolderTable())
    return world, core, Scheduler(world, core)


def runs(world: World) -> list[tuple[str, ...]]:
    return [e.argv for e in world.done if isinstance(e, fx.Run)]


def test_first_holder_mounts_then_journals_then_answers() -> None:
    world, core, sched = node()
    task = sched.run(core.request(AcquireParams(SPEC, I1)))
    assert task.outcome == {"mountpoint": MOUNTPOINT, "holders": 1, "mounted_now": True}
    kinds = [type(e) for e in world.done if isinstance(e, fx.Run | fx.WriteJournal)]
    assert kinds == [fx.Run, fx.WriteJournal]
    assert runs(world)[0][:2] == (CLIENT, "--process-name")
    assert world.durable() == {I1}
    assert core.volumes[SPEC].phase is Phase.MOUNTED


def test_second_holder_takes_the_fast_path_with_no_file_system_call() -> None:
    world, core, sched = node()
    sched.run(core.request(AcquireParams(SPEC, I1)))
    before = len(world.done)
    task = sched.run(core.request(AcquireParams(SPEC, I2)))
    after = world.done[before:]
    assert task.outcome["mounted_now"] is False
    assert not [e for e in after if isinstance(e, fx.Statvfs | fx.Run)]
    assert [e for e in after if isinstance(e, fx.ReadTable)] == [fx.ReadTable(fresh=False)]


def test_fast_path_is_off_while_a_mount_change_holds_the_lock() -> None:
    _world, core, sched = node()
    sched.run(core.request(AcquireParams(SPEC, I1)))
    sched.locks.add(("mount", MOUNTPOINT))
    task = sched.start("second", core.request(AcquireParams(SPEC, I2)))
    for _ in range(5):
        if sched.runnable() == [task]:
            sched.step(task)
    assert isinstance(task.pending, fx.Locked), "waits for the lock instead of skipping it"


def test_last_release_unmounts_once() -> None:
    world, core, sched = node()
    sched.run(core.request(AcquireParams(SPEC, I1)))
    task = sched.run(core.request(ReleaseParams(SPEC, I1)))
    assert task.outcome == {"holders": 0, "known": True, "unmounted": True, "busy": False}
    assert runs(world)[-1] == ("umount", MOUNTPOINT)
    assert world.stack() == []
    assert core.volumes[SPEC].phase is Phase.UNMOUNTED


def test_busy_means_as_many_mounts_after_the_umount_as_before() -> None:
    world, core, sched = node()
    sched.run(core.request(AcquireParams(SPEC, I1)))
    world.busy = True
    task = sched.run(core.request(ReleaseParams(SPEC, I1)))
    assert task.outcome == {"holders": 0, "known": True, "unmounted": False, "busy": True}
    vs = core.volumes[SPEC]
    assert (vs.phase, vs.busy_pids, len(world.stack())) == (Phase.BUSY, [4242], 1)
    assert fx.Observe(fx.Metric.UNMOUNT_BUSY, SPEC.key) in world.done


def test_unknown_release_changes_nothing() -> None:
    world, core, sched = node()
    task = sched.run(core.request(ReleaseParams(SPEC, I1)))
    assert task.outcome == {"holders": 0, "known": False, "unmounted": False, "busy": False}
    assert world.journal == [] and runs(world) == []


def test_a_release_waits_behind_a_retried_acquire_of_the_same_holder() -> None:
    """Seen in the fault suite's storm: a retried acquire waiting for the mount lock was overtaken by a
    release of its holder, and answered "acquired" with 0 holders (and a mount held for nobody)."""
    world, core, sched = node()
    sched.run(core.request(AcquireParams(SPEC, I1)))
    sched.locks.add(("mount", MOUNTPOINT))  # a mount change is under way
    again = sched.advance(sched.start("acquire again", core.request(AcquireParams(SPEC, I1))))
    leave = sched.advance(sched.start("release", core.request(ReleaseParams(SPEC, I1))))
    assert isinstance(again.pending, fx.Locked) and again.pending.keys == (("mount", MOUNTPOINT),)
    assert isinstance(leave.pending, fx.Locked) and sched.runnable() == [], "the release waits for the holder's lock"
    sched.locks.clear()
    sched.drain()
    assert again.outcome == {"mountpoint": MOUNTPOINT, "holders": 1, "mounted_now": False}
    assert leave.outcome == {"holders": 0, "known": True, "unmounted": True, "busy": False}
    assert world.durable() == set() and world.stack() == []


def test_an_existing_mount_of_the_volume_is_adopted_never_mounted_twice() -> None:
    world, core, sched = node()
    world.stack().append(Mount(SPEC.mount_source))
    task = sched.run(core.request(AcquireParams(SPEC, I1)))
    assert task.outcome["mounted_now"] is False
    assert runs(world) == []


def test_another_file_system_on_the_mountpoint_is_a_conflict() -> None:
    world, core, sched = node()
    world.stack().append(Mount("/dev/vdb", fstype="ext4"))
    task = sched.run(core.request(AcquireParams(SPEC, I1)))
    assert isinstance(task.error, VolumeConflict)
    assert runs(world) == [] and world.journal == []
    assert core.volumes[SPEC].holders == set()


def test_our_volume_under_another_volume_on_top_is_a_conflict() -> None:
    """Only the top of a stack is what a lookup reaches: our mount buried under another volume is no use."""
    world, core, sched = node()
    other = SPEC.__class__(host=SPEC.host, port=SPEC.port, volume="gv1")
    world.stack().extend([Mount(SPEC.mount_source), Mount(other.mount_source)])
    task = sched.run(core.request(AcquireParams(SPEC, I1)))
    assert isinstance(task.error, VolumeConflict)
    assert other.mount_source in task.error.message
    assert runs(world) == [] and world.journal == [] and len(world.stack()) == 2


def test_another_held_volume_on_the_same_mountpoint_is_a_conflict() -> None:
    _world, core, sched = node()
    sched.run(core.request(AcquireParams(SPEC, I1)))
    other = SPEC.__class__(host=SPEC.host, port=SPEC.port, volume="gv1")
    task = sched.run(core.request(AcquireParams(other, I2)))
    assert isinstance(task.error, VolumeConflict)
    assert "holds volume" in task.error.message


def test_a_dead_mount_is_detached_lazily_and_mounted_afresh() -> None:
    world, core, sched = node()
    world.stack().append(Mount(SPEC.mount_source, client="dead"))
    task = sched.run(core.request(AcquireParams(SPEC, I1)))
    assert task.outcome["mounted_now"] is True
    assert [argv[0:2] for argv in runs(world)] == [("umount", "-l"), (CLIENT, "--process-name")]
    assert fx.Observe(fx.Metric.RECOVERIES, SPEC.key) in world.done
    assert len(world.stack()) == 1 and world.stack()[0].client == "ok"


def test_a_hung_mount_is_refused_with_a_timeout_and_left_alone() -> None:
    world, core, sched = node()
    world.stack().append(Mount(SPEC.mount_source, client="hung"))
    task = sched.run(core.request(AcquireParams(SPEC, I1)))
    assert isinstance(task.error, OperationTimeout)
    assert runs(world) == []
    assert core.volumes[SPEC].phase is Phase.HUNG


def test_a_failed_mount_kills_orphan_clients_and_names_a_cause() -> None:
    world, core, sched = node()
    world.mount_fails = True
    world.orphans = [77]
    world.log_text = "E [glusterfsd-mgmt.c:2371:mgmt_getspec_cbk] 0-mgmt: failed to fetch volume file (key:/gv0)\n"
    task = sched.run(core.request(AcquireParams(SPEC, I1)))
    assert isinstance(task.error, MountFailed)
    assert f"{CLIENT} exited with 1" in task.error.message and "volume 'gv0' does not exist" in task.error.message
    assert fx.Kill((77,)) in world.done
    assert core.volumes[SPEC].phase is Phase.FAILED
    assert fx.Observe(fx.Metric.MOUNT_FAILURES, SPEC.key) in world.done
    assert world.journal == []


def test_a_mount_that_appears_but_does_not_answer_is_detached() -> None:
    world, core, sched = node()
    original = world._run

    def dead_on_arrival(effect: fx.Run) -> fx.ProcessResult:
        result = original(effect)
        if effect.argv[0] == CLIENT:
            world.stack()[-1].client = "dead"
        return result

    world._run = dead_on_arrival  # type: ignore[method-assign]
    task = sched.run(core.request(AcquireParams(SPEC, I1)))
    assert isinstance(task.error, MountFailed)
    assert "did not answer (dead) and was detached" in task.error.message
    assert world.stack() == []


def test_a_failed_journal_write_undoes_the_holder_and_unmounts_for_nobody() -> None:
    world, core, sched = node()
    world.journal_fails = True
    task = sched.run(core.request(AcquireParams(SPEC, I1)))
    assert isinstance(task.error, StateError)
    assert core.volumes[SPEC].holders == set()
    assert world.stack() == [] and runs(world)[-1] == ("umount", MOUNTPOINT)


def test_a_release_still_counts_until_it_is_durable() -> None:
    """Found by the law test: I1's release waits on the journal while I2's acquire fails its own write and
    looks for the last holder; I1 must still count, for its release fails too and I1 stays held."""
    world, core, sched = node()
    sched.run(core.request(AcquireParams(SPEC, I1)))
    world.journal_fails = True
    leave = sched.advance(sched.start("release", core.request(ReleaseParams(SPEC, I1))), until=fx.WriteJournal)
    assert isinstance(leave.pending, fx.WriteJournal)
    sched.run(core.request(AcquireParams(SPEC, I2)))
    sched.drain()
    assert isinstance(leave.error, StateError)
    assert core.volumes[SPEC].holders == world.durable() == {I1}
    assert len(world.stack()) == 1 and [argv[0] for argv in runs(world)] == [CLIENT], "no unmount under I1"


def test_a_disk_call_meeting_enotconn_recovers_the_mount_and_tries_once_more() -> None:
    world, core, sched = node()
    sched.run(core.request(AcquireParams(SPEC, I1)))
    world.stack()[-1].client = "dead"
    task = sched.run(core.request(DiskInfoParams(SPEC, "ganeti/d1")))
    assert task.error is None
    assert task.outcome["done"] == "DiskInfoParams" and task.outcome["uri"].endswith("/gv0/ganeti/d1")
    assert len([e for e in world.done if isinstance(e, fx.Disk)]) == 2
    assert core.volumes[SPEC].phase is Phase.MOUNTED


def test_a_disk_call_on_an_unheld_volume_mounts_for_the_call_and_unmounts_after() -> None:
    world, core, sched = node()
    task = sched.run(core.request(request("disk.create", volume=SPEC, path="ganeti/d1", size=10)))
    assert task.outcome == {"done": "DiskCreateParams"}
    assert [argv[0] for argv in runs(world)] == [CLIENT, "umount"]
    assert core.volumes[SPEC].jobs == {}


def test_probe_marks_a_dead_held_mount_and_remounts_it() -> None:
    world, core, sched = node()
    sched.run(core.request(AcquireParams(SPEC, I1)))
    world.stack()[-1].client = "dead"
    sched.run(core.probe_all())
    assert core.volumes[SPEC].phase is Phase.MOUNTED
    assert [argv[0:2] for argv in runs(world)][-2:] == [("umount", "-l"), (CLIENT, "--process-name")]


def test_probe_marks_a_vanished_held_mount_missing_and_mounts_it_again() -> None:
    world, core, sched = node()
    sched.run(core.request(AcquireParams(SPEC, I1)))
    world.stack().clear()
    sched.run(core.probe_all())
    assert (
        fx.Say(
            fx.Level.WARN,
            "{volume} vanished from {mountpoint} while held: mounting it again",
            {"volume": SPEC.key, "mountpoint": MOUNTPOINT},
        )
        in world.done
    )
    assert len(world.stack()) == 1


def test_a_probe_during_the_first_mount_sees_nothing_vanish() -> None:
    """The holder is counted before its mount is made: a probe then must not call the mount vanished."""
    world, core, sched = node()
    first = sched.start("acquire", core.request(AcquireParams(SPEC, I1)))
    while not (isinstance(first.pending, fx.Run) and first.pending.argv[0] == CLIENT):
        sched.step(first)
    probe = sched.start("probe", core.probe_all())
    sched.drain()
    assert first.outcome["mounted_now"] is True and probe.error is None
    assert not [e for e in world.done if isinstance(e, fx.Say) and "vanished" in e.text]
    assert core.volumes[SPEC].broken == set() and len(world.stack()) == 1
    assert [argv[0] for argv in runs(world)] == [CLIENT], "the probe adopted the new mount: no second mount"


def test_probe_of_a_hung_mount_only_reports_it() -> None:
    world, core, sched = node()
    sched.run(core.request(AcquireParams(SPEC, I1)))
    world.stack()[-1].client = "hung"
    count = len(runs(world))
    sched.run(core.probe_all())
    assert core.volumes[SPEC].phase is Phase.HUNG and len(runs(world)) == count


def test_restore_after_a_start_mounts_journaled_holders() -> None:
    table = HolderTable()
    table.add(SPEC, MOUNTPOINT, I1)
    world, core, sched = node(table)
    [vs] = core.held()
    sched.run(core.restore(vs))
    assert vs.phase is Phase.MOUNTED and len(world.stack()) == 1


def test_status_lists_phases_by_their_names() -> None:
    _world, core, sched = node()
    sched.run(core.request(AcquireParams(SPEC, I1)))
    [status] = core.status()
    assert status["state"] == "mounted" and status["holders"] == [{"kind": "instance", "id": "i1"}]


@pytest.mark.parametrize("path", ["../etc/passwd", "/abs", "ganeti/../x"])
def test_disk_paths_are_refused_before_any_effect(path: str) -> None:
    world, core, sched = node()
    task = sched.run(core.request(DiskRemoveParams(SPEC, path)))
    assert task.error is not None and world.done == []


def test_instances_on_a_client_that_died_are_named_until_they_acquire_again() -> None:
    world, core, sched = node()
    sched.run(core.request(AcquireParams(SPEC, I1)))
    world.stack()[-1].client = "dead"
    sched.run(core.probe_all())
    vs = core.volumes[SPEC]
    assert vs.broken == {I1}
    [status] = core.status()
    assert status["broken_holders"] == [I1.to_json()] and status["action"] is not None
    sched.run(core.request(AcquireParams(SPEC, I1)))
    assert vs.broken == set() and core.status()[0]["action"] is None


def test_brick_hosts_in_a_fresh_mounts_log_are_remembered_and_saved_under_their_lock() -> None:
    world, core, sched = node()
    core.servers.path = "/var/lib/ganeti-gluster-mountd/volfile-servers.json"
    world.log_text = "  1: volume gv0-client-0\n  3:     option remote-host 10.0.0.3\n  4:     option remote-host 10.0.0.4\n"
    sched.run(core.request(AcquireParams(SPEC, I1)))
    assert "10.0.0.3" in core.servers.known(SPEC)
    [saved] = [e for e in world.done if isinstance(e, fx.WriteState)]
    assert saved.path == core.servers.path and b"10.0.0.3" in saved.data
    sched.run(core.request(ReleaseParams(SPEC, I1)))
    sched.run(core.request(AcquireParams(SPEC, I1)))
    [mount, *_] = [argv for argv in runs(world) if argv[0] == CLIENT][1:]
    assert [a for a in mount if a.startswith("--volfile-server=")] == [
        f"--volfile-server={h}" for h in ("10.0.0.2", "10.0.0.3", "10.0.0.4")
    ]


def test_a_new_mounts_first_answer_gets_what_is_left_of_the_mount_timeout() -> None:
    """A client failing over from an unreachable first server answers late: the probe timeout would kill it."""
    world, core, sched = node()
    sched.run(core.request(AcquireParams(SPEC, I1)))
    first = world.of(fx.Statvfs(MOUNTPOINT, 0.0))[0]
    assert isinstance(first, fx.Statvfs)
    limits = core.node.config
    assert limits.probe_timeout < first.timeout <= limits.mount_timeout
    assert first.timeout == limits.mount_timeout - 0.5, "the world's clock moves 0.5 s a reading: one from the mount's start to its end"
