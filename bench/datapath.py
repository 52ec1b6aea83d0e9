"""The guest's disk path (``python3 -m bench datapath``): VM-shaped fio jobs through four ways to a volume.

A guest's disk on a ``gluster`` instance is a file on the daemon's FUSE mount,
opened by QEMU with ``cache=none`` (``O_DIRECT``).  Each job runs with
``direct=1`` through (a) the daemon's mount, (b) a plain ``mount -t glusterfs``
with defaults, (c) fio's ``gfapi_async`` engine (libgfapi, QEMU's former
userspace path) and (d) the brick's own file system, on a one-brick volume and
on a replica-3 volume over three servers set to ``group virt``.  The targets
are interleaved job by job and repeat by repeat, so a busy machine slows all of
them alike; each figure is the median over the repeats, and the ratios are of
medians from the same run.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from tests.support import glusterlab
from tests.support.daemon_proc import DaemonProcess

MIB = 1 << 20
FILE = "fio-bench.img"
"""One file in the volume, laid out once and used by (a), (b) and (c) alike (the same brick state for each)."""
REPLICA_INDEXES = (21, 22, 23)
"""glusterlab's address plan: apart from the server of the one-brick volume (1)."""


@dataclass(frozen=True)
class Job:
    """One fio job shaped like a guest's disk; ``unit`` is what it reports (IOPS or MiB/s)."""

    name: str
    options: tuple[str, ...]
    unit: str


JOBS = (
    Job("4 KiB random 70/30 read/write, iodepth 1", ("--rw=randrw", "--rwmixread=70", "--bs=4k", "--iodepth=1"), "IOPS"),
    Job("4 KiB random 70/30 read/write, iodepth 16", ("--rw=randrw", "--rwmixread=70", "--bs=4k", "--iodepth=16"), "IOPS"),
    Job("1 MiB sequential read, iodepth 4", ("--rw=read", "--bs=1M", "--iodepth=4"), "MiB/s"),
    Job("1 MiB sequential write, iodepth 4", ("--rw=write", "--bs=1M", "--iodepth=4"), "MiB/s"),
    Job("4 KiB writes, each followed by fsync (a guest's journal)", ("--rw=write", "--bs=4k", "--iodepth=1", "--fsync=1"), "IOPS"),
)


@dataclass(frozen=True)
class Target:
    """One way to the volume's data: fio's engine and where its file is."""

    name: str
    options: tuple[str, ...]


def fuse_target(name: str, folder: str) -> Target:
    """A file system path, reached as QEMU's ``aio=native`` does (libaio, ``O_DIRECT``)."""
    return Target(name, ("--ioengine=libaio", f"--filename={os.path.join(folder, FILE)}"))


def gfapi_target(host: str, volume: str) -> Target:
    return Target("gfapi", ("--ioengine=gfapi_async", f"--volume={volume}", f"--brick={host}", f"--filename={FILE}"))


def fio(target: Target, options: Sequence[str], runtime: float, size_mib: int) -> dict[str, float]:
    """One fio run; its read and write results in bytes/s and IOPS."""
    argv = [
        "fio", "--output-format=json", "--name=vmdisk", "--direct=1", f"--size={size_mib}M",
        "--time_based", f"--runtime={round(runtime * 1000)}ms", *target.options, *options,
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=runtime * 10 + 120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"fio failed through {target.name} ({' '.join(argv)}): {done.stderr.strip() or done.stdout[-2000:]}")
    job = json.loads(done.stdout[done.stdout.index("{") :])["jobs"][0]
    if job.get("error"):
        raise RuntimeError(f"fio's job failed through {target.name}: error {job['error']}")
    return {
        "iops": float(job["read"]["iops"] + job["write"]["iops"]),
        "bytes": float(job["read"]["bw_bytes"] + job["write"]["bw_bytes"]),
    }


def layout(target: Target, size_mib: int) -> None:
    """Write the job file in full once, so reads read data and no job pays for allocating it."""
    argv = ["fio", "--name=layout", "--direct=1", "--rw=write", "--bs=1M", f"--size={size_mib}M", *target.options]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"laying out the job file through {target.name} failed: {done.stderr.strip() or done.stdout[-2000:]}")


@dataclass
class Matrix:
    """Every job through every target, repeated and interleaved; medians and ratios."""

    title: str
    targets: list[Target]
    results: dict[tuple[str, str], list[float]]

    def median(self, job: Job, target: str) -> float:
        return statistics.median(self.results[(job.name, target)])

    def table(self) -> list[str]:
        names = [t.name for t in self.targets]
        ratios = [("daemon", "plain"), ("daemon", "gfapi"), ("brick", "plain"), ("brick", "gfapi"), ("plain", "gfapi")]
        lines = [
            f"{self.title}",
            "",
            "| job | unit | " + " | ".join(names) + " | " + " | ".join(f"{a} ÷ {b}" for a, b in ratios) + " |",
            "| --- | --- | " + " | ".join("---" for _ in names) + " | " + " | ".join("---" for _ in ratios) + " |",
        ]
        for job in JOBS:
            cells = [f"{self.median(job, n):,.0f}" for n in names]
            cells += [f"{self.median(job, a) / self.median(job, b):.2f}×" for a, b in ratios]
            lines.append(f"| {job.name} | {job.unit} | " + " | ".join(cells) + " |")
        return lines


def measure(title: str, targets: list[Target], repeats: int, runtime: float, size_mib: int) -> Matrix:
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(repeats):
        for job in JOBS:
            for target in targets:
                got = fio(target, job.options, runtime, size_mib)
                value = got["iops"] if job.unit == "IOPS" else got["bytes"] / MIB
                results.setdefault((job.name, target.name), []).append(value)
    return Matrix(title, targets, results)


@contextmanager
def plain_mount(host: str, volume: str, folder: str) -> Iterator[str]:
    """``mount -t glusterfs HOST:/VOLUME`` with the tool's defaults, as a user would."""
    os.makedirs(folder, exist_ok=True)
    glusterlab.sh("mount", "-t", "glusterfs", f"{host}:/{volume}", folder)
    try:
        yield folder
    finally:
        glusterlab.sh("umount", "-l", folder, check=False)


@dataclass
class DataPath:
    """The benchmark's servers, daemon and settings."""

    base: str
    repeats: int
    runtime: float
    size_mib: int

    def volume(self, host: str, volume: str, brick_fs: str, title: str, daemon: DaemonProcess) -> Matrix:
        """Mount the volume both ways, lay out the files and run every job through the four targets."""
        spec = {"host": host, "port": 24007, "volume": volume}
        holder = {"kind": "job", "id": f"datapath-{volume}"}
        client = daemon.client(timeout=120)
        client.acquire(spec, holder)
        try:
            with plain_mount(host, volume, os.path.join(self.base, f"plain-{volume}")) as plain:
                raw = os.path.join(brick_fs, "raw")
                os.makedirs(raw, exist_ok=True)
                targets = [
                    fuse_target("daemon", daemon.storage_dir),
                    fuse_target("plain", plain),
                    gfapi_target(host, volume),
                    fuse_target("brick", raw),
                ]
                layout(targets[0], self.size_mib)
                layout(targets[3], self.size_mib)
                return measure(title, targets, self.repeats, self.runtime, self.size_mib)
        finally:
            client.release(spec, holder)

    def run(self) -> list[Matrix]:
        glusterlab.cleanup_leftovers(self.base)
        daemon = DaemonProcess(os.path.join(self.base, "node"), extra=["--probe-interval", "10", "--fs-timeout", "60"])
        try:
            server = glusterlab.GlusterServer(base=self.base).start()
            server.create_volume("gv0")
            daemon.start()
            one = self.volume(server.address, "gv0", os.path.join(server.dir, "bricks"), "One brick, one server", daemon)
            server.stop()
            with glusterlab.replica(self.base, REPLICA_INDEXES, "gvr", group="virt") as servers:
                first = servers[0]
                title = "Replica 3 over three servers, `group virt`"
                three = self.volume(first.address, "gvr", os.path.join(first.dir, "bricks"), title, daemon)
            return [one, three]
        finally:
            if daemon.proc is not None:
                daemon.terminate()
            glusterlab.cleanup_leftovers(self.base)
