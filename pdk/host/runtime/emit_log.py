"""The host-side event log that `emit` commands append to: a bounded ring.

Read by tests, the CLI and (later) whatever forwards emitted events; older entries
fall out and are counted in `dropped`. `sink` (the state store's `emitted`) also
gets every record, and `load` brings back the records a durable store kept."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .commands import CommandContext


class EmitLog:
    def __init__(self, plugin_id: str, capacity: int, sink: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.plugin_id = plugin_id
        self.capacity = capacity
        self.sink = sink
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
        if self.sink is not None:
            self.sink(record)

    def load(self, records: list[dict[str, Any]]) -> None:
        """Records of an earlier run (oldest first); not counted in `appended`."""
        with self._lock:
            self._records.extend(records[-self.capacity :])

    def records(self, topic: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self._records if topic is None or r["topic"] == topic]

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {"count": len(self._records), "capacity": self.capacity, "appended": self.appended, "dropped": self.dropped}
