"""Pure tests: the brick hosts of a client's graph and the per-volume memory of them."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from glusterd_mgr.core.mounts import client_argv
from glusterd_mgr.core.volfile_servers import ServerMemory, brick_hosts
from glusterd_mgr.core.volume import VolumeSpec

GRAPH = (Path(__file__).parent / "fixtures" / "client_log" / "replica3_graph.log").read_text()
SPEC = VolumeSpec(host="gs1.example", port=24007, volume="gv0")


def test_brick_hosts_of_a_real_replica3_graph() -> None:
    assert brick_hosts(GRAPH) == ["gs1.example", "gs2.example", "192.0.2.54"]


def test_brick_hosts_ignore_other_lines_and_repeat_once() -> None:
    text = "remote-host in prose\n  9:     option remote-host A\n 10:     option remote-host a\noption remote-host B\n"
    assert brick_hosts(text) == ["A", "B"]
    assert brick_hosts("") == []


def test_backups_never_name_the_volumes_own_host_and_keep_the_flag_after() -> None:
    memory = ServerMemory()
    assert memory.backups(SPEC, ["gs9"]) == ("gs9",), "nothing learned: the flag alone"
    assert memory.learn(SPEC, brick_hosts(GRAPH)) is True
    assert memory.learn(SPEC, brick_hosts(GRAPH)) is False, "the same hosts: nothing to save"
    assert memory.backups(SPEC, ["gs9", "GS2.example"]) == ("gs2.example", "192.0.2.54", "gs9")
    other = VolumeSpec(host="gs1.example", port=24007, volume="gv1")
    assert memory.backups(other) == (), "per volume"
    assert memory.learn(SPEC, []) is False, "a graph without bricks forgets nothing"
    argv = client_argv(SPEC, "/run/ganeti/gluster", "/var/log/glusterfs/x.log", memory.backups(SPEC))
    assert [a for a in argv if a.startswith("--volfile-server=")][1:] == ["--volfile-server=gs2.example", "--volfile-server=192.0.2.54"]


def test_the_file_round_trips_and_bad_text_is_forgotten() -> None:
    memory = ServerMemory(path="/x")
    memory.learn(SPEC, ["gs1.example", "gs2.example"])
    again = ServerMemory.from_text(memory.to_text(), "/x")
    assert again.known(SPEC) == ["gs1.example", "gs2.example"] and again.path == "/x"
    for bad in (None, "", "{", "[]", '{"k": 3}', '{"k": [1, ""]}'):
        assert ServerMemory.from_text(bad).known(SPEC) == []
    assert ServerMemory.from_text(json.dumps({SPEC.key: [1, "", "h"]})).known(SPEC) == ["h"], "only the usable names are kept"


@given(st.lists(st.sampled_from(["a", "A", "b", "c", "gs1.example"]), max_size=8))
def test_learned_hosts_are_unique_case_insensitively(hosts: list[str]) -> None:
    memory = ServerMemory()
    memory.learn(SPEC, hosts)
    known = [h.lower() for h in memory.known(SPEC)]
    assert len(known) == len(set(known)) and set(known) == {h.lower() for h in hosts}
    assert "gs1.example" not in [h.lower() for h in memory.backups(SPEC)]
