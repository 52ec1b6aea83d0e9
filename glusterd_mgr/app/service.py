"""The service: its parts started in order (node, RPC, sockets, readiness) and stopped in reverse, mounts left in place."""

from __future__ import annotations

import grp
import os
import socket
from typing import Any, cast

from twisted.internet import task
from twisted.logger import Logger
from twisted.web.resource import IResource, Resource
from twisted.web.server import Site

from .. import __version__
from ..shell.node import Node, NodeOptions
from .metrics import Metrics, MetricsResource
from .notify import Watchdog, sd_notify
from .rpc import CappedRequest, Dispatcher, JsonRpcResource, RpcStats
from .schema import load as load_schemas
from .schema import method_names
from .settings import Settings, engine_config
from .watch import ConfigWatcher

__all__ = ["Daemon", "QuietSite"]

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


class QuietSite(Site):
    """No access log: the RPC metrics count every call, and journald need not hold each scrape.

    Nor form parsing: JSON-RPC never posts forms, and twisted.web's Content-Type parse alone
    cost more than validating the params.
    """

    noisy = False

    def __init__(self, resource: Any) -> None:
        try:
            super().__init__(resource, parsePOSTFormSubmission=False)  # type: ignore[no-untyped-call]
        except TypeError:  # Twisted before the option: it parses forms, which costs time only
            super().__init__(resource)  # type: ignore[no-untyped-call]

    def log(self, request: Any) -> None:
        pass


class Daemon:
    def __init__(self, reactor: Any, settings: Settings) -> None:
        self.reactor = reactor
        self.settings = settings
        self.ports: list[Any] = []
        self.node: Node | None = None
        self.rpc: JsonRpcResource | None = None
        self.watcher: ConfigWatcher | None = None
        self.watchdog = Watchdog(reactor)

    async def start(self) -> None:
        s = self.settings
        _prepare_socket(s.socket, s.socket_group)  # before anything else: a live daemon's state is not ours to touch
        self.node = Node(
            self.reactor,
            engine_config(s),
            NodeOptions(state_dir=s.state_dir, fs_threads=s.fs_threads, probe_interval=s.probe_interval),
        )
        engine = self.node.engine
        schemas = load_schemas()
        metrics = Metrics(engine, self.node.fs_pool, method_names(schemas))
        dispatcher = Dispatcher(schemas, engine.call, self.reactor, RpcStats(metrics.observe_rpc))
        self.rpc = JsonRpcResource(dispatcher)
        # Watch the configuration before anything can be asked of us, so no change is missed.
        self.watcher = ConfigWatcher(self.reactor, s, engine)
        await self.node.start()
        root = Resource()
        root.putChild(b"rpc", cast(IResource, self.rpc))
        root.putChild(b"metrics", cast(IResource, MetricsResource(metrics)))
        site = QuietSite(root)
        site.requestFactory = CappedRequest
        site.displayTracebacks = False
        old_umask = os.umask(0o177)
        try:
            mode = 0o660 if s.socket_group else 0o600
            self.ports.append(self.reactor.listenUNIX(s.socket, site, mode=mode))
        finally:
            os.umask(old_umask)
        if s.socket_group:
            os.chown(s.socket, 0, grp.getgrnam(s.socket_group).gr_gid)
        if s.metrics_port:
            metrics_root = Resource()
            metrics_root.putChild(b"metrics", cast(IResource, MetricsResource(metrics)))
            metrics_site = QuietSite(metrics_root)
            metrics_site.displayTracebacks = False
            self.ports.append(self.reactor.listenTCP(s.metrics_port, metrics_site, interface=s.metrics_address))
        self.watchdog.start()
        sd_notify("READY=1\nSTATUS=serving on " + s.socket)
        log.info(
            "ganeti-gluster-mountd {version} serving on {socket}; storage dir {storage_dir}; {holders} holder(s) restored",
            version=__version__,
            socket=s.socket,
            storage_dir=engine.config.storage_dir,
            holders=sum(len(v.holders) for v in engine.volumes.values()),
        )

    async def stop(self) -> None:
        """Stop accepting, let in-flight calls finish, keep every mount in place."""
        sd_notify("STOPPING=1")
        for port in self.ports:
            await port.stopListening()
        if self.rpc is not None:
            deadline = self.reactor.seconds() + 30
            while self.rpc.in_flight and self.reactor.seconds() < deadline:
                await task.deferLater(self.reactor, 0.05, lambda: None)
        if self.watcher is not None:
            self.watcher.stop()
        self.watchdog.stop()
        if self.node is not None:
            self.node.stop()
        log.info("stopped; mounts left in place for the next start")
