"""Small helpers shared by the fault tests: raw JSON-RPC, metrics text, timings, tree digests."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import time
from collections.abc import Callable
from typing import Any

from glusterd_mgr.client import _UnixHTTPConnection


def http(sock: str, method: str, path: str, body: bytes | None = None, timeout: float = 30.0) -> tuple[int, bytes]:
    conn = _UnixHTTPConnection(sock, timeout)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def rpc_batch(sock: str, calls: list[tuple[str, dict[str, Any]]], timeout: float = 30.0) -> list[dict[str, Any]]:
    """One JSON-RPC batch; the replies in the order of ``calls``."""
    body = json.dumps([{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]).encode()
    status, data = http(sock, "POST", "/rpc", body, timeout)
    assert status == 200, (status, data[:300])
    replies = json.loads(data)
    by_id = {r["id"]: r for r in replies}
    assert sorted(by_id) == list(range(len(calls))), replies
    return [by_id[i] for i in range(len(calls))]


def raw_post(sock: str, body: bytes, content_length: int | None = None, timeout: float = 30.0) -> tuple[int, bytes]:
    """A hand-made HTTP request, for bodies no client library would send; returns (status, body)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(sock)
        length = len(body) if content_length is None else content_length
        s.sendall(b"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n")
        s.sendall(f"Content-Length: {length}\r\n\r\n".encode() + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 "), data[:200]
    return int(head.split()[1]), payload


def metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return None


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


def tree_digest(root: str, skip: Callable[[str], bool] = lambda _p: False) -> dict[str, str]:
    """Path → a digest of its type, mode, owner, size, mtime, link target or content (never following symlinks)."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = sorted(d for d in dirnames if not skip(os.path.normpath(os.path.join(rel_dir, d))))
        for name in [*dirnames, *sorted(filenames), "."]:
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if name != "." and skip(rel):
                continue
            path = os.path.join(dirpath, name) if name != "." else dirpath
            st = os.lstat(path)
            parts = [stat.filemode(st.st_mode), str(st.st_uid), str(st.st_gid), str(st.st_size), str(st.st_mtime_ns)]
            if stat.S_ISLNK(st.st_mode):
                parts.append(os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    parts.append(hashlib.sha256(f.read()).hexdigest())
            out[rel] = " ".join(parts)
    return out
