"""Prometheus metrics: a collector over the core's read-only views of its volumes, on the reactor thread.

Nothing here touches a file system: volume sizes come from the last probe, so
a scrape answers even when a Gluster server is frozen.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from twisted.web.resource import Resource
from twisted.web.server import Request

from ..core.state import UP, Phase, VolumeView
from ..shell.driver import Engine
from ..shell.pool import FsPool

__all__ = ["NS", "Metrics", "MetricsResource", "VolumeCollector"]

NS = "ganeti_gluster"


class VolumeCollector(Collector):
    """The mounts' gauges from the core's read-only views, the engine's counters, the pool's occupancy."""

    def __init__(self, engine: Engine, fs_pool: FsPool) -> None:
        self.views = engine.core.views
        self.counters = engine.registry
        self.fs_pool = fs_pool

    def collect(self) -> Iterator[Metric]:
        views = self.views()
        up = GaugeMetricFamily(f"{NS}_mount_up", "1 when the volume is mounted and answering", labels=["volume", "mountpoint"])
        state = GaugeMetricFamily(f"{NS}_mount_state", "1 for the mount's current state", labels=["volume", "state"])
        holders = GaugeMetricFamily(f"{NS}_holders", "holders of the volume (journaled plus in-flight jobs)", labels=["volume"])
        size = GaugeMetricFamily(f"{NS}_volume_size_bytes", "volume size at the last probe", labels=["volume"])
        avail = GaugeMetricFamily(f"{NS}_volume_avail_bytes", "available bytes at the last probe", labels=["volume"])
        cut = GaugeMetricFamily(
            f"{NS}_mount_disconnected_seconds",
            "how long the mount's living FUSE client has reached no brick of a subvolume (0 when connected)",
            labels=["volume"],
        )
        now = time.time()
        for vs in views:
            key = vs.key
            up.add_metric([key, vs.mountpoint], 1.0 if vs.phase in UP else 0.0)
            since = vs.disconnected_since
            cut.add_metric([key], 0.0 if since is None else max(0.0, now - since))
            for phase in Phase:
                state.add_metric([key, phase.value], 1.0 if vs.phase is phase else 0.0)
            holders.add_metric([key], float(vs.holders))
            if vs.space is not None:
                size.add_metric([key], float(vs.space["size_bytes"]))
                avail.add_metric([key], float(vs.space["avail_bytes"]))
        yield from (up, state, holders, size, avail, cut)
        yield from self._clients(views)
        yield from self.counters.collect()
        pool = GaugeMetricFamily(f"{NS}_fs_pool_busy_threads", "file-system calls running, stuck ones included")
        pool.add_metric([], float(self.fs_pool.occupancy))
        yield pool
        yield GaugeMetricFamily(f"{NS}_fs_pool_max_threads", "size of the file-system thread pool", value=float(self.fs_pool.max_threads))

    def _clients(self, views: list[VolumeView]) -> Iterator[Metric]:
        """The FUSE client of each mount (its last probe), and the holders its death broke."""
        labels = ["volume"]
        rss = GaugeMetricFamily(f"{NS}_client_resident_memory_bytes", "resident memory of the volume's FUSE client", labels=labels)
        threads = GaugeMetricFamily(f"{NS}_client_threads", "threads of the volume's FUSE client", labels=labels)
        fds = GaugeMetricFamily(f"{NS}_client_open_fds", "open file descriptors of the volume's FUSE client", labels=labels)
        started = GaugeMetricFamily(f"{NS}_client_start_time_seconds", "start of the FUSE client, since the epoch", labels=labels)
        oom = GaugeMetricFamily(f"{NS}_client_oom_score_adj", "oom_score_adj of the volume's FUSE client", labels=labels)
        over = GaugeMetricFamily(
            f"{NS}_client_memory_over_threshold", "1 when the FUSE client's memory crossed the warning threshold", labels=labels
        )
        broken = GaugeMetricFamily(
            f"{NS}_broken_holders", "instance holders whose disks died with a FUSE client; each needs a full restart", labels=labels
        )
        claiming = GaugeMetricFamily(
            f"{NS}_client_processes", "FUSE client processes that claim the volume's mountpoint (more than 1 is wrong)", labels=labels
        )
        for vs in views:
            key = vs.key
            broken.add_metric([key], float(vs.broken))
            claiming.add_metric([key], float(vs.claimants or (vs.client is not None and vs.phase is not Phase.UNMOUNTED)))
            client = vs.client
            if client is None:
                continue
            rss.add_metric([key], float(client.resident_memory_bytes))
            threads.add_metric([key], float(client.threads))
            fds.add_metric([key], float(client.open_fds))
            started.add_metric([key], client.start_time_seconds)
            oom.add_metric([key], float(client.oom_score_adj))
            over.add_metric([key], 1.0 if vs.memory_warned else 0.0)
        yield from (rss, threads, fds, started, oom, over, broken, claiming)


class Metrics:
    """The registry with the engine collector and the RPC counters."""

    def __init__(self, engine: Engine, fs_pool: FsPool, methods: Iterable[str]) -> None:
        self.methods = frozenset(methods)
        """The methods counted by name (the schemas'); any other is counted as "other", so a caller cannot grow the labels."""
        self.registry = CollectorRegistry()
        self.registry.register(VolumeCollector(engine, fs_pool))
        self.rpc_requests = Counter(
            f"{NS}_rpc_requests", "JSON-RPC calls by method and error code (0 = success)", ["method", "code"], registry=self.registry
        )
        self.rpc_latency = Histogram(
            f"{NS}_rpc_latency_seconds",
            "JSON-RPC call latency",
            ["method"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )

    def observe_rpc(self, method: str, code: int, seconds: float) -> None:
        known = method if method in self.methods else "other"
        self.rpc_requests.labels(known, str(code)).inc()
        self.rpc_latency.labels(known).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsResource(Resource):
    """``GET /metrics``, rendered on the reactor thread (the engine state is not thread-safe)."""

    isLeaf = True

    def __init__(self, metrics: Metrics) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.metrics = metrics

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")
        return self.metrics.render()
