"""slow-service: handlers that spin (busy-wait, so the epoch deadline can still stop them)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pdk import Event, Plugin, Status, commands

plugin = Plugin()


@dataclass
class Config:
    tick_spin_ms: int = 0


@dataclass
class State:
    config: Config
    jobs: int = 0
    ticks: int = 0


def spin(ms: int) -> None:
    end = time.monotonic() + ms / 1000
    while time.monotonic() < end:
        pass


@plugin.on_start
def start(config: Config) -> State:
    return State(config=config)


@plugin.on_event("work", kinds=["job"])
def on_job(state: State, event: Event) -> list[object]:
    data = event.json if isinstance(event.json, dict) else {}
    spin(int(data.get("spin_ms", 0)))
    state.jobs += 1
    return [commands.emit("job.done", {"n": data.get("n"), "attempt": event.attempt})]


@plugin.on_event("beat", kinds=["tick"])
def on_tick(state: State, event: Event) -> list[object]:
    spin(state.config.tick_spin_ms)
    state.ticks += 1
    return [commands.emit("beat.tick", {"ticks": state.ticks})]


@plugin.status
def status(state: State) -> Status:
    if state is None:
        return Status(healthy=False, data={"running": False})
    return Status(healthy=True, data={"jobs": state.jobs, "ticks": state.ticks})
