"""The Service runtime's queue, lifecycle and accounting logic, with a fake guest.

The fake stands in for the component (the e2e tests run the real one): it answers
`handle` by the event's text — `ok`, `error` (permanent), `retry` (retryable), `trap`
and `timeout` (a `GuestFault`, as a poisoned instance raises), `block` (waits until the
test releases it, which makes "the queue is full" deterministic without timing).
"""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdk.host.codec import Case, Err, Ok
from pdk.host.diagnostics import DiagnosticLog
from pdk.host.grants import GrantSet
from pdk.host.instance import GuestFault
from pdk.host.runtime import REFUSAL_REASONS, Accepted, Refused, RuntimeOptions, ServiceRuntime
from pdk.host.runtime.dead_letters import DeadLetterStore
from pdk.host.runtime.intake import Intake
from pdk.host.runtime.lifecycle import RestartPolicy
from pdk.host.runtime.model import QueuedEvent
from pdk.host.runtime.options import IngressSettings, resolve_settings
from pdk.host.runtime.queue import EventQueue
from pdk.host.tool_gate import ToolGate
from pdk.limits import EVENT_PAYLOAD_MAX_BYTES, RETRY_BACKOFF_MAX_MS
from pdk.package.manifest import parse_manifest_text

MANIFEST = """
schema_version = 2
id = "fake-service"
name = "Fake"
version = "0.1.0"
description = "A fake service for runtime unit tests."
surfaces = ["services", "ingresses"]
host_apis = ["log"]

[runtime]
kind = "wasm-component"
world = "service"
component = "build/fake.wasm"

[[services]]
name = "fake"

[[ingresses]]
name = "jobs"
sources = ["manual", "timer"]
timer = { interval_ms = 1000 }
event_kinds = ["job", "tick"]
retry_backoff_ms = 0

[[ingresses]]
name = "orders"
sources = ["http"]
http_path = "/orders"
event_kinds = ["webhook"]
queue_capacity = 2
max_attempts = 5
retry_backoff_ms = 10

[ingresses.payload_schema]
type = "object"
required = ["id"]
properties = { id = { type = "integer" } }
"""


class FakeGuest:
    """Behaves like `WasmGuest` over a component that obeys the event's text."""

    has_lifecycle = True

    def __init__(self, fail_start: bool = False) -> None:
        self.recycles = 0
        self.fail_start = fail_start
        self.starts = 0
        self.stops = 0
        self.calls: list[tuple[str, int]] = []  # (event id, attempt)
        self.release = threading.Event()
        self.entered = threading.Event()
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()
        self.thread_names: set[str] = set()

    def start(self, config_json: str) -> Ok[Any] | Err[Any]:
        self.thread_names.add(threading.current_thread().name)
        self.starts += 1
        if self.fail_start:
            return Err({"code": "invalid_input", "message": "bad config", "details_json": None, "retryable": False})
        return Ok({"healthy": True, "data_json": json.dumps({"config": json.loads(config_json)})})

    def handle(self, event: dict[str, Any]) -> Ok[Any] | Err[Any]:
        self.thread_names.add(threading.current_thread().name)
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self.calls.append((event["id"], event["attempt"]))
            text = event["payload"].value
            if text == "block":
                self.entered.set()
                self.release.wait(10)
            if text in ("trap", "timeout"):
                self.recycles += 1
                raise GuestFault("trap" if text == "trap" else "timeout", f"fake {text}")
            if text == "error":
                return Err({"code": "failed", "message": "permanent", "details_json": None, "retryable": False})
            if text == "retry":
                return Err({"code": "failed", "message": "try again", "details_json": None, "retryable": True})
            return Ok({"data_json": None, "commands": [{"id": f"c-{event['id']}", "kind": Case("emit", {"topic": "done", "data_json": json.dumps({"id": event["id"]})})}]})
        finally:
            with self._lock:
                self.active -= 1

    def status(self) -> dict[str, Any]:
        return {"healthy": True, "data_json": json.dumps({"calls": len(self.calls)})}

    def stop(self) -> Ok[Any] | Err[Any]:
        self.stops += 1
        return Ok({"healthy": True, "data_json": None})

    def warm(self) -> None:
        pass

    def discard(self) -> None:
        pass


def fake_plugin() -> Any:
    manifest = parse_manifest_text(MANIFEST)
    digest = "sha256:" + "0" * 64
    return SimpleNamespace(
        manifest=manifest,
        grants=GrantSet.dev_grants(manifest),
        diagnostics=DiagnosticLog(),
        digest=digest,
        tool_gate=ToolGate(),
        status=lambda: {"id": manifest.id, "version": manifest.version, "digest": digest, "world": manifest.runtime.world},
    )


def make_runtime(guest: FakeGuest | None = None, **options: Any) -> tuple[ServiceRuntime, FakeGuest]:
    guest = guest or FakeGuest()
    opts = {"restart_backoff_initial_s": 0.0, "restart_backoff_max_s": 0.0, "retry_backoff_ms": 0, **options}
    rt = ServiceRuntime(fake_plugin(), {"k": 1}, RuntimeOptions(**opts), guest=guest)
    return rt, guest


def job(rt: ServiceRuntime, text: str) -> Accepted | Refused:
    return rt.submit("jobs", "job", Case("text", text))


def assert_invariant(rt: ServiceRuntime) -> dict[str, Any]:
    doc = rt.status()
    c, q = doc["counters"], doc["queue"]
    assert c["accepted"] == c["handled"] + c["dead_lettered"] + q["depth"] + q["in_flight"], doc
    json.dumps(doc)  # JSON-serializable
    return doc


# ---------------------------------------------------------------- pure pieces


def _event(ingress: str = "jobs", kind: str = "job", n: int = 0) -> QueuedEvent:
    return QueuedEvent(f"e{n}", ingress, "manual", kind, Case("text", "ok"), 0)


def test_queue_slots_cover_waiting_retrying_and_in_flight() -> None:
    q = EventQueue(3)
    events = [_event(n=i) for i in range(3)]
    for e in events:
        assert q.room_for("jobs") is None
        q.put(e)
    assert q.room_for("jobs") is not None
    first = q.take(now=0.0)
    assert first is events[0] and q.held() == 3 and q.depth() == 2
    q.defer(first, not_before=5.0)  # waits for its retry, keeps its slot
    assert q.held() == 3 and q.room_for("jobs") is not None
    assert q.take(now=1.0) is events[1]  # the retry is not ready yet
    q.finish(events[1])
    assert q.take(now=6.0) is first  # a ready retry goes before fresh events
    q.finish(first)
    assert q.drain() == [events[2]]
    assert q.held() == 0 and q.depth() == 0


def test_queue_ingress_share_and_pending() -> None:
    q = EventQueue(10, {"orders": 1})
    q.put(_event("orders", "webhook", 1))
    assert q.room_for("orders") is not None and q.room_for("jobs") is None
    q.put(_event("jobs", "tick", 2))
    assert q.has_pending("jobs", "tick") and not q.has_pending("jobs", "job")
    taken = q.take(now=0.0)
    assert taken is not None and taken.ingress == "orders"
    assert q.room_for("orders") is not None  # in flight still holds the share
    q.finish(taken)
    assert q.room_for("orders") is None


def test_queue_is_serial() -> None:
    q = EventQueue(2)
    q.put(_event(n=1))
    q.put(_event(n=2))
    q.take(now=0.0)
    with pytest.raises(RuntimeError):
        q.take(now=0.0)


def test_restart_policy_budget_window_and_backoff() -> None:
    policy = RestartPolicy(budget=3, window_s=10.0, initial_s=0.1, max_s=0.3)
    assert [policy.next_delay(0.0), policy.next_delay(1.0), policy.next_delay(2.0)] == [0.1, 0.2, 0.3]
    assert policy.next_delay(3.0) is None  # spent within the window
    assert policy.next_delay(10.5) == 0.3  # the first restart left the window
    policy.reset()
    assert policy.next_delay(11.0) == 0.1


def test_retry_backoff_is_exponential_and_capped() -> None:
    s = IngressSettings("x", capacity=1, max_attempts=3, retry_backoff_ms=100)
    assert [s.retry_delay_s(a) for a in (1, 2, 3)] == [0.1, 0.2, 0.4]
    assert s.retry_delay_s(40) == RETRY_BACKOFF_MAX_MS / 1000


def test_settings_precedence_and_clamping() -> None:
    manifest = parse_manifest_text(MANIFEST)
    settings = resolve_settings(manifest, RuntimeOptions(queue_capacity=8, max_attempts=2, retry_backoff_ms=7))
    assert settings["jobs"] == IngressSettings("jobs", capacity=8, max_attempts=2, retry_backoff_ms=0)
    assert settings["orders"] == IngressSettings("orders", capacity=2, max_attempts=5, retry_backoff_ms=10)
    tiny = resolve_settings(manifest, RuntimeOptions(queue_capacity=1))
    assert tiny["orders"].capacity == 1  # never more than the whole queue
    with pytest.raises(ValueError):
        RuntimeOptions(queue_capacity=5000)


def test_dead_letter_store_is_bounded() -> None:
    store = DeadLetterStore(2)
    letters = [store.add(_event(n=i), "permanent_error", 1, None) for i in range(3)]
    assert len(store) == 2 and store.evicted == 1
    assert store.get(letters[0].id) is None and store.get(letters[2].id) is not None
    with pytest.raises(ValueError):
        store.add(_event(), "whatever", 1, None)


@pytest.mark.parametrize(
    ("ingress", "kind", "payload", "source", "reason"),
    [
        ("nope", "job", Case("text", "x"), "manual", "unknown_ingress"),
        ("jobs", "webhook", Case("text", "x"), "manual", "unknown_kind"),
        ("jobs", "job", Case("text", "x"), "http", "source_not_allowed"),
        ("jobs", "job", Case("text", "x"), "some-connection", "source_not_allowed"),
        ("orders", "webhook", Case("json", "{}"), "manual", "source_not_allowed"),
        ("jobs", "job", Case("text", "x" * (EVENT_PAYLOAD_MAX_BYTES + 1)), "manual", "too_large"),
        ("jobs", "job", Case("text", "\ud800"), "manual", "invalid_payload"),
        ("orders", "webhook", Case("json", "{nope"), "http", "invalid_payload"),
        ("orders", "webhook", Case("json", '{"id": "seven"}'), "http:orders", "invalid_payload"),
        ("orders", "webhook", Case("json", "{}"), "http", "invalid_payload"),
    ],
)
def test_intake_refusals(ingress: str, kind: str, payload: Case, source: str, reason: str) -> None:
    result = Intake(parse_manifest_text(MANIFEST)).check(ingress, kind, payload, source)
    assert isinstance(result, Refused) and result.reason == reason, result


def test_intake_accepts_qualified_sources_and_valid_json() -> None:
    intake = Intake(parse_manifest_text(MANIFEST))
    assert intake.check("orders", "webhook", Case("json", '{"id": 7}'), "http:orders") == len('{"id": 7}')
    assert intake.check("jobs", "tick", Case("empty", None), "timer:jobs") == 0


# ---------------------------------------------------------------- the runtime


def test_lifecycle_start_submit_stop() -> None:
    rt, guest = make_runtime()
    assert rt.status()["lifecycle"]["state"] == "stopped"
    refused = job(rt, "ok")
    assert isinstance(refused, Refused) and refused.reason == "not_running"
    doc = rt.start()
    assert doc["lifecycle"]["state"] == "running" and guest.starts == 1
    assert doc["plugin_status"]["data"] == {"config": {"k": 1}} and doc["plugin_status"]["source"] == "start"
    results = [job(rt, "ok") for _ in range(5)]
    assert all(isinstance(r, Accepted) for r in results)
    assert rt.wait_idle(5)
    doc = rt.stop()
    assert doc["lifecycle"]["state"] == "stopped" and guest.stops == 1
    assert doc["counters"]["handled"] == 5 and doc["counters"]["refused"]["not_running"] == 1
    assert [e["data"]["id"] for e in rt.emitted()] == [r.event_id for r in results if isinstance(r, Accepted)]
    # Every call into the guest ran on the dispatcher thread, never on the caller's.
    assert guest.thread_names == {"yoi-runtime:fake-service"}
    assert set(doc["counters"]["refused"]) == set(REFUSAL_REASONS)


def test_failed_start_is_reported_and_dead_letters_nothing_silently() -> None:
    rt, guest = make_runtime(FakeGuest(fail_start=True))
    doc = rt.start()
    assert doc["lifecycle"]["state"] == "failed"
    assert doc["lifecycle"]["last_error"]["code"] == "invalid_input"
    assert doc["lifecycle"]["last_error"]["during"] == "start"
    r = job(rt, "ok")
    assert isinstance(r, Refused) and r.reason == "not_running"
    guest.fail_start = False
    assert rt.start()["lifecycle"]["state"] == "running"
    rt.stop()


def test_queue_full_is_a_typed_refusal_and_stop_accounts_for_everything() -> None:
    rt, guest = make_runtime(queue_capacity=3)
    rt.start()
    assert isinstance(job(rt, "block"), Accepted)
    assert guest.entered.wait(5)  # the blocker is in flight, holding one slot
    assert all(isinstance(job(rt, "ok"), Accepted) for _ in range(2))
    full = job(rt, "ok")
    assert isinstance(full, Refused) and full.reason == "queue_full"
    assert full.retry_after_s is not None and full.retry_after_s > 0
    assert rt.has_pending("jobs", "job")
    stopper = threading.Thread(target=rt.stop, kwargs={"drain_deadline_s": 0.0})
    stopper.start()
    while rt.state != "stopping":  # stop() has closed intake
        threading.Event().wait(0.001)
    late = job(rt, "ok")
    assert isinstance(late, Refused) and late.reason == "not_running"
    guest.release.set()
    stopper.join()
    doc = assert_invariant(rt)
    assert doc["counters"]["handled"] == 1  # the blocker finished
    assert doc["counters"]["dead_lettered"] == 2
    assert {d["reason"] for d in rt.dead_letters()} == {"stopping"}
    assert doc["counters"]["refused"] == {**{r: 0 for r in REFUSAL_REASONS}, "queue_full": 1, "not_running": 1}


def test_retries_then_dead_letter_then_replay() -> None:
    rt, guest = make_runtime(max_attempts=3)
    rt.start()
    accepted = job(rt, "retry")
    assert isinstance(accepted, Accepted)
    assert rt.wait_idle(5)
    assert [a for e, a in guest.calls if e == accepted.event_id] == [1, 2, 3]
    (letter,) = rt.dead_letters()
    assert letter["reason"] == "retries_exhausted" and letter["attempts"] == 3
    assert letter["event"]["id"] == accepted.event_id and letter["error"]["retryable"] is True
    doc = rt.status()
    assert doc["counters"]["failed"] == 3 and doc["counters"]["retried"] == 2
    assert [o["outcome"] for o in rt.outcomes()] == ["retrying", "retrying", "dead_lettered"]
    replayed = rt.replay(letter["id"])
    assert isinstance(replayed, Accepted) and replayed.event_id == accepted.event_id
    assert rt.dead_letters() == []
    assert rt.wait_idle(5)
    assert len(rt.dead_letters()) == 1 and rt.dead_letters()[0]["replay_of"] == letter["id"]
    with pytest.raises(KeyError):
        rt.replay("dl-nope")
    doc = assert_invariant(rt)
    assert doc["counters"]["replayed"] == 1 and doc["counters"]["accepted"] == 2
    rt.stop()


def test_permanent_errors_are_not_retried() -> None:
    rt, guest = make_runtime(max_attempts=5)
    rt.start()
    job(rt, "error")
    assert rt.wait_idle(5)
    assert len(guest.calls) == 1
    assert rt.dead_letters()[0]["reason"] == "permanent_error"
    rt.stop()


def test_faults_restart_and_the_budget_fails_the_service() -> None:
    rt, guest = make_runtime(max_attempts=1, restart_budget=2, restart_backoff_initial_s=0.001, restart_backoff_max_s=1.0)
    rt.start()
    job(rt, "trap")
    assert rt.wait_idle(5)
    doc = rt.status()
    assert doc["lifecycle"]["state"] == "running" and doc["lifecycle"]["restarts"] == 1 and guest.starts == 2
    job(rt, "timeout")
    assert rt.wait_idle(5)
    assert rt.status()["lifecycle"]["restarts"] == 2
    delays = [r["delay_s"] for r in rt.status()["lifecycle"]["recent_restarts"]]
    assert delays == [0.001, 0.002]  # exponential
    outcomes: list[dict[str, Any]] = []
    rt.on_outcome(outcomes.append)
    # Queue a few behind the third fault: the budget is spent, so they end `failed`.
    guest.release.clear()
    job(rt, "block")
    assert guest.entered.wait(5)
    job(rt, "trap")
    job(rt, "ok")
    guest.release.set()
    assert rt.wait_idle(5)
    doc = assert_invariant(rt)
    assert doc["lifecycle"]["state"] == "failed"
    assert "restart budget spent" in doc["lifecycle"]["last_error"]["message"]
    assert [o["outcome"] for o in outcomes] == ["handled", "dead_lettered", "dead_lettered"]
    assert [o["reason"] for o in outcomes[1:]] == ["retries_exhausted", "failed"]
    assert isinstance(job(rt, "ok"), Refused)
    assert rt.stop()["lifecycle"]["state"] == "failed"  # stays failed until started
    assert rt.start()["lifecycle"]["state"] == "running"
    rt.stop()


def test_tool_gate_follows_the_lifecycle() -> None:
    rt, guest = make_runtime()
    gate = rt.plugin.tool_gate.refusal
    assert gate is not None and "stopped" in (gate() or "")
    rt.start()
    assert gate() is None
    guest.recycles += 1  # as if a tool call had trapped: refused until restarted
    assert "restarting" in (gate() or "")
    assert rt.wait_idle(5)
    assert gate() is None and guest.starts == 2
    rt.stop()
    assert "stopped" in (gate() or "")


def test_status_is_bounded_however_long_it_runs() -> None:
    rt, _ = make_runtime(queue_capacity=64)
    rt.start()
    for i in range(3000):
        while isinstance(job(rt, "error" if i % 3 == 0 else "ok"), Refused):
            rt.wait_idle(5)
    assert rt.wait_idle(10)
    doc = assert_invariant(rt)
    assert doc["counters"]["handled"] == 2000 and doc["counters"]["dead_lettered"] == 1000
    assert len(json.dumps(doc)) < 64 * 1024
    assert len(rt.outcomes()) <= 256 and len(rt.dead_letters()) <= 256
    rt.stop()


def test_plugin_status_is_read_between_dispatches() -> None:
    rt, _ = make_runtime()
    rt.start()
    job(rt, "ok")
    assert rt.wait_idle(5)
    doc = rt.status()
    assert doc["plugin_status"]["source"] == "status_export" and doc["plugin_status"]["data"] == {"calls": 1}
    assert rt.status(refresh=True)["plugin_status"]["data"] == {"calls": 1}
    rt.stop()


BEHAVIOURS = st.sampled_from(["ok", "ok", "error", "retry", "trap", "timeout"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(BEHAVIOURS, max_size=20),
    stop_at=st.integers(min_value=0, max_value=20),
    capacity=st.integers(min_value=1, max_value=8),
    max_attempts=st.integers(min_value=1, max_value=3),
    budget=st.integers(min_value=0, max_value=6),
    drain=st.sampled_from([0.0, 5.0]),
)
def test_invariant_with_a_fake_guest(texts: list[str], stop_at: int, capacity: int, max_attempts: int, budget: int, drain: float) -> None:
    rt, _ = make_runtime(queue_capacity=capacity, max_attempts=max_attempts, restart_budget=budget)
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
        rt.stop(drain_deadline_s=drain)
    else:
        stopper.join()
    doc = assert_invariant(rt)
    accepted = [a.event_id for a in answers if isinstance(a, Accepted)]
    refused = [a for a in answers if isinstance(a, Refused)]
    assert all(r.reason in ("queue_full", "not_running") for r in refused)
    assert doc["counters"]["accepted"] == len(accepted)
    assert doc["counters"]["refused_total"] == len(refused)
    # Every accepted event ended exactly once.
    assert sorted(o["event_id"] for o in finals) == sorted(accepted)
    assert doc["counters"]["handled"] + doc["counters"]["dead_lettered"] == len(accepted)
