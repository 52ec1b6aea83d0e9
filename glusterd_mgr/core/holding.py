"""Holder changes: an acquire counts its holder at once, mounts, journals, answers; a release journals, then unmounts once.

A first holder is counted before any wait, so a concurrent last release
cannot unmount under it; a release stays counted until it is durable, so no
unmount runs under a holder whose release may still fail.
"""

from __future__ import annotations

from .effects import Begin, End, Proc, Settle, WriteJournal
from .health import fast
from .holders import Change, Holder
from .mounting import locked_ensure
from .results import AcquireResult, ReleaseResult
from .state import UP, NodeState, Phase
from .unmounting import release_if_idle
from .volume import VolumeSpec

__all__ = ["acquire", "release"]


def acquire(node: NodeState, spec: VolumeSpec, holder: Holder) -> Proc[AcquireResult]:
    key = (spec, holder)
    yield Settle(key)
    vs = node.state(spec)
    if holder in vs.holders:  # a retried call: the holder is durable already
        # Still a change in flight while it waits for the mount: a release of the same holder waits
        # behind it instead of overtaking it and leaving an answered acquire (and its mount) unheld.
        yield Begin(key)
        try:
            up = yield from fast(vs, (Phase.MOUNTED, Phase.HUNG, Phase.BUSY))
            mounted_now = False if up else (yield from locked_ensure(node, vs))
        except Exception as e:
            yield End(key, e)
            raise
        yield End(key)
        vs.broken.discard(holder)  # acquired again after the recovery: a fresh open of the disk
        return {"mountpoint": vs.mountpoint, "holders": len(vs.holders), "mounted_now": mounted_now}
    up = vs.count() > 0 and (yield from fast(vs, (Phase.MOUNTED, Phase.HUNG)))
    # Counted at once, before any wait: a concurrent last release cannot unmount under it.
    vs.holders.add(holder)
    yield Begin(key)
    try:
        mounted_now = False if up else (yield from locked_ensure(node, vs))
        yield WriteJournal(Change("acquire", spec, holder, vs.mountpoint))
    except Exception as e:
        vs.holders.discard(holder)
        yield End(key, e)
        if vs.phase in UP:  # mounted for nobody after all: the one unmount attempt
            yield from release_if_idle(node, vs)
        raise
    yield End(key)
    vs.broken.discard(holder)
    return {"mountpoint": vs.mountpoint, "holders": len(vs.holders), "mounted_now": mounted_now}


def release(node: NodeState, spec: VolumeSpec, holder: Holder) -> Proc[ReleaseResult]:
    key = (spec, holder)
    yield Settle(key)
    vs = node.volumes.get(spec)
    if vs is None or holder not in vs.holders:
        count = len(vs.holders) if vs else 0
        return {"holders": count, "known": False, "unmounted": False, "busy": bool(vs and vs.phase is Phase.BUSY)}
    # Counted until the release is durable: an unmount decided meanwhile (a failed acquire's, say)
    # must not run under a holder whose release may still fail and leave it held.
    yield Begin(key)
    try:
        yield WriteJournal(Change("release", spec, holder))
    except Exception as e:
        yield End(key, e)
        raise
    vs.holders.discard(holder)
    vs.broken.discard(holder)
    yield End(key)
    unmounted, busy = yield from release_if_idle(node, vs)
    return {"holders": len(vs.holders), "known": True, "unmounted": unmounted, "busy": busy}
