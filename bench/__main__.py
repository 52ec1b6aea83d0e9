"""Run the benchmarks against real Gluster servers and print their tables.

``python3 -m bench`` times the control plane (acquire, release, create);
``python3 -m bench datapath`` the guest's disk I/O through the mount (see
``bench/datapath.py``).  Each figure is a median and p99 over repeated runs, with its ratio against a
baseline measured in the same run (absolute times drift on shared machines;
ratios hold). ``--smoke`` runs each a few times only, to keep the command from
rotting in CI; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("GGMT_PREFIX", "ggmb")
os.environ.setdefault("GGMT_SUBNET", "10.231.10")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import psutil

from bench.datapath import DataPath
from glusterd_mgr.client import Client
from glusterd_mgr.core import mountinfo
from tests.support import glusterlab
from tests.support.daemon_proc import DaemonProcess

MIB = 1 << 20


@dataclass
class Row:
    figure: str
    samples: list[float]
    unit: str = "ms"
    baseline: list[float] | None = None
    baseline_name: str = ""
    target: str = ""
    verdict: str = ""

    def median(self) -> float:
        return statistics.median(self.samples)

    def p99(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]

    def ratio(self) -> float | None:
        if not self.baseline:
            return None
        return self.median() / statistics.median(self.baseline)


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def fmt(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:.3f} ms" if value < 10 else f"{value:.1f} ms"
    return f"{value:,.1f} {unit}"


class Bench:
    def __init__(self, smoke: bool) -> None:
        self.smoke = smoke
        self.rows: list[Row] = []
        self.base = glusterlab.DEFAULT_BASE
        glusterlab.cleanup_leftovers(self.base)
        self.server = glusterlab.GlusterServer(base=self.base).start()
        self.server.create_volume("gv0")
        self.volume = {"host": self.server.address, "port": 24007, "volume": "gv0"}
        self.daemon = DaemonProcess(os.path.join(self.base, "node"), extra=["--probe-interval", "10", "--fs-timeout", "60"])
        self.daemon.start()
        self.client = self.daemon.client(timeout=120)
        self.echo_socket = os.path.join(self.base, "echo.sock")
        self.echo = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "echo_server.py"), self.echo_socket])
        glusterlab.poll("the echo server", lambda: os.path.exists(self.echo_socket))
        self.echo_client = Client(self.echo_socket, timeout=30)

    def n(self, full: int, smoke: int = 3) -> int:
        return smoke if self.smoke else full

    def close(self) -> None:
        self.echo.kill()
        self.echo.wait()
        self.daemon.terminate()
        glusterlab.cleanup_leftovers(self.base)

    def holder(self, name: str) -> dict[str, str]:
        return {"kind": "job", "id": name}

    # -- figures ---------------------------------------------------------

    def cold(self) -> None:
        raw_dir = os.path.join(self.base, "raw")
        os.makedirs(raw_dir, exist_ok=True)
        source = f"{self.server.address}:/gv0"

        def raw_mount(check: bool) -> None:
            subprocess.run(["mount", "-t", "glusterfs", "-o", "server-port=24007", source, raw_dir], check=True)
            if check:
                os.statvfs(raw_dir)  # what the daemon must see before it calls a mount good
            subprocess.run(["umount", raw_dir], check=True)

        raw, checked, rpc = [], [], []
        for i in range(self.n(15)):
            raw.append(timed(lambda: raw_mount(False)))
            checked.append(timed(lambda: raw_mount(True)))
            h = self.holder(f"cold{i}")
            rpc.append(timed(lambda: (self.client.acquire(self.volume, h), self.client.release(self.volume, h))))
        self.rows.append(
            Row("cold acquire (mount) + release (unmount), RPC", rpc, baseline=raw, baseline_name="mount + umount", target="≤ 0.9×")
        )
        self.rows.append(Row("the same", rpc, baseline=checked, baseline_name="mount + statvfs + umount", target="≤ 0.9×"))

    def warm_pairs(self, count: int) -> list[float]:
        out = []
        for i in range(count):
            h = self.holder(f"warm-{uuid.uuid4().hex[:8]}-{i}")
            out.append(timed(lambda: (self.client.acquire(self.volume, h), self.client.release(self.volume, h))))
        return out

    def warm(self) -> None:
        self.client.acquire(self.volume, self.holder("base"))
        floor = []
        for i in range(self.n(400, 10)):
            params = {"volume": self.volume, "holder": self.holder(f"e{i}")}
            floor.append(timed(lambda: (self.echo_client.call("volume.acquire", params), self.echo_client.call("volume.release", params))))
        pairs = self.warm_pairs(self.n(400, 10))
        self.floor = floor
        self.rows.append(
            Row(
                "warm acquire + release, new holder, 1 client",
                pairs,
                baseline=floor,
                baseline_name="twisted.web JSON echo ×2",
                target="≤ 1.5× floor",
            )
        )

    def concurrent(self) -> None:
        clients, seconds = (32, 10.0) if not self.smoke else (4, 1.0)
        floor, _ = _storm_all(self.echo_socket, self.volume, clients, seconds, self.smoke)
        rate, errors = _storm_all(self.daemon.socket, self.volume, clients, seconds, self.smoke)
        row = Row(
            f"warm acquire + release, {clients} concurrent clients",
            [rate],
            unit="pairs/s",
            baseline=[floor],
            baseline_name=f"the echo, {clients} clients",
            target="≥ 0.8× floor",
        )
        row.verdict = f"{_verdict(row)}, {errors} errors"
        self.rows.append(row)

    def scaling(self) -> None:
        small = self.warm_pairs(self.n(200, 5))
        added = self.added = self.n(10000, 200)
        batch = []
        for i in range(added):
            batch.append(
                {
                    "jsonrpc": "2.0",
                    "id": i,
                    "method": "volume.acquire",
                    "params": {"volume": self.volume, "holder": self.holder(f"bulk{i}")},
                }
            )
            if len(batch) == 500:
                _post_batch(self.daemon.socket, batch)
                batch = []
        if batch:
            _post_batch(self.daemon.socket, batch)
        self.rss_full = psutil.Process(self.daemon.proc.pid).memory_info().rss / MIB  # type: ignore[union-attr]
        large = self.warm_pairs(self.n(200, 5))
        self.rows.append(
            Row(
                f"warm acquire + release with {added:,} holders vs 10",
                large,
                baseline=small,
                baseline_name="same with 10 holders",
                target="≤ 1.3×",
            )
        )

    def parse(self) -> None:
        path = os.path.join(self.base, "mountinfo-10k")
        line = "{id} 27 0:{id} / /srv/mnt/vol{id} rw,relatime shared:{id} - fuse.glusterfs gs{id}:/gv{id} rw,user_id=0,group_id=0\n"
        with open(path, "w") as f:
            f.write("".join(line.format(id=i + 100) for i in range(10000)))

        def read() -> str:
            with open(path, encoding="utf-8", newline="") as fh:
                return fh.read()

        text = read()
        reads = [timed(read) for _ in range(self.n(50, 3))]
        parses = [timed(lambda: mountinfo.parse(text)) for _ in range(self.n(50, 3))]
        lookups = [timed(lambda: mountinfo.stack_in(text, "/srv/mnt/vol5000")) for _ in range(self.n(50, 3))]
        self.rows.append(
            Row(
                "parse a 10,000-line mountinfo (all records)",
                parses,
                baseline=reads,
                baseline_name="reading the bytes",
                target="≤ 10× the read; < 20 ms",
            )
        )
        self.rows.append(
            Row(
                "look up one mountpoint in it (what the engine does)",
                lookups,
                baseline=reads,
                baseline_name="reading the bytes",
                target="≤ 10× the read; < 20 ms",
            )
        )

    def create_sparse(self) -> None:
        mountpoint = self.daemon.storage_dir
        rpc, raw = [], []
        for _ in range(self.n(15)):
            name = f"ganeti/{uuid.uuid4()}.0"
            rpc.append(timed(lambda: self.client.disk_create(self.volume, name, 10240)))
            self.client.disk_remove(self.volume, name)
            path = os.path.join(mountpoint, "ganeti", f"raw-{uuid.uuid4()}")
            raw.append(timed(lambda: subprocess.run(["truncate", "-s", "10G", path], check=True)))
            os.unlink(path)
        row = Row(
            "disk.create 10 GiB sparse, RPC", rpc, baseline=raw, baseline_name="truncate -s on the mount", target="≤ 1.2× + warm floor"
        )
        limit = 1.2 * statistics.median(raw) + statistics.median(self.floor) / 2
        row.verdict = "met" if row.median() <= limit else f"missed (limit {limit:.2f} ms)"
        self.rows.append(row)

    def create_preallocated(self) -> None:
        mountpoint = self.daemon.storage_dir
        size_mib = 1024 if not self.smoke else 16
        rpc, raw = [], []
        for _ in range(self.n(3, 1)):
            name = f"ganeti/{uuid.uuid4()}.0"
            rpc.append(timed(lambda: self.client.disk_create(self.volume, name, size_mib, preallocate=True)))
            self.client.disk_remove(self.volume, name)
            path = os.path.join(mountpoint, "ganeti", f"raw-{uuid.uuid4()}")
            raw.append(
                timed(
                    lambda: subprocess.run(
                        ["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={size_mib}", "conv=fsync", "status=none"], check=True
                    )
                )
            )
            os.unlink(path)
        row = Row(
            f"disk.create {size_mib} MiB preallocated, RPC",
            rpc,
            baseline=raw,
            baseline_name="dd if=/dev/zero conv=fsync",
            target="report the speed-up",
        )
        ratio = row.ratio()
        row.verdict = f"{1 / ratio:.1f}× faster" if ratio else ""
        self.rows.append(row)

    def memory(self) -> None:
        idle = DaemonProcess(os.path.join(self.base, "idle"), extra=["--metrics-port", "0"]).start()
        try:
            rss_idle = psutil.Process(idle.proc.pid).memory_info().rss / MIB  # type: ignore[union-attr]
        finally:
            idle.terminate()
        self.rows.append(Row("daemon RSS, idle", [rss_idle], unit="MiB", target="≤ 60 MiB"))
        self.rows.append(Row(f"daemon RSS with {self.added:,} holders", [self.rss_full], unit="MiB", target="≤ 100 MiB"))

    # -- report ----------------------------------------------------------

    def table(self) -> str:
        head = [
            machine_line(self.smoke),
            "",
            "| figure | median | p99 | baseline (median) | ratio | target | verdict |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in self.rows:
            base = f"{r.baseline_name}: {fmt(statistics.median(r.baseline), r.unit)}" if r.baseline else "—"
            ratio = f"{r.ratio():.2f}×" if r.ratio() is not None else "—"
            cells = [r.figure, fmt(r.median(), r.unit), fmt(r.p99(), r.unit), base, ratio, r.target, r.verdict or _verdict(r)]
            head.append("| " + " | ".join(cells) + " |")
        return "\n".join(head)


def machine_line(smoke: bool) -> str:
    """When and on what a run was made (figures compare only within one run)."""
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), platform.processor())
    return (
        f"Run {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} × {cpu}, "
        f"{psutil.virtual_memory().total / (1 << 30):.0f} GiB, Linux {platform.release()}, Python {platform.python_version()}"
        + (" — SMOKE RUN, numbers meaningless" if smoke else "")
    )


def _verdict(r: Row) -> str:
    ratio = r.ratio()
    t = r.target
    checks: list[bool] = []
    if "≤ 0.9×" in t and ratio is not None:
        checks.append(ratio <= 0.9)
    if "≤ 1.5× floor" in t and ratio is not None:
        checks.append(ratio <= 1.5)
    if "≥ 0.8× floor" in t and ratio is not None:
        checks.append(ratio >= 0.8)
    if "≤ 1.3×" in t and ratio is not None:
        checks.append(ratio <= 1.3)
    if "≤ 10× the read" in t and ratio is not None:
        checks += [ratio <= 10, r.median() < 20]
    if t == "≤ 60 MiB":
        checks.append(r.median() <= 60)
    if t == "≤ 100 MiB":
        checks.append(r.median() <= 100)
    if not checks:
        return ""
    return "met" if all(checks) else "missed"


def _post_batch(sock: str, batch: list[dict[str, Any]]) -> None:
    import http.client
    import socket as socketlib

    conn = http.client.HTTPConnection("localhost", timeout=120)
    s = socketlib.socket(socketlib.AF_UNIX)
    s.connect(sock)
    conn.sock = s
    conn.request("POST", "/rpc", json.dumps(batch), {"Content-Type": "application/json"})
    replies = json.loads(conn.getresponse().read())
    conn.close()
    bad = [r for r in replies if "error" in r]
    if bad:
        raise RuntimeError(f"batch acquire failed: {bad[0]}")


def _storm(sock: str, volume: dict[str, Any], threads: int, seconds: float, proc: int) -> tuple[int, int]:
    """One process of the concurrent benchmark: ``threads`` clients doing pairs until the deadline."""
    counts = [0] * threads
    errors = [0] * threads
    deadline = time.monotonic() + seconds

    def client(t: int) -> None:
        c = Client(sock, timeout=60)
        i = 0
        while time.monotonic() < deadline:
            h = {"kind": "job", "id": f"storm-{proc}-{t}-{i}"}
            try:
                c.acquire(volume, h)
                c.release(volume, h)
                counts[t] += 1
            except Exception:
                errors[t] += 1
            i += 1

    workers = [threading.Thread(target=client, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts), sum(errors)


def _storm_all(sock: str, volume: dict[str, Any], clients: int, seconds: float, smoke: bool) -> tuple[float, int]:
    """``clients`` clients doing acquire + release pairs on ``sock`` for ``seconds``: (pairs/s, errors)."""
    procs = 4 if not smoke else 1
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        results = pool.starmap(_storm, [(sock, volume, clients // procs, seconds, p) for p in range(procs)])
    return sum(r[0] for r in results) / seconds, sum(r[1] for r in results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", choices=["control", "datapath"], default="control", help="which benchmark (default: control)")
    parser.add_argument("--smoke", action="store_true", help="a few runs of each, to check that the command works")
    parser.add_argument("--out", help="also write the table to this file")
    parser.add_argument("--repeats", type=int, default=3, help="datapath: runs of each job through each target (default 3)")
    parser.add_argument("--runtime", type=float, default=5.0, help="datapath: seconds of each fio run (default 5)")
    parser.add_argument("--size", type=int, default=256, help="datapath: MiB of the job file (default 256)")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="OPTIONS",
        help="datapath: also a FUSE client started with these options, space-separated (--variant='--reader-thread-count=4'); repeatable",
    )
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("glusterd") is None or shutil.which("fio") is None:
        print("the benchmarks need root, glusterfs-server and fio (bash scripts/install-deps.sh)", file=sys.stderr)
        return 2
    blocks = datapath(args) if args.what == "datapath" else iter([control(args.smoke)])
    printed: list[str] = []
    for block in blocks:
        print(("\n" if printed else "") + block, flush=True)
        printed.append(block)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n\n".join(printed) + "\n")
    return 0


def datapath(args: argparse.Namespace) -> Iterator[str]:
    smoke = args.smoke
    variants = [tuple(v.split()) for v in args.variant]
    run = DataPath(
        glusterlab.DEFAULT_BASE, 1 if smoke else args.repeats, 0.5 if smoke else args.runtime, 16 if smoke else args.size, variants
    )
    shape = f"fio {run.runtime:g} s a run, median of {run.repeats}, {run.size_mib} MiB file, direct=1"
    for m in run.run():
        yield "\n".join([machine_line(smoke) + f"; {shape}", "", *m.table(), "", *m.profile()])


def control(smoke: bool) -> str:
    bench = Bench(smoke)
    try:
        for step in (
            bench.cold,
            bench.warm,
            bench.concurrent,
            bench.scaling,
            bench.parse,
            bench.create_sparse,
            bench.create_preallocated,
            bench.memory,
        ):
            print(f"... {step.__name__}", file=sys.stderr, flush=True)
            step()
    finally:
        bench.close()
    return bench.table()


if __name__ == "__main__":
    raise SystemExit(main())
