"""Per-connection counters and the status document built from them.

Every inbound data frame ends in exactly one bucket:
`frames_in == delivered_frames + filtered["text"] + filtered["binary"] + refused_frames
+ dropped_at_stop (+ 1 while a paused reader holds one, `held`)`.
`events` counts every accepted event by kind (frames and control events alike);
`filtered` and `refused` count what was not submitted, by kind and by reason."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..redact import redact_bounded

STATES = ("connecting", "open", "reconnecting", "closed", "failed", "denied")
ERROR_MAX_BYTES = 512


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class ConnectionStats:
    name: str
    ingress: str
    url: str
    state: str = "connecting"
    since_ms: int = field(default_factory=now_ms)
    last_frame_ms: int | None = None
    frames_in: int = 0
    bytes_in: int = 0
    frames_out: int = 0
    bytes_out: int = 0
    delivered_frames: int = 0
    refused_frames: int = 0
    filtered: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    dropped_at_stop: int = 0
    held: bool = False
    events: dict[str, int] = field(default_factory=dict)
    connects: int = 0
    reconnects: int = 0
    reconnect_attempts: int = 0
    pauses: int = 0
    paused: bool = False
    pings: int = 0
    ping_timeouts: int = 0
    send_failures: dict[str, int] = field(default_factory=dict)
    last_close: dict[str, Any] | None = None
    last_error: str | None = None
    subprotocol: str | None = None

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.since_ms = now_ms()

    def error(self, message: str) -> str:
        """Record (redacted, bounded) and return the error text."""
        self.last_error = redact_bounded(message, ERROR_MAX_BYTES)
        return self.last_error

    def frame_in(self, size: int) -> None:
        self.frames_in += 1
        self.bytes_in += size
        self.last_frame_ms = now_ms()

    def frame_out(self, size: int) -> None:
        self.frames_out += 1
        self.bytes_out += size
        self.last_frame_ms = now_ms()

    @staticmethod
    def bump(counter: dict[str, int], key: str) -> None:
        counter[key] = counter.get(key, 0) + 1

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "websocket",
            "connection": self.name,
            "ingress": self.ingress,
            "url": self.url,
            "state": self.state,
            "since_ms": self.since_ms,
            "last_frame_ms": self.last_frame_ms,
            "frames_in": self.frames_in,
            "bytes_in": self.bytes_in,
            "frames_out": self.frames_out,
            "bytes_out": self.bytes_out,
            "delivered_frames": self.delivered_frames,
            "refused_frames": self.refused_frames,
            "filtered": dict(self.filtered),
            "refused": dict(self.refused),
            "dropped_at_stop": self.dropped_at_stop,
            "held": self.held,
            "events": dict(self.events),
            "connects": self.connects,
            "reconnects": self.reconnects,
            "reconnect_attempts": self.reconnect_attempts,
            "pauses": self.pauses,
            "paused": self.paused,
            "pings": self.pings,
            "ping_timeouts": self.ping_timeouts,
            "send_failures": dict(self.send_failures),
            "last_close": dict(self.last_close) if self.last_close else None,
            "last_error": self.last_error,
            "subprotocol": self.subprotocol,
        }
