"""Counters of what happened to events, and the invariant they must satisfy.

Invariant: every accepted event ends exactly once, handled or dead-lettered, so at
every moment `accepted == handled + dead_lettered + open` where `open` is what the
queue holds (waiting, waiting for a retry, in flight) and `left_pending` what stops
left pending in a durable store (they end in a later run); and every refused submit
is counted under exactly one reason. A replay is a new acceptance of a dead-lettered
event (counted in `accepted` and in `replayed`); it ends again, once. So is a
pending event of an earlier run that a durable store hands back at start (counted
in `accepted` and in `recovered`), also one a stop of this runtime left pending.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .model import REFUSAL_REASONS


@dataclass
class Counters:
    accepted: int = 0
    refused: dict[str, int] = field(default_factory=lambda: {reason: 0 for reason in REFUSAL_REASONS})
    handled: int = 0
    retried: int = 0  # deliveries scheduled again after a failed attempt
    failed: int = 0  # failed attempts (plugin errors, traps, deadlines), retried or not
    dead_lettered: int = 0
    replayed: int = 0
    recovered: int = 0  # pending events of an earlier run queued again at start (store.py)
    left_pending: int = 0  # undrained events a stop left pending in a durable store

    def refuse(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    def balance(self, open_events: int) -> int:
        """0 when the invariant holds: accepted - (handled + dead_lettered + left_pending + open)."""
        return self.accepted - (self.handled + self.dead_lettered + self.left_pending + open_events)

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "refused": dict(self.refused),
            "refused_total": self.refused_total,
            "handled": self.handled,
            "retried": self.retried,
            "failed": self.failed,
            "dead_lettered": self.dead_lettered,
            "replayed": self.replayed,
            "recovered": self.recovered,
            "left_pending": self.left_pending,
        }
