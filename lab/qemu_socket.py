"""Read a QEMU chardev socket inside a node: a guest's serial console, or the HMP monitor.

Run in the node by its own ``python3`` with the text fed on standard input
(``python3 - SOCKET SECONDS [COMMAND ...]``), so it uses the standard library
only.  Without commands it prints what the socket says for SECONDS; with
commands (the monitor) it sends each in turn and prints each answer up to
QEMU's ``(qemu)`` prompt, waiting at most SECONDS for any one of them.
"""

from __future__ import annotations

import socket
import sys
import time

PROMPT = b"(qemu)"


def read(s: socket.socket, seconds: float, until: bytes | None = None) -> bytes:
    """What ``s`` says for ``seconds``, or until it has said ``until`` last."""
    buf = b""
    end = time.monotonic() + seconds
    s.settimeout(0.5)
    while time.monotonic() < end:
        try:
            data = s.recv(65536)
        except TimeoutError:
            continue
        if not data:
            break
        buf += data
        if until is not None and buf.rstrip().endswith(until):
            break
    return buf


def main(argv: list[str]) -> int:
    path, seconds, commands = argv[0], float(argv[1]), argv[2:]
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
    except OSError as e:
        print(f"{path}: {e}", file=sys.stderr)
        return 1
    if not commands:
        sys.stdout.write(read(s, seconds).decode("latin-1"))
        return 0
    read(s, seconds, PROMPT)  # the banner
    for command in commands:
        s.sendall(command.encode() + b"\n")
        answer = read(s, seconds, PROMPT).decode("latin-1")
        print(f"(qemu) {command}\n{answer.partition(chr(10))[2]}")  # HMP echoes the typing, escapes and all: one line
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
