"""TimerSource logic against a fake runtime: coalescing, refusals, counters, stop.
(Real ticks into a real component: tests/e2e/test_timer_source.py.)"""

from __future__ import annotations

import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pdk.host.codec import Case
from pdk.host.runtime import Accepted, Refused
from pdk.host.sources import TimerSource, timers_for
from pdk.package.manifest import Manifest, parse_manifest

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = parse_manifest(tomllib.loads((ROOT / "examples" / "counter-service" / "plugin.toml").read_text()))
TICKS = next(i for i in MANIFEST.ingresses if i.name == "ticks")


def src(rt: Any, name: str) -> dict[str, Any]:
    """A source's entry as the runtime's status document would show it."""
    entry = rt.sources[name]
    return entry() if callable(entry) else entry  # type: ignore[no-any-return]


@dataclass
class FakeRuntime:
    manifest: Manifest = MANIFEST
    pending: bool = False
    refuse: str | None = None
    submitted: list[tuple[str, str, Any, str]] = field(default_factory=list)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    submitted_event: threading.Event = field(default_factory=threading.Event)

    def submit(self, ingress: str, kind: str, payload: Case | None = None, *, source: str = "manual", correlation_id: str | None = None) -> Any:
        if self.refuse:
            return Refused(self.refuse, f"refused: {self.refuse}")
        self.submitted.append((ingress, kind, payload, source))
        self.submitted_event.set()
        return Accepted(f"ev-{len(self.submitted)}")

    def has_pending(self, ingress: str, kind: str) -> bool:
        return self.pending


def test_fire_once_submits_an_empty_tick() -> None:
    rt = FakeRuntime()
    timer = TimerSource(rt, TICKS)
    assert timer.fire_once() == "fired"
    assert rt.submitted == [("ticks", "tick", Case("empty", None), "timer:ticks")]
    doc = src(rt, "timer:ticks")
    assert doc["kind"] == "timer" and doc["interval_ms"] == 1000
    assert doc["fired"] == 1 and doc["coalesced"] == 0 and isinstance(doc["last_fired_ms"], int)


def test_a_pending_tick_coalesces() -> None:
    rt = FakeRuntime(pending=True)
    timer = TimerSource(rt, TICKS)
    assert [timer.fire_once() for _ in range(3)] == ["coalesced"] * 3
    assert rt.submitted == []
    assert src(rt, "timer:ticks")["coalesced"] == 3


def test_queue_full_counts_as_coalesced_other_refusals_by_reason() -> None:
    rt = FakeRuntime(refuse="queue_full")
    timer = TimerSource(rt, TICKS)
    assert timer.fire_once() == "coalesced"
    rt.refuse = "not_running"
    assert timer.fire_once() == "not_running"
    doc = src(rt, "timer:ticks")
    assert doc["fired"] == 0 and doc["coalesced"] == 1 and doc["refused"] == {"not_running": 1}


def test_interval_is_validated() -> None:
    with pytest.raises(ValueError, match=">= 100 ms"):
        TimerSource(FakeRuntime(), TICKS, interval_ms=5)
    inbox = next(i for i in MANIFEST.ingresses if i.name == "inbox")
    with pytest.raises(ValueError, match="does not declare the timer source"):
        TimerSource(FakeRuntime(), inbox)


def test_the_thread_fires_and_stops() -> None:
    rt = FakeRuntime()
    (timer,) = timers_for(rt)
    timer.interval_ms = 100
    timer.start()
    try:
        assert rt.submitted_event.wait(30)
    finally:
        timer.stop()
    assert not timer.running
    n = len(rt.submitted)
    time.sleep(0.3)  # no tick after stop (3 intervals)
    assert len(rt.submitted) == n
    assert src(rt, "timer:ticks")["running"] is False


def test_missed_intervals_are_counted_as_coalesced() -> None:
    now = [0.0]
    rt = FakeRuntime()
    timer = TimerSource(rt, TICKS, interval_ms=100, clock=lambda: now[0])
    # Drive the loop by hand: pretend the process stalled for 1.05 s after the first tick.
    original = timer.fire_once

    def fire() -> str:
        result = original()
        now[0] += 1.05 if len(rt.submitted) == 1 else 0.1
        if len(rt.submitted) >= 2:
            timer._stop.set()
        return result

    timer.fire_once = fire  # type: ignore[method-assign]
    now[0] = 0.1
    timer._run()
    doc = src(rt, "timer:ticks")
    assert doc["fired"] == 2
    # Ticks were due at 0.3, 0.4, ... 1.1 s; the 1.1 one fires late (at 1.15), 8 were missed.
    assert doc["coalesced"] == 8
