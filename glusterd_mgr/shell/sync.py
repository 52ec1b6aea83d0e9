"""The keyed lock of the shell: the driver's ``Locked`` effect and the pool's per-key slots are both one."""

from __future__ import annotations

from collections.abc import Hashable

from twisted.internet.defer import Deferred, DeferredSemaphore

__all__ = ["KeyedLock"]


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
