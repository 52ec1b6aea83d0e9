"""``printable``: control characters escaped, printable unicode kept, and showing twice the same as once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from glusterd_mgr.core.printable import printable


def test_control_characters_are_escaped_as_python_writes_them() -> None:
    assert printable("\x1b[2J\x07\r\n\t\x00\x7f\x85") == "\\x1b[2J\\x07\\r\\n\\t\\x00\\x7f\\x85"
    assert printable("\u202eevil\u2028") == "\\u202eevil\\u2028"
    assert printable("\udcff") == "\\udcff", "a byte that was not UTF-8 (surrogateescape)"


def test_printable_unicode_and_backslashes_stay() -> None:
    for text in ("qemu-system-x86", "/srv/ganeti/Ünïcødé 日本 😀", "a\\x1b", ""):
        assert printable(text) == text


@given(st.text())
def test_the_result_is_printable_and_showing_it_again_changes_nothing(text: str) -> None:
    shown = printable(text)
    assert shown.isprintable() and printable(shown) == shown
