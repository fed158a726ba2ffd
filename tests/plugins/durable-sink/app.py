"""durable-sink: each handled job emits `job.done` with its event id and attempt."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pdk import Event, Plugin, Status, ToolError, commands

plugin = Plugin()


@dataclass
class Config:
    spin_ms: int = 0  # every job spins this long (busy-wait), so a backlog builds up


@dataclass
class State:
    config: Config
    jobs: int = 0


def spin(ms: int) -> None:
    end = time.monotonic() + ms / 1000
    while time.monotonic() < end:
        pass


@plugin.on_start
def start(config: Config) -> State:
    return State(config=config)


@plugin.on_event("jobs", kinds=["job"])
def on_job(state: State, event: Event) -> list[object]:
    data = event.json if isinstance(event.json, dict) else {}
    if data.get("fail"):
        raise ToolError(f"job {data.get('n')} asked to fail", code="invalid_input")
    spin(int(data.get("spin_ms", state.config.spin_ms)))
    state.jobs += 1
    return [commands.emit("job.done", {"event_id": event.id, "n": data.get("n"), "attempt": event.attempt})]


@plugin.status
def status(state: State) -> Status:
    if state is None:
        return Status(healthy=False, data={"running": False})
    return Status(healthy=True, data={"jobs": state.jobs})
