"""Export glue between componentize-py bindings and a `Plugin`.

`pdk build` generates a tiny entry module that imports the bindings (which exist
only inside a component) and hands them to `Bridge`; this module itself imports no
bindings, so it stays importable in plain CPython. Every export catches every
exception: an exception escaping an export traps and poisons the instance (its state
is lost). So does a string that cannot be lowered (a lone surrogate): every string
built from plugin data is made encodable before it is returned.
"""

from __future__ import annotations

import sys
from typing import Any

from . import _host
from ._bounds import encodable
from ._host import DirEntry, HostApiError, HttpResponse
from ._events import CloseInfo, Command, Emit, Event, HttpRequest, LogCommand, StatusUpdate, WebSocketSend
from ._plugin import Plugin, WireStatus
from ._wire import UNSHOWABLE, WireError, _new, _set, dumps, error_from_exception
from .errors import ErrorCode


def _snake(enum_member: Any) -> str:
    return str(enum_member.name).lower()


def _payload(c: Command) -> str | None:
    """A command's data as JSON text, for a `WireOutput` built without `payloads`."""
    if isinstance(c, Emit) or (isinstance(c, StatusUpdate) and c.data is not None):
        return dumps(c.data)
    return None


class ComponentHost:
    """The `_host` backend inside a component: calls the real `yoi:host` imports.

    Host imports return errors as `result` values, which componentize-py raises as
    `Err`; they become `HostApiError` here so plugin code sees one exception type."""

    def __init__(self, err_type: type[BaseException], log: Any, request: Any, fs: Any) -> None:
        self._err = err_type
        self._log_mod = log
        self._request = request
        self._fs = fs
        self._levels: dict[str, Any] = {}  # "info" -> log.Level.INFO, looked up once

    def log(self, level: str, message: str) -> None:
        value = self._levels.get(level) if type(level) is str else None
        if value is None:
            value = self._log_mod.Level[level.upper()]
            if type(level) is str:
                self._levels[level] = value
        self._log_mod.write(value, message)

    def _host_error(self, api: str, exc: Any) -> HostApiError:
        value = getattr(exc, "value", None)
        code = _snake(value.code) if value is not None and hasattr(value, "code") else "failed"
        message = str(getattr(value, "message", exc))
        return HostApiError(api, code, message)

    def http_send(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        timeout_ms: int | None,
    ) -> HttpResponse:
        req = self._request.HttpRequest(method, url, headers, body, timeout_ms)
        try:
            resp = self._request.send(req)
        except self._err as exc:
            raise self._host_error("request", exc) from None
        return HttpResponse(resp.status, list(resp.headers), bytes(resp.body), resp.truncated)

    def fs_read(self, root: str, path: str) -> bytes:
        try:
            return bytes(self._fs.read_file(root, path))
        except self._err as exc:
            raise self._host_error("fs", exc) from None

    def fs_write(self, root: str, path: str, data: bytes) -> None:
        try:
            self._fs.write_file(root, path, data)
        except self._err as exc:
            raise self._host_error("fs", exc) from None

    def fs_list(self, root: str, path: str) -> list[DirEntry]:
        try:
            entries = self._fs.list_dir(root, path)
        except self._err as exc:
            raise self._host_error("fs", exc) from None
        return [DirEntry(e.name, _snake(e.kind), e.size) for e in entries]


class Bridge:
    """Implements the exported interfaces for one `Plugin` using binding types."""

    def __init__(self, plugin: Plugin, *, types: Any, err: type[BaseException], log: Any, request: Any, fs: Any) -> None:
        self.plugin = plugin
        self.types = types
        self.err = err
        # Read once instead of on every event or command: the payload case of each
        # binding class (`Payload_Text` -> "text") and the binding log levels.
        self._cases: dict[type, str] = {}
        self._levels: dict[str, Any] = {}
        # Per exact command class: its binding command (a subclass takes `_command`).
        self._lowerers: dict[type, Any] = {
            Emit: self._emit, LogCommand: self._log, WebSocketSend: self._websocket_send,
        }  # fmt: skip
        _host.install(ComponentHost(err, log, request, fs))

    def _error(self, wire: WireError) -> BaseException:
        t = self.types
        details = None if wire.details_json is None else encodable(wire.details_json)
        return self.err(t.PluginError(t.ErrorCode[wire.code.name], encodable(wire.message), details, wire.retryable))

    def _failure(self, exc: BaseException) -> BaseException:
        """The `Err` to raise for `exc`; never raises itself."""
        try:
            return self._error(error_from_exception(exc))
        except BaseException:  # noqa: BLE001 - the last line of defence against a trap
            return self._error(WireError(ErrorCode.FAILED, UNSHOWABLE))

    def tools_call(self, call: Any) -> Any:
        try:
            out = self.plugin.run_tool(call.tool, call.input_json)
            content = None if out.content_json is None else encodable(out.content_json)
            return self.types.ToolOutput(encodable(out.summary), content)
        except BaseException as exc:  # noqa: BLE001 - nothing may escape an export
            raise self._failure(exc) from None

    # -- lifecycle and events ------------------------------------------------------------------

    def _status(self, status: WireStatus) -> Any:
        data = None if status.data_json is None else encodable(status.data_json)
        return self.types.PluginStatus(status.healthy is True, data)

    def lifecycle_start(self, config_json: str) -> Any:
        try:
            return self._status(self.plugin.run_start(config_json))
        except BaseException as exc:  # noqa: BLE001
            raise self._failure(exc) from None

    def lifecycle_stop(self) -> Any:
        try:
            return self._status(self.plugin.run_stop())
        except BaseException as exc:  # noqa: BLE001
            raise self._failure(exc) from None

    def lifecycle_status(self) -> Any:
        # status() returns no result type, so a failing reporter means "unhealthy".
        try:
            return self._status(self.plugin.run_status())
        except BaseException as exc:  # noqa: BLE001
            try:
                message = encodable(error_from_exception(exc).message)
            except BaseException:  # noqa: BLE001
                message = UNSHOWABLE
            return self.types.PluginStatus(False, dumps({"error": message}))

    def _event(self, e: Any) -> Event:
        """The binding event as an `Event`: `wire_event` inlined (one dict, every field in
        declaration order, becomes the instance's), the payload case read once per class."""
        payload = e.payload
        case = self._cases.get(type(payload))
        if case is None:
            case = self._cases[type(payload)] = sys.intern(type(payload).__name__.split("_", 1)[1].lower())
        value: Any = getattr(payload, "value", None)
        if case == "closed":
            value = CloseInfo(value.code, value.reason)
        made = _new(Event)
        _set(made, "__dict__", {
            "id": e.id, "ingress": e.ingress, "source": e.source, "kind": e.kind, "payload_kind": case, "payload": value,
            "created_at_ms": e.created_at_ms, "attempt": e.attempt, "correlation_id": e.correlation_id,
        })  # fmt: skip
        return made

    def _log_level(self, level: str) -> Any:
        value = self._levels.get(level) if type(level) is str else None
        if value is None:
            value = self.types.LogLevel[level.upper()]
            if type(level) is str:
                self._levels[level] = value
        return value

    def _emit(self, c: Emit, payload: str | None) -> Any:
        t = self.types
        return t.Command(c.id, t.CommandKind_Emit(t.Emit(c.topic, payload)))

    def _log(self, c: LogCommand, payload: str | None) -> Any:
        t = self.types
        level = self._levels.get(c.level) if type(c.level) is str else None
        return t.Command(c.id, t.CommandKind_Log(t.LogRecord(level if level is not None else self._log_level(c.level), c.message)))

    def _websocket_send(self, c: WebSocketSend, payload: str | None) -> Any:
        t = self.types
        message = t.Message_Text(c.text) if c.text is not None else t.Message_Binary(c.binary)
        return t.Command(c.id, t.CommandKind_WebsocketSend(t.WebsocketSend(c.connection, message)))

    def _command(self, c: Command, payload: str | None) -> Any:
        """The binding command for `c`; `payload` is its data's JSON text (run_event's)."""
        t = self.types
        if isinstance(c, WebSocketSend):
            message = t.Message_Text(c.text) if c.text is not None else t.Message_Binary(c.binary)
            kind: Any = t.CommandKind_WebsocketSend(t.WebsocketSend(c.connection, message))
        elif isinstance(c, HttpRequest):
            kind = t.CommandKind_HttpRequest(t.HttpRequest(c.method, c.url, list(c.headers), c.body))
        elif isinstance(c, Emit):
            kind = t.CommandKind_Emit(t.Emit(c.topic, payload))
        elif isinstance(c, LogCommand):
            kind = t.CommandKind_Log(t.LogRecord(self._log_level(c.level), c.message))
        elif isinstance(c, StatusUpdate):
            kind = t.CommandKind_StatusUpdate(t.PluginStatus(c.healthy, payload))
        else:  # run_event already refused anything else
            raise TypeError(f"not a command: {type(c).__name__}")
        return t.Command(c.id, kind)

    def events_handle(self, event: Any) -> Any:
        try:
            out = self.plugin.run_event(self._event(event))
            data = None if out.data_json is None else encodable(out.data_json)
            commands = out.commands
            if not commands:
                return self.types.ServiceOutput(data, [])
            payloads = out.payloads if len(out.payloads) == len(commands) else [_payload(c) for c in commands]
            lowerers = self._lowerers
            lowered = []
            for c, p in zip(commands, payloads):
                lower = lowerers.get(type(c))
                lowered.append(lower(c, p) if lower is not None else self._command(c, p))
            return self.types.ServiceOutput(data, lowered)
        except BaseException as exc:  # noqa: BLE001
            raise self._failure(exc) from None
