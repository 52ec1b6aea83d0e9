#!/usr/bin/python3
"""QA's instance check (the ``instance-check`` script of its configuration), run on the master.

Ganeti's QA calls it after every step that knows whether an instance must be
up or down (``INSTANCE_NAME``, ``INSTANCE_RUNNING``).  For a gluster instance
it asks every node's daemon: the instance's disks must be held by its primary
node exactly while Ganeti has them active (a running instance always has), and
by no other node.  So a holder leaked or lost by any of QA's steps fails that
step, not only the end of the run.  Standard library only: it runs under the
master's python3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run(*argv: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    """A command whose exit status must be one of ``ok`` (an error naming it otherwise)."""
    r = subprocess.run(argv, capture_output=True, text=True, check=False)
    if r.returncode not in ok:
        raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: {r.stdout}{r.stderr}")
    return r


def held(node: str) -> set[str]:
    """The holders (``kind:id``) of ``node``'s daemon, over all its mounts (asked over root's ssh)."""
    # exit 1: a degraded mount, whose status is there all the same
    status = json.loads(run("ssh", "-oBatchMode=yes", f"root@{node}", "gluster-mountctl", "status", "--json", ok=(0, 1)).stdout)
    found = set()
    for mount in status["mounts"]:
        for h in mount.get("holders", []):
            found.add(h if isinstance(h, str) else f"{h['kind']}:{h['id']}")
    return found


def check(name: str, running: bool) -> list[str]:
    """What is wrong with ``name``'s holders (nothing: an empty list)."""
    fields = "uuid,pnode,disk_template,disk.count,disks_active"
    # QA also checks names it renamed away or removed: Ganeti knows no such instance then (exit 1)
    r = run("gnt-instance", "list", "--no-headers", "--separator=|", "-o", fields, name, ok=(0, 1))
    if r.returncode != 0:
        return []
    uuid, pnode, template, count, active = r.stdout.strip().split("|")
    if template != "gluster":
        return []
    if running and active != "Y":
        return [f"{name} runs but Ganeti has its disks inactive"]
    disks = {f"instance:{uuid}.{i}" for i in range(int(count))}
    errors = []
    for node in run("gnt-node", "list", "--no-headers", "-o", "name").stdout.split():
        want = disks if node == pnode and active == "Y" else set()
        got = held(node) & disks
        if got != want:
            errors.append(f"{node} holds {sorted(got)} of {name}'s disks, must hold {sorted(want)} (running={running}, active={active})")
    return errors


def main() -> int:
    errors = check(os.environ["INSTANCE_NAME"], bool(os.environ.get("INSTANCE_RUNNING")))
    for e in errors:
        print(f"instance check: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
