"""`EventQueue.room_left`: what a pausing source (the WebSocket reader) is told about
the room for its ingress: the whole queue's, or its share's when that is smaller;
waiting, in-flight and reserved slots all count as used."""

from __future__ import annotations

from pdk.host.codec import Case
from pdk.host.runtime.model import QueuedEvent
from pdk.host.runtime.queue import EventQueue


def _event(ingress: str, n: int) -> QueuedEvent:
    return QueuedEvent(f"e{n}", ingress, "manual", "job", Case("text", "ok"), 0)


def test_room_left_counts_waiting_in_flight_and_reserved_slots() -> None:
    q = EventQueue(4)
    assert q.room_left("jobs") == (4, 4)
    q.put(_event("jobs", 1))
    q.put(_event("jobs", 2))
    q.reserve("jobs")
    assert q.room_left("jobs") == (1, 4)
    taken = q.take(now=0.0)
    assert taken is not None and q.room_left("jobs") == (1, 4)  # in flight still holds its slot
    q.finish(taken)
    assert q.room_left("jobs") == (2, 4)
    q.put(_event("jobs", 3))
    q.put(_event("jobs", 4))
    assert q.room_left("jobs") == (0, 4)


def test_room_left_is_the_share_when_it_is_smaller() -> None:
    q = EventQueue(10, {"chat": 2, "bulk": 50})
    q.put(_event("chat", 1))
    assert q.room_left("chat") == (1, 2)
    assert q.room_left("bulk") == (9, 10)  # a share larger than the queue: the queue bounds it
    for n in range(8):
        q.put(_event("other", 10 + n))
    assert q.room_left("other") == (1, 10)
    q.put(_event("chat", 2))
    assert q.room_left("chat") == (0, 2) and q.room_left("other") == (0, 10)
