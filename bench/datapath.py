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
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from typing import cast

import psutil

from glusterd_mgr.core.mounts import client_argv, log_file_for
from glusterd_mgr.core.volume import VolumeSpec
from tests.support import glusterlab, kernel
from tests.support.daemon_proc import DaemonProcess

MIB = 1 << 20
FILE = "fio-bench.img"
"""One file in the volume, laid out once and used by (a), (b) and (c) alike (the same brick state for each)."""
FIO_GFAPI_LOG = "/tmp/fio_gfapi.log"
"""Where fio's gfapi engines make libgfapi log (a fixed path in fio's source): removed after a run."""
BASELINES = ("plain", "gfapi")
"""What every other target is compared with: the raw tool's mount, and QEMU's former userspace path."""
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
    """One way to the volume's data: fio's engine and where its file is; ``client``: the FUSE client's PID, if any."""

    name: str
    options: tuple[str, ...]
    client: int | None = None


def fuse_target(name: str, folder: str) -> Target:
    """A file system path, reached as QEMU's ``aio=native`` does (libaio, ``O_DIRECT``).

    Its FUSE client is the newest claiming the folder: the client of an earlier mount there may still be exiting.
    """
    pids = kernel.fuse_client_pids(folder)
    client = max(pids, key=lambda pid: psutil.Process(pid).create_time()) if pids else None
    return Target(name, ("--ioengine=libaio", f"--filename={os.path.join(folder, FILE)}"), client)


Usage = dict[str, tuple[float, int, int]]
"""Per thread name (its digits dropped): CPU seconds, context switches, read system calls; ``threads``: how many."""
THREADS = "threads"


def threads(pid: int) -> Usage:
    """What a FUSE client's threads have done so far, from /proc (the reader threads' reads are of /dev/fuse)."""
    usage: Usage = {}
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir(f"/proc/{pid}/task"):
        where = f"/proc/{pid}/task/{tid}"
        with open(f"{where}/comm") as f:
            name = f.read().strip().rstrip("0123456789")
        with open(f"{where}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"{where}/status") as f:
            switches = sum(int(line.split()[1]) for line in f if line.split(":")[0].endswith("ctxt_switches"))
        with open(f"{where}/io") as f:
            reads = next(int(line.split()[1]) for line in f if line.startswith("syscr:"))
        cpu, ctx, sys_reads = usage.get(name, (0.0, 0, 0))
        usage[name] = (cpu + (int(fields[11]) + int(fields[12])) / tick, ctx + switches, sys_reads + reads)
    usage[THREADS] = (0.0, 0, len(os.listdir(f"/proc/{pid}/task")))
    return usage


def spent(before: Usage, after: Usage) -> Usage:
    zero = (0.0, 0, 0)
    used = {n: (a[0] - before.get(n, zero)[0], a[1] - before.get(n, zero)[1], a[2] - before.get(n, zero)[2]) for n, a in after.items()}
    return {**used, THREADS: after[THREADS]}


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
        "ios": float(job["read"]["total_ios"] + job["write"]["total_ios"]),
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
    profiles: dict[tuple[str, str], tuple[Usage, float]]
    """Per job and FUSE target: what its client's threads spent over every repeat, and the I/Os they served."""

    def median(self, job: Job, target: str) -> float:
        return statistics.median(self.results[(job.name, target)])

    def table(self) -> list[str]:
        names = [t.name for t in self.targets]
        ratios = [(n, base) for n in names if n not in BASELINES for base in BASELINES] + [BASELINES]
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

    def profile(self) -> list[str]:
        """Per I/O, for each FUSE client: CPU by thread kind, context switches, and the reader threads' reads."""
        lines = [
            f"{self.title}: the FUSE clients per I/O (over every repeat; reads of glfs_fuseproc are of /dev/fuse)",
            "",
            "| job | client | threads | CPU µs: fuseproc / epoll / others | context switches | /dev/fuse reads |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for job in JOBS:
            for target in self.targets:
                if (job.name, target.name) not in self.profiles:
                    continue
                usage, ios = self.profiles[(job.name, target.name)]
                fuse, epoll = usage.get("glfs_fuseproc", (0.0, 0, 0)), usage.get("glfs_epoll", (0.0, 0, 0))
                others = sum(cpu for n, (cpu, _, _) in usage.items() if n not in ("glfs_fuseproc", "glfs_epoll", THREADS))
                cpu = " / ".join(f"{1e6 * c / ios:.0f}" for c in (fuse[0], epoll[0], others))
                switches = sum(ctx for _, ctx, _ in usage.values()) / ios
                lines.append(f"| {job.name} | {target.name} | {usage[THREADS][2]} | {cpu} | {switches:.1f} | {fuse[2] / ios:.2f} |")
        return lines


def measure(title: str, targets: list[Target], repeats: int, runtime: float, size_mib: int) -> Matrix:
    matrix = Matrix(title, targets, {}, {})
    for _ in range(repeats):
        for job in JOBS:
            for target in targets:
                before = threads(target.client) if target.client else {}
                got = fio(target, job.options, runtime, size_mib)
                value = got["iops"] if job.unit == "IOPS" else got["bytes"] / MIB
                matrix.results.setdefault((job.name, target.name), []).append(value)
                if target.client:
                    usage = spent(before, threads(target.client))
                    total, ios = matrix.profiles.get((job.name, target.name), ({}, 0.0))
                    merged = {n: tuple(map(sum, zip(total.get(n, (0.0, 0, 0)), u, strict=True))) for n, u in usage.items()}
                    merged[THREADS] = usage[THREADS]
                    matrix.profiles[(job.name, target.name)] = (cast(Usage, merged), ios + got["ios"])
    return matrix


@contextmanager
def client_mount(host: str, volume: str, folder: str, options: Sequence[str]) -> Iterator[str]:
    """The FUSE client started as the daemon starts it, with ``options``: a candidate setting, measured beside the rest."""
    os.makedirs(folder, exist_ok=True)
    spec = VolumeSpec(host, 24007, volume)
    glusterlab.sh(*client_argv(spec, folder, log_file_for(os.path.dirname(folder), folder), (), options))
    try:
        yield folder
    finally:
        glusterlab.sh("umount", "-l", folder, check=False)


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
    variants: list[tuple[str, ...]]
    """Client options measured as further targets, each a client started with them (``--variant``)."""

    def volume(self, host: str, volume: str, brick_fs: str, title: str, daemon: DaemonProcess) -> Matrix:
        """Mount the volume both ways, lay out the files and run every job through the four targets."""
        spec = {"host": host, "port": 24007, "volume": volume}
        holder = {"kind": "job", "id": f"datapath-{volume}"}
        client = daemon.client(timeout=120)
        client.acquire(spec, holder)
        try:
            with ExitStack() as mounts:
                plain = mounts.enter_context(plain_mount(host, volume, os.path.join(self.base, f"plain-{volume}")))
                raw = os.path.join(brick_fs, "raw")
                os.makedirs(raw, exist_ok=True)
                targets = [
                    fuse_target("daemon", daemon.storage_dir),
                    fuse_target("plain", plain),
                    gfapi_target(host, volume),
                    fuse_target("brick", raw),
                ]
                for i, options in enumerate(self.variants):
                    folder = mounts.enter_context(client_mount(host, volume, os.path.join(self.base, f"variant{i}-{volume}"), options))
                    targets.append(fuse_target(" ".join(options) or "no options", folder))
                layout(targets[0], self.size_mib)
                layout(targets[3], self.size_mib)
                return measure(title, targets, self.repeats, self.runtime, self.size_mib)
        finally:
            client.release(spec, holder)

    def run(self) -> Iterator[Matrix]:
        """Each volume's matrix as soon as it is measured (a full run takes a quarter of an hour)."""
        glusterlab.cleanup_leftovers(self.base)
        daemon = DaemonProcess(os.path.join(self.base, "node"), extra=["--probe-interval", "10", "--fs-timeout", "60"])
        try:
            server = glusterlab.GlusterServer(base=self.base).start()
            server.create_volume("gv0")
            daemon.start()
            yield self.volume(server.address, "gv0", os.path.join(server.dir, "bricks"), "One brick, one server", daemon)
            server.stop()
            with glusterlab.replica(self.base, REPLICA_INDEXES, "gvr", group="virt") as servers:
                first = servers[0]
                title = "Replica 3 over three servers, `group virt`"
                yield self.volume(first.address, "gvr", os.path.join(first.dir, "bricks"), title, daemon)
        finally:
            if daemon.proc is not None:
                daemon.terminate()
            glusterlab.cleanup_leftovers(self.base)
            with suppress(FileNotFoundError):
                os.unlink(FIO_GFAPI_LOG)
