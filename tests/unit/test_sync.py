"""The keyed lock: turns per key, pruned when idle, even when the next holder finishes inside a release."""

from __future__ import annotations

from glusterd_mgr.shell.sync import KeyedLock


def test_a_waiter_that_releases_during_the_release_that_woke_it_leaves_the_registry_clean() -> None:
    locks = KeyedLock()
    locks.acquire("k")
    released: list[str] = []
    waiting = locks.acquire("k")

    def second(_: object) -> None:
        locks.release("k")
        released.append("second")

    waiting.addCallback(second)
    assert locks.locked("k")
    locks.release("k")  # wakes the waiter, which releases at once
    assert released == ["second"] and not locks.locked("k") and len(locks) == 0


def test_turns_are_limited_per_key_and_keys_are_apart() -> None:
    locks = KeyedLock(limit=2)
    locks.acquire("a")
    locks.acquire("a")
    third = locks.acquire("a")
    locks.acquire("b")
    assert locks.locked("a") and not third.called and not locks.locked("b")
    locks.release("a")
    assert third.called
