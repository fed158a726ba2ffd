"""Inbound events and output commands, as plain dataclasses.

Handlers receive an `Event` and return commands; the bridge converts both to and
from the binding types inside a component, and unit tests use them directly."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, Union

from ._wire import _new, _set, dumps, frozen as _frozen
from .limits import COMMAND_PAYLOAD_MAX_BYTES

PayloadKind = Literal["text", "binary", "json", "closed", "failure", "empty"]
LogLevel = Literal["debug", "info", "warn", "error"]


def new_id() -> str:
    """A random (version 4) UUID as 32 hex digits, like `uuid.uuid4().hex` without
    building a `UUID` object (every command gets one)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


@dataclass(frozen=True)
class CloseInfo:
    """Why a connection closed (WebSocket close code and reason)."""

    code: int
    reason: str = ""


@dataclass(frozen=True)
class Event:
    """One inbound event. Exactly one payload accessor is not None (none for `empty`)."""

    id: str
    ingress: str
    source: str
    kind: str
    payload_kind: PayloadKind = "empty"
    payload: str | bytes | CloseInfo | None = None
    created_at_ms: int = 0
    attempt: int = 1
    correlation_id: str | None = None

    # The accessors are read several times per event by most handlers: each reads the
    # payload once and checks its exact type before `isinstance` (a str subclass still counts).

    @property
    def text(self) -> str | None:
        payload = self.payload
        return payload if (type(payload) is str or isinstance(payload, str)) and self.payload_kind == "text" else None

    @property
    def binary(self) -> bytes | None:
        payload = self.payload
        return payload if (type(payload) is bytes or isinstance(payload, bytes)) and self.payload_kind == "binary" else None

    @property
    def json(self) -> Any:
        """The decoded JSON payload (None unless `payload_kind == "json"`)."""
        if self.payload_kind != "json" or not isinstance(self.payload, str):
            return None
        return json.loads(self.payload)

    @property
    def close(self) -> CloseInfo | None:
        payload = self.payload
        return payload if type(payload) is CloseInfo or isinstance(payload, CloseInfo) else None

    @property
    def failure(self) -> str | None:
        payload = self.payload
        return payload if (type(payload) is str or isinstance(payload, str)) and self.payload_kind == "failure" else None

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self.created_at_ms / 1000, tz=timezone.utc)

    def reply_text(self, text: str, *, id: str | None = None) -> WebSocketSend:
        """A text message back on the connection this event came from."""
        if type(text) is not str:  # the constructor's check (`text=None` is refused)
            return WebSocketSend(connection=self.source, text=text, id=id or new_id())
        made = _new(WebSocketSend)
        _set(made, "__dict__", {"connection": self.source, "text": text, "binary": None, "id": id or new_id()})
        return made

    def reply_binary(self, data: bytes, *, id: str | None = None) -> WebSocketSend:
        return WebSocketSend(connection=self.source, binary=data, id=id or new_id())

    @classmethod
    def of_text(cls, ingress: str, text: str, *, kind: str = "text", source: str = "manual", **kw: Any) -> Event:
        """Build a text event (for unit tests of handlers)."""
        return cls(id=kw.pop("id", new_id()), ingress=ingress, source=source, kind=kind, payload_kind="text", payload=text, **kw)

    @classmethod
    def of_json(cls, ingress: str, data: Any, *, kind: str = "json", source: str = "manual", **kw: Any) -> Event:
        """Build a JSON event (for unit tests of handlers)."""
        return cls(id=kw.pop("id", new_id()), ingress=ingress, source=source, kind=kind, payload_kind="json", payload=json.dumps(data), **kw)


@dataclass(frozen=True)
class WebSocketSend:
    """Send a message on a host-owned connection. Exactly one of text/binary."""

    connection: str
    text: str | None = None
    binary: bytes | None = None
    id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        if (self.text is None) == (self.binary is None):
            raise ValueError("websocket_send needs exactly one of text= or binary=")


@dataclass(frozen=True)
class HttpRequest:
    """Ask the host to make an HTTP request; the response comes back as an event of
    kind `http_response` whose `correlation_id` is this command's id."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    id: str = field(default_factory=new_id)


@dataclass(frozen=True)
class Emit:
    """Append `data` (JSON) under `topic` to the host's event log."""

    topic: str
    data: Any = None
    id: str = field(default_factory=new_id)


@dataclass(frozen=True)
class LogCommand:
    level: LogLevel
    message: str
    id: str = field(default_factory=new_id)


@dataclass(frozen=True)
class StatusUpdate:
    """Update the plugin's reported status."""

    healthy: bool = True
    data: Any = None
    id: str = field(default_factory=new_id)


def wire_event(
    id: str,
    ingress: str,
    source: str,
    kind: str,
    payload_kind: str,
    payload: str | bytes | CloseInfo | None,
    created_at_ms: int,
    attempt: int,
    correlation_id: str | None,
) -> Event:
    """`Event(...)` with every field given, for the export glue (see `pdk._wire.frozen`)."""
    return _frozen(Event, {
        "id": id, "ingress": ingress, "source": source, "kind": kind, "payload_kind": payload_kind, "payload": payload,
        "created_at_ms": created_at_ms, "attempt": attempt, "correlation_id": correlation_id,
    })  # fmt: skip


Command = Union[WebSocketSend, HttpRequest, Emit, LogCommand, StatusUpdate]
COMMAND_TYPES = (WebSocketSend, HttpRequest, Emit, LogCommand, StatusUpdate)


@dataclass(frozen=True)
class Status:
    """What a `@plugin.status` handler may return to say it is degraded."""

    healthy: bool = True
    data: Any = None


@dataclass(frozen=True)
class Output:
    """What an event handler may return to attach result data to its commands."""

    commands: list[Command] = field(default_factory=list)
    data: Any = None


# -- builders --------------------------------------------------------------------------------


def websocket_send(connection: str, *, text: str | None = None, binary: bytes | None = None, id: str | None = None) -> WebSocketSend:
    return WebSocketSend(connection=connection, text=text, binary=binary, id=id or new_id())


def http_request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | str | None = None,
    json_body: Any = None,
    id: str | None = None,
) -> HttpRequest:
    pairs = tuple((headers or {}).items())
    if json_body is not None:
        body = json.dumps(json_body, separators=(",", ":"))
        pairs += (("content-type", "application/json"),)
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return _frozen(HttpRequest, {"method": method.upper(), "url": url, "headers": pairs, "body": raw, "id": id or new_id()})


# The builders handlers call most: `pdk._wire.frozen` inlined (one call less per command).


def emit(topic: str, data: Any = None, *, id: str | None = None) -> Emit:
    made = _new(Emit)
    _set(made, "__dict__", {"topic": topic, "data": data, "id": id or new_id()})
    return made


def log(level: LogLevel, message: str, *, id: str | None = None) -> LogCommand:
    made = _new(LogCommand)
    _set(made, "__dict__", {"level": level, "message": message, "id": id or new_id()})
    return made


def status_update(healthy: bool = True, data: Any = None, *, id: str | None = None) -> StatusUpdate:
    return _frozen(StatusUpdate, {"healthy": healthy, "data": data, "id": id or new_id()})


def command_payload_size(command: Command) -> int:
    """Bytes of the command's payload, for the per-command bound; an `Emit`'s or a
    `StatusUpdate`'s data is measured as the JSON text that travels (`payload_json`)."""
    if isinstance(command, WebSocketSend):
        return len(command.text.encode("utf-8")) if command.text is not None else len(command.binary or b"")
    if isinstance(command, HttpRequest):
        return len(command.body or b"") + sum(len(k) + len(v) for k, v in command.headers) + len(command.url)
    if isinstance(command, LogCommand):
        return len(command.message.encode("utf-8"))
    return len(dumps(command.data).encode("utf-8"))


def payload_json(command: Command) -> str | None:
    """The JSON text of an `Emit`'s or a `StatusUpdate`'s data (None for a
    `StatusUpdate` without data and for the other commands)."""
    if isinstance(command, Emit) or (isinstance(command, StatusUpdate) and command.data is not None):
        return dumps(command.data)
    return None


class PayloadTooLarge(Exception):
    """Raised by a `PAYLOAD_CHECKS` function: the command's payload exceeds
    `COMMAND_PAYLOAD_MAX_BYTES` (the caller words the error, with the command's index)."""


def _size(text: str) -> int:
    """UTF-8 bytes of `text` (raises as `str.encode` does, e.g. for a lone surrogate)."""
    return len(text) if type(text) is str and text.isascii() else len(text.encode("utf-8"))


def _data_payload(command: Command) -> str | None:
    """`payload_json(command)`, bounded as `command_payload_size` measures it."""
    data = command.data  # type: ignore[union-attr]
    if data is None and type(command) is StatusUpdate:
        return None  # measured as "null": never too large
    text = dumps(data)
    if _size(text) > COMMAND_PAYLOAD_MAX_BYTES:
        raise PayloadTooLarge
    return text


def _websocket_payload(command: Command) -> None:
    text = command.text  # type: ignore[union-attr]
    size = _size(text) if text is not None else len(command.binary or b"")  # type: ignore[union-attr]
    if size > COMMAND_PAYLOAD_MAX_BYTES:
        raise PayloadTooLarge


def _log_payload(command: Command) -> None:
    if _size(command.message) > COMMAND_PAYLOAD_MAX_BYTES:  # type: ignore[union-attr]
        raise PayloadTooLarge


def _other_payload(command: Command) -> str | None:
    text = payload_json(command)
    size = command_payload_size(command) if text is None else len(text.encode("utf-8"))
    if size > COMMAND_PAYLOAD_MAX_BYTES:
        raise PayloadTooLarge
    return text


# Per exact command type: the payload's JSON text (None for all but `Emit` and a
# `StatusUpdate` with data) once bounded, or `PayloadTooLarge`. One dict lookup instead of
# `isinstance` chains; a subclass of a command type takes `_other_payload` (see `payload_check`).
PAYLOAD_CHECKS: dict[type, Any] = {
    Emit: _data_payload,
    StatusUpdate: _data_payload,
    WebSocketSend: _websocket_payload,
    LogCommand: _log_payload,
    HttpRequest: _other_payload,
}


def payload_check(command: object) -> Any:
    """The `PAYLOAD_CHECKS` function for `command`, or None if it is not a command."""
    check = PAYLOAD_CHECKS.get(type(command))
    if check is None and isinstance(command, COMMAND_TYPES):
        return _other_payload
    return check
