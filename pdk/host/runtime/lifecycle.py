"""The service lifecycle: states, the restart budget and the restart backoff.

    stopped -> starting -> running -> stopping -> stopped
                  |           |
                  v           v (a trap or deadline in any call)
               failed <- restarting -> running

`restarting` is `running` with a poisoned instance being replaced: events are still
accepted (they wait in the queue), tool calls are refused until `start` succeeded
again. `failed` is entered when the first `start` fails or the restart budget is
spent, and is left only by an explicit `start()`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .options import RESTART_HISTORY_RING

STATES: tuple[str, ...] = ("stopped", "starting", "running", "restarting", "stopping", "failed")
# States in which submitted events are accepted into the queue.
ACCEPTING: frozenset[str] = frozenset({"starting", "running", "restarting"})


class RestartPolicy:
    """At most `budget` restarts within any `window_s`; the n-th restart within the
    window waits `initial_s * 2**(n-1)`, capped at `max_s`."""

    def __init__(self, budget: int, window_s: float, initial_s: float, max_s: float) -> None:
        self.budget = budget
        self.window_s = window_s
        self.initial_s = initial_s
        self.max_s = max_s
        self._times: deque[float] = deque()

    def used(self, now: float) -> int:
        while self._times and now - self._times[0] >= self.window_s:
            self._times.popleft()
        return len(self._times)

    def next_delay(self, now: float) -> float | None:
        """Book a restart and return its backoff, or None when the budget is spent."""
        used = self.used(now)
        if used >= self.budget:
            return None
        self._times.append(now)
        return min(self.max_s, self.initial_s * 2.0**used)

    def reset(self) -> None:
        self._times.clear()


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Lifecycle:
    state: str = "stopped"
    since_ms: int = field(default_factory=now_ms)
    restarts: int = 0
    last_error: dict[str, Any] | None = None
    history: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RESTART_HISTORY_RING))
    # Called with (state, last_error) on every change, with the runtime's lock held.
    on_change: Callable[[str, dict[str, Any] | None], None] | None = field(default=None, repr=False, compare=False)

    def enter(self, state: str) -> None:
        if state not in STATES:
            raise ValueError(f"unknown lifecycle state {state!r}")
        if state != self.state:
            self.state = state
            self.since_ms = now_ms()
            if self.on_change is not None:
                self.on_change(state, self.last_error)

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "since_ms": self.since_ms,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "recent_restarts": list(self.history),
        }
