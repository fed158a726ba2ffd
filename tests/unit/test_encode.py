"""Return values → JSON values (`pdk._encode`)."""

from __future__ import annotations

import datetime
import enum
import json
import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pytest

from pdk._encode import EncodeError, json_path, to_json_value
from pdk.errors import ErrorCode


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 2


class Key(str, enum.Enum):
    A = "a"


class Tuple2(enum.Enum):
    ORIGIN = (0, 0)


@dataclass
class Event:
    name: str
    when: Any = None
    color: Color = Color.RED
    tags: tuple[str, ...] = ()
    counter: int = field(default=0, init=False)


@dataclass
class Result:
    events: list[Event]
    extra: dict[str, Any] = field(default_factory=dict)


class Pair(NamedTuple):
    a: int
    b: str


def encode_error(value: object) -> EncodeError:
    with pytest.raises(EncodeError) as info:
        to_json_value(value)
    return info.value


@pytest.mark.parametrize("value", [None, True, False, 0, -3, 2**70, 1.5, "", "x", [], {}, [1, "a", None], {"a": {"b": [1.0]}}])
def test_plain_json_is_unchanged(value: object) -> None:
    assert to_json_value(value) == value


def test_primitive_subclasses_become_plain_types() -> None:
    assert type(to_json_value(Level.HIGH)) is int
    assert to_json_value(Level.HIGH) == 2
    assert type(to_json_value(Key.A)) is str
    assert to_json_value(Color.RED) == "red"
    assert to_json_value(Tuple2.ORIGIN) == [0, 0]


def test_dataclasses_recursively_including_init_false_fields() -> None:
    value = Result([Event("a", tags=("x", "y")), Event("b", when=3)], {"k": Color.RED})
    assert to_json_value(value) == {
        "events": [
            {"name": "a", "when": None, "color": "red", "tags": ["x", "y"], "counter": 0},
            {"name": "b", "when": 3, "color": "red", "tags": [], "counter": 0},
        ],
        "extra": {"k": "red"},
    }
    json.dumps(to_json_value(value), allow_nan=False)


def test_tuples_and_named_tuples_become_arrays() -> None:
    assert to_json_value((1, (2, 3))) == [1, [2, 3]]
    assert to_json_value(Pair(1, "b")) == [1, "b"]


def test_str_enum_keys_become_their_values() -> None:
    assert to_json_value({Key.A: 1}) == {"a": 1}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (datetime.date(2024, 1, 1), "$: cannot encode date"),
        ({1, 2}, "$: cannot encode set"),
        (frozenset(), "$: cannot encode frozenset"),
        (b"x", "$: cannot encode bytes"),
        (object(), "$: cannot encode object"),
        (Event, "$: cannot encode type"),  # the class, not an instance
        (math.nan, "$: cannot encode non-finite number nan"),
        (-math.inf, "$: cannot encode non-finite number -inf"),
        ({1: "a"}, "$: object keys must be strings, got int key 1"),
    ],
)
def test_unencodable_values(value: object, message: str) -> None:
    err = encode_error(value)
    assert str(err) == message
    assert isinstance(err, TypeError)
    assert err.code is ErrorCode.INVALID_OUTPUT


def test_error_paths_go_through_dicts_lists_and_dataclasses() -> None:
    err = encode_error({"result": Event("x", when=datetime.datetime(2024, 1, 1))})
    assert str(err) == "$.result.when: cannot encode datetime"
    assert (err.path, err.message) == ("$.result.when", "cannot encode datetime")
    assert encode_error([1, {"a b": [0.5, math.inf]}]).path == '$[1]["a b"][1]'
    assert encode_error(Result([Event("a"), Event("b", when={3})])).path == "$.events[1].when"


def test_custom_root_path() -> None:
    with pytest.raises(EncodeError) as info:
        to_json_value({"when": datetime.time()}, path="$.result")
    assert str(info.value) == "$.result.when: cannot encode time"


def test_circular_references_are_reported_not_recursed() -> None:
    loop: list[object] = [1]
    loop.append(loop)
    assert str(encode_error(loop)) == "$[1]: cannot encode a circular reference"
    shared = [1]
    assert to_json_value([shared, shared]) == [[1], [1]]  # sharing is not a cycle


def test_json_path() -> None:
    assert json_path("$", "name") == "$.name"
    assert json_path("$", 2) == "$[2]"
    assert json_path("$.a", "b c") == '$.a["b c"]'
    assert json_path("$", 'q"uote') == '$["q\\"uote"]'
    assert json_path("$", "") == '$[""]'
