"""counter-service: lifecycle with typed config, state shared by handlers, commands out."""

from __future__ import annotations

from dataclasses import dataclass, field

from pdk import Event, Plugin, RetryableError, Status, ToolError, commands, log

plugin = Plugin()


@dataclass
class Config:
    greeting: str = "hello"
    fail_on: str | None = None  # a message text that raises a retryable error (for demos)


@dataclass
class State:
    config: Config
    count: int = 0
    ticks: int = 0
    seen: list[str] = field(default_factory=list)


@plugin.on_start
def start(config: Config) -> State:
    log.info(f"counter starting with greeting {config.greeting!r}")
    return State(config=config)


@plugin.on_event("inbox", kinds=["message"])
def on_message(state: State, event: Event) -> list[object]:
    text = event.text if event.text is not None else str(event.json)
    if state.config.fail_on is not None and text == state.config.fail_on:
        raise RetryableError(f"asked to fail on {text!r}")
    if text == "":
        raise ToolError("empty message", code="invalid_input")
    state.count += 1
    state.seen = (state.seen + [text])[-5:]
    return [
        commands.emit("counted", {"count": state.count, "text": text, "attempt": event.attempt}),
        commands.log("info", f"{state.config.greeting}: {text}"),
    ]


@plugin.on_event("ticks")
def on_tick(state: State, event: Event) -> None:
    state.ticks += 1


@plugin.status
def status(state: State) -> Status:
    if state is None:
        return Status(healthy=False, data={"running": False})
    return Status(healthy=True, data={"count": state.count, "ticks": state.ticks, "last": state.seen})


@plugin.on_stop
def stop(state: State) -> None:
    log.info(f"counter stopping after {state.count} messages")
