"""How a delivery attempt ends: handled, retried after its backoff, or dead-lettered;
the outcome records (a ring) and the outcome callbacks.

Each end is also handed to the state store (store.py) — lazily: a completion lost
in a crash leaves the event pending in the store, so it is delivered again after
the restart (at least once), never lost."""

from __future__ import annotations

import time
from typing import Any

from .commands import CommandResult
from .core import OutcomeCallback, RuntimeCore
from .lifecycle import now_ms
from .model import QueuedEvent


def outcome_record(event: QueuedEvent, outcome: str, at_ms: int, **extra: Any) -> dict[str, Any]:
    """The outcome record of one attempt's end (`ServiceRuntime.outcomes()`, callbacks)."""
    record: dict[str, Any] = {
        "event_id": event.id,
        "ingress": event.ingress,
        "kind": event.kind,
        "source": event.source,
        "correlation_id": event.correlation_id,
        "outcome": outcome,
        "attempts": event.attempt,
        "error": None,
        "command_results": [],
        "at_ms": at_ms,
    }
    if event.replay_of is not None:
        record["replay_of"] = event.replay_of
    record.update(extra)
    return record


class HandledOutcome:
    """A `handled` outcome kept in the ring as its parts, made into its record only
    when someone reads `outcomes()`: with no outcome callbacks, most records are
    never read (the ring keeps the last `OUTCOMES_RING`). A handled event is final,
    so the record made later is the one that would have been made now."""

    __slots__ = ("event", "results", "data", "duration", "at_ms")

    def __init__(self, event: QueuedEvent, results: list[CommandResult], data: Any, duration: float, at_ms: int) -> None:
        self.event = event
        self.results = results
        self.data = data
        self.duration = duration
        self.at_ms = at_ms

    def to_json(self) -> dict[str, Any]:
        return outcome_record(
            self.event,
            "handled",
            self.at_ms,
            command_results=[r.to_json() for r in self.results],
            data=self.data,
            duration_ms=round(self.duration * 1000, 3),
        )


class OutcomeLedger(RuntimeCore):
    def _outcome(self, event: QueuedEvent, outcome: str, **extra: Any) -> dict[str, Any]:
        return outcome_record(event, outcome, now_ms(), **extra)

    def _end_handled(self, event: QueuedEvent, results: list[CommandResult], data: Any, duration: float, at_ms: int) -> None:
        """The event was handled (its commands ran): one pass under the lock ends it,
        counts its command results and keeps its outcome (a record made now only
        when callbacks want it, see `HandledOutcome`)."""
        self.store.handled(event)  # after its emits (queued by the commands), in order
        handled = HandledOutcome(event, results, data, duration, at_ms)
        record: dict[str, Any] | None = None
        with self._lock:
            self._queue.finish(event)
            self._counters.handled += 1
            self._durations.append(duration)
            by_result = self._by_result
            for r in results:
                by_result[r.result] = by_result.get(r.result, 0) + 1
            self._recent_commands.extend(results)
            callbacks = self._callbacks  # replaced, never changed in place (on_outcome)
            if callbacks:
                record = handled.to_json()
                self._notifying += 1
                self._outcomes.append(record)
            else:
                self._outcomes.append(handled)
            self._status_dirty = True
            if not self._queue.held():
                self._cv.wake()  # it may be idle now (while events are held, no waiter's wait can end)
        if record is not None:
            self._notify([record], callbacks)

    def _end_attempt_failed(self, event: QueuedEvent, error: dict[str, Any], duration: float) -> None:
        settings = self.settings[event.ingress]
        final: dict[str, Any] | None = None
        with self._cv:
            self._counters.failed += 1
            self._durations.append(duration)
            self._status_dirty = True
            now = time.monotonic()
            delay = settings.retry_delay_s(event.attempt)
            retry = error["retryable"] and event.attempt < settings.max_attempts
            if retry and self._stop_requested and now + delay >= self._drain_deadline:
                reason = "stopping"  # retryable, but the drain deadline comes first
                retry = False
            else:
                reason = "permanent_error" if not error["retryable"] else "retries_exhausted"
            if retry:
                self._outcomes.append(self._outcome(event, "retrying", error=error, retry_in_s=delay, duration_ms=round(duration * 1000, 3)))
                event.attempt += 1
                self.store.retrying(event, error)
                self._queue.defer(event, now + delay)
                self._counters.retried += 1
            elif reason == "stopping" and self.store.durable:
                # Pending for the next start, with the attempt it made counted.
                self._queue.finish(event)
                event.attempt += 1
                self.store.retrying(event, error)
                self._leave_pending_locked(event, error)
            else:
                self._queue.finish(event)
                final = self._dead_letter_locked(event, reason, error, event.attempt)
            self._cv.notify_all()
        if final is not None:
            self._notify([final])

    def _dead_letter_locked(self, event: QueuedEvent, reason: str, error: dict[str, Any] | None, attempts: int) -> dict[str, Any]:
        letter = self._dead.add(event, reason, attempts, error)
        self.store.dead_lettered(letter)
        self._counters.dead_lettered += 1
        self._notifying += 1
        record = self._outcome(event, "dead_lettered", error=error, reason=reason, dead_letter_id=letter.id)
        record["attempts"] = attempts
        self._outcomes.append(record)
        return record

    def _leave_pending_locked(self, event: QueuedEvent, error: dict[str, Any] | None = None) -> None:
        """A stop of a durable runtime could not deliver `event` (out of the queue
        now, pending in the store with `event.attempt` its next attempt): the next
        `start()` queues it again (runtime.py)."""
        self._to_recover.append(event)
        self._counters.left_pending += 1
        record = self._outcome(event, "left_pending", error=error, next_attempt=event.attempt)
        record["attempts"] = event.attempt - 1  # made so far
        self._outcomes.append(record)

    def _notify(self, records: list[dict[str, Any]], callbacks: list[OutcomeCallback] | None = None) -> None:
        """Run the outcome callbacks for final records (each counted in `_notifying`
        when it was made, so `wait_idle` returns only after its callbacks ran)."""
        if callbacks is None:
            callbacks = self._callbacks  # replaced, never changed in place (on_outcome)
        try:
            for record in records:
                for callback in callbacks:
                    try:
                        callback(record)
                    except Exception as exc:  # a listener's bug must not stop dispatch
                        self.plugin.diagnostics.add("host", "error", f"outcome callback failed: {type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._notifying -= len(records)
                if not self._queue.held():
                    self._cv.wake()  # `wait_idle` waits for the callbacks, and for an empty queue

    def _drain_locked(self, reason: str, error: dict[str, Any] | None) -> list[dict[str, Any]]:
        """Dead-letter everything the queue holds (and a stray in-flight event)."""
        records: list[dict[str, Any]] = []
        stray = self._queue.in_flight
        if stray is not None:
            self._queue.finish(stray)
            records.append(self._dead_letter_locked(stray, reason, error, stray.attempt))
        for event in self._queue.drain():
            records.append(self._dead_letter_locked(event, reason, error, event.attempt - 1))
        return records
