"""Timer sources driving real components: ticks arrive, and a handler slower than the
interval makes the timer coalesce instead of piling ticks up — with every tick
accounted for: each one the timer fired reached the plugin exactly once, and each
one it did not fire is counted as coalesced.

slow-service's `beat` ingress ticks every 100 ms (the host minimum); its handler
spins for `tick_spin_ms` (config). The tests wait for conditions (bounded by a
generous timeout), they never assert on durations."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from pdk.host import Host
from pdk.host.runtime import ServiceRuntime
from pdk.host.sources import TimerSource, timers_for

pytestmark = pytest.mark.slow

WAIT_S = 30.0


@pytest.fixture
def slow(host: Host, built_plugin: Callable[[str], Path]) -> Iterator[Callable[[int], tuple[ServiceRuntime, TimerSource]]]:
    made: list[tuple[ServiceRuntime, TimerSource]] = []

    def _make(tick_spin_ms: int) -> tuple[ServiceRuntime, TimerSource]:
        rt = ServiceRuntime(host.load(built_plugin("slow-service"), dev_grants=True), {"tick_spin_ms": tick_spin_ms})
        assert rt.start()["lifecycle"]["state"] == "running"
        (timer,) = timers_for(rt)
        made.append((rt, timer))
        return rt, timer

    yield _make
    for rt, timer in made:
        timer.stop()
        rt.stop()


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def plugin_ticks(rt: ServiceRuntime) -> int:
    data: dict[str, Any] = rt.status(refresh=True)["plugin_status"]["data"]
    return int(data["ticks"])


def test_ticks_arrive(slow: Callable[[int], tuple[ServiceRuntime, TimerSource]]) -> None:
    rt, timer = slow(0)
    assert (timer.ingress, timer.kind, timer.interval_ms) == ("beat", "tick", 100)
    timer.start()
    wait_for(lambda: len(rt.emitted("beat.tick")) >= 3, "three ticks")
    timer.stop()
    assert rt.wait_idle(WAIT_S)
    ticks = [o for o in rt.outcomes() if o["ingress"] == "beat"]
    assert ticks and all(o["outcome"] == "handled" and o["source"] == "timer:beat" and o["kind"] == "tick" for o in ticks)
    doc = rt.status()
    source = doc["sources"]["timer:beat"]
    assert source["kind"] == "timer" and source["interval_ms"] == 100 and source["running"] is False
    assert source["fired"] == doc["counters"]["accepted"] == doc["counters"]["handled"] == plugin_ticks(rt)
    assert isinstance(source["last_fired_ms"], int)


def test_a_slow_handler_makes_the_timer_coalesce(slow: Callable[[int], tuple[ServiceRuntime, TimerSource]]) -> None:
    rt, timer = slow(350)  # each tick takes 3.5 intervals to handle
    timer.start()
    wait_for(lambda: timer.status()["coalesced"] >= 3 and timer.status()["fired"] >= 2, "coalesced ticks")
    timer.stop()
    assert rt.wait_idle(WAIT_S)
    source = timer.status()
    counters = rt.status()["counters"]
    # At most one tick waits while one is handled, so ticks never pile up in the queue...
    assert counters["refused_total"] == 0 and source["refused"] == {}
    # ...and every tick the timer fired was handled exactly once by the plugin.
    assert source["fired"] == counters["accepted"] == counters["handled"] == plugin_ticks(rt)
    assert counters["dead_lettered"] == 0
    assert source["coalesced"] >= 3
    assert rt.status()["sources"]["timer:beat"]["coalesced"] == source["coalesced"]  # what status shows
