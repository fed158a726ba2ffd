"""The guest's per-event fast paths agree with the plain code they replace.

`pdk._events.PAYLOAD_CHECKS` bounds each command by its exact type instead of the
`payload_json` / `command_payload_size` isinstance chains; the bridge builds an `Event`
without `wire_event` and lowers the common commands without `_command`; `Plugin` finds a
handler once per (ingress, kind). Each must give what the plain code gives, bounds and
errors included."""

from __future__ import annotations

import dataclasses
import types
from typing import Any

import pytest

from pdk import Plugin, commands
from pdk._bridge import Bridge
from pdk._events import (
    CloseInfo,
    Emit,
    Event,
    HttpRequest,
    LogCommand,
    PayloadTooLarge,
    StatusUpdate,
    WebSocketSend,
    command_payload_size,
    payload_check,
    payload_json,
    wire_event,
)
from pdk.errors import PluginError
from pdk.limits import COMMAND_PAYLOAD_MAX_BYTES

LIMIT = COMMAND_PAYLOAD_MAX_BYTES


def plain_check(c: Any) -> str | None:
    """What `run_event` did per command before the table."""
    text = payload_json(c)
    size = command_payload_size(c) if text is None else len(text.encode("utf-8"))
    if size > LIMIT:
        raise PayloadTooLarge
    return text


class MyEmit(Emit):
    pass


COMMANDS: list[Any] = [
    commands.emit("t", {"a": 1}),
    commands.emit("t"),
    commands.emit("t", "x" * (LIMIT - 2)),  # exactly at the bound once quoted
    commands.emit("t", "x" * (LIMIT - 1)),
    commands.emit("t", "é" * (LIMIT // 2 - 1)),
    commands.emit("t", "é" * (LIMIT // 2)),
    commands.status_update(True),
    commands.status_update(False, {"n": [1, 2]}),
    commands.status_update(True, "x" * LIMIT),
    commands.log("info", "m"),
    commands.log("warn", "x" * LIMIT),
    commands.log("warn", "x" * (LIMIT + 1)),
    commands.log("warn", "ü" * (LIMIT // 2 + 1)),
    commands.websocket_send("c", text="hi"),
    commands.websocket_send("c", text="€" * (LIMIT // 3 + 1)),
    commands.websocket_send("c", binary=b"\x00" * LIMIT),
    commands.websocket_send("c", binary=b"\x00" * (LIMIT + 1)),
    commands.http_request("get", "http://x", headers={"a": "b"}),
    commands.http_request("post", "http://x", body=b"x" * LIMIT),
    MyEmit("t", {"sub": True}),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"{type(c).__name__}-{command_payload_size(c)}")
def test_the_payload_table_bounds_and_encodes_as_the_isinstance_chain_did(command: Any) -> None:
    check = payload_check(command)
    assert check is not None
    try:
        expected: Any = plain_check(command)
    except PayloadTooLarge:
        with pytest.raises(PayloadTooLarge):
            check(command)
        return
    assert check(command) == expected


@pytest.mark.parametrize(
    "command",
    [commands.emit("t", "\ud800"), commands.log("info", "\udfff"), commands.websocket_send("c", text="a\ud83d")],
    ids=["emit", "log", "websocket"],
)
def test_a_lone_surrogate_still_fails_to_measure_instead_of_reaching_the_bindings(command: Any) -> None:
    with pytest.raises(UnicodeEncodeError):
        plain_check(command)
    with pytest.raises(UnicodeEncodeError):
        payload_check(command)(command)


def test_what_is_not_a_command_has_no_check() -> None:
    for value in (None, "emit", {"topic": "t"}, Event, types.SimpleNamespace(topic="t", data=None, id="x")):
        assert payload_check(value) is None


def test_run_event_refuses_and_bounds_as_before() -> None:
    plugin = Plugin()
    returned: list[Any] = []

    @plugin.on_event("inbox")
    def handle(event: Event) -> Any:
        return returned[0]

    def run(value: Any) -> Any:
        returned[:] = [value]
        return plugin.run_event(Event.of_text("inbox", "x"))

    with pytest.raises(PluginError, match=r"commands\[1\] is a str, not a command"):
        run([commands.log("info", "ok"), "nope"])
    with pytest.raises(PluginError, match=rf"commands\[0\] payload exceeds {LIMIT} bytes"):
        run([commands.log("info", "x" * (LIMIT + 1))])
    with pytest.raises(PluginError, match="handler returned int"):
        run(3)
    out = run((commands.emit("t", 1, id="a"),))
    assert out.commands == [Emit("t", 1, "a")] and out.payloads == ("1",) and out.data_json is None
    assert run(None).commands == [] and run(commands.log("info", "m", id="l")).commands == [LogCommand("info", "m", "l")]


def test_a_handler_registered_or_removed_later_is_routed() -> None:
    plugin = Plugin()
    seen: list[str] = []

    @plugin.on_event("inbox", kinds=["a"])
    def first(event: Event) -> None:
        seen.append("first")

    plugin.run_event(Event.of_text("inbox", "x", kind="a"))
    with pytest.raises(PluginError, match="no handler"):
        plugin.run_event(Event.of_text("inbox", "x", kind="b"))

    @plugin.on_event("inbox", kinds=["b"])
    def second(event: Event) -> None:
        seen.append("second")

    plugin.run_event(Event.of_text("inbox", "x", kind="b"))
    plugin.event_handlers.pop(0)  # changed without on_event
    with pytest.raises(PluginError, match="no handler"):
        plugin.run_event(Event.of_text("inbox", "x", kind="a"))
    with pytest.raises(PluginError, match="no handler"):
        plugin.run_event(Event(id="1", ingress="inbox", source="s", kind=["unhashable"]))  # type: ignore[arg-type]
    assert seen == ["first", "second"]


class Text:
    def __init__(self, value: Any) -> None:
        self.value = value


Payload_Text = type("Payload_Text", (Text,), {})
Payload_Binary = type("Payload_Binary", (Text,), {})
Payload_Closed = type("Payload_Closed", (Text,), {})
Payload_Empty = type("Payload_Empty", (), {})


@pytest.mark.parametrize(
    ("payload", "kind", "value"),
    [
        (Payload_Text("hi"), "text", "hi"),
        (Payload_Binary(b"\x01"), "binary", b"\x01"),
        (Payload_Closed(types.SimpleNamespace(code=1000, reason="bye")), "closed", CloseInfo(1000, "bye")),
        (Payload_Empty(), "empty", None),
    ],
    ids=["text", "binary", "closed", "empty"],
)
def test_the_bridge_builds_the_event_wire_event_builds(payload: Any, kind: str, value: Any) -> None:
    from pdk import _host

    previous = _host.current()
    try:
        bridge = Bridge(Plugin(), types=types.SimpleNamespace(), err=RuntimeError, log=None, request=None, fs=None)
        raw = types.SimpleNamespace(id="1", ingress="inbox", source="ws", kind="message", payload=payload,
                                    created_at_ms=5, attempt=2, correlation_id="c")  # fmt: skip
        for _ in range(2):  # the payload case is read from the class once, then cached
            event = bridge._event(raw)
            expected = wire_event("1", "inbox", "ws", "message", kind, value, 5, 2, "c")
            assert event == expected and list(vars(event)) == [f.name for f in dataclasses.fields(Event)]
            assert (event.text, event.binary, event.close) == (expected.text, expected.binary, expected.close)
    finally:
        _host.install(previous)


def test_accessors_keep_their_types_and_accept_subclasses() -> None:
    class S(str):
        pass

    assert Event("1", "i", "s", "k", "text", S("x")).text == "x"
    assert Event("1", "i", "s", "k", "text", b"x").text is None
    assert Event("1", "i", "s", "k", "binary", "x").binary is None
    assert Event("1", "i", "s", "k", "failure", "why").failure == "why"
    assert Event("1", "i", "s", "k", "text", "x").failure is None
    assert Event("1", "i", "s", "k", "closed", CloseInfo(1000)).close == CloseInfo(1000)


def test_reply_text_equals_the_constructed_send_and_still_refuses_none() -> None:
    event = Event.of_text("inbox", "x", source="conn")
    assert event.reply_text("hi", id="r") == WebSocketSend(connection="conn", text="hi", id="r")
    with pytest.raises(ValueError, match="exactly one"):
        event.reply_text(None)  # type: ignore[arg-type]
    assert isinstance(HttpRequest("GET", "u"), HttpRequest) and StatusUpdate().data is None
