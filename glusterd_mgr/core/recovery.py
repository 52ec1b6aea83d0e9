"""After a start and on every health round: restore held mounts, follow each mount's phase, release ended processes."""

from __future__ import annotations

from .effects import Level, LivingProcesses, PidsUsing, Proc, Say, WatchProcess, ask
from .errors import Disconnected, MountdError
from .health import disconnected, kernel_has, mark_broken, probe, reconnected, watch_client
from .holding import release
from .mounting import locked_ensure, remount_if_held
from .mounts import Probe
from .state import UP, NodeState, Phase, VolumeState

__all__ = ["probe_all", "release_ended_processes", "restore"]


def restore(node: NodeState, vs: VolumeState) -> Proc[None]:
    """Adopt, remount or recover the mount of a held volume after a start."""
    if not (yield from kernel_has(vs)):
        yield from mark_broken(vs, "its mount went away while the daemon was down")
    try:
        yield from locked_ensure(node, vs)
    except Disconnected:
        pass  # the mount and its client stay: it reconnects by itself (said when it was found)
    except MountdError as e:
        vs.enter(Phase.FAILED, e.message)
        yield Say(Level.ERROR, "cannot restore the mount of {volume}: {error}", {"volume": vs.spec.key, "error": e.message})


def probe_all(node: NodeState) -> Proc[None]:
    """One health round: let go of ended processes; refresh each mount's phase and space; recover dead or missing held mounts."""
    try:
        yield from release_ended_processes(node)
    except Exception as e:  # the mounts' probe below still runs
        yield Say(Level.ERROR, "cannot check the processes of process holders", error=e)
    for vs in list(node.volumes.values()):
        if vs.probing or (vs.count() == 0 and vs.phase not in UP):
            continue
        vs.probing = True
        try:
            yield from _probe_one(node, vs)
        except MountdError as e:
            vs.last_error = e.message
        except Exception as e:
            yield Say(Level.ERROR, "probe of {volume} failed", {"volume": vs.spec.key}, error=e)
        finally:
            vs.probing = False


def release_ended_processes(node: NodeState) -> Proc[None]:
    """Release every ``process`` holder whose process has ended (Ganeti's node daemon forks one per request).

    Run when a watched process ends, and on every health round as the net: it
    also watches the living ones (those held since before a restart among them).
    """
    held = [(vs.spec, h) for vs in node.volumes.values() for h in sorted(vs.holders) if h.process is not None]
    if not held:
        return
    living = yield from ask(LivingProcesses(tuple(sorted({h.process for _, h in held if h.process}))))
    for spec, holder in held:
        if holder.process in living:
            yield WatchProcess(holder.process)
            continue
        fields: dict[str, object] = {"holder": str(holder), "volume": spec.key}
        yield Say(Level.INFO, "the process of holder {holder} of {volume} has ended: releasing it", fields)
        try:
            yield from release(node, spec, holder)
        except MountdError as e:
            yield Say(Level.ERROR, "cannot release {holder} of {volume}: {error}", {**fields, "error": e.message})


def _probe_one(node: NodeState, vs: VolumeState) -> Proc[None]:
    if not (yield from kernel_has(vs)):
        if vs.count() == 0:
            vs.enter(Phase.UNMOUNTED)
            vs.busy_pids = []
            return
        if vs.phase in (Phase.UNMOUNTED, Phase.FAILED):
            # Never mounted yet (an acquire is mounting it now) or its last mount failed: nothing
            # vanished and no disk broke; mount it once the lock is free (or adopt the new mount).
            yield from remount_if_held(node, vs)
            return
        vs.enter(Phase.MISSING)
        yield Say(Level.WARN, "{volume} vanished from {mountpoint} while held: mounting it again", vs.where())
        yield from mark_broken(vs, "it vanished from the mount table")
        yield from remount_if_held(node, vs)
        return
    answered = yield from probe(node, vs)
    if answered is Probe.HUNG:
        vs.enter(Phase.HUNG)
    elif answered is Probe.DISCONNECTED:
        yield from disconnected(node, vs)
    elif answered is Probe.DEAD:
        vs.enter(Phase.DEAD)
        yield from remount_if_held(node, vs)
    elif vs.phase is Phase.BUSY:
        vs.busy_pids = yield from ask(PidsUsing(vs.mountpoint))
        yield from watch_client(node, vs)
    else:
        yield from reconnected(vs)
        vs.enter(Phase.MOUNTED)
        yield from watch_client(node, vs)
