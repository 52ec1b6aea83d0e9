"""A guest's disk in miniature, as a process of its own: one O_DIRECT descriptor, a 4 KiB write and read every 0.2 s.

``python3 -m tests.support.disk_writer PATH`` prints one line a round: ``ok T`` or ``error T ERRNO``, ``T`` on
the system's monotonic clock (so a test can set it beside its own).  A process apart from the test, as a
guest's QEMU is: a thread stuck in FUSE I/O with pinned pages blocks every fork of its own process.
"""

from __future__ import annotations

import mmap
import os
import sys
import time


def main(path: str) -> None:
    fd = os.open(path, os.O_RDWR | os.O_DIRECT)
    buffer = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT wants
    while True:
        try:
            buffer[:8] = time.time_ns().to_bytes(8, "little")
            os.pwrite(fd, buffer, 0)
            os.preadv(fd, [buffer], 0)
        except OSError as e:
            print(f"error {time.monotonic()} {e.errno or 0}", flush=True)
        else:
            print(f"ok {time.monotonic()}", flush=True)
        time.sleep(0.2)


if __name__ == "__main__":
    main(sys.argv[1])
