"""Quick-start demo: a throwaway Gluster server, the daemon, and gluster-mountctl driving it.

Brings up glusterd in a network namespace (tests/support/glusterlab.py), starts
ganeti-gluster-mountd on a private socket, acquires the volume for an
instance, creates a disk, prints the state, checks that the volume ended
mounted (exit 1 if not), and tears everything down unless --keep is given.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.support import glusterlab
from tests.support.daemon_proc import DaemonProcess

BASE = "/tmp/ggmt-demo"
PREFIX = "ggmd"  # apart from the test suite's namespaces, so both can run at once
INDEX = 9  # its own /30 of the lab subnet


def ctl(daemon: DaemonProcess, *args: str) -> None:
    argv = ["gluster-mountctl", "--socket", daemon.socket, *args]
    print("$ " + " ".join(argv), flush=True)
    subprocess.run([sys.executable, "-m", "glusterd_mgr.ctl", *argv[1:]], check=False)


def mounted_at(daemon: DaemonProcess, volume: str) -> str | None:
    """The mountpoint of ``volume`` when the daemon reports it mounted: what the demo must end with."""
    for mount in daemon.client().status()["mounts"]:
        if mount["volume"]["volume"] == volume and mount["state"] == "mounted":
            return mount["mountpoint"]
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the server, daemon and mount running")
    args = parser.parse_args()
    glusterlab.cleanup_leftovers(BASE, PREFIX)
    server = glusterlab.GlusterServer(base=BASE, index=INDEX, prefix=PREFIX).start()
    server.create_volume("gv0")
    print(f"Gluster server {server.address} (namespace {server.netns}) serves volume gv0", flush=True)
    daemon = DaemonProcess(os.path.join(BASE, "node")).start()
    vol = ["--host", server.address, "--volume", "gv0"]
    instance = str(uuid.uuid4())
    try:
        ctl(daemon, "acquire", *vol, "--kind", "instance", "--id", f"{instance}.0")
        ctl(daemon, "disk", "create", *vol, f"ganeti/{instance}.0", "1024")
        ctl(daemon, "disk", "info", *vol, f"ganeti/{instance}.0")
        ctl(daemon, "statvfs", *vol)
        ctl(daemon, "status")
        mountpoint = mounted_at(daemon, "gv0")
    finally:
        if not args.keep:
            daemon.terminate()
            glusterlab.cleanup_leftovers(BASE, PREFIX)
    if args.keep:
        print(
            f"left running: socket {daemon.socket}; clean up with: python3 -c "
            f'\'from tests.support import glusterlab; glusterlab.cleanup_leftovers("{BASE}", "{PREFIX}")\''
        )
    if mountpoint is None:
        print("the demo failed: volume gv0 is not mounted", file=sys.stderr)
        return 1
    print(f"the demo ended with volume gv0 mounted at {mountpoint}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
