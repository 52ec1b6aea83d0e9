"""Crash consistency: concurrent clients, SIGKILL at a random moment, restart, check every invariant.

Each worker owns its holders and disks, so the order of its own calls is the
order the daemon saw them, and an acknowledged call pins its key's state.  A
call whose reply never arrived (the daemon died under it) is unacknowledged:
its key may be either way and is learned from the next restart.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from glusterd_mgr.client import DaemonNotRunning
from glusterd_mgr.core import errors
from glusterd_mgr.core.volume import VolumeSpec
from glusterd_mgr.shell import disks

from ..support import glusterlab
from ..support.daemon_proc import DaemonProcess
from ..support.kernel import fuse_client_pids, glusterfs_mounts_of, glusterfs_stack
from .conftest import env_int
from .helpers import rpc_batch

ROUNDS = env_int("GGMT_FAULT_CRASH_ROUNDS", 200)
WORKERS = env_int("GGMT_FAULT_CRASH_WORKERS", 3)
HOLDERS_EACH, DISKS_EACH = 3, 2
KILL_WINDOW = float(os.environ.get("GGMT_FAULT_CRASH_KILL_WINDOW", "0.6"))

pytestmark = [pytest.mark.gluster, pytest.mark.timeout(max(300, 3 * ROUNDS + 120))]

Key = tuple[str, str]  # ("holder", id) or ("disk", path)


class Model:
    """Known state of every key: True (held / exists), False, or None (an unacknowledged call may have changed it)."""

    def __init__(self, keys: list[Key]) -> None:
        self.state: dict[Key, bool | None] = dict.fromkeys(keys, False)
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.round = 0
        self.history: dict[Key, list[str]] = {k: [] for k in keys}

    def note(self, key: Key, event: str) -> None:
        self.history[key] = [*self.history[key][-7:], f"r{self.round}:{event}"]

    def story(self, key: Key) -> str:
        return f"{key[1]} history: {' '.join(self.history[key])}"

    def acked(self, op: str, key: Key, detail: str = "") -> None:
        with self.lock:
            self.state[key] = op in ("acquire", "create")
            self.counts[f"acked_{op}s"] += 1
            self.note(key, f"acked-{op}{detail}")

    def unacked(self, op: str, key: Key) -> None:
        with self.lock:
            self.counts["unacked"] += 1
            self.note(key, f"unacked-{op}")
            if self.state[key] != (op in ("acquire", "create")):
                self.state[key] = None


def holder_json(hid: str) -> dict[str, str]:
    return {"kind": "instance", "id": hid}


def worker(d: DaemonProcess, vol: dict[str, Any], keys: list[Key], model: Model, rng: random.Random, stop: threading.Event,
           failures: list[str]) -> None:  # fmt: skip
    c = d.client(timeout=60)
    while not stop.is_set():
        key = rng.choice(keys)
        kind, name = key
        call: Callable[[], object]
        if kind == "holder":
            op = rng.choice(["acquire", "release"])
            call = partial(c.acquire if op == "acquire" else c.release, vol, holder_json(name))
        else:
            op = rng.choice(["create", "remove"])
            if op == "create" and model.state[key] is True:
                op = "remove"
            elif op == "remove" and model.state[key] is False and rng.random() < 0.7:
                op = "create"
            call = partial(c.disk_create, vol, name, 1) if op == "create" else partial(c.disk_remove, vol, name)
        try:
            reply = call()
        except DaemonNotRunning:
            return  # never reached the daemon: nothing changed
        except errors.DiskExists:
            if model.state[key] is not None:
                failures.append(f"create {name}: DiskExists while the model says {model.state[key]}; {model.story(key)}")
            model.acked("create", key)  # it exists, whoever made it
            model.counts["acked_creates"] -= 1
            continue
        except errors.MountdError as e:
            if isinstance(e, errors.OperationTimeout) or e.__class__.__name__ == "RpcError":
                model.unacked(op, key)  # the daemon died under the call
                return
            failures.append(f"{op} {name}: {e.__class__.__name__}: {e}")
            model.unacked(op, key)
            return
        model.acked(op, key, f"={reply.get('removed')}" if op == "remove" else "")


def bare_folder(d: DaemonProcess) -> list[str]:
    """Files in the mountpoint folder itself, seen while nothing is mounted on it: there must never be any."""
    if glusterfs_stack(d.storage_dir) or not os.path.isdir(d.storage_dir):
        return []
    return [os.path.join(dp, f) for dp, _, fs in os.walk(d.storage_dir) for f in fs]


def check_invariants(d: DaemonProcess, vol: dict[str, Any], volume: VolumeSpec, model: Model, keys: list[Key]) -> int:
    """The restarted daemon against the model; unknown keys are learned.  Returns how many invariants were checked."""
    checked = 0
    status = d.client().status()
    mounts = [m for m in status["mounts"] if m["volume"] == vol]
    held = {h["id"] for m in mounts for h in m["holders"] if h["kind"] == "instance"}
    assert all(h["kind"] == "instance" for m in mounts for h in m["holders"]), mounts
    for key in keys:
        if key[0] != "holder":
            continue
        now = key[1] in held
        want = model.state[key]
        assert want is None or want == now, (
            f"holder {key[1]}: acknowledged {'acquire' if want else 'release'}, held={now}; {model.story(key)}"
        )
        model.state[key] = now
        model.note(key, f"seen-{now}")
        checked += 1
    assert held <= {k[1] for k in keys}, f"holders nobody acquired: {held - {k[1] for k in keys}}"
    stack = glusterfs_stack(d.storage_dir)
    everywhere = glusterfs_mounts_of(volume.volume, d.root)
    assert len(stack) <= 1 and len(everywhere) <= 1, f"more than one mount of the volume: {stack} {everywhere}"
    checked += 1
    if held:
        assert len(stack) == 1, "a volume with holders is not mounted"
        assert mounts and mounts[0]["state"] == "mounted", mounts
        checked += 1
    stray = bare_folder(d)
    assert stray == [], f"files in the bare mountpoint folder (made while the volume was not mounted there): {stray}"
    checked += 1
    disk_keys = [k for k in keys if k[0] == "disk"]
    replies = rpc_batch(d.socket, [("disk.info", {"volume": vol, "path": k[1]}) for k in disk_keys])
    for key, reply in zip(disk_keys, replies, strict=True):
        assert "result" in reply, reply
        exists = reply["result"]["exists"]
        want = model.state[key]
        assert want is None or want == exists, (
            f"disk {key[1]}: acknowledged {'create' if want else 'remove'}, exists={exists}; {model.story(key)}"
        )
        model.state[key] = exists
        model.note(key, f"seen-{exists}")
        checked += 1
    assert len(glusterfs_mounts_of(volume.volume, d.root)) <= 1
    return checked


def test_sigkill_at_random_moments_loses_nothing_acknowledged(
    make_daemon: Any, gluster: glusterlab.GlusterServer, volume: VolumeSpec, figure: Any
) -> None:
    rng = random.Random(env_int("GGMT_SEED", 20261124))
    vol = volume.to_json()
    per_worker = [
        [("holder", f"w{w}h{n}") for n in range(HOLDERS_EACH)] + [("disk", f"ganeti/crash-w{w}-d{n}.0") for n in range(DISKS_EACH)]
        for w in range(WORKERS)
    ]
    keys = [k for ks in per_worker for k in ks]
    model = Model(keys)
    d: DaemonProcess = make_daemon(start=False)
    invariants = kills = 0
    failures: list[str] = []
    litter: set[str] = set()
    started = time.monotonic()
    for n in range(ROUNDS):
        model.round = n
        d.start()
        invariants += check_invariants(d, vol, volume, model, keys)
        stop = threading.Event()
        threads = [
            threading.Thread(target=worker, args=(d, vol, ks, model, random.Random(rng.random()), stop, failures), daemon=True)
            for ks in per_worker
        ]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.0, KILL_WINDOW))  # the fault's random moment (not a wait for a condition)
        assert d.proc is not None and d.proc.poll() is None, f"the daemon died by itself: {d.log()}"
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        kills += 1
        stop.set()
        for t in threads:
            t.join(timeout=60)
            assert not t.is_alive(), "a client call hung after the daemon was killed"
        assert not failures, failures
        if os.path.isdir(os.path.join(d.storage_dir, "ganeti")) and glusterfs_stack(d.storage_dir):
            litter |= set(leftovers(os.path.join(d.storage_dir, "ganeti")))
    d.start()
    invariants += check_invariants(d, vol, volume, model, keys)
    c = d.client()
    for kind, name in keys:
        if kind == "holder":
            c.release(vol, holder_json(name))
        else:
            c.disk_remove(vol, name)
    assert c.status()["mounts"] == [] or all(not m["holders"] for m in c.status()["mounts"])
    assert glusterfs_mounts_of(volume.volume, d.root) == [], "the last release must unmount"
    # What the kills left half-done was settled at the restarts: look on the brick itself.
    left = leftovers(os.path.join(gluster.dir, "bricks", volume.volume, "ganeti"))
    assert left == [], f"what calls cut by a kill left was never settled: {left}"
    counts = model.counts
    figure(
        "crash",
        rounds=ROUNDS,
        sigkills=kills,
        clients=WORKERS,
        acked_acquires=counts["acked_acquires"],
        acked_releases=counts["acked_releases"],
        acked_creates=counts["acked_creates"],
        acked_removes=counts["acked_removes"],
        unacked_calls=counts["unacked"],
        invariants_checked=invariants,
        temp_files_seen_after_kills=len(litter),
        temp_files_left=len(left),
        lost=0,
        seconds=round(time.monotonic() - started),
    )


ATTEMPTS = 5


@pytest.mark.timeout(240)
def test_crash_during_create_leaves_no_temporary_file(make_daemon: Any, gluster: glusterlab.GlusterServer, volume: VolumeSpec) -> None:
    d: DaemonProcess = make_daemon()
    c = d.client()
    vol = volume.to_json()
    holder = {"kind": "instance", "id": "crash-create.0"}
    c.acquire(vol, holder)
    brick_folder = os.path.join(gluster.dir, "bricks", volume.volume, "ganeti")
    # The temporary file lives for milliseconds, so a busy machine can miss it: a create that finished
    # unseen is tried again under a new name, a few times.
    for attempt in range(ATTEMPTS):
        name = f"crash-create-{os.getpid()}-{int(time.monotonic() * 1000)}.{attempt}"
        brick_temp = os.path.join(brick_folder, disks.private_folder(), disks.CREATING, name)
        brick_disk = os.path.join(brick_folder, name)
        create = partial(d.client().disk_create, vol, f"ganeti/{name}", 64, preallocate=True)
        thread = threading.Thread(target=_swallow, args=(create,), daemon=True)
        thread.start()
        end = time.monotonic() + 20
        while not os.path.exists(brick_temp) and not os.path.exists(brick_disk):  # a tight watch on the brick itself
            assert time.monotonic() < end, "the create neither made its temporary file nor its disk on the brick"
        if not os.path.exists(brick_disk):
            break
        thread.join(timeout=30)
        c.disk_remove(vol, f"ganeti/{name}")
    else:
        raise AssertionError(f"{ATTEMPTS} creates finished before their temporary file was seen on the brick")
    assert d.proc is not None
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    thread.join(timeout=30)
    d.start()
    c = d.client()
    assert c.disk_info(vol, f"ganeti/{name}")["exists"] in (True, False)  # unacknowledged: either way
    c.disk_create(vol, f"ganeti/{name}-other", 1)
    folder = os.path.join(d.storage_dir, "ganeti")
    try:
        glusterlab.poll("the unfinished new disk to be settled", lambda: leftovers(folder) == [], deadline=5)
    finally:
        for leftover in (os.path.join(disks.private_folder(), disks.CREATING, name), name, f"{name}-other"):
            try:
                os.unlink(os.path.join(folder, leftover))
            except FileNotFoundError:
                pass
        c.release(vol, holder)


def leftovers(folder: str) -> list[str]:
    """What disk calls left in this node's private folder beside the disks in ``folder``."""
    private = os.path.join(folder, disks.private_folder())
    subs = [os.path.join(private, sub) for sub in (disks.CREATING, disks.REMOVING)]
    return sorted(os.path.join(sub, n) for sub in subs if os.path.isdir(sub) for n in os.listdir(sub))


def _swallow(fn: Any) -> None:
    try:
        fn()
    except Exception:
        pass  # the daemon is killed under this call on purpose


@pytest.mark.timeout(120)
def test_client_orphaned_by_a_crash_does_not_stack_a_second_mount(
    make_daemon: Any, volume: VolumeSpec, gluster: glusterlab.GlusterServer
) -> None:
    """The FUSE client runs in a session of its own, so it outlives a SIGKILLed daemon.  It makes its mount at
    once and then waits for its volume file (here from a frozen server): the restarted daemon must find that
    mount and use it when it answers, never stack a second one."""
    d: DaemonProcess = make_daemon()
    vol = volume.to_json()
    gluster.freeze()
    try:
        first = threading.Thread(target=_swallow, args=(partial(d.client().acquire, vol, holder_json("orphan-1.0")),), daemon=True)
        first.start()
        glusterlab.poll("the client to mount", lambda: glusterfs_stack(d.storage_dir), deadline=10, interval=0.01)
        orphans = set(fuse_client_pids(d.storage_dir))  # the client, and its parent until the mount is ready
        assert d.proc is not None
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        first.join(timeout=30)
    finally:
        gluster.thaw()
    d.start()
    c = d.client()

    def acquired() -> bool:
        try:
            c.acquire(vol, holder_json("orphan-2.0"))
        except errors.OperationTimeout:
            return False  # the orphan's mount does not answer yet: its volume file is on its way
        return True

    glusterlab.poll("the orphan's mount to answer and be adopted", acquired, deadline=30, interval=0.2)
    stacked = glusterfs_stack(d.storage_dir)
    held = {h["id"] for m in c.status()["mounts"] for h in m["holders"]}
    client = fuse_client_pids(d.storage_dir)
    c.release(vol, holder_json("orphan-2.0"))
    c.release(vol, holder_json("orphan-1.0"))
    assert "orphan-2.0" in held
    assert len(client) == 1 and set(client) <= orphans, f"the orphaned client carries the mount: {client} of {orphans}"
    assert len(stacked) == 1, f"the volume is mounted {len(stacked)} times on {d.storage_dir}: {stacked}"
