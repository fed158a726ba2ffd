"""The guest's fast paths agree with the slower code they stand in front of.

`pdk._decode` builds one converter per hint that decodes valid input without recording
errors; on anything it does not accept, the full decoder runs again and words the errors.
`pdk._encode` encodes plain values without building paths and falls back the same way.
These tests pin the contract that makes that safe: the converter accepts exactly what
the full decoder accepts without an error, and returns an equal value of the same types;
the fast encoder returns what the path-tracking encoder returns. Events and commands
built without their generated `__init__` equal constructed ones."""

import dataclasses
import enum
import json
import math
import types
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, NotRequired, Optional, TypedDict, Union

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdk import Plugin, ToolError
from pdk._awaiting import awaitable
from pdk._decode import _INVALID, DecodeError, _decode, _Errors, _value_converter, decode_arguments, decode_value
from pdk._encode import EncodeError, _encode, to_json_value
from pdk._events import Emit, Event, HttpRequest, LogCommand, StatusUpdate, emit, http_request, log, new_id, status_update, wire_event
from pdk._schema import SchemaError
from pdk._wire import WireToolOutput, dumps, tool_output_json


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
class Positive:
    n: int

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise ValueError("n must be positive")


@dataclass
class Node:
    value: int
    children: list["Node"] = field(default_factory=list)


class Options(TypedDict, total=False):
    lower: bool
    limit: int


class Filter(TypedDict):
    field: str
    op: NotRequired[Literal["eq", "ne"]]


@dataclass
class A:
    a: int


@dataclass
class B:
    a: int
    b: int = 0


HINTS: list[Any] = [
    Any,
    object,
    None,
    str,
    int,
    float,
    bool,
    list[int],
    list[str],
    list[Any],
    list,
    tuple[int, ...],
    tuple,
    dict[str, float],
    dict,
    Optional[int],
    Optional[Item],
    Union[int, str],
    Union[str, int],
    Union[int, float],
    Union[float, int],
    Union[A, B],
    Union[B, A],
    Optional[Any],
    Literal["x", "y"],
    Literal[1, 2.5, True, None, "1"],
    Color,
    Level,
    Literal[Color.RED],
    Item,
    Positive,
    Node,
    Options,
    Filter,
    list[Filter],
    dict[str, list[Optional[Item]]],
    Annotated[int, "a count"],
    Annotated[list[Item], "items"],
    Union[int, list[set[int]]],  # an unsupported member the value may never reach
    set[int],
]

VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -7,
    2,
    3.0,
    2.5,
    1e308,
    10**400,
    math.nan,
    math.inf,
    "",
    "x",
    "y",
    "1",
    "red",
    [],
    [1, 2],
    [1, "2"],
    [True],
    [1.5],
    [None, {"name": "a"}],
    (1, 2),
    {},
    {"name": "a"},
    {"name": "a", "qty": 2, "tags": ["t"]},
    {"name": "a", "qty": "2"},
    {"name": "a", "extra": 1},
    {"n": 3},
    {"n": -3},
    {"value": 1, "children": [{"value": 2, "children": [{"value": 3}]}]},
    {"value": 1, "children": [{"value": "2"}]},
    {"lower": True},
    {"lower": 1},
    {"limit": 5, "lower": False},
    {"field": "f"},
    {"field": "f", "op": "eq"},
    {"field": "f", "op": "gt"},
    [{"field": "f"}, {"field": "g", "op": "ne"}],
    {"a": 1},
    {"a": 1, "b": 2},
    {"a": 1.5},
    {"k": [None, {"name": "x"}]},
    {"k": [{"name": 1}]},
    {1: "a"},
]


def slow(hint: Any, value: Any) -> tuple[Any, int]:
    errors = _Errors()
    return _decode(hint, value, "$", errors), errors.total


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (1 is not 1.0, a list not a tuple)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


@pytest.mark.parametrize("hint", HINTS, ids=repr)
def test_the_converter_accepts_exactly_what_the_decoder_accepts_and_returns_the_same(hint: Any) -> None:
    convert = _value_converter(hint)
    for value in VALUES:
        try:
            expected, errors = slow(hint, value)
        except SchemaError:
            # The full decoder refuses the hint for this value: the converter must defer to it.
            assert convert(value) is _INVALID, (hint, value)
            with pytest.raises(SchemaError):
                decode_value(hint, value)
            continue
        got = convert(value)
        if errors:
            assert got is _INVALID, (hint, value, got)
            with pytest.raises(DecodeError):
                decode_value(hint, value)
        else:
            assert got is not _INVALID, (hint, value, expected)
            assert same(got, expected), (hint, value, got, expected)
            assert same(decode_value(hint, value), expected)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(HINTS), json_values)
def test_the_converter_agrees_with_the_decoder_on_any_json(hint: Any, value: Any) -> None:
    try:
        expected, errors = slow(hint, value)
    except SchemaError:
        assert _value_converter(hint)(value) is _INVALID
        return
    got = _value_converter(hint)(value)
    assert (got is _INVALID) == bool(errors), (hint, value, got)
    if not errors:
        assert same(got, expected)


def tool(items: list[Item], color: Color = Color.RED, limit: Optional[int] = None, *, strict: bool = False) -> None:
    """A tool with defaults of every kind."""


def test_arguments_take_the_fast_path_with_defaults_in_declaration_order() -> None:
    out = decode_arguments(tool, {"strict": True, "items": [{"name": "a"}]})
    assert list(out) == ["items", "color", "limit", "strict"]
    assert out == {"items": [Item("a")], "color": Color.RED, "limit": None, "strict": True}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "$: missing required property \"items\""),
        ({"items": [], "extra": 1}, "$: unexpected property \"extra\""),
        ({"items": [{"name": 1}]}, "$.items[0].name: expected string, got number"),
        ({"items": [], "color": "blue"}, '$.color: expected one of "red", "green", got "blue"'),
        ([], "$: expected object, got array"),
    ],
)
def test_bad_arguments_are_worded_by_the_full_decoder(data: Any, message: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_arguments(tool, data)
    assert str(caught.value) == message


def test_a_post_init_refusal_is_an_input_error() -> None:
    with pytest.raises(DecodeError) as caught:
        decode_value(list[Positive], [{"n": 1}, {"n": 0}])
    assert str(caught.value) == "$[1]: n must be positive"


@dataclass
class Point:
    x: float
    y: float
    label: Color = Color.GREEN
    tags: tuple[str, ...] = ()


class Weird(str):
    pass


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


ENCODABLE: list[Any] = [
    None,
    True,
    3,
    2.5,
    "s",
    [1, [2, (3, "x")]],
    {"a": {"b": [None, False]}},
    Point(1, 2.5, tags=("a",)),
    [Point(0, 0), {"p": Point(1, 1, Color.RED)}],
    Level.HIGH,
    {Color.RED: 1},
    Weird("w"),
    {"w": Weird("v")},
    deep(100),  # past the fast path's depth: the path-tracking encoder takes it
]


@pytest.mark.parametrize("value", ENCODABLE, ids=repr)
def test_the_fast_encoder_returns_what_the_path_tracking_one_returns(value: Any) -> None:
    assert same(to_json_value(value), _encode(value, "$", set()))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": [1, math.nan]}, "$.a[1]: cannot encode non-finite number nan"),
        ({"s": {1, 2}}, "$.s: cannot encode set"),
        ({1: "a"}, "$: object keys must be strings, got int key 1"),
        (Point(1, math.inf), "$.y: cannot encode non-finite number inf"),
    ],
)
def test_unencodable_values_are_located_by_the_path_tracking_encoder(value: Any, message: str) -> None:
    with pytest.raises(EncodeError) as caught:
        to_json_value(value)
    assert str(caught.value) == message


def test_a_circular_value_is_refused_with_its_path() -> None:
    loop: list[Any] = [1]
    loop.append({"back": loop})
    with pytest.raises(EncodeError) as caught:
        to_json_value(loop)
    assert str(caught.value) == "$[1].back: cannot encode a circular reference"


def test_events_and_commands_built_without_their_init_equal_the_constructed_ones() -> None:
    fields = ("e1", "inbox", "ws-1", "message", "text", "hi", 5, 2, "c1")
    event = wire_event(*fields)
    assert event == Event(*fields)  # type: ignore[arg-type]
    assert [f.name for f in dataclasses.fields(Event)] == list(vars(event))  # every field, in order
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.id = "other"  # type: ignore[misc]
    assert emit("t", {"a": 1}, id="i") == Emit("t", {"a": 1}, "i")
    assert log("warn", "m", id="i") == LogCommand("warn", "m", "i")
    assert status_update(False, [1], id="i") == StatusUpdate(False, [1], "i")
    assert http_request("get", "http://x", headers={"a": "b"}, json_body={"k": 1}, id="i") == HttpRequest(
        "GET", "http://x", (("a", "b"), ("content-type", "application/json")), b'{"k":1}', "i"
    )
    assert tool_output_json(" s ", "[1]") == WireToolOutput("s", "[1]")
    for cls in (Event, Emit, LogCommand, StatusUpdate, HttpRequest, WireToolOutput):
        assert not hasattr(cls, "__post_init__"), cls  # what skipping the constructor relies on


def test_new_ids_are_version_4_uuids() -> None:
    ids = {new_id() for _ in range(200)}
    assert len(ids) == 200
    for text in ids:
        parsed = uuid.UUID(hex=text)
        assert parsed.hex == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122


class Later:
    def __await__(self) -> Any:
        return iter(())


def test_awaitable_answers_per_value_for_generators_and_per_type_otherwise() -> None:
    def plain() -> Any:
        yield 1

    @types.coroutine
    def coro() -> Any:
        yield

    assert not awaitable(plain())
    assert awaitable(coro())  # a generator flagged as a coroutine, after a plain one
    assert not awaitable(Point(1, 2)) and not awaitable(Point(3, 4))
    assert awaitable(Later()) and awaitable(Later())


@pytest.mark.parametrize(
    "value",
    ["plain", "ünï\u2028\"\\\n", None, True, 0, -1.5, 1e300, 10**30, [], {}, [1, "a", None], {"a": {"b": [1.0, False]}}, ("t", 1)],
    ids=repr,
)
def test_dumps_writes_what_json_dumps_writes_with_the_same_options(value: Any) -> None:
    assert dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def test_dumps_fails_like_json_dumps_and_is_clean_afterwards() -> None:
    shared = [1, 2]
    for bad, error in (([shared, math.nan], ValueError), ({"x": shared, "y": {1, 2}}, TypeError)):
        with pytest.raises(error) as caught:
            dumps(bad)
        with pytest.raises(error) as expected:
            json.dumps(bad, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        assert str(caught.value) == str(expected.value)
        assert dumps([shared, shared]) == "[[1,2],[1,2]]"  # no container left marked as "being encoded"
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference detected"):
        dumps(loop)
    assert dumps({"again": [loop[:0]]}) == '{"again":[[]]}'


@pytest.mark.parametrize("text", ["\ufeff{}", "{", "[1,]", '{"a": 1} x', "", "{} {}", '{"a": {}', "{\n}}", '{"a": NaN, "b": [1e999]}x}'])
def test_bad_tool_input_reads_as_json_loads_words_it(text: str) -> None:
    plugin = Plugin()

    @plugin.tool
    def noop() -> None:
        """Nothing."""

    with pytest.raises(ValueError) as expected:
        json.loads(text)
    with pytest.raises(ToolError) as caught:
        plugin.run_tool("noop", text)
    assert caught.value.message == f"input is not valid JSON: {expected.value}"


class BindingLevel(enum.Enum):
    DEBUG = 0
    INFO = 1
    WARN = 2
    ERROR = 3


def record(name: str) -> Any:
    return lambda *fields: (name, *fields)


BINDINGS = types.SimpleNamespace(
    **{name: record(name) for name in ("Command", "CommandKind_Emit", "Emit", "CommandKind_Log", "LogRecord", "CommandKind_StatusUpdate", "PluginStatus", "ServiceOutput")},
    LogLevel=BindingLevel,
    Payload_Text=type("Payload_Text", (), {"__init__": lambda self, value: setattr(self, "value", value)}),
)


def test_the_bridge_sends_the_data_run_event_encoded_and_encodes_it_itself_when_not_given() -> None:
    from pdk import _host
    from pdk._bridge import Bridge
    from pdk._plugin import WireOutput

    plugin = Plugin()

    @plugin.on_event("inbox")
    def handle(event: Event) -> list[Any]:
        return [emit("t", {"n": 1}, id="e"), log("warn", "w", id="l"), status_update(True, None, id="s")]

    previous = _host.current()
    try:
        bridge = Bridge(plugin, types=BINDINGS, err=RuntimeError, log=None, request=None, fs=None)
        event = types.SimpleNamespace(id="1", ingress="inbox", source="m", kind="k", payload=BINDINGS.Payload_Text("x"),
                                      created_at_ms=0, attempt=1, correlation_id=None)  # fmt: skip
        expected = ("ServiceOutput", None, [
            ("Command", "e", ("CommandKind_Emit", ("Emit", "t", '{"n":1}'))),
            ("Command", "l", ("CommandKind_Log", ("LogRecord", BindingLevel.WARN, "w"))),
            ("Command", "s", ("CommandKind_StatusUpdate", ("PluginStatus", True, None))),
        ])  # fmt: skip
        assert bridge.events_handle(event) == expected
        # A plugin that overrides run_event may build its WireOutput without payloads.
        plugin.run_event = lambda e: WireOutput(None, handle(e))  # type: ignore[method-assign]
        assert bridge.events_handle(event) == expected
    finally:
        _host.install(previous)


@pytest.mark.parametrize("text", ["{}", ' {"text": "a"}', '{"text": "a b", "top": 2}', '{"text": "\\u00e9", "top": 1}  ', '{"text": "x", "top": 1e0}'])
def test_tool_input_decodes_as_json_loads_decodes_it(text: str) -> None:
    plugin = Plugin()
    seen: list[Any] = []

    @plugin.tool
    def echo(text: str = "", top: Any = None) -> None:
        """Keep the arguments."""
        seen.append({"text": text, "top": top})

    plugin.run_tool("echo", text)
    expected = {"text": "", "top": None, **json.loads(text)}
    assert same(seen[0], expected)
