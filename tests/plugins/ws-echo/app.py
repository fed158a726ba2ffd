"""ws-echo: echoes text and binary messages back on the connection they came from,
records every event it sees (emit topic "seen"), and sends on request (`control`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pdk import Event, Plugin, Status, commands

plugin = Plugin()


@dataclass
class Config:
    delay_ms: int = 0  # busy time per data message: a slow plugin
    reply: bool = True  # echo data messages back (`seq:N <padding>` is answered `ack:N`)
    record: bool = True  # emit every event on topic "seen"


@dataclass
class State:
    config: Config
    counts: dict[str, int] = field(default_factory=dict)
    last_seq: int = -1
    out_of_order: int = 0


@plugin.on_start
def start(config: Config) -> State:
    return State(config=config)


def _describe(event: Event) -> dict[str, object]:
    seen: dict[str, object] = {"ingress": event.ingress, "source": event.source, "kind": event.kind, "payload_kind": event.payload_kind}
    if event.text is not None:
        seen["text"] = event.text
    elif event.binary is not None:
        seen["binary_hex"] = event.binary.hex()
    elif event.close is not None:
        seen["code"] = event.close.code
        seen["reason"] = event.close.reason
    elif event.failure is not None:
        seen["failure"] = event.failure
    elif event.payload_kind == "json":
        seen["json"] = event.json
    return seen


def _busy(ms: int) -> None:
    until = time.monotonic() + ms / 1000
    while time.monotonic() < until:
        pass


@plugin.on_event("chat")
def on_chat(state: State, event: Event) -> list[object]:
    state.counts[event.kind] = state.counts.get(event.kind, 0) + 1
    out: list[object] = []
    if state.config.record:
        out.append(commands.emit("seen", _describe(event)))
    if event.kind in ("text", "binary"):
        if state.config.delay_ms:
            _busy(state.config.delay_ms)
        text = event.text
        if text is not None and text.startswith("seq:"):
            seq = int(text[4:].split(" ", 1)[0])
            if seq != state.last_seq + 1:
                state.out_of_order += 1
            state.last_seq = seq
        if state.config.reply:
            if text is not None and " " in text and text.startswith("seq:"):
                out.append(event.reply_text("ack:" + text[4:].split(" ", 1)[0]))
            elif text is not None:
                out.append(event.reply_text(text))
            else:
                out.append(event.reply_binary(event.binary or b""))
    return out


@plugin.on_event("aux")
def on_aux(state: State, event: Event) -> list[object]:
    state.counts["aux:" + event.kind] = state.counts.get("aux:" + event.kind, 0) + 1
    return [commands.emit("seen", _describe(event))] if state.config.record else []


@plugin.on_event("control", kinds=["say"])
def on_say(state: State, event: Event) -> list[object]:
    return [commands.websocket_send("echo", text=event.text or "")]


@plugin.status
def status(state: State) -> Status:
    if state is None:
        return Status(healthy=False)
    return Status(healthy=True, data={"counts": state.counts, "last_seq": state.last_seq, "out_of_order": state.out_of_order})
