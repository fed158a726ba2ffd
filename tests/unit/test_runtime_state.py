"""The runtime on a durable state store (a real SQLite file), with the fake guest of
test_runtime_queue_logic: accepted events are in the store before `Accepted`, the
pending events of an earlier run are delivered again (same id, attempt + 1), dead
letters survive a restart and can be replayed, a rebuilt plugin gets the pending
events by the documented rule, and a store that cannot write refuses with a typed
reason instead of answering `Accepted`."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from test_runtime_queue_logic import FakeGuest, assert_invariant, fake_plugin

from pdk.host.codec import Case
from pdk.host.runtime import Accepted, Refused, RuntimeOptions, ServiceRuntime
from pdk.host.runtime.model import QueuedEvent
from pdk.host.runtime.runtime import RECOVERY_RULE
from pdk.host.runtime.store import MemoryStore, StoreError, open_store

FAST = {"restart_backoff_initial_s": 0.0, "restart_backoff_max_s": 0.0, "retry_backoff_ms": 0}
DIGEST = "sha256:" + "0" * 64  # fake_plugin()'s


def runtime(state: Any, guest: FakeGuest | None = None, plugin: Any = None) -> tuple[ServiceRuntime, FakeGuest]:
    guest = guest or FakeGuest()
    return ServiceRuntime(plugin or fake_plugin(), {}, RuntimeOptions(**FAST), guest=guest, state=state), guest


def rows(path: Path) -> dict[str, tuple[str, int]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {i: (s, a) for i, s, a in conn.execute("SELECT id, state, attempt FROM events")}
    finally:
        conn.close()


def pending_in_store(path: Path, texts: list[str], *, digest: str = DIGEST, attempt: int = 1, ingress: str = "jobs", kind: str = "job") -> list[str]:
    """What a host killed mid-run leaves: accepted events, never ended."""
    store = open_store(path, "fake-service", digest)
    ids = []
    for i, text in enumerate(texts):
        ev = QueuedEvent(f"ev-{i:04d}", ingress, "manual", kind, Case("text", text), 1_700_000_000_000, None, len(text), attempt)
        store.accept(ev)
        ids.append(ev.id)
    store.close()
    return ids


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state.sqlite3"


def test_the_default_state_is_memory() -> None:
    rt, _ = runtime(None)
    assert isinstance(rt.store, MemoryStore)
    rt.start()
    assert rt.submit("jobs", "job", Case("text", "ok")).accepted
    assert rt.wait_idle(5)
    doc = rt.close()
    assert doc["store"]["path"] == ":memory:" and doc["store"]["durable"] is False and doc["store"]["handled"] == 1
    assert doc["store"]["recovery"] is None


def test_accepted_events_are_in_the_store_and_end_there(path: Path) -> None:
    rt, guest = runtime(path)
    rt.start()
    results = [rt.submit("jobs", "job", Case("text", t)) for t in ("ok", "ok", "error")]
    assert all(isinstance(r, Accepted) for r in results)
    assert rt.wait_idle(5)
    doc = rt.close()
    assert doc["store"]["durable"] is True and doc["store"]["path"] == str(path)
    ids = [r.event_id for r in results if isinstance(r, Accepted)]
    assert rows(path) == {ids[0]: ("handled", 1), ids[1]: ("handled", 1), ids[2]: ("dead", 1)}
    assert (doc["store"]["pending"], doc["store"]["handled"], doc["store"]["dead_letters"], doc["store"]["emitted"]) == (0, 2, 1, 2)
    assert doc["store"]["recovery"]["pending"] == 0


def test_pending_events_of_an_earlier_run_are_delivered_again(path: Path) -> None:
    ids = pending_in_store(path, ["ok", "ok", "retry"])
    rt, guest = runtime(path)
    doc = rt.start()
    assert rt.wait_idle(5)
    doc = rt.close()
    # Same ids, in acceptance order, attempt + 1 (a delivery may have been under way).
    assert guest.calls[:2] == [(ids[0], 2), (ids[1], 2)]
    assert [c for c in guest.calls if c[0] == ids[2]] == [(ids[2], 2), (ids[2], 3)]  # max_attempts 3
    assert rows(path) == {ids[0]: ("handled", 2), ids[1]: ("handled", 2), ids[2]: ("dead", 3)}
    c = doc["counters"]
    assert (c["accepted"], c["recovered"], c["handled"], c["dead_lettered"]) == (3, 3, 2, 1)
    rec = doc["store"]["recovery"]
    assert rec == {
        "previous_digest": DIGEST,
        "digest_changed": False,
        "clean_stop": False,
        "pending": 3,
        "requeued": 3,
        "dead_lettered": 0,
        "accepted_by": {DIGEST: 3},
        "rule": RECOVERY_RULE,
    }
    assert_invariant(rt)


def test_a_rebuilt_plugin_gets_the_pending_events_it_still_accepts(path: Path) -> None:
    old = "sha256:" + "1" * 64
    ids = pending_in_store(path, ["ok"], digest=old)
    store = open_store(path, "fake-service", old)
    store.accept(QueuedEvent("ev-gone", "removed", "manual", "job", Case("text", "ok"), 0, None, 2))
    store.close()
    rt, guest = runtime(path)
    rt.start()
    assert rt.wait_idle(5)
    doc = rt.close()
    assert guest.calls == [(ids[0], 2)]
    rec = doc["store"]["recovery"]
    assert (rec["previous_digest"], rec["digest_changed"], rec["requeued"], rec["dead_lettered"], rec["accepted_by"]) == (old, True, 1, 1, {old: 2})
    (letter,) = rt.dead_letters()
    assert letter["event"]["id"] == "ev-gone" and letter["reason"] == "permanent_error"
    assert "not accepted by this build" in letter["error"]["message"] and "'removed'" in letter["error"]["message"]
    assert any("accepted by an earlier build go to this build (1 dead-lettered)" in m for m in rt.plugin.diagnostics.messages("host"))


def test_an_event_pending_through_too_many_runs_is_given_up(path: Path) -> None:
    (event_id,) = pending_in_store(path, ["ok"], attempt=10)
    rt, guest = runtime(path)
    rt.start()
    assert rt.wait_idle(5)
    rt.close()
    assert guest.calls == []
    (letter,) = rt.dead_letters()
    assert letter["event"]["id"] == event_id and letter["reason"] == "retries_exhausted" and letter["attempts"] == 10


def test_dead_letters_survive_a_restart_and_can_be_replayed(path: Path) -> None:
    rt, guest = runtime(path)
    rt.start()
    first = rt.submit("jobs", "job", Case("text", "error"))
    assert isinstance(first, Accepted) and rt.wait_idle(5)
    rt.close()
    rt2, guest2 = runtime(path)
    (letter,) = rt2.dead_letters()  # before start, too
    assert letter["event"]["id"] == first.event_id and letter["reason"] == "permanent_error"
    rt2.start()
    again = rt2.replay(letter["id"])
    assert again == Accepted(first.event_id)
    assert rt2.wait_idle(5)
    doc = rt2.close()
    assert guest2.calls == [(first.event_id, 1)]
    assert doc["counters"]["replayed"] == 1
    (new_letter,) = rt2.dead_letters()  # failed again: a new letter, the old one is gone
    assert new_letter["id"] != letter["id"] and new_letter["replay_of"] == letter["id"]
    assert rows(path) == {first.event_id: ("dead", 1)}


def test_emitted_events_survive_a_restart(path: Path) -> None:
    rt, _ = runtime(path)
    rt.start()
    ok = rt.submit("jobs", "job", Case("text", "ok"))
    assert rt.wait_idle(5)
    rt.close()
    rt2, _ = runtime(path)
    assert [r["event_id"] for r in rt2.emitted()] == [ok.event_id]  # type: ignore[union-attr]
    rt2.close()


def test_a_second_runtime_on_the_same_store_is_refused(path: Path) -> None:
    rt, _ = runtime(path)
    with pytest.raises(StoreError) as info:
        runtime(path)
    assert info.value.code == "locked"
    rt.close()


class FailingStore(MemoryStore):
    """A durable-looking store whose writes fail (a full disk, a vanished file)."""

    durable = True

    def accept(self, event: QueuedEvent) -> None:
        raise StoreError("full", "the state store /x is full", "/x")


def test_a_store_that_cannot_write_refuses_instead_of_accepting() -> None:
    rt, guest = runtime(FailingStore("fake-service"))
    rt.start()
    result = rt.submit("jobs", "job", Case("text", "ok"))
    assert isinstance(result, Refused) and result.reason == "store_unavailable" and "is full" in result.message
    assert result.retry_after_s is not None
    doc = rt.close()
    assert doc["counters"]["refused"]["store_unavailable"] == 1 and doc["counters"]["accepted"] == 0
    assert guest.calls == []
    assert doc["queue"]["depth"] == 0


class SlowStore(MemoryStore):
    """A durable-looking store whose accept waits until the test releases it."""

    durable = True

    def __init__(self) -> None:
        super().__init__("fake-service")
        self.entered = threading.Event()
        self.release = threading.Event()

    def accept(self, event: QueuedEvent) -> None:
        self.entered.set()
        self.release.wait(10)
        super().accept(event)


def test_an_event_stored_after_the_stop_drained_is_left_pending_not_lost() -> None:
    store = SlowStore()
    rt, guest = runtime(store)
    rt.start()
    answer: list[Any] = []
    t = threading.Thread(target=lambda: answer.append(rt.submit("jobs", "job", Case("text", "ok"))))
    t.start()
    assert store.entered.wait(5)
    rt.stop(drain_deadline_s=0.0)  # the write is still under way: the deadline passes
    store.release.set()
    t.join()
    (result,) = answer
    assert isinstance(result, Accepted)
    c = rt.status()["counters"]
    assert (c["accepted"], c["dead_lettered"], c["left_pending"]) == (1, 0, 1)  # pending in the store
    assert rt.dead_letters() == [] and guest.calls == []
    rt.start()  # the next start delivers it, with its (exact) first attempt
    assert rt.wait_idle(5)
    assert guest.calls == [(result.event_id, 1)]
    c = rt.close()["counters"]  # a re-queued event counts again in accepted (and recovered)
    assert (c["accepted"], c["recovered"], c["handled"], c["left_pending"]) == (2, 1, 1, 1)


def test_stop_waits_for_an_event_being_stored() -> None:
    store = SlowStore()
    rt, guest = runtime(store)
    rt.start()
    answer: list[Any] = []
    t = threading.Thread(target=lambda: answer.append(rt.submit("jobs", "job", Case("text", "ok"))))
    t.start()
    assert store.entered.wait(5)
    stopper = threading.Thread(target=rt.stop)  # generous deadline: it waits for the write
    stopper.start()
    store.release.set()
    t.join()
    stopper.join()
    (result,) = answer
    assert isinstance(result, Accepted) and guest.calls == [(result.event_id, 1)]
    assert rt.status()["counters"]["handled"] == 1
