"""glusterd_mgr.ganeti_storage driven by Ganeti 3.0's and 3.1's real code, side by side with Ganeti's own Gluster class.

Ganeti's modules are Debian's ganeti-3.0 and ganeti-3.1 packages, unpacked by
tests/support/ganeti_env.py (never copies); every test runs once per version
the running Debian release carries (Debian 13 has no ganeti-3.0: skipped there).
Ganeti's backend functions (BlockdevCreate, BlockdevAssemble, ...) run unchanged with ``bdev.DEV_MAP`` pointed at our class; Ganeti's own
``GlusterStorage`` runs against the same real volume with its ssconf and its
file-storage whitelist pointed at the test folder.
"""

from __future__ import annotations

import functools
import glob
import inspect
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
import types
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import psutil
import pytest

from glusterd_mgr.core.volume import VolumeSpec

from .support import documented, ganeti_env, glusterlab, kernel
from .support.daemon_proc import REPO, DaemonProcess

T = TypeVar("T")

pytestmark = [
    pytest.mark.gluster,
    pytest.mark.timeout(300),
    # Ganeti 3.0 and 3.1 call pyparsing's and the ssl module's old names.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
METHODS = [
    "__init__", "Create", "Attach", "Assemble", "Shutdown", "Open", "Close", "Remove", "Rename", "Grow", "GetActualSize",
    "GetUserspaceAccessUri",
]  # fmt: skip
MiB = 1024 * 1024


@pytest.fixture(scope="module", params=ganeti_env.VERSIONS)
def g(request: pytest.FixtureRequest) -> types.SimpleNamespace:
    """One Ganeti version's real modules (and ours, imported anew on them)."""
    try:
        path = ganeti_env.Ganeti(request.param).activate()
    except ganeti_env.Unavailable as e:
        pytest.skip(str(e))
    from ganeti import backend, constants, errors, objects, pathutils
    from ganeti.storage import base, bdev, container, filestorage
    from ganeti.storage import gluster as own

    from glusterd_mgr import ganeti_storage as ours

    for module in (base, errors, constants, bdev, backend, own):
        assert module.__file__.startswith(path), f"{module.__name__} is not Ganeti's own: {module.__file__}"
    assert f"{constants.VERSION_MAJOR}.{constants.VERSION_MINOR}" == request.param, constants.RELEASE_VERSION
    built_on: Any = ours  # its import of Ganeti's base is no public name of ours
    assert built_on.base is base, "our class built on this version's modules, not on another's"
    return types.SimpleNamespace(
        path=path, backend=backend, constants=constants, errors=errors, objects=objects, pathutils=pathutils,
        base=base, bdev=bdev, container=container, filestorage=filestorage, own=own, ours=ours,
    )  # fmt: skip


@pytest.fixture
def root(gluster: glusterlab.GlusterServer, lab_base: str) -> Iterator[str]:
    with glusterlab.scratch(lab_base, "gn") as path:
        yield path


@pytest.fixture
def daemon(make_daemon: Callable[..., DaemonProcess], root: str) -> DaemonProcess:
    """The suite's daemon, in this test's Ganeti-like tree."""
    return make_daemon(root=os.path.join(root, "daemon"))


@pytest.fixture
def ours(g: types.SimpleNamespace, daemon: DaemonProcess) -> type:
    """Our class, talking to this test's daemon (the class attribute a deployment would leave unset)."""
    return type("GlusterStorage", (g.ours.GlusterStorage,), {"socket_path": daemon.socket})


class OwnEnv:
    """What Ganeti's own class reads from the node, redirected into the test folder; its mount commands recorded."""

    def __init__(self, g: types.SimpleNamespace, root: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.mountpoint = os.path.join(root, "own-gluster")
        ssconf_dir = os.path.join(root, "ssconf")
        os.makedirs(ssconf_dir)
        with open(os.path.join(ssconf_dir, "ssconf_" + g.constants.SS_GLUSTER_STORAGE_DIR), "w") as f:
            f.write(self.mountpoint + "\n")
        whitelist = os.path.join(root, "file-storage-paths")
        with open(whitelist, "w") as f:
            f.write(f"{root}\n")
        # ssconf.SimpleStore() reads pathutils.DATA_DIR at call time.
        monkeypatch.setattr(g.pathutils, "DATA_DIR", ssconf_dir)
        # FileDeviceHelper looks the acceptance function up in its module at call time.
        monkeypatch.setattr(
            g.filestorage, "CheckFileStoragePathAcceptance",
            functools.partial(g.filestorage.CheckFileStoragePathAcceptance, _filename=whitelist),
        )  # fmt: skip
        self.commands: list[str] = []
        real_run = g.own.GlusterVolume.__init__.__defaults__[0]

        def run_cmd(cmd: Any, **kwargs: Any) -> Any:
            self.commands.append(cmd if isinstance(cmd, str) else " ".join(cmd))
            return real_run(cmd, **kwargs)

        # GlusterVolume binds utils.RunCmd as a default argument: replace the default.
        monkeypatch.setattr(g.own.GlusterVolume.__init__, "__defaults__", (run_cmd, None))

    def mounts(self) -> int:
        return sum(c.startswith("mount ") for c in self.commands)

    def umounts(self) -> int:
        return sum(c.startswith("umount ") for c in self.commands)


@pytest.fixture
def own_env(g: types.SimpleNamespace, root: str, monkeypatch: pytest.MonkeyPatch) -> OwnEnv:
    return OwnEnv(g, root, monkeypatch)


def params(g: types.SimpleNamespace, gluster: glusterlab.GlusterServer, access: str = "kernelspace") -> dict[str, Any]:
    c = g.constants
    return {c.GLUSTER_HOST: gluster.address, c.GLUSTER_PORT: 24007, c.GLUSTER_VOLUME: "gv0", c.LDP_ACCESS: access}


def logical_id(g: types.SimpleNamespace, instance_uuid: str, idx: int = 0) -> tuple[str, str]:
    """As Ganeti 3.0's GenerateDiskTemplate makes it for the gluster template."""
    return (g.constants.FD_DEFAULT, f"ganeti/{instance_uuid}.{idx}")


def metric_sum(daemon: DaemonProcess, name: str) -> float:
    total = 0.0
    for line in daemon.client().metrics().splitlines():
        if line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def mount_attempts(daemon: DaemonProcess) -> float:
    return metric_sum(daemon, "ganeti_gluster_mount_attempts_total")


def holder_ids(daemon: DaemonProcess) -> set[str]:
    return {h["id"] for m in daemon.client().status()["mounts"] for h in m["holders"]}


class RequestFailed(Exception):
    """What a request served in its own process raised (its type and message)."""


def in_request(call: Callable[[], T]) -> T:
    """Run ``call`` in a forked process, as Ganeti's node daemon serves each request; its answer, or its error."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the request's process: answer through the pipe, then end like noded's child
        os.close(read)
        try:
            answer: tuple[bool, Any] = (True, call())
        except Exception as e:
            answer = (False, f"{type(e).__name__}: {e}")
        with os.fdopen(write, "wb") as out:
            pickle.dump(answer, out)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        ok, value = pickle.load(f)
    os.waitpid(pid, 0)
    if not ok:
        raise RequestFailed(value)
    return cast(T, value)


def nothing_held(daemon: DaemonProcess) -> bool:
    return holder_ids(daemon) == set() and not kernel.glusterfs_stack(daemon.storage_dir)


def created(cls: Any, daemon: DaemonProcess, unique_id: Any, size: int, p: Any) -> Any:
    """``cls.Create`` in a request of its own (as noded serves BlockdevCreate), then the disk as FindDevice finds it.

    The request's holder is gone (the daemon lets go at its next probe) before this returns.
    """
    in_request(lambda: cls.Create(unique_id, [], size, None, p, False, {}).unique_id)
    glusterlab.poll("the create request's holder to be let go", lambda: not any("@" in h for h in holder_ids(daemon)), deadline=15)
    return cls(unique_id, [], size, p, {})


def make(cls: Any, ours: Any, daemon: DaemonProcess, unique_id: Any, size: int, p: Any) -> Any:
    """A new disk made by ``cls``: ours through a create request (``created``); Ganeti's own class holds nothing."""
    return created(ours, daemon, unique_id, size, p) if cls is ours else cls.Create(unique_id, [], size, None, p, False, {})


def test_a_real_blockdev_with_ganetis_signatures(g: types.SimpleNamespace) -> None:
    cls = g.ours.GlusterStorage
    assert issubclass(cls, g.base.BlockDev)
    assert cls.Create.__self__ is cls, "Create is a classmethod, as Ganeti's"
    for name in METHODS:
        mine, theirs = inspect.signature(getattr(cls, name)), inspect.signature(getattr(g.own.GlusterStorage, name))
        assert [(p.name, p.kind, p.default) for p in mine.parameters.values()] == [
            (p.name, p.kind, p.default) for p in theirs.parameters.values()
        ], name
    # Refused before any I/O, exactly as Ganeti's own class refuses.
    p = {g.constants.GLUSTER_HOST: "192.0.2.1", g.constants.GLUSTER_PORT: 24007, g.constants.GLUSTER_VOLUME: "gv0"}
    for klass in (cls, g.own.GlusterStorage):
        with pytest.raises(g.errors.ProgrammerError):
            klass.Create(("loop", "ganeti/x.0"), [], 1, None, p, True, {})
        with pytest.raises(ValueError):
            klass.Create("ganeti/x.0", [], 1, None, p, False, {})
    # The rest of the package never imports the Ganeti-only module.
    out = subprocess.run(
        [sys.executable, "-c", "import sys, glusterd_mgr.client, glusterd_mgr.ctl, glusterd_mgr.daemon; "
         "print(sorted(m for m in sys.modules if m.startswith(('ganeti', 'glusterd_mgr.ganeti'))))"],
        capture_output=True, text=True, cwd=REPO, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == "[]"


def test_errors_surface_as_block_device_errors(
    g: types.SimpleNamespace, gluster: glusterlab.GlusterServer, root: str, daemon: DaemonProcess, ours: Any
) -> None:
    missing = {**params(g, gluster), g.constants.GLUSTER_VOLUME: "nosuchvol"}
    with pytest.raises(g.errors.BlockDeviceError, match=r"cannot mount the Gluster volume: .*nosuchvol") as failed:
        ours.Create(logical_id(g, str(uuid.uuid4())), [], 1, None, missing, False, {})
    [mount] = daemon.client().status()["mounts"]
    assert mount["last_error"] and mount["last_error"] in str(failed.value), "the daemon's own diagnosis, word for word"
    assert holder_ids(daemon) == set()
    absent = type("GlusterStorage", (g.ours.GlusterStorage,), {"socket_path": os.path.join(root, "nobody.sock")})
    with pytest.raises(g.errors.BlockDeviceError, match="not running"):
        absent(logical_id(g, str(uuid.uuid4())), [], 1, params(g, gluster), {})
    with pytest.raises(g.errors.BlockDeviceError, match="not a Gluster disk name"):
        absent(("loop", "no-folder"), [], 1, params(g, gluster), {})
    with pytest.raises(g.errors.BlockDeviceError, match="Invalid setup"):
        absent(logical_id(g, "x"), ["child"], 1, params(g, gluster), {})


def test_ganeti_backend_call_sequence(
    g: types.SimpleNamespace, gluster: glusterlab.GlusterServer, daemon: DaemonProcess, root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ganeti's own backend functions, as noded runs them for one instance disk, with DEV_MAP pointed at our class."""
    monkeypatch.setenv(g.ours.SOCKET_ENV, daemon.socket)  # how a node would point it elsewhere
    monkeypatch.setitem(g.bdev.DEV_MAP, g.constants.DT_GLUSTER, g.ours.GlusterStorage)
    links = os.path.join(root, "instance-disks")
    os.makedirs(links)
    monkeypatch.setattr(g.pathutils, "DISK_LINKS_DIR", links)
    monkeypatch.setattr(g.backend.DevCacheManager, "_ROOT_DIR", os.path.join(root, "bdev-cache"))
    b, c = g.backend, g.constants
    instance_uuid = str(uuid.uuid4())
    instance = g.objects.Instance(name="inst1.example.com", uuid=instance_uuid, hypervisor=c.HT_KVM)
    disk = g.objects.Disk(
        dev_type=c.DT_GLUSTER, logical_id=logical_id(g, instance_uuid), size=8, params=params(g, gluster),
        dynamic_params={}, children=[], iv_name="disk/0", uuid=str(uuid.uuid4()), name=None, mode="rw", spindles=None,
    )  # fmt: skip
    path = os.path.join(daemon.storage_dir, "ganeti", f"{instance_uuid}.0")
    holder = f"{instance_uuid}.0"

    create = functools.partial(b.BlockdevCreate, disk, 8, instance.name, True, "originstname+inst1", False)
    made, seen = in_request(lambda: (create(), holder_ids(daemon)))
    assert made == disk.logical_id
    [request_holder] = seen
    assert "@" in request_holder and request_holder != holder, "Create, Assemble and Open hold for the request only"
    assert os.path.getsize(path) == 8 * MiB
    assert mount_attempts(daemon) == 1, "Create, Assemble and Open mounted once"
    # gnt-instance add --no-start: once the request has ended, nothing holds the volume and it goes.
    glusterlab.poll("the ended request's holder to be let go and the volume unmounted", lambda: nothing_held(daemon), deadline=15)
    # The OS scripts, import and export open the disk for their request only, too.
    during = in_request(lambda: (b._OpenRealBD(disk), holder_ids(daemon))[1])
    assert len(during) == 1 and "@" in next(iter(during)) and holder not in during
    glusterlab.poll("the OS scripts' request to be let go", lambda: nothing_held(daemon), deadline=15)
    # gnt-instance start: assembled and opened for the instance, until Ganeti shuts it down.
    dev_path, link, uri = b.BlockdevAssemble(disk, instance, True, 0)
    assert holder_ids(daemon) == {holder}
    assert dev_path == path and os.readlink(link) == path and uri is None
    b.BlockdevOpen(instance.name, [disk], True)
    pattern = os.urandom(64 * 1024)
    with open(dev_path, "r+b") as f:
        f.seek(3 * MiB)
        f.write(pattern)
        os.fsync(f.fileno())
    b.BlockdevGrow(disk, 4, False, True, False)
    assert b.BlockdevGetdimensions([disk]) == [(12 * MiB, None)]
    with open(dev_path, "rb") as f:
        f.seek(3 * MiB)
        assert f.read(len(pattern)) == pattern
    b.BlockdevGrow(disk, 4, True, True, False)  # dryrun
    assert os.path.getsize(path) == 12 * MiB
    with pytest.raises(RequestFailed, match="exists"):
        in_request(functools.partial(b.BlockdevCreate, disk, 8, instance.name, True, "", False))
    glusterlab.poll("a failed create's request to be let go", lambda: holder_ids(daemon) == {holder}, deadline=15)

    # gnt-instance stop: Ganeti shuts the disk down; the last holder leaves and the volume goes.
    b.BlockdevShutdown(disk)
    assert holder_ids(daemon) == set()
    assert kernel.glusterfs_stack(daemon.storage_dir) == [], "the last holder left: unmounted"
    # Each step on an unheld volume mounted it: the create request, the OS scripts' look and open, the start's
    # look and assemble (the mount churn of a node where nothing else holds the volume; the failed create found it held).
    assert mount_attempts(daemon) == 5
    # gnt-instance info / verify-disks of the stopped instance: a look, which leaves nothing mounted or held.
    status = b.BlockdevFind(disk)
    assert status is not None and status.dev_path == path
    assert holder_ids(daemon) == set() and kernel.glusterfs_stack(daemon.storage_dir) == [], "a query pins no mount"

    # gnt-instance migrate, as Ganeti 3.0 runs it for a shared-storage disk: the target closes, both open,
    # the hypervisor moves the guest, then the source *closes* (it is never shut down).
    b.BlockdevAssemble(disk, instance, True, 0)
    assert holder_ids(daemon) == {holder}
    b.BlockdevClose(instance.name, [disk])  # here: the source after the move
    assert not os.path.lexists(link)
    assert holder_ids(daemon) == set(), "the source of a migration gives its holder back"
    assert kernel.glusterfs_stack(daemon.storage_dir) == [], "and unmounts when nothing else holds the volume"
    b.BlockdevOpen(instance.name, [disk], False)  # here: the target before the move
    assert holder_ids(daemon) == {holder} and bool(kernel.glusterfs_stack(daemon.storage_dir)), "the target holds once it opens"
    b.BlockdevShutdown(disk)

    b.BlockdevRemove(disk)
    assert kernel.glusterfs_stack(daemon.storage_dir) == [] and holder_ids(daemon) == set()
    assert b.BlockdevGetdimensions([disk]) == [None], "gone: FindDevice finds nothing"
    assert holder_ids(daemon) == set() and kernel.glusterfs_stack(daemon.storage_dir) == []
    assert daemon.client().disk_info(VolumeSpec(gluster.address, 24007, "gv0").to_json(), f"ganeti/{holder}")["exists"] is False


def test_userspace_uri_rename_and_refusals(
    g: types.SimpleNamespace, gluster: glusterlab.GlusterServer, daemon: DaemonProcess, ours: Any
) -> None:
    c = g.constants
    instance_uuid = str(uuid.uuid4())
    dev = created(ours, daemon, logical_id(g, instance_uuid), 2, params(g, gluster, c.DISK_USERSPACE))
    dev.Assemble()
    assert dev.GetUserspaceAccessUri(c.HT_KVM) == f"gluster://{gluster.address}:24007/gv0/ganeti/{instance_uuid}.0"
    with pytest.raises(g.errors.BlockDeviceError, match="doesn't support Gluster userspace access"):
        dev.GetUserspaceAccessUri(c.HT_XEN_PVM)
    with pytest.raises(g.errors.BlockDeviceError, match="negative"):
        dev.Grow(-1, False, True, False)
    # Rename: refused by Ganeti's class, done here, the holder moving along with the name.
    other = str(uuid.uuid4())
    dev.Rename(logical_id(g, other))
    assert dev.dev_path == os.path.join(daemon.storage_dir, "ganeti", f"{other}.0") and os.path.getsize(dev.dev_path) == 2 * MiB
    assert holder_ids(daemon) == {f"{other}.0"}
    assert not os.path.exists(os.path.join(daemon.storage_dir, "ganeti", f"{instance_uuid}.0"))
    taken = created(ours, daemon, logical_id(g, instance_uuid), 1, params(g, gluster))
    with pytest.raises(g.errors.BlockDeviceError, match="can't rename"):
        dev.Rename(logical_id(g, instance_uuid))
    assert os.path.getsize(taken.dev_path) == 1 * MiB, "a rename never replaces a disk"
    assert dev.Remove() is True and taken.Remove() is True
    assert holder_ids(daemon) == set() and kernel.glusterfs_stack(daemon.storage_dir) == []


def run_sequence(
    cls: type, g: types.SimpleNamespace, gluster: glusterlab.GlusterServer, mountpoint: str, count: Any, create: Callable[..., Any]
) -> dict[str, Any]:
    """The call sequence Ganeti's backend makes for one disk, on one class; what an observer sees at each step."""
    seen: dict[str, Any] = {}
    uid, p = logical_id(g, str(uuid.uuid4())), params(g, gluster)
    dev = create(uid, p)
    seen["mounts_by_create"] = count()
    seen["attached"] = dev.Attach()
    dev.Assemble()
    dev.Open(force=True)
    pattern = os.urandom(4096)
    with open(dev.dev_path, "r+b") as f:
        f.write(pattern)
        os.fsync(f.fileno())
    dev.Grow(4, False, True, False)
    seen["size"] = dev.GetActualSize()
    seen["uri"] = dev.GetUserspaceAccessUri(g.constants.HT_KVM)
    try:
        dev.GetUserspaceAccessUri(g.constants.HT_XEN_PVM)
    except g.errors.BlockDeviceError as err:
        seen["xen_refused"] = str(err)
    with open(dev.dev_path, "rb") as f:
        seen["data_intact"] = f.read(len(pattern)) == pattern
    path = dev.dev_path
    dev.Close()
    dev.Shutdown()
    seen["mounted_after_shutdown"] = bool(kernel.glusterfs_stack(mountpoint))
    seen["mounts_to_shutdown"] = count()
    found = cls(uid, [], 12, p, {})  # BlockdevRemove: FindDevice, then Remove
    seen["removed"] = found.Remove()
    seen["file_left"] = os.path.exists(path)
    seen["mounted_after_remove"] = bool(kernel.glusterfs_stack(mountpoint))
    with pytest.raises(g.errors.BlockDeviceError):
        found.Rename(logical_id(g, str(uuid.uuid4())))  # the file is gone: both refuse
    return seen


def test_userspace_uri_as_ganetis_kvm_parses_it(g: types.SimpleNamespace) -> None:
    """Ganeti 3.1's kvm parses the URI (lower-case names, IPv4): a name is lower-cased, IPv6 refused with why; 3.0 takes any."""
    ipv4, name, ipv6 = (f"gluster://{h}:24007/gv0/ganeti/u.0" for h in ("10.0.0.1", "GS1.Example.test", "[fd00::1]"))
    convert = g.ours.as_ganetis_kvm_parses_it
    if g.constants.VERSION_MINOR == 0:
        assert [convert(u) for u in (ipv4, name, ipv6)] == [ipv4, name, ipv6]
        return
    from ganeti.hypervisor.hv_kvm import kvm_utils

    with pytest.raises(g.errors.HypervisorError):  # what an instance start meets without the conversion
        kvm_utils.ParseStorageUriToBlockdevParam(name)
    assert convert(ipv4) == ipv4 and convert(name) == name.lower()
    assert kvm_utils.ParseStorageUriToBlockdevParam(convert(name))["server"][0]["host"] == "gs1.example.test"
    with pytest.raises(g.errors.BlockDeviceError, match=r"\[fd00::1\].*no IPv6 address.*access=kernelspace"):
        convert(ipv6)


def test_side_by_side_with_ganetis_own_class(
    g: types.SimpleNamespace, gluster: glusterlab.GlusterServer, daemon: DaemonProcess, ours: Any, own_env: OwnEnv
) -> None:
    mine = run_sequence(
        ours, g, gluster, daemon.storage_dir, lambda: mount_attempts(daemon), lambda uid, p: created(ours, daemon, uid, 8, p)
    )
    own = g.own.GlusterStorage  # (its Create holds nothing, and its mounts are recorded in this process: not forked)
    theirs = run_sequence(own, g, gluster, own_env.mountpoint, own_env.mounts, lambda uid, p: own.Create(uid, [], 8, None, p, False, {}))
    same = ("attached", "size", "data_intact", "removed", "file_left", "mounted_after_remove", "xen_refused")
    assert {k: mine[k] for k in same} == {k: theirs[k] for k in same} == {
        "attached": True, "size": 12 * MiB, "data_intact": True, "removed": True, "file_left": False, "mounted_after_remove": False,
        "xen_refused": "Hypervisor xen-pvm doesn't support Gluster userspace access",
    }  # fmt: skip
    # The same URI but for the disk's name (each run made its own disk).
    assert mine["uri"].rsplit("/", 1)[0] == theirs["uri"].rsplit("/", 1)[0] == f"gluster://{gluster.address}:24007/gv0/ganeti"
    # Where they differ (docs/how-it-works.rst, "Where it differs from Ganeti's own class"):
    assert theirs["mounts_by_create"] == 2 and own_env.commands[1].startswith("umount"), "Ganeti's Create mounts, unmounts, mounts"
    assert mine["mounts_by_create"] == 2, "the create request's mount (let go with it), then FindDevice's look"
    assert theirs["mounted_after_shutdown"] is True, "Ganeti's Shutdown never unmounts"
    assert mine["mounted_after_shutdown"] is False
    # Ganeti's class keeps the volume mounted from its Create on; ours lets go after the create request and mounts
    # again for each look and the assemble while nothing holds it (that churn, unless an unmount grace is set).
    assert (theirs["mounts_to_shutdown"], mine["mounts_to_shutdown"]) == (2, 4)


def test_holders_are_counted_unlike_ganetis_class(
    g: types.SimpleNamespace, gluster: glusterlab.GlusterServer, daemon: DaemonProcess, ours: Any, own_env: OwnEnv
) -> None:
    """Disk A assembled and open, disk B removed: Ganeti's class unmounts under A; ours keeps A's mount."""
    outcome = {}
    for name, cls in (("ours", ours), ("own", g.own.GlusterStorage)):
        p = params(g, gluster)
        a = make(cls, ours, daemon, logical_id(g, str(uuid.uuid4())), 1, p)
        a.Assemble()
        a.Open()
        b = make(cls, ours, daemon, logical_id(g, str(uuid.uuid4())), 1, p)
        b.Assemble()
        assert b.Remove() is True
        outcome[name] = os.path.exists(a.dev_path)
        if outcome[name]:
            a.Shutdown()
            a.Remove()
        else:
            cls(a.unique_id, [], 1, p, {}).Remove()
    assert outcome == {"ours": True, "own": False}
    assert holder_ids(daemon) == set() and kernel.glusterfs_stack(daemon.storage_dir) == []


def _glusterfs_client_of(mountpoint: str) -> psutil.Process:
    return psutil.Process(kernel.fuse_client_pid(mountpoint))


def _stat_fails(path: str) -> bool:
    try:
        os.stat(path)
    except OSError:
        return True
    return False


def _attaches(cls: type, unique_id: Any, p: Any, block_device_error: type[Exception]) -> bool:
    """What Ganeti's FindDevice asks: a fresh object that attaches.

    Until the daemon's probe (every second in these tests) has remounted, a disk
    call on the dead mount fails (daemon defect: an internal error, not a
    recovery nor a storage-error ENOTCONN), so a failure here means "not yet".
    """
    try:
        return bool(cls(unique_id, [], 1, p, {}).attached)
    except block_device_error:
        return False


def test_dead_fuse_client(
    g: types.SimpleNamespace, gluster: glusterlab.GlusterServer, daemon: DaemonProcess, ours: Any, own_env: OwnEnv
) -> None:
    """After the FUSE client dies, Ganeti's class cannot attach any more; the daemon mounts afresh."""
    for cls, mountpoint in ((ours, daemon.storage_dir), (g.own.GlusterStorage, own_env.mountpoint)):
        dev = make(cls, ours, daemon, logical_id(g, str(uuid.uuid4())), 1, params(g, gluster))
        dev.Assemble()
        client = _glusterfs_client_of(mountpoint)
        client.send_signal(signal.SIGKILL)
        client.wait(10)
        if cls is ours:
            # The daemon's probe (every second here) or the next Attach finds it dead and mounts afresh.
            attached = functools.partial(_attaches, ours, dev.unique_id, dev.params, g.errors.BlockDeviceError)
            glusterlab.poll("the daemon to remount the dead mount", attached, deadline=30)
            assert os.path.getsize(dev.dev_path) == 1 * MiB
            assert _glusterfs_client_of(mountpoint).pid != client.pid
            assert metric_sum(daemon, "ganeti_gluster_dead_mount_recoveries_total") == 1
            [mount] = daemon.client().status()["mounts"]
            assert mount["state"] == "mounted" and [h["id"] for h in mount["holders"]] == [dev.holder["id"]]
            dev.Remove()
        else:
            # ENOTCONN, and nothing recovers it, once the kernel's cached attributes of the file (1 s) expire.
            glusterlab.poll("the dead mount to fail a stat", functools.partial(_stat_fails, dev.dev_path), deadline=10)
            with pytest.raises(g.errors.BlockDeviceError, match=r"should be mounted but isn't|mount failure"):
                cls(dev.unique_id, [], 1, dev.params, {})
            subprocess.run(["umount", "-l", mountpoint], check=False)


def test_storage_report(
    g: types.SimpleNamespace,
    gluster: glusterlab.GlusterServer,
    daemon: DaemonProcess,
    ours: Any,
    own_env: OwnEnv,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """list-storage for the gluster type: the volume's space where it is mounted, a clean failure elsewhere."""
    c = g.constants
    monkeypatch.setattr(g.ours.GlusterStorageUnit, "socket_path", daemon.socket)
    monkeypatch.setitem(g.container._STORAGE_TYPES, c.ST_GLUSTER, g.container._STORAGE_TYPES[c.ST_GLUSTER])
    fields = [c.SF_NAME, c.SF_SIZE, c.SF_FREE, c.SF_USED, c.SF_ALLOCATABLE]
    own_unit = g.container.GetStorage(c.ST_GLUSTER, [daemon.storage_dir])  # Ganeti's: FileStorage on the folder
    g.ours.install()
    unit = g.container.GetStorage(c.ST_GLUSTER, [daemon.storage_dir])  # as noded builds it from the master's args
    assert isinstance(unit, g.ours.GlusterStorageUnit)
    os.makedirs(daemon.storage_dir, exist_ok=True)
    with pytest.raises(g.errors.StorageError, match="not in use here"):
        unit.List(None, fields)
    root_fs = own_unit.List(None, [c.SF_SIZE])[0][0]
    st = os.statvfs(daemon.storage_dir)
    # Ganeti's class answers with the numbers of whatever file system holds the empty folder (it rounds up).
    assert abs(root_fs - st.f_blocks * st.f_frsize // MiB) <= 1, "Ganeti's reports the node's own file system when unmounted"
    dev = created(ours, daemon, logical_id(g, str(uuid.uuid4())), 1, params(g, gluster))
    dev.Assemble()  # in use on this node: the volume is mounted
    [[name, size, free, used, allocatable]] = unit.List(None, fields)
    st = os.statvfs(daemon.storage_dir)
    assert (name, size, allocatable) == (daemon.storage_dir, st.f_blocks * st.f_frsize // MiB, True)
    assert abs(free - st.f_bavail * st.f_frsize // MiB) <= 2 and used == size - free
    assert unit.List(daemon.storage_dir, [c.SF_FREE])[0][0] == free
    # Ganeti names the unit by its configured path (/var/run/ganeti/gluster); the kernel by the real one (/run/...).
    via_link = os.path.join(os.path.dirname(daemon.storage_dir) + "-via-link", os.path.basename(daemon.storage_dir))
    os.symlink(os.path.dirname(daemon.storage_dir), os.path.dirname(via_link))
    [[name, linked_size]] = g.container.GetStorage(c.ST_GLUSTER, [via_link]).List(None, [c.SF_NAME, c.SF_SIZE])
    assert (name, linked_size) == (via_link, size), "the storage dir through a symlinked parent is the mounted volume"
    with pytest.raises(g.errors.StorageError, match="Unknown field"):
        unit.List(None, ["bogus"])
    # Nothing goes to gnt-node list or the allocator: no space function for the gluster type.
    assert g.backend._STORAGE_TYPE_INFO_FN[c.ST_GLUSTER] is None
    with pytest.raises(NotImplementedError):
        g.backend._ApplyStorageInfoFunction(c.ST_GLUSTER, daemon.storage_dir, [])
    dev.Shutdown()
    dev = ours(dev.unique_id, [], 1, dev.params, {})
    assert dev.Remove() is True
    with pytest.raises(g.errors.StorageError, match="not in use here"):
        unit.List(None, fields)


def documented_shim() -> str:
    """The replacement gluster.py as the operator's instructions give it (docs/install.rst, the by-hand route)."""
    block = documented.shell_block("ganeti-shim", REPO)
    return block.split("<<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0] + "\n"


def test_documented_install_replaces_ganetis_class(g: types.SimpleNamespace, root: str) -> None:
    """The operator's step, done on a copy of Ganeti's tree: noded's modules then use our classes."""
    tree = os.path.join(root, "ganeti-tree")
    shutil.copytree(g.path, tree, symlinks=True)
    target = os.path.join(tree, "ganeti", "storage", "gluster.py")
    os.rename(target, target + ".distrib")  # dpkg-divert --rename
    with open(target, "w") as f:
        f.write(documented_shim())
    for cached in glob.glob(os.path.join(tree, "ganeti", "storage", "__pycache__", "gluster.*.pyc")):
        os.remove(cached)
    probe = textwrap.dedent(
        """
        import sys, warnings
        warnings.simplefilter("ignore")
        from ganeti import backend, constants
        from ganeti.storage import bdev, container
        print(bdev.DEV_MAP[constants.DT_GLUSTER].__module__, container.GetStorageClass(constants.ST_GLUSTER).__name__,
              backend._STORAGE_TYPE_INFO_FN[constants.ST_GLUSTER])
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([tree, REPO])}
    out = subprocess.run([sys.executable, "-c", probe], check=False, capture_output=True, text=True, env=env, cwd=root, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["glusterd_mgr.ganeti_storage", "GlusterStorageUnit", "None"]
