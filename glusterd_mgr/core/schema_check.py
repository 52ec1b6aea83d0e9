"""The RPC schemas' subset of JSON Schema, compiled into one Python predicate per schema.

Why: ``jsonschema`` walks a schema's keywords for every call; under 32
clients that was a sixth of the daemon's time.  The compiled predicate only
answers "valid?" and does so in a few microseconds.  A "no" is explained by
``jsonschema`` itself (``app/schema.py``), so refusals are worded as before;
``tests/unit/test_schema_check.py`` holds the two to the same answers.  A
keyword outside the subset refuses to compile, so a schema is never checked
more loosely than it reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["ANNOTATIONS", "Check", "compile_schema"]

Check = Callable[[Any], bool]
"""True when the value is valid under the schema it was compiled from."""

ANNOTATIONS = frozenset({"description", "default", "title", "examples", "$comment"})
"""Keywords that describe a value without constraining it."""

_TYPES: dict[str, Check] = {
    "string": lambda v: isinstance(v, str),
    # As the daemon's strict validator: True is no integer, and neither is 5.0 (sizes reach ftruncate).
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def compile_schema(schema: Mapping[str, Any]) -> Check:
    """The predicate for ``schema`` (references already inlined); ValueError for a keyword it does not know."""
    return _all_of(tuple(_compile_keyword(schema, keyword) for keyword in schema if keyword not in ANNOTATIONS))


def _all_of(checks: tuple[Check, ...]) -> Check:
    """One check for several (a plain loop: this runs for every call, and generators cost more)."""
    if len(checks) == 1:
        return checks[0]

    def check(value: Any) -> bool:
        for one in checks:
            if not one(value):
                return False
        return True

    return check


def _compile_keyword(schema: Mapping[str, Any], keyword: str) -> Check:
    arg = schema[keyword]
    if keyword == "type":
        names = [arg] if isinstance(arg, str) else list(arg)
        unknown = [n for n in names if n not in _TYPES]
        if unknown:
            raise ValueError(f"cannot compile the JSON Schema type(s) {unknown}")
        kinds = [_TYPES[n] for n in names]
        return lambda v: any(kind(v) for kind in kinds)
    if keyword == "enum":
        if not all(isinstance(e, str) for e in arg):
            raise ValueError(f"cannot compile an enum of other values than strings: {arg!r}")
        allowed = frozenset(arg)
        return lambda v: isinstance(v, str) and v in allowed
    if keyword in ("minLength", "maxLength", "pattern"):
        return _on(str, _string_keyword(keyword, arg))
    if keyword in ("minimum", "maximum"):
        bound = arg
        within: Check = (lambda v: v >= bound) if keyword == "minimum" else (lambda v: v <= bound)
        return lambda v: isinstance(v, bool) or not isinstance(v, (int, float)) or within(v)
    if keyword in ("properties", "required", "additionalProperties"):
        return _on(dict, _object_keyword(schema, keyword))
    if keyword == "items":
        each = compile_schema(arg)
        return _on(list, lambda v: all(each(item) for item in v))
    raise ValueError(f"cannot compile the JSON Schema keyword {keyword!r}")


def _on(kind: type, check: Check) -> Check:
    """``check`` for values of ``kind``; JSON Schema lets a keyword pass every value of another type."""
    return lambda v: not isinstance(v, kind) or check(v)


def _string_keyword(keyword: str, arg: Any) -> Check:
    if keyword == "minLength":
        return lambda v: len(v) >= arg
    if keyword == "maxLength":
        return lambda v: len(v) <= arg
    pattern = re.compile(arg)
    return lambda v: pattern.search(v) is not None


def _object_keyword(schema: Mapping[str, Any], keyword: str) -> Check:
    if keyword == "required":
        names = tuple(schema["required"])
        return lambda v: all(name in v for name in names)
    if keyword == "properties":
        properties = tuple((name, compile_schema(sub)) for name, sub in schema["properties"].items())

        def each_property(v: dict[str, Any]) -> bool:
            for name, check in properties:
                if name in v and not check(v[name]):
                    return False
            return True

        return each_property
    known = frozenset(schema.get("properties", {}))
    extra = schema["additionalProperties"]
    if extra is True:
        return lambda v: True
    if extra is False:
        return lambda v: all(name in known for name in v)
    rest = compile_schema(extra)
    return lambda v: all(rest(value) for name, value in v.items() if name not in known)
