"""The servers of each volume, learned from the volume itself, as backup volfile servers.

Ganeti's disk parameters name one server (``host``).  A replicated volume
stays usable while any of its brick servers is up, but a *new* mount fetches
its volume file from the named server only, unless the FUSE client is given
others (further ``--volfile-server=`` arguments, tried in order).  So after each mount the daemon reads
the brick hosts from the graph the FUSE client prints into its log
(``option remote-host ...`` of each ``protocol/client`` translator), remembers
them per volume in its state folder, and offers them on every later mount, even
after a restart.  The operator's ``--backup-volfile-servers`` come after them.

Pure: parsing and bookkeeping only; the daemon reads the log and writes the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

from .volume import VolumeSpec

__all__ = ["FILE_NAME", "ServerMemory", "brick_hosts"]

FILE_NAME = "volfile-servers.json"

_REMOTE_HOST = re.compile(r"^\s*(?:\d+:\s+)?option remote-host\s+(\S+)\s*$", re.MULTILINE)


def brick_hosts(log_text: str) -> list[str]:
    """The brick hosts of the graph(s) in a client log, in order of first appearance."""
    return _unique(m.group(1) for m in _REMOTE_HOST.finditer(log_text))


def _unique(hosts: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for host in hosts:
        if host.lower() not in seen:
            seen.add(host.lower())
            out.append(host)
    return out


class ServerMemory:
    """Brick hosts per volume (by ``VolumeSpec.key``), as last seen in a client's graph."""

    def __init__(self, hosts: dict[str, list[str]] | None = None, path: str | None = None) -> None:
        self._hosts: dict[str, list[str]] = dict(hosts or {})
        self.path = path
        """Where the daemon keeps it (None: in memory only)."""

    @classmethod
    def from_text(cls, text: str | None, path: str | None = None) -> ServerMemory:
        """Read the file's text; anything unreadable is forgotten (the servers are learned again at the next mount)."""
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        hosts = {k: [h for h in v if isinstance(h, str) and h] for k, v in data.items() if isinstance(k, str) and isinstance(v, list)}
        return cls(hosts, path)

    def to_text(self) -> str:
        return json.dumps(self._hosts, indent=1, sort_keys=True) + "\n"

    def known(self, spec: VolumeSpec) -> list[str]:
        return list(self._hosts.get(spec.key, ()))

    def learn(self, spec: VolumeSpec, hosts: Sequence[str]) -> bool:
        """Remember ``hosts`` for ``spec``; True if that changed what is remembered (and so must be saved)."""
        hosts = _unique(hosts)
        if not hosts or hosts == self._hosts.get(spec.key):
            return False
        self._hosts[spec.key] = hosts
        return True

    def backups(self, spec: VolumeSpec, configured: Sequence[str] = ()) -> tuple[str, ...]:
        """``backup-volfile-servers`` for a mount of ``spec``: the learned hosts, then the configured ones; never the named host."""
        named = {spec.host.lower(), spec.mount_host.lower()}
        return tuple(h for h in _unique([*self.known(spec), *configured]) if h.lower() not in named)
