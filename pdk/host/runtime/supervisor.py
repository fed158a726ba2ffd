"""Drives the guest's lifecycle: `start`, restarts after faults (budget and backoff),
status refreshes, `stop`, the `failed` state; and the gate for tool calls.

Faults. A trap, deadline or fuel exhaustion in any call discards the instance
(`PluginInstance.call` does that); the runtime then counts a restart against the
budget, waits the restart backoff (events are still accepted meanwhile) and calls
`start` again with the same config. The failed delivery counts as an attempt and is
retried like a retryable error. A fault in a tool call is noticed through the
instance's `recycles` counter (before the next dispatch, or within `IDLE_POLL_S`
when idle) and handled the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from pdk.limits import CONFIG_MAX_BYTES

from ..codec import Err, Ok
from ..instance import GuestFault
from .lifecycle import now_ms
from .outcomes import OutcomeLedger
from .records import bounded_message, fault_error, guest_error, tool_fault_error


class Supervisor(OutcomeLedger):
    def _surface_denial(self) -> str | None:
        grants = self.plugin.grants
        needed = (["services"] if self.guest.has_lifecycle else []) + (["ingresses"] if self.manifest.ingresses else [])
        for surface in needed:
            if not grants.allows_surface(surface):
                return f"the {surface} surface is not granted to {self.manifest.id} ({grants.reason})"
        return None

    def _start_guest(self, during: str) -> bool:
        """Call `start` (or just instantiate, for world `ingress`); True when running."""
        error: dict[str, Any] | None = None
        denial = self._surface_denial()
        if denial is not None:
            error = {"code": "denied", "message": bounded_message(denial), "retryable": False}
        elif self.guest.has_lifecycle:
            error = self._call_start()
        else:
            try:
                self.guest.warm()
            except GuestFault as fault:
                error = fault_error(fault)
        with self._cv:
            self._known_recycles = self.guest.recycles
            if error is not None:
                self._lifecycle.last_error = {**error, "during": during, "at_ms": now_ms()}
                self.plugin.diagnostics.add("host", "error", f"{during} failed: {error['code']}: {error['message']}")
                return False
            self._lifecycle.enter("stopping" if self._stop_requested else "running")
            self._busy = None
            self._cv.notify_all()
        return True

    def _call_start(self) -> dict[str, Any] | None:
        try:
            config_json = json.dumps(self.config, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            return {"code": "invalid_input", "message": bounded_message(f"the config is not JSON: {exc}"), "retryable": False}
        if len(config_json.encode("utf-8")) > CONFIG_MAX_BYTES:
            return {"code": "invalid_input", "message": f"the config is larger than {CONFIG_MAX_BYTES} bytes", "retryable": False}
        try:
            result = self.guest.start(config_json)
        except GuestFault as fault:
            return fault_error(fault)
        if isinstance(result, Ok) and isinstance(result.value, Mapping):
            self.report_status(bool(result.value.get("healthy")), result.value.get("data_json"), "start")
            return None
        return guest_error(result.value if isinstance(result, Err) else None)

    def _recover(self, cause: dict[str, Any], during: str) -> bool:
        """Restart after a fault: book a restart against the budget, wait its
        backoff (cut short by stop), start again. False when the budget is spent."""
        while True:
            with self._cv:
                self._busy = "restart"
                self._lifecycle.last_error = {**cause, "during": during, "at_ms": now_ms()}
                now = time.monotonic()
                delay = self._restart_policy.next_delay(now)
                if delay is None:
                    budget, window = self._restart_policy.budget, self._restart_policy.window_s
                    self._lifecycle.last_error = {
                        "code": "failed",
                        "message": bounded_message(f"restart budget spent ({budget} restarts within {window:g} s); last fault: {cause['message']}"),
                        "retryable": False,
                        "during": during,
                        "at_ms": now_ms(),
                    }
                    return False
                if self._stop_requested:
                    delay = 0.0  # draining: no time to wait, the deadline bounds the rest
                else:
                    self._lifecycle.enter("restarting")
                self._lifecycle.restarts += 1
                self._lifecycle.history.append({"at_ms": now_ms(), "delay_s": delay, "cause": cause["message"]})
                until = now + delay
                while not self._stop_requested and (left := until - time.monotonic()) > 0:
                    self._cv.wait(left)
            if self._start_guest("restart"):
                return True
            with self._lock:
                last = self._lifecycle.last_error
            cause = dict(last) if last else cause
            cause.pop("during", None)
            cause.pop("at_ms", None)
            during = "restart"

    def _refresh_status(self) -> bool:
        with self._lock:
            self._refresh_requested = False
            self._status_dirty = False
        try:
            value = self.guest.status()
        except GuestFault as fault:
            self._sync_recycles(True)
            with self._cv:
                self._refreshes += 1
                self._last_refresh = time.monotonic()
            return self._recover(fault_error(fault), "status")
        outside = self._sync_recycles(False)
        self.report_status(bool(value.get("healthy")), value.get("data_json"), "status_export")
        with self._cv:
            self._refreshes += 1
            self._last_refresh = time.monotonic()
            self._busy = None
            self._cv.notify_all()
        if outside:
            return self._recover(tool_fault_error(), "tool")
        return True

    def _enter_failed(self) -> None:
        with self._cv:
            self._lifecycle.enter("failed")
            records = self._drain_locked("failed", self._lifecycle.last_error)
            self._busy = None
            self._stop_requested = False
            self._cv.notify_all()
        self.guest.discard()  # free the instance; `start()` makes a new one
        self._notify(records)

    def _finish_stop(self) -> None:
        """The drain is over (queue empty or deadline passed): what is left is pending
        in a durable store for the next start (`_leave_pending_locked`), or, in
        memory where nothing would survive, dead-lettered with reason `stopping`."""
        with self._cv:
            if self.store.durable:
                self._leave_queue_pending_locked()
                records: list[dict[str, Any]] = []
            else:
                error = {"code": "failed", "message": "the runtime stopped before the event was delivered", "retryable": True}
                records = self._drain_locked("stopping", error)
        self._notify(records)
        if self.guest.has_lifecycle:
            stop_error: dict[str, Any] | None = None
            try:
                result = self.guest.stop()
            except GuestFault as fault:
                stop_error = fault_error(fault)
            else:
                if isinstance(result, Ok) and isinstance(result.value, Mapping):
                    self.report_status(bool(result.value.get("healthy")), result.value.get("data_json"), "stop")
                else:
                    stop_error = guest_error(result.value if isinstance(result, Err) else None)
            if stop_error is not None:
                with self._lock:
                    self._lifecycle.last_error = {**stop_error, "during": "stop", "at_ms": now_ms()}
        self.guest.discard()
        with self._cv:
            self._known_recycles = self.guest.recycles
            self._lifecycle.enter("stopped")
            self._stop_requested = False
            self._busy = None
            self._cv.notify_all()

    def _leave_queue_pending_locked(self) -> None:
        """Take everything the queue holds out, pending in the store: a waiting event
        keeps its next attempt (a retry's was written when it was scheduled); a stray
        one in flight (none at a normal stop) counts its attempt as made."""
        stray = self._queue.in_flight
        if stray is not None:
            self._queue.finish(stray)
            stray.attempt += 1
            self.store.retrying(stray, stray.errors[-1] if stray.errors else None)
            self._leave_pending_locked(stray)
        for event in self._queue.drain():
            self._leave_pending_locked(event)

    def _sync_recycles(self, own_fault: bool) -> bool:
        """After a call of ours: True when an instance was also recycled by someone
        else (a tool call) since we last looked."""
        if not own_fault and self.guest.recycles == self._known_recycles:
            return False  # the common case, without the lock: only this thread sets `_known_recycles`
        with self._lock:
            expected = self._known_recycles + (1 if own_fault else 0)
            actual = self.guest.recycles
            self._known_recycles = actual
            if own_fault or actual > expected:
                # A restart follows; marked now, so that nobody sees the runtime idle
                # between the end of this event and the start of the restart.
                self._busy = "restart"
            return actual > expected
