"""`async def` tools, event handlers and lifecycle hooks in plain CPython: the
coroutine is driven to completion inside the call (no event loop exists in a
component), and what needs a real loop is a typed `unsupported` error naming it."""

from __future__ import annotations

import asyncio
import json
import types
from dataclasses import dataclass

import pytest

from pdk import ErrorCode, Event, Plugin, PluginError, commands


async def _double(x: int) -> int:
    await asyncio.sleep(0)  # a bare yield: fine without a loop
    return x * 2


@dataclass
class Config:
    greeting: str = "hi"


def make_plugin() -> Plugin:
    plugin = Plugin()

    @plugin.tool
    async def double(x: int, times: int = 1) -> dict[str, int]:
        """Double `x`, `times` times."""
        for _ in range(times):
            x = await _double(x)
        return {"value": x}

    @plugin.tool
    async def wait_timer(seconds: float) -> str:
        """Needs a real event loop."""
        await asyncio.sleep(seconds)
        return "slept"

    @plugin.tool
    async def wait_future() -> str:
        """Awaits a bare future."""
        await asyncio.Future()
        return "never"

    @plugin.tool
    async def fails() -> str:
        """Raises after an await."""
        await asyncio.sleep(0)
        raise PluginError("nope", code=ErrorCode.INVALID_INPUT)

    @plugin.on_start
    async def start(config: Config) -> dict[str, object]:
        await asyncio.sleep(0)
        return {"greeting": config.greeting, "seen": 0}

    @plugin.status
    async def status(state: dict[str, object]) -> dict[str, object]:
        return {"seen": state["seen"]}

    @plugin.on_event("inbox", kinds=["text"])
    async def on_text(state: dict[str, object], event: Event) -> list[object]:
        state["seen"] = int(str(state["seen"])) + 1
        doubled = await _double(len(event.text or ""))
        return [commands.emit("said", {"greeting": state["greeting"], "doubled": doubled})]

    return plugin


def test_async_tool_schema_sees_through_async_def() -> None:
    schema = make_plugin().tools["double"].input_schema
    assert schema["required"] == ["x"]
    assert schema["properties"]["x"] == {"type": "integer"}
    assert schema["properties"]["times"]["default"] == 1
    assert make_plugin().tools["double"].description == "Double `x`, `times` times."


def test_async_tool_returns_its_result() -> None:
    out = make_plugin().run_tool("double", json.dumps({"x": 5, "times": 3}))
    assert json.loads(out.content_json or "null") == {"value": 40}
    assert out.summary == 'double: {"value":40}'


def test_async_tool_input_is_still_validated() -> None:
    with pytest.raises(PluginError) as info:
        make_plugin().run_tool("double", json.dumps({"x": "five"}))
    assert info.value.code is ErrorCode.INVALID_INPUT


def test_async_tool_error_after_await_is_the_plugins_error() -> None:
    with pytest.raises(PluginError) as info:
        make_plugin().run_tool("fails", "{}")
    assert (info.value.code, info.value.message) == (ErrorCode.INVALID_INPUT, "nope")


def test_timed_sleep_is_refused_naming_where() -> None:
    with pytest.raises(PluginError) as info:
        make_plugin().run_tool("wait_timer", json.dumps({"seconds": 0.01}))
    assert info.value.code is ErrorCode.UNSUPPORTED
    assert "tool 'wait_timer' is async and needs an event loop" in info.value.message
    assert "sleep()" in info.value.message and "plain `def`" in info.value.message


def test_awaiting_a_future_is_refused_naming_it() -> None:
    with pytest.raises(PluginError) as info:
        make_plugin().run_tool("wait_future", "{}")
    assert info.value.code is ErrorCode.UNSUPPORTED
    assert "tool 'wait_future' awaited a Future in wait_future() (test_async_handlers.py:" in info.value.message


def test_async_lifecycle_and_handler() -> None:
    plugin = make_plugin()
    started = plugin.run_start(json.dumps({"greeting": "hello"}))
    assert started.healthy is True and json.loads(started.data_json or "null") == {"seen": 0}
    out = plugin.run_event(Event.of_text("inbox", "abc"))
    assert [c.topic for c in out.commands] == ["said"]  # type: ignore[union-attr]
    assert out.commands[0].data == {"greeting": "hello", "doubled": 6}  # type: ignore[union-attr]
    assert json.loads(plugin.run_status().data_json or "null") == {"seen": 1}


def test_async_on_stop_runs() -> None:
    plugin = Plugin()
    stopped: list[object] = []

    @plugin.on_stop
    async def stop(state: object) -> None:
        await asyncio.sleep(0)
        stopped.append(state)

    plugin.run_start("{}")
    plugin.run_stop()
    assert stopped == [{}]


def test_a_generator_based_coroutine_and_an_awaitable_object_are_driven() -> None:
    @types.coroutine
    def legacy() -> object:
        yield  # a bare yield, like asyncio.sleep(0)
        return 7

    class Ready:
        def __await__(self) -> object:
            return (yield from legacy())

    plugin = Plugin()

    @plugin.tool
    def via_legacy() -> object:
        """Returns an awaitable, not a coroutine."""
        return legacy()

    @plugin.tool
    def via_object() -> object:
        """Returns an object with __await__."""
        return Ready()

    assert plugin.run_tool("via_legacy", "{}").summary == "via_legacy: 7"
    assert plugin.run_tool("via_object", "{}").summary == "via_object: 7"
