"""`WebSocketDriver`: every connection a plugin declares, on one background event loop.

    driver = WebSocketDriver(rt, loaded_plugin, grants)   # judges every connection, registers
    driver.start()     # returns at once; dialing happens in the background
    driver.status()    # {connection name: status document}
    driver.stop()      # closes cleanly (1001), emits no events, fails queued sends

Startup never blocks: `start()` creates the loop thread and schedules one task per
allowed connection, so a slow or dead endpoint delays nothing but its own connection.
Denied connections are never dialed; they show as `denied` with the reason.

The constructor registers the driver as the runtime's executor for `websocket_send`
commands (`rt.register_executor("websocket_send", ...)`, called with a `CommandContext`)
and each connection's status as a live source (`rt.register_source("websocket:<name>",
...)`). `send(value)` is the same thing for a plain command value, returning a result dict.

A send waits until the message is on the wire (normally microseconds: it only waits
for the local write buffer), at most `send_timeout_s`; the runtime's dispatcher is
therefore held up only by a peer that stopped reading, and never longer than that.
A plain-TCP send usually does not wait at all: it is written from the sender's thread
(`Connection.send_now`, wire.py), with no hop to the event loop and back.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any

from ..grants import GrantSet
from ..runtime.commands import Execution
from .connection import Connection
from .options import DriverOptions
from .plan import ConnectionPlan, plan_connections, recheck, wanted_kinds
from .send import CLOSED, TIMED_OUT, InvalidSend, SendItem, denied, failed, invalid, parse_send
from .stats import ConnectionStats

COMMAND_KIND = "websocket_send"


class WebSocketDriver:
    def __init__(
        self,
        rt: Any,
        loaded_plugin: Any = None,
        grants: GrantSet | None = None,
        *,
        options: DriverOptions | None = None,
    ) -> None:
        self.rt = rt
        self.plugin = loaded_plugin if loaded_plugin is not None else getattr(rt, "plugin", None)
        self.manifest = self.plugin.manifest if self.plugin is not None else rt.manifest
        if grants is None:
            grants = getattr(self.plugin, "grants", None)
        self.grants: GrantSet = grants if grants is not None else GrantSet.empty("no grants given to the websocket driver")
        self.options = options or DriverOptions()
        self.plans: list[ConnectionPlan] = plan_connections(self.manifest, self.grants)
        kinds = {ingress.name: ingress.event_kinds for ingress in self.manifest.ingresses}
        self.connections: dict[str, Connection] = {}
        for plan in self.plans:
            conn = Connection(
                plan,
                self.grants.websocket_targets,
                wanted_kinds(plan.spec, kinds.get(plan.spec.ingress, ())),
                rt.submit,
                self.options,
                self._on_change,
            )
            if not plan.allowed:
                conn.stats.set_state("denied")
                conn.stats.error(plan.reason)
            self.connections[plan.spec.name] = conn
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._lock = threading.Lock()
        self._last_seen: dict[str, tuple[str, str | None]] = {}
        # Verdicts of `recheck` per connection, for these very manifest and grants
        # objects: both are frozen, so a verdict holds until one of them is replaced.
        self._verdicts: dict[str, tuple[bool, str]] = {}
        self._verdicts_for: tuple[Any, Any] = (self.manifest, self.grants)
        # Registered now, so that a command is never `unsupported` for lack of a
        # driver; before `start()` (and after `stop()`) a send fails as `closed`.
        rt.register_executor(COMMAND_KIND, self._execute_command)
        # A paused reader is woken when an event ends, i.e. when a queue slot is free.
        rt.on_outcome(self._slot_freed)
        # Status is read live: the runtime calls a source entry that is a callable.
        for conn in self.connections.values():
            rt.register_source(conn.spec.source_name, conn.stats.to_json)
            self._on_change(conn.stats)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._loop is not None and not self._stopped

    def start(self) -> None:
        with self._lock:
            if self._loop is not None:
                raise RuntimeError("the websocket driver was already started")
            ready = threading.Event()
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._thread = threading.Thread(target=self._run_loop, args=(loop, ready), name=f"pdk-websocket:{self.manifest.id}", daemon=True)
            self._thread.start()
            ready.wait()
        for conn in self.connections.values():
            if conn.plan.allowed:
                loop.call_soon_threadsafe(conn.start)

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    def stop(self, timeout_s: float | None = None) -> None:
        """Close every connection (1001 going away) without emitting events; fail
        queued sends with `closed`. Idempotent."""
        with self._lock:
            loop, thread = self._loop, self._thread
            if loop is None or self._stopped:
                self._stopped = True
                return
            self._stopped = True
        budget = timeout_s if timeout_s is not None else self.options.close_timeout_s + 2.0
        shutdown = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        try:
            shutdown.result(budget)
        except (concurrent.futures.TimeoutError, Exception):
            pass
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(budget)
        if thread is None or not thread.is_alive():
            loop.close()
        for conn in self.connections.values():
            if conn.stats.state not in ("denied", "failed"):
                conn.stats.set_state("closed")
            self._on_change(conn.stats)

    async def _shutdown(self) -> None:
        await asyncio.gather(*(c.stop() for c in self.connections.values() if c.plan.allowed), return_exceptions=True)

    def _slot_freed(self, outcome: Any) -> None:
        """The runtime's outcome callback (dispatcher thread; must not block). A paused
        reader is woken once half its ingress's queue room is free (or all of it, for
        a room of one), not at every freed slot: it then submits a burst of the frames
        the library holds, one wake-up of the event loop for several events instead of
        one per event. A reader that is never woken still retries after its pause."""
        loop = self._loop
        if loop is None or self._stopped:
            return
        room_left = getattr(self.rt, "room_left", None)
        for conn in self.connections.values():
            if conn.stats.paused and not conn.wake_pending:
                if room_left is not None:
                    free, most = room_left(conn.spec.ingress)
                    if free * 2 < most:
                        continue
                conn.wake_pending = True  # one wake-up per pause (Connection.wake_pending)
                self._call_soon(loop, conn.room_available)

    def _on_change(self, stats: ConnectionStats) -> None:
        """State changes and new errors go to the plugin's (bounded) diagnostics; the
        texts are already redacted."""
        seen = (stats.state, stats.last_error)
        if self._last_seen.get(stats.name) == seen:
            return
        self._last_seen[stats.name] = seen
        notify = getattr(self.rt, "notify_connection", None)  # the runtime's observers (runtime/observer.py)
        if notify is not None:
            notify(stats.to_json())
        diagnostics = getattr(self.plugin, "diagnostics", None)
        if diagnostics is None:
            return
        level = "warn" if stats.state in ("failed", "denied") or (stats.state != "open" and stats.last_error) else "info"
        detail = f": {stats.last_error}" if stats.last_error and stats.state != "open" else ""
        try:
            diagnostics.add("websocket", level, f"connection {stats.name!r} is {stats.state}{detail}")
        except Exception:
            pass

    # -- status ------------------------------------------------------------------------------

    def status(self) -> dict[str, dict[str, Any]]:
        """A fresh snapshot per connection (dict copies are atomic under the GIL)."""
        return {name: conn.stats.to_json() for name, conn in self.connections.items()}

    # -- sends -------------------------------------------------------------------------------

    def _execute_command(self, context: Any) -> Any:
        """The runtime's executor: `(CommandContext) -> Execution`."""
        outcome = self.send(context.value)
        return Execution(outcome["result"], outcome["detail"])

    def send(self, value: Any) -> dict[str, Any]:
        """Execute one `websocket_send` value: check, queue, and wait (at most
        `send_timeout_s`) until the message is on the wire. Never raises; returns
        `{"result", "detail"}` plus `reason` for a failure."""
        try:
            return self._execute_send(value)
        except Exception as exc:  # an executor must answer, not raise
            return failed(CLOSED, f"driver error: {type(exc).__name__}")

    def _execute_send(self, value: Any) -> dict[str, Any]:
        try:
            message = parse_send(value)
        except InvalidSend as exc:
            return invalid(str(exc))
        conn = self.connections.get(message.connection)
        if conn is None:
            known = ", ".join(sorted(self.connections)) or "none"
            return invalid(f"unknown connection {message.connection!r} (declared: {known})")
        if not conn.plan.allowed:
            return denied(f"connection {message.connection!r} is denied: {conn.plan.reason}")
        allowed, reason = self._recheck(conn)
        if not allowed:
            return denied(f"connection {message.connection!r}: {reason}")
        loop = self._loop
        if loop is None or self._stopped or loop.is_closed():
            return failed(CLOSED, "the websocket driver is not running")
        now = conn.send_now(message)  # on this thread, when that is safe (wire.py)
        if isinstance(now, dict):
            return now
        if now is not None:  # part of the frame is out; the loop writes the rest
            try:
                written = now.result(timeout=self.options.send_timeout_s)
            except concurrent.futures.TimeoutError:
                self._call_soon(loop, conn.count_send_failure, TIMED_OUT)
                return failed(TIMED_OUT, f"the send did not complete within {self.options.send_timeout_s:g}s (the peer is not reading)")
            if not written:
                self._call_soon(loop, conn.count_send_failure, CLOSED)
                return failed(CLOSED, "the connection closed while sending")
            return conn.count_sent(message.size)
        gate = conn.gate
        item = SendItem(message, gate.leave_loop_path)
        gate.enter_loop_path()
        try:
            loop.call_soon_threadsafe(conn.offer, item)
        except RuntimeError:
            item.settle()
            return failed(CLOSED, "the websocket driver is not running")
        try:
            return item.future.result(timeout=self.options.send_timeout_s)
        except concurrent.futures.TimeoutError:
            state = item.abandon()
            if state == "done":
                return item.future.result(timeout=1.0)
            self._call_soon(loop, conn.count_send_failure, TIMED_OUT)
            if state == "queued":
                return failed(TIMED_OUT, f"not sent within {self.options.send_timeout_s:g}s; the message was withdrawn")
            return failed(TIMED_OUT, f"the send did not complete within {self.options.send_timeout_s:g}s (the peer is not reading)")

    def _recheck(self, conn: Connection) -> tuple[bool, str]:
        """`recheck` (grants are data and may have changed), remembered per connection
        while `self.manifest` and `self.grants` are the same objects."""
        manifest, grants = self.manifest, self.grants
        verdicts = self._verdicts
        if self._verdicts_for[0] is not manifest or self._verdicts_for[1] is not grants:
            verdicts = self._verdicts = {}
            self._verdicts_for = (manifest, grants)
        verdict = verdicts.get(conn.spec.name)
        if verdict is None:
            verdict = verdicts[conn.spec.name] = recheck(conn.plan, manifest, grants)
        return verdict

    @staticmethod
    def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            pass
