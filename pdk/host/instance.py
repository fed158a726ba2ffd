"""`PluginInstance`: one sandboxed, limited wasmtime instance of a plugin.

Every call re-arms the epoch deadline (it is relative to the epoch when set), sets
the per-call fuel when fuel is on, and calls `post_return`. A trap, a deadline or
fuel exhaustion poisons a wasmtime instance (every later call fails), so the
instance is dropped and a fresh store + instance is made for the next call.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import wasmtime
from wasmtime.component import Component, Func, Linker

from pdk.limits import CALL_DEADLINE_DEFAULT_S, MEMORY_DEFAULT_BYTES, MEMORY_MIN_BYTES

from .codec import FuncCodec
from .diagnostics import DiagnosticLog, StdioCapture
from .engine import EpochTicker
from .redact import bound_text, redact

INSTANTIATE_DEADLINE_S = 5.0


@dataclass(frozen=True)
class InstanceLimits:
    """Per-instance limits. `fuel` is per call and needs an engine with fuel on."""

    memory_bytes: int = MEMORY_DEFAULT_BYTES
    deadline_s: float = CALL_DEADLINE_DEFAULT_S
    fuel: int | None = None

    def __post_init__(self) -> None:
        if self.memory_bytes < MEMORY_MIN_BYTES:
            raise ValueError(f"memory limit {self.memory_bytes} is below {MEMORY_MIN_BYTES} bytes; a Python guest cannot start")
        if self.deadline_s <= 0:
            raise ValueError("the call deadline must be positive")


class GuestFault(Exception):
    """The guest trapped, ran out of time or fuel; its instance has been discarded.

    `kind` is `timeout`, `fuel`, `trap` or `instantiate`."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


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
    return GuestFault("trap", bound_text(redact(f"the guest trapped: {reason}"), 512))


@dataclass
class _Live:
    store: wasmtime.Store
    instance: Any
    funcs: dict[tuple[str, str], tuple[Func, FuncCodec]]


class PluginInstance:
    """Serial access to one live instance; recreated after any fault."""

    def __init__(
        self,
        engine: wasmtime.Engine,
        component: Component,
        linker: Linker,
        ticker: EpochTicker,
        limits: InstanceLimits,
        diagnostics: DiagnosticLog,
        fuel_enabled: bool = False,
    ) -> None:
        self._engine = engine
        self._component = component
        self._linker = linker
        self._ticker = ticker
        self.limits = limits
        self._diagnostics = diagnostics
        self._fuel_enabled = fuel_enabled
        self._lock = threading.Lock()
        self._live: _Live | None = None
        # When the running call's epoch deadline falls (monotonic seconds), so that host
        # imports that block (HTTP) can finish before it; None between calls.
        self._deadline_at: float | None = None
        self.instantiations = 0
        self.recycles = 0
        self.calls = 0

    # -- lifecycle -----------------------------------------------------------------------------

    def _new_store(self) -> wasmtime.Store:
        store = wasmtime.Store(self._engine)
        wasi = wasmtime.WasiConfig()  # empty: no preopens, env, args or sockets
        out, err = StdioCapture(self._diagnostics, "stdout"), StdioCapture(self._diagnostics, "stderr")
        wasi.stdout_custom = out.write
        wasi.stderr_custom = err.write
        store.set_wasi(wasi)  # without this, add_wasip2 aborts the whole process
        store.set_limits(memory_size=self.limits.memory_bytes)
        if self._fuel_enabled:
            store.set_fuel(self.limits.fuel or 2**62)
        return store

    def _instantiate(self) -> _Live:
        store = self._new_store()
        store.set_epoch_deadline(self._ticker.ticks_for(INSTANTIATE_DEADLINE_S))
        try:
            instance = self._linker.instantiate(store, self._component)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            raise GuestFault("instantiate", bound_text(redact(f"could not instantiate: {str(exc).strip().splitlines()[0]}"), 512)) from None
        self.instantiations += 1
        return _Live(store, instance, {})

    def _func(self, live: _Live, iface: str, name: str) -> tuple[Func, FuncCodec]:
        key = (iface, name)
        found = live.funcs.get(key)
        if found is None:
            iface_idx = live.instance.get_export_index(live.store, iface)
            idx = live.instance.get_export_index(live.store, name, iface_idx) if iface_idx is not None else None
            func = live.instance.get_func(live.store, idx) if idx is not None else None
            if func is None:
                raise GuestFault("trap", f"the component does not export {iface}#{name}")
            found = (func, FuncCodec(func, live.store))
            live.funcs[key] = found
        return found

    def discard(self) -> None:
        """Drop the live instance (its store is freed); the next call makes a new one."""
        self._live = None

    def close(self) -> None:
        with self._lock:
            self._live = None

    # -- calls ---------------------------------------------------------------------------------

    def call(self, iface: str, name: str, *args: Any, deadline_s: float | None = None) -> Any:
        """Call an export with plain arguments; returns the plain result.

        Raises `GuestFault` when the guest faulted (the instance is then replaced) and
        `CodecError` when the arguments do not fit the function type (nothing ran)."""
        with self._lock:
            if self._live is None:
                self._live = self._instantiate()
            live = self._live
            func, codec = self._func(live, iface, name)
            raw_args = codec.encode_params(*args)
            deadline = deadline_s or self.limits.deadline_s
            live.store.set_epoch_deadline(self._ticker.ticks_for(deadline))
            if self._fuel_enabled:
                live.store.set_fuel(self.limits.fuel or 2**62)
            self.calls += 1
            self._deadline_at = time.monotonic() + deadline
            try:
                raw = func(live.store, *raw_args)
                func.post_return(live.store)
            except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
                self._live = None
                self.recycles += 1
                raise classify_trap(exc) from None
            finally:
                self._deadline_at = None
            return codec.decode_result(raw)

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
