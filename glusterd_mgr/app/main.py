"""The daemon's life: settings, logging (journald priorities), the service tree on the reactor, and leaving.

``glusterd_mgr.daemon`` (the console script) and ``python3 -m glusterd_mgr`` call ``main``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO, cast

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import (
    FilteringLogObserver,
    ILogFilterPredicate,
    ILogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    globalLogBeginner,
)

from ..core.errors import MountdError
from ..core.printable import printable
from .service import Daemon
from .settings import parse_args

__all__ = ["line_observer", "main", "start_logging"]

log = Logger()


_LEVELS = {"debug": LogLevel.debug, "info": LogLevel.info, "warn": LogLevel.warn, "error": LogLevel.error}
_SYSLOG_PRIORITY = {LogLevel.debug: 7, LogLevel.info: 6, LogLevel.warn: 4, LogLevel.error: 3, LogLevel.critical: 2}


def line_observer(stream: TextIO, journald: bool) -> Callable[[dict[str, Any]], None]:
    """One line an event (a traceback a line each), under journald with a ``<N>`` priority prefix journald understands.

    Every line passes through ``printable``: a path or a process name in an exception cannot drive the
    operator's terminal (the core's own fields are escaped already, line breaks included, by the driver).
    """

    def observer(event: dict[str, Any]) -> None:
        text = formatEvent(event)
        failure = event.get("log_failure")
        if failure is not None:
            text += "\n" + failure.getTraceback()
        lines = [printable(line) for line in text.rstrip("\n").split("\n")]
        lvl = event.get("log_level", LogLevel.info)
        where = event.get("log_namespace", "?")
        if journald:
            prefix = f"<{_SYSLOG_PRIORITY.get(lvl, 6)}>"
            out = "\n".join(f"{prefix}{where}: {line}" for line in lines)
        else:
            out = f"{lvl.name.upper():5} {where}: " + "\n".join(lines)
        stream.write(out + "\n")
        stream.flush()

    return observer


def start_logging(level: str) -> None:
    """The daemon's log on stderr, from ``level`` up."""
    observer = line_observer(sys.stderr, "JOURNAL_STREAM" in os.environ)
    predicate = LogLevelFilterPredicate(defaultLogLevel=_LEVELS[level])
    filtered = FilteringLogObserver(cast(ILogObserver, observer), [cast(ILogFilterPredicate, predicate)])
    globalLogBeginner.beginLoggingTo([cast(ILogObserver, filtered)], redirectStandardIO=False)


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_args(argv)
    start_logging(settings.log_level)
    from twisted.internet import reactor as _reactor

    reactor: Any = _reactor
    daemon = Daemon(reactor, settings)
    outcome = {"code": 0}

    def started_failed(failure: Any) -> None:
        value = failure.value
        message = value.message if isinstance(value, MountdError) else str(value)
        if not isinstance(value, (MountdError, OSError, SystemExit)):
            log.failure("cannot start", failure)
        log.critical("cannot start: {message}", message=message)
        outcome["code"] = 1
        reactor.stop()

    def startup() -> Deferred[None]:
        return ensureDeferred(daemon.start()).addErrback(started_failed)

    reactor.callWhenRunning(startup)
    reactor.addSystemEventTrigger("before", "shutdown", lambda: ensureDeferred(daemon.stop()))
    reactor.run()
    sys.stderr.flush()
    # A thread stuck in a frozen FUSE call cannot be joined; the journal is closed, so leave now.
    os._exit(outcome["code"])
