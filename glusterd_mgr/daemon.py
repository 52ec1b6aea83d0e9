"""``ganeti-gluster-mountd``: flags, wiring, sockets, signals, sd_notify and config watches."""

from __future__ import annotations

import argparse
import grp
import os
import socket
import sys
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, cast

from twisted.internet import task
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import (
    FilteringLogObserver,
    ILogFilterPredicate,
    ILogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    globalLogBeginner,
)
from twisted.python.filepath import FilePath
from twisted.web.resource import IResource, Resource
from twisted.web.server import Site

from . import __version__, fuse_client, policy
from .errors import MountdError
from .holders import Holder
from .metrics import Metrics, MetricsResource
from .mounts import UnmountMode
from .node import Node, NodeOptions
from .rpc import CappedRequest, Dispatcher, JsonRpcResource, RpcStats
from .schema import load as load_schemas
from .schema import openrpc
from .volume import VolumeSpec
from .volumes import Engine, EngineConfig

DEFAULT_SOCKET = "/run/ganeti-gluster-mountd/rpc.sock"
DEFAULT_STATE_DIR = "/var/lib/ganeti-gluster-mountd"
DEFAULT_METRICS_PORT = 9723
log = Logger()


@dataclass
class Settings:
    """Every flag; a TOML file given with ``--config`` sets the same names (``-`` or ``_``)."""

    socket: str = DEFAULT_SOCKET
    socket_group: str = ""
    state_dir: str = DEFAULT_STATE_DIR
    storage_dir: str = ""
    ssconf_storage_dir: str = policy.SSCONF_STORAGE_DIR
    file_storage_paths: str = policy.FILE_STORAGE_PATHS
    disk_folder: str = policy.DEFAULT_DISK_FOLDER
    metrics_port: int = DEFAULT_METRICS_PORT
    metrics_address: str = "127.0.0.1"
    unmount_mode: str = "plain"
    mount_timeout: float = 30.0
    fs_timeout: float = 30.0
    probe_interval: float = 10.0
    probe_timeout: float = 5.0
    fs_threads: int = 16
    backup_volfile_servers: list[str] = field(default_factory=list)
    client_log_dir: str = "/var/log/glusterfs"
    client_oom_score_adj: int = fuse_client.DEFAULT_OOM_SCORE_ADJ
    client_memory_warning_mib: int = 2048
    log_level: str = "info"


_CHOICES = {"unmount_mode": ["plain", "lazy"], "log_level": ["debug", "info", "warn", "error"]}


def parse_args(argv: Sequence[str] | None) -> Settings:
    defaults = Settings()
    parser = argparse.ArgumentParser(prog="ganeti-gluster-mountd", description="Owns every Gluster mount of this Ganeti node.")
    parser.add_argument("--config", help="TOML file with the same settings as the flags")
    parser.add_argument("--version", action="version", version=__version__)
    for f in fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        if isinstance(default, list):
            parser.add_argument(flag, action="append", default=None, help="repeatable (default: none)")
        elif f.name == "unmount_mode":
            parser.add_argument(flag, choices=_CHOICES[f.name], default=None, help="plain (default) or lazy (umount -l)")
        elif f.name == "log_level":
            parser.add_argument(flag, choices=_CHOICES[f.name], default=None)
        else:
            parser.add_argument(flag, type=type(default), default=None, help=f"default: {default!r}")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.config:
        try:
            with open(args.config, "rb") as fh:
                doc = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as e:
            parser.error(f"cannot read --config {args.config}: {e}")
        kinds = {f.name: type(getattr(Settings(), f.name)) for f in fields(Settings)}
        for key, value in doc.items():
            name = key.replace("-", "_")
            if name not in kinds:
                parser.error(f"{args.config}: unknown setting {key!r}")
            want = kinds[name]
            ok = isinstance(value, want) or (want is float and isinstance(value, int) and not isinstance(value, bool))
            if want is list:
                ok = ok and all(isinstance(v, str) for v in value)
            if not ok or (want is int and isinstance(value, bool)):
                parser.error(f"{args.config}: {key} must be {'a list of strings' if want is list else want.__name__}, not {value!r}")
            if name in _CHOICES and value not in _CHOICES[name]:
                parser.error(f"{args.config}: {key} must be one of {', '.join(_CHOICES[name])}, not {value!r}")
            setattr(settings, name, float(value) if want is float else value)
    for f in fields(Settings):
        value = getattr(args, f.name)
        if value is not None:
            setattr(settings, f.name, value)
    if not -1000 <= settings.client_oom_score_adj <= 1000:
        parser.error(f"client-oom-score-adj must be from -1000 to 1000, not {settings.client_oom_score_adj}")
    if settings.client_memory_warning_mib < 0:
        parser.error(f"client-memory-warning-mib must be 0 (off) or more, not {settings.client_memory_warning_mib}")
    return settings


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def current_storage_dir(settings: Settings) -> str:
    """The mountpoint with symlinks resolved, as the kernel's mount table names it.

    Ganeti's default ``/var/run/ganeti/gluster`` is ``/run/ganeti/gluster`` on
    Debian, where ``/var/run`` is a symlink: compared unresolved, no mount
    would ever be found there.
    """
    configured = settings.storage_dir or policy.parse_ssconf_storage_dir(_read(settings.ssconf_storage_dir))
    return os.path.realpath(configured)


def current_whitelist(settings: Settings) -> list[str]:
    """The whitelisted paths, each also with its symlinks resolved (the mountpoint is compared resolved)."""
    paths = policy.parse_whitelist(_read(settings.file_storage_paths) or "")
    return sorted({*paths, *(os.path.realpath(p) for p in paths)})


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        storage_dir=current_storage_dir(settings),
        whitelist=current_whitelist(settings),
        whitelist_file=settings.file_storage_paths,
        disk_folder=settings.disk_folder,
        unmount_mode=UnmountMode(settings.unmount_mode),
        mount_timeout=settings.mount_timeout,
        fs_timeout=settings.fs_timeout,
        probe_timeout=settings.probe_timeout,
        log_dir=settings.client_log_dir,
        backup_servers=tuple(settings.backup_volfile_servers),
        client_oom_score_adj=settings.client_oom_score_adj,
        client_memory_warn_bytes=settings.client_memory_warning_mib << 20,
    )


def handlers(engine: Engine, discover: dict[str, Any]) -> dict[str, Callable[[dict[str, Any]], Any]]:
    """JSON-RPC method → engine call; params were validated against ``rpc_schema/`` already."""

    def vol(p: dict[str, Any]) -> VolumeSpec:
        return VolumeSpec.from_json(p["volume"])

    async def status(p: dict[str, Any]) -> dict[str, Any]:
        return {"version": __version__, "mounts": engine.status()}

    async def discover_doc(p: dict[str, Any]) -> dict[str, Any]:
        return discover

    return {
        "volume.acquire": lambda p: engine.acquire(vol(p), Holder.from_json(p["holder"])),
        "volume.release": lambda p: engine.release(vol(p), Holder.from_json(p["holder"])),
        "volume.statvfs": lambda p: engine.statvfs(vol(p)),
        "disk.create": lambda p: engine.disk_create(vol(p), p["path"], p["size"], p.get("preallocate", False)),
        "disk.remove": lambda p: engine.disk_remove(vol(p), p["path"]),
        "disk.grow": lambda p: engine.disk_grow(
            vol(p), p["path"], p["amount"], p.get("dryrun", False), p.get("backingstore", True), p.get("preallocate", False)
        ),
        "disk.info": lambda p: engine.disk_info(vol(p), p["path"]),
        "disk.rename": lambda p: engine.disk_rename(vol(p), p["path"], p["new_path"]),
        "status": status,
        "rpc.discover": discover_doc,
    }


def sd_notify(message: str) -> None:
    """Tell systemd (``Type=notify``) something; a no-op outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        try:
            s.sendto(message.encode(), address)
        except OSError as e:
            log.warn("sd_notify failed: {error}", error=e)


class ConfigWatcher:
    """Reloads the whitelist and the ssconf storage dir when Ganeti rewrites them (inotify on their folders)."""

    def __init__(self, reactor: Any, settings: Settings, engine: Engine) -> None:
        from twisted.internet import inotify

        self.settings = settings
        self.engine = engine
        self.notifier = inotify.INotify(reactor)
        self.notifier.startReading()
        watched = [settings.file_storage_paths]
        if not settings.storage_dir:
            watched.append(settings.ssconf_storage_dir)
        self.names = {os.path.basename(p) for p in watched}
        mask = inotify.IN_CLOSE_WRITE | inotify.IN_MOVED_TO | inotify.IN_CREATE | inotify.IN_DELETE | inotify.IN_MOVED_FROM
        for folder in sorted({os.path.dirname(os.path.abspath(p)) for p in watched}):
            if os.path.isdir(folder):
                self.notifier.watch(FilePath(folder), mask, callbacks=[self._changed])
            else:
                log.warn("cannot watch {folder} (missing): changes there need a restart", folder=folder)
        self.reload()  # whatever changed between the first read and the watch

    def _changed(self, _watch: Any, path: FilePath[bytes], _mask: int) -> None:
        if os.fsdecode(path.basename()) in self.names:
            self.reload()

    def reload(self) -> None:
        config = self.engine.config
        whitelist, storage_dir = current_whitelist(self.settings), current_storage_dir(self.settings)
        if whitelist != config.whitelist or storage_dir != config.storage_dir:
            config.whitelist, config.storage_dir = whitelist, storage_dir
            log.info(
                "configuration reloaded: storage dir {storage_dir}, whitelist {whitelist}", storage_dir=storage_dir, whitelist=whitelist
            )

    def stop(self) -> None:
        self.notifier.loseConnection()


def _prepare_socket(path: str, group: str = "") -> None:
    """Create the socket's folder (root-only, or searchable by ``group``); refuse to start over a live daemon."""
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        os.makedirs(folder, mode=0o700)
    if group:
        os.chown(folder, 0, grp.getgrnam(group).gr_gid)
        os.chmod(folder, 0o710)
    if os.path.exists(path):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)
            else:
                raise SystemExit(f"ganeti-gluster-mountd: another daemon is already listening on {path}")


class QuietSite(Site):
    """No access log: the RPC metrics count every call, and journald need not hold each scrape.

    Nor form parsing: JSON-RPC never posts forms, and twisted.web's Content-Type parse alone
    cost more than validating the params.
    """

    noisy = False

    def __init__(self, resource: Any) -> None:
        try:
            super().__init__(resource, parsePOSTFormSubmission=False)  # type: ignore[no-untyped-call]
        except TypeError:  # Twisted before the option: it parses forms, which costs time only
            super().__init__(resource)  # type: ignore[no-untyped-call]

    def log(self, request: Any) -> None:
        pass


class Daemon:
    def __init__(self, reactor: Any, settings: Settings) -> None:
        self.reactor = reactor
        self.settings = settings
        self.ports: list[Any] = []
        self.node: Node | None = None
        self.rpc: JsonRpcResource | None = None
        self.watcher: ConfigWatcher | None = None
        self._watchdog: task.LoopingCall | None = None

    async def start(self) -> None:
        s = self.settings
        _prepare_socket(s.socket, s.socket_group)  # before anything else: a live daemon's state is not ours to touch
        self.node = Node(
            self.reactor,
            engine_config(s),
            NodeOptions(state_dir=s.state_dir, fs_threads=s.fs_threads, probe_interval=s.probe_interval),
        )
        engine = self.node.engine
        metrics = Metrics(engine, self.node.fs_pool)
        schemas = load_schemas()
        dispatcher = Dispatcher(schemas, handlers(engine, openrpc(schemas)), self.reactor, RpcStats(metrics.observe_rpc))
        self.rpc = JsonRpcResource(dispatcher)
        # Watch the configuration before anything can be asked of us, so no change is missed.
        self.watcher = ConfigWatcher(self.reactor, s, engine)
        await self.node.start()
        root = Resource()
        root.putChild(b"rpc", cast(IResource, self.rpc))
        root.putChild(b"metrics", cast(IResource, MetricsResource(metrics)))
        site = QuietSite(root)
        site.requestFactory = CappedRequest
        site.displayTracebacks = False
        old_umask = os.umask(0o177)
        try:
            mode = 0o660 if s.socket_group else 0o600
            self.ports.append(self.reactor.listenUNIX(s.socket, site, mode=mode))
        finally:
            os.umask(old_umask)
        if s.socket_group:
            os.chown(s.socket, 0, grp.getgrnam(s.socket_group).gr_gid)
        if s.metrics_port:
            metrics_root = Resource()
            metrics_root.putChild(b"metrics", cast(IResource, MetricsResource(metrics)))
            metrics_site = QuietSite(metrics_root)
            metrics_site.displayTracebacks = False
            self.ports.append(self.reactor.listenTCP(s.metrics_port, metrics_site, interface=s.metrics_address))
        self._start_watchdog()
        sd_notify("READY=1\nSTATUS=serving on " + s.socket)
        log.info(
            "ganeti-gluster-mountd {version} serving on {socket}; storage dir {storage_dir}; {holders} holder(s) restored",
            version=__version__,
            socket=s.socket,
            storage_dir=engine.config.storage_dir,
            holders=sum(len(v.holders) for v in engine.volumes.values()),
        )

    def _start_watchdog(self) -> None:
        """WATCHDOG=1 proves the reactor turns; it is never tied to Gluster's health."""
        usec = os.environ.get("WATCHDOG_USEC")
        if usec and os.environ.get("WATCHDOG_PID", str(os.getpid())) == str(os.getpid()):
            self._watchdog = task.LoopingCall(sd_notify, "WATCHDOG=1")
            self._watchdog.clock = self.reactor
            self._watchdog.start(int(usec) / 2e6)

    async def stop(self) -> None:
        """Stop accepting, let in-flight calls finish, keep every mount in place."""
        sd_notify("STOPPING=1")
        for port in self.ports:
            await port.stopListening()
        if self.rpc is not None:
            deadline = self.reactor.seconds() + 30
            while self.rpc.in_flight and self.reactor.seconds() < deadline:
                await task.deferLater(self.reactor, 0.05, lambda: None)
        if self.watcher is not None:
            self.watcher.stop()
        if self._watchdog is not None and self._watchdog.running:
            self._watchdog.stop()
        if self.node is not None:
            self.node.stop()
        log.info("stopped; mounts left in place for the next start")


_LEVELS = {"debug": LogLevel.debug, "info": LogLevel.info, "warn": LogLevel.warn, "error": LogLevel.error}
_SYSLOG_PRIORITY = {LogLevel.debug: 7, LogLevel.info: 6, LogLevel.warn: 4, LogLevel.error: 3, LogLevel.critical: 2}


def start_logging(level: str) -> None:
    """One line an event on stderr; under journald with a ``<N>`` priority prefix journald understands."""
    journald = "JOURNAL_STREAM" in os.environ

    def observer(event: dict[str, Any]) -> None:
        text = formatEvent(event)
        failure = event.get("log_failure")
        if failure is not None:
            text += "\n" + failure.getTraceback()
        lvl = event.get("log_level", LogLevel.info)
        where = event.get("log_namespace", "?")
        if journald:
            prefix = f"<{_SYSLOG_PRIORITY.get(lvl, 6)}>"
            out = "\n".join(f"{prefix}{where}: {line}" for line in text.splitlines())
        else:
            out = f"{lvl.name.upper():5} {where}: {text}"
        sys.stderr.write(out + "\n")
        sys.stderr.flush()

    predicate = LogLevelFilterPredicate(defaultLogLevel=_LEVELS[level])
    filtered = FilteringLogObserver(cast(ILogObserver, observer), [cast(ILogFilterPredicate, predicate)])
    globalLogBeginner.beginLoggingTo([cast(ILogObserver, filtered)], redirectStandardIO=False)


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_args(argv)
    start_logging(settings.log_level)
    from twisted.internet import reactor as _reactor

    reactor: Any = _reactor
    daemon = Daemon(reactor, settings)
    outcome = {"code": 0}

    def started_failed(failure: Any) -> None:
        value = failure.value
        message = value.message if isinstance(value, MountdError) else str(value)
        if not isinstance(value, (MountdError, OSError, SystemExit)):
            log.failure("cannot start", failure)
        log.critical("cannot start: {message}", message=message)
        outcome["code"] = 1
        reactor.stop()

    def startup() -> Deferred[None]:
        return ensureDeferred(daemon.start()).addErrback(started_failed)

    reactor.callWhenRunning(startup)
    reactor.addSystemEventTrigger("before", "shutdown", lambda: ensureDeferred(daemon.stop()))
    reactor.run()
    sys.stderr.flush()
    # A thread stuck in a frozen FUSE call cannot be joined; the journal is closed, so leave now.
    os._exit(outcome["code"])
