"""Parse ``/proc/self/mountinfo`` into records (pure: text in, records out).

Format (proc(5)): ``ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS``.
The kernel escapes space, tab, newline and backslash in paths as ``\\ooo``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

__all__ = [
    "DELETED_SUFFIX",
    "MountRecord",
    "MountinfoError",
    "count_at",
    "escape",
    "parse",
    "parse_line",
    "stack_at",
    "stack_in",
    "unescape",
]

DELETED_SUFFIX = " (deleted)"
_ESCAPED = {" ": "\\040", "\t": "\\011", "\n": "\\012", "\\": "\\134"}
_OCTAL = re.compile(r"\\([0-7]{3})")


class MountinfoError(ValueError):
    """A line that is not in mountinfo's format."""


def unescape(field: str) -> str:
    """Undo the kernel's octal escapes (``\\040`` → space, ``\\134`` → backslash, ...)."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def escape(path: str) -> str:
    """Escape a path the way the kernel writes it into mountinfo."""
    return "".join(_ESCAPED.get(ch, ch) for ch in path)


class MountRecord(NamedTuple):
    """One mount (a named tuple: parsing 10,000 of them must stay cheap)."""

    mount_id: int
    parent_id: int
    major: int
    minor: int
    root: str
    mountpoint: str
    options: tuple[str, ...]
    optional: tuple[str, ...]
    fstype: str
    source: str
    super_options: tuple[str, ...]

    @property
    def deleted(self) -> bool:
        """True when the mountpoint directory was removed after mounting."""
        return self.mountpoint.endswith(DELETED_SUFFIX)

    @property
    def path(self) -> str:
        """The mountpoint without the kernel's `` (deleted)`` marker."""
        if self.deleted:
            return self.mountpoint[: -len(DELETED_SUFFIX)]
        return self.mountpoint

    @property
    def is_glusterfs(self) -> bool:
        return self.fstype == "fuse.glusterfs"


def _field(raw: str) -> str:
    return unescape(raw) if "\\" in raw else raw


def parse_line(line: str) -> MountRecord:
    fields = line.rstrip("\n").split(" ")
    try:
        sep = 6 if len(fields) > 6 and fields[6] == "-" else fields.index("-", 6)
    except ValueError:
        raise MountinfoError(f"no '-' separator in mountinfo line: {line!r}") from None
    if len(fields) < sep + 3:
        raise MountinfoError(f"truncated mountinfo line: {line!r}")
    try:
        return _record(fields, sep)
    except ValueError:
        raise MountinfoError(f"bad numbers in mountinfo line: {line!r}") from None


_make = tuple.__new__


def _record(f: list[str], sep: int) -> MountRecord:
    """The record of a line split at spaces whose ``-`` separator is at ``sep`` (ValueError on bad numbers)."""
    major, minor = f[2].split(":")
    extra = f[sep + 3] if len(f) > sep + 3 else ""
    fields = (
        int(f[0]),
        int(f[1]),
        int(major),
        int(minor),
        _field(f[3]),
        _field(f[4]),
        tuple(f[5].split(",")),
        tuple(f[6:sep]),
        _field(f[sep + 1]),
        _field(f[sep + 2]),
        tuple(extra.split(",")) if extra else (),
    )
    return _make(MountRecord, fields)


def parse(text: str) -> list[MountRecord]:
    """Parse a whole mountinfo text, in kernel order (a later record sits on top).

    Records end at ``\\n`` only (the kernel escapes it inside fields); not
    ``str.splitlines``, which also splits at ``\\r``, ``\\x0b``, ``\\x85``,
    ``\\u2028``... that the kernel leaves unescaped in a path.
    """
    try:
        return _parse_fast(text)
    except (ValueError, IndexError):
        # Some line is malformed: let the careful parser say which.
        return [parse_line(line) for line in text.split("\n") if line.strip()]


def _parse_fast(text: str) -> list[MountRecord]:
    """``parse_line`` over a whole table without its error reporting: the same records, faster."""
    out: list[MountRecord] = []
    append = out.append
    for line in text.split("\n"):
        if not line.strip():
            continue
        f = line.split(" ")
        sep = 6 if f[6] == "-" else f.index("-", 6)
        if len(f) < sep + 3:
            raise ValueError(line)
        append(_record(f, sep))
    return out


def stack_at(records: Iterable[MountRecord], path: str) -> list[MountRecord]:
    """All mounts on ``path``, bottom first; the last one is what a lookup sees."""
    return [r for r in records if r.path == path]


def count_at(records: Sequence[MountRecord], path: str) -> int:
    return len(stack_at(records, path))


def stack_in(text: str, path: str) -> list[MountRecord]:
    """``stack_at(parse(text), path)``, parsing only the lines that can match.

    The escaped path is searched for in the whole text (at C speed), so a
    lookup costs little more than reading the table even with thousands of
    mounts on the node.
    """
    found: dict[int, MountRecord] = {}
    for candidate in (path, path + DELETED_SUFFIX):
        needle = f" {escape(candidate)} "
        start = text.find(needle)
        while start >= 0:
            line_start = text.rfind("\n", 0, start) + 1
            line_end = text.find("\n", start)
            if line_end < 0:
                line_end = len(text)
            if line_start not in found:
                record = parse_line(text[line_start:line_end])
                if record.path == path:
                    found[line_start] = record
            start = text.find(needle, line_end)
    return [found[k] for k in sorted(found)]
