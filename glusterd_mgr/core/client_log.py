"""Which brick servers a living FUSE client has lost, read from its log (pure).

A client that reaches no brick of a subvolume answers ``ENOTCONN`` although it
lives: a network partition, not a death.  Its log says which connections it
dropped and which it made again, per ``protocol/client`` translator
(``VOLUME-client-N``):

- ``server HOST:PORT has not responded in the last N seconds, disconnecting.``
  (the ping timer expired: a silent partition);
- ``connection to HOST:PORT failed`` (refused or unreachable);
- ``disconnected from VOLUME-client-N`` (the translator's connection is down);
- ``Connected, attached to remote volume [{conn-name=VOLUME-client-N}, ...]``
  (up again);
- and, in the graph printed at mount, ``volume VOLUME-client-N`` followed by
  ``option remote-host HOST`` (which host each translator talks to).

``Links`` is fed the log piece by piece, in order, and keeps the last word on
each translator, so the daemon reads each byte once however long the outage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Links"]

_TRANSLATOR = r"\d+-(?P<xl>[^\s:]+-client-\d+):"
_LOST = re.compile(_TRANSLATOR + r" server (?P<host>\S+):\d+ has not responded in the last")
_FAILED = re.compile(_TRANSLATOR + r" connection to (?P<host>\S+):\d+ failed")
_DOWN = re.compile(_TRANSLATOR + r" disconnected from")
_UP = re.compile(r"Connected, attached to remote volume \[\{conn-name=(?P<xl>[^}]+)\}")
_GRAPH_VOLUME = re.compile(r"^\s*\d+: volume (?P<xl>\S+-client-\d+)\s*$")
_GRAPH_HOST = re.compile(r"^\s*\d+:\s+option remote-host (?P<host>\S+)\s*$")


def _unbracket(host: str) -> str:
    """``[fd00::1]`` → ``fd00::1``: the log brackets IPv6 addresses before the port."""
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


@dataclass
class Links:
    """The client's connection to each brick server, as its log last said."""

    hosts: dict[str, str] = field(default_factory=dict)
    """Translator → the host it connects to."""
    down: set[str] = field(default_factory=set)
    """Translators whose connection is down."""
    _graph_volume: str | None = None

    def feed(self, text: str) -> None:
        """Take the next piece of the log (whole lines; a cut last line is read as it is)."""
        for line in text.splitlines():
            self._line(line)

    def _line(self, line: str) -> None:
        if m := _GRAPH_VOLUME.match(line):
            self._graph_volume = m["xl"]
            return
        if (m := _GRAPH_HOST.match(line)) and self._graph_volume:
            self.hosts[self._graph_volume] = _unbracket(m["host"])
            return
        if m := _LOST.search(line) or _FAILED.search(line):
            self.hosts.setdefault(m["xl"], _unbracket(m["host"]))
            self.down.add(m["xl"])
        elif m := _DOWN.search(line):
            self.down.add(m["xl"])
        elif m := _UP.search(line):
            self.down.discard(m["xl"])

    def unreachable(self) -> list[str]:
        """The hosts the client cannot reach now (a translator of unknown host is named as itself)."""
        return sorted({self.hosts.get(xl, xl) for xl in self.down})
