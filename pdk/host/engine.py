"""Engine configuration: one place that decides how wasmtime compiles and limits code."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from importlib import metadata

import wasmtime

from pdk.limits import EPOCH_TICK_S


@dataclass(frozen=True)
class EngineSettings:
    """Everything about the engine that changes compiled code (and so keys the cache)."""

    consume_fuel: bool = False

    @property
    def fingerprint(self) -> str:
        return f"wasmtime={metadata.version('wasmtime')};epoch=1;fuel={int(self.consume_fuel)}"


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


def make_engine(settings: EngineSettings) -> wasmtime.Engine:
    config = wasmtime.Config()
    config.epoch_interruption = True
    config.consume_fuel = settings.consume_fuel
    config.wasm_component_model = True
    return wasmtime.Engine(config)
