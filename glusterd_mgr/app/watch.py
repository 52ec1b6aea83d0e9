"""Follows Ganeti's configuration files with inotify, so a changed whitelist or storage dir needs no restart."""

from __future__ import annotations

import os
from typing import Any

from twisted.application.service import Service
from twisted.logger import Logger
from twisted.python.filepath import FilePath

from ..core.machine import Core
from .settings import Settings, current_storage_dir, current_whitelist

__all__ = ["ConfigWatcher"]

log = Logger()


class ConfigWatcher(Service):
    """Reloads the whitelist and the ssconf storage dir when Ganeti rewrites them (inotify on their folders)."""

    def __init__(self, reactor: Any, settings: Settings, core: Core) -> None:
        self.reactor = reactor
        self.settings = settings
        self.core = core
        self.notifier: Any = None
        watched = [settings.file_storage_paths]
        if not settings.storage_dir:
            watched.append(settings.ssconf_storage_dir)
        self.watched = watched
        self.names = {os.path.basename(p) for p in watched}

    def startService(self) -> None:
        from twisted.internet import inotify

        Service.startService(self)  # explicit: twisted.application is untyped
        self.notifier = inotify.INotify(self.reactor)
        self.notifier.startReading()
        mask = inotify.IN_CLOSE_WRITE | inotify.IN_MOVED_TO | inotify.IN_CREATE | inotify.IN_DELETE | inotify.IN_MOVED_FROM
        for folder in sorted({os.path.dirname(os.path.abspath(p)) for p in self.watched}):
            if os.path.isdir(folder):
                self.notifier.watch(FilePath(folder), mask, callbacks=[self._changed])
            else:
                log.warn("cannot watch {folder} (missing): changes there need a restart", folder=folder)
        self.reload()  # whatever changed between the first read and the watch

    def _changed(self, _watch: Any, path: FilePath[bytes], _mask: int) -> None:
        if os.fsdecode(path.basename()) in self.names:
            self.reload()

    def reload(self) -> None:
        whitelist, storage_dir = current_whitelist(self.settings), current_storage_dir(self.settings)
        if self.core.reconfigure(whitelist, storage_dir):
            log.info(
                "configuration reloaded: storage dir {storage_dir}, whitelist {whitelist}", storage_dir=storage_dir, whitelist=whitelist
            )

    def stopService(self) -> None:
        Service.stopService(self)  # explicit: twisted.application is untyped
        if self.notifier is not None:
            self.notifier.loseConnection()
