"""`ServiceRuntime`: runs one Service or Ingress plugin instance - lifecycle, bounded
event queue, dispatcher and output commands - behind one public API.

The work is done by layers (see core.py): `outcomes` (how an attempt ends),
`supervisor` (start, restart, stop; faults), `dispatcher` (the one thread that calls
the plugin; threads). This module holds what callers use: start, submit, stop,
status, replay and the views of outcomes, emitted events and dead letters.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import replace
from typing import Any

from pdk.limits import STOP_DRAIN_DEADLINE_S

from ..codec import Case
from .core import OutcomeCallback
from .dispatcher import Dispatcher
from .intake import normalize_payload
from .lifecycle import ACCEPTING, now_ms
from .model import Accepted, QueuedEvent, Refused, new_event_id

CORRELATION_ID_MAX_LEN = 128


class ServiceRuntime(Dispatcher):
    """Runs one Service or Ingress plugin: see the module docstring and DESIGN.md.

    `ServiceRuntime(plugin, config=None, options=None, *, guest=None)`: `config` is
    the operator config passed to `start` (default: the grant's config); `options`
    the queue, retry and restart settings. `guest` replaces the real component
    (unit tests of the queue logic)."""

    def start(self) -> dict[str, Any]:
        """Start the service: `stopped|failed -> starting -> running`, or `failed` with
        the start error in `lifecycle.last_error`. Returns the status document."""
        with self._control:
            old = self._thread
            if old is not None and old is not threading.current_thread():
                old.join()  # a dispatcher that ended in `failed` is finishing its exit
            with self._cv:
                if self._lifecycle.state in ACCEPTING:
                    return self._snapshot_locked()
                self._lifecycle.enter("starting")
                self._lifecycle.last_error = None
                self._restart_policy.reset()
                self._stop_requested = False
                self._busy = "start"
            started = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(started,), name=f"yoi-runtime:{self.manifest.id}", daemon=True)
            self._thread.start()
            started.wait()
            return self.status()

    def submit(
        self,
        ingress: str,
        kind: str,
        payload: Case | None = None,
        *,
        source: str = "manual",
        correlation_id: str | None = None,
    ) -> Accepted | Refused:
        """Offer one event. Never waits for the plugin: `Accepted(event_id)` when it is
        queued, else a typed `Refused` (counted in status)."""
        normalized = normalize_payload(payload)
        if isinstance(normalized, Refused):
            return self._refuse(normalized)
        if correlation_id is not None and (not isinstance(correlation_id, str) or not 0 < len(correlation_id) <= CORRELATION_ID_MAX_LEN):
            return self._refuse(Refused("invalid_payload", f"correlation_id must be a string of 1-{CORRELATION_ID_MAX_LEN} characters"))
        with self._lock:
            state = self._lifecycle.state
            any_source = correlation_id is not None and correlation_id in self._async_ids
        if state not in ACCEPTING:
            return self._refuse(self._not_running(state))
        checked = self.intake.check(ingress, kind, normalized, source, any_source=any_source)
        if isinstance(checked, Refused):
            return self._refuse(checked)
        event = QueuedEvent(new_event_id(), ingress, source, kind, normalized, now_ms(), correlation_id, checked)
        with self._cv:
            # Checked again under the lock: the state or the queue may have changed.
            refusal = self._admit_locked(ingress)
            if refusal is not None:
                self._counters.refuse(refusal.reason)
                return refusal
            self._queue.put(event)
            self._counters.accepted += 1
            self._cv.notify_all()
        return Accepted(event.id)

    def has_pending(self, ingress: str, kind: str) -> bool:
        """Whether an event of this ingress and kind waits in the queue (not counting
        one in flight); timers use it to coalesce ticks."""
        with self._lock:
            return self._queue.has_pending(ingress, kind)

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until nothing is queued or in flight and no restart or status read is
        under way; False on timeout."""
        with self._cv:
            return self._cv.wait_for(self._idle_locked, timeout_s)

    def stop(self, drain_deadline_s: float = STOP_DRAIN_DEADLINE_S) -> dict[str, Any]:
        """Stop intake, keep dispatching until the queue is empty or the deadline
        passed, dead-letter the rest with reason `stopping`, call the `stop` export
        and end the dispatcher. The event in flight at the deadline finishes (its
        call deadline bounds it). A failed runtime stays `failed`. Returns status."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("stop() cannot be called from the dispatcher thread (e.g. from an outcome callback)")
        with self._control:
            with self._cv:
                if self._lifecycle.state in ("stopped", "failed") and self._thread is None:
                    return self._snapshot_locked()
                if self._lifecycle.state not in ("stopped", "failed"):
                    self._stop_requested = True
                    self._drain_deadline = time.monotonic() + max(0.0, drain_deadline_s)
                    self._lifecycle.enter("stopping")
                    self._cv.notify_all()
            thread = self._thread
            if thread is not None:
                thread.join()
                self._thread = None
            return self.status()

    def status(self, *, refresh: bool = False, timeout_s: float = 2.0) -> dict[str, Any]:
        """The status document (status.py). Never calls the plugin from this thread:
        `plugin_status` is what the dispatcher last read between two dispatches.
        `refresh=True` asks the dispatcher to read it now and waits up to `timeout_s`."""
        with self._cv:
            if refresh and self.guest.has_lifecycle and self._lifecycle.state == "running":
                target = self._refreshes + 1
                self._refresh_requested = True
                self._cv.notify_all()
                self._cv.wait_for(lambda: self._refreshes >= target or self._lifecycle.state != "running", timeout_s)
            return self._snapshot_locked()

    def dead_letters(self) -> list[dict[str, Any]]:
        with self._lock:
            return [letter.to_json() for letter in self._dead.items()]

    def replay(self, dead_letter_id: str) -> Accepted | Refused:
        """Queue a dead-lettered event again (same event id, attempt 1). It leaves the
        store only when accepted. Raises KeyError for an unknown id."""
        with self._cv:
            letter = self._dead.get(dead_letter_id)
            if letter is None:
                raise KeyError(f"no dead letter {dead_letter_id!r}")
            refusal = self._admit_locked(letter.event.ingress)
            if refusal is not None:
                self._counters.refuse(refusal.reason)
                return refusal
            self._dead.remove(dead_letter_id)
            event = replace(letter.event, attempt=1, not_before=0.0, replay_of=letter.id, errors=[])
            self._queue.put(event)
            self._counters.accepted += 1
            self._counters.replayed += 1
            self._cv.notify_all()
            return Accepted(event.id)

    def outcomes(self) -> list[dict[str, Any]]:
        """Recent per-attempt outcomes (`handled`, `retrying`, `dead_lettered`), a ring."""
        with self._lock:
            return list(self._outcomes)

    def emitted(self, topic: str | None = None) -> list[dict[str, Any]]:
        """The host-side event log of `emit` commands (a ring of `EMIT_LOG_MAX`)."""
        return self.emit_log.records(topic)

    def on_outcome(self, callback: OutcomeCallback) -> None:
        """Call `callback(outcome)` for every final outcome (`handled` or
        `dead_lettered`), from the dispatcher thread. It must not block; exceptions
        are logged to the plugin's diagnostics."""
        with self._lock:
            self._callbacks.append(callback)

    def _not_running(self, state: str) -> Refused:
        return Refused("not_running", f"{self.manifest.id} is {state}; events are accepted while it is starting, running or restarting")

    def _refuse(self, refusal: Refused) -> Refused:
        with self._lock:
            self._counters.refuse(refusal.reason)
        return refusal

    def _admit_locked(self, ingress: str) -> Refused | None:
        state = self._lifecycle.state
        if state not in ACCEPTING:
            return self._not_running(state)
        full = self._queue.room_for(ingress)
        if full is not None:
            return Refused("queue_full", f"{self.manifest.id}: {full}", self._retry_after_locked())
        return None

    def _retry_after_locked(self) -> float:
        """A hint for when a slot may be free: the queue's contents times the recent
        mean dispatch time, at least 0.1 s and at most 60 s."""
        mean = statistics.fmean(self._durations) if self._durations else 0.1
        return round(min(60.0, max(0.1, mean * self._queue.held())), 3)
