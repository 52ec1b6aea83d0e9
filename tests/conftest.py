"""Shared fixtures: a failing test on logged errors, the real Gluster lab, and engine nodes."""

from __future__ import annotations

import gc
import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from twisted.logger import ILogObserver, globalLogPublisher

from glusterd_mgr.core.mounts import UnmountMode
from glusterd_mgr.core.volume import VolumeSpec
from glusterd_mgr.shell.driver import EngineConfig
from glusterd_mgr.shell.node import Node, NodeOptions

from .support import glusterlab
from .support.daemon_proc import DaemonProcess


@pytest.fixture(autouse=True)
def fail_on_logged_errors() -> Iterator[list[dict[str, Any]]]:
    """An unhandled error in a Deferred is only logged; make it fail the test."""
    errors: list[dict[str, Any]] = []

    def observer(event: dict[str, Any]) -> None:
        if event.get("log_failure") is not None or event.get("isError"):
            errors.append(event)

    globalLogPublisher.addObserver(cast(ILogObserver, observer))
    yield errors
    gc.collect()
    globalLogPublisher.removeObserver(cast(ILogObserver, observer))
    if errors:
        failure = errors[0].get("log_failure")
        detail = failure.getTraceback() if failure is not None else str(errors[0])
        pytest.fail(f"{len(errors)} error(s) were logged; first:\n{detail}")


def _gluster_available() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if not os.path.exists("/dev/fuse"):
        return "needs /dev/fuse"
    if shutil.which("glusterd") is None or shutil.which("mount.glusterfs") is None:
        return "needs glusterfs-server and glusterfs-client"
    return None


@pytest.fixture(scope="session")
def lab_base() -> str:
    return glusterlab.DEFAULT_BASE


@pytest.fixture(scope="session")
def gluster(lab_base: str) -> Iterator[glusterlab.GlusterServer]:
    """A real glusterd in a network namespace with a started volume ``gv0``."""
    why = _gluster_available()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"the real Gluster server cannot run here: {why}")
        pytest.skip(why)
    glusterlab.cleanup_leftovers(lab_base)
    server = glusterlab.GlusterServer(base=lab_base).start()
    server.create_volume("gv0")
    yield server
    glusterlab.cleanup_leftovers(lab_base)


@pytest.fixture
def volume(gluster: glusterlab.GlusterServer) -> VolumeSpec:
    return VolumeSpec(host=gluster.address, port=24007, volume="gv0")


class NodeFactory:
    """Builds engine nodes over one test's directories; stops them and unmounts at the end."""

    def __init__(self, reactor: Any, root: str) -> None:
        self.reactor = reactor
        self.root = root
        self.storage_dir = os.path.join(root, "gluster")
        self.state_dir = os.path.join(root, "state")
        self.whitelist_file = os.path.join(root, "file-storage-paths")
        self.log_dir = os.path.join(root, "log")
        os.makedirs(self.log_dir, exist_ok=True)
        with open(self.whitelist_file, "w") as f:
            f.write(f"# test whitelist\n{root}\n")
        self.nodes: list[Node] = []

    def config(self, **overrides: Any) -> EngineConfig:
        values: dict[str, Any] = dict(
            storage_dir=self.storage_dir,
            whitelist=[self.root],
            whitelist_file=self.whitelist_file,
            log_dir=self.log_dir,
            mount_timeout=20.0,
            fs_timeout=5.0,
            probe_timeout=2.0,
            unmount_mode=UnmountMode.PLAIN,
        )
        values.update(overrides)
        return EngineConfig(**values)

    def node(self, boot_id_path: str | None = None, state_dir: str | None = None, **overrides: Any) -> Node:
        """A node on this test's folders; a second live node needs a ``state_dir`` of its own."""
        options = NodeOptions(state_dir=state_dir or self.state_dir, probe_interval=3600)
        if boot_id_path:
            options.boot_id_path = boot_id_path
        node = Node(self.reactor, self.config(**overrides), options)
        self.nodes.append(node)
        return node

    def stop(self, node: Node) -> None:
        if node in self.nodes:
            self.nodes.remove(node)
            node.stop()

    def close(self) -> None:
        for node in list(self.nodes):
            self.stop(node)
        glusterlab.detach_under(self.root)


@pytest.fixture
def nodes(gluster: glusterlab.GlusterServer, lab_base: str) -> Iterator[NodeFactory]:
    from twisted.internet import reactor

    with glusterlab.scratch(lab_base, "t") as root:
        factory = NodeFactory(reactor, root)
        yield factory
        factory.close()


@pytest.fixture
def daemon_root(gluster: glusterlab.GlusterServer, lab_base: str) -> Iterator[str]:
    """This test's folder under the lab base; its mounts are detached and it goes at the end."""
    with glusterlab.scratch(lab_base, "d") as root:
        yield root


@pytest.fixture
def make_daemon(daemon_root: str) -> Iterator[Callable[..., DaemonProcess]]:
    """Start a real daemon process in this test's folder (extra flags allowed); killed, and its log shown, at the end."""
    started: list[DaemonProcess] = []

    def make(*extra: str, root: str | None = None, start: bool = True, env: dict[str, str] | None = None) -> DaemonProcess:
        d = DaemonProcess(root or daemon_root, extra=list(extra), env=dict(env or {}))
        started.append(d)
        return d.start() if start else d

    yield make
    for d in started:
        d.kill()
        if os.path.exists(d.log_path):
            print(f"--- daemon log {d.root} (tail) ---\n{d.log()}")


@pytest.fixture
def daemon(make_daemon: Callable[..., DaemonProcess]) -> DaemonProcess:
    """The one daemon of a test, with the default flags."""
    return make_daemon()
