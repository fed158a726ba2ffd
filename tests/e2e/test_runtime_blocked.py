"""A service handler blocked in a WASI call (`time.sleep`), which the epoch deadline
cannot interrupt, while the guest runs on the dispatcher thread itself: the call is
abandoned at its deadline + grace, a replacement dispatcher ends the event as a
`timeout` and goes on, `stop()` does not wait for the blocked thread, and blocked
calls stay bounded by `ABANDONED_CALLS_MAX`. Bound asserted: the issue's deadline +
0.5 s, measured from outside (the guest sleeps far longer)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from pdk.limits import ABANDONED_CALLS_MAX

from runtime_support import IDLE_TIMEOUT_S, Runtimes, invariant, job, runtime_host, runtimes  # noqa: F401

pytestmark = pytest.mark.slow

DEADLINE_S = 1.0
BOUND_S = DEADLINE_S + 0.5
NAP = "nap:30"  # far past the bound: an uninterrupted sleep would be obvious


def _first(outcomes: list[dict[str, Any]], event_id: str, timeout_s: float) -> dict[str, Any]:
    until = time.monotonic() + timeout_s
    while time.monotonic() < until:
        for record in list(outcomes):
            if record["event_id"] == event_id:
                return record
        time.sleep(0.01)
    raise AssertionError(f"no outcome for {event_id} within {timeout_s} s")


def test_a_blocked_handler_times_out_and_the_next_event_is_handled(runtimes: Runtimes) -> None:
    rt = runtimes.make("sleeper", call_deadline_s=DEADLINE_S, max_attempts=1)
    finals: list[dict[str, Any]] = []
    rt.on_outcome(finals.append)
    rt.start()
    started = time.monotonic()
    blocked = job(rt, NAP)
    record = _first(finals, blocked.event_id, 30)  # type: ignore[union-attr]
    elapsed = time.monotonic() - started
    assert record["outcome"] == "dead_lettered"
    assert record["error"]["code"] == "timeout"
    assert "blocked in the guest" in record["error"]["message"]
    assert elapsed < BOUND_S
    assert rt.plugin.instance.blocked_calls == 1
    after = job(rt, "after")
    assert _first(finals, after.event_id, IDLE_TIMEOUT_S)["outcome"] == "handled"  # type: ignore[union-attr]
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    doc = invariant(rt)
    assert doc["lifecycle"]["restarts"] == 1
    assert doc["counters"]["handled"] == 1 and doc["counters"]["dead_lettered"] == 1
    assert rt.emitted("sleeper.done")[-1]["data"]["text"] == "after"


def test_stop_does_not_wait_for_a_blocked_handler(runtimes: Runtimes) -> None:
    rt = runtimes.make("sleeper", call_deadline_s=DEADLINE_S, max_attempts=1)
    rt.start()
    job(rt, NAP)
    time.sleep(0.1)  # the dispatcher is in the guest now
    started = time.monotonic()
    doc = rt.stop(drain_deadline_s=0.0)
    assert time.monotonic() - started < BOUND_S + 1.0  # the abandon, then the `stop` export
    assert doc["lifecycle"]["state"] == "stopped"
    assert doc["counters"]["dead_lettered"] == 1
    assert rt.start()["lifecycle"]["state"] == "running"  # a stopped runtime starts again
    after = job(rt, "again")
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    assert rt.outcomes()[-1]["event_id"] == after.event_id  # type: ignore[union-attr]
    assert rt.outcomes()[-1]["outcome"] == "handled"


def test_blocked_handlers_are_bounded(runtimes: Runtimes) -> None:
    # Each abandoned call keeps its thread (and its store) until the sleep ends. Past
    # the cap the plugin cannot be instantiated again: restarts fail and the runtime
    # ends `failed` instead of piling up threads.
    rt = runtimes.make("sleeper", call_deadline_s=DEADLINE_S, max_attempts=1, restart_budget=ABANDONED_CALLS_MAX + 2)
    before = {t.ident for t in threading.enumerate()}
    rt.start()
    for _ in range(ABANDONED_CALLS_MAX + 2):
        job(rt, NAP)
    until = time.monotonic() + 60
    while rt.status()["lifecycle"]["state"] != "failed" and time.monotonic() < until:
        time.sleep(0.05)
    doc = invariant(rt)
    assert doc["lifecycle"]["state"] == "failed"
    assert "still blocked" in doc["lifecycle"]["last_error"]["message"]
    assert rt.plugin.instance.blocked_calls == ABANDONED_CALLS_MAX
    dispatchers = [t for t in threading.enumerate() if t.ident not in before and t.name.startswith("yoi-runtime:")]
    assert len(dispatchers) <= ABANDONED_CALLS_MAX  # the blocked ones; the last replacement ended
    assert doc["counters"]["dead_lettered"] == ABANDONED_CALLS_MAX + 2
