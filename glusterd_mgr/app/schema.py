"""The JSON-RPC methods' schemas (``rpc_schema/``): loading, params validation, OpenRPC."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import best_match

from .. import __version__
from ..core.errors import InvalidParams
from ..core.requests import Params, parse
from ..core.schema_check import Check, compile_schema

__all__ = ["DISCOVER", "SCHEMA_PACKAGE", "MethodSchema", "StrictValidator", "load", "method_names", "openrpc"]

SCHEMA_PACKAGE = "glusterd_mgr.rpc_schema"
DISCOVER = "rpc.discover"
"""The one method without a schema file: it answers with the OpenRPC document built from the others."""

# JSON Schema calls 5.0 an integer; sizes and ports reach os.ftruncate and sockets, which do not.
StrictValidator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)


@dataclass(frozen=True)
class MethodSchema:
    name: str
    summary: str
    params: dict[str, Any]
    result: dict[str, Any]
    validator: Any
    valid: Check
    """The same schema compiled (``core/schema_check.py``): the fast yes; a no is explained by ``validator``."""

    @property
    def defaults(self) -> dict[str, Any]:
        """The values of the optional params a caller leaves out: the one place they are written."""
        return {name: prop["default"] for name, prop in self.params.get("properties", {}).items() if "default" in prop}

    def parse(self, params: Any) -> Params:
        """The params checked, then as the method's one type (``core/requests.py``), the defaults filled in."""
        return parse(self.name, self.check_params(params), self.defaults)

    def check_params(self, params: Any) -> dict[str, Any]:
        """The params as a dict, or InvalidParams naming the offending field."""
        if params is None or (params == [] and not self.params.get("required")):
            params = {}  # no params, given by position
        if not isinstance(params, dict):
            raise InvalidParams(f"{self.name} takes its params by name, as a JSON object")
        if self.valid(params):
            return params
        error = best_match(self.validator.iter_errors(params))
        if error is not None:
            where = ".".join(str(p) for p in error.absolute_path)
            if error.validator == "required" or not where:
                raise InvalidParams(f"{self.name}: {error.message}", field=where or None)
            raise InvalidParams(f"{self.name}: {where}: {error.message}", field=where)
        return params


def load() -> dict[str, MethodSchema]:
    files = resources.files(SCHEMA_PACKAGE)
    defs = json.loads(files.joinpath("defs.json").read_text())["$defs"]
    methods = {}
    for entry in sorted(files.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json") or entry.name == "defs.json":
            continue
        doc = json.loads(entry.read_text())
        # References are resolved once here: following them per call was most of the validation cost.
        params = _inline_refs(doc["params"], defs)
        Draft202012Validator.check_schema(params)
        methods[doc["name"]] = MethodSchema(
            name=doc["name"],
            summary=doc["summary"],
            params=doc["params"],
            result=doc["result"],
            validator=StrictValidator(params),
            valid=compile_schema(params),
        )
    return methods


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    """Replace each ``{"$ref": "#/$defs/x"}`` by the definition itself (the definitions do not nest)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline_refs(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


def _ref_to_components(node: Any) -> Any:
    """Point ``#/$defs/x`` references at OpenRPC's ``#/components/schemas/x``."""
    if isinstance(node, dict):
        return {k: (v.replace("#/$defs/", "#/components/schemas/") if k == "$ref" else _ref_to_components(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_ref_to_components(v) for v in node]
    return node


def method_names(schemas: Mapping[str, MethodSchema]) -> frozenset[str]:
    """Every method the daemon answers: one per schema, and ``rpc.discover``."""
    return frozenset(schemas) | {DISCOVER}


def openrpc(methods: dict[str, MethodSchema]) -> dict[str, Any]:
    """An OpenRPC 1.2 document for ``rpc.discover``, built from the same files."""
    defs = json.loads(resources.files(SCHEMA_PACKAGE).joinpath("defs.json").read_text())["$defs"]
    out = []
    for m in methods.values():
        props = m.params.get("properties", {})
        required = set(m.params.get("required", ()))
        out.append(
            {
                "name": m.name,
                "summary": m.summary,
                "paramStructure": "by-name",
                "params": [
                    {"name": name, "required": name in required, "schema": _ref_to_components(schema)} for name, schema in props.items()
                ],
                "result": {"name": "result", "schema": _ref_to_components(m.result)},
            }
        )
    return {
        "openrpc": "1.2.6",
        "info": {"title": "ganeti-gluster-mountd", "version": __version__},
        "methods": out,
        "components": {"schemas": _ref_to_components(defs)},
    }
