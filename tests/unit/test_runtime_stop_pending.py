"""A stop that cannot drain the queue, on a durable state store (a real SQLite file)
and in memory, with the fake guest of test_runtime_queue_logic.

Durable: the undrained events stay pending in the store (not dead-lettered), are
counted in `counters.left_pending`, and the next start - in this process or in a new
runtime on the same file - delivers them; after a clean stop their attempts are
exact (a waiting event keeps attempt 1; one whose retryable attempt failed while the
stop gave up counts that attempt: its next is attempt + 1). In memory, where nothing
survives, they are dead-lettered with reason `stopping`, as before. Offline replay
(`replay_offline`) turns a dead letter of a store back into a pending event.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from test_runtime_queue_logic import FakeGuest, fake_plugin

from pdk.host.codec import Case, Err, Ok
from pdk.host.runtime import Accepted, RuntimeOptions, ServiceRuntime
from pdk.host.runtime.store import StoreError, inspect_store, replay_offline

FAST = {"restart_backoff_initial_s": 0.0, "restart_backoff_max_s": 0.0, "retry_backoff_ms": 0}


class StoppingGuest(FakeGuest):
    """`block-retry`: blocks until released, then fails retryably (an attempt that is
    under way when the stop gives up on the queue)."""

    def handle(self, event: dict[str, Any]) -> Ok[Any] | Err[Any]:
        if event["payload"].value != "block-retry":
            return super().handle(event)
        self.calls.append((event["id"], event["attempt"]))
        if event["attempt"] == 1:
            self.entered.set()
            self.release.wait(10)
            return Err({"code": "failed", "message": "try again", "details_json": None, "retryable": True})
        return Ok({"data_json": None, "commands": []})


def runtime(state: Any, guest: FakeGuest | None = None) -> tuple[ServiceRuntime, FakeGuest]:
    guest = guest or StoppingGuest()
    return ServiceRuntime(fake_plugin(), {}, RuntimeOptions(**FAST), guest=guest, state=state), guest


def rows(path: Path) -> dict[str, tuple[str, int]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {i: (s, a) for i, s, a in conn.execute("SELECT id, state, attempt FROM events")}
    finally:
        conn.close()


def balanced(doc: dict[str, Any]) -> bool:
    c, q = doc["counters"], doc["queue"]
    return bool(c["accepted"] == c["handled"] + c["dead_lettered"] + c["left_pending"] + q["depth"] + q["in_flight"])


def stop_mid_attempt(rt: ServiceRuntime, guest: FakeGuest) -> tuple[str, list[str], dict[str, Any]]:
    """Accept `block-retry` then three `ok`s; stop (drain deadline 0) while the first
    is in flight; release it. Returns (its id, the waiting ids, the stop's status)."""
    rt.start()
    first = rt.submit("jobs", "job", Case("text", "block-retry"))
    assert isinstance(first, Accepted)
    assert guest.entered.wait(10)
    waiting = [rt.submit("jobs", "job", Case("text", "ok")) for _ in range(3)]
    assert all(isinstance(r, Accepted) for r in waiting)
    done: list[dict[str, Any]] = []
    stopper = threading.Thread(target=lambda: done.append(rt.stop(drain_deadline_s=0.0)))
    stopper.start()
    with rt._cv:  # noqa: SLF001 - wait (no sleeping) until stop() closed intake
        assert rt._cv.wait_for(lambda: rt.state == "stopping", 10)
    guest.release.set()
    stopper.join(10)
    (doc,) = done
    return first.event_id, [r.event_id for r in waiting if isinstance(r, Accepted)], doc


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state.sqlite3"


def test_a_stop_leaves_the_undrained_events_pending_in_a_durable_store(path: Path) -> None:
    rt, guest = runtime(path)
    first, waiting, doc = stop_mid_attempt(rt, guest)
    assert doc["lifecycle"]["state"] == "stopped" and balanced(doc)
    c = doc["counters"]
    assert (c["accepted"], c["handled"], c["dead_lettered"], c["left_pending"]) == (4, 0, 0, 4)
    assert rt.dead_letters() == [] and doc["dead_letters"]["count"] == 0
    assert doc["store"]["pending"] == 4
    left = [o for o in rt.outcomes() if o["outcome"] == "left_pending"]
    assert [(o["event_id"], o["attempts"], o["next_attempt"]) for o in left] == [(first, 1, 2)] + [(i, 0, 1) for i in waiting]
    assert left[0]["error"]["message"] == "try again"
    rt.close()
    # In the store: all four pending; the attempt under way counted (its next is 2),
    # the waiting ones never delivered (their next is 1).
    assert rows(path) == {first: ("pending", 2), **{i: ("pending", 1) for i in waiting}}
    seen = inspect_store(path)
    assert seen["pending"] == 4 and seen["clean_stop"] is not None and seen["clean_stop"]["left_pending"] == 4

    # The next run on the same store delivers them, once each, with exact attempts.
    rt2, guest2 = runtime(path)
    doc = rt2.start()
    assert doc["store"]["recovery"]["clean_stop"] is True and doc["store"]["recovery"]["requeued"] == 4
    assert rt2.wait_idle(10)
    assert guest2.calls == [(first, 2)] + [(i, 1) for i in waiting]
    doc = rt2.close()
    c = doc["counters"]
    assert (c["accepted"], c["recovered"], c["handled"], c["left_pending"], c["dead_lettered"]) == (4, 4, 4, 0, 0)
    assert rows(path) == {first: ("handled", 2), **{i: ("handled", 1) for i in waiting}}
    mark = inspect_store(path)["clean_stop"]
    assert mark is not None and mark["left_pending"] == 0


def test_a_start_removes_the_clean_stop_mark_so_a_crash_after_it_adds_one(path: Path) -> None:
    rt, guest = runtime(path)
    stop_mid_attempt(rt, guest)
    rt.close()
    rt2, guest2 = runtime(path)
    rt2.start()  # delivers the four left pending first (FIFO), then takes `block`
    blocked = rt2.submit("jobs", "job", Case("text", "block"))
    assert isinstance(blocked, Accepted) and guest2.entered.wait(10)
    # The host dies with `block` in flight: its store writes nothing more (what was
    # queued is written, as a crashed process's committed transactions are there).
    rt2.store.close()
    guest2.release.set()
    rt2.stop()
    seen = inspect_store(path)
    assert seen["clean_stop"] is None and seen["pending"] == 1
    rt3, guest3 = runtime(path)
    guest3.release.set()
    doc = rt3.start()
    assert doc["store"]["recovery"]["clean_stop"] is False
    assert rt3.wait_idle(10)
    assert guest3.calls == [(blocked.event_id, 2)]  # a delivery may have been under way: attempt + 1
    rt3.close()


def test_the_next_start_in_the_same_process_delivers_what_the_stop_left(path: Path) -> None:
    rt, guest = runtime(path)
    first, waiting, _ = stop_mid_attempt(rt, guest)
    guest.calls.clear()
    doc = rt.start()
    assert doc["store"]["recovery"]["pending"] == 4 and doc["store"]["recovery"]["clean_stop"] is True
    assert rt.wait_idle(10)
    assert guest.calls == [(first, 2)] + [(i, 1) for i in waiting]
    doc = rt.close()
    assert balanced(doc)
    c = doc["counters"]  # each left-pending event is accepted again (recovered) and ends once
    assert (c["accepted"], c["recovered"], c["left_pending"], c["handled"], c["dead_lettered"]) == (8, 4, 4, 4, 0)
    assert rows(path) == {first: ("handled", 2), **{i: ("handled", 1) for i in waiting}}


def test_in_memory_a_stop_still_dead_letters_what_it_could_not_drain() -> None:
    rt, guest = runtime(None)
    first, waiting, doc = stop_mid_attempt(rt, guest)
    assert balanced(doc)
    c = doc["counters"]
    assert (c["accepted"], c["dead_lettered"], c["left_pending"]) == (4, 4, 0)
    letters = {d["event"]["id"]: d for d in rt.dead_letters()}
    assert set(letters) == {first, *waiting} and {d["reason"] for d in letters.values()} == {"stopping"}
    assert letters[first]["attempts"] == 1 and all(letters[i]["attempts"] == 0 for i in waiting)


def test_a_drained_stop_leaves_nothing_pending(path: Path) -> None:
    rt, guest = runtime(path)
    rt.start()
    ids = [r.event_id for r in (rt.submit("jobs", "job", Case("text", "ok")) for _ in range(3)) if isinstance(r, Accepted)]
    doc = rt.close()  # the default drain deadline: plenty for three fake events
    assert doc["counters"]["left_pending"] == 0 and doc["counters"]["handled"] == 3
    assert rows(path) == {i: ("handled", 1) for i in ids}
    assert inspect_store(path)["clean_stop"]["left_pending"] == 0


# ---------------------------------------------------------------- offline replay


def test_replay_offline_makes_a_dead_letter_pending_for_the_next_run(path: Path) -> None:
    rt, _ = runtime(path)
    rt.start()
    ok = rt.submit("jobs", "job", Case("text", "ok"))
    bad = rt.submit("jobs", "job", Case("text", "error"))
    assert isinstance(ok, Accepted) and isinstance(bad, Accepted) and rt.wait_idle(10)
    (letter,) = rt.dead_letters()
    with pytest.raises(StoreError) as held:  # a running host holds the store
        replay_offline(path, letter["id"])
    assert held.value.code == "locked"
    rt.close()

    with pytest.raises(KeyError):
        replay_offline(path, "dl-nope")
    done = replay_offline(path, letter["id"])
    assert done == {"replayed": letter["id"], "event_id": bad.event_id, "pending": 1}
    seen = inspect_store(path)
    assert (seen["pending"], seen["dead_letters"], seen["dead_letter_list"]) == (1, 0, [])
    with pytest.raises(KeyError):  # no longer a dead letter
        replay_offline(path, letter["id"])

    rt2, guest2 = runtime(path)
    rt2.start()
    assert rt2.wait_idle(10)
    assert guest2.calls == [(bad.event_id, 1)]  # the last run stopped cleanly: attempt 1
    (again,) = rt2.dead_letters()  # "error" fails again: a new letter that names the old one
    assert again["event"]["id"] == bad.event_id and again["replay_of"] == letter["id"] and again["id"] != letter["id"]
    rt2.close()
    assert rows(path) == {ok.event_id: ("handled", 1), bad.event_id: ("dead", 1)}


def test_replay_offline_refuses_what_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as missing:
        replay_offline(tmp_path / "none.sqlite3", "dl-1")
    assert missing.value.code == "io"
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database" * 300)
    before = junk.read_bytes()
    with pytest.raises(StoreError) as corrupt:
        replay_offline(junk, "dl-1")
    assert corrupt.value.code == "corrupt" and junk.read_bytes() == before
