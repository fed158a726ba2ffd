"""JSON → typed Python values (`pdk._decode`), checked against the schema the
same hints produce. Evaluated annotations here (no `from __future__`), the
schema tests cover the string form."""

import enum
import json
import math
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, NotRequired, Optional, TypedDict, Union

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdk._decode import MAX_ERRORS, DecodeError, decode_arguments, decode_value
from pdk._encode import to_json_value
from pdk._schema import SchemaError, input_schema_for, schema_for_hint
from pdk.errors import ErrorCode


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclass
class Item:
    name: str
    qty: int = 1
    tags: list[str] = field(default_factory=list)


@dataclass
class Order:
    id: int
    items: list[Item]
    color: Color = Color.RED


@dataclass
class Positive:
    n: int

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise ValueError("n must be positive")


class Options(TypedDict, total=False):
    lower: bool
    limit: int


class Filter(TypedDict):
    field: str
    pattern: NotRequired[str]
    options: NotRequired[Options]


@dataclass
class Cat:
    meow: str


@dataclass
class Dog:
    bark: str
    volume: int = 1


def errors_of(hint: object, value: object) -> list[tuple[str, str]]:
    with pytest.raises(DecodeError) as info:
        decode_value(hint, value)
    return info.value.errors


def error_of(hint: object, value: object) -> str:
    with pytest.raises(DecodeError) as info:
        decode_value(hint, value)
    return str(info.value)


# --- scalars -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "value"),
    [(str, "x"), (int, 3), (int, -(2**70)), (float, 1.5), (bool, True), (bool, False), (None, None), (Any, {"a": [1]})],
)
def test_scalars_pass_through(hint: object, value: object) -> None:
    assert decode_value(hint, value) == value


def test_int_is_accepted_for_float_and_becomes_float() -> None:
    result = decode_value(float, 3)
    assert result == 3.0 and type(result) is float


@pytest.mark.parametrize(
    ("hint", "value", "message"),
    [
        (str, 5, "$: expected string, got number"),
        (str, None, "$: expected string, got null"),
        (int, "3", "$: expected integer, got string"),
        (int, True, "$: expected integer, got boolean"),  # bool is an int in Python, not in JSON
        (int, 3.0, "$: expected integer, got number"),  # integral floats are not integers
        (int, 3.5, "$: expected integer, got number"),
        (float, False, "$: expected number, got boolean"),
        (float, "1.5", "$: expected number, got string"),
        (float, math.nan, "$: expected number, got NaN"),
        (float, math.inf, "$: expected number, got Infinity"),
        (float, 10**400, "$: number out of range"),
        (bool, 1, "$: expected boolean, got number"),
        (bool, "true", "$: expected boolean, got string"),
        (None, 0, "$: expected null, got number"),
        (list[int], {}, "$: expected array, got object"),
        (dict[str, int], [], "$: expected object, got array"),
        (Item, "x", "$: expected object, got string"),
        (Options, 1, "$: expected object, got number"),
        (str, b"x", "$: expected string, got bytes"),
    ],
)
def test_scalar_errors(hint: object, value: object, message: str) -> None:
    assert error_of(hint, value) == message


# --- literals and enums ------------------------------------------------------------


def test_literal() -> None:
    assert decode_value(Literal["a", "b"], "b") == "b"
    assert error_of(Literal["a", "b"], "c") == '$: expected one of "a", "b", got "c"'
    assert error_of(Literal["a", "b"], 1) == '$: expected one of "a", "b", got 1'
    assert error_of(Literal["a", "b"], [1]) == '$: expected one of "a", "b", got array'
    # true is not 1 in JSON, even though True == 1 in Python.
    assert error_of(Literal[1, 2], True) == "$: expected one of 1, 2, got true"
    assert decode_value(Literal[1, 2], 2) == 2
    assert decode_value(Literal[None, "x"], None) is None
    assert decode_value(Literal[Color.GREEN], "green") is Color.GREEN


def test_enum_returns_members() -> None:
    assert decode_value(Color, "red") is Color.RED
    assert decode_value(Level, 2) is Level.HIGH
    assert error_of(Color, "blue") == '$: expected one of "red", "green", got "blue"'
    assert error_of(Level, True) == "$: expected one of 1, 2, got true"
    assert error_of(Level, "1") == '$: expected one of 1, 2, got "1"'


def test_long_values_and_long_choice_lists_are_cut() -> None:
    many = enum.Enum("Many", {f"V{i}": f"v{i}" for i in range(30)})  # type: ignore[misc]
    message = error_of(many, "x" * 500)
    assert "… (30 in all)" in message
    assert len(message) < 300


# --- containers and nested paths ---------------------------------------------------


def test_list_tuple_dict() -> None:
    assert decode_value(list[int], [1, 2]) == [1, 2]
    assert decode_value(tuple[int, ...], [1, 2]) == (1, 2)
    assert decode_value(tuple, [1, "a"]) == (1, "a")
    assert decode_value(dict[str, float], {"a": 1}) == {"a": 1.0}
    assert decode_value(list, [1, "a"]) == [1, "a"]
    assert decode_value(dict, {"a": None}) == {"a": None}


def test_nested_paths() -> None:
    value = {"id": 1, "items": [{"name": "a"}, {"name": "b"}, {"name": 7, "qty": "2"}]}
    assert errors_of(Order, value) == [
        ("$.items[2].name", "expected string, got number"),
        ("$.items[2].qty", "expected integer, got string"),
    ]
    assert error_of(Order, value) == "$.items[2].name: expected string, got number (and 1 more)"
    assert errors_of(dict[str, list[int]], {"a": [1], "b c": [1, "x"]}) == [('$["b c"][1]', "expected integer, got string")]
    assert errors_of(list[list[bool]], [[True], [False, None]]) == [("$[1][1]", "expected boolean, got null")]


def test_dataclass_decoding_applies_own_defaults() -> None:
    order = decode_value(Order, {"id": 1, "items": [{"name": "a", "tags": ["x"]}, {"name": "b"}], "color": "green"})
    assert order == Order(1, [Item("a", 1, ["x"]), Item("b")], Color.GREEN)
    first, second = order.items  # type: ignore[attr-defined]
    assert first.tags is not second.tags  # default_factory ran per instance


def test_missing_and_unexpected_properties() -> None:
    assert errors_of(Item, {"qty": 2, "nmae": "x"}) == [
        ("$", 'unexpected property "nmae"'),
        ("$", 'missing required property "name"'),
    ]
    assert errors_of(Order, {"id": 1, "items": [{}]}) == [("$.items[0]", 'missing required property "name"')]


def test_post_init_value_error_is_a_decode_error() -> None:
    assert error_of(Positive, {"n": 0}) == "$: n must be positive"
    assert decode_value(Positive, {"n": 2}) == Positive(2)


def test_typeddict() -> None:
    assert decode_value(Filter, {"field": "a"}) == {"field": "a"}
    assert decode_value(Filter, {"field": "a", "options": {"limit": 3}}) == {"field": "a", "options": {"limit": 3}}
    assert errors_of(Filter, {"pattern": 1, "options": {"limit": True, "upper": True}}) == [
        ("$", 'missing required property "field"'),
        ("$.pattern", "expected string, got number"),
        ("$.options", 'unexpected property "upper"'),
        ("$.options.limit", "expected integer, got boolean"),
    ]


# --- unions ------------------------------------------------------------------------


@pytest.mark.parametrize("hint", [Optional[int], int | None, Union[None, int]])
def test_optional(hint: object) -> None:
    assert decode_value(hint, None) is None
    assert decode_value(hint, 4) == 4
    assert error_of(hint, "4") == "$: expected integer or null, got string"
    assert error_of(hint, 4.0) == "$: expected integer or null, got number"


def test_union_picks_the_member_for_the_json_type() -> None:
    hint = Union[int, str, list[int]]
    assert decode_value(hint, 1) == 1
    assert decode_value(hint, "1") == "1"
    assert decode_value(hint, [1]) == [1]
    assert error_of(hint, {}) == "$: expected string or integer or array, got object"
    # The only member taking arrays reports its own, precise errors.
    assert errors_of(hint, [1, "x"]) == [("$[1]", "expected integer, got string")]


def test_union_of_objects_tries_each_in_order() -> None:
    hint = Cat | Dog
    assert decode_value(hint, {"meow": "m"}) == Cat("m")
    assert decode_value(hint, {"bark": "b"}) == Dog("b")
    # Neither fits: the closest member's errors are reported.
    assert errors_of(hint, {"bark": "b", "volume": "loud"}) == [("$.volume", "expected integer, got string")]


def test_int_or_float_keeps_declaration_order() -> None:
    assert type(decode_value(int | float, 3)) is int
    assert type(decode_value(float | int, 3)) is float
    assert decode_value(int | float, 2.5) == 2.5


def test_optional_enum_and_literal() -> None:
    assert decode_value(Optional[Color], "red") is Color.RED
    assert error_of(Optional[Color], "blue") == '$: expected one of "red", "green", got "blue"'
    assert error_of(Optional[Literal["a"]], 3) == "$: expected string or null, got number"


def test_annotated_is_transparent() -> None:
    assert decode_value(Annotated[int, "count"], 3) == 3
    assert error_of(Annotated[list[Annotated[int, "x"]], "xs"], [True]) == "$[0]: expected integer, got boolean"


# --- error collection --------------------------------------------------------------


def test_errors_are_collected_up_to_the_limit() -> None:
    with pytest.raises(DecodeError) as info:
        decode_value(list[int], ["x"] * 25)
    err = info.value
    assert len(err.errors) == MAX_ERRORS == 10
    assert err.errors[0] == ("$[0]", "expected integer, got string")
    assert err.errors[-1] == ("$[9]", "expected integer, got string")
    assert err.total == 25
    assert str(err) == "$[0]: expected integer, got string (and 24 more)"
    assert (err.path, err.message) == ("$[0]", "expected integer, got string")
    assert err.code is ErrorCode.INVALID_INPUT
    assert isinstance(err, ValueError)


def test_single_error_has_no_suffix() -> None:
    assert error_of(str, 1) == "$: expected string, got number"


def test_custom_root_path() -> None:
    with pytest.raises(DecodeError) as info:
        decode_value(list[str], [1], path="$.args")
    assert str(info.value) == "$.args[0]: expected string, got number"


# --- decode_arguments --------------------------------------------------------------


def summarize(
    text: Annotated[str, "The text"],
    items: list[Item],
    mode: Literal["a", "b"] = "a",
    color: Optional[Color] = None,
    scale: float = 1.0,
    filters: Optional[list[Filter]] = None,
) -> None:
    pass


def test_decode_arguments_converts_and_applies_defaults() -> None:
    kwargs = decode_arguments(summarize, {"items": [{"name": "x", "qty": 2}], "text": "hi", "scale": 2})
    assert kwargs == {
        "text": "hi",
        "items": [Item("x", 2)],
        "mode": "a",
        "color": None,
        "scale": 2.0,
        "filters": None,
    }
    assert list(kwargs) == ["text", "items", "mode", "color", "scale", "filters"]  # declaration order
    summarize(**kwargs)  # type: ignore[arg-type]


def test_decode_arguments_error_formats() -> None:
    with pytest.raises(DecodeError) as info:
        decode_arguments(
            summarize,
            {"items": [{"name": "a"}, {"name": "b"}, {"name": 3}], "mode": "c", "extra": 1, "color": "red"},
        )
    assert info.value.errors == [
        ("$", 'unexpected property "extra"'),
        ("$", 'missing required property "text"'),
        ("$.items[2].name", "expected string, got number"),
        ("$.mode", 'expected one of "a", "b", got "c"'),
    ]
    assert str(info.value) == '$: unexpected property "extra" (and 3 more)'


@pytest.mark.parametrize(("data", "kind"), [([], "array"), ("x", "string"), (None, "null"), (1.5, "number")])
def test_decode_arguments_needs_an_object(data: object, kind: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_arguments(summarize, data)
    assert str(info.value) == f"$: expected object, got {kind}"


def test_explicit_null_is_not_a_missing_optional() -> None:
    with pytest.raises(DecodeError) as info:
        decode_arguments(summarize, {"text": "t", "items": [], "mode": None})
    assert str(info.value) == '$.mode: expected one of "a", "b", got null'


def no_hints(a, b=2):  # type: ignore[no-untyped-def]
    return a


def test_unhinted_parameters_take_any_json() -> None:
    assert decode_arguments(no_hints, {"a": {"x": [1]}}) == {"a": {"x": [1]}, "b": 2}


def takes_a_set(tags: set[str]) -> None:
    pass


def test_unsupported_hint_is_a_schema_error_not_a_decode_error() -> None:
    with pytest.raises(SchemaError):
        decode_arguments(takes_a_set, {"tags": []})


class Tool:
    def run(self, text: str, n: int = 1) -> str:
        return text * n


def test_bound_methods_skip_self() -> None:
    assert decode_arguments(Tool().run, {"text": "x"}) == {"text": "x", "n": 1}


# --- round trip against the derived schema -----------------------------------------


def draw(shape_name: str, points: list[tuple[int, ...]], fill: Optional[Color] = None, meta: dict[str, Any] = {}) -> None:  # noqa: B006
    pass


def configure(levels: list[Level], options: Options, by_name: dict[str, Dog | Cat], note: str | None = None) -> None:
    pass


ROUND_TRIPS: list[tuple[Any, dict[str, Any]]] = [
    (summarize, {"text": "hi", "items": [{"name": "x"}, {"name": "y", "qty": 3, "tags": ["a"]}], "mode": "b", "color": "green"}),
    (summarize, {"text": "", "items": [], "scale": 7, "filters": [{"field": "f", "options": {"lower": True}}]}),
    (draw, {"shape_name": "tri", "points": [[0, 0], [1, 0], [0, 1]], "fill": None}),
    (draw, {"shape_name": "dot", "points": [], "meta": {"k": [1, {"z": None}]}}),
    (configure, {"levels": [1, 2, 1], "options": {"limit": 5}, "by_name": {"rex": {"bark": "woof"}, "tom": {"meow": "m"}}}),
]


@pytest.mark.parametrize(("func", "data"), ROUND_TRIPS)
def test_round_trip(func: Any, data: dict[str, Any]) -> None:
    schema = input_schema_for(func)
    jsonschema.validate(data, schema)  # the example input is valid for the published schema
    kwargs = decode_arguments(func, data)
    # The decoded values, encoded again, still satisfy the schema...
    reencoded = to_json_value(kwargs)
    jsonschema.validate(reencoded, schema)
    # ...and decode to the same values.
    assert decode_arguments(func, json.loads(json.dumps(reencoded))) == kwargs


@pytest.mark.parametrize(
    ("func", "data"),
    [
        (summarize, {"text": "hi", "items": [{"name": 1}]}),
        (summarize, {"text": "hi", "items": [], "mode": "z"}),
        (summarize, {"text": "hi", "items": [], "other": 1}),
        (summarize, {"items": []}),
        (configure, {"levels": [3], "options": {}, "by_name": {}}),
        (configure, {"levels": [], "options": {"limit": 1}, "by_name": {"x": {"purr": "p"}}}),
    ],
)
def test_schema_and_decoder_agree_on_invalid_input(func: Any, data: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, input_schema_for(func))
    with pytest.raises(DecodeError):
        decode_arguments(func, data)


# --- properties: valid input decodes; the decoder never accepts what the schema rejects

text = st.text(max_size=8)
integers = st.integers(-(2**40), 2**40)
finite = st.floats(allow_nan=False, allow_infinity=False)

# Each hint with a strategy for JSON values that are valid for it.
VALID: dict[object, st.SearchStrategy[Any]] = {
    int: integers,
    float: finite | integers,
    str: text,
    bool: st.booleans(),
    Optional[int]: st.none() | integers,
    list[int]: st.lists(integers, max_size=4),
    tuple[str, ...]: st.lists(text, max_size=4),
    dict[str, Optional[float]]: st.dictionaries(text, st.none() | finite, max_size=4),
    Literal["a", "b", 1]: st.sampled_from(["a", "b", 1]),
    Color: st.sampled_from(["red", "green"]),
    Level: st.sampled_from([1, 2]),
    Item: st.fixed_dictionaries({"name": text}, optional={"qty": integers, "tags": st.lists(text, max_size=3)}),
    Filter: st.fixed_dictionaries(
        {"field": text},
        optional={
            "pattern": text,
            "options": st.fixed_dictionaries({}, optional={"lower": st.booleans(), "limit": integers}),
        },
    ),
    Cat | Dog: st.fixed_dictionaries({"meow": text}) | st.fixed_dictionaries({"bark": text}, optional={"volume": integers}),
    Union[int, str, list[bool]]: integers | text | st.lists(st.booleans(), max_size=4),
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["a", "b", "red", "green", "x", "meow", "bark", "name", "field"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(
        st.sampled_from(["name", "qty", "tags", "field", "pattern", "options", "meow", "bark", "volume", "limit", "k"]),
        children,
        max_size=4,
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), hint=st.sampled_from(list(VALID)))
def test_valid_input_decodes_and_reencodes_within_the_schema(data: st.DataObject, hint: object) -> None:
    value = data.draw(VALID[hint])
    schema = schema_for_hint(hint)
    jsonschema.validate(value, schema)
    decoded = decode_value(hint, value)
    reencoded = to_json_value(decoded)
    jsonschema.validate(reencoded, schema)
    assert decode_value(hint, reencoded) == decoded


@settings(max_examples=300, deadline=None)
@given(data=st.data(), hint=st.sampled_from(list(VALID)))
def test_decoder_is_at_least_as_strict_as_the_schema(data: st.DataObject, hint: object) -> None:
    value = data.draw(json_values | VALID[hint])
    schema = schema_for_hint(hint)
    try:
        decoded = decode_value(hint, value)
    except DecodeError as err:
        assert err.errors and all(path.startswith("$") for path, _ in err.errors)
        return
    jsonschema.validate(value, schema)
    jsonschema.validate(to_json_value(decoded), schema)
