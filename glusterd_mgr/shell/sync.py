"""Concurrency primitives of the shell, each written once: a keyed lock and a one-shot outcome."""

from __future__ import annotations

from collections.abc import Hashable

from twisted.internet.defer import Deferred, DeferredSemaphore
from twisted.python.failure import Failure

__all__ = ["KeyedLock", "OneShot"]


class KeyedLock:
    """Up to ``limit`` holders per key at a time; a key's semaphore is dropped once nobody holds or awaits it."""

    def __init__(self, limit: int = 1) -> None:
        self.limit = limit
        self._slots: dict[Hashable, DeferredSemaphore] = {}

    def acquire(self, key: Hashable) -> Deferred[DeferredSemaphore]:
        """A turn on ``key``; cancelling the Deferred gives up a turn not yet granted."""
        return self._slots.setdefault(key, DeferredSemaphore(self.limit)).acquire()

    def release(self, key: Hashable) -> None:
        slots = self._slots[key]
        slots.release()  # may run the next holder to its own release (and prune) before it returns
        if self._slots.get(key) is slots and not slots.waiting and slots.tokens == slots.limit:
            del self._slots[key]

    def locked(self, key: Hashable) -> bool:
        """Whether every turn on ``key`` is taken."""
        slots = self._slots.get(key)
        return slots is not None and slots.tokens == 0

    def __len__(self) -> int:
        """Keys in use (held or awaited): what the registry keeps in memory."""
        return len(self._slots)


class OneShot:
    """One outcome for many awaiters (a Deferred hands its result down a single chain)."""

    def __init__(self) -> None:
        self._result: Failure | None = None
        self._done = False
        self._waiters: list[Deferred[None]] = []

    def fire(self, failure: Failure | None = None) -> None:
        self._done, self._result = True, failure
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            self._deliver(waiter)

    def _deliver(self, waiter: Deferred[None]) -> None:
        if self._result is not None:
            waiter.errback(self._result)
        else:
            waiter.callback(None)

    def wait(self) -> Deferred[None]:
        waiter: Deferred[None] = Deferred()
        if self._done:
            self._deliver(waiter)
        else:
            self._waiters.append(waiter)
        return waiter
