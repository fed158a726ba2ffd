"""`EventQueue`: the bounded event queue of one plugin instance (pure logic).

A slot is held from acceptance until the event ends (handled or dead-lettered):
while it waits, while it waits for a retry and while it is in flight. So a failed
event can always go back for its retry (it never needs a slot it does not have), and
`held() <= capacity` holds however the plugin behaves. Each ingress may also be
bounded to a share of the whole queue.

A slot may be reserved before the event is in the queue (`reserve`): a durable
runtime writes the event to its state store between the check for room and `put`,
without holding the runtime lock, and the reservation keeps that room. Events
recovered from the store at start are put without a reservation and may exceed
the capacity until they drain (new events are refused meanwhile).

Not thread-safe on its own: `ServiceRuntime` calls it under its lock. Ready retries
go before fresh events (they were accepted earlier); fresh events are FIFO.
"""

from __future__ import annotations

import heapq
from collections import Counter, deque
from collections.abc import Mapping

from .model import QueuedEvent


class EventQueue:
    def __init__(self, capacity: int, ingress_capacity: Mapping[str, int] | None = None) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self.ingress_capacity = dict(ingress_capacity or {})
        self._fresh: deque[QueuedEvent] = deque()
        self._delayed: list[tuple[float, int, QueuedEvent]] = []  # a heap by (not_before, seq)
        self.in_flight: QueuedEvent | None = None
        self._held: dict[str, int] = {}  # per ingress: waiting + in flight (no zero entries)
        self._pending: Counter[tuple[str, str]] = Counter()  # per (ingress, kind): waiting only
        self._reserved: Counter[str] = Counter()  # per ingress: slots kept for events being stored
        self._reserved_total = 0
        self._seq = 0

    # -- sizes ---------------------------------------------------------------------------------

    def depth(self) -> int:
        """Events waiting (fresh or for a retry), not counting the one in flight."""
        return len(self._fresh) + len(self._delayed)

    def held(self) -> int:
        """Slots in use: waiting + in flight (not counting reservations)."""
        return self.depth() + (1 if self.in_flight is not None else 0)

    def held_by(self, ingress: str) -> int:
        return self._held.get(ingress, 0)

    def reserved(self) -> int:
        """Slots reserved for events that are being written to the state store."""
        return self._reserved_total

    def has_pending(self, ingress: str, kind: str) -> bool:
        return self._pending.get((ingress, kind), 0) > 0

    def room_for(self, ingress: str) -> str | None:
        """None when an event of `ingress` fits, else why not."""
        used = len(self._fresh) + len(self._delayed) + (self.in_flight is not None) + self._reserved_total
        if used >= self.capacity:
            return f"the queue is full ({used}/{self.capacity} events queued or in flight)"
        share = self.ingress_capacity.get(ingress)
        if share is not None:
            used_share = self._held.get(ingress, 0) + self._reserved.get(ingress, 0)
            if used_share >= share:
                return f"the queue share of ingress {ingress!r} is full ({used_share}/{share})"
        return None

    def room_left(self, ingress: str) -> tuple[int, int]:
        """(free slots for an event of `ingress`, the most it could have): the whole
        queue's room, or its share's when that is smaller."""
        free, most = self.capacity - self.held() - self._reserved_total, self.capacity
        share = self.ingress_capacity.get(ingress)
        if share is not None and share < most:
            free, most = min(free, share - self._held.get(ingress, 0) - self._reserved.get(ingress, 0)), share
        return max(0, free), most

    # -- moves ---------------------------------------------------------------------------------

    def reserve(self, ingress: str) -> None:
        """Keep a slot for an event of `ingress`; the caller checked `room_for` under
        the same lock. `put(..., reserved=True)` or `unreserve` ends the reservation."""
        self._reserved[ingress] += 1
        self._reserved_total += 1

    def unreserve(self, ingress: str) -> None:
        if self._reserved[ingress] <= 0:
            raise RuntimeError(f"no slot of ingress {ingress!r} is reserved")
        self._reserved[ingress] -= 1
        self._reserved_total -= 1
        if not self._reserved[ingress]:
            del self._reserved[ingress]

    def put(self, event: QueuedEvent, *, reserved: bool = False) -> None:
        """Add an accepted event. The caller checked `room_for` under the same lock,
        or reserved its slot (`reserved=True`)."""
        if reserved:
            self.unreserve(event.ingress)
        self._seq += 1
        event.seq = self._seq
        self._fresh.append(event)
        held = self._held
        held[event.ingress] = held.get(event.ingress, 0) + 1
        self._pending[(event.ingress, event.kind)] += 1

    def next_ready_at(self) -> float | None:
        """When the next event can be taken (0.0 = now), None when nothing waits."""
        if self._fresh:
            return 0.0
        if self._delayed:
            return self._delayed[0][0]
        return None

    def take(self, now: float) -> QueuedEvent | None:
        """The next ready event, now in flight; None when nothing is ready."""
        if self.in_flight is not None:
            raise RuntimeError("one event is already in flight (dispatch is serial)")
        if self._delayed and self._delayed[0][0] <= now:
            event = heapq.heappop(self._delayed)[2]
        elif self._fresh:
            event = self._fresh.popleft()
        else:
            return None
        self._pending[(event.ingress, event.kind)] -= 1
        self.in_flight = event
        return event

    def finish(self, event: QueuedEvent) -> None:
        """The in-flight event ended (handled or dead-lettered): free its slot."""
        if self.in_flight is not event:
            self._expect_in_flight(event)
        self.in_flight = None
        self._release(event)

    def defer(self, event: QueuedEvent, not_before: float) -> None:
        """The in-flight event goes back to wait for a retry; it keeps its slot."""
        self._expect_in_flight(event)
        self.in_flight = None
        event.not_before = not_before
        heapq.heappush(self._delayed, (not_before, event.seq, event))
        self._pending[(event.ingress, event.kind)] += 1

    def drain(self) -> list[QueuedEvent]:
        """Remove every waiting event (not the one in flight), in acceptance order."""
        events = sorted([e for _, _, e in self._delayed] + list(self._fresh), key=lambda e: e.seq)
        self._fresh.clear()
        self._delayed.clear()
        for event in events:
            self._pending[(event.ingress, event.kind)] -= 1
            self._release(event)
        return events

    def _release(self, event: QueuedEvent) -> None:
        held = self._held
        left = held.get(event.ingress, 0) - 1
        if left > 0:
            held[event.ingress] = left
        else:
            held.pop(event.ingress, None)

    def _expect_in_flight(self, event: QueuedEvent) -> None:
        if self.in_flight is not event:
            raise RuntimeError(f"event {event.id} is not the one in flight")
