"""One host-owned WebSocket connection: dial, read, heartbeat, write, reconnect.

Runs as one asyncio task on the driver's event loop. The life of a connection:

    connecting --dial ok--> open --lost--> reconnecting --dial ok--> open ...
        |                    |                  |
        +--dial failed-------+------------------+--> (backoff with jitter, retry)
    denied: refused before dialing (grants, or the resolved address); never retried
    failed: a permanent problem (a secret that cannot be read, reconnect disabled)
    closed: stopped by the host, or closed by the peer with a no-reconnect code

Events, in order, on the owning ingress's queue with the connection name as source:
`open` (first open) / `reconnected` (later opens), `text`, `binary`, `close` (code and
reason), `error` (redacted text), `reconnecting` (before each retry). Kinds the
connection does not want are counted as `filtered`, never submitted.

Backpressure without loss: a frame is taken from the library only when the previous
one was accepted by the runtime. While the queue is full the reader holds the current
frame and offers it again when an event of the plugin ends (the runtime's outcome
callback frees a slot) or after a short, growing pause; the library buffers at most
`read_buffer_frames` more and then stops reading the socket, so the peer feels TCP
backpressure. The heartbeat does not count a missing pong against the peer while our
own reader is paused (the pong is stuck behind the frames we are not reading).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ..codec import Case
from ..redact import redact
from pdk.package.targets import DEFAULT_PORTS, Target, check_resolved
from .options import Backoff, DriverOptions
from .plan import ConnectionPlan, url_for_display
from .secrets import SecretUnavailable, handshake_headers
from .send import CLOSED, NOT_CONNECTED, QUEUE_FULL, TOO_LARGE, OutboundMessage, SendItem, failed, sent
from .stats import ConnectionStats
from .wire import RestWritten, SendGate, Wire

# The library's own log lines may show handshake headers at debug level; they are
# silenced here, and everything worth knowing goes to the connection's status.
_WIRE_LOGGER = logging.getLogger("pdk.host.websocket.wire")
_WIRE_LOGGER.setLevel(logging.CRITICAL)
_WIRE_LOGGER.propagate = False

Submit = Callable[..., Any]
Resolver = Callable[[str, int], Sequence[str]]

ABNORMAL_CLOSURE = 1006
NO_STATUS = 1005
MESSAGE_TOO_BIG = 1009
GOING_AWAY = 1001
INTERNAL_ERROR = 1011


class _Denied(Exception):
    pass


class _NoRedirectConnect(connect):
    """A redirect would lead to a URL nobody judged: it is a failed handshake."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


@dataclass(frozen=True)
class CloseResult:
    code: int
    reason: str
    by_peer: bool
    error: str | None = None


class Connection:
    def __init__(
        self,
        plan: ConnectionPlan,
        granted_targets: Sequence[Target],
        wanted: frozenset[str],
        submit: Submit,
        options: DriverOptions,
        on_change: Callable[[ConnectionStats], None],
    ) -> None:
        self.plan = plan
        self.spec = plan.spec
        self.granted_targets = tuple(granted_targets)
        self.wanted = wanted
        self._submit_fn = submit
        self.options = options
        self._on_change = on_change
        self.stats = ConnectionStats(name=self.spec.name, ingress=self.spec.ingress, url=url_for_display(self.spec.url))
        self._heartbeat_error: str | None = None
        self._ws: ClientConnection | None = None
        self._sendq: asyncio.Queue[SendItem] | None = None
        self._wire: Wire | None = None  # while open: sends from any thread (wire.py)
        self.gate = SendGate()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        # A paused reader's wake-up: a flag set when the runtime may have room again,
        # and the future the reader waits on (cheaper than `wait_for` on an Event: no
        # task per pause).
        self._room = False
        self._room_waiter: asyncio.Future[None] | None = None
        # Set (dispatcher thread) when a `room_available` call is on its way to the
        # loop, cleared before each offer: one wake-up of the loop per pause, not one
        # per event that ends before the reader ran (each is a write to the loop's
        # self-pipe, and a chance for the loop thread to take the GIL from the
        # dispatcher).
        self.wake_pending = False

    # -- lifecycle (event loop thread) ------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._main(), name=f"ws:{self.spec.name}")

    async def stop(self) -> None:
        """Close cleanly (1001), without emitting any event. Frames the library had
        already read but nobody delivered are counted in `dropped_at_stop`."""
        self._stopping = True
        ws = self._ws
        if ws is not None:
            try:
                await ws.close(GOING_AWAY, "host stopping")
            except Exception:
                pass
        task = self._task
        if task is not None and not task.done():
            # With a connection, the task ends by itself once the close is done (the
            # reader drains, nothing is submitted); dialing or backing off, it is
            # cancelled at once: stopping never waits for a dead endpoint.
            if ws is not None:
                await asyncio.wait({task}, timeout=self.options.close_timeout_s + 1.0)
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._fail_queued(CLOSED, "the host stopped the connection")
        if self.stats.state not in ("denied", "failed"):
            self.stats.set_state("closed")
        self._publish()

    def _publish(self) -> None:
        self._on_change(self.stats)

    async def _main(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never let a connection die silently
            self.stats.set_state("failed")
            self.stats.error(f"driver error: {type(exc).__name__}: {exc}")
        finally:
            self._publish()

    async def _run(self) -> None:
        backoff = Backoff(self.options.reconnect_initial_s, self.options.reconnect_max_s)
        ever_opened = False
        while not self._stopping:
            try:
                ws = await self._dial()
            except _Denied as denied:
                self.stats.set_state("denied")
                self.stats.error(str(denied))
                return
            except SecretUnavailable as exc:
                # Retrying cannot help until an operator fixes the grant or the file.
                self.stats.set_state("failed")
                await self._event("error", Case("failure", self.stats.error(str(exc))))
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                message = self.stats.error(describe_dial_error(exc))
                self._publish()
                await self._event("error", Case("failure", message))
                if not await self._retry(backoff, ever_opened):
                    return
                continue
            if self._stopping:
                await ws.close(GOING_AWAY, "host stopping")
                return
            opened_at = time.monotonic()
            self._ws = ws
            self._sendq = asyncio.Queue(self.options.send_queue_max)
            self._wire = Wire(ws, self.gate)
            self.stats.connects += 1
            self.stats.subprotocol = ws.subprotocol
            self.stats.set_state("open")
            if ever_opened:
                self.stats.reconnects += 1
            self._publish()
            # Writer and heartbeat run from now on: a send need not wait until the
            # plugin's queue took the `open` event.
            helpers = self._start_helpers(ws)
            await self._event("reconnected" if ever_opened else "open", Case("empty", None))
            ever_opened = True
            result = await self._serve(ws, helpers)
            self._ws = self._wire = None
            self._fail_queued(CLOSED, "the connection closed before the message was sent")
            self._sendq = None
            if self._stopping:
                return
            self.stats.last_close = {"code": result.code, "reason": result.reason, "by_peer": result.by_peer}
            if result.error is not None:
                await self._event("error", Case("failure", self.stats.error(result.error)))
            await self._event("close", Case("closed", {"code": result.code, "reason": result.reason}))
            if time.monotonic() - opened_at >= self.options.stable_after_s:
                backoff.reset()
            if result.by_peer and result.code in self.options.no_reconnect_codes:
                self.stats.set_state("closed")
                self.stats.error(f"the peer closed with code {result.code}; not reconnecting")
                return
            if not await self._retry(backoff, ever_opened):
                return

    async def _retry(self, backoff: Backoff, ever_opened: bool) -> bool:
        """Announce and wait out the next attempt. False when there is none."""
        if self._stopping:
            return False
        if not self.options.reconnect:
            self.stats.set_state("failed" if not ever_opened else "closed")
            return False
        delay = backoff.next_delay()
        self.stats.reconnect_attempts += 1
        self.stats.set_state("reconnecting" if ever_opened else "connecting")
        self._publish()
        info = {"attempt": backoff.attempt, "delay_ms": int(delay * 1000)}
        await self._event("reconnecting", Case("json", json.dumps(info)))
        if self._stopping:
            return False
        await asyncio.sleep(delay)
        return not self._stopping

    # -- dialing ---------------------------------------------------------------------------

    async def _dial(self) -> ClientConnection:
        parts = urllib.parse.urlsplit(self.spec.url)
        host = parts.hostname or ""
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 80)
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), self.options.open_timeout_s
            )
        except socket.gaierror as exc:
            raise OSError(f"cannot resolve {host}: {exc.strerror or exc}") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        # Judged before any byte is sent; the connection then goes to exactly these
        # addresses, so DNS cannot switch answers in between.
        verdict = check_resolved(host, addresses, self.plan.declared_targets, self.granted_targets)
        if not verdict:
            raise _Denied(verdict.reason)
        headers = handshake_headers(self.plan.secrets)
        last: Exception | None = None
        for address in addresses:
            try:
                return await _NoRedirectConnect(
                    self.spec.url,
                    additional_headers=headers or None,
                    subprotocols=list(self.spec.subprotocols) or None,  # type: ignore[arg-type]
                    user_agent_header=self.options.user_agent,
                    proxy=None,  # a proxy from the environment is not a granted target
                    compression=None,
                    open_timeout=self.options.open_timeout_s,
                    ping_interval=None,  # our heartbeat knows about backpressure pauses
                    ping_timeout=None,
                    close_timeout=self.options.close_timeout_s,
                    max_size=self.options.max_message_bytes,
                    max_queue=(self.options.read_buffer_frames, self.options.read_buffer_frames // 2),
                    logger=_WIRE_LOGGER,
                    host=address,
                    port=port,
                )
            except OSError as exc:  # next address; handshake failures are final
                last = exc
        raise last if last is not None else OSError(f"no address for {host}")

    # -- an open connection ----------------------------------------------------------------

    def _start_helpers(self, ws: ClientConnection) -> list[asyncio.Task[None]]:
        self._heartbeat_error = None
        helpers = [asyncio.create_task(self._write(ws))]
        if self.options.ping_interval_s is not None:
            helpers.append(asyncio.create_task(self._heartbeat(ws)))
        return helpers

    async def _serve(self, ws: ClientConnection, helpers: list[asyncio.Task[None]]) -> CloseResult:
        try:
            return await self._read(ws)
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def _read(self, ws: ClientConnection) -> CloseResult:
        stats, submit = self.stats, self._submit_fn
        events, ingress, source = stats.events, self.spec.ingress, self.spec.name
        while True:
            try:
                message = await ws.recv()
            except ConnectionClosed as closed:
                return self._close_result(closed)
            if isinstance(message, str):
                self.stats.frame_in(len(message) if message.isascii() else len(message.encode("utf-8")))
                kind, payload = "text", Case("text", message)
            else:
                data = bytes(message)
                self.stats.frame_in(len(data))
                kind, payload = "binary", Case("binary", data)
            if self._stopping:
                self.stats.dropped_at_stop += 1
                continue
            if kind not in self.wanted:
                ConnectionStats.bump(self.stats.filtered, kind)
                continue
            # The common case inline (no coroutine, no retry loop): the runtime takes it.
            self._room = False
            self.wake_pending = False
            first = submit(ingress, kind, payload, source=source)
            if getattr(first, "reason", None) is None:
                events[kind] = events.get(kind, 0) + 1
                stats.delivered_frames += 1
                continue
            outcome = await self._submit(kind, payload, frame=True, first=first)
            if outcome == "too_large":
                # The plugin's queue takes smaller events than we read: say so with the
                # right code rather than pretend the frame was handled.
                self._heartbeat_error = "an inbound message was larger than the plugin's event payload limit"
                await ws.close(MESSAGE_TOO_BIG, "message too big")

    def _close_result(self, closed: ConnectionClosed) -> CloseResult:
        rcvd, sent = closed.rcvd, closed.sent
        if rcvd is not None and (sent is None or closed.rcvd_then_sent):
            return CloseResult(rcvd.code, rcvd.reason, by_peer=True)
        if sent is not None:
            error = self._heartbeat_error
            if error is None and sent.code == MESSAGE_TOO_BIG:
                error = f"an inbound message exceeded {self.options.max_message_bytes} bytes"
            elif error is None and sent.code not in (1000, GOING_AWAY):
                error = f"closed with code {sent.code}: {sent.reason}"
            return CloseResult(sent.code, sent.reason, by_peer=False, error=error)
        return CloseResult(ABNORMAL_CLOSURE, "", by_peer=False, error="the connection was lost without a close frame")

    async def _heartbeat(self, ws: ClientConnection) -> None:
        interval = self.options.ping_interval_s or 0.0
        timeout = self.options.ping_timeout_s
        while True:
            await asyncio.sleep(interval)
            if self.stats.paused:
                continue  # the peer is alive: we are the ones not reading
            # A peer whose frames we are still reading is alive even when its pong waits
            # behind them (a backlog read slower than it was sent is not a dead link).
            pauses, frames = self.stats.pauses, self.stats.frames_in
            try:
                pong = await ws.ping()
            except ConnectionClosed:
                return
            self.stats.pings += 1
            try:
                await asyncio.wait_for(pong, timeout)
            except ConnectionClosed:
                return
            except TimeoutError:
                if self.stats.paused or self.stats.pauses != pauses or self.stats.frames_in != frames:
                    continue
                self.stats.ping_timeouts += 1
                self._heartbeat_error = f"no pong within {timeout:g}s (heartbeat)"
                await ws.close(INTERNAL_ERROR, "keepalive ping timeout")
                return

    async def _write(self, ws: ClientConnection) -> None:
        queue = self._sendq
        assert queue is not None
        while True:
            item = await queue.get()
            if not item.claim():
                item.settle()
                continue  # its sender gave up waiting (timed_out); never send it late
            try:
                await ws.send(item.message.data)
            except asyncio.CancelledError:
                # The connection ended while this message was being written.
                self._send_failed(item, CLOSED, "the connection closed while sending")
                raise
            except ConnectionClosed:
                self._send_failed(item, CLOSED, "the connection closed while sending")
                continue
            except Exception as exc:
                self._send_failed(item, CLOSED, f"send failed: {type(exc).__name__}")
                continue
            item.finish(self.count_sent(item.message.size))

    # -- sends (any thread) -----------------------------------------------------------------

    def send_now(self, message: OutboundMessage) -> dict[str, Any] | RestWritten | None:
        """Send without the event loop when that is safe (wire.py): the result, or a
        future for a frame whose rest the loop writes; None: use `offer` instead."""
        wire = self._wire
        if wire is None or not wire.direct or self._stopping:
            return None
        data = message.data
        text = isinstance(data, str)
        payload = data.encode("utf-8") if isinstance(data, str) else data
        if len(payload) > self.options.max_send_bytes:
            return None
        taken = wire.send(payload, text)
        if taken is None:
            return None
        if taken is not True:
            return taken  # the driver waits for it, then calls `count_sent`
        return self.count_sent(len(payload))

    def count_sent(self, size: int) -> dict[str, Any]:
        with self.gate.lock:
            self.stats.frame_out(size)
        return sent(size, self.spec.name)

    # -- sends (event loop thread) ----------------------------------------------------------

    def offer(self, item: SendItem) -> None:
        """Queue a message, or fail it at once with a typed reason."""
        size = item.message.size
        if size > self.options.max_send_bytes:
            self._send_failed(item, TOO_LARGE, f"{size} bytes is more than {self.options.max_send_bytes}")
        elif self._stopping:
            self._send_failed(item, CLOSED, f"connection {self.spec.name!r} is stopped")
        elif self.stats.state != "open" or self._sendq is None:
            reason = NOT_CONNECTED if self.stats.state in ("connecting", "reconnecting") else CLOSED
            self._send_failed(item, reason, f"connection {self.spec.name!r} is {self.stats.state}")
        else:
            try:
                self._sendq.put_nowait(item)
            except asyncio.QueueFull:
                self._send_failed(item, QUEUE_FULL, f"{self.options.send_queue_max} messages are already waiting")

    def room_available(self) -> None:
        """(event loop thread) An event of the plugin ended: a paused reader retries."""
        self.wake_pending = False
        self._room = True
        waiter = self._room_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def count_send_failure(self, reason: str) -> None:
        ConnectionStats.bump(self.stats.send_failures, reason)

    def _send_failed(self, item: SendItem, reason: str, detail: str) -> None:
        self.count_send_failure(reason)
        item.finish(failed(reason, detail))

    def _fail_queued(self, reason: str, detail: str) -> None:
        queue = self._sendq
        while queue is not None and not queue.empty():
            item = queue.get_nowait()
            if item.claim():
                self._send_failed(item, reason, detail)
            else:
                item.settle()

    # -- submitting events -----------------------------------------------------------------

    async def _event(self, kind: str, payload: Case) -> None:
        """A control event (open, close, error, ...), if the connection wants it."""
        if self._stopping:
            return
        if kind not in self.wanted:
            ConnectionStats.bump(self.stats.filtered, kind)
            return
        await self._submit(kind, payload, frame=False)

    async def _wait_for_room(self, timeout_s: float) -> bool:
        """Wait until `room_available` (True) or `timeout_s` passed (False)."""
        if self._room:
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._room_waiter = waiter
        timer = loop.call_later(timeout_s, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._room_waiter = None
        return self._room

    async def _submit(self, kind: str, payload: Case, *, frame: bool, first: Any = None) -> str:
        """Offer one event until the runtime takes it. A full queue (or a runtime that
        is restarting) pauses this reader; it never drops the event. Returns
        "accepted", "stopped" or the reason of a permanent refusal. `first`: the
        answer to an offer the caller already made (the reader's inline one)."""
        delay = self.options.retry_initial_s
        paused = False
        try:
            while True:
                if first is not None:
                    result, first = first, None
                else:
                    if self._stopping:
                        if frame:
                            self.stats.dropped_at_stop += 1
                        return "stopped"
                    self._room = False  # before the offer: a slot freed after it still wakes us
                    self.wake_pending = False
                    result = self._submit_fn(self.spec.ingress, kind, payload, source=self.spec.name)
                # Accepted(event_id) | Refused(reason, message, retry_after_s)
                reason: str | None = getattr(result, "reason", None)
                if reason is None:
                    ConnectionStats.bump(self.stats.events, kind)
                    if frame:
                        self.stats.delivered_frames += 1
                    return "accepted"
                if reason not in ("queue_full", "not_running"):
                    ConnectionStats.bump(self.stats.refused, reason)
                    self.stats.error(f"the runtime refused a {kind!r} event: {reason}: {getattr(result, 'message', '')}")
                    if frame:
                        self.stats.refused_frames += 1
                    self._publish()
                    return reason
                if not paused:
                    paused = True
                    self.stats.pauses += 1
                    self.stats.paused = True
                    self.stats.held = frame
                    self._publish()
                # Woken when an event of the plugin ends (a slot is free), or after
                # `delay` at the latest (a runtime without that signal, a restart).
                if not await self._wait_for_room(delay):
                    delay = min(delay * 2, self.options.retry_max_s)
        except asyncio.CancelledError:
            if frame and paused:
                self.stats.dropped_at_stop += 1
            raise
        finally:
            if paused:
                self.stats.paused = False
                self.stats.held = False


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def describe_dial_error(exc: BaseException) -> str:
    """A short, redacted description of why a dial failed."""
    if isinstance(exc, InvalidStatus):
        return f"handshake rejected: HTTP {exc.response.status_code}"
    if isinstance(exc, InvalidHandshake):
        return redact(f"handshake failed: {exc}")
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "timed out opening the connection"
    if isinstance(exc, OSError):
        return redact(f"connect failed: {exc.strerror or exc}")
    return redact(f"connect failed: {type(exc).__name__}: {exc}")
