"""The dispatcher thread: picks the next action (event, status refresh, restart,
stop) and delivers events to `handle`, then runs the commands they returned.

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

`handle` runs the guest on the dispatcher thread itself (no handoff to the
instance's worker thread: `PluginInstance.call_here`). A guest blocked in a WASI
call (a sleep) past its deadline + `BLOCKED_CALL_GRACE_S` cannot be interrupted, so
the instance's watchdog abandons the call and `_carry_on` starts a replacement
dispatcher thread, which ends the event with a `timeout` fault (restart, retry) and
goes on dispatching; the blocked thread gets `CallAbandoned` when the guest lets it
go (it traps as soon as it re-enters wasm) and ends without touching anything.
`DispatcherThread.join` follows replacements, so `stop()` never waits for a blocked
thread. Lifecycle calls (`start`, `status`, `stop`) and tool calls keep the worker
thread (`PluginInstance.call`), which bounds them the same way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from ..codec import Err, Ok
from ..guest_json import GuestJsonError, loads_guest
from ..instance import CallAbandoned, GuestFault
from .commands import CommandContext, CommandResult, judge
from .guest import WasmGuest
from .lifecycle import now_ms
from .model import QueuedEvent
from .options import ASYNC_COMMANDS_REMEMBERED, IDLE_POLL_S, IDLE_STATUS_SETTLE_S, STATUS_REFRESH_INTERVAL_S
from .records import bounded_message, fault_error, guest_error, invalid_output_error, json_view, tool_fault_error
from .supervisor import Supervisor

if TYPE_CHECKING:
    from .runtime import ServiceRuntime

OUTPUT_DATA_MAX_BYTES = 4096
# Command kinds whose results come back later as events (see commands.py).
_SYNC_KINDS = frozenset({"emit", "log", "status_update"})


ABANDONED_MESSAGE = "the call exceeded its deadline while blocked in the guest and was abandoned"


class DispatcherThread(threading.Thread):
    """A dispatcher thread whose `join()` follows its replacements: a thread
    abandoned blocked in the guest counts as over once its replacement runs."""

    def __init__(self, target: Callable[..., None], args: tuple[Any, ...] = (), *, name: str, daemon: bool = True) -> None:
        super().__init__(target=target, args=args, name=name, daemon=daemon)
        self.over = threading.Event()  # ended, or replaced
        self.replaced_by: DispatcherThread | None = None

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.over.set()

    def join(self, timeout: float | None = None) -> None:
        if not self.over.wait(timeout):
            return
        replacement = self.replaced_by
        if replacement is not None:
            replacement.join(timeout)
        else:
            super().join(timeout)


class Dispatcher(Supervisor):
    _in_call: tuple[QueuedEvent, float] | None = None  # the event whose `handle` runs, and since when
    _idle_since: float | None = None  # when the queue was last found empty after an event (monotonic)

    def _run(self, started: threading.Event) -> None:
        if isinstance(self.guest, WasmGuest):
            self.guest.on_abandon = self._carry_on

        def body() -> None:
            ok = self._start_guest("start")
            if not ok:
                self._enter_failed()  # before `start()` returns, so it reports `failed`
            started.set()
            if ok:
                self._loop()

        self._guarded(body, started)

    def _carry_on(self) -> None:
        """(the instance's watchdog thread) The dispatcher is blocked in the guest and
        its call was abandoned: a replacement thread ends that event and goes on."""
        in_call = self._in_call
        if in_call is None:
            return
        event, started = in_call
        old = self._thread
        new = DispatcherThread(self._resume, (event, time.perf_counter() - started), name=f"yoi-runtime:{self.manifest.id}")
        with self._lock:
            self._thread = new
        if isinstance(old, DispatcherThread):
            old.replaced_by = new
        new.start()
        if isinstance(old, DispatcherThread):
            old.over.set()

    def _resume(self, event: QueuedEvent, duration: float) -> None:
        def body() -> None:
            if self._after_call(event, GuestFault("timeout", ABANDONED_MESSAGE), None, duration):
                self._loop()
            else:
                self._enter_failed()

        self._guarded(body)

    def _guarded(self, body: Callable[[], None], started: threading.Event | None = None) -> None:
        try:
            body()
        except CallAbandoned:
            return  # a replacement dispatcher carries on; nothing here is ours any more
        except BaseException as exc:  # a runtime bug: account for every event anyway
            with self._lock:
                self._lifecycle.last_error = {
                    "code": "failed",
                    "message": bounded_message(f"runtime error: {type(exc).__name__}: {exc}"),
                    "retryable": False,
                    "during": "dispatch",
                    "at_ms": now_ms(),
                }
            self.plugin.diagnostics.add("host", "error", f"runtime dispatcher crashed: {type(exc).__name__}: {exc}")
            try:
                self._enter_failed()
            finally:
                if started is not None:
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
                keep_going = self._recover(tool_fault_error(), "tool")
            else:
                self._finish_stop()
                return
            if not keep_going:
                self._enter_failed()
                return

    def _next_action(self) -> tuple[str, QueuedEvent | None]:
        with self._lock:  # (the condition's lock: `self._cv.wait` below)
            while True:
                now = time.monotonic()
                if self.guest.recycles != self._known_recycles:
                    self._busy = "restart"
                    return "recover", None
                # Events being written to the state store (reserved slots) are waited for.
                if self._stop_requested and ((self._queue.depth() == 0 and not self._queue.reserved()) or now >= self._drain_deadline):
                    self._busy = "stop"
                    return "stop", None
                lifecycle = self.guest.has_lifecycle and not self._stop_requested
                if lifecycle and (self._refresh_requested or (self._status_dirty and now - self._last_refresh >= STATUS_REFRESH_INTERVAL_S)):
                    self._busy = "status"
                    return "refresh", None
                event = self._queue.take(now)
                if event is not None:
                    self._idle_since = None
                    return "event", event
                timeout = IDLE_POLL_S
                if lifecycle and self._status_dirty:
                    # Read once the queue has stayed empty a moment, not between two
                    # events of a conversation (an echo would pay a second guest call each).
                    if self._idle_since is None:
                        self._idle_since = now
                    settle = self._idle_since + IDLE_STATUS_SETTLE_S - now
                    if settle <= 0:
                        self._busy = "status"
                        return "refresh", None
                    timeout = settle
                ready_at = self._queue.next_ready_at()
                if ready_at is not None:
                    timeout = min(timeout, max(0.0, ready_at - now))
                if self._stop_requested:
                    timeout = min(timeout, max(0.0, self._drain_deadline - now))
                self._dispatcher_waits = True
                try:
                    self._cv.wait(timeout)
                finally:
                    self._dispatcher_waits = False

    def _dispatch(self, event: QueuedEvent) -> bool:
        started = time.perf_counter()
        self._in_call = (event, started)
        fault: GuestFault | None = None
        result: Any = None
        try:
            result = self.guest.handle(event.to_wire())
        except GuestFault as exc:
            fault = exc
        # (CallAbandoned passes: `_in_call` is then the replacement's to read.)
        self._in_call = None
        return self._after_call(event, fault, result, time.perf_counter() - started)

    def _after_call(self, event: QueuedEvent, fault: GuestFault | None, result: Any, duration: float) -> bool:
        """End a delivery attempt whose `handle` returned `result` or faulted; False
        when the runtime must fail (restart budget spent)."""
        outside = self._sync_recycles(fault is not None)
        try:
            ended = self._end_with_output(event, fault, result, duration)
        except Exception as exc:  # noqa: BLE001 - nothing a guest returns may stop the dispatcher
            self.plugin.diagnostics.add("host", "error", f"output of event {event.id} refused: {type(exc).__name__}: {exc}")
            ended = invalid_output_error(f"the output could not be processed: {type(exc).__name__}")
        if ended is not None:
            self._end_attempt_failed(event, ended, duration)
        if fault is not None:
            return self._recover(fault_error(fault), "handle")
        if outside:
            return self._recover(tool_fault_error(), "tool")
        return True

    def _end_with_output(self, event: QueuedEvent, fault: GuestFault | None, result: Any, duration: float) -> dict[str, Any] | None:
        """End a handled event with its commands' results, or return the error the
        attempt failed with (a fault, the plugin's error, or `invalid_output`)."""
        if fault is not None:
            return fault_error(fault)
        output = result.value if isinstance(result, Ok) else None
        if type(output) is not dict and not isinstance(output, Mapping):
            return guest_error(result.value if isinstance(result, Err) else None)
        data_json = output.get("data_json")
        data: Any = None
        if data_json is not None:
            if isinstance(data_json, str) and len(data_json.encode("utf-8", "replace")) <= OUTPUT_DATA_MAX_BYTES:
                try:  # parsed once: the refusal check and the outcome's view
                    data = loads_guest(data_json)
                except GuestJsonError as exc:  # before any command runs: the output as a whole is refused
                    return invalid_output_error(f"handler output data_json: {exc}")
            else:
                data = json_view(data_json, OUTPUT_DATA_MAX_BYTES)  # a marker: too large, or not a string
        commands = output.get("commands") or []
        if not isinstance(commands, list):
            return invalid_output_error("handler output commands must be a list")
        at_ms = now_ms()  # the output's time: its command results and its outcome
        results = self._run_commands(event, commands, at_ms)
        self._end_handled(event, results, data, duration, at_ms)
        return None

    def _run_commands(self, event: QueuedEvent, commands: list[Any], at_ms: int) -> list[CommandResult]:
        # Executors see the public runtime (the dispatcher is always a ServiceRuntime's).
        runtime = cast("ServiceRuntime", self)

        def make_context(command_id: str, kind: str, value: Any) -> CommandContext:
            if kind not in _SYNC_KINDS:
                # Known before the executor runs: it may deliver the result at once.
                self._remember_async(command_id, event.ingress)
            return CommandContext(runtime, event, command_id, kind, value)

        # Outside the lock: executors may submit events (async results). The results
        # are counted in status with the event's end (`_end_handled`).
        results = judge(commands, self.checker, self._executors, make_context, at_ms, event.id)
        if self._observers:
            for r in results:
                self._observe("command_result", r.to_json())
        return results

    def _remember_async(self, command_id: str, ingress: str) -> None:
        """Remember an asynchronous command's id: its result event may come from
        any source (a host executor), see commands.py."""
        with self._lock:
            self._async_ids[command_id] = ingress
            while len(self._async_ids) > ASYNC_COMMANDS_REMEMBERED:
                self._async_ids.popitem(last=False)
