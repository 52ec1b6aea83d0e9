"""The daemon's state on disk: its folder checked at start, its temporary files never following what was planted.

A local user who could plant a symlink at a temporary name would have the root daemon truncate and
overwrite the file it points to; a state folder open to others lets them plant it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from twisted.internet.task import Clock

from glusterd_mgr.core.errors import StateError
from glusterd_mgr.shell.journal import JournalFile, write_file_atomically
from glusterd_mgr.shell.node import JOURNAL_NAME, Node, NodeOptions
from glusterd_mgr.testing import config

BOOT = "6f1c3a52-9d1e-4b8a-8a51-2f0e3c9b7d10"
PRECIOUS = b"a file the daemon must never write\n"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim"
    path.write_bytes(PRECIOUS)
    return path


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def started() -> Iterator[list[Node]]:
    nodes: list[Node] = []
    yield nodes
    for node in nodes:
        node.stop()


def start_node(state_dir: Path, nodes: list[Node]) -> Node:
    node = Node(Clock(), config(), NodeOptions(state_dir=str(state_dir)))
    nodes.append(node)
    return node


def test_a_symlink_planted_at_the_journals_temporary_name_is_removed_never_followed(state: Path, victim: Path) -> None:
    tmp = state / (JOURNAL_NAME + ".tmp")
    tmp.symlink_to(victim)
    journal, _ = JournalFile.open(str(state / JOURNAL_NAME), BOOT)
    journal.close()
    assert victim.read_bytes() == PRECIOUS
    assert not tmp.is_symlink() and (state / JOURNAL_NAME).read_bytes().startswith(b'{"journal"')


def test_a_symlink_planted_at_a_state_files_temporary_name_is_removed_never_followed(state: Path, victim: Path) -> None:
    (state / "volfile-servers.tmp").symlink_to(victim)
    write_file_atomically(str(state / "volfile-servers"), b"gs1 gs2\n")
    assert victim.read_bytes() == PRECIOUS
    assert (state / "volfile-servers").read_bytes() == b"gs1 gs2\n" and not (state / "volfile-servers").is_symlink()


def test_a_state_folder_open_to_others_is_made_private_at_start(state: Path, started: list[Node]) -> None:
    state.chmod(0o755)
    start_node(state, started)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def test_a_state_folder_that_is_a_symlink_is_refused(tmp_path: Path, state: Path, started: list[Node]) -> None:
    link = tmp_path / "state-link"
    link.symlink_to(state)
    with pytest.raises(StateError, match="symbolic link") as refused:
        start_node(link, started)
    assert str(link) in refused.value.message


def test_a_state_folder_owned_by_another_user_is_refused(state: Path, started: list[Node]) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: only root can give a folder to another user")
    os.chown(state, 65534, 65534)
    with pytest.raises(StateError, match="owned by uid 65534") as refused:
        start_node(state, started)
    assert str(state) in refused.value.message and "chown" in refused.value.message


def test_a_symlink_planted_at_the_journal_is_refused_not_read(state: Path, victim: Path) -> None:
    (state / JOURNAL_NAME).symlink_to(victim)
    with pytest.raises(StateError, match="symbolic link"):
        JournalFile.open(str(state / JOURNAL_NAME), BOOT)
    assert victim.read_bytes() == PRECIOUS
