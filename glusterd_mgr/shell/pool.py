"""A bounded thread pool with deadlines for the calls that may hang on a FUSE mount."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.defer import CancelledError, Deferred, fail
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from ..core.errors import OperationTimeout
from .sync import KeyedLock

__all__ = ["FsPool"]

T = TypeVar("T")


class FsPool:
    """A bounded thread pool for calls that may hang on a FUSE mount.

    Each call has a deadline, counted from when it was asked for.  A call that
    overruns it keeps its thread (Python cannot kill it) and marks its key (a
    mountpoint) as hung: further calls on that key fail at once with
    ``OperationTimeout`` until the stuck call returns.  At most ``per_key``
    calls of one key hold threads at a time (the rest wait their turn), so a
    frozen server can never use up the pool and starve the other volumes.
    """

    def __init__(self, reactor: Any, max_threads: int = 16, name: str = "fs", per_key: int = 4) -> None:
        self._reactor = reactor
        self._pool = ThreadPool(minthreads=0, maxthreads=max_threads, name=name)
        self._running: dict[str, dict[int, tuple[float, float]]] = {}  # key -> token -> (started, timeout)
        self._slots = KeyedLock(per_key)
        self._next = 0
        self.per_key = per_key
        self.max_threads = max_threads

    def start(self) -> None:
        self._pool.start()

    def stop(self) -> None:
        self._pool.stop()

    @property
    def occupancy(self) -> int:
        """Calls holding a thread, stuck ones included."""
        return sum(len(calls) for calls in self._running.values())

    def stuck_since(self, key: str) -> float | None:
        """How long the oldest overdue call on ``key`` has run, or None if none is overdue."""
        now = time.monotonic()
        ages = [now - started for started, timeout in self._running.get(key, {}).values() if started and now - started >= timeout]
        return max(ages) if ages else None

    def run(self, key: str, fn: Callable[[], T], timeout: float) -> Deferred[T]:
        stuck = self.stuck_since(key)
        if stuck is not None:
            return fail(OperationTimeout(f"{key} is not answering: a file-system call there has been stuck for {stuck:.0f} s"))
        outer: Deferred[T] = Deferred()
        turn = self._slots.acquire(key)

        def overdue() -> None:
            if not outer.called:
                outer.errback(Failure(OperationTimeout(f"{key} did not answer within {timeout:g} s")))
            turn.cancel()  # still waiting for a slot: give it up

        timer = self._reactor.callLater(timeout, overdue)
        turn.addCallbacks(lambda _: self._start(key, fn, timeout, outer, timer), lambda f: f.trap(CancelledError))
        return outer

    def _start(self, key: str, fn: Callable[[], T], timeout: float, outer: Deferred[T], timer: Any) -> None:
        token = self._next
        self._next += 1
        calls = self._running.setdefault(key, {})
        calls[token] = (0.0, timeout)

        def in_thread() -> T:
            calls[token] = (time.monotonic(), timeout)  # a plain dict store: safe under the GIL
            return fn()

        def finished(result: Any) -> None:
            calls.pop(token, None)
            if not calls and self._running.get(key) is calls:
                del self._running[key]
            self._slots.release(key)
            if timer.active():
                timer.cancel()
            if not outer.called:
                (outer.errback if isinstance(result, Failure) else outer.callback)(result)

        deferToThreadPool(self._reactor, self._pool, in_thread).addBoth(finished)
