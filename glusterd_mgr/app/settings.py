"""The daemon's settings: flags and a TOML file (flag over file), typed and checked before anything starts."""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from .. import __version__
from ..client import DEFAULT_SOCKET
from ..core import fuse_client, policy
from ..core.mounts import UnmountMode
from ..shell.driver import EngineConfig

__all__ = [
    "DEFAULT_METRICS_PORT",
    "DEFAULT_STATE_DIR",
    "Settings",
    "current_storage_dir",
    "current_whitelist",
    "engine_config",
    "parse_args",
]

DEFAULT_STATE_DIR = "/var/lib/ganeti-gluster-mountd"
DEFAULT_METRICS_PORT = 9723


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
    unmount_grace: float = 0.0
    mount_timeout: float = 30.0
    fs_timeout: float = 30.0
    probe_interval: float = 10.0
    probe_timeout: float = 5.0
    fs_threads: int = 16
    backup_volfile_servers: list[str] = field(default_factory=list)
    client_log_dir: str = "/var/log/glusterfs"
    client_oom_score_adj: int = fuse_client.DEFAULT_OOM_SCORE_ADJ
    client_memory_warning_mib: int = 2048
    client_reader_threads: int = fuse_client.DEFAULT_READER_THREADS
    client_event_threads: int = fuse_client.DEFAULT_EVENT_THREADS
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
    if settings.unmount_grace < 0:
        parser.error(f"unmount-grace must be 0 (unmount at once) or more seconds, not {settings.unmount_grace}")
    if settings.client_memory_warning_mib < 0:
        parser.error(f"client-memory-warning-mib must be 0 (off) or more, not {settings.client_memory_warning_mib}")
    if not 1 <= settings.client_reader_threads <= 64:
        parser.error(f"client-reader-threads must be from 1 to 64, not {settings.client_reader_threads}")
    if not 0 <= settings.client_event_threads <= 32:
        parser.error(f"client-event-threads must be 0 (the volume's own) to 32, not {settings.client_event_threads}")
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
        unmount_grace=settings.unmount_grace,
        mount_timeout=settings.mount_timeout,
        fs_timeout=settings.fs_timeout,
        probe_timeout=settings.probe_timeout,
        log_dir=settings.client_log_dir,
        backup_servers=tuple(settings.backup_volfile_servers),
        client_oom_score_adj=settings.client_oom_score_adj,
        client_memory_warn_bytes=settings.client_memory_warning_mib << 20,
        client_options=fuse_client.client_options(settings.client_reader_threads, settings.client_event_threads),
    )
