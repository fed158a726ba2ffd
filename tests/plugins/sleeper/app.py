"""sleeper: exports that block in a WASI call (`time.sleep`), which the epoch deadline
does not interrupt; the host must still answer by the deadline (plus a grace)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pdk import Event, Plugin, Status, commands

plugin = Plugin()


@dataclass
class Config:
    start_nap: float = 0.0
    status_nap: float = 0.0
    stop_nap: float = 0.0


@dataclass
class State:
    config: Config
    handled: int = 0


@plugin.tool
def nap(seconds: float = 0.0) -> dict[str, float]:
    """Sleep for `seconds`, then answer."""
    time.sleep(seconds)
    return {"slept": seconds}


@plugin.on_start
def start(config: Config) -> State:
    time.sleep(config.start_nap)
    return State(config=config)


@plugin.on_event("jobs", kinds=["job"])
def on_job(state: State, event: Event) -> list[object]:
    text = event.text or ""
    if text.startswith("nap:"):
        time.sleep(float(text.split(":", 1)[1]))
    state.handled += 1
    return [commands.emit("sleeper.done", {"text": text, "handled": state.handled})]


@plugin.status
def status(state: State) -> Status:
    if state is None:
        return Status(healthy=False, data={"running": False})
    time.sleep(state.config.status_nap)
    return Status(healthy=True, data={"handled": state.handled})


@plugin.on_stop
def stop(state: State) -> None:
    if state is not None:
        time.sleep(state.config.stop_nap)
