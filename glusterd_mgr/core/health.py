"""What is at a mountpoint and how its mount fares: the mount table, a probe, the FUSE client, its connections.

Every function reads (and records what it learned in the volume's state);
none mounts or unmounts.
"""

from __future__ import annotations

import errno

from . import fuse_client
from .effects import Clients, IsLocked, Level, LogSize, LogTail, Metric, Now, Observe, Proc, ReadTable, Resolve, Say, Statvfs, ask
from .errors import Disconnected, OperationTimeout, StorageError
from .mountinfo import MountRecord, stack_in
from .mounts import Probe, log_file_for
from .state import NodeState, Phase, VolumeState, mount_key
from .volume import VolumeSpec, parse_source, same_volume

__all__ = [
    "LOG_WINDOW",
    "disconnected",
    "fast",
    "find_client",
    "is_ours",
    "kernel_has",
    "mark_broken",
    "not_connected",
    "ours_in",
    "probe",
    "reconnected",
    "stack",
    "watch_client",
]

LOG_WINDOW = 256 * 1024
"""How much of a client log's end is read at most when looking for the servers it lost."""


def stack(mountpoint: str, fresh: bool = True) -> Proc[list[MountRecord]]:
    return stack_in((yield from ask(ReadTable(fresh))), mountpoint)


def is_ours(spec: VolumeSpec, record: MountRecord) -> Proc[bool]:
    """A glusterfs mount of this volume name from this server (compared by address when names differ)."""
    source = parse_source(record.source)
    if not record.is_glusterfs or source is None or source.volume != spec.volume:
        return False
    if source.host.lower() == spec.mount_host.lower():
        return True
    mine = yield from ask(Resolve(spec.host))
    theirs = yield from ask(Resolve(source.host))
    return same_volume(spec, source, mine, theirs)


def ours_in(spec: VolumeSpec, mountpoint: str) -> Proc[int]:
    """How many mounts of this volume are stacked on ``mountpoint`` (read afresh)."""
    count = 0
    for record in (yield from stack(mountpoint)):
        count += yield from is_ours(spec, record)
    return count


def kernel_has(vs: VolumeState) -> Proc[bool]:
    """Cheap check (cached table, no resolution): the top mount is a glusterfs one of this volume name."""
    records = yield from stack(vs.mountpoint, fresh=False)
    if not records:
        return False
    source = parse_source(records[-1].source)
    return records[-1].is_glusterfs and source is not None and source.volume == vs.spec.volume


def fast(vs: VolumeState, phases: tuple[Phase, ...]) -> Proc[bool]:
    """Whether a call may use the mount without the lock: it is up, and no mount change is under way."""
    if vs.phase not in phases or (yield from ask(IsLocked(mount_key(vs.mountpoint)))):
        return False
    return (yield from kernel_has(vs))


def probe(node: NodeState, vs: VolumeState, timeout: float | None = None) -> Proc[Probe]:
    """Whether the mount answers within ``timeout`` (the probe timeout): a statvfs, classified; it refreshes the space figures."""
    try:
        vs.space = yield from ask(Statvfs(vs.mountpoint, node.config.probe_timeout if timeout is None else timeout))
    except OperationTimeout:
        return Probe.HUNG
    except StorageError as e:
        if e.data.get("errno") == errno.errorcode[errno.ENOTCONN]:
            return (yield from not_connected(vs))
        raise
    return Probe.OK


def not_connected(vs: VolumeState) -> Proc[Probe]:
    """ENOTCONN: DEAD when the mount's FUSE client is gone, DISCONNECTED when it lives (it reaches no brick).

    A client dies by exiting, and an aborted FUSE connection makes it exit too; a living one that
    answers ENOTCONN is cut off from its servers and reconnects by itself when the network heals.
    """
    client = yield from find_client(vs)
    return Probe.DEAD if client is None else Probe.DISCONNECTED


def find_client(vs: VolumeState, fresh: bool = False) -> Proc[fuse_client.ClientStats | None]:
    """The client that carries the mount, with its figures now; None when it is gone.

    The client the daemon started or adopted is known by its PID, so a second one that claims the
    same mountpoint (left by hand, or by a lazy detach) never stands in for it.  ``fresh``: the
    mount was just made, so its client is the newest claimant.
    """
    claimants = yield from ask(Clients(vs.mountpoint))
    if fresh or vs.client is None:
        found = vs.client = claimants[0] if claimants else None
    else:  # a dead one stays known by its PID until a new mount replaces it: no stray stands in for it
        known = vs.client.pid
        found = next((c for c in claimants if c.pid == known), None)
        vs.client = found or vs.client
    pids = sorted(c.pid for c in claimants) if len(claimants) > 1 else []
    if pids and pids != vs.claimants:
        fields = {**vs.where(), "pids": pids, "carrier": found.pid if found else "none of them"}
        yield Say(Level.WARN, "{pids} FUSE clients claim {mountpoint} ({volume}); the mount's own is {carrier}", fields)
    vs.claimants = pids
    return found


def watch_client(node: NodeState, vs: VolumeState, fresh: bool = False) -> Proc[None]:
    """Refresh the FUSE client's figures; warn once each time its memory crosses the threshold."""
    try:
        yield from find_client(vs, fresh)
    except Exception as e:  # figures only: never fails a mount or a probe
        yield Say(Level.WARN, "cannot read the FUSE client of {mountpoint}: {error}", {"mountpoint": vs.mountpoint, "error": e})
        return
    limit = node.config.client_memory_warn_bytes
    over = fuse_client.over_threshold(vs.client, limit)
    if over and not vs.memory_warned and vs.client is not None:
        fields = {"pid": vs.client.pid, "volume": vs.spec.key, "mib": vs.client.resident_memory_bytes >> 20, "limit": limit >> 20}
        yield Say(
            Level.WARN,
            "the FUSE client {pid} of {volume} uses {mib} MiB (threshold {limit} MiB): drain this node "
            "(gnt-node migrate) and let the volume remount before the kernel kills the client",
            fields,
        )
    vs.memory_warned = over


def mark_broken(vs: VolumeState, why: str) -> Proc[None]:
    """Name the instances whose open disks died with the mount: a remount cannot give a running guest its disk back."""
    new = {h for h in vs.holders if h.kind == "instance"} - vs.broken
    if not new:
        return
    vs.broken |= new
    fields = {**vs.where(), "why": why, "holders": ", ".join(h.id for h in sorted(new)), "advice": fuse_client.FULL_RESTART_ADVICE}
    yield Say(Level.ERROR, "{volume} on {mountpoint} failed under its holders ({why}): {holders}; {advice}", fields)


def disconnected(node: NodeState, vs: VolumeState) -> Proc[Disconnected]:
    """Note that the mount's living client reaches no brick; the error a call that needs the mount gets.

    Never detached or remounted: the guests' open disks stay on this client and work again when it
    reconnects.  Its log says which servers it lost.
    """
    path = log_file_for(node.config.log_dir, vs.mountpoint)
    size = yield from ask(LogSize(path))
    read = 0 if vs.log_offset is None or size < vs.log_offset else vs.log_offset  # nothing yet, or a new log
    start = max(read, size - LOG_WINDOW)
    vs.links.feed((yield from ask(LogTail(path, start))))
    vs.log_offset = size
    now = yield from ask(Now())
    servers = ", ".join(vs.links.unreachable()) or "its bricks"
    pid = vs.client.pid if vs.client else "?"
    fields = {**vs.where(), "pid": pid, "servers": servers}
    if vs.phase is not Phase.DISCONNECTED:
        vs.enter(Phase.DISCONNECTED)
        vs.disconnected_since = now
        yield Observe(Metric.DISCONNECTIONS, vs.spec.key)
        yield Say(
            Level.WARN,
            "{volume} on {mountpoint} is disconnected: its FUSE client {pid} lives but cannot reach {servers}; "
            "the mount stays and reconnects by itself when the network heals (new holders and disk calls are refused meanwhile)",
            fields,
        )
    since = now - (vs.disconnected_since or now)
    message = (
        f"{vs.spec.key} on {vs.mountpoint} is disconnected: its FUSE client (pid {pid}) has not reached {servers} "
        f"for {since:.0f} s; the mount stays and reconnects by itself when the network heals: try again then"
    )
    vs.last_error = message
    return Disconnected(message, servers=vs.links.unreachable(), mountpoint=vs.mountpoint)


def reconnected(vs: VolumeState) -> Proc[None]:
    """A disconnected mount answers again: the same client and mount, nothing to do but say so."""
    if vs.phase is not Phase.DISCONNECTED:
        return
    seconds = (yield from ask(Now())) - (vs.disconnected_since or 0.0)
    vs.disconnected_since, vs.last_error = None, None
    yield Say(Level.INFO, "{volume} on {mountpoint} reconnected after {seconds:.0f} s", {**vs.where(), "seconds": seconds})
