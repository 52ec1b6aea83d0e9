"""Scenario c: migrate and failover both directions, fake and kvm; afterwards exactly the primary holds.

Known bug 1: Ganeti 3.0 never calls Shutdown on the source of a live migration
of a shared-storage template (it closes the disks there), so the source kept
its holder and its mount.
"""

from __future__ import annotations

import time

import pytest

from lab import cluster
from lab.cluster import Lab

from .ganeti import SHUTDOWN_TIMEOUT, Ganeti

pytestmark = pytest.mark.timeout(1500)


def _moved(g: Ganeti, lab: Lab, name: str, to: int) -> None:
    primary, other = lab.nodes[to], lab.nodes[1 - to]
    assert g.primary(name) is primary, f"{name} must now run on {primary.name}"
    assert g.status(name) == "running"
    g.assert_only_primary_holds(name, primary)
    g.assert_unmounted_if_unheld(other)


@pytest.fixture
def cleanup_instances(g: Ganeti):  # type: ignore[no-untyped-def]
    names: list[str] = []
    yield names
    for name in names:
        if name in g.instances():
            g.remove(name)


def test_migrate_fake_both_directions(lab: Lab, g: Ganeti, cleanup_instances: list[str]) -> None:
    cleanup_instances.append("migf")
    g.add("migf", lab.nodes[0])
    g.run("gnt-instance", "migrate", "-f", "migf")
    _moved(g, lab, "migf", 1)
    g.run("gnt-instance", "migrate", "-f", "migf")
    _moved(g, lab, "migf", 0)


def test_failover_fake_both_directions(lab: Lab, g: Ganeti, cleanup_instances: list[str]) -> None:
    cleanup_instances.append("failf")
    g.add("failf", lab.nodes[0])
    g.run("gnt-instance", "failover", "-f", f"--shutdown-timeout={SHUTDOWN_TIMEOUT}", "failf")
    _moved(g, lab, "failf", 1)
    g.run("gnt-instance", "failover", "-f", f"--shutdown-timeout={SHUTDOWN_TIMEOUT}", "failf")
    _moved(g, lab, "failf", 0)


def test_twenty_migrations_leak_no_holder(lab: Lab, g: Ganeti, cleanup_instances: list[str]) -> None:
    cleanup_instances.append("mig20")
    g.add("mig20", lab.nodes[0])
    holder = g.disk_holder(g.uuid("mig20"))
    leaked = 0
    for i in range(20):
        g.run("gnt-instance", "migrate", "-f", "mig20")
        primary = lab.nodes[(i + 1) % 2]
        other = lab.nodes[i % 2]
        assert g.primary("mig20") is primary
        leaked += other.holders().count(holder)
    cluster.record("leaked_holders_over_20_migrations", leaked)
    assert leaked == 0, f"{leaked} leaked holder(s) over 20 migrations\n{g.explain()}"


def test_kvm_live_migration_with_guest_io(lab: Lab, g: Ganeti, cleanup_instances: list[str]) -> None:
    cleanup_instances.append("migk")
    g.add("migk", lab.nodes[0], hv="kvm")
    seen = g.guest_progress("migk")
    for to in (1, 0):
        t = time.monotonic()
        out = g.run("gnt-instance", "migrate", "-f", "migk")
        cluster.record(f"kvm_live_migration_to_node{to + 1}_s", round(time.monotonic() - t, 1))
        assert "live" in out.lower() or "migrat" in out.lower(), out
        seen = g.assert_guest_io_ok("migk", seen, context=out)  # same boot: it was live
        _moved(g, lab, "migk", to)


def test_kvm_failover_with_guest_io(lab: Lab, g: Ganeti, cleanup_instances: list[str]) -> None:
    cleanup_instances.append("failk")
    g.add("failk", lab.nodes[0], hv="kvm")
    first = g.guest_progress("failk")
    g.assert_guest_io_ok("failk", first)
    for to in (1, 0):
        t = time.monotonic()
        g.run("gnt-instance", "failover", "-f", f"--shutdown-timeout={SHUTDOWN_TIMEOUT}", "failk")
        cluster.record(f"kvm_failover_to_node{to + 1}_s", round(time.monotonic() - t, 1))
        _moved(g, lab, "failk", to)
        booted = g.guest_progress("failk")
        g.assert_guest_io_ok("failk", booted)  # a new boot, and its I/O verified
