"""`RuntimeCore`: the state a `ServiceRuntime`'s layers share, guarded by one lock,
and the status snapshot of that state.

The runtime is built in layers, each in its own module and each using only the
ones below it: `core` (this state) <- `outcomes` (how an attempt ends) <-
`supervisor` (the guest's lifecycle) <- `dispatcher` (the dispatcher thread) <-
`runtime` (the public API). Every field more than one thread reads is guarded by
`_lock` (`_cv` is its condition); methods named `*_locked` expect it held.

State. `store` is the runtime's state store (store.py): `":memory:"` (the default)
or a SQLite file that keeps accepted events, dead letters and emitted events across
restarts. The dead letters and emitted events it kept are loaded here; its pending
events are queued again by the first `start()` (runtime.py).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from typing import Any

from pdk.limits import COMMAND_RESULTS_RING, DEAD_LETTER_MAX, EMIT_LOG_MAX

from .commands import COMMAND_RESULTS, CommandChecker, CommandResult, Executor, default_executors
from .counters import Counters
from .dead_letters import DeadLetterStore
from .emit_log import EmitLog
from .guest import EVENT_WORLDS, Guest, WasmGuest
from .intake import Intake
from .lifecycle import Lifecycle, RestartPolicy, now_ms
from .options import OUTCOMES_RING, IngressSettings, RuntimeOptions, resolve_settings
from .plugin import RuntimePlugin
from .queue import EventQueue
from .model import QueuedEvent
from .observer import RuntimeObserver
from .records import json_view
from .status import sources_view, status_document
from .store import MEMORY, StateStore, open_store

PLUGIN_STATUS_MAX_BYTES = 4096

OutcomeCallback = Callable[[dict[str, Any]], None]
StateArg = str | os.PathLike[str] | StateStore | None


class RuntimeCondition(threading.Condition):
    """The runtime lock's condition, with `wake()`: `notify_all()` when some thread
    waits (the dispatcher for work, `wait_idle`, a status refresh), else nothing.
    The hot paths wake only for a change a waiter can be waiting for: the dispatcher
    when it waits for work (`_dispatcher_waits`), the others when the queue emptied
    (`wait_idle`: a runtime holding events is not idle)."""

    _waiters: deque[Any]  # threading.Condition's own list of waiting threads

    def wake(self) -> None:
        """(lock held) Wake every waiting thread, if there is one."""
        if self._waiters:
            self.notify_all()


def _is_store(value: object) -> bool:
    return hasattr(value, "accept") and hasattr(value, "recovered")


class RuntimeCore:
    def __init__(
        self,
        plugin: RuntimePlugin,
        config: Mapping[str, Any] | None = None,
        options: RuntimeOptions | None = None,
        *,
        guest: Guest | None = None,
        state: StateArg = None,
        state_sync: str = "normal",
    ) -> None:
        manifest = plugin.manifest
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
        # Executors per command kind; `register_executor` replaces the `unsupported`
        # defaults of `websocket_send` and `http_request` (commands.py).
        self._executors: dict[str, Executor] = default_executors()
        # Per-source state shown in status, filled by the host's event sources
        # (`register_source`): a dict, or a callable returning one (called when status
        # is read).
        self.sources: dict[str, Any] = {}
        # Opened here, so that a corrupt, locked or read-only store fails the
        # construction with a typed StoreError before anything runs.
        if _is_store(state):
            self.store: StateStore = state  # type: ignore[assignment]
        else:
            self.store = open_store(MEMORY if state is None else state, manifest.id, plugin.digest, synchronous=state_sync)  # type: ignore[arg-type]
        recovered = self.store.recovered()
        self.emit_log = EmitLog(manifest.id, EMIT_LOG_MAX, self.store.emitted)
        self.emit_log.load(recovered.emitted)

        self._lock = threading.Lock()
        self._cv = RuntimeCondition(self._lock)
        self._control = threading.Lock()  # serializes start() and stop()
        self._queue = EventQueue(self.options.queue_capacity, {name: s.capacity for name, s in self.settings.items()})
        self._counters = Counters()
        self._dead = DeadLetterStore(DEAD_LETTER_MAX)
        self._dead.load(recovered.dead_letters)
        # Pending events of an earlier run, queued again by the first start().
        self._to_recover: list[QueuedEvent] = recovered.pending
        self._recovered_from = recovered
        self._recovery: dict[str, Any] | None = None  # what that start() did, for status
        self._observers: list[RuntimeObserver] = []
        self._lifecycle = Lifecycle(on_change=lambda state, error: self._observe("lifecycle_changed", state, error))
        self._restart_policy = RestartPolicy(
            self.options.restart_budget,
            self.options.restart_window_s,
            self.options.restart_backoff_initial_s,
            self.options.restart_backoff_max_s,
        )
        # Outcome records, or handled outcomes kept as their parts (outcomes.HandledOutcome).
        self._outcomes: deque[Any] = deque(maxlen=OUTCOMES_RING)
        self._recent_commands: deque[CommandResult] = deque(maxlen=COMMAND_RESULTS_RING)
        self._by_result: dict[str, int] = {result: 0 for result in COMMAND_RESULTS}
        self._async_ids: OrderedDict[str, str] = OrderedDict()
        self._plugin_status: dict[str, Any] | None = None
        # Replaced, never changed in place, so that the dispatcher reads it without the lock.
        self._callbacks: list[OutcomeCallback] = []
        self._durations: deque[float] = deque(maxlen=32)

        self._thread: threading.Thread | None = None
        self._dispatcher_waits = False  # the dispatcher waits on `_cv` for work (dispatcher.py)
        self._stop_requested = False
        self._drain_deadline = 0.0
        self._busy: str | None = None  # control work of the dispatcher (start, restart, status, stop)
        self._notifying = 0  # final outcomes whose callbacks have not run yet
        self._status_dirty = False
        self._refresh_requested = False
        self._refreshes = 0
        self._last_refresh = 0.0
        self._known_recycles = self.guest.recycles
        # Tools of a combined plugin respect the lifecycle: the plugin's gate asks us.
        plugin.tool_gate.govern(self._tool_refusal)

    @property
    def state(self) -> str:
        return self._lifecycle.state

    def _observe(self, method: str, *args: Any) -> None:
        """Tell every observer (observer.py); their exceptions are swallowed."""
        for observer in list(self._observers):
            try:
                getattr(observer, method)(*args)
            except Exception:
                pass

    def report_status(self, healthy: bool, data_json: str | None, source: str) -> None:
        """Set the plugin's reported status (from `start`, the `status` export, a
        `status_update` command or `stop`)."""
        view = {"healthy": bool(healthy), "data": json_view(data_json, PLUGIN_STATUS_MAX_BYTES), "source": source, "at_ms": now_ms()}
        with self._lock:
            self._plugin_status = view

    def room_left(self, ingress: str) -> tuple[int, int]:
        """(free queue slots for an event of `ingress` now, the most it could have).
        For sources that pause while the queue is full (the WebSocket reader): waking
        them only once a good part is free lets them submit a burst per wake-up."""
        with self._lock:
            return self._queue.room_left(ingress)

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

    def _tool_refusal(self) -> str | None:
        """Asked by the plugin's `ToolGate` before every tool call: None lets it run."""
        state = self._lifecycle.state
        if state == "running" and self.guest.recycles == self._known_recycles:
            return None
        if state in ("running", "restarting"):
            return f"{self.manifest.id}: its service is restarting after a fault; try again shortly"
        return f"{self.manifest.id}: tools of this plugin run only while its service is running (it is {state})"

    def _snapshot_locked(self) -> dict[str, Any]:
        queue = self._queue
        policy = self._restart_policy
        lifecycle = self._lifecycle.to_json()
        lifecycle["restart_budget"] = {"budget": policy.budget, "window_s": policy.window_s, "used": policy.used(time.monotonic())}
        return status_document(
            plugin=self.plugin.status(),
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
            # `status_age_s`: how old the plugin's own status is (it is read between dispatches).
            plugin_status={**self._plugin_status, "status_age_s": round(max(0, now_ms() - self._plugin_status["at_ms"]) / 1000, 3)} if self._plugin_status else None,
            sources=sources_view(self.sources),
            dead_letters={"count": len(self._dead), "capacity": self._dead.capacity, "evicted": self._dead.evicted},
            emitted=self.emit_log.to_json(),
            store={**self.store.stats(), "recovery": dict(self._recovery) if self._recovery else None},
        )
