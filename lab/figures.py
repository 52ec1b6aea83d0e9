"""Print the figures one lab run measured (``cluster.record``), as a Markdown table for docs/development/qa.rst."""

from __future__ import annotations

import json
import os

from . import cluster

LABELS = {
    "rootfs": "root file system",
    "install_route": "install route",
    "lab_up_seconds": "lab up (s)",
    "lab_up_parts": "lab up, parts",
    "instance_add_to_running_fake_s": "gnt-instance add to running, fake (s)",
    "instance_add_to_running_kvm_s": "gnt-instance add to running, kvm (s)",
    "kvm_live_migration_to_node2_s": "kvm live migration node1 -> node2 (s)",
    "kvm_live_migration_to_node1_s": "kvm live migration node2 -> node1 (s)",
    "kvm_failover_to_node2_s": "kvm failover node1 -> node2 (s)",
    "kvm_failover_to_node1_s": "kvm failover node2 -> node1 (s)",
    "leaked_holders_over_20_migrations": "leaked holders over 20 migrations",
    "guest_io_errors": "guest I/O errors across the faults",
    "qa_fake_seconds": "Ganeti's QA, fake (s)",
    "qa_kvm_seconds": "Ganeti's QA, kvm (s)",
    "qa_fake_tests": "Ganeti's QA tests, fake",
    "qa_kvm_tests": "Ganeti's QA tests, kvm",
}


def main() -> None:
    path = cluster.figures_path()
    if not os.path.exists(path):
        print("no figures recorded")
        return
    with open(path) as f:
        data = json.load(f)
    print("| figure | value |\n| --- | --- |")
    for key, value in data.items():
        if key == "lab_up_fixture_seconds":
            continue
        print(f"| {LABELS.get(key, key)} | {value} |")


if __name__ == "__main__":
    main()
