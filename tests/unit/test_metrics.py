"""``metrics``: the collector over an engine state built in memory, rendered and parsed back with prometheus_client."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.defer import ensureDeferred

from glusterd_mgr.app.metrics import NS, Metrics, MetricsResource
from glusterd_mgr.app.schema import load, method_names
from glusterd_mgr.core.fuse_client import ClientStats
from glusterd_mgr.core.holders import Holder
from glusterd_mgr.core.requests import AcquireParams
from glusterd_mgr.core.state import Phase, VolumeState
from glusterd_mgr.core.volume import VolumeSpec
from glusterd_mgr.shell.pool import FsPool
from glusterd_mgr.testing import SPACE, SPEC

from .test_driver import durable, engine

I1, I2 = Holder("instance", "i1"), Holder("instance", "i2")
OTHER = VolumeSpec(host="10.0.0.3", port=24007, volume="gv1")
CLIENT = ClientStats(
    pid=4242, resident_memory_bytes=3 << 30, threads=17, open_fds=33, start_time_seconds=1700000000.5, oom_score_adj=-900, unit=""
)


class FakePool:
    occupancy = 3
    max_threads = 16


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(metrics: Metrics) -> tuple[set[str], Samples]:
    families, samples = set(), {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        families.add(family.name)
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return families, samples


def node(adjust: Callable[[VolumeState], None] = lambda vs: None) -> Metrics:
    """A mounted volume with two holders (one broken by a dead client) and its client, and a dead one with none;
    ``adjust`` changes the mounted one's state."""
    eng, world, _clock = engine()
    answer = ensureDeferred(eng.call(AcquireParams(SPEC, I1)))
    durable(world, 0).callback(None)
    assert answer.called
    vs = eng.volumes[SPEC]
    vs.holders.add(I2)
    vs.client, vs.memory_warned, vs.space = CLIENT, True, SPACE.copy()
    vs.broken = {I2}
    adjust(vs)
    dead = VolumeState(OTHER, "/run/ganeti/other", phase=Phase.DEAD, holders={I1}, broken={I1})
    eng.volumes[OTHER] = dead
    return Metrics(eng, cast(FsPool, FakePool()), method_names(load()))


def test_the_mount_families_carry_each_volume_with_its_labels() -> None:
    families, samples = scrape(node())
    for name in ("mount_up", "mount_state", "holders", "volume_size_bytes", "volume_avail_bytes", "fs_pool_busy_threads"):
        assert f"{NS}_{name}" in families, name
    a, b = SPEC.key, OTHER.key
    up = {labels: v for (name, labels), v in samples.items() if name == f"{NS}_mount_up"}
    assert sorted(up.values()) == [0.0, 1.0]
    assert up[(("mountpoint", "/run/ganeti/other"), ("volume", b))] == 0.0
    assert samples[(f"{NS}_holders", (("volume", a),))] == 2.0
    assert samples[(f"{NS}_holders", (("volume", b),))] == 1.0
    assert samples[(f"{NS}_mount_state", (("state", "mounted"), ("volume", a)))] == 1.0
    assert samples[(f"{NS}_mount_state", (("state", "dead"), ("volume", a)))] == 0.0
    assert samples[(f"{NS}_mount_state", (("state", "dead"), ("volume", b)))] == 1.0
    states = [labels for (name, labels) in samples if name == f"{NS}_mount_state" and dict(labels)["volume"] == a]
    assert len(states) == len(Phase), "one sample per phase, exactly one of them 1"
    assert samples[(f"{NS}_volume_size_bytes", (("volume", a),))] == float(SPACE["size_bytes"])
    assert samples[(f"{NS}_volume_avail_bytes", (("volume", a),))] == float(SPACE["avail_bytes"])
    assert (f"{NS}_volume_size_bytes", (("volume", b),)) not in samples, "no probe yet: no size"
    assert samples[(f"{NS}_fs_pool_busy_threads", ())] == 3.0 and samples[(f"{NS}_fs_pool_max_threads", ())] == 16.0


def test_the_fuse_client_gauges_and_broken_holders() -> None:
    _families, samples = scrape(node())
    a, b = (("volume", SPEC.key),), (("volume", OTHER.key),)
    assert samples[(f"{NS}_client_resident_memory_bytes", a)] == float(3 << 30)
    assert samples[(f"{NS}_client_threads", a)] == 17.0
    assert samples[(f"{NS}_client_open_fds", a)] == 33.0
    assert samples[(f"{NS}_client_start_time_seconds", a)] == 1700000000.5
    assert samples[(f"{NS}_client_oom_score_adj", a)] == -900.0
    assert samples[(f"{NS}_client_memory_over_threshold", a)] == 1.0
    assert (f"{NS}_client_threads", b) not in samples, "a volume without a client has no client samples"
    assert samples[(f"{NS}_broken_holders", a)] == 1.0 and samples[(f"{NS}_broken_holders", b)] == 1.0


def test_the_engine_counters_and_histograms_are_in_the_scrape() -> None:
    _families, samples = scrape(node())
    assert samples[(f"{NS}_mount_duration_seconds_count", (("volume", SPEC.key),))] == 1.0


def test_rpc_calls_are_counted_by_method_and_code_unknown_methods_folded() -> None:
    metrics = node()
    metrics.observe_rpc("volume.acquire", 0, 0.003)
    metrics.observe_rpc("volume.acquire", -32006, 0.5)
    metrics.observe_rpc("x" * 50, -32601, 0.0)
    metrics.observe_rpc("y", -32601, 0.0)
    _families, samples = scrape(metrics)
    assert samples[(f"{NS}_rpc_requests_total", (("code", "0"), ("method", "volume.acquire")))] == 1.0
    assert samples[(f"{NS}_rpc_requests_total", (("code", "-32006"), ("method", "volume.acquire")))] == 1.0
    assert samples[(f"{NS}_rpc_requests_total", (("code", "-32601"), ("method", "other")))] == 2.0
    assert samples[(f"{NS}_rpc_latency_seconds_count", (("method", "volume.acquire"),))] == 2.0
    assert samples[(f"{NS}_rpc_latency_seconds_bucket", (("le", "0.005"), ("method", "volume.acquire")))] == 1.0
    assert not any(dict(labels).get("method", "").startswith("x") for _n, labels in samples)


def test_the_resource_serves_the_text_format() -> None:
    from twisted.web.test.requesthelper import DummyRequest

    metrics = node()
    request = DummyRequest([b"metrics"])
    body: Any = MetricsResource(metrics).render(request)  # type: ignore[no-untyped-call]
    assert request.responseHeaders.getRawHeaders(b"content-type") == [b"text/plain; version=0.0.4; charset=utf-8"]
    assert f"{NS}_mount_up{{".encode() in body and body == metrics.render()


def test_a_disconnected_mount_says_for_how_long_and_a_second_client_is_counted() -> None:
    def cut_off(vs: VolumeState) -> None:
        vs.phase, vs.disconnected_since, vs.claimants = Phase.DISCONNECTED, time.time() - 30, [7, 9]

    _families, samples = scrape(node(cut_off))
    a, b = (("volume", SPEC.key),), (("volume", OTHER.key),)
    assert 30.0 <= samples[(f"{NS}_mount_disconnected_seconds", a)] < 60.0
    assert samples[(f"{NS}_mount_disconnected_seconds", b)] == 0.0
    assert samples[(f"{NS}_mount_state", (("state", "disconnected"), ("volume", SPEC.key)))] == 1.0
    assert samples[(f"{NS}_client_processes", a)] == 2.0 and samples[(f"{NS}_client_processes", b)] == 0.0
    _families, samples = scrape(node())
    assert samples[(f"{NS}_client_processes", a)] == 1.0 and samples[(f"{NS}_mount_disconnected_seconds", a)] == 0.0
