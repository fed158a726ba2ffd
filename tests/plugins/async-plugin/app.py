"""async-plugin: every entry point is `async def`. Awaiting other coroutines and
`asyncio.sleep(0)` works inside the component; a timed sleep needs an event loop,
which a component has not, and is a typed `unsupported` error."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pdk import Event, Plugin, commands

plugin = Plugin()


@dataclass
class Config:
    prefix: str = "done"


@dataclass
class State:
    prefix: str
    handled: int = 0


async def _shout(text: str) -> str:
    await asyncio.sleep(0)
    return text.upper()


@plugin.tool
async def shout(text: str, times: int = 1) -> dict[str, str]:
    """Upper-case `text`, repeated `times` times."""
    loud = await _shout(text)
    return {"text": " ".join([loud] * times)}


@plugin.tool
async def nap(seconds: float) -> str:
    """Sleep on an event loop (there is none in a component)."""
    await asyncio.sleep(seconds)
    return "slept"


@plugin.on_start
async def start(config: Config) -> State:
    await asyncio.sleep(0)
    return State(prefix=config.prefix)


@plugin.status
async def status(state: State) -> dict[str, int]:
    return {"handled": state.handled}


@plugin.on_event("jobs", kinds=["job"])
async def on_job(state: State, event: Event) -> list[object]:
    state.handled += 1
    loud = await _shout(event.text or "")
    return [commands.emit("done", {"text": f"{state.prefix}: {loud}", "handled": state.handled})]
