"""Move the FUSE clients that live inside the daemon's service into scopes of their own.

Versions before scopes started every client inside ``ganeti-gluster-mountd.service``
and kept it alive with ``KillMode=process``.  The unit now uses systemd's default
mode, so the first stop or restart under the new unit would kill such clients and
take the disks of every running guest with them.  The package runs this before it
restarts the daemon on an upgrade (``python3 -m glusterd_mgr.rehome``); the daemon
itself does the same at start for whatever a stop left behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from .core.fuse_client import adopt_argv, client_mount, describe, scope_unit
from .shell.procfs import glusterfs_processes, unit_of_pid

__all__ = ["SERVICE", "main"]

SERVICE = "ganeti-gluster-mountd.service"


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when no client is left in the service (1 otherwise, each failure said on stderr)."""
    args = sys.argv[1:] if argv is None else argv
    service = args[0] if args else SERVICE
    if not os.path.isdir("/run/systemd/system"):
        print("systemd is not running here: nothing to move")
        return 0
    failed = 0
    serial = int(time.time())
    for pid, args in glusterfs_processes():
        mount = client_mount(args)
        if mount is None or unit_of_pid(pid) != service:
            continue
        serial += 1
        volume, mountpoint = mount
        unit = scope_unit(volume, mountpoint, serial)
        done = subprocess.run(adopt_argv(pid, unit, describe(volume, mountpoint)), capture_output=True, text=True, check=False, timeout=60)
        if done.returncode == 0:
            print(f"moved the FUSE client {pid} of {mountpoint} out of {service} into {unit}")
        else:
            failed += 1
            print(f"cannot move the FUSE client {pid} of {mountpoint} out of {service}: {done.stderr.strip()}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
