"""Engine configuration: one place that decides how wasmtime compiles and limits code.

Two compiler tiers (`Tier`):

- `optimized` - Cranelift, wasmtime's optimizing compiler: slow to compile (an 18.7 MiB
  Python component took 9.8-15.4 s on this machine) and the fastest code.
- `fast` - Winch, wasmtime's baseline compiler: 3-4x quicker to compile, code about as
  fast for a Python guest (whose time goes to the interpreter loop). It is in the C
  library wasmtime-py ships, but `Config.strategy` only accepts "auto"/"cranelift", so
  it is selected through the C API: `wasmtime_strategy_t` is a C enum (AUTO=0,
  CRANELIFT=1, WINCH=2; wasmtime-py's `_bindings.wasmtime_strategy_enum` lists them in
  that order).

A component compiled by one tier loads only into an engine of that tier ("compiled
with Winch calling convention but it is not enabled for the host"), so the tier is in
the engine fingerprint that keys the compile cache. Epoch interruption, fuel and
memory limits hold under both tiers (tests/e2e/test_tier_limits.py).
"""

from __future__ import annotations

import enum
import threading
import time
from dataclasses import dataclass
from importlib import metadata

import wasmtime

from pdk.limits import EPOCH_TICK_S

_STRATEGY_CRANELIFT = 1
_STRATEGY_WINCH = 2


class Tier(str, enum.Enum):
    """Which compiler turns wasm into machine code."""

    FAST = "fast"  # Winch
    OPTIMIZED = "optimized"  # Cranelift

    @property
    def compiler(self) -> str:
        return "Winch" if self is Tier.FAST else "Cranelift"


@dataclass(frozen=True)
class EngineSettings:
    """Everything about the engine that changes compiled code (and so keys the cache)."""

    consume_fuel: bool = False
    tier: Tier = Tier.OPTIMIZED

    @property
    def fingerprint(self) -> str:
        trampolines = ";cranelift=none" if self.tier is Tier.FAST else ""  # see _config
        return f"wasmtime={metadata.version('wasmtime')};epoch=1;fuel={int(self.consume_fuel)}{trampolines};tier={self.tier.value}"

    def with_tier(self, tier: Tier) -> EngineSettings:
        return EngineSettings(consume_fuel=self.consume_fuel, tier=tier)


class EpochTicker:
    """Advances an engine's epoch every `EPOCH_TICK_S` so per-call deadlines fire.

    wasm runs with the GIL released, so this daemon thread keeps ticking while a
    guest spins in an infinite loop."""

    def __init__(self, engine: wasmtime.Engine, interval_s: float = EPOCH_TICK_S) -> None:
        self._engine = engine
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="yoi-epoch-ticker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # Issue ticks by wall-clock time, catching up on wake-ups delayed by CPU load,
        # so a deadline of N ticks stays close to N * interval seconds.
        started = time.monotonic()
        issued = 0
        while not self._stop.wait(self._interval):
            due = int((time.monotonic() - started) / self._interval)
            while issued < due:
                self._engine.increment_epoch()
                issued += 1

    def ticks_for(self, seconds: float) -> int:
        return max(1, round(seconds / self._interval))

    def close(self) -> None:
        self._stop.set()


def _config(settings: EngineSettings, parallel: bool) -> wasmtime.Config:
    config = wasmtime.Config()
    if not parallel:  # not part of an artifact's compatibility: its code loads anywhere
        wasmtime._ffi.wasmtime_config_parallel_compilation_set(config.ptr(), False)
    config.epoch_interruption = True
    config.consume_fuel = settings.consume_fuel
    config.wasm_component_model = True
    if settings.tier is Tier.FAST:
        wasmtime._ffi.wasmtime_config_strategy_set(config.ptr(), _STRATEGY_WINCH)
        # Winch compiles the functions, but the trampolines into and out of wasm (one per
        # function in a table - thousands in libpython) are still Cranelift's: about 40%
        # of a fast-tier compile (perf, text-tools). Unoptimized trampolines cut the
        # compile's CPU by ~10% (median 4.2 -> 3.8 s, 6 runs each); Winch's code is the same.
        config.cranelift_opt_level = "none"
    else:
        wasmtime._ffi.wasmtime_config_strategy_set(config.ptr(), _STRATEGY_CRANELIFT)
    return config


def make_engine(settings: EngineSettings, *, parallel: bool = True) -> wasmtime.Engine:
    """An engine for `settings`. Ask `fast_tier_available()` before asking for the
    fast tier: a wasmtime built without Winch fails only when it compiles.
    `parallel=False` compiles on the calling thread only (background compiles)."""
    return wasmtime.Engine(_config(settings, parallel))


_probe_lock = threading.Lock()
_probe: tuple[bool, str] | None = None


def fast_tier_available() -> tuple[bool, str]:
    """Whether this wasmtime can compile with Winch, and why not when it cannot.

    Probed once per process by compiling a one-function module (milliseconds)."""
    global _probe
    with _probe_lock:
        if _probe is None:
            try:
                engine = make_engine(EngineSettings(tier=Tier.FAST))
                wasmtime.Module(engine, "(module (func (export \"f\") (result i32) i32.const 1))")
                _probe = (True, "")
            except (AttributeError, wasmtime.WasmtimeError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                _probe = (False, first[:200])
        return _probe


class Engines:
    """One engine (and epoch ticker) per tier, made when first asked for.

    A component runs only on the engine that compiled or deserialized it, so a host
    that loads code of both tiers keeps both engines."""

    def __init__(self, consume_fuel: bool = False) -> None:
        self.consume_fuel = consume_fuel
        self._lock = threading.Lock()
        self._engines: dict[Tier, tuple[wasmtime.Engine, EpochTicker]] = {}

    def settings(self, tier: Tier) -> EngineSettings:
        return EngineSettings(consume_fuel=self.consume_fuel, tier=tier)

    def _get(self, tier: Tier) -> tuple[wasmtime.Engine, EpochTicker]:
        with self._lock:
            if tier not in self._engines:
                engine = make_engine(self.settings(tier))
                self._engines[tier] = (engine, EpochTicker(engine))
            return self._engines[tier]

    def engine(self, tier: Tier) -> wasmtime.Engine:
        return self._get(tier)[0]

    def ticker(self, tier: Tier) -> EpochTicker:
        return self._get(tier)[1]

    def close(self) -> None:
        with self._lock:
            for _, ticker in self._engines.values():
                ticker.close()
