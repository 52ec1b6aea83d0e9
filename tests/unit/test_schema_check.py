"""The compiled schema predicates say yes exactly where jsonschema (the daemon's strict validator) says yes."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glusterd_mgr.app import schema
from glusterd_mgr.core.schema_check import compile_schema

METHODS = schema.load()

WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 70000),
    st.sampled_from([5.0, 24007.0, -0.5, 1e300]),
    st.text(max_size=4),
    st.just({}),
    st.lists(st.integers(), max_size=2),
)
"""Values of every JSON type, for any place in a request."""


def near(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that fit ``node``, and values that break it in exactly one place (so no other fault hides it)."""
    return fitting(node) | broken(node)


def fitting(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    kind = node.get("type")
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if kind == "object":
        props = node.get("properties", {})
        required = set(node.get("required", ()))
        return st.fixed_dictionaries(
            {name: fitting(sub) for name, sub in props.items() if name in required},
            optional={name: fitting(sub) for name, sub in props.items() if name not in required},
        )
    if kind == "string":
        if "pattern" in node:
            return st.from_regex(node["pattern"], fullmatch=True)
        return st.text(min_size=node.get("minLength", 0), max_size=node.get("maxLength", 8))
    if kind == "integer":
        low, high = node["minimum"], node["maximum"]
        return st.integers(low, high) | st.sampled_from([low, high])
    if kind == "boolean":
        return st.booleans()
    raise AssertionError(f"no strategy for {node}")


def broken(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    kind = node.get("type")
    if "enum" in node:
        return st.text(max_size=10) | WRONG
    if kind == "object":
        props = node.get("properties", {})
        whole = fitting(node)
        lacking = [whole.map(partial(_without, name)) for name in node.get("required", ())]
        one_bad = [st.tuples(whole, broken(sub)).map(partial(_with, name)) for name, sub in props.items()]
        return st.one_of(*lacking, *one_bad, whole.map(lambda d: {**d, "extra": 1}), WRONG)
    if kind == "string":
        low, high = node.get("minLength", 0), node.get("maxLength", 8)
        longer = st.text(min_size=high + 1, max_size=high + 2)
        if "pattern" in node:
            longer = longer | st.from_regex(node["pattern"]) | st.text(max_size=3)
        return longer | (st.just("") if low else WRONG) | WRONG
    if kind == "integer":
        low, high = node["minimum"], node["maximum"]
        return st.sampled_from([low - 1, high + 1, float(low), float(high)]) | WRONG
    return WRONG


def _without(name: str, d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != name}


def _with(name: str, pair: tuple[dict[str, Any], Any]) -> dict[str, Any]:
    """The dict of ``pair`` with ``name`` set to the value of ``pair``."""
    return {**pair[0], name: pair[1]}


def _request(method: str) -> st.SearchStrategy[tuple[str, Any]]:
    return st.tuples(st.just(method), near(METHODS[method].validator.schema))  # as compiled: references resolved


@settings(max_examples=3000, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(METHODS)).flatmap(_request))
def test_compiled_check_agrees_with_jsonschema(call: tuple[str, Any]) -> None:
    method, params = call
    m = METHODS[method]
    assert m.valid(params) == m.validator.is_valid(params), params


def test_a_keyword_outside_the_subset_refuses_to_compile() -> None:
    schemas: list[dict[str, Any]] = [{"type": "string", "format": "uri"}, {"type": "decimal"}, {"enum": [1, 2]}, {"oneOf": []}]
    for schema_ in schemas:
        with pytest.raises(ValueError, match="cannot compile"):
            compile_schema(schema_)


def test_annotations_and_other_types_pass() -> None:
    check = compile_schema({"type": ["string", "null"], "maxLength": 2, "description": "x", "default": None})
    assert [check(v) for v in ("ab", None, "abc", 1)] == [True, True, False, False]
    items = compile_schema({"type": "array", "items": {"type": "integer", "minimum": 0}})
    assert [items(v) for v in ([0, 1], [-1], [True], "x")] == [True, False, False, False]
    open_object = compile_schema({"type": "object", "additionalProperties": {"type": "boolean"}})
    assert [open_object(v) for v in ({"a": True}, {"a": 1})] == [True, False]
