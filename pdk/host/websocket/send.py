"""Outbound messages: the shape of a `websocket-send` command, the item that travels
through a connection's bounded send queue, and the typed results.

Results follow the runtime's command-result shape: `{"result": executed | denied |
invalid | failed, "detail": ...}`; a failure also carries `reason`, one of
`FAILURE_REASONS`, so callers can branch without parsing the detail."""

from __future__ import annotations

import concurrent.futures
import functools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pdk.limits import COMMAND_DETAIL_MAX_BYTES

from ..codec import Case
from ..redact import redact_bounded

NOT_CONNECTED = "not_connected"
CLOSED = "closed"
TOO_LARGE = "too_large"
TIMED_OUT = "timed_out"
QUEUE_FULL = "queue_full"
FAILURE_REASONS = (NOT_CONNECTED, CLOSED, TOO_LARGE, TIMED_OUT, QUEUE_FULL)


class InvalidSend(ValueError):
    """A `websocket-send` value that does not have the contract's shape."""


@dataclass(frozen=True)
class OutboundMessage:
    connection: str
    data: str | bytes

    @property
    def size(self) -> int:
        return len(self.data.encode("utf-8")) if isinstance(self.data, str) else len(self.data)


def parse_send(value: Any) -> OutboundMessage:
    """Accept the plain value of a `websocket-send` record: `{"connection": str,
    "message": Case("text", str) | Case("binary", bytes)}` (also a `Case` wrapping the
    record, or a `{"text": ...}` / `{"binary": ...}` message mapping)."""
    if isinstance(value, Case):
        if value.tag != "websocket_send":
            raise InvalidSend(f"not a websocket_send command: {value.tag!r}")
        value = value.value
    if not isinstance(value, Mapping):
        raise InvalidSend("a websocket_send command must be a record")
    connection = value.get("connection")
    if not isinstance(connection, str) or not connection:
        raise InvalidSend("connection must be a non-empty string")
    message = value.get("message")
    if isinstance(message, Case):
        tag, payload = message.tag, message.value
    elif isinstance(message, Mapping) and len(message) == 1:
        tag, payload = next(iter(message.items()))
    else:
        raise InvalidSend("message must be text or binary")
    if tag == "text" and isinstance(payload, str):
        return OutboundMessage(connection, payload)
    if tag == "binary" and isinstance(payload, (bytes, bytearray, memoryview)):
        return OutboundMessage(connection, bytes(payload))
    raise InvalidSend("message must be text (a string) or binary (bytes)")


@dataclass
class SendItem:
    """One message in a connection's send queue. The executor thread waits on
    `future`; `claim()` (writer) and `abandon()` (executor, on timeout) decide under a
    lock whether the message is sent, so a timed-out message is never sent later."""

    message: OutboundMessage
    # Called once when the item leaves the loop's path (finished, or skipped after its
    # sender gave up): direct sends wait behind unsettled items (wire.SendGate).
    on_settle: Callable[[], None] | None = None
    future: concurrent.futures.Future[dict[str, Any]] = field(default_factory=concurrent.futures.Future)
    _state: str = "queued"  # queued -> sending -> done | abandoned
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _settled: bool = False

    def settle(self) -> None:
        with self._lock:
            if self._settled:
                return
            self._settled = True
        if self.on_settle is not None:
            self.on_settle()

    def claim(self) -> bool:
        with self._lock:
            if self._state != "queued":
                return False
            self._state = "sending"
            return True

    def abandon(self) -> str:
        """Called on timeout: returns the state the item was in."""
        with self._lock:
            state = self._state
            if state == "queued":
                self._state = "abandoned"
            return state

    def finish(self, result: dict[str, Any]) -> None:
        with self._lock:
            if self._state != "abandoned":
                self._state = "done"
        self.settle()
        if not self.future.done():
            self.future.set_result(result)


def executed(detail: str) -> dict[str, Any]:
    return {"result": "executed", "detail": _bound(detail)}


def sent(size: int, connection: str) -> dict[str, Any]:
    """The result of a message on the wire (a fresh dict; the detail is remembered)."""
    return {"result": "executed", "detail": _sent_detail(size, connection)}


@functools.lru_cache(maxsize=256)
def _sent_detail(size: int, connection: str) -> str:
    return _bound(f"sent {size} bytes on {connection!r}")


def failed(reason: str, detail: str) -> dict[str, Any]:
    return {"result": "failed", "reason": reason, "detail": _bound(f"{reason}: {detail}")}


def denied(detail: str) -> dict[str, Any]:
    return {"result": "denied", "detail": _bound(detail)}


def invalid(detail: str) -> dict[str, Any]:
    return {"result": "invalid", "detail": _bound(detail)}


def _bound(text: str) -> str:
    return redact_bounded(text, COMMAND_DETAIL_MAX_BYTES)
