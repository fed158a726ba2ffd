"""`PluginInstance`: one sandboxed, limited wasmtime instance of a plugin.

Every call re-arms the epoch deadline (it is relative to the epoch when set), sets
the per-call fuel when fuel is on, and calls `post_return`. A trap, a deadline or
fuel exhaustion poisons a wasmtime instance (every later call fails), so the
instance is dropped and a fresh store + instance is made for the next call.

Threads. `call` runs the guest on the instance's own worker thread and waits for it
at most the deadline + `BLOCKED_CALL_GRACE_S` (a guest blocked in a WASI call cannot
be interrupted by the epoch). `call_here` runs it on the calling thread (no handoff:
the runtime's dispatcher, the hot path of every event) and keeps the same bound the
other way round: a watchdog thread abandons a call blocked past that time, frees the
instance for the next caller and calls the caller's `on_abandon`, which carries on
elsewhere (the runtime starts a replacement dispatcher); the blocked thread gets
`CallAbandoned` when it comes back and must end without touching shared state.
Abandoned calls of both kinds count against `ABANDONED_CALLS_MAX`.
"""

from __future__ import annotations

import queue
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, NoReturn

import wasmtime
from wasmtime.component import Component, Func, Linker

from pdk.limits import (
    ABANDONED_CALLS_MAX,
    BLOCKED_CALL_GRACE_S,
    CALL_DEADLINE_DEFAULT_S,
    INSTANCE_CORE_INSTANCES_MAX,
    INSTANCE_MEMORIES_MAX,
    INSTANCE_TABLE_ELEMENTS_MAX,
    INSTANCE_TABLES_MAX,
    MEMORY_DEFAULT_BYTES,
    MEMORY_MIN_BYTES,
)
from pdk.package.errors import PdkError

from ._fastcall import ExportCall, StoreKnobs, bind_export
from .diagnostics import DiagnosticLog, StdioCapture
from .engine import EpochTicker
from .linker import HostLinker
from .redact import redact_bounded

INSTANTIATE_DEADLINE_S = 5.0
# How often the watchdog looks for on-thread calls blocked past their deadline + grace.
WATCHDOG_INTERVAL_S = 0.05


@dataclass(frozen=True)
class InstanceLimits:
    """Per-instance limits. `fuel` is per call and needs an engine with fuel on.

    `memory_bytes` is the cap for the plugin as a whole: wasmtime caps each linear
    memory, so it is split evenly over the `memories` the plugin may create (one by
    default, which is what a componentize-py guest has)."""

    memory_bytes: int = MEMORY_DEFAULT_BYTES
    deadline_s: float = CALL_DEADLINE_DEFAULT_S
    fuel: int | None = None
    memories: int = INSTANCE_MEMORIES_MAX
    tables: int = INSTANCE_TABLES_MAX
    table_elements: int = INSTANCE_TABLE_ELEMENTS_MAX
    core_instances: int = INSTANCE_CORE_INSTANCES_MAX

    def __post_init__(self) -> None:
        if self.memory_bytes < MEMORY_MIN_BYTES:
            raise ValueError(f"memory limit {self.memory_bytes} is below {MEMORY_MIN_BYTES} bytes; a Python guest cannot start")
        if self.deadline_s <= 0:
            raise ValueError("the call deadline must be positive")
        for name in ("memories", "tables", "table_elements", "core_instances"):
            if getattr(self, name) < 1:
                raise ValueError(f"the {name} limit must be at least 1")

    @property
    def memory_bytes_per_memory(self) -> int:
        return self.memory_bytes // self.memories


class GuestFault(PdkError):
    """The guest trapped, ran out of time or fuel; its instance has been discarded.

    `kind` is `timeout`, `fuel`, `trap` or `instantiate`."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message, code=kind)
        self.kind = kind


class CallAbandoned(Exception):
    """Raised to a thread whose `call_here` was abandoned while it was blocked in the
    guest: the instance and the caller's `on_abandon` have moved on without it."""


def classify_trap(exc: Exception) -> GuestFault:
    text = str(exc).strip()
    # wasmtime puts the reason after the backtrace ("error while executing at wasm
    # backtrace: ... Caused by: wasm trap: interrupt"). Judge and report that reason:
    # the first line says nothing, and frame names in the backtrace must not decide
    # the kind.
    _, found, cause = text.rpartition("Caused by:")
    reason = " ".join(cause.split()) if found else (text.splitlines()[0] if text else type(exc).__name__)
    if "interrupt" in reason or "epoch" in reason:
        return GuestFault("timeout", "the call exceeded its deadline and was stopped")
    if "fuel" in reason:
        return GuestFault("fuel", "the call ran out of fuel and was stopped")
    return GuestFault("trap", redact_bounded(f"the guest trapped: {reason}", 512))


def _no_job() -> None:
    return None


class _Job:
    """One piece of work for a `_Worker`; `done` is set when it ended either way."""

    __slots__ = ("fn", "done", "result", "error")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None

    def ended(self) -> bool:
        return self.done.is_set()

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:  # handed to the waiting caller
            self.error = exc
        finally:
            self.done.set()


class _Worker:
    """The thread that runs every guest call of one live instance.

    The epoch deadline only interrupts wasm that runs; a guest blocked inside a WASI
    call (a sleep, a poll) holds its thread until the call returns. Running guest
    code here lets the caller stop waiting at the deadline, abandon the instance and
    answer; the blocked thread traps as soon as it re-enters wasm and then ends."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job.run()

    def submit(self, fn: Callable[[], Any]) -> _Job:
        job = _Job(fn)
        self._jobs.put(job)
        return job

    def retire(self) -> None:
        """End the thread after the job it runs (if any)."""
        self._jobs.put(None)


class _HereCall:
    """One `call_here` in progress: the watchdog may abandon it after `abandon_at`
    (monotonic seconds). `ended` and `abandoned` change under the instance's
    `_here_lock`; whichever is set first decides who owns the instance lock."""

    __slots__ = ("abandon_at", "on_abandon", "ended_flag", "abandoned")

    def __init__(self, abandon_at: float, on_abandon: Callable[[], None] | None) -> None:
        self.abandon_at = abandon_at
        self.on_abandon = on_abandon
        self.ended_flag = False
        self.abandoned = False

    def ended(self) -> bool:
        return self.ended_flag


class _Watchdog:
    """One daemon thread per process: every `WATCHDOG_INTERVAL_S` it asks each
    instance that made a `call_here` whether that call is blocked past its bound.
    Idle (no wake-ups) until the first such instance; instances are held weakly."""

    def __init__(self) -> None:
        self._instances: weakref.WeakSet[PluginInstance] = weakref.WeakSet()
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, instance: PluginInstance) -> None:
        with self._cv:
            self._instances.add(instance)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="yoi-call-watchdog", daemon=True)
                self._thread.start()
            self._cv.notify_all()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._instances:
                    self._cv.wait()
                instances = list(self._instances)
            now = time.monotonic()
            for instance in instances:
                on_abandon = instance._abandon_if_blocked(now)
                if on_abandon is not None:
                    try:
                        on_abandon()
                    except Exception:  # noqa: BLE001 - the caller's hook must not stop the watchdog
                        pass
            del instances
            time.sleep(WATCHDOG_INTERVAL_S)


_WATCHDOG = _Watchdog()


@dataclass
class _Live:
    store: wasmtime.Store
    instance: Any
    worker: _Worker
    knobs: StoreKnobs  # the store's epoch deadline and fuel, set before every call
    funcs: dict[tuple[str, str], tuple[Func, ExportCall]] = field(default_factory=dict)


class PluginInstance:
    """Serial access to one live instance; recreated after any fault."""

    def __init__(
        self,
        engine: wasmtime.Engine,
        component: Component,
        linker: Linker | HostLinker,
        ticker: EpochTicker,
        limits: InstanceLimits,
        diagnostics: DiagnosticLog,
        fuel_enabled: bool = False,
    ) -> None:
        self._engine = engine
        self._component = component
        self._linker = linker
        # A host linker's imports act on the data of the calling store (pdk/host/linker.py).
        self._store_data = linker.store_data if isinstance(linker, HostLinker) else None
        self._ticker = ticker
        self.limits = limits
        self._diagnostics = diagnostics
        self._fuel_enabled = fuel_enabled
        self._lock = threading.Lock()
        self._live: _Live | None = None
        # Calls abandoned while blocked in a WASI call; their threads still run.
        self._abandoned: list[_Job | _HereCall] = []
        # The `call_here` in progress (None when none), guarded by `_here_lock`.
        self._here: _HereCall | None = None
        self._here_lock = threading.Lock()
        self._watched = False
        # When the running call's epoch deadline falls (monotonic seconds), so that host
        # imports that block (HTTP) can finish before it; None between calls.
        self._deadline_at: float | None = None
        self.instantiations = 0
        self.recycles = 0
        self.calls = 0
        # The epoch ticks of the last deadline armed (the ticker's interval is fixed).
        self._ticks_for: tuple[float, int] = (0.0, 0)

    # -- lifecycle -----------------------------------------------------------------------------

    def _new_store(self) -> wasmtime.Store:
        store = wasmtime.Store(self._engine, self._store_data)
        wasi = wasmtime.WasiConfig()  # empty: no preopens, env, args or sockets
        out, err = StdioCapture(self._diagnostics, "stdout"), StdioCapture(self._diagnostics, "stderr")
        wasi.stdout_custom = out.write
        wasi.stderr_custom = err.write
        store.set_wasi(wasi)  # without this, add_wasip2 aborts the whole process
        limits = self.limits
        store.set_limits(
            memory_size=limits.memory_bytes_per_memory,
            memories=limits.memories,
            tables=limits.tables,
            table_elements=limits.table_elements,
            instances=limits.core_instances,
        )
        if self._fuel_enabled:
            store.set_fuel(self.limits.fuel or 2**62)
        return store

    def _instantiate(self) -> _Live:
        self._abandoned = [job for job in self._abandoned if not job.ended()]
        if len(self._abandoned) >= ABANDONED_CALLS_MAX:
            raise GuestFault(
                "instantiate",
                f"{len(self._abandoned)} earlier calls of this plugin are still blocked past their deadline; "
                "it cannot be instantiated again until they end",
            )
        store = self._new_store()
        store.set_epoch_deadline(self._ticker.ticks_for(INSTANTIATE_DEADLINE_S))
        worker = _Worker(f"yoi-guest-{id(self):x}")

        def instantiate() -> Any:
            return self._linker.instantiate(store, self._component)

        job = worker.submit(instantiate)
        if not job.done.wait(INSTANTIATE_DEADLINE_S + BLOCKED_CALL_GRACE_S):
            worker.retire()
            self._abandoned.append(job)
            raise GuestFault("instantiate", "could not instantiate: the component blocked past the instantiation deadline")
        if job.error is not None:
            worker.retire()
            exc, job.error, job.fn = job.error, None, _no_job
            # Drop every reference to the failed store before raising: a traceback kept
            # by the caller would otherwise keep its (possibly large) memories alive.
            del store  # clears the closure cell too
            if not isinstance(exc, (wasmtime.Trap, wasmtime.WasmtimeError)):
                raise exc
            first_line = (str(exc).strip().splitlines() or [""])[0]
            del exc
            raise GuestFault("instantiate", redact_bounded(f"could not instantiate: {first_line}", 512)) from None
        self.instantiations += 1
        return _Live(store, job.result, worker, StoreKnobs(store))

    def _func(self, live: _Live, iface: str, name: str) -> tuple[Func, ExportCall]:
        key = (iface, name)
        found = live.funcs.get(key)
        if found is None:
            iface_idx = live.instance.get_export_index(live.store, iface)
            idx = live.instance.get_export_index(live.store, name, iface_idx) if iface_idx is not None else None
            func = live.instance.get_func(live.store, idx) if idx is not None else None
            if func is None:
                raise GuestFault("trap", f"the component does not export {iface}#{name}")
            # Converters are compiled once per component function (pdk/host/_fastcall.py).
            found = (func, bind_export(self._component, key, func, live.store))
            live.funcs[key] = found
        return found

    def _drop_live(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.worker.retire()

    def discard(self) -> None:
        """Drop the live instance (its store is freed); the next call makes a new one."""
        self._drop_live()

    def close(self) -> None:
        with self._lock:
            self._drop_live()

    @property
    def blocked_calls(self) -> int:
        """Abandoned calls whose threads are still blocked in the guest."""
        return sum(1 for job in self._abandoned if not job.ended())

    # -- calls ---------------------------------------------------------------------------------

    def _arm(self, iface: str, name: str, args: tuple[Any, ...], deadline_s: float | None) -> tuple[_Live, ExportCall, Any, float]:
        """(`_lock` held) Ready one call: the live instance (instantiated if need be), the
        export's codec, the lowered arguments and the deadline in seconds; the store's
        epoch deadline and fuel are set and the call is counted."""
        if self._live is None:
            self._live = self._instantiate()
        live = self._live
        found = live.funcs.get((iface, name))
        codec = found[1] if found is not None else self._func(live, iface, name)[1]
        raw_args = codec.lower(*args)
        deadline = deadline_s or self.limits.deadline_s
        armed, ticks = self._ticks_for
        if armed != deadline:
            ticks = self._ticker.ticks_for(deadline)
            self._ticks_for = (deadline, ticks)
        live.knobs.set_epoch_deadline(ticks)  # the C API directly (no wasmtime-py wrapper per call)
        if self._fuel_enabled:
            live.knobs.set_fuel(self.limits.fuel or 2**62)
        self.calls += 1
        return live, codec, raw_args, deadline

    def _raise_failure(self, exc: BaseException) -> NoReturn:
        """(`_lock` held) Raise what a failed call raises: a trap recycles the instance
        and becomes a typed `GuestFault`; anything else is raised as it is."""
        if isinstance(exc, (wasmtime.Trap, wasmtime.WasmtimeError)):
            self._drop_live()
            self.recycles += 1
            raise classify_trap(exc) from None
        raise exc

    def call(self, iface: str, name: str, *args: Any, deadline_s: float | None = None) -> Any:
        """Call an export with plain arguments; returns the plain result.

        Raises `GuestFault` when the guest faulted (the instance is then replaced) and
        `CodecError` when the arguments do not fit the function type (nothing ran)."""
        with self._lock:
            live, codec, raw_args, deadline = self._arm(iface, name, args, deadline_s)
            self._deadline_at = time.monotonic() + deadline

            def run() -> Any:
                return codec.invoke(raw_args)  # the call and post_return

            try:
                job = live.worker.submit(run)
                if not job.done.wait(deadline + BLOCKED_CALL_GRACE_S):
                    # Blocked in a WASI call past its deadline: the epoch cannot stop it.
                    self._abandoned.append(job)
                    self._drop_live()
                    self.recycles += 1
                    raise GuestFault("timeout", "the call exceeded its deadline while blocked in the guest and was abandoned")
                if job.error is not None:
                    self._raise_failure(job.error)
                raw = job.result
            finally:
                self._deadline_at = None
            return codec.lift(raw)

    def call_here(
        self, iface: str, name: str, *args: Any, deadline_s: float | None = None, on_abandon: Callable[[], None] | None = None
    ) -> Any:
        """`call` on the calling thread: the same results and faults, no handoff.

        A guest blocked in a WASI call past the deadline + `BLOCKED_CALL_GRACE_S` is
        abandoned by the watchdog: the instance is discarded (counted in `recycles`
        and `blocked_calls`), the next caller gets a fresh one, and `on_abandon()` is
        called on the watchdog's thread (it must not block). This thread, when the
        guest lets it go, gets `CallAbandoned`."""
        self._lock.acquire()
        owned = True  # whether this thread still owns `_lock` (the watchdog may take it over)
        try:
            live, codec, raw_args, deadline = self._arm(iface, name, args, deadline_s)
            now = time.monotonic()
            self._deadline_at = now + deadline
            here = _HereCall(now + deadline + BLOCKED_CALL_GRACE_S, on_abandon)
            self._here = here
            if not self._watched:
                self._watched = True
                _WATCHDOG.watch(self)
            error: BaseException | None = None
            raw: Any = None
            try:
                raw = codec.invoke(raw_args)  # the call and post_return
            except BaseException as exc:  # judged below, once we know who owns the instance
                error = exc
            with self._here_lock:
                here.ended_flag = True
                if here.abandoned:
                    owned = False  # the watchdog released `_lock` for us and moved on
                else:
                    self._here = None
            if not owned:
                del error, raw
                raise CallAbandoned("the call was abandoned while blocked in the guest")
            self._deadline_at = None
            if error is not None:
                self._raise_failure(error)
            return codec.lift(raw)
        finally:
            if owned:
                self._lock.release()

    def _abandon_if_blocked(self, now: float) -> Callable[[], None] | None:
        """(watchdog thread) Abandon the `call_here` in progress when it is past its
        bound: the instance is discarded and its lock, held by the blocked thread,
        released on its behalf. Returns the caller's `on_abandon` (None: nothing done)."""
        with self._here_lock:
            here = self._here
            if here is None or here.ended_flag or now < here.abandon_at:
                return None
            here.abandoned = True
            self._here = None
        # The blocked thread holds `_lock` and will not touch the instance again.
        self._abandoned.append(here)
        self._drop_live()
        self.recycles += 1
        self._deadline_at = None
        self._lock.release()
        return here.on_abandon or _no_job

    def remaining_s(self) -> float | None:
        """Seconds left before the running call's deadline (None when no call runs).
        Read by host imports, which run on the calling thread inside the call."""
        deadline_at = self._deadline_at
        return None if deadline_at is None else deadline_at - time.monotonic()

    def warm(self) -> float:
        """Instantiate now (not on the first call); returns the seconds it took."""
        started = time.perf_counter()
        with self._lock:
            if self._live is None:
                self._live = self._instantiate()
        return time.perf_counter() - started
