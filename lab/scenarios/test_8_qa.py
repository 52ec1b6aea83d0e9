"""Scenario: Ganeti's own QA suite with the gluster template, on the hypervisors GGL_QA names ("fake", "kvm").

``lab/qa.py`` runs the nodes' ``ganeti-qa.py`` against the lab's cluster with
``lab/qa/gluster.json``.  Afterwards every node must hold, and have mounted,
exactly what the instances still running (or with active disks) need; the
mounts and unmounts each node made during the run are recorded as figures.
"""

from __future__ import annotations

import os

import pytest

from lab import cluster, qa
from lab.cluster import Lab
from tests.support.glusterlab import poll

from .ganeti import Ganeti
from .test_3_holders import PROBE

pytestmark = pytest.mark.timeout(3600)
# On request only (docs/development/qa.rst): GGL_QA="fake", "kvm" or "fake kvm".  One run costs minutes.
HYPERVISORS = os.environ.get("GGL_QA", "").split()


@pytest.mark.skipif(not HYPERVISORS, reason="Ganeti's QA runs on request: GGL_QA='fake' or 'fake kvm' (docs/development/qa.rst)")
@pytest.mark.parametrize("hv", HYPERVISORS or ["none"])
def test_ganeti_qa(lab: Lab, g: Ganeti, hv: str) -> None:
    before = {n.name: qa.mount_counts(n) for n in lab.nodes}
    result = qa.run(lab, hv)
    cluster.record(f"qa_{hv}_seconds", round(result.seconds))
    cluster.record(f"qa_{hv}_tests", result.summary())
    for n in lab.nodes:
        (m0, u0), (m1, u1) = before[n.name], qa.mount_counts(n)
        cluster.record(f"qa_{hv}_mounts_{n.name}", f"{m1 - m0} mounts, {u1 - u0} unmounts")
    tail = "\n".join(result.output.splitlines()[-60:])
    assert result.returncode == 0, f"ganeti-qa.py ({hv}) exit {result.returncode}: {result.summary()}; whole log {result.log}\n{tail}"
    assert result.named("PASSED") and not result.named("FAILED"), result.summary()
    poll("every request's holders to be let go", g.no_request_holds, deadline=PROBE * 4, interval=1)
    g.assert_holders_match_ganeti()
