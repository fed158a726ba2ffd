"""Type hints → JSON Schema (`pdk._schema`).

This module uses string annotations on purpose: authors write
`from __future__ import annotations`, and every hint must still resolve.
"""

from __future__ import annotations

import enum
import json
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Dict, List, Literal, NewType, NotRequired, Optional, Required, TypedDict, Union

import jsonschema
import pytest

from pdk._schema import SchemaError, input_schema_for, schema_for_hint

NULL = {"type": "null"}

# Keys the manifest's schema subset allows (docs/architecture.md).
SUBSET_KEYS = {
    "type", "title", "description", "properties", "required", "additionalProperties",
    "items", "enum", "const", "default", "anyOf", "minimum", "maximum", "format",
}


def assert_in_subset(schema: object) -> None:
    """Every key of every (sub)schema is in the subset, and the schema is valid."""

    def walk(node: object) -> None:
        assert isinstance(node, dict)
        assert set(node) <= SUBSET_KEYS, set(node) - SUBSET_KEYS
        for sub in node.get("properties", {}).values():
            walk(sub)
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                walk(node[key])
        for sub in node.get("anyOf", []):
            walk(sub)

    walk(schema)
    jsonschema.Draft202012Validator.check_schema(schema)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    """How loud."""

    LOW = 1
    HIGH = 2


class Mixed(enum.Enum):
    A = "a"
    ONE = 1


@dataclass
class Point:
    x: int
    y: int = 0


@dataclass
class Shape:
    """A named polygon.

    Points go clockwise."""

    name: Annotated[str, "Display name"]
    points: list[Point]
    color: Color = Color.RED
    tags: list[str] = field(default_factory=list)
    note: str | None = field(default=None, metadata={"description": "Free text"})
    internal: int = field(default=0, init=False)


class Options(TypedDict, total=False):
    """Counting options."""

    lower: bool
    limit: Required[int]


class Filter(TypedDict):
    field: str
    pattern: NotRequired[Annotated[str, "A regular expression"]]


@dataclass
class Node:
    value: int
    children: list[Node]


UserId = NewType("UserId", int)


# --- scalar and container hints ----------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        (str, {"type": "string"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (None, NULL),
        (type(None), NULL),
        (Any, {}),
        (object, {}),
        (UserId, {"type": "integer"}),
        (list, {"type": "array"}),
        (List, {"type": "array"}),
        (dict, {"type": "object"}),
        (Dict, {"type": "object"}),
        (tuple, {"type": "array"}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (List[str], {"type": "array", "items": {"type": "string"}}),
        (typing.Sequence[str], {"type": "array", "items": {"type": "string"}}),
        (tuple[float, ...], {"type": "array", "items": {"type": "number"}}),
        (list[list[bool]], {"type": "array", "items": {"type": "array", "items": {"type": "boolean"}}}),
        (dict[str, int], {"type": "object", "additionalProperties": {"type": "integer"}}),
        (Dict[str, Any], {"type": "object", "additionalProperties": {}}),
        (typing.Mapping[str, list[str]], {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}),
    ],
    ids=repr,
)
def test_basic_hints(hint: object, expected: dict[str, Any]) -> None:
    assert schema_for_hint(hint) == expected
    assert_in_subset(expected)


# --- optional and unions -----------------------------------------------------------


@pytest.mark.parametrize("hint", [Optional[int], int | None, Union[int, None], Union[None, int]])
def test_optional_is_anyof_with_null(hint: object) -> None:
    schema = schema_for_hint(hint)
    assert {json.dumps(s, sort_keys=True) for s in schema["anyOf"]} == {'{"type": "integer"}', '{"type": "null"}'}
    assert set(schema) == {"anyOf"}


def test_optional_uses_the_same_form_for_objects_and_enums() -> None:
    assert schema_for_hint(Optional[Color]) == {
        "anyOf": [{"type": "string", "title": "Color", "enum": ["red", "green"]}, NULL]
    }
    assert schema_for_hint(Point | None)["anyOf"][1] == NULL
    assert schema_for_hint(Point | None)["anyOf"][0]["title"] == "Point"


def test_union_keeps_declaration_order() -> None:
    assert schema_for_hint(Union[str, int, None]) == {"anyOf": [{"type": "string"}, {"type": "integer"}, NULL]}
    assert schema_for_hint(int | str) == {"anyOf": [{"type": "integer"}, {"type": "string"}]}


# --- literals and enums ------------------------------------------------------------


def test_literal_is_a_typed_enum() -> None:
    assert schema_for_hint(Literal["a", "b"]) == {"type": "string", "enum": ["a", "b"]}
    assert schema_for_hint(Literal[1, 2]) == {"type": "integer", "enum": [1, 2]}
    assert schema_for_hint(Literal[True]) == {"type": "boolean", "enum": [True]}
    assert schema_for_hint(Literal[Color.GREEN]) == {"type": "string", "enum": ["green"]}


def test_mixed_literal_is_anyof_of_typed_enums() -> None:
    assert schema_for_hint(Literal["a", 1, None, "b"]) == {
        "anyOf": [{"type": "string", "enum": ["a", "b"]}, {"type": "integer", "enum": [1]}, NULL]
    }


def test_enum_lists_values_with_title_and_docstring() -> None:
    assert schema_for_hint(Color) == {"type": "string", "title": "Color", "enum": ["red", "green"]}
    assert schema_for_hint(Level) == {"type": "integer", "title": "Level", "description": "How loud.", "enum": [1, 2]}
    assert schema_for_hint(Mixed) == {
        "title": "Mixed",
        "anyOf": [{"type": "string", "enum": ["a"]}, {"type": "integer", "enum": [1]}],
    }


# --- dataclasses and TypedDict -----------------------------------------------------


def test_dataclass_schema() -> None:
    schema = schema_for_hint(Shape)
    assert schema == {
        "type": "object",
        "title": "Shape",
        "description": "A named polygon.\n\nPoints go clockwise.",
        "properties": {
            "name": {"type": "string", "description": "Display name"},
            "points": {
                "type": "array",
                "items": {
                    "type": "object",
                    "title": "Point",
                    "properties": {"x": {"type": "integer"}, "y": {"type": "integer", "default": 0}},
                    "required": ["x"],
                    "additionalProperties": False,
                },
            },
            "color": {"type": "string", "title": "Color", "enum": ["red", "green"], "default": "red"},
            "tags": {"type": "array", "items": {"type": "string"}, "default": []},
            "note": {"anyOf": [{"type": "string"}, NULL], "description": "Free text", "default": None},
        },
        "required": ["name", "points"],
        "additionalProperties": False,
    }
    assert_in_subset(schema)
    # Declaration order, not sorted.
    assert list(schema["properties"]) == ["name", "points", "color", "tags", "note"]


def test_generated_dataclass_docstring_is_not_a_description() -> None:
    assert Point.__doc__ and Point.__doc__.startswith("Point(")
    assert "description" not in schema_for_hint(Point)


def test_typeddict_total_false_with_required() -> None:
    assert schema_for_hint(Options) == {
        "type": "object",
        "title": "Options",
        "description": "Counting options.",
        "properties": {"lower": {"type": "boolean"}, "limit": {"type": "integer"}},
        "required": ["limit"],
        "additionalProperties": False,
    }


def test_typeddict_not_required_under_string_annotations() -> None:
    # With `from __future__ import annotations`, Python 3.11 puts `pattern` in
    # `__required_keys__`; the explicit NotRequired must still win.
    schema = schema_for_hint(Filter)
    assert schema["required"] == ["field"]
    assert schema["properties"]["pattern"] == {"type": "string", "description": "A regular expression"}
    assert "description" not in schema


# --- Annotated ---------------------------------------------------------------------


def test_annotated_description_and_precedence() -> None:
    assert schema_for_hint(Annotated[int, "How many"]) == {"type": "integer", "description": "How many"}
    # Non-string metadata is ignored; the first string wins.
    assert schema_for_hint(Annotated[int, 3, "first", "second"]) == {"type": "integer", "description": "first"}
    # Annotated on a use site beats the class docstring.
    assert schema_for_hint(Annotated[Level, "Volume"])["description"] == "Volume"
    assert schema_for_hint(Annotated[Optional[str], "Maybe"]) == {
        "anyOf": [{"type": "string"}, NULL],
        "description": "Maybe",
    }


# --- functions ---------------------------------------------------------------------


def count_words(
    text: Annotated[str, "The text to count"],
    min_length: int = 1,
    mode: Literal["words", "chars"] = "words",
    shape: Shape | None = None,
    options: Options | None = None,
    unhinted=None,  # type: ignore[no-untyped-def]
) -> int:
    return 0


def test_input_schema_for_function() -> None:
    schema = input_schema_for(count_words)
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["text"]
    assert list(schema["properties"]) == ["text", "min_length", "mode", "shape", "options", "unhinted"]
    props = schema["properties"]
    assert props["text"] == {"type": "string", "description": "The text to count"}
    assert props["min_length"] == {"type": "integer", "default": 1}
    assert props["mode"] == {"type": "string", "enum": ["words", "chars"], "default": "words"}
    assert props["shape"]["default"] is None
    assert props["unhinted"] == {"default": None}
    assert_in_subset(schema)
    assert json.loads(json.dumps(schema)) == schema  # plain JSON data


def no_params() -> str:
    return ""


def test_function_without_parameters() -> None:
    assert input_schema_for(no_params) == {"type": "object", "properties": {}, "required": [], "additionalProperties": False}


class Opaque:
    pass


def opaque_default(when: int = 0, thing: Any = Opaque()) -> None:
    pass


def test_default_that_is_not_json_is_omitted_but_param_stays_optional() -> None:
    schema = input_schema_for(opaque_default)
    assert schema["properties"]["thing"] == {}
    assert schema["required"] == []


def enum_and_dataclass_defaults(level: Level = Level.HIGH, at: Point = Point(1, 2), pair: tuple[int, ...] = (1, 2)) -> None:
    pass


def test_defaults_are_encoded_as_json() -> None:
    props = input_schema_for(enum_and_dataclass_defaults)["properties"]
    assert props["level"]["default"] == 2
    assert props["at"]["default"] == {"x": 1, "y": 2}
    assert props["pair"]["default"] == [1, 2]


def test_schema_is_deterministic() -> None:
    first = json.dumps(input_schema_for(count_words))
    assert json.dumps(input_schema_for(count_words)) == first


# --- unsupported hints -------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "fragment"),
    [
        (set[str], "set[str]"),
        (frozenset, "frozenset"),
        (Opaque, "Opaque"),
        (dict[int, str], "dict[int, str]"),
        (tuple[int, str], "fixed-length tuples"),
        (bytes, "bytes"),
        (Literal[b"x"], "is not a JSON"),
        (list[set[int]], "set[int]"),
    ],
    ids=repr,
)
def test_unsupported_hints(hint: object, fragment: str) -> None:
    with pytest.raises(SchemaError, match="unsupported type hint") as info:
        schema_for_hint(hint)
    assert fragment in str(info.value)
    assert isinstance(info.value, TypeError)


def takes_a_set(text: str, tags: set[str]) -> None:
    pass


@dataclass
class HasSet:
    tags: set[str]


def takes_nested_set(opts: list[HasSet]) -> None:
    pass


def test_unsupported_hint_names_the_parameter() -> None:
    with pytest.raises(SchemaError) as info:
        input_schema_for(takes_a_set)
    assert str(info.value) == "parameter 'tags': unsupported type hint set[str]"
    assert info.value.parameter == "tags"
    assert info.value.hint == set[str]


def test_unsupported_hint_deep_inside_names_parameter_and_field() -> None:
    with pytest.raises(SchemaError) as info:
        input_schema_for(takes_nested_set)
    assert str(info.value) == "parameter 'opts': unsupported type hint set[str] (at HasSet.tags)"


def test_recursive_dataclass_is_refused() -> None:
    with pytest.raises(SchemaError, match="recursive"):
        schema_for_hint(Node)


def star_args(*items: int) -> None:
    pass


def star_kwargs(**extra: int) -> None:
    pass


def positional_only(a: int, /) -> None:
    pass


@pytest.mark.parametrize("func", [star_args, star_kwargs, positional_only])
def test_parameters_without_a_json_name_are_refused(func: Any) -> None:
    with pytest.raises(SchemaError, match="parameters are not supported"):
        input_schema_for(func)


def test_unresolvable_string_hint_is_a_schema_error() -> None:
    def broken(x: DoesNotExist) -> None:  # type: ignore[name-defined]  # noqa: F821
        pass

    with pytest.raises(SchemaError, match="cannot resolve the type hints"):
        input_schema_for(broken)
