"""Every holder and mount decision of the node, as procedures with no I/O.

Each public method returns a ``Proc``: a generator that yields ``effects`` and
is sent their answers (see ``effects.py``).  The state it decides over
(``VolumeState`` per volume) lives here too; the driver only carries effects
out, so every decision can be tested by feeding answers and reading effects.

Order of a change: a first holder is counted at once (a concurrent last
release cannot unmount under it), then mounted, then journaled, then
answered; a release is journaled, then one unmount is attempted.
"""

from __future__ import annotations

import enum
import errno
from collections import Counter
from dataclasses import dataclass, field
from typing import cast

from . import client_log, fuse_client, volfile_servers
from .effects import (
    After,
    Begin,
    Clients,
    CreateDisk,
    Disk,
    DiskInfo,
    DiskOperation,
    End,
    GrowDisk,
    IsLocked,
    Kill,
    Level,
    LivingProcesses,
    Locked,
    LogSize,
    LogTail,
    MakeMountpoint,
    Metric,
    Now,
    Observe,
    PidsUsing,
    Proc,
    ProcessResult,
    ReadTable,
    RemoveDisk,
    RenameDisk,
    Resolve,
    Run,
    Say,
    SetOomScore,
    Settle,
    Statvfs,
    SweepTemps,
    Systemd,
    TcpProbe,
    WriteJournal,
    WriteState,
    ask,
)
from .errors import Disconnected, MountdError, MountFailed, NotMounted, OperationTimeout, StorageError, VolumeConflict
from .holders import Change, Holder, HolderTable
from .mountinfo import MountRecord, stack_in
from .mounts import CLIENT, Action, Probe, UnmountMode, client_argv, decide, diagnose_log, log_file_for, umount_argv
from .policy import DEFAULT_DISK_FOLDER, DiskPath, check_disk_path, check_storage_dir
from .results import (
    AcquireResult,
    DiskCreated,
    DiskFacts,
    DiskGrown,
    DiskInfoResult,
    DiskRemoved,
    DiskRenamed,
    DiskResult,
    ReleaseResult,
    Space,
    VolumeStatus,
)
from .volume import VolumeSpec, parse_source, same_volume


class Phase(enum.Enum):
    """Where a volume's mount is, as ``status`` and the metrics report it."""

    UNMOUNTED = "unmounted"
    MOUNTED = "mounted"
    BUSY = "busy"  # the last holder left, the unmount found it busy: the mount stays
    DEAD = "dead"  # the FUSE client is gone: ENOTCONN from the kernel
    DISCONNECTED = "disconnected"  # the client lives but reaches no brick of a subvolume: ENOTCONN from Gluster
    HUNG = "hung"  # probe timed out
    MISSING = "missing"  # vanished from the mount table while held
    FAILED = "failed"  # the last mount attempt failed


UP = (Phase.MOUNTED, Phase.BUSY)
LOG_WINDOW = 256 * 1024
"""How much of a client log's end is read at most when looking for the servers it lost."""


@dataclass
class EngineConfig:
    storage_dir: str
    whitelist: list[str]
    whitelist_file: str
    disk_folder: str = DEFAULT_DISK_FOLDER
    unmount_mode: UnmountMode = UnmountMode.PLAIN
    unmount_grace: float = 0.0
    """Seconds a volume stays mounted after its last holder left before the one unmount attempt (0: at once)."""
    mount_timeout: float = 30.0
    fs_timeout: float = 10.0
    probe_timeout: float = 5.0
    log_dir: str = "/var/log/glusterfs"
    backup_servers: tuple[str, ...] = ()
    client_oom_score_adj: int | None = fuse_client.DEFAULT_OOM_SCORE_ADJ
    client_memory_warn_bytes: int = 2 << 30
    client_options: tuple[str, ...] = ()
    """Further arguments of the FUSE client (the measured choices of ``app/settings.py``)."""


@dataclass
class VolumeState:
    spec: VolumeSpec
    mountpoint: str
    holders: set[Holder] = field(default_factory=set)
    jobs: Counter[Holder] = field(default_factory=Counter)
    """Ephemeral job holders of in-flight disk operations (not journaled: they die with the process)."""
    phase: Phase = Phase.UNMOUNTED
    last_error: str | None = None
    busy_pids: list[int] = field(default_factory=list)
    space: Space | None = None
    probing: bool = False
    swept: bool = False
    client: fuse_client.ClientStats | None = None
    """The FUSE client at the last mount or probe."""
    memory_warned: bool = False
    broken: set[Holder] = field(default_factory=set)
    """Instance holders whose open disks were on a client that died: their guests need a full restart."""
    disconnected_since: float | None = None
    links: client_log.Links = field(default_factory=client_log.Links)
    """The client's connections to its brick servers, from its log (read at mount and while disconnected)."""
    log_offset: int | None = None
    claimants: list[int] = field(default_factory=list)
    """PIDs of every client that claims the mountpoint, when more than one does (there should be one)."""
    idle_serial: int = 0
    """Counts the times the last holder left: an unmount put off by the grace runs only if none came since."""

    def count(self) -> int:
        return len(self.holders) + sum(self.jobs.values())

    def status(self, volfile_servers: list[str]) -> VolumeStatus:
        listed = sorted(self.holders) + sorted(self.jobs)
        return {
            "volume": self.spec.to_json(),
            "mountpoint": self.mountpoint,
            "state": self.phase.value,
            "holders": [h.to_json() for h in listed],
            "last_error": self.last_error,
            "busy_pids": list(self.busy_pids),
            "broken_holders": [h.to_json() for h in sorted(self.broken)],
            "action": f"{len(self.broken)} holder(s) lost their disks with a dead FUSE client; {fuse_client.FULL_RESTART_ADVICE}"
            if self.broken
            else None,
            "volfile_servers": volfile_servers,
            "client": self.client.to_json() if self.client and self.phase in (*UP, Phase.HUNG, Phase.DISCONNECTED) else None,
            "disconnected_since": self.disconnected_since if self.phase is Phase.DISCONNECTED else None,
            "unreachable_servers": self.links.unreachable() if self.phase is Phase.DISCONNECTED else [],
            "clients_claiming": list(self.claimants),
        }


def mount_key(mountpoint: str) -> tuple[str, str]:
    """The lock that serializes mount changes at a mountpoint."""
    return ("mount", mountpoint)


class Core:
    """The node's volumes and the procedures that change them."""

    def __init__(
        self,
        config: EngineConfig,
        table: HolderTable,
        servers: volfile_servers.ServerMemory | None = None,
        scope_serial: int = 0,
    ) -> None:
        self.config = config
        self.volumes: dict[VolumeSpec, VolumeState] = {}
        self.servers = servers or volfile_servers.ServerMemory()
        self._job_serial = 0
        self._scopes = scope_serial  # scope serials: unique across restarts too (the driver starts them at the clock)
        for spec, mountpoint, holder in table.entries():
            self.state(spec, mountpoint).holders.add(holder)

    def state(self, spec: VolumeSpec, mountpoint: str | None = None) -> VolumeState:
        vs = self.volumes.get(spec)
        if vs is None:
            vs = VolumeState(spec, mountpoint or self.config.storage_dir)
            self.volumes[spec] = vs
        elif vs.count() == 0 and vs.phase in (Phase.UNMOUNTED, Phase.FAILED) and mountpoint is None:
            vs.mountpoint = self.config.storage_dir  # follows a changed ssconf while nothing is mounted
        return vs

    def status(self) -> list[VolumeStatus]:
        volumes = sorted(self.volumes.values(), key=lambda v: v.spec)
        return [
            vs.status(list(self.servers.backups(vs.spec, self.config.backup_servers)))
            for vs in volumes
            if vs.count() or vs.phase is not Phase.UNMOUNTED
        ]

    # -- what is at the mountpoint -----------------------------------------------

    def _stack(self, mountpoint: str, fresh: bool = True) -> Proc[list[MountRecord]]:
        return stack_in((yield from ask(ReadTable(fresh))), mountpoint)

    def _is_ours(self, spec: VolumeSpec, record: MountRecord) -> Proc[bool]:
        """A glusterfs mount of this volume name from this server (compared by address when names differ)."""
        source = parse_source(record.source)
        if not record.is_glusterfs or source is None or source.volume != spec.volume:
            return False
        if source.host.lower() == spec.mount_host.lower():
            return True
        mine = yield from ask(Resolve(spec.host))
        theirs = yield from ask(Resolve(source.host))
        return same_volume(spec, source, mine, theirs)

    def _ours_in(self, spec: VolumeSpec, mountpoint: str) -> Proc[int]:
        """How many mounts of this volume are stacked on ``mountpoint`` (read afresh)."""
        count = 0
        for record in (yield from self._stack(mountpoint)):
            count += yield from self._is_ours(spec, record)
        return count

    def _kernel_has(self, vs: VolumeState) -> Proc[bool]:
        """Cheap check (cached table, no resolution): the top mount is a glusterfs one of this volume name."""
        stack = yield from self._stack(vs.mountpoint, fresh=False)
        if not stack:
            return False
        source = parse_source(stack[-1].source)
        return stack[-1].is_glusterfs and source is not None and source.volume == vs.spec.volume

    def _fast(self, vs: VolumeState, phases: tuple[Phase, ...]) -> Proc[bool]:
        """Whether a call may use the mount without the lock: it is up, and no mount change is under way."""
        if vs.phase not in phases or (yield from ask(IsLocked(mount_key(vs.mountpoint)))):
            return False
        return (yield from self._kernel_has(vs))

    def _probe(self, vs: VolumeState) -> Proc[Probe]:
        """Whether the mount answers: a statvfs, classified; it refreshes the space figures."""
        try:
            vs.space = yield from ask(Statvfs(vs.mountpoint, self.config.probe_timeout))
        except OperationTimeout:
            return Probe.HUNG
        except StorageError as e:
            if e.data.get("errno") == errno.errorcode[errno.ENOTCONN]:
                return (yield from self._not_connected(vs))
            raise
        return Probe.OK

    def _not_connected(self, vs: VolumeState) -> Proc[Probe]:
        """ENOTCONN: DEAD when the mount's FUSE client is gone, DISCONNECTED when it lives (it reaches no brick).

        A client dies by exiting, and an aborted FUSE connection makes it exit too; a living one that
        answers ENOTCONN is cut off from its servers and reconnects by itself when the network heals.
        """
        client = yield from self._find_client(vs)
        return Probe.DEAD if client is None else Probe.DISCONNECTED

    # -- mounting ----------------------------------------------------------------------

    def ensure_mounted(self, vs: VolumeState) -> Proc[bool]:
        """Make the volume mounted at its mountpoint (under its lock); True if it mounted now.

        The first time in this process, also sweep what creates cut by a crash left behind.
        """
        mounted_now = yield from self._make_mounted(vs)
        if not vs.swept:
            folder = tuple(self.config.disk_folder.split("/"))
            try:
                stale = yield from ask(SweepTemps(vs.mountpoint, folder, self.config.fs_timeout))
            except MountdError as e:
                yield Say(Level.WARN, "cannot sweep stale temporary files on {volume}: {error}", {"volume": vs.spec.key, "error": e})
            else:
                vs.swept = True
                if stale:
                    yield Say(Level.INFO, "removed {n} temporary file(s) of creates cut short: {names}", {"n": len(stale), "names": stale})
        return mounted_now

    def _make_mounted(self, vs: VolumeState) -> Proc[bool]:
        check_storage_dir(vs.mountpoint, self.config.whitelist, self.config.whitelist_file)
        for other in self.volumes.values():
            if other is not vs and other.mountpoint == vs.mountpoint and other.count() > 0:
                raise VolumeConflict(
                    f"{vs.mountpoint} holds volume {other.spec.key} for {other.count()} holder(s); "
                    f"release them before using {vs.spec.key} there",
                    mountpoint=vs.mountpoint,
                )
        stack = yield from self._stack(vs.mountpoint)
        ours = bool(stack) and (yield from self._is_ours(vs.spec, stack[-1]))
        probe = (yield from self._probe(vs)) if ours else None
        decision = decide(stack, ours, probe)
        if decision.action is Action.CONFLICT:
            top = decision.top
            assert top is not None
            raise VolumeConflict(
                f"{vs.mountpoint} already has {top.source} ({top.fstype}) mounted, not {vs.spec.key}; "
                f"unmount it or point gluster_storage_dir elsewhere",
                mountpoint=vs.mountpoint,
                mounted=top.source,
            )
        if decision.action is Action.UNREACHABLE:
            raise (yield from self._disconnected(vs))
        if decision.action is Action.WAIT:
            vs.phase = Phase.HUNG
            raise OperationTimeout(f"{vs.spec.key} is mounted on {vs.mountpoint} but does not answer; is the server frozen?")
        if decision.action is Action.ADOPT:
            if vs.phase is Phase.DISCONNECTED:
                yield from self._reconnected(vs)
            elif vs.phase not in UP:
                yield Say(Level.INFO, "adopting the existing mount of {volume} on {mountpoint}", self._where(vs))
            vs.phase = Phase.MOUNTED
            return False
        if decision.action is Action.RECOVER:
            yield Say(Level.WARN, "{volume} on {mountpoint} is dead (ENOTCONN): detaching it and mounting afresh", self._where(vs))
            yield Observe(Metric.RECOVERIES, vs.spec.key)
            vs.phase = Phase.DEAD
            yield from self._mark_broken(vs, "its FUSE client died")
            yield Run(tuple(umount_argv(vs.mountpoint, UnmountMode.LAZY)), "/", self.config.mount_timeout)
            if (yield from self._ours_in(vs.spec, vs.mountpoint)):
                raise MountFailed(f"could not detach the dead mount of {vs.spec.key} on {vs.mountpoint}")
        yield from self._mount(vs)
        return True

    @staticmethod
    def _where(vs: VolumeState) -> dict[str, object]:
        return {"volume": vs.spec.key, "mountpoint": vs.mountpoint}

    def _mount(self, vs: VolumeState) -> Proc[None]:
        """Start the FUSE client (in a scope of its own where systemd runs); the mount table and a statvfs judge it.

        The client's parent exits once the mount is made (0) or has failed; a client that failed can still
        show its mount for a moment while it tears it down, so only a clean exit with a mount that answers counts.
        """
        spec, mountpoint, config = vs.spec, vs.mountpoint, self.config
        yield Observe(Metric.MOUNT_ATTEMPTS, spec.key)
        started = yield from ask(Now())
        try:
            yield MakeMountpoint(mountpoint, config.fs_timeout)
            log_file = log_file_for(config.log_dir, mountpoint)
            log_start = yield from ask(LogSize(log_file))
            argv = client_argv(spec, mountpoint, log_file, self.servers.backups(spec, config.backup_servers), config.client_options)
            booted, _own = yield from ask(Systemd())
            if booted:
                argv = fuse_client.scoped_argv(argv, *self._next_scope(vs))
            result = yield from ask(Run(tuple(argv), "/", config.mount_timeout))
            note = ""
            if (yield from self._ours_in(spec, mountpoint)):
                probe = (yield from self._probe(vs)) if result.exit_code == 0 else None
                if probe is Probe.OK:
                    vs.phase, vs.last_error = Phase.MOUNTED, None
                    yield Observe(Metric.MOUNT_SECONDS, spec.key, (yield from ask(Now())) - started)
                    yield Say(Level.INFO, "mounted {volume} on {mountpoint}", self._where(vs))
                    yield from self._watch_client(vs, fresh=True)
                    yield from self._protect_client(vs)
                    yield from self._learn_servers(vs, log_file, log_start)
                    return
                # Leave no half-made mount behind.
                yield Run(tuple(umount_argv(mountpoint, UnmountMode.LAZY)), "/", config.mount_timeout)
                made = f"did not answer ({probe.value})" if probe else "was left by a client that failed"
                note = f"the mount it made {made} and was detached"
            # The FUSE client daemonizes into a session of its own, so the timeout did not reach it.
            # Nothing of ours is mounted here now (we only mount on an empty or detached mountpoint,
            # and detached what this attempt made), so every client still serving this path is an orphan.
            orphans = [client.pid for client in (yield from ask(Clients(mountpoint)))]
            if orphans:
                yield Kill(tuple(orphans))
                fields: dict[str, object] = {"pids": orphans, "volume": spec.key}
                yield Say(Level.WARN, "killed the FUSE client(s) {pids} left by the failed mount of {volume}", fields)
            log_text = yield from ask(LogTail(log_file, log_start))
            message = yield from self._diagnose(spec, mountpoint, result, log_text, note)
            raise MountFailed(message, log_file=log_file)
        except MountdError as e:
            yield Observe(Metric.MOUNT_FAILURES, spec.key)
            vs.phase, vs.last_error = Phase.FAILED, e.message
            raise

    def _diagnose(self, spec: VolumeSpec, mountpoint: str, result: ProcessResult, log_text: str, note: str) -> Proc[str]:
        """A cause a person can act on, from the client log and a TCP probe."""
        head = f"mounting {spec.key} on {mountpoint} failed"
        if result.timed_out:
            head += f" (the {CLIENT} client did not finish within {self.config.mount_timeout:g} s and was killed)"
        elif result.exit_code:
            head += f" ({CLIENT} exited with {result.exit_code})"
        causes: list[str] = [note] if note else []
        reason = yield from ask(TcpProbe(spec.mount_host, spec.port, 5.0))
        if reason is not None:
            causes.append(f"cannot reach {spec.mount_host}:{spec.port}: {reason}")
        from_log = diagnose_log(spec, log_text)
        if from_log and not (reason and "refused" in from_log):
            causes.append(from_log)
        said = result.last_line
        tail = f"; {CLIENT} said: {said}" if said else ""
        return f"{head}: {'; '.join(causes) if causes else 'no known cause; see the client log'}{tail}"

    def _unmount(self, vs: VolumeState) -> Proc[tuple[bool, bool]]:
        """One unmount attempt (under the lock); (unmounted, busy).  Busy means: as many mounts of ours after as before."""
        if vs.count() > 0:
            return False, False
        before = yield from self._ours_in(vs.spec, vs.mountpoint)
        if not before:
            vs.phase = Phase.UNMOUNTED
            return False, False
        yield Observe(Metric.UNMOUNT_ATTEMPTS, vs.spec.key)
        result = yield from ask(Run(tuple(umount_argv(vs.mountpoint, self.config.unmount_mode)), "/", self.config.mount_timeout))
        if (yield from self._ours_in(vs.spec, vs.mountpoint)) < before:
            vs.phase, vs.busy_pids, vs.space, vs.last_error, vs.client, vs.claimants = Phase.UNMOUNTED, [], None, None, None, []
            yield Say(Level.INFO, "unmounted {volume} from {mountpoint}", self._where(vs))
            return True, False
        yield Observe(Metric.UNMOUNT_BUSY, vs.spec.key)
        vs.phase = Phase.BUSY
        vs.busy_pids = yield from ask(PidsUsing(vs.mountpoint))
        fields = {**self._where(vs), "said": result.last_line or "busy", "pids": vs.busy_pids}
        yield Say(Level.INFO, "{volume} on {mountpoint} stays mounted: {said} (pids {pids})", fields)
        return False, True

    def _release_if_idle(self, vs: VolumeState) -> Proc[tuple[bool, bool]]:
        """The one unmount attempt after the last holder left (after ``unmount_grace``, if no holder came back)."""
        if vs.count() > 0:
            return False, False
        if self.config.unmount_grace > 0:
            vs.idle_serial += 1
            yield After(self.config.unmount_grace, self._unmount_if_still_idle(vs, vs.idle_serial))
            return False, False
        return (yield from self._attempt_unmount(vs))

    def _unmount_if_still_idle(self, vs: VolumeState, serial: int) -> Proc[None]:
        """The grace is over: the one unmount attempt, unless a holder came (and maybe left again) meanwhile."""
        if vs.idle_serial == serial and vs.count() == 0:
            yield from self._attempt_unmount(vs)

    def _attempt_unmount(self, vs: VolumeState) -> Proc[tuple[bool, bool]]:
        """The unmount attempt; its errors never undo what was committed."""
        try:
            return (yield from ask(Locked((mount_key(vs.mountpoint),), self._unmount(vs))))
        except Exception as e:
            vs.last_error = f"unmount attempt failed: {e}"
            yield Say(Level.ERROR, "unmount attempt of {volume} failed", {"volume": vs.spec.key}, error=e)
            return False, False

    def _locked_ensure(self, vs: VolumeState) -> Proc[bool]:
        return (yield from ask(Locked((mount_key(vs.mountpoint),), self.ensure_mounted(vs))))

    # -- holders ---------------------------------------------------------------------------

    def acquire(self, spec: VolumeSpec, holder: Holder) -> Proc[AcquireResult]:
        key = (spec, holder)
        yield Settle(key)
        vs = self.state(spec)
        if holder in vs.holders:  # a retried call: the holder is durable already
            # Still a change in flight while it waits for the mount: a release of the same holder waits
            # behind it instead of overtaking it and leaving an answered acquire (and its mount) unheld.
            yield Begin(key)
            try:
                fast = yield from self._fast(vs, (Phase.MOUNTED, Phase.HUNG, Phase.BUSY))
                mounted_now = False if fast else (yield from self._locked_ensure(vs))
            except Exception as e:
                yield End(key, e)
                raise
            yield End(key)
            vs.broken.discard(holder)  # acquired again after the recovery: a fresh open of the disk
            return {"mountpoint": vs.mountpoint, "holders": len(vs.holders), "mounted_now": mounted_now}
        fast = vs.count() > 0 and (yield from self._fast(vs, (Phase.MOUNTED, Phase.HUNG)))
        # Counted at once, before any wait: a concurrent last release cannot unmount under it.
        vs.holders.add(holder)
        yield Begin(key)
        try:
            mounted_now = False if fast else (yield from self._locked_ensure(vs))
            yield WriteJournal(Change("acquire", spec, holder, vs.mountpoint))
        except Exception as e:
            vs.holders.discard(holder)
            yield End(key, e)
            if vs.phase in UP:  # mounted for nobody after all: the one unmount attempt
                yield from self._release_if_idle(vs)
            raise
        yield End(key)
        vs.broken.discard(holder)
        return {"mountpoint": vs.mountpoint, "holders": len(vs.holders), "mounted_now": mounted_now}

    def release(self, spec: VolumeSpec, holder: Holder) -> Proc[ReleaseResult]:
        key = (spec, holder)
        yield Settle(key)
        vs = self.volumes.get(spec)
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
        unmounted, busy = yield from self._release_if_idle(vs)
        return {"holders": len(vs.holders), "known": True, "unmounted": unmounted, "busy": busy}

    # -- disks -------------------------------------------------------------------------------

    def _with_mount(self, spec: VolumeSpec, what: str, operation: DiskOperation, timeout: float) -> Proc[DiskResult]:
        """Run a disk operation with the volume mounted.

        An unmounted volume is mounted for the call under an ephemeral ``job``
        holder and released after it (one unmount attempt).  A dead mount met
        on the way (ENOTCONN) is recovered and the operation tried once more.
        """
        vs = self.state(spec)
        check_storage_dir(vs.mountpoint, self.config.whitelist, self.config.whitelist_file)
        self._job_serial += 1
        job = Holder("job", f"{what}#{self._job_serial}")
        vs.jobs[job] += 1
        try:
            if not (yield from self._fast(vs, UP)):
                yield from self._locked_ensure(vs)
            try:
                return (yield from ask(Disk(vs.mountpoint, operation, timeout)))
            except StorageError as e:
                if e.data.get("errno") != errno.errorcode[errno.ENOTCONN]:
                    raise
            if (yield from self._not_connected(vs)) is Probe.DISCONNECTED:
                raise (yield from self._disconnected(vs))
            # The FUSE client died under us: recover the mount (we hold it) and try once more.
            fields = {**self._where(vs), "what": what}
            yield Say(Level.WARN, "{volume} on {mountpoint} is dead (ENOTCONN) during {what}: recovering it", fields)
            vs.phase = Phase.DEAD
            yield from self._locked_ensure(vs)
            return (yield from ask(Disk(vs.mountpoint, operation, timeout)))
        finally:
            vs.jobs[job] -= 1
            if vs.jobs[job] <= 0:
                del vs.jobs[job]
            yield from self._release_if_idle(vs)

    def _disk_call(
        self, spec: VolumeSpec, what: str, operation: DiskOperation, disks: list[DiskPath], timeout: float | None = None
    ) -> Proc[DiskResult]:
        """Run a disk operation holding the disks' locks (in sorted order: two-disk calls cannot deadlock)."""
        keys = tuple(("disk", spec, name) for name in sorted({d.relative for d in disks}))
        label = f"{what}:{disks[0].relative}"
        return (yield from ask(Locked(keys, self._with_mount(spec, label, operation, timeout or self.config.fs_timeout))))

    def _disk(self, path: str) -> DiskPath:
        return check_disk_path(path, self.config.disk_folder)

    def disk_create(self, spec: VolumeSpec, path: str, size: int, preallocate: bool = False) -> Proc[DiskCreated]:
        disk = self._disk(path)
        # Preallocation may write zeros where the file system cannot fallocate: allow for 64 MiB/s.
        timeout = self.config.fs_timeout + (size / 64 if preallocate else 0)
        return cast(DiskCreated, (yield from self._disk_call(spec, "create", CreateDisk(disk, size, preallocate), [disk], timeout)))

    def disk_remove(self, spec: VolumeSpec, path: str) -> Proc[DiskRemoved]:
        disk = self._disk(path)
        return cast(DiskRemoved, (yield from self._disk_call(spec, "remove", RemoveDisk(disk), [disk])))

    def disk_grow(
        self, spec: VolumeSpec, path: str, amount: int, dryrun: bool = False, backingstore: bool = True, preallocate: bool = False
    ) -> Proc[DiskGrown]:
        disk = self._disk(path)
        operation = GrowDisk(disk, amount, dryrun, backingstore, preallocate)
        return cast(DiskGrown, (yield from self._disk_call(spec, "grow", operation, [disk])))

    def disk_rename(self, spec: VolumeSpec, path: str, new_path: str) -> Proc[DiskRenamed]:
        disk, new = self._disk(path), self._disk(new_path)
        return cast(DiskRenamed, (yield from self._disk_call(spec, "rename", RenameDisk(disk, new), [disk, new])))

    def disk_info(self, spec: VolumeSpec, path: str) -> Proc[DiskInfoResult]:
        disk = self._disk(path)
        facts = cast(DiskFacts, (yield from self._disk_call(spec, "info", DiskInfo(disk), [disk])))
        return {**facts, "uri": spec.uri(path), "mountpoint": self.state(spec).mountpoint}

    def statvfs(self, spec: VolumeSpec) -> Proc[Space]:
        """Space of a mounted volume; never mounts (a node not using the volume reports a failure)."""
        vs = self.volumes.get(spec)
        mountpoint = vs.mountpoint if vs else self.config.storage_dir
        if not (yield from self._ours_in(spec, mountpoint)):
            raise NotMounted(f"{spec.key} is not mounted on this node ({mountpoint}): no instance here uses it")
        info = yield from ask(Statvfs(mountpoint, self.config.fs_timeout, "statvfs"))
        if vs is not None:
            vs.space = info
        return info

    # -- recovery and health -------------------------------------------------------------

    def held(self) -> list[VolumeState]:
        """The volumes to restore after a start."""
        return [vs for vs in self.volumes.values() if vs.count() > 0]

    def restore(self, vs: VolumeState) -> Proc[None]:
        """Adopt, remount or recover the mount of a held volume after a start."""
        if not (yield from self._kernel_has(vs)):
            yield from self._mark_broken(vs, "its mount went away while the daemon was down")
        try:
            yield from self._locked_ensure(vs)
        except Disconnected:
            pass  # the mount and its client stay: it reconnects by itself (said when it was found)
        except MountdError as e:
            vs.phase, vs.last_error = Phase.FAILED, e.message
            yield Say(Level.ERROR, "cannot restore the mount of {volume}: {error}", {"volume": vs.spec.key, "error": e.message})

    def probe_all(self) -> Proc[None]:
        """One health round: let go of ended processes; refresh each mount's phase and space; recover dead or missing held mounts."""
        try:
            yield from self._release_ended_processes()
        except Exception as e:  # the mounts' probe below still runs
            yield Say(Level.ERROR, "cannot check the processes of process holders", error=e)
        for vs in list(self.volumes.values()):
            if vs.probing or (vs.count() == 0 and vs.phase not in UP):
                continue
            vs.probing = True
            try:
                yield from self._probe_one(vs)
            except MountdError as e:
                vs.last_error = e.message
            except Exception as e:
                yield Say(Level.ERROR, "probe of {volume} failed", {"volume": vs.spec.key}, error=e)
            finally:
                vs.probing = False

    def _release_ended_processes(self) -> Proc[None]:
        """Release every ``process`` holder whose process has ended (Ganeti's node daemon forks one per request)."""
        held = [(vs.spec, h) for vs in self.volumes.values() for h in sorted(vs.holders) if h.process is not None]
        if not held:
            return
        living = yield from ask(LivingProcesses(tuple(sorted({h.process for _, h in held if h.process}))))
        for spec, holder in held:
            if holder.process in living:
                continue
            fields: dict[str, object] = {"holder": str(holder), "volume": spec.key}
            yield Say(Level.INFO, "the process of holder {holder} of {volume} has ended: releasing it", fields)
            try:
                yield from self.release(spec, holder)
            except MountdError as e:
                yield Say(Level.ERROR, "cannot release {holder} of {volume}: {error}", {**fields, "error": e.message})

    def _probe_one(self, vs: VolumeState) -> Proc[None]:
        if not (yield from self._kernel_has(vs)):
            if vs.count() == 0:
                vs.phase, vs.busy_pids = Phase.UNMOUNTED, []
                return
            if vs.phase in (Phase.UNMOUNTED, Phase.FAILED):
                # Never mounted yet (an acquire is mounting it now) or its last mount failed: nothing
                # vanished and no disk broke; mount it once the lock is free (or adopt the new mount).
                yield from self._remount_if_held(vs)
                return
            vs.phase = Phase.MISSING
            yield Say(Level.WARN, "{volume} vanished from {mountpoint} while held: mounting it again", self._where(vs))
            yield from self._mark_broken(vs, "it vanished from the mount table")
            yield from self._remount_if_held(vs)
            return
        probe = yield from self._probe(vs)
        if probe is Probe.HUNG:
            vs.phase = Phase.HUNG
        elif probe is Probe.DISCONNECTED:
            yield from self._disconnected(vs)
        elif probe is Probe.DEAD:
            vs.phase = Phase.DEAD
            yield from self._remount_if_held(vs)
        elif vs.phase is Phase.BUSY:
            vs.busy_pids = yield from ask(PidsUsing(vs.mountpoint))
            yield from self._watch_client(vs)
        else:
            yield from self._reconnected(vs)
            vs.phase = Phase.MOUNTED
            yield from self._watch_client(vs)

    def settle_client(self, vs: VolumeState) -> Proc[None]:
        """After a restore: read the client's figures, give it its OOM score, move it into a scope of its own."""
        if vs.phase not in UP:
            return
        yield from self._watch_client(vs)
        yield from self._protect_client(vs)  # adopted clients too: made by an older version, or by hand
        yield from self._rehome_client(vs)

    # -- the FUSE client and the servers -------------------------------------------------

    def _mark_broken(self, vs: VolumeState, why: str) -> Proc[None]:
        """Name the instances whose open disks died with the mount: a remount cannot give a running guest its disk back."""
        new = {h for h in vs.holders if h.kind == "instance"} - vs.broken
        if not new:
            return
        vs.broken |= new
        fields = {**self._where(vs), "why": why, "holders": ", ".join(h.id for h in sorted(new)), "advice": fuse_client.FULL_RESTART_ADVICE}
        yield Say(Level.ERROR, "{volume} on {mountpoint} failed under its holders ({why}): {holders}; {advice}", fields)

    def _find_client(self, vs: VolumeState, fresh: bool = False) -> Proc[fuse_client.ClientStats | None]:
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
            fields = {**self._where(vs), "pids": pids, "carrier": found.pid if found else "none of them"}
            yield Say(Level.WARN, "{pids} FUSE clients claim {mountpoint} ({volume}); the mount's own is {carrier}", fields)
        vs.claimants = pids
        return found

    def _disconnected(self, vs: VolumeState) -> Proc[Disconnected]:
        """Note that the mount's living client reaches no brick; the error a call that needs the mount gets.

        Never detached or remounted: the guests' open disks stay on this client and work again when it
        reconnects.  Its log says which servers it lost.
        """
        path = log_file_for(self.config.log_dir, vs.mountpoint)
        size = yield from ask(LogSize(path))
        read = 0 if vs.log_offset is None or size < vs.log_offset else vs.log_offset  # nothing yet, or a new log
        start = max(read, size - LOG_WINDOW)
        vs.links.feed((yield from ask(LogTail(path, start))))
        vs.log_offset = size
        now = yield from ask(Now())
        servers = ", ".join(vs.links.unreachable()) or "its bricks"
        pid = vs.client.pid if vs.client else "?"
        fields = {**self._where(vs), "pid": pid, "servers": servers}
        if vs.phase is not Phase.DISCONNECTED:
            vs.phase, vs.disconnected_since = Phase.DISCONNECTED, now
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

    def _reconnected(self, vs: VolumeState) -> Proc[None]:
        """A disconnected mount answers again: the same client and mount, nothing to do but say so."""
        if vs.phase is not Phase.DISCONNECTED:
            return
        seconds = (yield from ask(Now())) - (vs.disconnected_since or 0.0)
        vs.disconnected_since, vs.last_error = None, None
        yield Say(Level.INFO, "{volume} on {mountpoint} reconnected after {seconds:.0f} s", {**self._where(vs), "seconds": seconds})

    def _watch_client(self, vs: VolumeState, fresh: bool = False) -> Proc[None]:
        """Refresh the FUSE client's figures; warn once each time its memory crosses the threshold."""
        try:
            yield from self._find_client(vs, fresh)
        except Exception as e:  # figures only: never fails a mount or a probe
            yield Say(Level.WARN, "cannot read the FUSE client of {mountpoint}: {error}", {"mountpoint": vs.mountpoint, "error": e})
            return
        limit = self.config.client_memory_warn_bytes
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

    def _protect_client(self, vs: VolumeState) -> Proc[None]:
        """Give the client the configured OOM score, so the kernel kills a guest before the client of every guest's disk."""
        wanted, client = self.config.client_oom_score_adj, vs.client
        if wanted is None or client is None or client.oom_score_adj == wanted:
            return
        problem = yield from ask(SetOomScore(client.pid, wanted))
        if problem:
            fields = {"pid": client.pid, "volume": vs.spec.key, "wanted": wanted, "problem": problem}
            yield Say(Level.WARN, "cannot set the OOM score of the FUSE client {pid} of {volume} to {wanted}: {problem}", fields)
        yield from self._watch_client(vs)

    def _next_scope(self, vs: VolumeState) -> tuple[str, str]:
        """A fresh scope unit name for the volume's client, and its description."""
        self._scopes += 1
        return fuse_client.scope_unit(vs.spec.volume, vs.mountpoint, self._scopes), f"GlusterFS client of {vs.spec.key} on {vs.mountpoint}"

    def _rehome_client(self, vs: VolumeState) -> Proc[None]:
        """Move a client still inside the daemon's own service (started before scopes) into a scope of its own."""
        booted, own = yield from ask(Systemd())
        client = vs.client
        if not booted or not own.endswith(".service") or client is None or client.unit != own:
            return
        unit, description = self._next_scope(vs)
        result = yield from ask(Run(tuple(fuse_client.adopt_argv(client.pid, unit, description)), "/", self.config.mount_timeout))
        fields: dict[str, object] = {"pid": client.pid, "volume": vs.spec.key, "own": own}
        if result.exit_code == 0:
            yield Say(Level.INFO, "moved the FUSE client {pid} of {volume} out of {own} into {unit}", {**fields, "unit": unit})
            yield from self._watch_client(vs)
        else:
            fields["said"] = result.last_line or "busctl failed"
            yield Say(Level.ERROR, "the FUSE client {pid} of {volume} is still in {own} and dies with its next stop: {said}", fields)

    def _learn_servers(self, vs: VolumeState, log_file: str, log_start: int) -> Proc[None]:
        """Remember the brick hosts of a fresh mount's graph: later mounts then survive the named server's absence.

        The graph also says which host each brick connection talks to, for naming the ones a partition cuts.
        """
        spec = vs.spec
        try:
            text = yield from ask(LogTail(log_file, log_start))
            vs.links, vs.log_offset = client_log.Links(), log_start
            vs.links.feed(text)
            if not self.servers.learn(spec, volfile_servers.brick_hosts(text)):
                return
            yield Say(Level.INFO, "{volume} is served by {hosts}", {"volume": spec.key, "hosts": ", ".join(self.servers.known(spec))})
            path = self.servers.path
            if path is not None:
                # Serialized, and the snapshot taken when its turn comes: an older one never lands last.
                yield Locked(("servers",), self._save_servers(path))
        except Exception as e:  # the mount is made: a failure here costs only the memory of its servers
            yield Say(Level.WARN, "cannot remember the servers of {volume}: {error}", {"volume": spec.key, "error": e})

    def _save_servers(self, path: str) -> Proc[None]:
        yield WriteState(path, self.servers.to_text().encode())

    def _remount_if_held(self, vs: VolumeState) -> Proc[None]:
        def remount() -> Proc[None]:
            if vs.count() > 0:  # the last holder may have left while we waited for the lock
                yield from self.ensure_mounted(vs)

        yield Locked((mount_key(vs.mountpoint),), remount())
