"""Pipelined dispatch (pdk/host/runtime/finisher.py): a sound output's commands run
and its event ends on the finisher thread while the dispatcher calls the guest with
the next event. What must hold: commands and outcomes in the order the events were
handled, a handed event keeps its queue slot until it ends, everything that is not
a sound output (a fault, an error, a status read, a stop) waits for the earlier
events to end, and nothing is lost or counted twice."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from pdk.host.codec import Case, Ok
from pdk.host.runtime.commands import CommandContext, Execution
from pdk.host.runtime.finisher import Finisher
from pdk.host.runtime.model import QueuedEvent
from pdk.host.runtime.queue import EventQueue

from test_runtime_queue_logic import FakeGuest, assert_invariant, job, make_runtime


def _event(n: int) -> QueuedEvent:
    return QueuedEvent(f"e{n}", "jobs", "manual", "job", Case("text", "ok"), 0)


def test_finisher_runs_work_in_hand_order_on_one_thread_and_barrier_waits_for_it() -> None:
    finisher = Finisher("test-finish")
    seen: list[tuple[int, str]] = []
    gate = threading.Event()

    def work(n: int) -> None:
        if n == 0:
            gate.wait(10)
        seen.append((n, threading.current_thread().name))

    for n in range(50):
        finisher.hand(work, n)
    assert finisher.pending() == 50
    gate.set()
    finisher.barrier()
    assert finisher.pending() == 0
    assert [n for n, _ in seen] == list(range(50))
    assert {name for _, name in seen} == {"test-finish"}


def test_finisher_carries_on_after_work_that_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    finisher = Finisher("test-finish")
    seen: list[int] = []
    failed: list[threading.Thread] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: None)  # (the escape is the point)

    def work(n: int) -> None:
        if n == 1:
            failed.append(threading.current_thread())
            raise SystemExit("escapes")  # what `Exception` handlers do not catch
        seen.append(n)

    for n in range(4):
        finisher.hand(work, n)
    finisher.barrier()
    failed[0].join(10)
    assert seen == [0, 2, 3]


def test_a_handed_off_event_keeps_its_slot_until_it_ends_in_hand_off_order() -> None:
    q = EventQueue(3)
    events = [_event(n) for n in range(3)]
    for e in events:
        q.put(e)
    first = q.take(0.0)
    assert first is events[0]
    q.hand_off(first)
    second = q.take(0.0)  # the next one may be in flight meanwhile
    assert second is events[1]
    q.hand_off(second)
    assert q.take(0.0) is events[2]
    assert q.held() == 3 and q.in_progress() == 3 and q.depth() == 0
    assert q.room_for("jobs") is not None  # all three slots still held
    with pytest.raises(RuntimeError):
        q.finish(second)  # not the oldest handed off
    q.finish(first)
    q.defer(second, 5.0)  # a handed event can still go back for a retry (keeps its slot)
    assert q.held() == 2 and q.in_progress() == 1 and q.depth() == 1
    q.finish(events[2])
    assert q.take(10.0) is second


class _OverlapProbe:
    """An emit executor that records the order it runs in, and notes whether the
    guest was inside `handle` (with a later event) while it ran."""

    def __init__(self, guest: FakeGuest) -> None:
        self.guest = guest
        self.order: list[str] = []
        self.overlapped = 0
        self.threads: set[str] = set()

    def __call__(self, context: CommandContext) -> Execution:
        self.threads.add(threading.current_thread().name)
        if self.guest.active:
            self.overlapped += 1
        self.order.append(context.event.id)
        return Execution("executed", "probed")


def _blocked_then(rt: Any, guest: FakeGuest, texts: list[str]) -> list[str]:
    """Queue `texts` behind an event that blocks the guest until they are all queued,
    so the dispatcher finds events waiting (and pipelines) from then on."""
    first = job(rt, "block")
    assert guest.entered.wait(10)
    ids = [first.event_id]  # type: ignore[union-attr]
    for text in texts:
        accepted = job(rt, text)
        ids.append(accepted.event_id)  # type: ignore[union-attr]
    guest.release.set()
    return ids


def test_commands_run_in_event_order_off_the_dispatcher_and_every_event_is_counted() -> None:
    rt, guest = make_runtime(queue_capacity=256, pipelined=True)
    probe = _OverlapProbe(guest)
    rt.register_executor("emit", probe)
    rt.start()
    ids = _blocked_then(rt, guest, [f"m{i}" for i in range(200)])
    assert rt.wait_idle(30)
    doc = assert_invariant(rt)
    assert doc["counters"]["handled"] == 201 and doc["queue"]["in_flight"] == 0
    assert doc["commands"]["by_result"]["executed"] == 201
    assert probe.order == ids  # commands in the order the events were accepted and handled
    assert any(name.startswith("yoi-finish:") for name in probe.threads)  # pipelined
    assert all(name.startswith(("yoi-finish:", "yoi-runtime:")) for name in probe.threads)
    assert [o["event_id"] for o in rt.outcomes()] == ids[-len(rt.outcomes()) :]
    rt.stop()


def test_with_nothing_waiting_an_event_ends_on_the_dispatcher_thread() -> None:
    rt, guest = make_runtime(pipelined=True)
    probe = _OverlapProbe(guest)
    rt.register_executor("emit", probe)
    rt.start()
    for i in range(5):
        job(rt, f"one-{i}")
        assert rt.wait_idle(10)
    assert probe.order and {name.split(":")[0] for name in probe.threads} == {"yoi-runtime"}
    assert probe.overlapped == 0
    rt.stop()


def test_a_guest_call_runs_while_the_previous_event_still_ends() -> None:
    rt, guest = make_runtime(pipelined=True)
    release = threading.Event()
    entered_second = threading.Event()

    def slow_emit(context: CommandContext) -> Execution:
        if context.event.payload.value == "block":
            # The dispatcher is free: it takes the next event and calls the guest.
            assert entered_second.wait(10)
            release.wait(10)
        return Execution("executed", "ok")

    handle = guest.handle

    def handle_and_note(event: dict[str, Any]) -> Any:
        if event["payload"].value == "second":
            entered_second.set()
        return handle(event)

    guest.handle = handle_and_note  # type: ignore[method-assign]
    rt.register_executor("emit", slow_emit)
    rt.start()
    _blocked_then(rt, guest, ["second"])
    assert entered_second.wait(10)
    doc = assert_invariant(rt)
    assert doc["counters"]["handled"] == 0  # the first has not ended yet: its slot is held
    assert doc["queue"]["in_flight"] >= 1 and doc["queue"]["depth"] == 0
    assert not rt.wait_idle(0)
    release.set()
    assert rt.wait_idle(10)
    doc = assert_invariant(rt)
    assert doc["counters"]["handled"] == 2 and doc["queue"]["in_flight"] == 0
    rt.stop()


def test_a_failing_output_waits_for_earlier_events_to_end_first() -> None:
    rt, guest = make_runtime(max_attempts=2, pipelined=True)
    ended: list[str] = []
    rt.register_executor("emit", lambda context: (ended.append(context.event.payload.value), Execution("executed", "ok"))[1])
    rt.on_outcome(lambda outcome: ended.append(f"outcome:{outcome['outcome']}"))
    rt.start()
    _blocked_then(rt, guest, ["a", "b", "error", "c"])
    assert rt.wait_idle(10)
    assert ended == ["block", "outcome:handled", "a", "outcome:handled", "b", "outcome:handled", "outcome:dead_lettered", "c", "outcome:handled"]
    assert_invariant(rt)
    rt.stop()


def test_stop_from_an_outcome_callback_is_refused_on_the_finisher_thread_too() -> None:
    rt, guest = make_runtime(pipelined=True)
    errors: list[str] = []

    def callback(outcome: dict[str, Any]) -> None:
        try:
            rt.stop()
        except RuntimeError as exc:
            errors.append(str(exc))

    rt.on_outcome(callback)
    rt.start()
    _blocked_then(rt, guest, ["x", "y"])  # the last two end on the finisher
    assert rt.wait_idle(10)
    assert len(errors) == 3 and all("dispatcher thread" in e for e in errors)
    assert rt.stop()["lifecycle"]["state"] == "stopped"


def test_stop_ends_every_handed_event_before_the_guest_stops() -> None:
    rt, guest = make_runtime(queue_capacity=256, pipelined=True)
    stops_seen: list[int] = []
    stop = guest.stop

    def stop_and_count() -> Any:
        stops_seen.append(rt._counters.handled)
        return stop()

    guest.stop = stop_and_count  # type: ignore[method-assign]
    rt.start()
    _blocked_then(rt, guest, [f"m{i}" for i in range(200)])
    doc = rt.stop()
    assert stops_seen == [201]
    assert doc["counters"]["handled"] == 201 and doc["queue"]["in_flight"] == 0 and doc["queue"]["depth"] == 0


def test_sound_outputs_only_are_handed_off() -> None:
    rt, guest = make_runtime()
    rt.start()
    ok = Ok({"data_json": '{"n": 1}', "commands": []})
    assert rt._sound_output(ok) == ({"n": 1}, [])
    refused = rt._sound_output(Ok({"data_json": "{bad", "commands": []}))
    assert isinstance(refused, dict) and refused["code"] == "invalid_output"
    assert isinstance(rt._sound_output(Ok({"data_json": None, "commands": "x"})), dict)
    rt.stop()


def test_by_default_every_event_ends_on_the_dispatcher_thread() -> None:
    rt, guest = make_runtime(queue_capacity=64)
    probe = _OverlapProbe(guest)
    rt.register_executor("emit", probe)
    rt.start()
    ids = _blocked_then(rt, guest, [f"m{i}" for i in range(20)])
    assert rt.wait_idle(10)
    assert probe.order == ids and probe.overlapped == 0
    assert {name.split(":")[0] for name in probe.threads} == {"yoi-runtime"}
    rt.stop()
