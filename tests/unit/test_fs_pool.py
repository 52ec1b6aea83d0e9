"""The FUSE-call pool in process: deadlines, a hung key failing fast, per-key slots (real threads, no mount)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.internet.defer import Deferred

from glusterd_mgr.core.errors import OperationTimeout
from glusterd_mgr.shell.pool import FsPool

WAIT = 10.0  # a blocked stand-in call never waits longer than this (the test fails first)


@pytest.fixture
def pool() -> Iterator[FsPool]:
    p = FsPool(reactor, max_threads=4, per_key=2)
    p.start()
    yield p
    p.stop()


class Gate:
    """Stand-in calls that block in their thread until the test opens the gate."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.entered = threading.Semaphore(0)
        self.ran = 0

    def call(self) -> str:
        self.ran += 1
        self.entered.release()
        assert self.opened.wait(WAIT), "the gate was never opened"
        return "done"

    def wait_entered(self, n: int) -> None:
        for _ in range(n):
            assert self.entered.acquire(timeout=WAIT), "a call never started in its thread"


async def until(done: Callable[[], bool]) -> None:
    """Poll with a deadline: what a worker thread finished reaches the reactor on one of its next turns."""
    clock: Any = reactor  # the global reactor's type names no interface
    deadline = clock.seconds() + WAIT
    while not done():
        assert clock.seconds() < deadline, "timed out"
        await task.deferLater(reactor, 0.01)


async def failure_of(d: Deferred[Any]) -> Exception:
    try:
        await d
    except Exception as e:
        return e
    raise AssertionError("the call succeeded")


@pytest_twisted.ensureDeferred
async def test_a_call_returns_its_value_and_frees_its_thread(pool: FsPool) -> None:
    assert await pool.run("/mnt/a", lambda: 42, timeout=5) == 42
    assert pool.occupancy == 0 and pool.stuck_since("/mnt/a") is None


@pytest_twisted.ensureDeferred
async def test_an_error_in_the_call_reaches_the_caller(pool: FsPool) -> None:
    def broken() -> None:
        raise FileNotFoundError("/mnt/a/ganeti/x")

    assert isinstance(await failure_of(pool.run("/mnt/a", broken, timeout=5)), FileNotFoundError)
    assert pool.occupancy == 0


@pytest_twisted.ensureDeferred
async def test_an_overdue_call_times_out_and_its_key_fails_fast_until_it_returns(pool: FsPool) -> None:
    gate = Gate()
    stuck = pool.run("/mnt/a", gate.call, timeout=0.2)
    error = await failure_of(stuck)
    assert isinstance(error, OperationTimeout) and "within 0.2 s" in str(error)
    assert pool.occupancy == 1  # the thread is still in the call
    await until(lambda: pool.stuck_since("/mnt/a") is not None)  # counted from when its thread took it up
    fast = await failure_of(pool.run("/mnt/a", lambda: 1, timeout=5))
    assert isinstance(fast, OperationTimeout) and "stuck" in str(fast)
    assert await pool.run("/mnt/b", lambda: "other", timeout=5) == "other"  # other mountpoints go on
    gate.opened.set()
    await until(lambda: pool.occupancy == 0)
    # Once the stuck call returns, the key serves again (its late result reaches nobody).
    assert await pool.run("/mnt/a", lambda: "back", timeout=5) == "back"
    assert pool.stuck_since("/mnt/a") is None


@pytest_twisted.ensureDeferred
async def test_a_key_holds_at_most_per_key_threads_and_a_waiting_call_that_times_out_never_runs(pool: FsPool) -> None:
    gate = Gate()
    first = [pool.run("/mnt/a", gate.call, timeout=WAIT) for _ in range(2)]
    gate.wait_entered(2)  # both in their threads (they start at once: the slots are free)
    waiting = pool.run("/mnt/a", gate.call, timeout=0.2)
    assert isinstance(await failure_of(waiting), OperationTimeout)
    assert pool.occupancy == 2, "the third call of the key took a thread"
    assert await pool.run("/mnt/b", lambda: "free", timeout=5) == "free"  # threads are left for other keys
    gate.opened.set()
    assert [await d for d in first] == ["done", "done"]
    assert await pool.run("/mnt/a", lambda: "next", timeout=5) == "next"
    assert gate.ran == 2, "the call that gave up its turn still ran"
