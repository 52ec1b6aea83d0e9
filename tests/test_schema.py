"""The method schemas: strict validation with the offending field named, and the OpenRPC document."""

from __future__ import annotations

from typing import Any

import pytest

from glusterd_mgr.app import schema
from glusterd_mgr.core.errors import InvalidParams

METHODS = schema.load()
VOLUME = {"host": "gs1", "port": 24007, "volume": "gv0"}


@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("disk.create", {"volume": VOLUME, "path": "ganeti/a.0", "size": 5.0}, "size"),  # 5.0 is no size for ftruncate
        ("disk.create", {"volume": VOLUME, "path": "ganeti/a.0", "size": True}, "size"),
        ("disk.create", {"volume": VOLUME, "path": "ganeti/a.0", "size": 0}, "size"),
        ("disk.grow", {"volume": VOLUME, "path": "ganeti/a.0", "amount": -1}, "amount"),
        ("volume.acquire", {"volume": {**VOLUME, "port": 24007.0}, "holder": {"kind": "job", "id": "x"}}, "volume.port"),
        ("volume.acquire", {"volume": VOLUME, "holder": {"kind": "vm", "id": "x"}}, "holder.kind"),
        ("volume.acquire", {"volume": {**VOLUME, "extra": 1}, "holder": {"kind": "job", "id": "x"}}, "volume"),
    ],
)
def test_invalid_params_name_the_field(method: str, params: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParams) as raised:
        METHODS[method].check_params(params)
    assert raised.value.data["field"] == field


def test_valid_params_pass_unchanged() -> None:
    params = {"volume": VOLUME, "path": "ganeti/a.0", "size": 5, "preallocate": True}
    assert METHODS["disk.create"].check_params(params) == params


def test_no_params_by_position_for_a_method_without_params() -> None:
    assert METHODS["status"].check_params([]) == {}
    with pytest.raises(InvalidParams):
        METHODS["volume.acquire"].check_params([VOLUME])


def test_openrpc_document_lists_every_method_with_component_refs() -> None:
    doc = schema.openrpc(METHODS)
    assert {m["name"] for m in doc["methods"]} == set(METHODS)
    assert {"volume", "holder", "path", "mib"} <= set(doc["components"]["schemas"])
    acquire = next(m for m in doc["methods"] if m["name"] == "volume.acquire")
    assert acquire["params"][0]["schema"] == {"$ref": "#/components/schemas/volume"}
