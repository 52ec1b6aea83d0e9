"""Pure tests of holders: validation, and the holder table against a model (dict of sets)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from glusterd_mgr.core.errors import InvalidParams
from glusterd_mgr.core.holders import HOLDER_KINDS, MAX_HOLDER_ID, Holder, HolderTable
from glusterd_mgr.core.volume import VolumeSpec

# -- validation ---------------------------------------------------------------


@pytest.mark.parametrize("kind", HOLDER_KINDS)
def test_every_kind_is_accepted(kind: str) -> None:
    name = "4242@99" if kind == "process" else "x"  # a process holder is named by its process
    holder = Holder(kind, name)
    assert holder.to_json() == {"kind": kind, "id": name}
    assert str(holder) == f"{kind}:{name}"
    assert Holder.from_json(holder.to_json()) == holder


@pytest.mark.parametrize(
    "holder_id",
    [
        "a",
        "inst1.example.org/disk0",
        "x" * MAX_HOLDER_ID,
        "é" * MAX_HOLDER_ID,  # counted in characters
        "with space",
        "ünïcödé ✓",
    ],
)
def test_ids_accepted(holder_id: str) -> None:
    assert Holder("instance", holder_id).id == holder_id


@pytest.mark.parametrize(
    "kind, holder_id, field",
    [
        ("", "x", "holder.kind"),
        ("Instance", "x", "holder.kind"),
        ("vm", "x", "holder.kind"),
        ("instance ", "x", "holder.kind"),
        (None, "x", "holder.kind"),
        ("instance", "", "holder.id"),
        ("instance", None, "holder.id"),
        ("instance", 7, "holder.id"),
        ("instance", "x" * (MAX_HOLDER_ID + 1), "holder.id"),
        ("instance", "a\nb", "holder.id"),
        ("instance", "a\tb", "holder.id"),
        ("instance", "\x00", "holder.id"),
        ("instance", "a\x1bb", "holder.id"),
        ("instance", "a\x7f", "holder.id"),
        ("instance", "a\u2028b", "holder.id"),
        ("job", "\r", "holder.id"),
    ],
)
def test_invalid_holders(kind: Any, holder_id: Any, field: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        Holder(kind, holder_id)
    assert caught.value.data["field"] == field


def test_from_json_missing_fields() -> None:
    with pytest.raises(InvalidParams) as caught:
        Holder.from_json({"id": "x"})
    assert caught.value.data["field"] == "holder.kind"
    with pytest.raises(InvalidParams) as caught:
        Holder.from_json({"kind": "job"})
    assert caught.value.data["field"] == "holder.id"


def test_length_limit_boundary() -> None:
    assert len(Holder("job", "y" * 255).id) == 255
    with pytest.raises(InvalidParams, match="256"):
        Holder("job", "y" * 256)


@given(st.text(min_size=1, max_size=MAX_HOLDER_ID))
def test_id_accepted_exactly_when_printable(holder_id: str) -> None:
    if holder_id.isprintable():
        assert Holder("instance", holder_id).id == holder_id
    else:
        with pytest.raises(InvalidParams):
            Holder("instance", holder_id)


# -- the table against a model ------------------------------------------------------

SPECS = [VolumeSpec("gs1"), VolumeSpec("gs1", volume="gv1"), VolumeSpec("fe80::1", 24008), VolumeSpec("")]
HOLDERS = [Holder(kind, f"{n + 1}@{n}" if kind == "process" else f"{kind[0]}{n}") for kind in HOLDER_KINDS for n in range(3)]
MOUNTPOINTS = ["/run/ganeti/gluster", "/srv/gluster"]

Model = dict[VolumeSpec, set[Holder]]


def check_against(table: HolderTable, model: Model) -> None:
    live = {spec: hs for spec, hs in model.items() if hs}
    assert table.holders == live
    assert table.volumes() == sorted(live)
    assert table.total() == sum(len(hs) for hs in live.values())
    for spec in SPECS:
        assert table.count(spec) == len(model.get(spec, ()))
        assert table.of(spec) == frozenset(model.get(spec, ()))
        for holder in HOLDERS:
            assert table.has(spec, holder) == (holder in model.get(spec, ()))
    entries = list(table.entries())
    assert [(s, h) for s, _, h in entries] == sorted((s, h) for s, hs in live.items() for h in hs)
    # the mountpoint of a volume is known exactly while it has holders
    assert set(table.mountpoints) == set(live)


operations = st.lists(
    st.tuples(st.booleans(), st.sampled_from(SPECS), st.sampled_from(HOLDERS), st.sampled_from(MOUNTPOINTS)),
    max_size=60,
)


@settings(max_examples=200)
@given(operations)
def test_random_acquire_release_sequences(ops: list[tuple[bool, VolumeSpec, Holder, str]]) -> None:
    table = HolderTable()
    model: Model = {}
    last_mountpoint: dict[VolumeSpec, str] = {}
    for acquire, spec, holder, mountpoint in ops:
        present = holder in model.get(spec, set())
        if acquire:
            assert table.add(spec, mountpoint, holder) is (not present)
            model.setdefault(spec, set()).add(holder)
            last_mountpoint[spec] = mountpoint
        else:
            assert table.remove(spec, holder) is present
            model.get(spec, set()).discard(holder)
        check_against(table, model)
        for live_spec, live_mountpoint, _ in table.entries():
            assert live_mountpoint == last_mountpoint[live_spec]


class HolderTableMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.table = HolderTable()
        self.model: Model = {}

    @rule(spec=st.sampled_from(SPECS), holder=st.sampled_from(HOLDERS), mountpoint=st.sampled_from(MOUNTPOINTS))
    def acquire(self, spec: VolumeSpec, holder: Holder, mountpoint: str) -> None:
        was_there = holder in self.model.get(spec, set())
        assert self.table.add(spec, mountpoint, holder) is (not was_there)
        self.model.setdefault(spec, set()).add(holder)
        assert self.table.mountpoints[spec] == mountpoint

    @rule(spec=st.sampled_from(SPECS), holder=st.sampled_from(HOLDERS))
    def release(self, spec: VolumeSpec, holder: Holder) -> None:
        was_there = holder in self.model.get(spec, set())
        assert self.table.remove(spec, holder) is was_there
        self.model.get(spec, set()).discard(holder)

    @rule(spec=st.sampled_from(SPECS), holder=st.sampled_from(HOLDERS), mountpoint=st.sampled_from(MOUNTPOINTS))
    def retried_acquire(self, spec: VolumeSpec, holder: Holder, mountpoint: str) -> None:
        self.table.add(spec, mountpoint, holder)
        assert self.table.add(spec, mountpoint, holder) is False
        self.model.setdefault(spec, set()).add(holder)

    @rule(spec=st.sampled_from(SPECS), holder=st.sampled_from(HOLDERS))
    def repeated_release(self, spec: VolumeSpec, holder: Holder) -> None:
        self.table.remove(spec, holder)
        assert self.table.remove(spec, holder) is False
        self.model.get(spec, set()).discard(holder)

    @invariant()
    def agrees_with_model(self) -> None:
        check_against(self.table, self.model)


HolderTableMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30)
TestHolderTable = HolderTableMachine.TestCase


def test_release_of_unknown_volume_or_holder() -> None:
    table = HolderTable()
    spec, other = SPECS[0], SPECS[1]
    assert table.remove(spec, HOLDERS[0]) is False
    assert table.add(spec, MOUNTPOINTS[0], HOLDERS[0]) is True
    assert table.remove(spec, HOLDERS[1]) is False
    assert table.remove(other, HOLDERS[0]) is False
    assert table.count(spec) == 1 and table.count(other) == 0
    assert table.remove(spec, HOLDERS[0]) is True
    assert table == HolderTable()


def test_retried_acquire_moves_the_mountpoint() -> None:
    table = HolderTable()
    spec, holder = SPECS[0], HOLDERS[0]
    assert table.add(spec, "/a", holder) is True
    assert table.add(spec, "/b", holder) is False
    assert list(table.entries()) == [(spec, "/b", holder)]
