"""Whether a state folder's holder journal still holds anything: the package's purge asks this.

``python3 -m glusterd_mgr.statecheck STATE_DIR`` prints one line and exits 0:

- ``free``: no journal, an empty one, no live holder, or holders of an earlier
  boot only (void: their guests and mounts went with the reboot);
- ``held N``: N holders of this boot, so a running guest may still use a mount;
- ``unknown: WHY``: a journal the daemon itself would refuse (damaged, another
  format, unreadable), which is kept as if held.

It replays the journal exactly as the daemon does at start (``journal.replay``),
read-only, and needs no lock: it is run once the daemon is stopped.
"""

from __future__ import annotations

import os
import sys

from .core.errors import StateError
from .shell.journal import replay
from .shell.node import BOOT_ID, JOURNAL_NAME, read_boot_id

__all__ = ["main", "verdict"]


def verdict(state_dir: str, boot_id_path: str = BOOT_ID) -> str:
    try:
        with open(os.path.join(state_dir, JOURNAL_NAME), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return "free"
    except OSError as e:
        return f"unknown: {e}"
    try:
        replayed = replay(data, os.path.join(state_dir, JOURNAL_NAME))
    except StateError as e:
        return f"unknown: {e}"
    if replayed.boot_id is None:
        return "free"
    try:
        boot_id = read_boot_id(boot_id_path)
    except OSError as e:
        return f"unknown: cannot read the boot id ({e})"
    if replayed.boot_id != boot_id:
        return "free"
    held = replayed.table.total()
    return f"held {held}" if held else "free"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python3 -m glusterd_mgr.statecheck STATE_DIR", file=sys.stderr)
        return 2
    print(verdict(args[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
