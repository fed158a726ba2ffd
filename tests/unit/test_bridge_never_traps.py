"""The export glue never lets an exception escape (an escaping one traps the component
and loses its state): exceptions whose `__str__`, `__repr__`, details or traceback
raise all become typed `failed` errors. Run in CPython with stand-in binding types."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from pdk import Plugin, ToolError, _host
from pdk._bridge import Bridge
from pdk._wire import UNSHOWABLE, error_from_exception
from pdk.errors import ErrorCode, PluginError


class BindingErrorCode(enum.Enum):
    INVALID_INPUT = 0
    INVALID_OUTPUT = 1
    DENIED = 2
    UNSUPPORTED = 3
    TIMEOUT = 4
    FAILED = 5


@dataclass
class BindingPluginError:
    code: BindingErrorCode
    message: str
    details_json: str | None
    retryable: bool


@dataclass
class BindingToolOutput:
    summary: str
    content_json: str | None


@dataclass
class BindingStatus:
    healthy: bool
    data_json: str | None


class Err(Exception):
    def __init__(self, value: Any) -> None:
        super().__init__(value)
        self.value = value


TYPES = SimpleNamespace(ErrorCode=BindingErrorCode, PluginError=BindingPluginError, ToolOutput=BindingToolOutput, PluginStatus=BindingStatus)


class BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ raises")


class BadRepr(Exception):
    def __repr__(self) -> str:
        raise RuntimeError("__repr__ raises")

    def __str__(self) -> str:
        raise RuntimeError("__str__ raises too")


class NotAStr(Exception):
    def __str__(self) -> Any:
        return 42


class Unencodable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr either")


class EvilDict(dict[str, Any]):
    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("iteration raises")

    def items(self) -> Any:
        raise RuntimeError("items raises")


class EvilStr(str):
    def encode(self, *args: Any, **kwargs: Any) -> bytes:
        raise RuntimeError("encode raises")

    def __str__(self) -> str:
        raise RuntimeError("str raises")


class BadTraceback(Exception):
    @property  # type: ignore[override]
    def __traceback__(self) -> Any:
        raise RuntimeError("traceback raises")


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def make_exceptions() -> list[BaseException]:
    deep = PluginError("deep details", details={"x": nested(100_000)})
    return [
        BadStr(),
        BadRepr(),
        NotAStr(),
        BadTraceback("x"),
        PluginError("details whose repr raises", details=Unencodable()),
        PluginError("details whose encoding raises", details=EvilDict(a=1)),
        ToolError(EvilStr("a message str subclass"), details={"k": EvilStr("v")}),
        ToolError("lone surrogate \ud800 in the message", details={"s": "\udfff"}),
        deep,
        KeyboardInterrupt(),
        SystemExit(3),
        MemoryError(),
    ]


@pytest.fixture
def bridge() -> Iterator[tuple[Plugin, Bridge, list[int]]]:
    plugin = Plugin()
    state = [0]
    raised: list[BaseException] = []

    @plugin.tool
    def count() -> int:
        """Count calls (the state a trap would lose)."""
        state[0] += 1
        return state[0]

    @plugin.tool
    def fail(index: int) -> str:
        """Raise the index-th hostile exception."""
        exc = make_exceptions()[index]
        raised.append(exc)
        raise exc

    previous = _host.current()
    b = Bridge(plugin, types=TYPES, err=Err, log=None, request=None, fs=None)
    try:
        yield plugin, b, state
    finally:
        _host.install(previous)


def call(b: Bridge, tool: str, data: Any) -> Any:
    return b.tools_call(SimpleNamespace(tool=tool, input_json=json.dumps(data)))


@pytest.mark.parametrize("index", range(len(make_exceptions())))
def test_every_hostile_exception_becomes_a_typed_error(bridge: tuple[Plugin, Bridge, list[int]], index: int) -> None:
    _, b, state = bridge
    assert call(b, "count", {}).content_json == "1"
    with pytest.raises(Err) as info:
        call(b, "fail", {"index": index})
    err = info.value.value
    assert isinstance(err, BindingPluginError)
    assert isinstance(err.code, BindingErrorCode)
    assert isinstance(err.message, str) and type(err.message) is str and err.message
    err.message.encode("utf-8")  # lowerable: no lone surrogate
    if err.details_json is not None:
        assert type(err.details_json) is str
        err.details_json.encode("utf-8")
        json.loads(err.details_json)
    # The instance's state is intact: the next call sees it.
    assert call(b, "count", {}).content_json == "2"


def test_an_exception_whose_str_raises_keeps_its_type_name() -> None:
    wire = error_from_exception(BadStr())
    assert wire.code is ErrorCode.FAILED
    assert wire.message == f"BadStr: {UNSHOWABLE}"
    assert json.loads(wire.details_json or "{}")["exception"] == "BadStr"


def test_details_that_cannot_be_encoded_are_left_out_not_fatal() -> None:
    wire = error_from_exception(PluginError("kept", code="denied", details=Unencodable()))
    assert (wire.code, wire.message) == (ErrorCode.DENIED, "kept")
    assert json.loads(wire.details_json or "null") == {"repr": UNSHOWABLE}


def test_a_traceback_that_cannot_be_read_is_empty() -> None:
    wire = error_from_exception(BadTraceback("boom"))
    assert wire.message == "BadTraceback: boom"
    assert json.loads(wire.details_json or "{}")["traceback"] == []


def test_status_and_lifecycle_exports_never_raise_past_the_bridge(bridge: tuple[Plugin, Bridge, list[int]]) -> None:
    plugin, b, _ = bridge

    @plugin.status
    def status(state: Any) -> dict[str, Any]:
        raise BadStr()

    out = b.lifecycle_status()
    assert out.healthy is False
    assert json.loads(out.data_json) == {"error": f"BadStr: {UNSHOWABLE}"}
