"""The driver: runs the core's procedures (``core.machine``), the node's effects answered by a world.

The core decides; this module answers the effects of order (locks), time,
logs and metrics itself, hands every other one to the world (``world.py`` on
the node, ``glusterd_mgr.testing`` in memory) and sends the answers back.
Errors the world raises are thrown into the procedure, which decides what they
mean.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Protocol, TypeVar, cast

from prometheus_client import CollectorRegistry, Counter, Histogram
from twisted.internet.defer import Deferred, ensureDeferred, gatherResults
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from .. import __version__
from ..core import effects as fx
from ..core.holders import HolderTable
from ..core.machine import Core
from ..core.printable import printable
from ..core.requests import Params, StatusParams
from ..core.results import VolumeStatus
from ..core.state import EngineConfig, Phase, VolumeState
from ..core.volfile_servers import ServerMemory
from .reactor import Clock
from .sync import KeyedLock

T = TypeVar("T")
log = Logger()
NS = "ganeti_gluster"
MOUNT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_LEVELS = {fx.Level.INFO: LogLevel.info, fx.Level.WARN: LogLevel.warn, fx.Level.ERROR: LogLevel.error}
_COUNTED = {
    fx.Metric.MOUNT_ATTEMPTS: "mount attempts",
    fx.Metric.MOUNT_FAILURES: "mount attempts that failed",
    fx.Metric.UNMOUNT_ATTEMPTS: "unmount attempts",
    fx.Metric.UNMOUNT_BUSY: "unmount attempts that found the mount busy",
    fx.Metric.RECOVERIES: "dead FUSE mounts detached and mounted afresh",
    fx.Metric.DISCONNECTIONS: "times a living FUSE client was found cut off from its bricks (left mounted)",
}


class Answers(Protocol):
    """What answers the node's effects: ``world.RealWorld`` on the node, ``glusterd_mgr.testing.World`` in memory."""

    def answer(self, effect: fx.Effect[Any]) -> Any:
        """The effect's answer, or a Deferred of it; raises (or fails with) what the node raised."""
        ...


class Engine:
    """The core with its I/O: what the daemon's methods call.

    It answers the effects of order, time, logs and metrics itself and hands
    every other effect to ``world``.
    """

    def __init__(
        self,
        reactor: Clock,
        world: Answers,
        config: EngineConfig,
        table: HolderTable,
        servers: ServerMemory | None = None,
    ) -> None:
        self.reactor = reactor
        self.world = world
        self.core = Core(config, table, servers, int(reactor.seconds()))
        self.servers = self.core.servers
        self.volumes = self.core.volumes
        self.registry = CollectorRegistry()
        self._counters = {m: Counter(f"{NS}_{m.value}", doc, ["volume"], registry=self.registry) for m, doc in _COUNTED.items()}
        self._mount_seconds = Histogram(
            f"{NS}_{fx.Metric.MOUNT_SECONDS.value}",
            "time from mount command to a mount that answers",
            ["volume"],
            registry=self.registry,
            buckets=MOUNT_BUCKETS,
        )
        self._locks = KeyedLock()

    @property
    def config(self) -> EngineConfig:
        return self.core.config

    async def run(self, proc: fx.Proc[T]) -> T:
        """Drive a core procedure to its end: carry out each effect, send its answer (or throw its error) back."""
        answer: Any = None
        error: Exception | None = None
        while True:
            try:
                effect = proc.send(answer) if error is None else proc.throw(error)
            except StopIteration as stop:
                return cast(T, stop.value)
            answer, error = None, None
            try:
                answer = self._answer(effect)
                if isinstance(answer, Deferred):
                    answer = await answer
            except Exception as e:
                error = e

    def _answer(self, effect: fx.Effect[Any]) -> Any:
        """Order, time, logs and metrics are the driver's; the node answers the rest."""
        match effect:
            case fx.Locked(keys, proc):
                return ensureDeferred(self._locked(keys, proc))
            case fx.IsLocked(key):
                return self._locks.locked(key)
            case fx.Now():
                return self.reactor.seconds()
            case fx.After():
                self._after(effect)
            case fx.Say():
                self._say(effect)
            case fx.Observe():
                self._observe(effect)
            case _:
                return self.world.answer(effect)
        return None

    async def _locked(self, keys: tuple[Hashable, ...], proc: fx.Proc[T]) -> T:
        taken: list[Hashable] = []
        try:
            for key in keys:
                await self._locks.acquire(key)
                taken.append(key)
            return await self.run(proc)
        finally:
            for key in taken:
                self._locks.release(key)

    def _after(self, effect: fx.After) -> None:
        def run() -> None:
            done = ensureDeferred(self.run(effect.proc))
            done.addErrback(lambda f: log.failure("a delayed procedure failed", f))

        self.reactor.callLater(effect.seconds, run)

    def _say(self, effect: fx.Say) -> None:
        fields = {name: _shown(value) for name, value in effect.fields.items()}
        if effect.error is not None:
            log.failure(effect.text, Failure(effect.error), LogLevel.critical, **fields)
        else:
            log.emit(_LEVELS[effect.level], effect.text, **fields)

    def _observe(self, effect: fx.Observe) -> None:
        if effect.metric is fx.Metric.MOUNT_SECONDS:
            self._mount_seconds.labels(effect.volume).observe(effect.value)
        else:
            self._counters[effect.metric].labels(effect.volume).inc(effect.value)

    def count(self, metric: fx.Metric, volume: str) -> float:
        """A counter's value for one volume (0 if never counted)."""
        value = self.registry.get_sample_value(f"{NS}_{metric.value}_total", {"volume": volume})
        return value or 0.0

    async def call(self, params: Params) -> Any:
        """Answer one JSON-RPC call, its params parsed already (``MethodSchema.parse``)."""
        if isinstance(params, StatusParams):
            return {"version": __version__, "mounts": self.status()}
        return await self.run(self.core.request(params))

    async def recover(self) -> None:
        """After a start: restore held volumes side by side (each mountpoint's lock still orders its own),
        so a few unreachable servers cost one mount timeout, not one each."""
        held = self.core.held()
        await gatherResults([ensureDeferred(self.run(self.core.restore(vs))) for vs in held], consumeErrors=True)
        for vs in held:
            await self.run(self.core.settle_client(vs))

    async def probe_all(self) -> None:
        await self.run(self.core.probe_all())

    async def release_ended_processes(self) -> None:
        await self.run(self.core.release_ended_processes())

    def status(self) -> list[VolumeStatus]:
        return self.core.status()


def _shown(value: object) -> object:
    """A log field as it is shown: numbers as they are (formats like ``{seconds:.0f}`` need them), anything else as
    printable text, for paths, process names, helpers' output and client logs come from others."""
    return value if isinstance(value, (int, float)) else printable(str(value))


__all__ = ["Answers", "Engine", "EngineConfig", "Phase", "VolumeState"]
