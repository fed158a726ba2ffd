"""The bounded event queue in real wasmtime: serial dispatch, retries and dead
letters, replay, typed refusals (queue full, invalid payloads), stop accounting for
every queued event, and a property test of the invariant over random chaos."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pdk.host.codec import Case
from pdk.host.runtime import Accepted, Refused

from runtime_support import IDLE_TIMEOUT_S, Runtimes, invariant, job, runtime_host, runtimes  # noqa: F401

pytestmark = pytest.mark.slow


def test_dispatch_is_serial(runtimes: Runtimes) -> None:
    rt = runtimes.make("chaos", queue_capacity=64)
    # Host-side instrumentation of the real guest: count overlapping handle calls.
    active, overlaps, threads = [0], [0], set()
    real_handle = rt.guest.handle
    lock = threading.Lock()

    def counting_handle(event: dict[str, Any]) -> Any:
        with lock:
            active[0] += 1
            overlaps[0] = max(overlaps[0], active[0])
            threads.add(threading.current_thread().name)
        try:
            return real_handle(event)
        finally:
            with lock:
                active[0] -= 1

    rt.guest.handle = counting_handle  # type: ignore[method-assign]
    rt.start()
    answers: list[Accepted | Refused] = []

    def produce(n: int) -> None:
        for i in range(n):
            answers.append(job(rt, "sleep:0.01" if i % 2 else "ok"))

    producers = [threading.Thread(target=produce, args=(10,)) for _ in range(4)]
    for p in producers:
        p.start()
    for p in producers:
        p.join()
    assert all(isinstance(a, Accepted) for a in answers)
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    done = sorted(rt.emitted("chaos.done"), key=lambda e: e["data"]["enter_ns"])
    assert len(done) == 40
    # Inside the guest: every handler call entered after the previous one exited.
    for before, after in zip(done, done[1:]):
        assert after["data"]["enter_ns"] >= before["data"]["exit_ns"]
    assert overlaps[0] == 1 and threads == {f"yoi-runtime:{rt.manifest.id}"}
    assert invariant(rt)["counters"]["handled"] == 40


def test_retries_with_attempts_then_dead_letter(runtimes: Runtimes) -> None:
    rt = runtimes.make("chaos", max_attempts=3, retry_backoff_ms=20)
    rt.start()
    accepted = job(rt, "retry")
    assert isinstance(accepted, Accepted)
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    outcomes = [o for o in rt.outcomes() if o["event_id"] == accepted.event_id]
    assert [(o["outcome"], o["attempts"]) for o in outcomes] == [("retrying", 1), ("retrying", 2), ("dead_lettered", 3)]
    assert [o.get("retry_in_s") for o in outcomes[:2]] == [0.02, 0.04]  # exponential backoff
    (letter,) = rt.dead_letters()
    assert letter["reason"] == "retries_exhausted" and letter["attempts"] == 3
    assert letter["error"] == {**letter["error"], "code": "failed", "retryable": True, "message": "a retryable failure"}
    assert letter["event"]["payload"] == {"type": "text", "value": "retry", "bytes": 5, "truncated": False}
    doc = invariant(rt)
    assert (doc["counters"]["failed"], doc["counters"]["retried"], doc["counters"]["dead_lettered"]) == (3, 2, 1)
    assert doc["dead_letters"] == {"count": 1, "capacity": 256, "evicted": 0}


def test_a_permanent_error_is_dead_lettered_at_once(runtimes: Runtimes) -> None:
    rt = runtimes.make("chaos", max_attempts=5)
    rt.start()
    job(rt, "error")
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    (letter,) = rt.dead_letters()
    assert letter["reason"] == "permanent_error" and letter["attempts"] == 1
    assert letter["error"]["retryable"] is False


def test_replay_of_a_dead_letter(runtimes: Runtimes) -> None:
    rt = runtimes.make("chaos", max_attempts=2)
    rt.start()
    gated = job(rt, "gate")  # fails (retryably) until the gate is open
    assert isinstance(gated, Accepted)
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    (letter,) = rt.dead_letters()
    job(rt, "open-gate")
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    replayed = rt.replay(letter["id"])
    assert isinstance(replayed, Accepted) and replayed.event_id == gated.event_id  # same event id
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    assert rt.dead_letters() == []
    gate_done = [e for e in rt.emitted("chaos.done") if e["data"]["text"] == "gate"]
    assert [e["data"]["attempt"] for e in gate_done] == [1]  # a replay starts at attempt 1 again
    doc = invariant(rt)
    assert doc["counters"]["replayed"] == 1 and doc["counters"]["handled"] == 2 and doc["counters"]["dead_lettered"] == 1
    final = [o for o in rt.outcomes() if o["event_id"] == gated.event_id][-1]
    assert final["outcome"] == "handled" and final["replay_of"] == letter["id"]


def test_a_full_queue_refuses_with_a_typed_error(runtimes: Runtimes) -> None:
    rt = runtimes.make("chaos", queue_capacity=3)
    rt.start()
    answers = [job(rt, "sleep:0.5") for _ in range(8)]
    refused = [a for a in answers if isinstance(a, Refused)]
    # Eight submits take microseconds; a handler call takes half a second.
    assert refused and all(r.reason == "queue_full" for r in refused)
    assert all(r.retry_after_s is not None and r.retry_after_s > 0 for r in refused)
    assert "full" in refused[0].message
    doc = rt.status()
    assert doc["queue"]["capacity"] == 3 and doc["queue"]["depth"] + doc["queue"]["in_flight"] <= 3
    assert doc["counters"]["refused"]["queue_full"] == len(refused)
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    doc = invariant(rt)
    assert doc["counters"]["accepted"] == len(answers) - len(refused) == doc["counters"]["handled"]


def test_stop_with_a_full_queue_accounts_for_every_event(runtimes: Runtimes) -> None:
    rt = runtimes.make("chaos", queue_capacity=6)
    finals: list[dict[str, Any]] = []
    rt.on_outcome(finals.append)
    rt.start()
    answers = [job(rt, "sleep:0.3") for _ in range(6)]
    accepted = [a.event_id for a in answers if isinstance(a, Accepted)]
    doc = rt.stop(drain_deadline_s=0.1)
    assert doc["lifecycle"]["state"] == "stopped"
    assert doc["queue"]["depth"] == 0 and doc["queue"]["in_flight"] == 0
    c = doc["counters"]
    assert c["accepted"] == len(accepted) == c["handled"] + c["dead_lettered"]
    assert c["dead_lettered"] >= 1
    stopped = [d for d in rt.dead_letters() if d["reason"] == "stopping"]
    assert len(stopped) == c["dead_lettered"] and all(d["attempts"] == 0 for d in stopped)
    assert sorted(f["event_id"] for f in finals) == sorted(accepted)
    # They can be replayed once the service runs again.
    rt.start()
    for letter in stopped:
        assert isinstance(rt.replay(letter["id"]), Accepted)


def test_payloads_are_checked_before_they_are_queued(runtimes: Runtimes) -> None:
    rt = runtimes.make("webhook-ingress")
    rt.start()
    cases = [
        (("orders", "webhook", Case("json", '{"order_id": "A", "amount_cents": -1, "currency": "EUR"}')), {}, "invalid_payload"),
        (("orders", "webhook", Case("json", '{"order_id": "A"')), {}, "invalid_payload"),
        (("orders", "webhook", Case("text", 42)), {}, "invalid_payload"),  # type: ignore[arg-type]
        (("orders", "ping", Case("empty")), {}, "unknown_kind"),
        (("billing", "webhook", Case("empty")), {}, "unknown_ingress"),
        (("orders", "webhook", Case("json", "{}")), {"source": "timer:orders"}, "source_not_allowed"),
        (("orders", "webhook", Case("text", "x" * (256 * 1024 + 1))), {}, "too_large"),
    ]
    for args, kw, reason in cases:
        result = rt.submit(*args, **kw)
        assert isinstance(result, Refused) and result.reason == reason, (args[:2], result)
        assert result.retry_after_s is None
    ok = rt.submit("orders", "webhook", Case("json", '{"order_id": "B", "amount_cents": 5, "currency": "USD"}'), source="http:orders")
    assert isinstance(ok, Accepted)
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    doc = invariant(rt)
    assert doc["counters"]["refused_total"] == len(cases) and doc["counters"]["handled"] == 1
    assert doc["counters"]["refused"]["invalid_payload"] == 3


def test_timer_coalescing_sees_pending_ticks(runtimes: Runtimes) -> None:
    rt = runtimes.make("chaos")
    rt.start()
    assert not rt.has_pending("jobs", "tick")
    job(rt, "sleep:0.3")
    tick = rt.submit("jobs", "tick", None, source="timer:jobs")
    assert isinstance(tick, Accepted)
    assert rt.has_pending("jobs", "tick")  # queued behind the sleeper: a timer skips its next tick
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    assert not rt.has_pending("jobs", "tick")


BEHAVIOURS = st.sampled_from(["ok", "ok", "ok", "error", "retry", "trap", "spin"])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    texts=st.lists(BEHAVIOURS, min_size=2, max_size=8).filter(lambda t: t.count("spin") <= 2),
    stop_at=st.none() | st.integers(min_value=0, max_value=7),  # None: after the last submit
    capacity=st.integers(min_value=2, max_value=6),
    max_attempts=st.integers(min_value=1, max_value=2),
    budget=st.sampled_from([1, 3, 10]),
    drain=st.sampled_from([0.0, 0.2, 5.0]),
    settle=st.booleans(),
)
def test_invariant_under_random_chaos(
    runtimes: Runtimes, texts: list[str], stop_at: int | None, capacity: int, max_attempts: int, budget: int, drain: float, settle: bool
) -> None:
    """Random ok / permanent error / retryable error / trap / deadline handlers and a
    random stop point: every accepted event ends exactly once, every refusal is typed
    and counted."""
    rt = runtimes.make("chaos", queue_capacity=capacity, max_attempts=max_attempts, restart_budget=budget, call_deadline_s=0.3)
    finals: list[dict[str, Any]] = []
    rt.on_outcome(finals.append)
    rt.start()
    answers: list[Accepted | Refused] = []
    stopper: threading.Thread | None = None
    for i, text in enumerate(texts):
        if i == stop_at:
            stopper = threading.Thread(target=rt.stop, kwargs={"drain_deadline_s": drain})
            stopper.start()
        answers.append(job(rt, text))
    if stopper is None:
        if settle:  # let every event play out before stopping
            assert rt.wait_idle(IDLE_TIMEOUT_S)
        rt.stop(drain_deadline_s=drain)
    else:
        stopper.join()
    doc = invariant(rt)
    assert doc["lifecycle"]["state"] in ("stopped", "failed")
    event(f"ended {doc['lifecycle']['state']}")
    event(f"restarts: {min(doc['lifecycle']['restarts'], 3)}{'+' if doc['lifecycle']['restarts'] >= 3 else ''}")
    event(f"handled some: {doc['counters']['handled'] > 0}; dead-lettered some: {doc['counters']['dead_lettered'] > 0}")
    accepted = [a.event_id for a in answers if isinstance(a, Accepted)]
    refused = [a for a in answers if isinstance(a, Refused)]
    assert all(r.reason in ("queue_full", "not_running") for r in refused)
    c = doc["counters"]
    assert c["accepted"] == len(accepted) and c["refused_total"] == len(refused)
    assert c["handled"] + c["dead_lettered"] == len(accepted)
    assert doc["queue"]["depth"] == doc["queue"]["in_flight"] == 0
    # Exactly once each: one final outcome per accepted event, no more, no less.
    assert sorted(f["event_id"] for f in finals) == sorted(accepted)
    letters = rt.dead_letters()
    assert len(letters) == c["dead_lettered"]
    assert {d["reason"] for d in letters} <= {"retries_exhausted", "permanent_error", "stopping", "failed"}
