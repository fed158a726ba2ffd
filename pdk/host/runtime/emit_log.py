"""The host-side event log that `emit` commands append to: a bounded ring.

Read by tests, the CLI and (later) whatever forwards emitted events; older entries
fall out and are counted in `dropped`."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .commands import CommandContext


class EmitLog:
    def __init__(self, plugin_id: str, capacity: int) -> None:
        self.plugin_id = plugin_id
        self.capacity = capacity
        self._records: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self.appended = 0
        self.dropped = 0

    def append(self, context: CommandContext, data: Any) -> None:
        record = {
            "topic": context.value["topic"],
            "data": data,
            "plugin": self.plugin_id,
            "event_id": context.event.id,
            "command_id": context.command_id,
            "at_ms": int(time.time() * 1000),
        }
        with self._lock:
            if len(self._records) == self.capacity:
                self.dropped += 1
            self._records.append(record)
            self.appended += 1

    def records(self, topic: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self._records if topic is None or r["topic"] == topic]

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {"count": len(self._records), "capacity": self.capacity, "appended": self.appended, "dropped": self.dropped}
