"""Tests of the holder journal: pure replay and encoding, and JournalFile on a temporary directory."""

from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glusterd_mgr.core.errors import StateError
from glusterd_mgr.core.holders import Change, Holder, HolderTable
from glusterd_mgr.core.volume import VolumeSpec
from glusterd_mgr.shell import journal
from glusterd_mgr.shell.journal import FORMAT_VERSION, JournalFile, encode_header, replay

BOOT = "6f1c3a52-9d1e-4b8a-8a51-2f0e3c9b7d10"
OTHER_BOOT = "0b5d2e11-7a4c-4e2f-9c3d-8e1f6a2b4c50"
GV0 = VolumeSpec("gs1")
GV1 = VolumeSpec("fe80::1", 24008, "gv1")
MP = "/run/ganeti/gluster"
A = Holder("instance", "inst1.example.org")
B = Holder("os-install", "inst2.example.org")
C = Holder("job", "job-7")

CHANGES = [
    Change("acquire", GV0, A, MP),
    Change("acquire", GV0, B, MP),
    Change("acquire", GV1, C, "/srv/gluster"),
    Change("release", GV0, A),
    Change("acquire", GV0, A, MP),
    Change("release", GV1, C),
    Change("release", GV0, B),
    Change("acquire", GV1, A, "/srv/gluster"),
]


def table_after(changes: list[Change]) -> HolderTable:
    table = HolderTable()
    for change in changes:
        table.apply(change)
    return table


def journal_bytes(changes: list[Change], boot_id: str = BOOT) -> bytes:
    return encode_header(boot_id) + b"".join(c.encode() for c in changes)


def snapshot_bytes(table: HolderTable, boot_id: str = BOOT) -> bytes:
    """What compaction writes: the header, then one acquire per holder, sorted."""
    return journal_bytes([Change("acquire", spec, holder, mp) for spec, mp, holder in table.entries()], boot_id)


# -- encoding ------------------------------------------------------------------------


def test_encode_acquire_and_release() -> None:
    acquire = json.loads(Change("acquire", GV1, A, MP).encode())
    assert acquire == {
        "op": "acquire",
        "volume": {"host": "fe80::1", "port": 24008, "volume": "gv1"},
        "holder": {"kind": "instance", "id": "inst1.example.org"},
        "mountpoint": MP,
    }
    release = json.loads(Change("release", GV1, A, MP).encode())
    assert "mountpoint" not in release and release["op"] == "release"


def test_encoding_is_one_line_whatever_the_text() -> None:
    odd = Change("acquire", GV0, Holder("job", 'ünï ✓ "quoted" \\ back'), "/srv/new\nline\u2028x")
    data = odd.encode()
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert list(replay(encode_header(BOOT) + data).table.entries()) == [(GV0, "/srv/new\nline\u2028x", odd.holder)]


def test_encode_header() -> None:
    header = encode_header(BOOT)
    assert header.endswith(b"\n") and header.count(b"\n") == 1
    assert json.loads(header) == {"journal": FORMAT_VERSION, "boot_id": BOOT}


# -- replay ------------------------------------------------------------------------


def test_replay_empty() -> None:
    replayed = replay(b"")
    assert replayed.boot_id is None and replayed.records == 0 and replayed.table == HolderTable()


def test_replay_whole_journal() -> None:
    replayed = replay(journal_bytes(CHANGES))
    assert replayed.boot_id == BOOT
    assert replayed.records == len(CHANGES)
    assert replayed.torn_tail == 0
    assert replayed.table == table_after(CHANGES)
    assert replayed.table.holders == {GV0: {A}, GV1: {A}}


def expected_after_cut(data: bytes, cut: int, changes: list[Change]) -> tuple[str | None, HolderTable, int]:
    prefix = data[:cut]
    complete_lines = prefix.count(b"\n")
    torn = len(prefix) - (prefix.rfind(b"\n") + 1)
    if complete_lines == 0:
        return None, HolderTable(), torn
    return BOOT, table_after(changes[: complete_lines - 1]), torn


def test_replay_after_every_prefix() -> None:
    """A crash can cut the file anywhere in its last line: replay yields a complete prefix of changes."""
    data = journal_bytes(CHANGES)
    states = [table_after(CHANGES[:n]) for n in range(len(CHANGES) + 1)]
    for cut in range(len(data) + 1):
        replayed = replay(data[:cut])
        boot_id, table, torn = expected_after_cut(data, cut, CHANGES)
        assert replayed.boot_id == boot_id, cut
        assert replayed.table == table, cut
        assert replayed.table in states
        assert replayed.torn_tail == torn, cut


@pytest.mark.parametrize(
    "damage",
    [
        b"garbage",
        b"{}",
        b"{not json",
        b'{"op":"frobnicate","volume":{"host":"gs1"},"holder":{"kind":"job","id":"x"}}',
        b'{"op":"acquire","volume":{"host":"bad host"},"holder":{"kind":"job","id":"x"}}',
        b'{"op":"acquire","volume":{"host":"gs1"},"holder":{"kind":"vm","id":"x"}}',
        b'{"op":"acquire","volume":{"host":"gs1"},"holder":["job","x"]}',
        b'["acquire"]',
        b"",
        b"\xff\xfe",
    ],
)
@pytest.mark.parametrize("line", [2, 3, 5])
def test_damage_in_a_middle_line_is_refused(damage: bytes, line: int) -> None:
    lines = journal_bytes(CHANGES).split(b"\n")
    lines[line - 1] = damage
    with pytest.raises(StateError, match=f"line {line} is damaged"):
        replay(b"\n".join(lines), "/var/lib/mountd/holders.journal")


def test_truncated_middle_line_is_refused() -> None:
    lines = journal_bytes(CHANGES).split(b"\n")
    lines[3] = lines[3][: len(lines[3]) // 2]
    with pytest.raises(StateError, match="line 4"):
        replay(b"\n".join(lines))


def test_damaged_last_complete_line_before_a_torn_tail_is_refused() -> None:
    lines = journal_bytes(CHANGES).split(b"\n")  # ends with b"" after the final newline
    lines[-2] = b"garbage"
    lines[-1] = b'{"op":"acq'
    with pytest.raises(StateError):
        replay(b"\n".join(lines))


def test_unparsable_last_line_is_a_torn_write() -> None:
    data = journal_bytes(CHANGES[:-1]) + b'{"op":"acquire","volu\xff}\n'
    replayed = replay(data)
    assert replayed.table == table_after(CHANGES[:-1])
    assert replayed.torn_tail == len(b'{"op":"acquire","volu\xff}\n')


@pytest.mark.parametrize(
    "header",
    [
        b"garbage",
        b"{}",
        b'{"journal": 1}',
        b'{"journal": 2, "boot_id": "x"}',
        b'{"boot_id": "x"}',
        b"[1]",
        b"",
    ],
)
def test_bad_header_is_refused(header: bytes) -> None:
    data = header + b"\n" + b"".join(c.encode() for c in CHANGES)
    with pytest.raises(StateError, match="line 1"):
        replay(data, "j")


def test_bad_header_alone_is_refused() -> None:
    with pytest.raises(StateError):
        replay(b'{"journal": 2, "boot_id": "x"}\n')


changes_strategy = st.lists(
    st.builds(
        Change,
        op=st.sampled_from(["acquire", "release"]),
        spec=st.sampled_from([GV0, GV1, VolumeSpec("")]),
        holder=st.sampled_from([A, B, C, Holder("job", "ü ✓")]),
        mountpoint=st.sampled_from([MP, "/srv/gluster"]),
    ),
    max_size=25,
)


@settings(max_examples=100)
@given(changes_strategy, st.data())
def test_replay_of_a_random_prefix(changes: list[Change], data: st.DataObject) -> None:
    raw = journal_bytes(changes)
    cut = data.draw(st.integers(0, len(raw)), label="cut")
    replayed = replay(raw[:cut])
    boot_id, table, torn = expected_after_cut(raw, cut, changes)
    assert (replayed.boot_id, replayed.table, replayed.torn_tail) == (boot_id, table, torn)


# -- JournalFile ------------------------------------------------------------------------


def write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def test_open_missing_file_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "holders.journal"
    jf, dropped = JournalFile.open(str(path), BOOT)
    try:
        assert dropped == []
        assert jf.table == HolderTable()
        assert path.read_bytes() == encode_header(BOOT)
    finally:
        jf.close()


def test_append_then_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "holders.journal")
    jf, _ = JournalFile.open(path, BOOT)
    jf.append(CHANGES[:3])
    jf.append(CHANGES[3:])
    assert jf.table == table_after(CHANGES)
    assert replay(Path(path).read_bytes()).table == table_after(CHANGES)
    jf.close()
    again, dropped = JournalFile.open(path, BOOT)
    try:
        assert dropped == []
        assert again.table == table_after(CHANGES)
    finally:
        again.close()


def test_reboot_drops_every_holder(tmp_path: Path) -> None:
    path = str(tmp_path / "holders.journal")
    write(Path(path), journal_bytes(CHANGES[:3]))
    jf, dropped = JournalFile.open(path, OTHER_BOOT)
    try:
        assert sorted(dropped) == sorted([(GV0, A), (GV0, B), (GV1, C)])
        assert jf.table == HolderTable()
        assert jf.boot_id == OTHER_BOOT
        assert Path(path).read_bytes() == encode_header(OTHER_BOOT)
    finally:
        jf.close()
    # the drop is durable: a second start of the same boot has nothing to drop
    jf, dropped = JournalFile.open(path, OTHER_BOOT)
    jf.close()
    assert dropped == [] and jf.table == HolderTable()


def test_same_boot_keeps_holders_and_drops_a_torn_tail(tmp_path: Path) -> None:
    path = Path(tmp_path / "holders.journal")
    write(path, journal_bytes(CHANGES[:3]) + CHANGES[3].encode()[:-7])
    jf, dropped = JournalFile.open(str(path), BOOT)
    jf.close()
    assert dropped == []
    assert jf.table == table_after(CHANGES[:3])
    assert path.read_bytes() == snapshot_bytes(table_after(CHANGES[:3]))  # compacted: the torn tail is gone
    assert path.read_bytes().startswith(encode_header(BOOT)) and path.read_bytes().count(b"\n") == 4


def test_open_refuses_a_damaged_journal(tmp_path: Path) -> None:
    path = tmp_path / "holders.journal"
    lines = journal_bytes(CHANGES).split(b"\n")
    lines[2] = b"garbage"
    damaged = b"\n".join(lines)
    write(path, damaged)
    with pytest.raises(StateError, match=str(path)):
        JournalFile.open(str(path), BOOT)
    assert path.read_bytes() == damaged  # left alone for the operator


def test_compaction_keeps_the_table_and_shrinks_the_file(tmp_path: Path) -> None:
    path = Path(tmp_path / "holders.journal")
    jf, _ = JournalFile.open(str(path), BOOT)
    try:
        jf.append([Change("acquire", GV0, A, MP), Change("acquire", GV1, C, "/srv/gluster")])
        for n in range(50):
            holder = Holder("job", f"job-{n}")
            jf.append([Change("acquire", GV0, holder, MP), Change("release", GV0, holder)])
        assert jf.records == 102
        before_size = path.stat().st_size
        before = copy.deepcopy(jf.table)
        jf.compact()
        assert jf.table == before
        assert path.stat().st_size < before_size
        assert path.read_bytes() == journal_bytes([Change("acquire", GV1, C, "/srv/gluster"), Change("acquire", GV0, A, MP)])
        assert path.read_bytes() == snapshot_bytes(before)
        assert jf.records == 2
        assert replay(path.read_bytes()).table == before
        assert not os.path.exists(str(path) + ".tmp")
        jf.append([Change("release", GV0, A)])  # still appendable after the rename
        assert replay(path.read_bytes()).table.holders == {GV1: {C}}
    finally:
        jf.close()


def test_append_compacts_past_the_slack(tmp_path: Path) -> None:
    path = Path(tmp_path / "holders.journal")
    with mock.patch.object(journal, "COMPACT_SLACK", 4):
        jf, _ = JournalFile.open(str(path), BOOT)
        try:
            jf.append([Change("acquire", GV0, A, MP)])
            for n in range(4):
                holder = Holder("job", f"j{n}")
                jf.append([Change("acquire", GV0, holder, MP), Change("release", GV0, holder)])
            # 9 records appended; the 7th passed 2 * 1 + 4 and compacted to 1, then 2 more came
            assert jf.records == 3
            assert path.read_bytes().count(b"\n") == 1 + 3
            assert replay(path.read_bytes()).table == table_after([Change("acquire", GV0, A, MP)])
        finally:
            jf.close()


@settings(max_examples=40, deadline=None)
@given(changes_strategy, st.lists(st.integers(1, 6), min_size=1, max_size=30), st.sampled_from([0, 3, 1024]))
def test_random_batches_then_reopen(changes: list[Change], sizes: list[int], slack: int) -> None:
    model: dict[VolumeSpec, set[Holder]] = {}
    for change in changes:
        if change.op == "acquire":
            model.setdefault(change.spec, set()).add(change.holder)
        else:
            model.get(change.spec, set()).discard(change.holder)
    model = {spec: hs for spec, hs in model.items() if hs}

    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(journal, "COMPACT_SLACK", slack):
        path = os.path.join(tmp, "holders.journal")
        jf, _ = JournalFile.open(path, BOOT)
        start, batch = 0, 0
        while start < len(changes):
            size = sizes[batch % len(sizes)]
            jf.append(changes[start : start + size])
            start, batch = start + size, batch + 1
        assert jf.table.holders == model
        jf.close()
        again, dropped = JournalFile.open(path, BOOT)
        again.close()
        assert dropped == []
        assert again.table.holders == model
        assert again.table == jf.table
        after_reboot, dropped = JournalFile.open(path, OTHER_BOOT)
        after_reboot.close()
        assert sorted(dropped) == sorted((spec, h) for spec, hs in model.items() for h in hs)
        assert after_reboot.table == HolderTable()


def test_a_failed_partial_write_is_cut_back_and_the_next_change_survives(tmp_path: Path) -> None:
    """ENOSPC in the middle of a line must not glue that line to the next acknowledged one."""
    path = str(tmp_path / "holders.journal")
    j, _ = JournalFile.open(path, BOOT)
    spec = VolumeSpec("gs1")
    first, lost, kept = Holder("instance", "a.0"), Holder("instance", "b.0"), Holder("instance", "c.0")
    j.append([Change("acquire", spec, first, "/mnt")])
    real_write = os.write

    def half_then_enospc(fd: int, data: bytes) -> int:
        real_write(fd, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    with mock.patch.object(os, "write", half_then_enospc), pytest.raises(OSError):
        j.append([Change("acquire", spec, lost, "/mnt")])
    j.append([Change("acquire", spec, kept, "/mnt")])
    j.close()
    reopened, _ = JournalFile.open(path, BOOT)
    assert reopened.table.of(spec) == {first, kept}


def test_a_journal_that_cannot_be_cut_back_refuses_later_changes(tmp_path: Path) -> None:
    path = str(tmp_path / "holders.journal")
    j, _ = JournalFile.open(path, BOOT)
    spec = VolumeSpec("gs1")
    with (
        mock.patch.object(os, "fdatasync", side_effect=OSError(5, "Input/output error")),
        mock.patch.object(os, "ftruncate", side_effect=OSError(5, "Input/output error")),
        pytest.raises(OSError),
    ):
        j.append([Change("acquire", spec, Holder("job", "x"), "/mnt")])
    assert j.broken
    with pytest.raises(OSError, match="unusable"):
        j.append([Change("acquire", spec, Holder("job", "y"), "/mnt")])
