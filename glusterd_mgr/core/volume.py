"""Volume identity: Ganeti's disk parameters ``gluster:host``, ``gluster:port``, ``gluster:volume``.

Pure: resolving host names to addresses is injected by the caller, so two
spellings of one server (``gs1`` and ``10.0.0.2``) compare equal.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidParams

__all__ = ["DEFAULT_PORT", "DEFAULT_VOLUME", "LOCAL_HOST", "MountSource", "VolumeSpec", "is_ipv6", "parse_source", "same_volume"]

DEFAULT_PORT = 24007
DEFAULT_VOLUME = "gv0"
LOCAL_HOST = "127.0.0.1"
"""What an empty ``host`` (meaning "this node") is mounted from, as Ganeti 3.0 does."""

# ``\Z``, not ``$``: ``$`` also matches before a trailing newline ("gv0\n" would pass).
_HOSTNAME = re.compile(r"^(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?\Z")
_VOLNAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}\Z")
_TRANSPORT_SUFFIXES = (".tcp", ".rdma")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_ipv6(host: str) -> bool:
    return ":" in host and _is_ip(host)


@dataclass(frozen=True, order=True)
class VolumeSpec:
    host: str
    port: int = DEFAULT_PORT
    volume: str = DEFAULT_VOLUME

    def __post_init__(self) -> None:
        if self.host and not (_is_ip(self.host) or _HOSTNAME.match(self.host)):
            raise InvalidParams(f"volume host {self.host!r} is neither an IP address nor a host name", field="volume.host")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise InvalidParams(f"volume port {self.port!r} is not a TCP port (1-65535)", field="volume.port")
        if not _VOLNAME.match(self.volume):
            raise InvalidParams(
                f"volume name {self.volume!r} is not a Gluster volume name (letters, digits, '_' and '-', at most 64)",
                field="volume.volume",
            )

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> VolumeSpec:
        return cls(host=obj.get("host", ""), port=obj.get("port", DEFAULT_PORT), volume=obj.get("volume", DEFAULT_VOLUME))

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "volume": self.volume}

    @property
    def key(self) -> str:
        """A stable one-line name, used in logs, metrics labels and the journal."""
        host = f"[{self.host}]" if is_ipv6(self.host) else self.host
        return f"{host}:{self.port}/{self.volume}"

    @property
    def mount_host(self) -> str:
        return self.host or LOCAL_HOST

    @property
    def mount_source(self) -> str:
        """What ``mount -t glusterfs`` is given, ``HOST:/VOLUME``."""
        return f"{self.mount_host}:/{self.volume}"

    def uri(self, path: str) -> str:
        """QEMU's userspace URI, ``gluster://HOST:PORT/VOLUME/PATH`` (IPv6 hosts in brackets)."""
        host = self.mount_host
        if is_ipv6(host):
            host = f"[{host}]"
        return f"gluster://{host}:{self.port}/{self.volume}/{path.lstrip('/')}"


@dataclass(frozen=True)
class MountSource:
    """The ``host`` and ``volume`` a mount table source names (the port is not recorded there)."""

    host: str
    volume: str


def parse_source(source: str) -> MountSource | None:
    """Split a glusterfs mount source; None when it is not ``HOST:[/]VOLUME[/]``.

    Accepts ``host:/vol``, ``host:vol``, ``host:/vol/``, a ``.tcp``/``.rdma``
    transport suffix, and IPv6 hosts with or without brackets.  A sub-directory
    mount (``host:/vol/dir``) keeps its path in ``volume`` so that it never
    compares equal to the whole volume.
    """
    for suffix in _TRANSPORT_SUFFIXES:
        if source.endswith(suffix):
            source = source[: -len(suffix)]
            break
    host, sep, volume = source.rpartition(":")
    if not sep or not host:
        return None
    volume = volume.strip("/")
    if not volume:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return MountSource(host=host, volume=volume)


def same_volume(
    spec: VolumeSpec,
    source: MountSource,
    spec_addresses: frozenset[str],
    source_addresses: frozenset[str],
) -> bool:
    """True when a mount source names ``spec``'s volume on the same server.

    Hosts are compared by their resolved addresses; a host that did not
    resolve compares by name only.
    """
    if source.volume != spec.volume:
        return False
    if spec.mount_host.lower() == source.host.lower():
        return True
    return bool(spec_addresses & source_addresses)
