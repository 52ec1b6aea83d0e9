"""sd_notify(3) for ``Type=notify``: readiness, stopping, and the watchdog's pings; no-ops outside systemd."""

from __future__ import annotations

import os
import socket
from typing import Any

from twisted.application.service import Service
from twisted.internet import task
from twisted.logger import Logger

__all__ = ["Watchdog", "sd_notify"]

log = Logger()


def sd_notify(message: str) -> None:
    """Tell systemd (``Type=notify``) something; a no-op outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        try:
            s.sendto(message.encode(), address)
        except OSError as e:
            log.warn("sd_notify failed: {error}", error=e)


class Watchdog(Service):
    """WATCHDOG=1 proves the reactor turns; it is never tied to Gluster's health."""

    def __init__(self, reactor: Any) -> None:
        self._loop = task.LoopingCall(sd_notify, "WATCHDOG=1")
        self._loop.clock = reactor

    def startService(self) -> None:
        """Ping at half the interval systemd gave this process (``WATCHDOG_USEC``); none if it gave none."""
        Service.startService(self)  # explicit: twisted.application is untyped
        usec = os.environ.get("WATCHDOG_USEC")
        if usec and os.environ.get("WATCHDOG_PID", str(os.getpid())) == str(os.getpid()):
            self._loop.start(int(usec) / 2e6)

    def stopService(self) -> None:
        Service.stopService(self)  # explicit: twisted.application is untyped
        if self._loop.running:
            self._loop.stop()
