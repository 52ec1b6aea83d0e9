"""The engine: holders, mounts and disks of every volume on this node.

It keeps the live holder set of each volume, makes every holder change durable
through the journal before answering, mounts a volume when its first holder
arrives and attempts one unmount when its last holder leaves.  All I/O goes
through ``System``; decisions come from the pure ``mounts.decide``.

Concurrency: a ``DeferredLock`` per mountpoint serializes mount changes.  A
holder arriving at a volume that is mounted and held needs no lock: it is
counted at once (so a concurrent last release cannot unmount under it) and
answered once its journal line is durable.
"""

from __future__ import annotations

import errno
import os
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar

from twisted.internet.defer import Deferred, DeferredLock, ensureDeferred, gatherResults
from twisted.logger import Logger
from twisted.python.failure import Failure

from . import disks, fuse_client, mounts, volfile_servers
from .errors import MountdError, MountFailed, NotMounted, OperationTimeout, StorageError, VolumeConflict
from .holders import Holder, HolderTable
from .journal import Change, write_file_atomically
from .mountinfo import MountRecord, stack_in
from .mounts import Action, Probe, UnmountMode
from .policy import DEFAULT_DISK_FOLDER, check_disk_path, check_storage_dir
from .statvfs import space_info
from .system import ProcessResult, System
from .volume import VolumeSpec, parse_source, same_volume

T = TypeVar("T")
log = Logger()

# Phases a volume's mount can be in, as ``status`` and the metrics report them.
UNMOUNTED = "unmounted"
MOUNTED = "mounted"
BUSY = "busy"  # the last holder left, the unmount found it busy: the mount stays
DEAD = "dead"  # FUSE client gone (ENOTCONN)
HUNG = "hung"  # probe timed out
MISSING = "missing"  # vanished from the mount table while holders exist
FAILED = "failed"  # the last mount attempt failed
PHASES = (UNMOUNTED, MOUNTED, BUSY, DEAD, HUNG, MISSING, FAILED)


class JournalSink(Protocol):
    """What the engine needs from the durable journal (``journal.JournalWriter``)."""

    def write(self, change: Change) -> Deferred[None]: ...


@dataclass
class EngineConfig:
    storage_dir: str
    whitelist: list[str]
    whitelist_file: str
    disk_folder: str = DEFAULT_DISK_FOLDER
    unmount_mode: UnmountMode = UnmountMode.PLAIN
    mount_timeout: float = 30.0
    fs_timeout: float = 10.0
    probe_timeout: float = 5.0
    log_dir: str = "/var/log/glusterfs"
    backup_servers: tuple[str, ...] = ()
    client_oom_score_adj: int | None = fuse_client.DEFAULT_OOM_SCORE_ADJ
    client_memory_warn_bytes: int = 2 << 30


MOUNT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class Buckets:
    """A histogram's bucket counts, kept in constant memory."""

    bounds: tuple[float, ...] = MOUNT_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(MOUNT_BUCKETS) + 1))
    total: float = 0.0

    def observe(self, value: float) -> None:
        index = next((i for i, bound in enumerate(self.bounds) if value <= bound), len(self.bounds))
        self.counts[index] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, count in zip((*(repr(b) for b in self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out


@dataclass
class Counters:
    """Event counts for the metrics (monotonic)."""

    mount_attempts: Counter[str] = field(default_factory=Counter)
    mount_failures: Counter[str] = field(default_factory=Counter)
    unmount_attempts: Counter[str] = field(default_factory=Counter)
    unmount_busy: Counter[str] = field(default_factory=Counter)
    recoveries: Counter[str] = field(default_factory=Counter)
    mount_seconds: dict[str, Buckets] = field(default_factory=dict)


@dataclass
class VolumeState:
    spec: VolumeSpec
    mountpoint: str
    holders: set[Holder] = field(default_factory=set)
    jobs: Counter[Holder] = field(default_factory=Counter)
    """Ephemeral job holders of in-flight disk operations (not journaled: they die with the process)."""
    phase: str = UNMOUNTED
    last_error: str | None = None
    busy_pids: list[int] = field(default_factory=list)
    space: dict[str, Any] | None = None
    probing: bool = False
    swept: bool = False
    client: fuse_client.ClientStats | None = None
    """The FUSE client at the last mount or probe."""
    memory_warned: bool = False
    broken: set[Holder] = field(default_factory=set)
    """Instance holders whose open disks were on a client that died: their guests need a full restart."""

    def count(self) -> int:
        return len(self.holders) + sum(self.jobs.values())

    def status(self) -> dict[str, Any]:
        listed = sorted(self.holders) + sorted(self.jobs)
        return {
            "volume": self.spec.to_json(),
            "mountpoint": self.mountpoint,
            "state": self.phase,
            "holders": [h.to_json() for h in listed],
            "last_error": self.last_error,
            "busy_pids": list(self.busy_pids),
            "broken_holders": [h.to_json() for h in sorted(self.broken)],
            "action": f"{len(self.broken)} holder(s) lost their disks with a dead FUSE client; {fuse_client.FULL_RESTART_ADVICE}"
            if self.broken
            else None,
        }


class Engine:
    def __init__(
        self,
        reactor: Any,
        system: System,
        journal: JournalSink,
        config: EngineConfig,
        table: HolderTable,
        servers: volfile_servers.ServerMemory | None = None,
    ) -> None:
        self.reactor = reactor
        self.system = system
        self.journal = journal
        self.config = config
        self.servers = servers or volfile_servers.ServerMemory()
        self._servers_saving = DeferredLock()
        self._scopes = int(reactor.seconds())  # scope serials: unique across restarts too
        self.counters = Counters()
        self.volumes: dict[VolumeSpec, VolumeState] = {}
        self._locks: dict[str, DeferredLock] = {}
        self._disk_locks: dict[tuple[VolumeSpec, str], DeferredLock] = {}
        self._job_serial = 0
        self._pending: dict[tuple[VolumeSpec, Holder], _Shared] = {}
        for spec, mountpoint, holder in table.entries():
            self._state(spec, mountpoint).holders.add(holder)

    # -- helpers ---------------------------------------------------------

    def _state(self, spec: VolumeSpec, mountpoint: str | None = None) -> VolumeState:
        vs = self.volumes.get(spec)
        if vs is None:
            vs = VolumeState(spec, mountpoint or self.config.storage_dir)
            self.volumes[spec] = vs
        elif vs.count() == 0 and vs.phase in (UNMOUNTED, FAILED) and mountpoint is None:
            vs.mountpoint = self.config.storage_dir  # follows a changed ssconf while nothing is mounted
        return vs

    def _lock(self, mountpoint: str) -> DeferredLock:
        return self._locks.setdefault(mountpoint, DeferredLock())

    async def _locked(self, mountpoint: str, fn: Callable[[], Awaitable[T]]) -> T:
        lock = self._lock(mountpoint)
        await lock.acquire()
        try:
            return await fn()
        finally:
            lock.release()

    def _stack(self, mountpoint: str, fresh: bool = True) -> list[MountRecord]:
        """The mounts on ``mountpoint``, bottom first; decisions always read the kernel afresh."""
        return stack_in(self.system.read_mountinfo(fresh), mountpoint)

    async def _is_ours(self, spec: VolumeSpec, record: MountRecord) -> bool:
        source = parse_source(record.source)
        if not record.is_glusterfs or source is None or source.volume != spec.volume:
            return False
        if source.host.lower() == spec.mount_host.lower():
            return True
        mine, theirs = await self.system.resolve(spec.host), await self.system.resolve(source.host)
        return same_volume(spec, source, mine, theirs)

    async def _ours_in(self, spec: VolumeSpec, stack: list[MountRecord]) -> list[MountRecord]:
        return [r for r in stack if await self._is_ours(spec, r)]

    def _kernel_has(self, vs: VolumeState) -> bool:
        """Cheap check (cached table, no resolution): the top mount is a glusterfs one of this volume name."""
        stack = self._stack(vs.mountpoint, fresh=False)
        if not stack:
            return False
        source = parse_source(stack[-1].source)
        return stack[-1].is_glusterfs and source is not None and source.volume == vs.spec.volume

    def _check_policy(self, mountpoint: str) -> None:
        check_storage_dir(mountpoint, self.config.whitelist, self.config.whitelist_file)

    async def _probe(self, vs: VolumeState, timeout: float) -> Probe:
        try:
            st = await self.system.fs(vs.mountpoint, partial(os.statvfs, vs.mountpoint), timeout)
        except OperationTimeout:
            return Probe.HUNG
        except OSError as e:
            if e.errno == errno.ENOTCONN:
                return Probe.DEAD
            raise disks.storage_error("check", vs.mountpoint, e) from None
        vs.space = space_info(st)
        return Probe.OK

    # -- mounting --------------------------------------------------------

    async def _ensure_mounted(self, vs: VolumeState) -> bool:
        """Make the volume mounted at its mountpoint (caller holds its lock); True if it mounted now.

        The first time in this process, also sweep what creates cut by a crash left behind.
        """
        mounted_now = await self._make_mounted(vs)
        if not vs.swept:
            try:
                stale = await self.system.fs(
                    vs.mountpoint,
                    partial(disks.sweep_temps, vs.mountpoint, tuple(self.config.disk_folder.split("/"))),
                    self.config.fs_timeout,
                )
            except (MountdError, OSError) as e:
                log.warn("cannot sweep stale temporary files on {volume}: {error}", volume=vs.spec.key, error=e)
            else:
                vs.swept = True
                if stale:
                    log.info("removed {n} temporary file(s) of creates cut short: {names}", n=len(stale), names=stale)
        return mounted_now

    async def _make_mounted(self, vs: VolumeState) -> bool:
        self._check_policy(vs.mountpoint)
        for other in self.volumes.values():
            if other is not vs and other.mountpoint == vs.mountpoint and other.count() > 0:
                raise VolumeConflict(
                    f"{vs.mountpoint} holds volume {other.spec.key} for {other.count()} holder(s); "
                    f"release them before using {vs.spec.key} there",
                    mountpoint=vs.mountpoint,
                )
        stack = self._stack(vs.mountpoint)
        ours = bool(stack) and await self._is_ours(vs.spec, stack[-1])
        probe = await self._probe(vs, self.config.probe_timeout) if ours else None
        decision = mounts.decide(vs.spec, stack, lambda _record: ours, probe)
        if decision.action is Action.CONFLICT:
            top = decision.top
            assert top is not None
            raise VolumeConflict(
                f"{vs.mountpoint} already has {top.source} ({top.fstype}) mounted, not {vs.spec.key}; "
                f"unmount it or point gluster_storage_dir elsewhere",
                mountpoint=vs.mountpoint,
                mounted=top.source,
            )
        if decision.action is Action.WAIT:
            vs.phase = HUNG
            raise OperationTimeout(f"{vs.spec.key} is mounted on {vs.mountpoint} but does not answer; is the server frozen?")
        if decision.action is Action.ADOPT:
            if vs.phase not in (MOUNTED, BUSY):
                log.info("adopting the existing mount of {volume} on {mountpoint}", volume=vs.spec.key, mountpoint=vs.mountpoint)
            vs.phase = MOUNTED
            return False
        if decision.action is Action.RECOVER:
            log.warn(
                "{volume} on {mountpoint} is dead (ENOTCONN): detaching it and mounting afresh",
                volume=vs.spec.key,
                mountpoint=vs.mountpoint,
            )
            self.counters.recoveries[vs.spec.key] += 1
            vs.phase = DEAD
            self._mark_broken(vs, "its FUSE client died")
            await self.system.run(mounts.umount_argv(vs.mountpoint, UnmountMode.LAZY), "/", self.config.mount_timeout)
            if await self._ours_in(vs.spec, self._stack(vs.mountpoint)):
                raise MountFailed(f"could not detach the dead mount of {vs.spec.key} on {vs.mountpoint}")
        await self._mount(vs)
        return True

    async def _prepare_mountpoint(self, mountpoint: str) -> None:
        def mkdir() -> None:
            if os.path.lexists(mountpoint) and not os.path.isdir(mountpoint):
                raise MountFailed(f"mountpoint {mountpoint} exists but is not a directory; move it away")
            os.makedirs(mountpoint, mode=0o755, exist_ok=True)

        await self.system.fs(os.path.dirname(mountpoint) or "/", mkdir, self.config.fs_timeout)

    async def _mount(self, vs: VolumeState) -> None:
        spec, mountpoint = vs.spec, vs.mountpoint
        self.counters.mount_attempts[spec.key] += 1
        started = self.reactor.seconds()
        try:
            await self._prepare_mountpoint(mountpoint)
            log_file = mounts.log_file_for(self.config.log_dir, mountpoint)
            log_start = await self.system.fs("log", partial(_size, log_file), 5.0)
            argv = mounts.mount_argv(spec, mountpoint, log_file, self.servers.backups(spec, self.config.backup_servers))
            if self.system.systemd_booted:
                argv = fuse_client.scoped_argv(argv, *self._next_scope(vs))
            result = await self.system.run(argv, mountpoint, self.config.mount_timeout)
            ours = await self._ours_in(spec, self._stack(mountpoint))
            note = ""
            if ours:
                probe = await self._probe(vs, self.config.probe_timeout)
                if probe is Probe.OK:
                    vs.phase, vs.last_error = MOUNTED, None
                    self.counters.mount_seconds.setdefault(spec.key, Buckets()).observe(self.reactor.seconds() - started)
                    log.info("mounted {volume} on {mountpoint}", volume=spec.key, mountpoint=mountpoint)
                    await self._watch_client(vs)
                    await self._protect_client(vs)
                    await self._learn_servers(spec, log_file, log_start)
                    return
                # Leave no half-made mount behind.
                await self.system.run(mounts.umount_argv(mountpoint, UnmountMode.LAZY), "/", self.config.mount_timeout)
                note = f"the mount it made did not answer ({probe.value}) and was detached"
            # The FUSE client daemonizes into a session of its own, so the helper's timeout did not reach
            # it.  Nothing of ours is mounted here now (we only mount on an empty or detached mountpoint,
            # and detached what this attempt made), so every client still serving this path is an orphan.
            orphans = await self.system.client_pids(mountpoint)
            if orphans:
                self.system.kill(orphans)
                log.warn("killed the FUSE client(s) {pids} left by the failed mount of {volume}", pids=orphans, volume=spec.key)
            log_text = await self.system.fs("log", partial(_read_from, log_file, log_start), 5.0)
            raise MountFailed(await self._diagnose(spec, mountpoint, argv, result, log_text, note), log_file=log_file)
        except MountdError as e:
            self.counters.mount_failures[spec.key] += 1
            vs.phase, vs.last_error = FAILED, e.message
            raise

    def _mark_broken(self, vs: VolumeState, why: str) -> None:
        """Name the instances whose open disks died with the mount: a remount cannot give a running guest its disk back."""
        new = {h for h in vs.holders if h.kind == "instance"} - vs.broken
        if not new:
            return
        vs.broken |= new
        log.error(
            "{volume} on {mountpoint} failed under its holders ({why}): {holders}; {advice}",
            volume=vs.spec.key,
            mountpoint=vs.mountpoint,
            why=why,
            holders=", ".join(h.id for h in sorted(new)),
            advice=fuse_client.FULL_RESTART_ADVICE,
        )

    async def _watch_client(self, vs: VolumeState) -> None:
        """Refresh the FUSE client's figures; warn once each time its memory crosses the threshold."""
        try:
            vs.client = await self.system.client_stats(vs.mountpoint)
        except Exception as e:  # figures only: never fails a mount or a probe
            log.warn("cannot read the FUSE client of {mountpoint}: {error}", mountpoint=vs.mountpoint, error=e)
            return
        over = fuse_client.over_threshold(vs.client, self.config.client_memory_warn_bytes)
        if over and not vs.memory_warned and vs.client is not None:
            log.warn(
                "the FUSE client {pid} of {volume} uses {mib} MiB (threshold {limit} MiB): drain this node "
                "(gnt-node migrate) and let the volume remount before the kernel kills the client",
                pid=vs.client.pid,
                volume=vs.spec.key,
                mib=vs.client.resident_memory_bytes >> 20,
                limit=self.config.client_memory_warn_bytes >> 20,
            )
        vs.memory_warned = over

    async def _protect_client(self, vs: VolumeState) -> None:
        """Give the client the configured OOM score, so the kernel kills a guest before the client of every guest's disk."""
        wanted, client = self.config.client_oom_score_adj, vs.client
        if wanted is None or client is None or client.oom_score_adj == wanted:
            return
        problem = await self.system.set_oom_score_adj(client.pid, wanted)
        if problem:
            log.warn(
                "cannot set the OOM score of the FUSE client {pid} of {volume} to {wanted}: {problem}",
                pid=client.pid,
                volume=vs.spec.key,
                wanted=wanted,
                problem=problem,
            )
        await self._watch_client(vs)

    async def _learn_servers(self, spec: VolumeSpec, log_file: str, log_start: int) -> None:
        """Remember the brick hosts of a fresh mount's graph: later mounts then survive the named server's absence."""
        try:
            text = await self.system.fs("log", partial(_read_from, log_file, log_start), 5.0)
            if not self.servers.learn(spec, volfile_servers.brick_hosts(text)):
                return
            log.info("{volume} is served by {hosts}", volume=spec.key, hosts=", ".join(self.servers.known(spec)))
            path = self.servers.path
            if path is not None:
                # Serialized, and the snapshot taken when its turn comes: an older one never lands last.
                await self._servers_saving.run(
                    lambda: self.system.fs("state", lambda: write_file_atomically(path, self.servers.to_text().encode()), 5.0)
                )
        except Exception as e:  # the mount is made: a failure here costs only the memory of its servers
            log.warn("cannot remember the servers of {volume}: {error}", volume=spec.key, error=e)

    async def _diagnose(self, spec: VolumeSpec, mountpoint: str, argv: list[str], result: ProcessResult, log_text: str, note: str) -> str:
        """A cause a person can act on, from the client log, the file system and a TCP probe."""
        head = f"mounting {spec.key} on {mountpoint} failed"
        if result.timed_out:
            head += f" (mount.glusterfs did not finish within {self.config.mount_timeout:g} s and was killed)"
        causes: list[str] = [note] if note else []

        def confusing() -> list[str]:
            return [p for p in mounts.confusing_paths(spec, argv[4]) if os.path.lexists(os.path.join(mountpoint, p))]

        try:
            for path in await self.system.fs("diagnose", confusing, 5.0):
                causes.append(f"a path named {path!r} exists in {mountpoint} and confuses mount.glusterfs: remove it")
        except (MountdError, OSError) as e:
            causes.append(f"cannot inspect {mountpoint}: {e}")
        reason = await self.system.tcp_probe(spec.mount_host, spec.port, 5.0)
        if reason is not None:
            causes.append(f"cannot reach {spec.mount_host}:{spec.port}: {reason}")
        from_log = mounts.diagnose_log(spec, log_text)
        if from_log and not (reason and "refused" in from_log):
            causes.append(from_log)
        said = result.last_line
        tail = f"; mount.glusterfs said: {said}" if said else ""
        return f"{head}: {'; '.join(causes) if causes else 'no known cause; see the client log'}{tail}"

    async def _unmount(self, vs: VolumeState) -> tuple[bool, bool]:
        """One unmount attempt (caller holds the lock); returns (unmounted, busy)."""
        ours = await self._ours_in(vs.spec, self._stack(vs.mountpoint))
        if not ours:
            vs.phase = UNMOUNTED
            return False, False
        self.counters.unmount_attempts[vs.spec.key] += 1
        result = await self.system.run(mounts.umount_argv(vs.mountpoint, self.config.unmount_mode), "/", self.config.mount_timeout)
        if len(await self._ours_in(vs.spec, self._stack(vs.mountpoint))) < len(ours):
            vs.phase, vs.busy_pids, vs.space, vs.last_error, vs.client = UNMOUNTED, [], None, None, None
            log.info("unmounted {volume} from {mountpoint}", volume=vs.spec.key, mountpoint=vs.mountpoint)
            return True, False
        self.counters.unmount_busy[vs.spec.key] += 1
        vs.phase = BUSY
        vs.busy_pids = await self.system.pids_using(vs.mountpoint)
        log.info(
            "{volume} on {mountpoint} stays mounted: {said} (pids {pids})",
            volume=vs.spec.key,
            mountpoint=vs.mountpoint,
            said=result.last_line or "busy",
            pids=vs.busy_pids,
        )
        return False, True

    async def _release_if_idle(self, vs: VolumeState) -> tuple[bool, bool]:
        """The one unmount attempt after the last holder left; its errors never undo what was committed."""

        async def attempt() -> tuple[bool, bool]:
            if vs.count() > 0:
                return False, False
            return await self._unmount(vs)

        if vs.count() > 0:
            return False, False
        try:
            return await self._locked(vs.mountpoint, attempt)
        except Exception as e:
            vs.last_error = f"unmount attempt failed: {e}"
            log.failure("unmount attempt of {volume} failed", volume=vs.spec.key)
            return False, False

    def _fast(self, vs: VolumeState, phases: tuple[str, ...]) -> bool:
        """Whether a call may use the mount without the lock: it is up, and no mount change is under way."""
        return vs.phase in phases and not self._lock(vs.mountpoint).locked and self._kernel_has(vs)

    async def _settle(self, key: tuple[VolumeSpec, Holder]) -> None:
        """Wait until no change of this holder is in flight: changes of one holder happen one at a time."""
        while (pending := self._pending.get(key)) is not None:
            try:
                await pending.wait()
            except Exception:
                pass  # that call reports its own failure; this one starts afresh

    async def _change(self, key: tuple[VolumeSpec, Holder], work: Callable[[], Awaitable[T]], undo: Callable[[], None]) -> T:
        """Run a holder change that others may wait for (``_settle``); ``undo`` it in memory if it fails."""
        outcome: Deferred[None] = Deferred()
        self._pending[key] = _Shared(outcome)
        # Waiters wake on the next turn of the reactor, once this call has built its answer: woken
        # at once, a waiting release would run before this acquire counts its holders.
        try:
            result = await work()
        except BaseException as e:
            undo()
            del self._pending[key]
            self.reactor.callLater(0, outcome.errback, Failure(e))
            raise
        del self._pending[key]
        self.reactor.callLater(0, outcome.callback, None)
        return result

    # -- holders ---------------------------------------------------------

    async def acquire(self, spec: VolumeSpec, holder: Holder) -> dict[str, Any]:
        key = (spec, holder)
        await self._settle(key)
        vs = self._state(spec)
        if holder in vs.holders:  # a retried call: the holder is durable already
            if self._fast(vs, (MOUNTED, HUNG, BUSY)):
                vs.broken.discard(holder)
                return {"mountpoint": vs.mountpoint, "holders": len(vs.holders), "mounted_now": False}
            mounted_now = await self._locked(vs.mountpoint, partial(self._ensure_mounted, vs))
            vs.broken.discard(holder)  # acquired again after the recovery: a fresh open of the disk
            return {"mountpoint": vs.mountpoint, "holders": len(vs.holders), "mounted_now": mounted_now}
        fast = vs.count() > 0 and self._fast(vs, (MOUNTED, HUNG))
        # Counted at once, before any wait: a concurrent last release cannot unmount under it.
        vs.holders.add(holder)

        async def work() -> bool:
            mounted_now = False if fast else await self._locked(vs.mountpoint, partial(self._ensure_mounted, vs))
            await self.journal.write(Change("acquire", spec, holder, vs.mountpoint))
            return mounted_now

        try:
            mounted_now = await self._change(key, work, lambda: vs.holders.discard(holder))
        except BaseException:
            if vs.phase in (MOUNTED, BUSY):  # mounted for nobody after all: the one unmount attempt
                await self._release_if_idle(vs)
            raise
        vs.broken.discard(holder)
        return {"mountpoint": vs.mountpoint, "holders": len(vs.holders), "mounted_now": mounted_now}

    async def release(self, spec: VolumeSpec, holder: Holder) -> dict[str, Any]:
        key = (spec, holder)
        await self._settle(key)
        vs = self.volumes.get(spec)
        if vs is None or holder not in vs.holders:
            count = len(vs.holders) if vs else 0
            return {"holders": count, "known": False, "unmounted": False, "busy": bool(vs and vs.phase == BUSY)}
        vs.holders.discard(holder)
        vs.broken.discard(holder)

        async def work() -> None:
            await self.journal.write(Change("release", spec, holder))

        await self._change(key, work, lambda: vs.holders.add(holder))
        unmounted, busy = await self._release_if_idle(vs)
        return {"holders": len(vs.holders), "known": True, "unmounted": unmounted, "busy": busy}

    # -- disks -----------------------------------------------------------

    async def _with_mount(self, spec: VolumeSpec, what: str, fn: Callable[[str], T], timeout: float) -> T:
        """Run ``fn(mountpoint)`` in the file-system pool with the volume mounted.

        An unmounted volume is mounted for the call under an ephemeral ``job``
        holder and released after it (one unmount attempt).
        """
        vs = self._state(spec)
        self._check_policy(vs.mountpoint)
        self._job_serial += 1
        job = Holder("job", f"{what}#{self._job_serial}")
        vs.jobs[job] += 1
        try:
            if not self._fast(vs, (MOUNTED, BUSY)):
                await self._locked(vs.mountpoint, partial(self._ensure_mounted, vs))
            try:
                return await self.system.fs(vs.mountpoint, partial(fn, vs.mountpoint), timeout)
            except StorageError as e:
                if e.data.get("errno") != "ENOTCONN":
                    raise
            # The FUSE client died under us: recover the mount (we hold it) and try once more.
            log.warn(
                "{volume} on {mountpoint} is dead (ENOTCONN) during {what}: recovering it",
                volume=spec.key,
                mountpoint=vs.mountpoint,
                what=what,
            )
            vs.phase = DEAD
            await self._locked(vs.mountpoint, partial(self._ensure_mounted, vs))
            return await self.system.fs(vs.mountpoint, partial(fn, vs.mountpoint), timeout)
        finally:
            vs.jobs[job] -= 1
            if vs.jobs[job] <= 0:
                del vs.jobs[job]
            await self._release_if_idle(vs)

    async def _disk_call(
        self, spec: VolumeSpec, paths: list[str], what: str, fn: Callable[..., dict[str, Any]], *args: Any, timeout: float | None = None
    ) -> dict[str, Any]:
        """Run a disk operation with the disks' locks held (in sorted order: two-disk calls cannot deadlock)."""
        checked = [check_disk_path(p, self.config.disk_folder) for p in paths]
        timeout = timeout or self.config.fs_timeout
        keys = sorted({(spec, d.relative) for d in checked}, key=lambda k: k[1])
        locks = [self._disk_locks.setdefault(k, DeferredLock()) for k in keys]
        for lock in locks:
            await lock.acquire()
        try:
            label = f"{what}:{checked[0].relative}"
            return await self._with_mount(spec, label, lambda root: fn(root, *checked, *args), timeout)
        finally:
            for key, lock in zip(keys, locks, strict=True):
                lock.release()
                if not lock.locked and not lock.waiting:
                    self._disk_locks.pop(key, None)

    async def disk_create(self, spec: VolumeSpec, path: str, size: int, preallocate: bool = False) -> dict[str, Any]:
        # Preallocation may write zeros where the file system cannot fallocate: allow for 64 MiB/s.
        timeout = self.config.fs_timeout + (size / 64 if preallocate else 0)
        return await self._disk_call(spec, [path], "create", disks.create, size, preallocate, timeout=timeout)

    async def disk_remove(self, spec: VolumeSpec, path: str) -> dict[str, Any]:
        return await self._disk_call(spec, [path], "remove", disks.remove)

    async def disk_grow(
        self, spec: VolumeSpec, path: str, amount: int, dryrun: bool = False, backingstore: bool = True, preallocate: bool = False
    ) -> dict[str, Any]:
        return await self._disk_call(spec, [path], "grow", disks.grow, amount, dryrun, backingstore, preallocate)

    async def disk_rename(self, spec: VolumeSpec, path: str, new_path: str) -> dict[str, Any]:
        return await self._disk_call(spec, [path, new_path], "rename", disks.rename)

    async def disk_info(self, spec: VolumeSpec, path: str) -> dict[str, Any]:
        result = await self._disk_call(spec, [path], "info", disks.info)
        return {**result, "uri": spec.uri(path), "mountpoint": self._state(spec).mountpoint}

    async def statvfs(self, spec: VolumeSpec) -> dict[str, Any]:
        """Space of a mounted volume; never mounts (a node not using the volume reports a failure)."""
        vs = self.volumes.get(spec)
        mountpoint = vs.mountpoint if vs else self.config.storage_dir
        if not await self._ours_in(spec, self._stack(mountpoint)):
            raise NotMounted(f"{spec.key} is not mounted on this node ({mountpoint}): no instance here uses it")
        st = await self.system.fs(mountpoint, partial(disks.statvfs, mountpoint), self.config.fs_timeout)
        info = space_info(st)
        if vs is not None:
            vs.space = info
        return info

    # -- recovery and health ---------------------------------------------

    async def recover(self) -> None:
        """After a start: adopt mounts of held volumes, remount missing ones, recover dead ones.

        Volumes are restored side by side (each mountpoint's lock still orders its own), so a
        few unreachable servers cost one mount timeout, not one each.
        """

        async def restore(vs: VolumeState) -> None:
            if not self._kernel_has(vs):
                self._mark_broken(vs, "its mount went away while the daemon was down")
            try:
                await self._locked(vs.mountpoint, partial(self._ensure_mounted, vs))
            except MountdError as e:
                vs.phase, vs.last_error = FAILED, e.message
                log.error("cannot restore the mount of {volume}: {error}", volume=vs.spec.key, error=e.message)

        held = [vs for vs in self.volumes.values() if vs.count() > 0]
        await gatherResults([ensureDeferred(restore(vs)) for vs in held], consumeErrors=True)
        for vs in held:
            if vs.phase in (MOUNTED, BUSY):
                await self._watch_client(vs)
                await self._protect_client(vs)  # adopted clients too: made by an older version, or by hand
                await self._rehome_client(vs)

    def _next_scope(self, vs: VolumeState) -> tuple[str, str]:
        """A fresh scope unit name for the volume's client, and its description."""
        self._scopes += 1
        return fuse_client.scope_unit(vs.spec, vs.mountpoint, self._scopes), f"GlusterFS client of {vs.spec.key} on {vs.mountpoint}"

    async def _rehome_client(self, vs: VolumeState) -> None:
        """Move a client still inside the daemon's own service (started before scopes) into a scope of its own."""
        own, client = self.system.own_unit, vs.client
        if not self.system.systemd_booted or not own.endswith(".service") or client is None or client.unit != own:
            return
        unit, description = self._next_scope(vs)
        result = await self.system.run(fuse_client.adopt_argv(client.pid, unit, description), "/", self.config.mount_timeout)
        if result.exit_code == 0:
            log.info(
                "moved the FUSE client {pid} of {volume} out of {own} into {unit}", pid=client.pid, volume=vs.spec.key, own=own, unit=unit
            )
            await self._watch_client(vs)
        else:
            log.error(
                "the FUSE client {pid} of {volume} is still in {own} and dies with its next stop: {said}",
                pid=client.pid,
                volume=vs.spec.key,
                own=own,
                said=result.last_line or "busctl failed",
            )

    async def probe_all(self) -> None:
        """One health round: refresh each mount's phase and space; recover dead or missing held mounts."""
        for vs in list(self.volumes.values()):
            if vs.probing or (vs.count() == 0 and vs.phase not in (BUSY, MOUNTED)):
                continue
            vs.probing = True
            try:
                await self._probe_one(vs)
            except MountdError as e:
                vs.last_error = e.message
            except Exception:
                log.failure("probe of {volume} failed", volume=vs.spec.key)
            finally:
                vs.probing = False

    async def _probe_one(self, vs: VolumeState) -> None:
        if not self._kernel_has(vs):
            if vs.count() == 0:
                vs.phase, vs.busy_pids = UNMOUNTED, []
                return
            vs.phase = MISSING
            log.warn("{volume} vanished from {mountpoint} while held: mounting it again", volume=vs.spec.key, mountpoint=vs.mountpoint)
            self._mark_broken(vs, "it vanished from the mount table")
            await self._remount_if_held(vs)
            return
        probe = await self._probe(vs, self.config.probe_timeout)
        if probe is Probe.HUNG:
            vs.phase = HUNG
        elif probe is Probe.DEAD:
            vs.phase = DEAD
            await self._remount_if_held(vs)
        elif vs.phase == BUSY:
            vs.busy_pids = await self.system.pids_using(vs.mountpoint)
            await self._watch_client(vs)
        else:
            vs.phase = MOUNTED
            await self._watch_client(vs)

    async def _remount_if_held(self, vs: VolumeState) -> None:
        async def remount() -> None:
            if vs.count() > 0:  # the last holder may have left while we waited for the lock
                await self._ensure_mounted(vs)

        await self._locked(vs.mountpoint, remount)

    def status(self) -> list[dict[str, Any]]:
        return [
            {
                **vs.status(),
                "volfile_servers": list(self.servers.backups(vs.spec, self.config.backup_servers)),
                "client": vs.client.to_json() if vs.client and vs.phase in (MOUNTED, BUSY, HUNG) else None,
            }
            for vs in sorted(self.volumes.values(), key=lambda v: v.spec)
            if vs.count() or vs.phase != UNMOUNTED
        ]


class _Shared:
    """One outcome for many awaiters (a Deferred hands its result down a single chain)."""

    def __init__(self, outcome: Deferred[None]) -> None:
        self._result: object = None
        self._done = False
        self._waiters: list[Deferred[None]] = []
        outcome.addBoth(self._fire)

    def _fire(self, result: object) -> None:
        self._done, self._result = True, result
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            self._deliver(waiter)

    def _deliver(self, waiter: Deferred[None]) -> None:
        if isinstance(self._result, Failure):
            waiter.errback(self._result)
        else:
            waiter.callback(None)

    def wait(self) -> Deferred[None]:
        waiter: Deferred[None] = Deferred()
        if self._done:
            self._deliver(waiter)
        else:
            self._waiters.append(waiter)
        return waiter


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _read_from(path: str, offset: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(256 * 1024).decode("utf-8", "replace")
    except OSError:
        return ""


__all__ = ["PHASES", "Engine", "EngineConfig", "VolumeState"]
