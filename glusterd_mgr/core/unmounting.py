"""The one unmount attempt after the last holder left (at once, or after the grace), and what it found."""

from __future__ import annotations

from .effects import After, Level, Locked, Metric, Observe, PidsUsing, Proc, Run, Say, ask
from .health import ours_in
from .mounts import umount_argv
from .state import NodeState, Phase, VolumeState, mount_key

__all__ = ["release_if_idle"]


def release_if_idle(node: NodeState, vs: VolumeState) -> Proc[tuple[bool, bool]]:
    """The one unmount attempt after the last holder left (after ``unmount_grace``, if no holder came back); (unmounted, busy)."""
    if vs.count() > 0:
        return False, False
    if node.config.unmount_grace > 0:
        vs.idle_serial += 1
        yield After(node.config.unmount_grace, _unmount_if_still_idle(node, vs, vs.idle_serial))
        return False, False
    return (yield from _attempt_unmount(node, vs))


def _unmount_if_still_idle(node: NodeState, vs: VolumeState, serial: int) -> Proc[None]:
    """The grace is over: the one unmount attempt, unless a holder came (and maybe left again) meanwhile."""
    if vs.idle_serial == serial and vs.count() == 0:
        yield from _attempt_unmount(node, vs)


def _attempt_unmount(node: NodeState, vs: VolumeState) -> Proc[tuple[bool, bool]]:
    """The unmount attempt; its errors never undo what was committed."""
    try:
        return (yield from ask(Locked((mount_key(vs.mountpoint),), _unmount(node, vs))))
    except Exception as e:
        vs.last_error = f"unmount attempt failed: {e}"
        yield Say(Level.ERROR, "unmount attempt of {volume} failed", {"volume": vs.spec.key}, error=e)
        return False, False


def _unmount(node: NodeState, vs: VolumeState) -> Proc[tuple[bool, bool]]:
    """One unmount attempt (under the lock); (unmounted, busy).  Busy means: as many mounts of ours after as before."""
    if vs.count() > 0:
        return False, False
    before = yield from ours_in(vs.spec, vs.mountpoint)
    if not before:
        vs.enter(Phase.UNMOUNTED)
        return False, False
    yield Observe(Metric.UNMOUNT_ATTEMPTS, vs.spec.key)
    config = node.config
    result = yield from ask(Run(tuple(umount_argv(vs.mountpoint, config.unmount_mode)), "/", config.mount_timeout))
    if (yield from ours_in(vs.spec, vs.mountpoint)) < before:
        vs.enter(Phase.UNMOUNTED, None)
        vs.busy_pids, vs.space, vs.client, vs.claimants = [], None, None, []
        yield Say(Level.INFO, "unmounted {volume} from {mountpoint}", vs.where())
        return True, False
    yield Observe(Metric.UNMOUNT_BUSY, vs.spec.key)
    vs.enter(Phase.BUSY)
    vs.busy_pids = yield from ask(PidsUsing(vs.mountpoint))
    fields = {**vs.where(), "said": result.last_line or "busy", "pids": vs.busy_pids}
    yield Say(Level.INFO, "{volume} on {mountpoint} stays mounted: {said} (pids {pids})", fields)
    return False, True
