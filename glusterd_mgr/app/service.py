"""The service: its parts started in order (node, RPC, sockets, readiness) and stopped in reverse, mounts left in place."""

from __future__ import annotations

import grp
import os
import socket
from typing import Any

from twisted.application.service import MultiService
from twisted.logger import Logger

from .. import __version__
from ..shell.descriptors import raise_limit
from ..shell.node import Node, NodeOptions
from .metrics import Metrics, MetricsResource
from .metrics_port import metrics_port
from .notify import Watchdog, sd_notify
from .rpc import CappedRequest, Dispatcher, JsonRpcResource, RpcStats
from .schema import load as load_schemas
from .schema import method_names
from .settings import Settings, engine_config
from .tree import Draining, Listener, NodeService, Sequence, adopt
from .watch import ConfigWatcher
from .web import QuietSite, site

__all__ = ["Daemon"]

log = Logger()


def _prepare_socket(path: str, group: str = "") -> None:
    """Create the socket's folder (root-only, or searchable by ``group``); refuse to start over a live daemon."""
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        os.makedirs(folder, mode=0o700)
    if group:
        os.chown(folder, 0, grp.getgrnam(group).gr_gid)
        os.chmod(folder, 0o710)
    if os.path.exists(path):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)
            else:
                raise SystemExit(f"ganeti-gluster-mountd: another daemon is already listening on {path}")


class Daemon(Sequence):
    """The service tree: the node (its configuration followed from before it restores anything), then the front
    door (draining, the listeners, the watchdog) once the held mounts are restored; stopped in reverse, mounts left."""

    def __init__(self, reactor: Any, settings: Settings) -> None:
        super().__init__()
        self.reactor = reactor
        self.settings = settings

    async def start(self) -> None:
        s = self.settings
        _prepare_socket(s.socket, s.socket_group)  # before anything else: a live daemon's state is not ours to touch
        before, after = raise_limit()
        if after != before:
            log.info("raised the open-file limit from {before} to {after}", before=before, after=after)
        node = Node(
            self.reactor,
            engine_config(s),
            NodeOptions(state_dir=s.state_dir, fs_threads=s.fs_threads, probe_interval=s.probe_interval),
        )
        engine = node.engine
        back, front = Sequence(), Sequence()
        restoring = NodeService(node)
        # Watch the configuration before anything can be asked of us, so no change is missed.
        adopt(back, ConfigWatcher(self.reactor, s, engine.core), restoring)
        adopt(self, back)
        MultiService.startService(self)  # the node's part now; the front door once the mounts are restored
        await restoring.restored
        schemas = load_schemas()
        metrics = Metrics(engine, node.fs_pool, method_names(schemas))
        rpc = JsonRpcResource(Dispatcher(schemas, engine.call, self.reactor, RpcStats(metrics.observe_rpc)))
        rpc_site = site({b"rpc": rpc, b"metrics": MetricsResource(metrics)})
        rpc_site.requestFactory = CappedRequest
        adopt(front, Draining(rpc, self.reactor), Listener(lambda: _listen_unix(self.reactor, s, rpc_site)))
        if s.metrics_port:
            metrics_site = metrics_port(MetricsResource(metrics), self.reactor)
            adopt(front, Listener(lambda: self.reactor.listenTCP(s.metrics_port, metrics_site, interface=s.metrics_address)))
        adopt(front, Watchdog(self.reactor))
        adopt(self, front)  # started at once: the daemon is running
        sd_notify("READY=1\nSTATUS=serving on " + s.socket)
        log.info(
            "ganeti-gluster-mountd {version} serving on {socket}; storage dir {storage_dir}; {holders} holder(s) restored",
            version=__version__,
            socket=s.socket,
            storage_dir=engine.config.storage_dir,
            holders=sum(len(v.holders) for v in engine.volumes.values()),
        )

    async def stop(self) -> None:
        """Stop accepting, let the calls under way finish, keep every mount in place."""
        sd_notify("STOPPING=1")
        await Sequence.stopService(self)
        log.info("stopped; mounts left in place for the next start")


def _listen_unix(reactor: Any, s: Settings, site: QuietSite) -> Any:
    """The RPC socket, created with its final mode (no moment when others could connect) and group."""
    old_umask = os.umask(0o177)
    try:
        port = reactor.listenUNIX(s.socket, site, mode=0o660 if s.socket_group else 0o600)
    finally:
        os.umask(old_umask)
    if s.socket_group:
        os.chown(s.socket, 0, grp.getgrnam(s.socket_group).gr_gid)
    return port
