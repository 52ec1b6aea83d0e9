"""Holder changes, one at a time per holder: each runs whole under the holder's lock, its answer built inside it.

An acquire counts its holder before anything else, then mounts, journals and
answers: a concurrent last release of another holder cannot unmount under it
(the unmount checks the count under the mountpoint's lock).  A release stays
counted until it is durable, so no unmount runs under a holder whose release
may still fail; then it makes the one unmount attempt.  Two changes of one
holder never interleave: a release waits behind an acquire still mounting,
instead of overtaking it and leaving an answered acquire (and its mount) unheld.
"""

from __future__ import annotations

from collections.abc import Hashable

from .effects import Locked, Proc, WatchProcess, WriteJournal, ask
from .health import fast
from .holders import Change, Holder
from .mounting import locked_ensure
from .results import AcquireResult, ReleaseResult
from .state import UP, NodeState, Phase
from .unmounting import release_if_idle
from .volume import VolumeSpec

__all__ = ["acquire", "holder_key", "release"]


def holder_key(spec: VolumeSpec, holder: Holder) -> tuple[Hashable, ...]:
    """The lock that serializes the changes of one holder of one volume."""
    return ("holder", spec, holder)


def acquire(node: NodeState, spec: VolumeSpec, holder: Holder) -> Proc[AcquireResult]:
    return (yield from ask(Locked((holder_key(spec, holder),), _acquire(node, spec, holder))))


def release(node: NodeState, spec: VolumeSpec, holder: Holder) -> Proc[ReleaseResult]:
    return (yield from ask(Locked((holder_key(spec, holder),), _release(node, spec, holder))))


def _acquire(node: NodeState, spec: VolumeSpec, holder: Holder) -> Proc[AcquireResult]:
    vs = node.state(spec)
    if holder in vs.holders:  # a retried call: the holder is durable already
        up = yield from fast(vs, (Phase.MOUNTED, Phase.HUNG, Phase.BUSY))
        mounted_now = False if up else (yield from locked_ensure(node, vs))
    else:
        vs.holders.add(holder)  # counted before any wait: a concurrent last release cannot unmount under it
        try:
            up = vs.count() > 1 and (yield from fast(vs, (Phase.MOUNTED, Phase.HUNG)))
            mounted_now = False if up else (yield from locked_ensure(node, vs))
            yield WriteJournal(Change("acquire", spec, holder, vs.mountpoint))
        except Exception:
            vs.holders.discard(holder)
            if vs.phase in UP:  # mounted for nobody after all: the one unmount attempt
                yield from release_if_idle(node, vs)
            raise
    vs.broken.discard(holder)  # acquired (again): a fresh open of the disk
    if holder.process is not None:
        yield WatchProcess(holder.process)  # given back the moment it ends
    return {"mountpoint": vs.mountpoint, "holders": len(vs.holders), "mounted_now": mounted_now}


def _release(node: NodeState, spec: VolumeSpec, holder: Holder) -> Proc[ReleaseResult]:
    vs = node.volumes.get(spec)
    if vs is None or holder not in vs.holders:
        count = len(vs.holders) if vs else 0
        return {"holders": count, "known": False, "unmounted": False, "busy": bool(vs and vs.phase is Phase.BUSY)}
    yield WriteJournal(Change("release", spec, holder))  # counted until it is durable
    vs.holders.discard(holder)
    vs.broken.discard(holder)
    unmounted, busy = yield from release_if_idle(node, vs)
    return {"holders": len(vs.holders), "known": True, "unmounted": unmounted, "busy": busy}
