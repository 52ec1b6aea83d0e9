"""Path policy (pure): the storage-path whitelist, Ganeti's forbidden paths, safe disk paths."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from .errors import PathRefused

__all__ = [
    "DEFAULT_DISK_FOLDER",
    "DEFAULT_STORAGE_DIR",
    "FILE_STORAGE_PATHS",
    "FORBIDDEN_PATHS",
    "MAX_NAME_BYTES",
    "SSCONF_STORAGE_DIR",
    "DiskPath",
    "check_disk_path",
    "check_storage_dir",
    "is_below",
    "parse_ssconf_storage_dir",
    "parse_whitelist",
]

DEFAULT_STORAGE_DIR = "/var/run/ganeti/gluster"
SSCONF_STORAGE_DIR = "/var/lib/ganeti/ssconf_gluster_storage_dir"
FILE_STORAGE_PATHS = "/etc/ganeti/file-storage-paths"
DEFAULT_DISK_FOLDER = "ganeti"
MAX_NAME_BYTES = 255


def _forbidden() -> frozenset[str]:
    paths = {"/boot", "/dev", "/etc", "/home", "/proc", "/root", "/sys"}
    for prefix in ("/", "/usr", "/usr/local"):
        for name in ("bin", "lib", "lib32", "lib64", "sbin"):
            paths.add(posixpath.join(prefix, name))
    return frozenset(paths)


FORBIDDEN_PATHS = _forbidden()
"""Paths Ganeti never accepts for file storage (``pathutils``/``backend`` in Ganeti 3.0)."""


def _normpath(path: str) -> str:
    """``posixpath.normpath``, but ``//x`` becomes ``/x`` (POSIX keeps two leading slashes; Linux does not care)."""
    path = posixpath.normpath(path)
    return "/" + path.lstrip("/") if path.startswith("//") else path


def is_below(parent: str, child: str) -> bool:
    """True when ``child`` is ``parent`` or lies below it (lexically, normalized)."""
    parent = _normpath(parent)
    child = _normpath(child)
    return child == parent or child.startswith(parent.rstrip("/") + "/")


def parse_whitelist(text: str) -> list[str]:
    """Ganeti's ``file-storage-paths``: one absolute path a line, ``#`` comments, blanks ignored."""
    paths = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and posixpath.isabs(line):
            paths.append(_normpath(line))
    return paths


def parse_ssconf_storage_dir(text: str | None) -> str:
    """The ``gluster_storage_dir`` ssconf value, or Ganeti's default when absent or empty."""
    value = (text or "").strip()
    return _normpath(value) if value else DEFAULT_STORAGE_DIR


def check_storage_dir(path: str, whitelist: list[str], whitelist_file: str) -> None:
    """Refuse a mount directory Ganeti would refuse, naming the file an operator must edit."""
    if not posixpath.isabs(path):
        raise PathRefused(f"gluster storage directory {path!r} is not an absolute path")
    norm = _normpath(path)
    if any(c.isspace() for c in norm):
        raise PathRefused(f"gluster storage directory {path!r} contains whitespace, which mount.glusterfs cannot handle; choose another")
    if norm == "/" or any(is_below(f, norm) for f in FORBIDDEN_PATHS):
        raise PathRefused(f"gluster storage directory {path!r} is, or lies below, a path Ganeti forbids for file storage")
    if not any(is_below(allowed, norm) for allowed in whitelist):
        raise PathRefused(
            f"gluster storage directory {path!r} is not whitelisted: add it to {whitelist_file}",
            file=whitelist_file,
        )


@dataclass(frozen=True)
class DiskPath:
    """A disk's place inside the volume: ``folder`` components then the file name."""

    folder: tuple[str, ...]
    name: str

    @property
    def relative(self) -> str:
        return "/".join((*self.folder, self.name))


def _check_component(component: str, path: str) -> None:
    if component in ("", ".", ".."):
        raise PathRefused(f"disk path {path!r} has an empty, '.' or '..' component")
    if not component.isprintable():
        raise PathRefused(f"disk path {path!r} contains control characters")
    if len(component.encode()) > MAX_NAME_BYTES:
        raise PathRefused(f"disk path {path!r} has a component longer than {MAX_NAME_BYTES} bytes")


def check_disk_path(path: str, folder: str = DEFAULT_DISK_FOLDER) -> DiskPath:
    """Accept only ``FOLDER/NAME`` relative to the volume root (lexical checks; symlinks are refused at open)."""
    if not isinstance(path, str) or not path:
        raise PathRefused("disk path is empty")
    if "\0" in path:
        raise PathRefused("disk path contains a NUL byte")
    if path.startswith("/"):
        raise PathRefused(f"disk path {path!r} is absolute; give it relative to the volume root, e.g. {folder}/UUID.0")
    parts = path.split("/")
    for part in parts:
        _check_component(part, path)
    want = tuple(folder.split("/"))
    if len(parts) != len(want) + 1 or tuple(parts[:-1]) != want:
        raise PathRefused(f"disk path {path!r} is not directly inside the in-volume folder {folder!r}/")
    return DiskPath(folder=want, name=parts[-1])
