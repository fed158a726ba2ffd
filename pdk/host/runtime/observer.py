"""`RuntimeObserver`: one protocol for watching a `ServiceRuntime` live.

    class Printer(RuntimeObserver):
        def outcome(self, record): ...
    rt.observe(Printer())

Every method has a no-op default, so an observer overrides what it watches:
lifecycle state changes, final event outcomes, command results, connection state
changes (reported by event sources such as the WebSocket driver through
`ServiceRuntime.notify_connection`) and records added to the plugin's diagnostics
(guest log records, captured stdout/stderr, host notes). The methods are called on
the thread where the change happens (the dispatcher, a source's thread; a
lifecycle change with the runtime's lock held), so they must not block and must
not call back into the runtime: queue what you need and act on it elsewhere (as
`pdk run` does). An observer's exception is swallowed (it cannot stop dispatch).
All arguments are JSON documents (already bounded and redacted). There is no
`unobserve`: an observer hears the runtime until it is dropped with it.
docs/runtime.md ("Watching a runtime live") has a runnable example."""

from __future__ import annotations

from typing import Any


class RuntimeObserver:
    def lifecycle_changed(self, state: str, last_error: dict[str, Any] | None) -> None:
        """The runtime entered `state` (lifecycle.STATES); `last_error` as in status."""

    def outcome(self, record: dict[str, Any]) -> None:
        """An event ended: `handled` or `dead_lettered` (the outcome record)."""

    def command_result(self, result: dict[str, Any]) -> None:
        """A command of a handler's output was judged (CommandResult.to_json())."""

    def connection_changed(self, connection: dict[str, Any]) -> None:
        """A source's connection changed state or error: its status entry (for the
        WebSocket driver `ConnectionStats.to_json()`: `connection` (its name), `state`,
        `url`, `last_error`, ...)."""

    def log_record(self, record: dict[str, Any]) -> None:
        """A diagnostics record was added: {"at_ms", "source", "level", "message"}."""
