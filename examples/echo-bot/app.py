"""echo-bot: answers each chat message on the connection it came from, counts them in
its state, and reports the count (and whether it is connected) in its status.

The connection is the host's: the bot sees `open`/`reconnected` when it is up,
`close`/`reconnecting`/`error` when it is not, and `text` for each message."""

from __future__ import annotations

from dataclasses import dataclass

from pdk import Event, Plugin, Status, log

plugin = Plugin()


@dataclass
class Config:
    prefix: str = "echo"  # how replies start
    greet: bool = True  # say hello whenever the connection (re)opens


@dataclass
class State:
    config: Config
    answered: int = 0
    connected: bool = False
    reconnects: int = 0
    last: str | None = None


@plugin.on_start
def start(config: Config) -> State:
    return State(config=config)


@plugin.on_event("chat", kinds=["text"])
def on_message(state: State, event: Event) -> list[object]:
    text = event.text or ""
    if text.startswith(state.config.prefix + " #"):
        return []  # our own reply, broadcast back by the chat: do not answer it
    state.answered += 1
    state.last = text[:200]
    return [event.reply_text(f"{state.config.prefix} #{state.answered}: {text}")]


@plugin.on_event("chat", kinds=["open", "reconnected", "close", "reconnecting", "error"])
def on_connection(state: State, event: Event) -> list[object]:
    if event.kind in ("open", "reconnected"):
        state.connected = True
        if event.kind == "reconnected":
            state.reconnects += 1
        log.info(f"chat {event.kind}; answered {state.answered} so far")
        if state.config.greet:
            return [event.reply_text(f"{state.config.prefix} bot here ({state.answered} answered so far)")]
    elif event.kind == "close" and event.close is not None:
        state.connected = False
        log.info(f"chat closed: {event.close.code} {event.close.reason}")
    elif event.kind == "error":
        state.connected = False
        log.warn(f"chat error: {event.failure}")
    return []


@plugin.status
def status(state: State) -> Status:
    if state is None:
        return Status(healthy=False, data={"running": False})
    return Status(
        healthy=state.connected,
        data={"answered": state.answered, "connected": state.connected, "reconnects": state.reconnects, "last": state.last},
    )
