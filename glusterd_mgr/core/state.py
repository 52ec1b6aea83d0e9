"""What the core decides over: each volume's state, the node's settings, and the one way a phase changes."""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from types import EllipsisType

from . import client_log, fuse_client
from .holders import Holder, HolderTable
from .mounts import UnmountMode
from .policy import DEFAULT_DISK_FOLDER
from .results import Space, VolumeStatus
from .volfile_servers import ServerMemory
from .volume import VolumeSpec

__all__ = ["UP", "EngineConfig", "NodeState", "Phase", "VolumeState", "VolumeView", "mount_key"]


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


@dataclass(frozen=True)
class VolumeView:
    """What a reader outside the core (the metrics) sees of a volume: a copy, so no reader can change the core's state."""

    key: str
    mountpoint: str
    phase: Phase
    holders: int
    space: Space | None
    client: fuse_client.ClientStats | None
    memory_warned: bool
    broken: int
    claimants: int
    disconnected_since: float | None


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
    leftovers_settled: bool = False
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

    def enter(self, phase: Phase, error: str | EllipsisType | None = ...) -> None:
        """Every phase change goes through here; ``error`` replaces ``last_error`` when given (None clears it)."""
        self.phase = phase
        if not isinstance(error, EllipsisType):
            self.last_error = error

    def count(self) -> int:
        return len(self.holders) + sum(self.jobs.values())

    def view(self) -> VolumeView:
        space = None if self.space is None else self.space.copy()
        since = self.disconnected_since if self.phase is Phase.DISCONNECTED else None
        return VolumeView(
            self.spec.key,
            self.mountpoint,
            self.phase,
            self.count(),
            space,
            self.client,
            self.memory_warned,
            len(self.broken),
            len(self.claimants),
            since,
        )

    def where(self) -> dict[str, object]:
        """The fields that name the volume and its mountpoint in a log line."""
        return {"volume": self.spec.key, "mountpoint": self.mountpoint}

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


class NodeState:
    """The node's volumes and what every procedure shares: the settings, the servers learned, the serials."""

    def __init__(self, config: EngineConfig, table: HolderTable, servers: ServerMemory | None, scope_serial: int) -> None:
        self.config = config
        self.volumes: dict[VolumeSpec, VolumeState] = {}
        self.servers = servers or ServerMemory()
        self._jobs = 0
        self._scopes = scope_serial  # scope serials: unique across restarts too (the driver starts them at the clock)
        for spec, mountpoint, holder in table.entries():
            self.state(spec, mountpoint).holders.add(holder)

    def reconfigure(self, whitelist: list[str], storage_dir: str) -> bool:
        """Take Ganeti's whitelist and storage dir as they are now; whether either changed.

        Held volumes keep their mountpoint; an unheld one follows the new storage dir at its next use.
        """
        config = self.config
        if whitelist == config.whitelist and storage_dir == config.storage_dir:
            return False
        config.whitelist, config.storage_dir = list(whitelist), storage_dir
        return True

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

    def next_job(self, what: str) -> Holder:
        """A fresh ephemeral holder for one disk operation."""
        self._jobs += 1
        return Holder("job", f"{what}#{self._jobs}")

    def next_scope(self, vs: VolumeState) -> tuple[str, str]:
        """A fresh scope unit name for the volume's client, and its description."""
        self._scopes += 1
        return fuse_client.scope_unit(vs.spec.volume, vs.mountpoint, self._scopes), fuse_client.describe(vs.spec.key, vs.mountpoint)
