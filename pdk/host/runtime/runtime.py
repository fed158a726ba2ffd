"""`ServiceRuntime`: runs one Service or Ingress plugin instance - lifecycle, bounded
event queue, dispatcher and output commands - behind one public API.

The work is done by layers (see core.py): `outcomes` (how an attempt ends),
`supervisor` (start, restart, stop; faults), `dispatcher` (the one thread that calls
the plugin; threads). This module holds what callers use: start, submit, stop,
status, replay and the views of outcomes, emitted events and dead letters.

State. With a durable store (`state=PATH`, see store.py and docs/runtime.md), an
event is in the store before `submit` (or `replay`) answers `Accepted`: its slot is
reserved under the lock, the store write (group-committed with concurrent ones)
happens outside it, then the event enters the queue. The first `start()` queues
the store's pending events again (`_requeue_recovered`). A stop that cannot drain
the queue within its deadline leaves the rest pending in the store (counted in
`counters.left_pending`) for the next start, in this process or the next one; in
memory, where nothing would survive, it dead-letters them (reason `stopping`).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from dataclasses import replace
from typing import Any

from pdk.limits import MAX_ATTEMPTS_MAX, STOP_DRAIN_DEADLINE_S

from ..codec import Case
from .core import OutcomeCallback
from .dispatcher import Dispatcher, DispatcherThread
from .intake import normalize_payload
from .lifecycle import ACCEPTING, now_ms
from .commands import COMMAND_KINDS, Executor
from .model import Accepted, QueuedEvent, Refused, new_event_id
from .observer import RuntimeObserver
from .outcomes import HandledOutcome
from .store import StoreError

CORRELATION_ID_MAX_LEN = 128
# A `store_unavailable` refusal's Retry-After hint.
STORE_RETRY_AFTER_S = 5.0
# What a recovered event's pending events go to (status `store.recovery.rule`).
RECOVERY_RULE = (
    "pending events are delivered to the code running now, with their stored attempt after a clean stop "
    "(no delivery was under way), attempt + 1 after a crash or kill (one may have been); "
    "those its manifest no longer accepts are dead-lettered (permanent_error)"
)


class ServiceRuntime(Dispatcher):
    """Runs one Service or Ingress plugin: see the module docstring and DESIGN.md.

    `ServiceRuntime(plugin, config=None, options=None, *, guest=None, state=None,
    state_sync="normal")`: `config` is the operator config passed to `start`
    (default: the grant's config); `options` the queue, retry and restart settings;
    `state` the state store: None or `":memory:"` (nothing outlives the process), a
    file path (a SQLite store, created when missing; a corrupt, locked or read-only
    one raises `StoreError`), or a store object; `state_sync` `normal` or `full`
    (docs/runtime.md). `guest` replaces the real component (unit tests)."""

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
            if self.store.durable:
                self._requeue_recovered()
            with self._cv:
                self._lifecycle.enter("starting")
                self._lifecycle.last_error = None
                self._restart_policy.reset()
                self._stop_requested = False
                self._busy = "start"
            started = threading.Event()
            self._thread = DispatcherThread(target=self._run, args=(started,), name=f"yoi-runtime:{self.manifest.id}", daemon=True)
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
        any_source = False
        if correlation_id is not None:
            with self._lock:
                any_source = correlation_id in self._async_ids
        state = self._lifecycle.state  # a first look; checked again under the lock below
        if state not in ACCEPTING:
            return self._refuse(self._not_running(state))
        checked = self.intake.check(ingress, kind, normalized, source, any_source=any_source)
        if isinstance(checked, Refused):
            return self._refuse(checked)
        event = QueuedEvent(new_event_id(), ingress, source, kind, normalized, now_ms(), correlation_id, checked)
        with self._lock:
            # Checked again under the lock: the state or the queue may have changed.
            refusal = self._admit_locked(ingress)
            if refusal is not None:
                self._counters.refuse(refusal.reason)
                return refusal
            if not self.store.durable:
                self.store.accept(event)
                self._queue.put(event)
                self._counters.accepted += 1
                if self._dispatcher_waits:
                    self._cv.notify_all()  # (no one else waits for an event to arrive)
                return Accepted(event.id)
            self._queue.reserve(ingress)
        try:
            self.store.accept(event)  # durable when it returns
        except StoreError as exc:
            with self._cv:
                self._queue.unreserve(ingress)
                self._counters.refuse("store_unavailable")
            return Refused("store_unavailable", f"{self.manifest.id}: {exc.message}", STORE_RETRY_AFTER_S)
        self._land(event)
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
        passed, call the `stop` export and end the dispatcher. The event in flight at
        the deadline finishes (its call deadline bounds it); one whose retry would
        fall after the deadline is not retried now. What is left: with a durable
        store, pending in the store for the next start (`counters.left_pending`; the
        store marks the stop clean, so their attempts stay exact); in memory,
        dead-lettered with reason `stopping`. A failed runtime stays `failed`.
        Returns status."""
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
            with self._lock:
                clean = self._lifecycle.state == "stopped"
                left = len(self._to_recover)
            try:
                if clean:
                    self.store.stopped(left)  # the drain's completions, then the clean-stop mark
                else:
                    self.store.flush()  # the completions of the drain are written before stop returns
            except StoreError:
                pass  # shown in status (`store.last_error`)
            return self.status()

    def close(self, drain_deadline_s: float = STOP_DRAIN_DEADLINE_S) -> dict[str, Any]:
        """`stop()`, then close the state store (a durable store releases its file).
        The runtime cannot be started again. Returns the last status document."""
        doc = self.stop(drain_deadline_s)
        self.store.close()
        return doc

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
            if not self.store.durable:
                self.store.replayed(letter, event)
                self._queue.put(event)
                self._counters.accepted += 1
                self._counters.replayed += 1
                self._cv.notify_all()
                return Accepted(event.id)
            self._queue.reserve(event.ingress)
        try:
            self.store.replayed(letter, event)  # durable when it returns
        except StoreError as exc:
            with self._cv:
                self._queue.unreserve(event.ingress)
                self._dead.restore(letter)
                self._counters.refuse("store_unavailable")
            return Refused("store_unavailable", f"{self.manifest.id}: {exc.message}", STORE_RETRY_AFTER_S)
        self._land(event, replayed=True)
        return Accepted(event.id)

    def outcomes(self) -> list[dict[str, Any]]:
        """Recent per-attempt outcomes (`handled`, `retrying`, `dead_lettered`), a ring."""
        with self._lock:
            kept = list(self._outcomes)
        return [r.to_json() if isinstance(r, HandledOutcome) else r for r in kept]

    def emitted(self, topic: str | None = None) -> list[dict[str, Any]]:
        """The host-side event log of `emit` commands (a ring of `EMIT_LOG_MAX`)."""
        return self.emit_log.records(topic)

    def register_executor(self, kind: str, executor: Executor) -> None:
        """Execute commands of `kind` with `executor(CommandContext) -> Execution`
        from now on (on the dispatcher thread; it must not block, see commands.py).
        Replaces the previous executor of that kind."""
        if kind not in COMMAND_KINDS:
            raise ValueError(f"unknown command kind {kind!r} (known: {', '.join(COMMAND_KINDS)})")
        with self._lock:
            self._executors[kind] = executor

    def register_source(self, name: str, entry: Any) -> None:
        """Show a source's state in status under `sources[name]`: a dict, or a
        callable returning one (called whenever status is read)."""
        with self._lock:
            self.sources[name] = entry

    def on_outcome(self, callback: OutcomeCallback) -> None:
        """Call `callback(outcome)` for every final outcome (`handled` or
        `dead_lettered`), from the dispatcher thread. It must not block; exceptions
        are logged to the plugin's diagnostics."""
        with self._lock:
            self._callbacks = [*self._callbacks, callback]

    def observe(self, observer: RuntimeObserver) -> None:
        """Watch the runtime live (observer.py): lifecycle changes, final outcomes,
        command results, connection changes and diagnostics records from now on."""
        with self._lock:
            self._observers.append(observer)
            self._callbacks = [*self._callbacks, observer.outcome]
        subscribe = getattr(self.plugin.diagnostics, "subscribe", None)
        if subscribe is not None:
            subscribe(lambda record: self._observe("log_record", record.to_json()))

    def notify_connection(self, connection: dict[str, Any]) -> None:
        """A source reports a connection's new state or error (its status entry with
        `name`); observers hear of it at once (observer.py)."""
        self._observe("connection_changed", connection)

    def _land(self, event: QueuedEvent, *, replayed: bool = False) -> None:
        """A stored event takes its reserved slot. When a stop drained the queue
        while it was being written, it is left pending for the next start instead;
        after a failure, it is dead-lettered at once (it was accepted: it must end)."""
        records: list[dict[str, Any]] = []
        with self._cv:
            self._counters.accepted += 1
            if replayed:
                self._counters.replayed += 1
            state = self._lifecycle.state
            if state == "failed":
                self._queue.unreserve(event.ingress)
                error = {"code": "failed", "message": "the runtime failed before the event was delivered", "retryable": True}
                records.append(self._dead_letter_locked(event, "failed", error, event.attempt - 1))
            elif state == "stopped" or self._busy == "stop":
                self._queue.unreserve(event.ingress)
                self._leave_pending_locked(event)  # stored (durable): the next start delivers it
            else:
                self._queue.put(event, reserved=True)
            self._cv.notify_all()
        if records:
            self._notify(records)

    def _requeue_recovered(self) -> None:
        """Queue the pending events again at every start of a durable runtime: those
        of an earlier run at the first start, those a stop of this runtime left
        pending at a later one. Same event id; the stored attempt after a clean stop
        (`Recovered.clean_stop`, or an earlier stop in this process: no delivery was
        under way), else `attempt + 1` (the store cannot know whether a delivery was
        under way when the host died). The store's clean-stop mark is removed
        (`requeued`) even when nothing is pending. The rule when the plugin was
        rebuilt in between is `RECOVERY_RULE`: they go to the code running now, and
        those its manifest no longer accepts (ingress or kind gone, payload against
        the new schema) are dead-lettered; so is an event pending through more than
        `MAX_ATTEMPTS_MAX` restarts (a crash loop). Raises `StoreError`."""
        with self._lock:
            pending, self._to_recover = self._to_recover, []
        rec = self._recovered_from
        first = self._recovery is None
        exact = not first or rec.clean_stop is not None
        digest = self.plugin.digest
        deliver: list[QueuedEvent] = []
        reject: list[tuple[QueuedEvent, str, dict[str, Any]]] = []
        for event in pending:
            if not exact:
                event.attempt += 1
            event.not_before = 0.0
            checked = self.intake.check(event.ingress, event.kind, event.payload, event.source, any_source=True)
            if isinstance(checked, Refused):
                message = f"recovered from an earlier run, not accepted by this build of {self.manifest.id}: {checked.message}"
                reject.append((event, "permanent_error", {"code": "invalid_input", "message": message[:1024], "retryable": False}))
            elif event.attempt > MAX_ATTEMPTS_MAX:
                message = f"pending through {event.attempt - 1} runs of the host without ending; given up"
                reject.append((event, "retries_exhausted", {"code": "failed", "message": message, "retryable": False}))
            else:
                deliver.append(event)
        try:
            self.store.requeued(pending)
        except StoreError:
            for event in pending if not exact else []:
                event.attempt -= 1
            with self._lock:
                self._to_recover = pending + self._to_recover  # still pending: a later start tries again
            raise
        accepted_by = Counter((rec.accepted_by.get(e.id) if first else digest) or "unknown" for e in pending)
        records: list[dict[str, Any]] = []
        with self._cv:
            for event in deliver:
                self._queue.put(event)
            self._counters.accepted += len(pending)
            self._counters.recovered += len(pending)
            for event, reason, error in reject:
                records.append(self._dead_letter_locked(event, reason, error, event.attempt - 1))
            previous = rec.previous_digest if first else digest
            self._recovery = {
                "previous_digest": previous,
                "digest_changed": previous is not None and previous != digest,
                "clean_stop": exact,
                "pending": len(pending),
                "requeued": len(deliver),
                "dead_lettered": len(reject),
                "accepted_by": dict(accepted_by),
                "rule": RECOVERY_RULE,
            }
            self._cv.notify_all()
        if pending and self._recovery["digest_changed"]:
            self.plugin.diagnostics.add(
                "host", "warning", f"{len(pending)} pending events accepted by an earlier build go to this build ({len(reject)} dead-lettered)"
            )
        if records:
            self._notify(records)

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
