"""The quick schema check (`pdk.host.schema_check._quick`) never accepts what jsonschema
refuses, and does accept the plain valid inputs it is there for."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from pdk.host.schema_check import schema_problems, schema_validator

SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "required": ["text"], "additionalProperties": False,
     "properties": {"text": {"type": "string"}, "top": {"type": "integer", "default": 3}, "case_sensitive": {"type": "boolean"}}},
    {"type": "object", "properties": {"n": {"type": "integer", "minimum": 3, "maximum": 9}, "s": {"type": "string", "minLength": 1, "maxLength": 2}}},
    {"type": "object", "properties": {"x": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}}, "additionalProperties": {"type": "string"}},
    {"type": "object", "properties": {"level": {"enum": ["a", "b", 1, None]}, "c": {"const": True}}},
    {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}, "minItems": 1, "maxItems": 2}}},
    {"type": ["object", "null"], "minProperties": 1, "maxProperties": 2},
    {"type": "object", "properties": {"v": {"type": ["string", "integer"]}}, "title": "t", "description": "d"},
]
SCALARS: list[Any] = [None, True, False, 0, 1, 3, 3.0, 0.5, -1, 9, 10, 1.5, float("nan"), "", "a", "ab", "abc", "A", "b", [], ["a"], ["a", "b", "c"], ["B"], [1], {}]
KEYS = ["text", "top", "case_sensitive", "n", "s", "x", "level", "c", "tags", "v", "other"]


def instances() -> list[Any]:
    out: list[Any] = list(SCALARS)
    for key in KEYS:
        for value in SCALARS:
            out.append({key: value})
            out.append({"text": "t", key: value})
    out.extend({a: 1, b: "x"} for a, b in itertools.combinations(KEYS[:5], 2))
    return out


@pytest.mark.parametrize("index", range(len(SCHEMAS)))
def test_quick_accepts_only_what_jsonschema_accepts(index: int) -> None:
    validator = schema_validator(SCHEMAS[index])
    assert validator.quick is not None
    accepted = 0
    for data in instances():
        if validator.quick(data):
            accepted += 1
            assert validator.jsonschema.is_valid(data), (SCHEMAS[index], data)
            assert schema_problems(validator, data) is None
    assert accepted > 0  # the quick path is taken for plain valid inputs


def test_stricter_types_fall_back_to_jsonschema() -> None:
    validator = schema_validator(SCHEMAS[1])
    assert validator.quick is not None and not validator.quick({"n": 3.0})  # not an int to the quick check ...
    assert schema_problems(validator, {"n": 3.0}) is None  # ... but valid, as jsonschema says
    problems = schema_problems(validator, {"n": 1})
    assert problems is not None and problems.total == 1


@pytest.mark.parametrize("schema", [{"$ref": "#/$defs/a", "$defs": {"a": {}}}, {"anyOf": [{"type": "string"}]}, {"patternProperties": {"^a": {}}}, {"not": {}}, {"multipleOf": 2}, False])
def test_other_keywords_have_no_quick_check(schema: Any) -> None:
    assert schema_validator(schema).quick is None
