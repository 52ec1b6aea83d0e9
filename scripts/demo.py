"""Quick-start demo: a throwaway Gluster server, the daemon, and gluster-mountctl driving it.

Brings up glusterd in a network namespace (tests/support/glusterlab.py), starts
ganeti-gluster-mountd on a private socket, acquires the volume for an
instance, creates a disk, prints the state, and tears everything down unless
--keep is given.
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
    finally:
        if not args.keep:
            daemon.terminate()
            glusterlab.cleanup_leftovers(BASE, PREFIX)
    if args.keep:
        print(
            f"left running: socket {daemon.socket}; clean up with: python3 -c "
            f'\'from tests.support import glusterlab; glusterlab.cleanup_leftovers("{BASE}", "{PREFIX}")\''
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
