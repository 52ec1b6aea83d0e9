"""Pure tests of the mountinfo parser: fixture files (real-looking kernel texts), escapes, properties."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glusterd_mgr.core.mountinfo import (
    DELETED_SUFFIX,
    MountinfoError,
    MountRecord,
    count_at,
    escape,
    parse,
    parse_line,
    stack_at,
    stack_in,
    unescape,
)

from .support.compat import characters

FIXTURES = Path(__file__).parent / "fixtures" / "mountinfo"
GLUSTER = "/run/ganeti/gluster"
FUSE_OPTS = ("rw", "user_id=0", "group_id=0", "default_permissions", "allow_other", "max_read=131072")


def load(name: str) -> list[MountRecord]:
    return parse((FIXTURES / name).read_text(encoding="utf-8"))


# -- fixture files ---------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What a fixture must parse to: record count, then checks on the stack at ``path``."""

    records: int
    path: str
    stack_sources: tuple[str, ...]
    top_fstype: str
    top_mountpoint: str
    top_optional: tuple[str, ...] = ()
    top_super_options: tuple[str, ...] = FUSE_OPTS
    deleted: bool = False
    extra: dict[str, str] = field(default_factory=dict)


EXPECTED: dict[str, Expect] = {
    "plain_glusterfs.txt": Expect(8, GLUSTER, ("10.0.0.2:/gv0",), "fuse.glusterfs", GLUSTER, ("shared:70",)),
    "stacked.txt": Expect(
        7,
        GLUSTER,
        ("gs1:/gv0", "tmpfs", "gs2:/gv1"),
        "fuse.glusterfs",
        GLUSTER,
        ("shared:74",),
    ),
    "deleted.txt": Expect(3, GLUSTER, ("10.0.0.2:/gv0",), "fuse.glusterfs", GLUSTER + DELETED_SUFFIX, ("shared:80",), deleted=True),
    "escapes.txt": Expect(6, "/srv/my gluster", ("10.0.0.2:/gv0",), "fuse.glusterfs", "/srv/my gluster", ("shared:90",)),
    "source_host_slash_vol.txt": Expect(1, GLUSTER, ("gs1.example.org:/gv0",), "fuse.glusterfs", GLUSTER, ("shared:100",)),
    "source_host_vol.txt": Expect(1, GLUSTER, ("gs1:gv0",), "fuse.glusterfs", GLUSTER, ("shared:100",)),
    "source_trailing_slash.txt": Expect(1, GLUSTER, ("gs1:/gv0/",), "fuse.glusterfs", GLUSTER, ("shared:100",)),
    "source_rdma.txt": Expect(1, GLUSTER, ("gs1:/gv0.rdma",), "fuse.glusterfs", GLUSTER, ("shared:100",)),
    "source_tcp.txt": Expect(1, GLUSTER, ("10.0.0.2:/gv0.tcp",), "fuse.glusterfs", GLUSTER, ("shared:100",)),
    "source_ipv6_brackets.txt": Expect(1, GLUSTER, ("[fe80::1]:/gv0",), "fuse.glusterfs", GLUSTER, ("shared:100",)),
    "source_ipv6_bare.txt": Expect(1, GLUSTER, ("::1:/gv0",), "fuse.glusterfs", GLUSTER, ("shared:100",)),
    "optional_fields.txt": Expect(5, GLUSTER, ("gs1:/gv0",), "fuse.glusterfs", GLUSTER, ("shared:12", "master:3")),
    "empty_super_options.txt": Expect(
        3, "/mnt/nosuper2", ("gs1:/gv0",), "fuse.glusterfs", "/mnt/nosuper2", ("shared:5",), top_super_options=()
    ),
}


def test_every_fixture_has_expectations() -> None:
    on_disk = {p.name for p in FIXTURES.glob("*.txt")}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture(name: str) -> None:
    want = EXPECTED[name]
    records = load(name)
    assert len(records) == want.records
    stack = stack_at(records, want.path)
    assert tuple(r.source for r in stack) == want.stack_sources
    assert count_at(records, want.path) == len(want.stack_sources)
    top = stack[-1]
    assert top.fstype == want.top_fstype
    assert top.is_glusterfs == (want.top_fstype == "fuse.glusterfs")
    assert top.mountpoint == want.top_mountpoint
    assert top.path == want.path
    assert top.deleted is want.deleted
    assert top.optional == want.top_optional
    assert top.super_options == want.top_super_options
    assert top.options == ("rw", "relatime")
    assert top.root == "/"


def test_plain_fixture_all_fields() -> None:
    records = load("plain_glusterfs.txt")
    assert records[-1] == MountRecord(
        mount_id=120,
        parent_id=27,
        major=0,
        minor=52,
        root="/",
        mountpoint=GLUSTER,
        options=("rw", "relatime"),
        optional=("shared:70",),
        fstype="fuse.glusterfs",
        source="10.0.0.2:/gv0",
        super_options=FUSE_OPTS,
    )
    assert records[0].major == 254 and records[0].minor == 1 and records[0].mountpoint == "/"
    assert [r.mount_id for r in records if r.is_glusterfs] == [120]
    assert records[3].super_options == ("rw", "size=4010256k", "nr_inodes=1002564", "mode=755", "inode64")


def test_stacked_fixture_order_and_neighbours() -> None:
    records = load("stacked.txt")
    stack = stack_at(records, GLUSTER)
    assert [r.mount_id for r in stack] == [120, 125, 131]
    assert stack[-1].parent_id == 125 and stack[1].parent_id == 120
    # neither a sibling sharing a name prefix nor a mount below the path is part of the stack
    assert count_at(records, GLUSTER + "2") == 1
    assert count_at(records, GLUSTER + "/ganeti") == 1
    assert count_at(records, GLUSTER + "/") == 0
    assert count_at(records, "/nowhere") == 0
    assert stack_at(records, "/nowhere") == []


def test_deleted_fixture() -> None:
    (top,) = stack_at(load("deleted.txt"), GLUSTER)
    assert top.mountpoint == "/run/ganeti/gluster (deleted)"
    assert top.deleted
    assert top.path == GLUSTER
    assert stack_at(load("deleted.txt"), GLUSTER + DELETED_SUFFIX) == []


def test_escapes_fixture() -> None:
    by_id = {r.mount_id: r for r in load("escapes.txt")}
    assert by_id[150].mountpoint == "/srv/my gluster"
    assert by_id[151].mountpoint == "/srv/tab\tdir"
    assert by_id[151].source == "my tmp\tfs"
    assert by_id[152].mountpoint == "/srv/new\nline"
    assert by_id[152].source == "line\nbreak"
    assert by_id[153].mountpoint == "/srv/back\\slash"
    assert by_id[153].root == "/sub\\dir"
    assert by_id[153].source == "back\\slash"
    # an escaped backslash followed by digits is one backslash, not a second escape
    assert by_id[154].mountpoint == "/srv/\\040literal"
    assert by_id[154].source == "\\011"
    assert count_at(list(by_id.values()), "/srv/my gluster") == 1


def test_optional_fields_fixture() -> None:
    by_path = {r.path: r for r in load("optional_fields.txt")}
    assert by_path[GLUSTER].optional == ("shared:12", "master:3")
    assert by_path["/mnt/slave"].optional == ("master:1", "propagate_from:2")
    assert by_path["/mnt/unbindable"].optional == ("unbindable",)
    assert by_path["/mnt/private"].optional == ()
    assert by_path["/mnt/private"].fstype == "tmpfs" and by_path["/mnt/private"].super_options == ("rw", "inode64")


def test_empty_super_options_fixture() -> None:
    by_path = {r.path: r for r in load("empty_super_options.txt")}
    assert by_path["/mnt/nosuper"].super_options == ()
    assert by_path["/mnt/nosuper"].source == "tmpfs"
    assert by_path["/mnt/nosuper2"].super_options == ()
    assert by_path["/mnt/nosuper2"].source == "gs1:/gv0"


# -- escapes ---------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, escaped",
    [
        ("plain", "plain"),
        ("a b", "a\\040b"),
        ("a\tb", "a\\011b"),
        ("a\nb", "a\\012b"),
        ("a\\b", "a\\134b"),
        ("x (deleted)", "x\\040(deleted)"),
        ("\\040", "\\134040"),
        ("", ""),
    ],
)
def test_escape_table(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped
    assert unescape(escaped) == raw


@pytest.mark.parametrize(
    "field, want",
    [
        ("\\101", "A"),  # any octal escape, not only the four the kernel writes
        ("\\04", "\\04"),  # too short: left alone
        ("\\089", "\\089"),  # not octal: left alone
        ("\\0401", " 1"),
        ("trailing\\", "trailing\\"),
    ],
)
def test_unescape_edge_cases(field: str, want: str) -> None:
    assert unescape(field) == want


@given(st.text(characters(codec=None, exclude_categories=())))
def test_unescape_inverts_escape(s: str) -> None:
    escaped = escape(s)
    assert unescape(escaped) == s
    assert not any(c in escaped for c in " \t\n")


# -- malformed lines -------------------------------------------------------

GOOD = "120 27 0:52 / /run/ganeti/gluster rw,relatime shared:70 - fuse.glusterfs gs1:/gv0 rw"


@pytest.mark.parametrize(
    "line",
    [
        "",
        "garbage",
        "120 27 0:52 / /run/ganeti/gluster rw,relatime shared:70 fuse.glusterfs gs1:/gv0 rw",  # no separator
        "120 27 0:52 / /run/ganeti/gluster rw,relatime shared:70 - fuse.glusterfs",  # no source
        "120 27 0:52 / /run/ganeti/gluster rw,relatime -",  # nothing after the separator
        "120 27 0:52 / /mnt - tmpfs tmpfs rw",  # no options field before the separator
        "120 27 0:52 /mnt rw - tmpfs tmpfs rw",  # no root field
        "x 27 0:52 / /mnt rw - tmpfs tmpfs rw",
        "120 y 0:52 / /mnt rw - tmpfs tmpfs rw",
        "120 27 052 / /mnt rw - tmpfs tmpfs rw",
        "120 27 0:52:1 / /mnt rw - tmpfs tmpfs rw",
        "120 27 a:b / /mnt rw - tmpfs tmpfs rw",
    ],
)
def test_malformed_lines_raise(line: str) -> None:
    with pytest.raises(MountinfoError):
        parse_line(line)
    if line:
        with pytest.raises(MountinfoError):
            parse(GOOD + "\n" + line + "\n")


def test_mountinfo_error_is_value_error() -> None:
    assert issubclass(MountinfoError, ValueError)


def test_parse_skips_blank_lines_and_keeps_order() -> None:
    text = "\n" + GOOD + "\n\n" + GOOD.replace("120 27", "121 120") + "\n   \n"
    records = parse(text)
    assert [r.mount_id for r in records] == [120, 121]


@pytest.mark.parametrize("odd", ["\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"])
def test_parse_splits_records_only_at_newline(odd: str) -> None:
    """The kernel escapes only space, tab, newline and backslash: other line breaks stay inside a path."""
    line = f"150 22 0:61 / /srv/a{odd}b rw,relatime - fuse.glusterfs gs1:/gv0 rw"
    (record,) = parse(GOOD + "\n" + line + "\n")[1:]
    assert record.mountpoint == f"/srv/a{odd}b"


# -- round trip of random records -------------------------------------------

any_text = st.text(characters(codec=None, exclude_categories=()), max_size=30)
token = st.text(characters(exclude_characters=" \t\n,"), min_size=1, max_size=12)
optional_field = st.one_of(
    st.builds(lambda tag, n: f"{tag}:{n}", st.sampled_from(["shared", "master", "propagate_from"]), st.integers(1, 10**6)),
    st.just("unbindable"),
)
records = st.builds(
    MountRecord,
    mount_id=st.integers(0, 2**31),
    parent_id=st.integers(0, 2**31),
    major=st.integers(0, 4095),
    minor=st.integers(0, 2**20),
    root=any_text,
    mountpoint=any_text,
    options=st.lists(token, min_size=1, max_size=4).map(tuple),
    optional=st.lists(optional_field, max_size=3).map(tuple),
    fstype=any_text,
    source=any_text,
    super_options=st.lists(token, max_size=4).map(tuple),
)


def render(r: MountRecord) -> str:
    """Write a record the way the kernel does."""
    fields = [
        str(r.mount_id),
        str(r.parent_id),
        f"{r.major}:{r.minor}",
        escape(r.root),
        escape(r.mountpoint),
        ",".join(r.options),
        *r.optional,
        "-",
        escape(r.fstype),
        escape(r.source),
        ",".join(r.super_options),
    ]
    return " ".join(fields) + "\n"


@given(records)
def test_parse_line_round_trips_every_field(record: MountRecord) -> None:
    assert parse_line(render(record)) == record


@settings(max_examples=50)
@given(st.lists(records, max_size=6))
def test_parse_round_trips_a_whole_table(table: list[MountRecord]) -> None:
    text = "".join(render(r) for r in table)
    parsed = parse(text)
    assert parsed == table
    for r in table:
        assert stack_at(parsed, r.path) == [x for x in table if x.path == r.path]
        assert count_at(parsed, r.path) == sum(x.path == r.path for x in table)


@settings(max_examples=200)
@given(st.lists(records, max_size=8), st.data())
def test_stack_in_agrees_with_a_full_parse(table: list[MountRecord], data: st.DataObject) -> None:
    """The engine's fast lookup finds exactly what parsing everything would."""
    text = "".join(render(r) for r in table)
    paths = [r.path for r in table] + [r.root for r in table] + [r.source for r in table] + ["/", "/srv"]
    path = data.draw(st.sampled_from(paths))
    assert stack_in(text, path) == stack_at(parse(text), path)


@given(st.text(characters(codec=None, exclude_categories=()), max_size=20))
def test_deleted_suffix_is_stripped_from_path(base: str) -> None:
    plain = MountRecord(1, 0, 0, 1, "/", base, ("rw",), (), "tmpfs", "tmpfs", ())
    deleted = MountRecord(1, 0, 0, 1, "/", base + DELETED_SUFFIX, ("rw",), (), "tmpfs", "tmpfs", ())
    assert deleted.deleted and deleted.path == base
    assert plain.deleted == base.endswith(DELETED_SUFFIX)
    assert plain.path == (base[: -len(DELETED_SUFFIX)] if plain.deleted else base)
