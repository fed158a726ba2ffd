"""The runtime's view of the plugin's exports: `start`, `handle`, `status`, `stop`.

`WasmGuest` calls a real component instance. Unit tests of the queue logic give
`ServiceRuntime` a fake with the same shape. Calls raise `GuestFault` when the guest
trapped or ran out of time (the instance has then already been discarded, so the
next call instantiates afresh); everything else comes back as a value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..codec import CodecError, Err, Ok
from ..redact import bound_text
from .plugin import PluginExports

LIFECYCLE_IFACE = "yoi:plugin/lifecycle@2.0.0"
EVENTS_IFACE = "yoi:plugin/events@2.0.0"
# Worlds whose component exports the lifecycle interface.
LIFECYCLE_WORLDS = frozenset({"service", "plugin"})
EVENT_WORLDS = frozenset({"service", "ingress", "plugin"})


class Guest(Protocol):
    has_lifecycle: bool

    @property
    def recycles(self) -> int:
        """How many times the instance was discarded after a fault (any caller's)."""
        ...

    def start(self, config_json: str) -> Ok[Any] | Err[Any]: ...

    def handle(self, event: dict[str, Any]) -> Ok[Any] | Err[Any]: ...

    def status(self) -> dict[str, Any]: ...

    def stop(self) -> Ok[Any] | Err[Any]: ...

    def warm(self) -> None: ...

    def discard(self) -> None: ...


def codec_err(exc: CodecError) -> Err[dict[str, Any]]:
    """A value that did not fit the contract becomes a permanent, typed error."""
    return Err({"code": "invalid_output", "message": bound_text(f"contract mismatch: {exc}", 1024), "details_json": None, "retryable": False})


class WasmGuest:
    """Calls into one instance (`PluginInstance`). Not thread-safe by design: only the
    runtime's dispatcher thread calls it (see `ServiceRuntime`).

    `handle` runs the guest on the dispatcher thread itself (`PluginInstance.call_here`,
    the hot path: no handoff to the instance's worker thread); when that call is
    abandoned blocked in the guest, `on_abandon` (set by the dispatcher) is called and
    the dispatcher thread gets `CallAbandoned` once the guest lets it go."""

    def __init__(self, instance: PluginExports, world: str, deadline_s: float | None = None) -> None:
        if world not in EVENT_WORLDS:
            raise ValueError(f"world {world!r} handles no events")
        self.instance = instance
        self.has_lifecycle = world in LIFECYCLE_WORLDS
        self.deadline_s = deadline_s
        self.on_abandon: Callable[[], None] | None = None
        self._call_here = getattr(instance, "call_here", None)

    @property
    def recycles(self) -> int:
        return self.instance.recycles

    def _call(self, iface: str, name: str, *args: Any) -> Any:
        try:
            return self.instance.call(iface, name, *args, deadline_s=self.deadline_s)
        except CodecError as exc:
            return codec_err(exc)

    def start(self, config_json: str) -> Ok[Any] | Err[Any]:
        result: Ok[Any] | Err[Any] = self._call(LIFECYCLE_IFACE, "start", config_json)
        return result

    def handle(self, event: dict[str, Any]) -> Ok[Any] | Err[Any]:
        call_here = self._call_here
        if call_here is None or self.on_abandon is None:
            result: Ok[Any] | Err[Any] = self._call(EVENTS_IFACE, "handle", event)
            return result
        try:
            here: Ok[Any] | Err[Any] = call_here(EVENTS_IFACE, "handle", event, deadline_s=self.deadline_s, on_abandon=self.on_abandon)
        except CodecError as exc:
            return codec_err(exc)
        return here

    def status(self) -> dict[str, Any]:
        value = self._call(LIFECYCLE_IFACE, "status")
        if isinstance(value, Err):
            return {"healthy": False, "data_json": None}
        status: dict[str, Any] = value
        return status

    def stop(self) -> Ok[Any] | Err[Any]:
        result: Ok[Any] | Err[Any] = self._call(LIFECYCLE_IFACE, "stop")
        return result

    def warm(self) -> None:
        self.instance.warm()

    def discard(self) -> None:
        # The contract says the instance is discarded after `stop`; a fresh one is
        # made by the next call (the next `start`).
        self.instance.close()
