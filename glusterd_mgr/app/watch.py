"""Follows Ganeti's configuration files with inotify, so a changed whitelist or storage dir needs no restart."""

from __future__ import annotations

import os
from typing import Any

from twisted.logger import Logger
from twisted.python.filepath import FilePath

from ..shell.driver import Engine
from .settings import Settings, current_storage_dir, current_whitelist

__all__ = ["ConfigWatcher"]

log = Logger()


class ConfigWatcher:
    """Reloads the whitelist and the ssconf storage dir when Ganeti rewrites them (inotify on their folders)."""

    def __init__(self, reactor: Any, settings: Settings, engine: Engine) -> None:
        from twisted.internet import inotify

        self.settings = settings
        self.engine = engine
        self.notifier = inotify.INotify(reactor)
        self.notifier.startReading()
        watched = [settings.file_storage_paths]
        if not settings.storage_dir:
            watched.append(settings.ssconf_storage_dir)
        self.names = {os.path.basename(p) for p in watched}
        mask = inotify.IN_CLOSE_WRITE | inotify.IN_MOVED_TO | inotify.IN_CREATE | inotify.IN_DELETE | inotify.IN_MOVED_FROM
        for folder in sorted({os.path.dirname(os.path.abspath(p)) for p in watched}):
            if os.path.isdir(folder):
                self.notifier.watch(FilePath(folder), mask, callbacks=[self._changed])
            else:
                log.warn("cannot watch {folder} (missing): changes there need a restart", folder=folder)
        self.reload()  # whatever changed between the first read and the watch

    def _changed(self, _watch: Any, path: FilePath[bytes], _mask: int) -> None:
        if os.fsdecode(path.basename()) in self.names:
            self.reload()

    def reload(self) -> None:
        config = self.engine.config
        whitelist, storage_dir = current_whitelist(self.settings), current_storage_dir(self.settings)
        if whitelist != config.whitelist or storage_dir != config.storage_dir:
            config.whitelist, config.storage_dir = whitelist, storage_dir
            log.info(
                "configuration reloaded: storage dir {storage_dir}, whitelist {whitelist}", storage_dir=storage_dir, whitelist=whitelist
            )

    def stop(self) -> None:
        self.notifier.loseConnection()
