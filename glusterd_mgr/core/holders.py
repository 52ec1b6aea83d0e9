"""Holders of a volume's mount and the per-volume holder sets (pure bookkeeping)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidParams
from .volume import VolumeSpec

__all__ = ["HOLDER_KINDS", "MAX_HOLDER_ID", "Change", "Holder", "HolderTable", "Process"]

HOLDER_KINDS = ("instance", "os-install", "job", "process")
MAX_HOLDER_ID = 255
_PROCESS_ID = re.compile(r"^([1-9][0-9]*)@([0-9]+)$")


@dataclass(frozen=True, order=True)
class Process:
    """One process, told apart from a later one with the same PID by its start time (clock ticks since boot)."""

    pid: int
    start_ticks: int

    def __str__(self) -> str:
        return f"{self.pid}@{self.start_ticks}"

    @classmethod
    def from_stat(cls, pid: int, stat: bytes) -> Process | None:
        """The process ``/proc/PID/stat`` describes; None for a zombie (it has ended, only its parent has not reaped it).

        The command name (field 2) may hold spaces and parentheses: fields are counted after its last ``)``.
        """
        fields = stat[stat.rindex(b")") + 2 :].split()
        return None if fields[0] == b"Z" else cls(pid, int(fields[19]))  # fields 3 and 22


@dataclass(frozen=True, order=True)
class Holder:
    """Who keeps a volume mounted: a running instance's disk, an OS install, a short job, or a process while it lives."""

    kind: str
    id: str

    def __post_init__(self) -> None:
        if self.kind not in HOLDER_KINDS:
            raise InvalidParams(f"holder kind {self.kind!r} is not one of {', '.join(HOLDER_KINDS)}", field="holder.kind")
        if not isinstance(self.id, str) or not self.id:
            raise InvalidParams("holder id must be a non-empty string", field="holder.id")
        if len(self.id) > MAX_HOLDER_ID:
            raise InvalidParams(f"holder id is {len(self.id)} characters long; at most {MAX_HOLDER_ID}", field="holder.id")
        if not self.id.isprintable():
            raise InvalidParams("holder id contains control or non-printable characters", field="holder.id")
        if self.kind == "process" and not _PROCESS_ID.match(self.id):
            raise InvalidParams(
                f"a process holder's id is PID@START_TICKS (field 22 of /proc/PID/stat), not {self.id!r}", field="holder.id"
            )

    @property
    def process(self) -> Process | None:
        """For a ``process`` holder, the process whose life it lasts: the daemon lets go when it ends."""
        m = _PROCESS_ID.match(self.id) if self.kind == "process" else None
        return Process(int(m[1]), int(m[2])) if m else None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Holder:
        return cls(kind=obj.get("kind", ""), id=obj.get("id", ""))

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.id}

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass
class HolderTable:
    """Durable holders per volume, and the mountpoint each volume was acquired on."""

    holders: dict[VolumeSpec, set[Holder]] = field(default_factory=dict)
    mountpoints: dict[VolumeSpec, str] = field(default_factory=dict)

    def add(self, spec: VolumeSpec, mountpoint: str, holder: Holder) -> bool:
        """Add ``holder``; False when it was already there (a retried acquire)."""
        current = self.holders.setdefault(spec, set())
        self.mountpoints[spec] = mountpoint
        if holder in current:
            return False
        current.add(holder)
        return True

    def remove(self, spec: VolumeSpec, holder: Holder) -> bool:
        """Remove ``holder``; False when it was not there."""
        current = self.holders.get(spec)
        if current is None or holder not in current:
            return False
        current.remove(holder)
        if not current:
            del self.holders[spec]
            self.mountpoints.pop(spec, None)
        return True

    def apply(self, change: Change) -> None:
        """Replay one journaled change (the journal's replay and the in-memory world both do)."""
        if change.op == "acquire":
            self.add(change.spec, change.mountpoint, change.holder)
        else:
            self.remove(change.spec, change.holder)

    def has(self, spec: VolumeSpec, holder: Holder) -> bool:
        return holder in self.holders.get(spec, ())

    def count(self, spec: VolumeSpec) -> int:
        return len(self.holders.get(spec, ()))

    def of(self, spec: VolumeSpec) -> frozenset[Holder]:
        return frozenset(self.holders.get(spec, ()))

    def total(self) -> int:
        return sum(len(h) for h in self.holders.values())

    def volumes(self) -> list[VolumeSpec]:
        return sorted(self.holders)

    def entries(self) -> Iterator[tuple[VolumeSpec, str, Holder]]:
        for spec in sorted(self.holders):
            for holder in sorted(self.holders[spec]):
                yield spec, self.mountpoints[spec], holder


@dataclass(frozen=True)
class Change:
    """One holder change as it goes into the journal."""

    op: str  # "acquire" or "release"
    spec: VolumeSpec
    holder: Holder
    mountpoint: str = ""

    def encode(self) -> bytes:
        record: dict[str, Any] = {"op": self.op, "volume": self.spec.to_json(), "holder": self.holder.to_json()}
        if self.op == "acquire":
            record["mountpoint"] = self.mountpoint
        return json.dumps(record, separators=(",", ":")).encode() + b"\n"
