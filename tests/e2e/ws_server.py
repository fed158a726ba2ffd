"""A scriptable WebSocket server on 127.0.0.1 for the driver's end-to-end tests.

Runs the `websockets` library on an event loop in a background thread. Every accepted
connection is recorded (path, headers); what the server does with a connection is a
coroutine the test chooses (`behaviour`): `collect` (record, never answer; the
default, since the plugin under test answers) or `echo`. `stop()` closes the server
and its connections (1001); `start()` listens again on the same port, which is how the
tests restart a server."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

Behaviour = Callable[["WsServer", ServerConnection], Awaitable[None]]

# The server's own log lines show the headers it received (secrets included); they are
# the test server's, not the host's, and are kept out of the logs the tests inspect.
_SERVER_LOGGER = logging.getLogger("tests.ws_server")
_SERVER_LOGGER.propagate = False
_SERVER_LOGGER.setLevel(logging.CRITICAL)


@dataclass
class Accepted:
    path: str
    headers: dict[str, str]
    closes: list[tuple[int, str]] = field(default_factory=list)


async def echo(server: WsServer, ws: ServerConnection) -> None:
    async for message in ws:
        server.record(message)
        await ws.send(message)


async def collect(server: WsServer, ws: ServerConnection) -> None:
    async for message in ws:
        server.record(message)


class WsServer:
    def __init__(self, behaviour: Behaviour = collect, *, port: int = 0) -> None:
        self.behaviour = behaviour
        self.accepted: list[Accepted] = []
        self.received: list[str | bytes] = []
        self.clients: list[ServerConnection] = []
        self.cond = threading.Condition()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-ws-server", daemon=True)
        self._thread.start()
        self._server: Server | None = None
        self.port = port
        self.start()

    # -- control (test thread) --------------------------------------------------------------

    def run(self, coro: Any, timeout_s: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def start(self) -> None:
        self._server = self.run(self._serve())
        self.port = int(next(iter(self._server.sockets)).getsockname()[1])

    async def _serve(self) -> Server:
        return await serve(self._handle, "127.0.0.1", self.port, compression=None, max_size=None, close_timeout=1.0, logger=_SERVER_LOGGER)

    def stop(self) -> None:
        """Close the listener and every connection (close code 1001)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            self.run(server.wait_closed())

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def url(self, path: str = "/echo") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def record(self, message: str | bytes) -> None:
        with self.cond:
            self.received.append(message)
            self.cond.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout_s: float = 30.0, what: str = "condition") -> None:
        with self.cond:
            if not self.cond.wait_for(predicate, timeout_s):
                raise TimeoutError(f"timed out waiting for {what}")

    def wait_received(self, count: int, timeout_s: float = 60.0) -> list[str | bytes]:
        self.wait(lambda: len(self.received) >= count, timeout_s, f"{count} messages (have {len(self.received)})")
        with self.cond:
            return list(self.received)

    def wait_accepted(self, count: int, timeout_s: float = 30.0) -> list[Accepted]:
        self.wait(lambda: len(self.accepted) >= count, timeout_s, f"{count} connections (have {len(self.accepted)})")
        with self.cond:
            return list(self.accepted)

    def latest(self) -> ServerConnection:
        with self.cond:
            return self.clients[-1]

    def send(self, message: str | bytes) -> None:
        """Send on the latest connection."""
        self.run(self.latest().send(message))

    # -- server side ------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        entry = Accepted(request.path, {k.lower(): v for k, v in request.headers.raw_items()})
        with self.cond:
            self.accepted.append(entry)
            self.clients.append(ws)
            self.cond.notify_all()
        try:
            await self.behaviour(self, ws)
        except ConnectionClosed:
            pass
        finally:
            await ws.wait_closed()
            with self.cond:
                if ws.close_code is not None:
                    entry.closes.append((ws.close_code, ws.close_reason or ""))
                self.cond.notify_all()
