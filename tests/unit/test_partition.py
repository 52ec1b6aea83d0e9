"""A mount whose living client is cut off from its servers is disconnected, not dead, in memory."""

from __future__ import annotations

from glusterd_mgr.core import effects as fx
from glusterd_mgr.core.client_log import Links
from glusterd_mgr.core.errors import Disconnected
from glusterd_mgr.core.holders import Holder, HolderTable
from glusterd_mgr.core.machine import Core
from glusterd_mgr.core.mounts import CLIENT
from glusterd_mgr.core.requests import AcquireParams, DiskInfoParams, ReleaseParams
from glusterd_mgr.core.state import Phase
from glusterd_mgr.testing import SPEC, Scheduler, World, config, new_pid, request

I1, I2 = Holder("instance", "i1"), Holder("instance", "i2")

GRAPH = """\
  1: volume gv0-client-0
  2:     type protocol/client
  3:     option remote-host 10.0.0.2
  9: end-volume
 10: volume gv0-client-1
 12:     option remote-host 10.0.0.3
 13: end-volume
"""
# As glusterfs 10 writes them (seen with a silent nft drop of the server's traffic).
LOST = (
    "[2026-12-06 22:58:40.619772 +0000] C [rpc-clnt-ping.c:152:rpc_clnt_ping_timer_expired] 0-gv0-client-0: "
    "server 10.0.0.2:57026 has not responded in the last 5 seconds, disconnecting.\n"
    "[2026-12-06 22:58:40.619959 +0000] I [MSGID: 114018] [client.c:2244:client_rpc_notify] 0-gv0-client-0: disconnected "
    "from client, process will keep trying to connect glusterd until brick's port is available [{conn-name=gv0-client-0}]\n"
)
BACK = (
    "[2026-12-06 22:59:03.061066 +0000] I [MSGID: 114046] [client-handshake.c:856:client_setvolume_cbk] 0-gv0-client-0: "
    "Connected, attached to remote volume [{conn-name=gv0-client-0}, {remote_subvol=/bricks/gv0}]\n"
)


def held(*holders: Holder) -> tuple[World, Core, Scheduler]:
    world = World(log_text=GRAPH)
    core = Core(config(), HolderTable())
    sched = Scheduler(world, core)
    for holder in holders:
        assert sched.run(core.request(AcquireParams(SPEC, holder))).error is None
    return world, core, sched


def cut(world: World) -> None:
    world.stack()[-1].client = "disconnected"
    world.log_text += LOST


def runs(world: World, since: int = 0) -> list[tuple[str, ...]]:
    return [e.argv for e in world.done[since:] if isinstance(e, fx.Run)]


def test_the_log_names_the_servers_a_client_lost_and_forgets_those_it_reached_again() -> None:
    links = Links()
    links.feed(GRAPH)
    assert links.unreachable() == []
    links.feed(LOST)
    assert links.unreachable() == ["10.0.0.2"]
    links.feed("[...] W [socket.c:1] 0-gv0-client-2: connection to [fd00::3]:24007 failed (No route to host)\n")
    assert links.unreachable() == ["10.0.0.2", "fd00::3"]
    links.feed(BACK)
    assert links.unreachable() == ["fd00::3"]


def test_a_translator_whose_host_the_log_never_named_is_named_as_itself() -> None:
    links = Links()
    links.feed("[...] I [MSGID: 114018] [client.c:2244:client_rpc_notify] 0-gv9-client-4: disconnected from client\n")
    assert links.unreachable() == ["gv9-client-4"]


def test_a_probe_finds_a_living_client_cut_off_disconnected_and_touches_nothing() -> None:
    world, core, sched = held(I1)
    client_pid = world.stack()[-1].pid
    cut(world)
    before = len(world.done)
    sched.run(core.probe_all())
    vs = core.volumes[SPEC]
    assert vs.phase is Phase.DISCONNECTED
    assert runs(world, before) == [], "never detached, never mounted again"
    assert vs.broken == set(), "no holder is broken by a partition"
    assert fx.Observe(fx.Metric.DISCONNECTIONS, SPEC.key) in world.done[before:]
    [status] = core.status()
    assert status["state"] == "disconnected" and status["unreachable_servers"] == ["10.0.0.2"]
    assert status["disconnected_since"] is not None and status["client"] is not None
    assert status["client"]["pid"] == client_pid and status["action"] is None
    sched.run(core.probe_all())
    assert world.of(fx.Observe(fx.Metric.DISCONNECTIONS, SPEC.key)).count(fx.Observe(fx.Metric.DISCONNECTIONS, SPEC.key)) == 1


def test_while_disconnected_a_new_holder_and_a_disk_call_fail_fast_naming_the_servers() -> None:
    world, core, sched = held(I1)
    cut(world)
    sched.run(core.probe_all())  # (until a probe or a disk call finds it, a second holder joins without a look)
    before = len(world.done)
    acquire = sched.run(core.request(AcquireParams(SPEC, I2)))
    assert isinstance(acquire.error, Disconnected)
    assert "10.0.0.2" in acquire.error.message and "reconnects by itself" in acquire.error.message
    assert acquire.error.data["servers"] == ["10.0.0.2"]
    assert world.durable() == {I1} and core.volumes[SPEC].holders == {I1}
    disk = sched.run(core.request(DiskInfoParams(SPEC, "ganeti/d1")))
    assert isinstance(disk.error, Disconnected)
    assert runs(world, before) == [], "no recovery, no unmount under the holder"
    assert core.volumes[SPEC].phase is Phase.DISCONNECTED


def test_a_disk_call_that_meets_the_partition_first_finds_it_disconnected() -> None:
    world, core, sched = held(I1)
    cut(world)
    task = sched.run(core.request(request("disk.create", volume=SPEC, path="ganeti/d1", size=10)))
    assert isinstance(task.error, Disconnected)
    assert core.volumes[SPEC].phase is Phase.DISCONNECTED
    assert [argv[0] for argv in runs(world)] == [CLIENT], "the first holder's mount only"


def test_release_works_while_disconnected_and_the_last_one_attempts_the_unmount() -> None:
    world, core, sched = held(I1, I2)
    cut(world)
    sched.run(core.probe_all())
    first = sched.run(core.request(ReleaseParams(SPEC, I1)))
    assert first.outcome == {"holders": 1, "known": True, "unmounted": False, "busy": False}
    assert [argv[0] for argv in runs(world)] == [CLIENT], "no unmount while a holder remains"
    last = sched.run(core.request(ReleaseParams(SPEC, I2)))
    assert last.outcome["unmounted"] is True and world.durable() == set()


def test_when_the_client_reconnects_the_mount_is_mounted_again_by_itself() -> None:
    world, core, sched = held(I1)
    pid = world.stack()[-1].pid
    cut(world)
    sched.run(core.probe_all())
    world.stack()[-1].client = "ok"
    world.log_text += BACK
    before = len(world.done)
    sched.run(core.probe_all())
    vs = core.volumes[SPEC]
    assert vs.phase is Phase.MOUNTED and vs.last_error is None
    assert runs(world, before) == []
    [status] = core.status()
    assert status["disconnected_since"] is None and status["unreachable_servers"] == []
    assert status["client"] is not None and status["client"]["pid"] == pid
    said = [e.text for e in world.done[before:] if isinstance(e, fx.Say)]
    assert any("reconnected after" in text for text in said)
    assert sched.run(core.request(AcquireParams(SPEC, I2))).error is None


def test_a_dead_client_is_still_dead_and_names_its_instances() -> None:
    world, core, sched = held(I1)
    world.stack()[-1].client = "dead"
    sched.run(core.probe_all())
    vs = core.volumes[SPEC]
    assert vs.phase is Phase.MOUNTED and vs.broken == {I1}
    assert [argv[0:2] for argv in runs(world)][-2:] == [("umount", "-l"), (CLIENT, "--process-name")]


def test_a_second_client_claiming_the_mountpoint_is_reported_and_never_taken_for_the_mounts_own() -> None:
    world, core, sched = held(I1)
    own, stray = world.stack()[-1].pid, new_pid()
    world.orphans = [stray]  # started later, by hand: the newest claimant
    sched.run(core.probe_all())
    [status] = core.status()
    assert status["clients_claiming"] == [own, stray]
    assert status["client"] is not None and status["client"]["pid"] == own
    assert any("FUSE clients claim" in e.text for e in world.done if isinstance(e, fx.Say))
    world.stack()[-1].client = "dead"  # the mount's own client dies; the other still claims the path
    sched.run(core.probe_all())
    assert core.volumes[SPEC].broken == {I1}, "dead is dead, whoever else claims the mountpoint"
    assert core.volumes[SPEC].phase is Phase.MOUNTED
    [status] = core.status()
    assert status["client"] is not None and status["client"]["pid"] not in (own, stray), "the new mount's own client"
