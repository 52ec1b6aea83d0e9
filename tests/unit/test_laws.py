"""Hypothesis over random interleavings of holder changes, probes, disk calls and faults, against a model.

The four laws: never two mounts on a mountpoint; never a plain unmount while
holders exist (durable ones, a release under way included, since it may still
fail; or counted ones whose acquire is past its mount: an acquire that arrives
after the last release decided to unmount waits for the mount lock and mounts
again); never an acknowledged holder that is not durable; every busy unmount
leaves the mount in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from glusterd_mgr.core import effects as fx
from glusterd_mgr.core.holders import Holder, HolderTable
from glusterd_mgr.core.machine import Core
from glusterd_mgr.core.requests import AcquireParams, DiskInfoParams, ReleaseParams
from glusterd_mgr.testing import MOUNTPOINT, SPEC, Scheduler, Task, World, config

HOLDERS = [Holder("instance", f"i{n}") for n in range(3)]


class LawfulWorld(World):
    """A world that checks the unmount law at the moment an unmount runs."""

    core: Core | None = None
    broken: list[str] = []
    waiting: Callable[[], set[Holder]] = staticmethod(set)  # acquires still waiting for the mount lock

    def _run(self, effect: fx.Run) -> fx.ProcessResult:
        """(A failed assert here would be thrown into the procedure as the helper's error: record it instead.)"""
        if effect.argv[0] == "umount" and "-l" not in effect.argv:
            assert self.core is not None
            vs = self.core.volumes[SPEC]
            past_mount, staying = vs.holders - self.waiting(), self.durable()
            if past_mount or staying:
                self.broken.append(f"unmount while {past_mount} are counted and {staying} are durable")
        return super()._run(effect)


class Node(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = LawfulWorld()
        self.core = Core(config(), HolderTable())
        self.world.core = self.core
        self.world.broken = []
        self.world.waiting = lambda: {h for kind, h, task in self.calls if kind == "acquire" and h and isinstance(task.pending, fx.Locked)}
        self.sched = Scheduler(self.world, self.core)
        self.calls: list[tuple[str, Holder | None, Task]] = []
        self.holders: dict[int, Holder | None] = {}
        self.sched.on_finish = self._answered

    def _start(self, kind: str, holder: Holder | None, proc: fx.Proc[Any]) -> None:
        def pending(task: Task) -> None:
            self.holders[id(task)] = holder

        task = self.sched.start(kind, proc, pending)
        self.calls.append((kind, holder, task))

    @rule(holder=st.sampled_from(HOLDERS))
    def acquire(self, holder: Holder) -> None:
        self._start("acquire", holder, self.core.request(AcquireParams(SPEC, holder)))

    @rule(holder=st.sampled_from(HOLDERS))
    def release(self, holder: Holder) -> None:
        self._start("release", holder, self.core.request(ReleaseParams(SPEC, holder)))

    @rule()
    def disk_call(self) -> None:
        self._start("disk", None, self.core.request(DiskInfoParams(SPEC, "ganeti/d1")))

    @rule()
    def probe(self) -> None:
        self._start("probe", None, self.core.probe_all())

    @rule(client=st.sampled_from(["dead", "disconnected", "hung", "ok"]))
    def fuse_client(self, client: str) -> None:
        if self.world.stack():
            self.world.stack()[-1].client = client

    @rule(busy=st.booleans(), mount_fails=st.booleans(), journal_fails=st.booleans())
    def faults(self, busy: bool, mount_fails: bool, journal_fails: bool) -> None:
        self.world.busy, self.world.mount_fails, self.world.journal_fails = busy, mount_fails, journal_fails

    @precondition(lambda self: bool(self.sched.runnable()))
    @rule(pick=st.integers(min_value=0, max_value=20), steps=st.integers(min_value=1, max_value=6))
    def step(self, pick: int, steps: int) -> None:
        for _ in range(steps):
            ready = self.sched.runnable()
            if not ready:
                return
            self.sched.step(ready[pick % len(ready)])

    def _answered(self, task: Task) -> None:
        """The laws about answers, checked the moment a call answers."""
        if task.error is not None:
            return
        holder = self.holders.get(id(task))
        if task.name == "acquire":
            assert holder in self.world.durable(), f"{holder} acknowledged but not durable"
            assert task.outcome["holders"] >= 1, task.outcome
        if task.name == "release" and task.outcome["busy"]:
            assert self.world.stack(), "a busy unmount removed the mount"
        if task.name == "release" and task.outcome["unmounted"]:
            assert not self.world.stack()

    @invariant()
    def no_unmount_under_holders(self) -> None:
        assert not self.world.broken, self.world.broken

    @invariant()
    def one_mount_per_mountpoint(self) -> None:
        assert len(self.world.stack(MOUNTPOINT)) <= 1, self.world.table()

    def teardown(self) -> None:
        """Every call ends (no deadlock), and the in-memory holders end up the durable ones."""
        self.world.journal_fails = False
        while ready := self.sched.runnable():
            self.sched.step(ready[0])
        assert all(task.finished for _, _, task in self.calls), "deadlock: calls wait forever"
        assert self.core.volumes.get(SPEC) is None or self.core.volumes[SPEC].holders == self.world.durable()


TestNode = Node.TestCase
# Derandomized: CI explores the same 300 interleavings every run, so a red run is a change's doing, never
# the luck of the draw.  Wider random searches are run by hand (docs/development/tests.rst), as the one that found
# the release-journal case in test_machine.py.
TestNode.settings = settings(
    max_examples=300, stateful_step_count=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
