"""Strings others chose (process names, file names, client logs, holder ids), made safe to show.

A terminal obeys the control characters in what it prints (``ESC ]0;`` retitles the window, ``ESC [2J``
clears it, ``CR`` hides what came before, U+202E turns the rest right to left), and a line break in a log
field forges a log line.  Whatever shows such a string to a person passes it through ``printable``.
"""

from __future__ import annotations

__all__ = ["printable"]


def printable(text: str) -> str:
    """``text`` with each character that is not printable escaped as Python writes it (``\\x1b``, ``\\n``, ``\\u202e``).

    Printable unicode stays as it is, and so do backslashes: showing a string twice changes nothing.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
