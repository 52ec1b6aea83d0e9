"""A tenant of the volume against the disk calls, on a real FUSE mount of a Gluster volume.

The swaps right after a call's look (``tests/support/tenant.py``) run here on
FUSE, where ``O_PATH``, the reopen through ``/proc/self/fd`` and the moves into
the private folder go through the Gluster client; then a tenant process loops
renames of its own disk with a victim's disk, a FIFO and a device node while
the daemon's calls run, for a bounded time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from glusterd_mgr.core.errors import NoSuchDisk, PathRefused
from glusterd_mgr.core.volume import VolumeSpec
from glusterd_mgr.shell import disks
from tests.support import glusterlab, tenant

pytestmark = pytest.mark.gluster

TENANT_SECONDS = float(os.environ.get("GGMT_TENANT_SECONDS", "20"))
CALL_DEADLINE = 10.0
"""Far above a call's time on this volume (milliseconds), far below a hung call's (for ever)."""

TENANT = """
import os, sys, time
folder, seconds = sys.argv[1], float(sys.argv[2])
names = ["victim.0", "trap", "dev"]
end, swaps = time.monotonic() + seconds, 0
while time.monotonic() < end:
    other = names[swaps % len(names)]
    try:
        os.rename(os.path.join(folder, "own.0"), os.path.join(folder, ".spare"))
        os.rename(os.path.join(folder, other), os.path.join(folder, "own.0"))
        os.rename(os.path.join(folder, ".spare"), os.path.join(folder, other))
        swaps += 1
    except FileNotFoundError:
        pass
print(swaps)
"""


@pytest.fixture
def mounted(gluster: glusterlab.GlusterServer, volume: VolumeSpec, lab_base: str) -> Iterator[Path]:
    """The volume mounted through FUSE, as the daemon mounts it."""
    with glusterlab.scratch(lab_base, "tenant") as root:
        subprocess.run(["mount", "-t", "glusterfs", volume.mount_source, root], check=True, timeout=60)
        yield Path(root)


@pytest.fixture
def folder(mounted: Path) -> Iterator[tenant.Folder]:
    """A folder of its own in the shared volume, gone at the end."""
    f = tenant.Folder(mounted, f"tenant-{uuid.uuid4().hex[:8]}")
    yield f
    subprocess.run(["rm", "-rf", str(f.path)], check=False, timeout=60)


@pytest.mark.parametrize("scenario", sorted(tenant.SCENARIOS))
def test_a_swap_right_after_the_look_loses_nothing_on_fuse(scenario: str, folder: tenant.Folder, monkeypatch: pytest.MonkeyPatch) -> None:
    tenant.SCENARIOS[scenario](folder, monkeypatch)


def test_a_tenant_looping_renames_cuts_no_disk_and_blocks_no_call(folder: tenant.Folder) -> None:
    os.mkfifo(folder.path / "trap")
    os.mknod(folder.path / "dev", 0o600 | 0o020000, os.makedev(1, 3))  # a character device with /dev/null's numbers
    loop = subprocess.Popen([sys.executable, "-c", TENANT, str(folder.path), str(TENANT_SECONDS)], stdout=subprocess.PIPE, text=True)
    calls, refused, slowest = 0, 0, 0.0
    try:
        while loop.poll() is None:
            outcome: list[BaseException | None] = []

            def grow(outcome: list[BaseException | None] = outcome) -> None:
                try:
                    disks.grow(str(folder.root), folder.own, 1)
                    disks.info(str(folder.root), folder.own)
                    outcome.append(None)
                except (PathRefused, NoSuchDisk) as e:  # a FIFO, a device node, or the name between two renames
                    outcome.append(e)

            started = time.monotonic()
            worker = threading.Thread(target=grow, daemon=True)
            worker.start()
            worker.join(CALL_DEADLINE)
            assert not worker.is_alive(), f"a disk call blocked for {CALL_DEADLINE:g} s under the tenant's renames"
            slowest = max(slowest, time.monotonic() - started)
            assert len(outcome) == 1, "the call failed with an error that is not a refusal"  # the thread's traceback says which
            calls += 1
            refused += outcome[0] is not None
    finally:
        if loop.poll() is None:
            loop.kill()
        swaps = int((loop.communicate(timeout=30)[0] or "0").strip() or 0)
    assert swaps > 100 and calls > 20, f"the race was not run: {swaps} swaps, {calls} calls"
    assert folder.victim_intact(), "the victim's disk was cut"
    print(f"tenant: {swaps} swaps, {calls} grow+info calls, {refused} refused, slowest {slowest:.3f} s")
