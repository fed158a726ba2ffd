"""The dead-letter store: bounded, inspectable, replayable.

An event lands here after its last attempt (`retries_exhausted`), after a permanent
error (`permanent_error`), when the runtime stops with it still queued (`stopping`)
or when the service fails for good (`failed`). The store keeps the newest
`capacity` entries; an older entry pushed out is counted in `evicted` (the event
was still counted as dead-lettered when it landed, so nothing goes unaccounted).

This is the in-memory view the runtime works with; with a durable state store
(store.py) every letter is also written there (the store keeps the same newest
`capacity`, counting what it dropped), and `load` brings them back at the next
start, so that `pdk dead-letters` and `pdk replay` work after a restart.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from .model import QueuedEvent, UniqueIds

_new_letter_id = UniqueIds("dl")

DEAD_LETTER_REASONS: tuple[str, ...] = ("retries_exhausted", "permanent_error", "stopping", "failed")


@dataclass(frozen=True)
class DeadLetter:
    id: str
    event: QueuedEvent
    reason: str
    attempts: int  # deliveries made (0 when it never reached the plugin)
    error: dict[str, Any] | None
    at_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "reason": self.reason,
            "attempts": self.attempts,
            "error": self.error,
            "at_ms": self.at_ms,
            "event": self.event.describe(),
            "replay_of": self.event.replay_of,
        }


class DeadLetterStore:
    """Not thread-safe on its own; the runtime calls it under its lock."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._items: OrderedDict[str, DeadLetter] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, event: QueuedEvent, reason: str, attempts: int, error: dict[str, Any] | None) -> DeadLetter:
        if reason not in DEAD_LETTER_REASONS:
            raise ValueError(f"unknown dead-letter reason {reason!r}")
        letter = DeadLetter(_new_letter_id(), event, reason, attempts, error, int(time.time() * 1000))
        self._items[letter.id] = letter
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
            self.evicted += 1
        return letter

    def load(self, letters: list[DeadLetter]) -> None:
        """Letters recovered from the state store, oldest first, before any new one."""
        for letter in letters:
            self._items[letter.id] = letter
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
            self.evicted += 1

    def restore(self, letter: DeadLetter) -> None:
        """Put back a letter whose replay could not be recorded (it goes last)."""
        self._items[letter.id] = letter
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
            self.evicted += 1

    def get(self, letter_id: str) -> DeadLetter | None:
        return self._items.get(letter_id)

    def remove(self, letter_id: str) -> DeadLetter | None:
        return self._items.pop(letter_id, None)

    def items(self) -> list[DeadLetter]:
        return list(self._items.values())
