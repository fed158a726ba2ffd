"""`ServiceRuntime`: lifecycle, bounded event queue, dispatcher and output commands
for one Service or Ingress plugin instance.

Threads. Producers (`submit`, `replay`, sources, the CLI) only touch the queue under
the runtime lock and never wait for the plugin. One dispatcher thread per runtime
makes every call into the instance: `start`, `handle`, `status`, `stop`. So calls
are serial (no two handler calls overlap), `status()` never blocks behind a slow
handler (it returns what the dispatcher last read, between two dispatches), and
wasmtime-py's untagged-lowering scratch state, which is module-global and not
thread-safe, is only used from one thread per runtime. Tool calls of a combined
plugin (world `plugin`) still come from their callers' threads: the instance lock
serializes them with dispatches, and the lifecycle gate refuses them unless the
service is running.

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
import statistics
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pdk.limits import (
    COMMAND_RESULTS_RING,
    CONFIG_MAX_BYTES,
    DEAD_LETTER_MAX,
    EMIT_LOG_MAX,
    STOP_DRAIN_DEADLINE_S,
)

from ..codec import Case, Err, Ok
from ..instance import GuestFault
from ..redact import bound_text, redact
from .commands import COMMAND_RESULTS, CommandChecker, CommandContext, CommandResult, Executor, default_executors, judge
from .dead_letters import DeadLetterStore
from .emit_log import EmitLog
from .guest import EVENT_WORLDS, Guest, WasmGuest
from .intake import Intake, normalize_payload
from .counters import Counters
from .lifecycle import ACCEPTING, Lifecycle, RestartPolicy, now_ms
from .model import Accepted, QueuedEvent, Refused, new_event_id
from .options import (
    ASYNC_COMMANDS_REMEMBERED,
    IDLE_POLL_S,
    OUTCOMES_RING,
    STATUS_REFRESH_INTERVAL_S,
    IngressSettings,
    RuntimeOptions,
    resolve_settings,
)
from .queue import EventQueue
from .status import sources_view, status_document

if TYPE_CHECKING:
    from ..host import LoadedPlugin

ERROR_MESSAGE_MAX_BYTES = 1024
DETAILS_MAX_BYTES = 4096
PLUGIN_STATUS_MAX_BYTES = 4096
OUTPUT_DATA_MAX_BYTES = 4096
CORRELATION_ID_MAX_LEN = 128
# Command kinds whose results come back later as events (see commands.py).
_SYNC_KINDS = frozenset({"emit", "log", "status_update"})

OutcomeCallback = Callable[[dict[str, Any]], None]


def _message(text: str) -> str:
    return bound_text(redact(text), ERROR_MESSAGE_MAX_BYTES)


def fault_error(fault: GuestFault) -> dict[str, Any]:
    """A trap, deadline or fuel exhaustion as an error record (always retryable)."""
    code = "timeout" if fault.kind in ("timeout", "fuel") else "failed"
    return {"code": code, "message": _message(fault.message), "retryable": True, "fault": fault.kind}


def guest_error(value: Any) -> dict[str, Any]:
    """A `plugin-error` the guest returned, bounded and redacted."""
    if not isinstance(value, Mapping):
        return {"code": "invalid_output", "message": "the plugin returned no result", "retryable": False}
    error: dict[str, Any] = {
        "code": str(value.get("code") or "failed"),
        "message": _message(str(value.get("message") or value.get("code") or "failed")),
        "retryable": bool(value.get("retryable")),
    }
    details_json = value.get("details_json")
    if isinstance(details_json, str) and len(details_json) <= DETAILS_MAX_BYTES:
        try:
            error["details"] = json.loads(redact(details_json))
        except ValueError:
            pass
    return error


def _json_view(data_json: Any, limit: int) -> Any:
    """Parsed JSON for status/outcome views, or a marker when it is too large or broken."""
    if data_json is None:
        return None
    text = str(data_json)
    if len(text.encode("utf-8", "replace")) > limit:
        return {"truncated": True, "bytes": len(text.encode("utf-8", "replace"))}
    try:
        return json.loads(text)
    except ValueError:
        return {"unparsed": bound_text(redact(text), 256)}


class ServiceRuntime:
    """Runs one Service or Ingress plugin: see the module docstring and DESIGN.md.

    `config` is the operator config passed to `start` (default: the grant's config);
    `options` the queue, retry and restart settings. `guest` replaces the real
    component (unit tests of the queue logic)."""

    def __init__(
        self,
        plugin: LoadedPlugin,
        config: Mapping[str, Any] | None = None,
        options: RuntimeOptions | None = None,
        *,
        guest: Guest | None = None,
    ) -> None:
        manifest = plugin.package.manifest
        world = manifest.runtime.world
        if world not in EVENT_WORLDS:
            raise ValueError(f"{manifest.id}: world {world!r} has no services or ingresses to run")
        self.plugin = plugin
        self.manifest = manifest
        self.options = options or RuntimeOptions()
        self.config: dict[str, Any] = dict(plugin.grants.config if config is None else config)
        self.guest: Guest = guest if guest is not None else WasmGuest(plugin.instance, world, self.options.call_deadline_s)
        self.settings: dict[str, IngressSettings] = resolve_settings(manifest, self.options)
        self.intake = Intake(manifest)
        self.checker = CommandChecker(manifest, plugin.grants)
        # Executors per command kind; the WebSocket and HTTP issues replace the
        # `unsupported` defaults of `websocket_send` and `http_request` (commands.py).
        self.command_executors: dict[str, Executor] = default_executors()
        # Per-source state shown in status, filled by the host's event sources: a
        # dict, or a callable returning one (called when status is read).
        self.sources: dict[str, Any] = {}
        self.emit_log = EmitLog(manifest.id, EMIT_LOG_MAX)

        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._control = threading.Lock()  # serializes start() and stop()
        self._queue = EventQueue(self.options.queue_capacity, {name: s.capacity for name, s in self.settings.items()})
        self._counters = Counters()
        self._dead = DeadLetterStore(DEAD_LETTER_MAX)
        self._lifecycle = Lifecycle()
        self._restart_policy = RestartPolicy(
            self.options.restart_budget,
            self.options.restart_window_s,
            self.options.restart_backoff_initial_s,
            self.options.restart_backoff_max_s,
        )
        self._outcomes: deque[dict[str, Any]] = deque(maxlen=OUTCOMES_RING)
        self._recent_commands: deque[CommandResult] = deque(maxlen=COMMAND_RESULTS_RING)
        self._by_result: dict[str, int] = {result: 0 for result in COMMAND_RESULTS}
        self._async_ids: OrderedDict[str, str] = OrderedDict()
        self._plugin_status: dict[str, Any] | None = None
        self._callbacks: list[OutcomeCallback] = []
        self._durations: deque[float] = deque(maxlen=32)

        self._thread: threading.Thread | None = None
        self._stop_requested = False
        self._drain_deadline = 0.0
        self._busy: str | None = None  # control work of the dispatcher (start, restart, status, stop)
        self._notifying = 0  # final outcomes whose callbacks have not run yet
        self._status_dirty = False
        self._refresh_requested = False
        self._refreshes = 0
        self._last_refresh = 0.0
        self._known_recycles = self.guest.recycles
        # Tools of a combined plugin respect the lifecycle (host.py consults this).
        plugin.lifecycle_gate = self._tool_gate

    # ================================================================== public API

    @property
    def state(self) -> str:
        return self._lifecycle.state

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

    def report_status(self, healthy: bool, data_json: str | None, source: str) -> None:
        """Set the plugin's reported status (from `start`, the `status` export, a
        `status_update` command or `stop`)."""
        view = {"healthy": bool(healthy), "data": _json_view(data_json, PLUGIN_STATUS_MAX_BYTES), "source": source, "at_ms": now_ms()}
        with self._lock:
            self._plugin_status = view

    # ================================================================== intake helpers

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

    def _idle_locked(self) -> bool:
        if self._notifying:
            return False  # outcome callbacks of finished events still running
        if self._lifecycle.state in ("stopped", "failed"):
            return self._queue.held() == 0
        if self._queue.held() or self._busy is not None:
            return False
        if self.guest.recycles != self._known_recycles:
            return False  # a tool call faulted: a restart is due
        if self._lifecycle.state in ("starting", "restarting"):
            return False
        return not (self._status_dirty and self.guest.has_lifecycle and self._lifecycle.state == "running")

    def _tool_gate(self) -> str | None:
        """Consulted by `LoadedPlugin.call_tool`: None lets the call run."""
        state = self._lifecycle.state
        if state == "running" and self.guest.recycles == self._known_recycles:
            return None
        if state in ("running", "restarting"):
            return f"{self.manifest.id}: its service is restarting after a fault; try again shortly"
        return f"{self.manifest.id}: tools of this plugin run only while its service is running (it is {state})"

    # ================================================================== dispatcher

    def _run(self, started: threading.Event) -> None:
        try:
            ok = self._start_guest("start")
            if not ok:
                self._enter_failed()  # before `start()` returns, so it reports `failed`
            started.set()
            if ok:
                self._loop()
        except BaseException as exc:  # a runtime bug: account for every event anyway
            with self._lock:
                self._lifecycle.last_error = {
                    "code": "failed",
                    "message": _message(f"runtime error: {type(exc).__name__}: {exc}"),
                    "retryable": False,
                    "during": "dispatch",
                    "at_ms": now_ms(),
                }
            self.plugin.diagnostics.add("host", "error", f"runtime dispatcher crashed: {type(exc).__name__}: {exc}")
            try:
                self._enter_failed()
            finally:
                started.set()

    def _loop(self) -> None:
        while True:
            action, event = self._next_action()
            if action == "event":
                assert event is not None
                keep_going = self._dispatch(event)
            elif action == "refresh":
                keep_going = self._refresh_status()
            elif action == "recover":
                keep_going = self._recover({"code": "failed", "message": "the instance was recycled after a fault in a tool call", "retryable": True, "fault": "trap"}, "tool")
            else:
                self._finish_stop()
                return
            if not keep_going:
                self._enter_failed()
                return

    def _next_action(self) -> tuple[str, QueuedEvent | None]:
        with self._cv:
            while True:
                now = time.monotonic()
                if self.guest.recycles != self._known_recycles:
                    self._busy = "restart"
                    return "recover", None
                if self._stop_requested and (self._queue.depth() == 0 or now >= self._drain_deadline):
                    self._busy = "stop"
                    return "stop", None
                lifecycle = self.guest.has_lifecycle and not self._stop_requested
                if lifecycle and (self._refresh_requested or (self._status_dirty and now - self._last_refresh >= STATUS_REFRESH_INTERVAL_S)):
                    self._busy = "status"
                    return "refresh", None
                event = self._queue.take(now)
                if event is not None:
                    return "event", event
                if lifecycle and self._status_dirty:
                    self._busy = "status"
                    return "refresh", None
                timeout = IDLE_POLL_S
                ready_at = self._queue.next_ready_at()
                if ready_at is not None:
                    timeout = min(timeout, max(0.0, ready_at - now))
                if self._stop_requested:
                    timeout = min(timeout, max(0.0, self._drain_deadline - now))
                self._cv.wait(timeout)

    def _sync_recycles(self, own_fault: bool) -> bool:
        """After a call of ours: True when an instance was also recycled by someone
        else (a tool call) since we last looked."""
        with self._lock:
            expected = self._known_recycles + (1 if own_fault else 0)
            actual = self.guest.recycles
            self._known_recycles = actual
            if own_fault or actual > expected:
                # A restart follows; marked now, so that nobody sees the runtime idle
                # between the end of this event and the start of the restart.
                self._busy = "restart"
            return actual > expected

    def _dispatch(self, event: QueuedEvent) -> bool:
        started = time.perf_counter()
        fault: GuestFault | None = None
        result: Any = None
        try:
            result = self.guest.handle(event.to_wire())
        except GuestFault as exc:
            fault = exc
        duration = time.perf_counter() - started
        outside = self._sync_recycles(fault is not None)
        if fault is None and isinstance(result, Ok) and isinstance(result.value, Mapping):
            output = result.value
            commands = list(output.get("commands") or [])
            results = self._run_commands(event, commands)
            self._end_handled(event, results, _json_view(output.get("data_json"), OUTPUT_DATA_MAX_BYTES), duration)
        else:
            error = fault_error(fault) if fault is not None else guest_error(result.value if isinstance(result, Err) else None)
            self._end_attempt_failed(event, error, duration)
        if fault is not None:
            return self._recover(fault_error(fault), "handle")
        if outside:
            return self._recover({"code": "failed", "message": "the instance was recycled after a fault in a tool call", "retryable": True, "fault": "trap"}, "tool")
        return True

    def _run_commands(self, event: QueuedEvent, commands: list[Any]) -> list[CommandResult]:
        def make_context(command_id: str, kind: str, value: Any) -> CommandContext:
            if kind not in _SYNC_KINDS:
                # Known before the executor runs: it may deliver the result at once.
                self._remember_async(command_id, event.ingress)
            return CommandContext(self, event, command_id, kind, value)

        # Outside the lock: executors may submit events (async results).
        results = judge(commands, self.checker, self.command_executors, make_context, now_ms, event.id)
        with self._lock:
            for r in results:
                self._by_result[r.result] = self._by_result.get(r.result, 0) + 1
                self._recent_commands.append(r)
        return results

    def _remember_async(self, command_id: str, ingress: str) -> None:
        """Remember an asynchronous command's id: its result event may come from
        any source (a host executor), see commands.py."""
        with self._lock:
            self._async_ids[command_id] = ingress
            while len(self._async_ids) > ASYNC_COMMANDS_REMEMBERED:
                self._async_ids.popitem(last=False)

    def _outcome(self, event: QueuedEvent, outcome: str, **extra: Any) -> dict[str, Any]:
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
            "at_ms": now_ms(),
        }
        if event.replay_of is not None:
            record["replay_of"] = event.replay_of
        record.update(extra)
        return record

    def _end_handled(self, event: QueuedEvent, results: list[CommandResult], data: Any, duration: float) -> None:
        record = self._outcome(event, "handled", command_results=[r.to_json() for r in results], data=data, duration_ms=round(duration * 1000, 3))
        with self._cv:
            self._queue.finish(event)
            self._counters.handled += 1
            self._notifying += 1
            self._durations.append(duration)
            self._outcomes.append(record)
            self._status_dirty = True
            self._cv.notify_all()
        self._notify([record])

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
                self._queue.defer(event, now + delay)
                self._counters.retried += 1
            else:
                self._queue.finish(event)
                final = self._dead_letter_locked(event, reason, error, event.attempt)
            self._cv.notify_all()
        if final is not None:
            self._notify([final])

    def _dead_letter_locked(self, event: QueuedEvent, reason: str, error: dict[str, Any] | None, attempts: int) -> dict[str, Any]:
        letter = self._dead.add(event, reason, attempts, error)
        self._counters.dead_lettered += 1
        self._notifying += 1
        record = self._outcome(event, "dead_lettered", error=error, reason=reason, dead_letter_id=letter.id)
        record["attempts"] = attempts
        self._outcomes.append(record)
        return record

    def _notify(self, records: list[dict[str, Any]]) -> None:
        """Run the outcome callbacks for final records (each counted in `_notifying`
        when it was made, so `wait_idle` returns only after its callbacks ran)."""
        with self._lock:
            callbacks = list(self._callbacks)
        try:
            for record in records:
                for callback in callbacks:
                    try:
                        callback(record)
                    except Exception as exc:  # a listener's bug must not stop dispatch
                        self.plugin.diagnostics.add("host", "error", f"outcome callback failed: {type(exc).__name__}: {exc}")
        finally:
            with self._cv:
                self._notifying -= len(records)
                self._cv.notify_all()

    # ================================================================== lifecycle

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
            error = {"code": "denied", "message": _message(denial), "retryable": False}
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
            return {"code": "invalid_input", "message": _message(f"the config is not JSON: {exc}"), "retryable": False}
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
                        "message": _message(f"restart budget spent ({budget} restarts within {window:g} s); last fault: {cause['message']}"),
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
            return self._recover({"code": "failed", "message": "the instance was recycled after a fault in a tool call", "retryable": True, "fault": "trap"}, "tool")
        return True

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
        with self._cv:
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

    # ================================================================== status

    def _snapshot_locked(self) -> dict[str, Any]:
        m = self.manifest
        queue = self._queue
        policy = self._restart_policy
        lifecycle = self._lifecycle.to_json()
        lifecycle["restart_budget"] = {"budget": policy.budget, "window_s": policy.window_s, "used": policy.used(time.monotonic())}
        return status_document(
            plugin={"id": m.id, "version": m.version, "digest": self.plugin.digest, "world": m.runtime.world},
            lifecycle=lifecycle,
            queue={
                "depth": queue.depth(),
                "capacity": queue.capacity,
                "in_flight": 1 if queue.in_flight is not None else 0,
                "by_ingress": {
                    name: {
                        "held": queue.held_by(name),
                        "capacity": s.capacity,
                        "max_attempts": s.max_attempts,
                        "retry_backoff_ms": s.retry_backoff_ms,
                    }
                    for name, s in self.settings.items()
                },
            },
            counters=self._counters.to_json(),
            commands={"by_result": dict(self._by_result), "recent": [r.to_json() for r in self._recent_commands]},
            plugin_status=dict(self._plugin_status) if self._plugin_status else None,
            sources=sources_view(self.sources),
            dead_letters={"count": len(self._dead), "capacity": self._dead.capacity, "evicted": self._dead.evicted},
            emitted=self.emit_log.to_json(),
        )
