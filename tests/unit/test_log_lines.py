"""The daemon's log lines: what others named is shown escaped, a traceback keeps its lines, journald gets priorities."""

from __future__ import annotations

from io import StringIO

from twisted.logger import LogLevel
from twisted.python.failure import Failure

from glusterd_mgr.app.main import line_observer


def test_a_line_shows_control_characters_escaped_in_both_forms() -> None:
    event = {"log_format": "cannot open {path}", "path": "/mnt/\x1b[2J\u202e", "log_level": LogLevel.warn, "log_namespace": "ns"}
    plain, journal = StringIO(), StringIO()
    line_observer(plain, journald=False)(event)
    line_observer(journal, journald=True)(event)
    assert plain.getvalue() == "WARN  ns: cannot open /mnt/\\x1b[2J\\u202e\n"
    assert journal.getvalue() == "<4>ns: cannot open /mnt/\\x1b[2J\\u202e\n"


def test_a_traceback_keeps_its_lines_each_with_the_journald_prefix() -> None:
    try:
        raise OSError("no such file: /mnt/\x1b]0;x\x07")
    except OSError:
        failure = Failure()
    out = StringIO()
    line_observer(out, journald=True)({"log_format": "failed", "log_failure": failure, "log_level": LogLevel.error, "log_namespace": "ns"})
    lines = out.getvalue().splitlines()
    assert len(lines) > 2 and all(line.startswith("<3>ns: ") and line.isprintable() for line in lines)
    assert lines[-1] == "<3>ns: builtins.OSError: no such file: /mnt/\\x1b]0;x\\x07"
