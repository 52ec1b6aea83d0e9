"""Process holders given back the moment their process ends: a pidfd for each, read by the reactor.

A pidfd becomes readable when its process exits (a zombie has exited), so the
reactor learns of it at once, where the health round's check of
``/proc/PID/stat`` comes up to a probe interval later.  That round stays the
net: for a kernel without pidfds, and for what this misses.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IReadDescriptor
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..core.holders import Process
from .procfs import running

__all__ = ["ProcessExits"]

log = Logger()


@implementer(IReadDescriptor)
class _Exit:
    """One watched process's pidfd, as the reactor reads it."""

    def __init__(self, exits: ProcessExits, process: Process, fd: int) -> None:
        self.exits, self.process, self.fd = exits, process, fd

    def fileno(self) -> int:
        return self.fd

    def doRead(self) -> None:
        self.exits.exited(self)

    def connectionLost(self, reason: Failure) -> None:
        """Never closed by the reactor: ``ProcessExits`` closes the pidfd itself."""

    def logPrefix(self) -> str:
        return f"pidfd of {self.process}"


class ProcessExits:
    """Watches processes; calls ``ended`` once for each that ends (or had ended when it was to be watched)."""

    def __init__(self, reactor: Any, ended: Callable[[], object]) -> None:
        self.reactor = reactor
        self.ended = ended
        self.watched: dict[Process, _Exit] = {}

    def watch(self, process: Process) -> None:
        """Watch ``process``, unless it is watched already."""
        if process in self.watched:
            return
        try:
            fd = os.pidfd_open(process.pid)
        except ProcessLookupError:
            self.reactor.callLater(0, self.ended)
            return
        except OSError as e:  # no pidfds in this kernel: the health round is the only check
            log.debug("cannot watch {process}: {error}", process=str(process), error=e)
            return
        if not running(process):  # it ended, and its PID may be another's: the pidfd is of that one
            os.close(fd)
            self.reactor.callLater(0, self.ended)
            return
        watcher = self.watched[process] = _Exit(self, process, fd)
        self.reactor.addReader(watcher)

    def exited(self, watcher: _Exit) -> None:
        self._forget(watcher)
        self.ended()

    def stop(self) -> None:
        for watcher in list(self.watched.values()):
            self._forget(watcher)

    def _forget(self, watcher: _Exit) -> None:
        self.reactor.removeReader(watcher)
        os.close(watcher.fd)
        del self.watched[watcher.process]
