"""The daemon's file descriptors: how many are open against its limit, and the limit raised at start."""

from __future__ import annotations

import os
import resource
from typing import NamedTuple

__all__ = ["CEILING", "Usage", "raise_limit", "usage"]

CEILING = 65536
"""The soft limit the daemon raises itself to at most: enough for it, and children that close every descriptor
up to their limit at start (old daemons do) do not pay for a million."""


class Usage(NamedTuple):
    open: int
    limit: int


def usage() -> Usage:
    """Descriptors open now (a read of /proc: it never blocks) and the soft limit."""
    return Usage(len(os.listdir("/proc/self/fd")) - 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])  # less listdir's own


def raise_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE towards the hard one (never above ``CEILING``, never lower); returns (before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = CEILING if hard == resource.RLIM_INFINITY else min(hard, CEILING)
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        return soft, wanted
    return soft, soft
