"""`TimerSource`: periodic ticks for an ingress with the "timer" source.

Ticks are idempotent by nature, so backpressure is resolved by coalescing: a tick is
not submitted while an earlier tick of the same ingress is still pending, and a
`queue_full` refusal counts as coalesced too. Intervals the thread missed (a stalled
process) are counted as coalesced as well; nothing is dropped without a count."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from pdk.host.codec import Case
from pdk.limits import TIMER_MIN_INTERVAL_MS
from pdk.package.manifest import HandlerDecl

from ._runtime import RuntimeLike, refusal_of, register

FIRED, COALESCED = "fired", "coalesced"


@dataclass
class TimerCounters:
    fired: int = 0
    coalesced: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    last_fired_ms: int | None = None


class TimerSource:
    """Fires the ingress's first event kind every `timer.interval_ms` with an empty
    payload and source `timer:<ingress>`. `start()` runs a daemon thread; `stop()`
    ends it and waits for it."""

    def __init__(self, rt: RuntimeLike, ingress: HandlerDecl, *, interval_ms: int | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if "timer" not in ingress.sources:
            raise ValueError(f"ingress {ingress.name!r} does not declare the timer source")
        if not ingress.event_kinds:
            raise ValueError(f"ingress {ingress.name!r} declares no event kinds")
        declared = ingress.timer.interval_ms if ingress.timer is not None else None
        interval = interval_ms if interval_ms is not None else declared
        if not isinstance(interval, int) or isinstance(interval, bool) or interval < TIMER_MIN_INTERVAL_MS:
            raise ValueError(f"ingress {ingress.name!r}: timer interval must be an integer >= {TIMER_MIN_INTERVAL_MS} ms, got {interval!r}")
        self.rt = rt
        self.ingress = ingress.name
        self.kind = ingress.event_kinds[0]
        self.interval_ms = interval
        self.name = f"timer:{ingress.name}"
        self._clock = clock
        self._counters = TimerCounters()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        register(rt, self.name, self.status)

    # -- one tick (public for tests and for callers with their own scheduling) --

    def fire_once(self) -> str:
        """Offer one tick: returns "fired", "coalesced" or the refusal reason."""
        if self.rt.has_pending(self.ingress, self.kind):
            outcome = COALESCED
        else:
            result = self.rt.submit(self.ingress, self.kind, Case("empty", None), source=self.name)
            refusal = refusal_of(result)
            if refusal is None:
                outcome = FIRED
            elif refusal.reason == "queue_full":
                outcome = COALESCED
            else:
                outcome = refusal.reason
        with self._lock:
            c = self._counters
            if outcome == FIRED:
                c.fired += 1
                c.last_fired_ms = int(time.time() * 1000)
            elif outcome == COALESCED:
                c.coalesced += 1
            else:
                c.refused[outcome] = c.refused.get(outcome, 0) + 1
        return outcome

    def _missed(self, n: int) -> None:
        if n > 0:
            with self._lock:
                self._counters.coalesced += n

    # -- thread --

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"pdk-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def _run(self) -> None:
        interval = self.interval_ms / 1000
        due = self._clock() + interval
        while not self._stop.wait(max(0.0, due - self._clock())):
            try:
                self.fire_once()
            except Exception as exc:  # never let the timer thread die silently
                with self._lock:
                    key = f"error:{type(exc).__name__}"
                    self._counters.refused[key] = self._counters.refused.get(key, 0) + 1
            due += interval
            now = self._clock()
            if now >= due + interval:  # whole intervals passed while we were busy
                missed = int((now - due) // interval)
                self._missed(missed)
                due += missed * interval

    # -- status --

    def status(self) -> dict[str, Any]:
        with self._lock:
            c = self._counters
            return {
                "kind": "timer",
                "ingress": self.ingress,
                "event_kind": self.kind,
                "interval_ms": self.interval_ms,
                "running": self.running,
                "fired": c.fired,
                "coalesced": c.coalesced,
                "refused": dict(c.refused),
                "last_fired_ms": c.last_fired_ms,
            }

