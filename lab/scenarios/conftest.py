"""The lab, brought up once for every scenario (or adopted with GGL_REUSE=1, kept with GGL_KEEP=1)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from lab import cluster
from lab.cluster import Lab

from .ganeti import Ganeti


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    lab = Lab()
    if os.environ.get("GGL_REUSE") == "1" and lab.attach():
        for name in Ganeti(lab).instances():  # a clean start on a kept lab
            Ganeti(lab).remove(name)
        yield lab
        return
    t = time.monotonic()
    lab.up()
    cluster.record("lab_up_fixture_seconds", round(time.monotonic() - t, 1))
    yield lab
    if os.environ.get("GGL_KEEP") != "1":
        lab.down()


@pytest.fixture(scope="session")
def g(lab: Lab) -> Ganeti:
    return Ganeti(lab)
