"""Helpers (``mount``, ``umount``, ``busctl``) run as processes of their own, killed at a deadline."""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

from ..core.effects import ProcessResult
from .reactor import Clock, NodeReactor

__all__ = ["KILL_GRACE", "kill", "run_helper"]

KILL_GRACE = 10.0
"""How long a killed helper may take to be reaped before its caller is answered anyway."""


class _Collector(ProcessProtocol):
    """Collects a helper's output and kills its whole process group at the deadline.

    A helper stuck in the kernel may outlive SIGKILL (or a child may keep its
    pipes open); ``done`` then fires ``KILL_GRACE`` seconds after the kill, so
    no caller (and no lock it holds) waits forever.
    """

    def __init__(self, reactor: Clock, argv: tuple[str, ...], timeout: float) -> None:
        self.argv = argv
        self.done: Deferred[ProcessResult] = Deferred()
        self._reactor = reactor
        self._chunks: list[bytes] = []
        self._timed_out = False
        self._timer: Any = reactor.callLater(timeout, self._kill)

    def outReceived(self, data: bytes) -> None:
        self._chunks.append(data)

    errReceived = outReceived

    def _kill(self) -> None:
        self._timed_out = True
        pid = self.transport.pid if self.transport is not None else None
        if pid:
            try:
                os.killpg(pid, signal.SIGKILL)  # the helper runs as leader of its own group
            except ProcessLookupError:
                pass
        self._timer = self._reactor.callLater(KILL_GRACE, self._finish, None, None, "\n(the helper did not die when killed)")

    def _finish(self, code: int | None, sig: int | None, extra: str = "") -> None:
        if not self.done.called:
            output = b"".join(self._chunks).decode("utf-8", "replace") + extra
            self.done.callback(ProcessResult(self.argv, code, sig, output, self._timed_out))

    def processEnded(self, reason: Failure) -> None:
        if self._timer.active():
            self._timer.cancel()
        self._finish(getattr(reason.value, "exitCode", None), getattr(reason.value, "signal", None))


def run_helper(
    reactor: NodeReactor, argv: tuple[str, ...], cwd: str, timeout: float, extra_env: Mapping[str, str]
) -> Deferred[ProcessResult]:
    """Run ``argv`` as the leader of its own process group (so a timeout kills its children too), in the C locale."""
    proto = _Collector(reactor, argv, timeout)
    env = {**os.environ, "LC_ALL": "C", **extra_env}
    reactor.spawnProcess(proto, "/usr/bin/setsid", ("setsid", *argv), env=env, path=cwd)
    return proto.done


def kill(pids: tuple[int, ...]) -> None:
    """SIGKILL each of ``pids`` that still exists."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
