"""`WebSocketTestServer`: a loopback WebSocket server (the `websockets` library) for
end-to-end tests.

It records every handshake and message, echoes messages back unless told not to, and
lets a test push messages to, or close, every connected client:

    server = WebSocketTestServer()            # ws://127.0.0.1:<port>
    ...                                       # the host connects to server.url
    server.wait_for_connections(1)
    server.send("hello")                      # to every open client
    assert server.wait_for_messages(1) == ["hello"]   # echoed, and recorded
    server.close()

`handler=fn` replaces echoing: `async fn(server, connection)` runs per connection (call
`server.record(message)` for what it reads). `stop()` closes the listener and every
connection (1001) and `start()` listens again on the same port, which is how a test
restarts a server; each handshake records the close codes its connection saw.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

Message = str | bytes
Handler = Callable[["WebSocketTestServer", ServerConnection], Awaitable[None]]

# The server's own log lines show the headers it received (secrets included): they are
# the test server's, kept out of the logs a test inspects.
_LOGGER = logging.getLogger("pdk.testing.websocket_server")
_LOGGER.propagate = False
_LOGGER.setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class Handshake:
    """One accepted connection's opening request (header names lower-case), and the
    close codes and reasons the connection saw when it ended (`closes`)."""

    path: str
    headers: dict[str, str]
    subprotocol: str | None
    closes: list[tuple[int, str]] = field(default_factory=list, compare=False)


class WebSocketTestServer:
    """A WebSocket server on 127.0.0.1 (an ephemeral port), run by an event loop in a
    background thread (`port=0`: an ephemeral port). `echo=False` records messages
    without answering them; `handler` replaces what is done per connection.
    `max_size` bounds a received message (None: no bound) and `compression` is
    `"deflate"` or None, as in `websockets.serve`."""

    def __init__(
        self,
        *,
        port: int = 0,
        echo: bool = True,
        subprotocols: list[str] | None = None,
        handler: Handler | None = None,
        max_size: int | None = 2**20,
        compression: str | None = "deflate",
    ) -> None:
        self.echo = echo
        self.handler = handler
        self.received: list[Message] = []
        self.handshakes: list[Handshake] = []
        self._clients: set[ServerConnection] = set()
        self._latest: ServerConnection | None = None
        self._cond = threading.Condition()
        self._options: dict[str, Any] = {"subprotocols": subprotocols, "max_size": max_size, "compression": compression}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pdk-websocket-test-server", daemon=True)
        self._thread.start()
        self._server: Server | None = None
        self._port = port
        self.start()

    def run(self, coro: Any, timeout_s: float = 30.0) -> Any:
        """Run a coroutine on the server's event loop (e.g. `server.latest().close(4000)`)
        and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def start(self) -> None:
        """Listen (again, after `stop()`) on the server's port."""
        if self._server is None:
            self._server = self.run(self._start())
            self._port = int(next(iter(self._server.sockets)).getsockname()[1])

    async def _start(self) -> Server:
        return await serve(self._handle, "127.0.0.1", self._port, close_timeout=1.0, logger=_LOGGER, **self._options)

    def stop(self) -> None:
        """Close the listener and every connection (close code 1001); `start()` again."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            self.run(server.wait_closed())

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """`ws://127.0.0.1:<port>/` (any path is accepted)."""
        return f"ws://127.0.0.1:{self.port}/"

    def url_for(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}" + (path if path.startswith("/") else "/" + path)

    @property
    def open_clients(self) -> int:
        with self._cond:
            return len(self._clients)

    def latest(self) -> ServerConnection:
        """The connection accepted last (open or not)."""
        with self._cond:
            if self._latest is None:
                raise LookupError("no connection was accepted yet")
            return self._latest

    def record(self, message: Message) -> None:
        """Record a received message (what a `handler` calls for what it reads)."""
        with self._cond:
            self.received.append(message)
            self._cond.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout_s: float = 10.0, what: str = "a condition") -> None:
        """Block until `predicate()` holds (checked whenever the server records
        something); raises `TimeoutError` naming `what`."""
        with self._cond:
            if not self._cond.wait_for(predicate, timeout_s):
                raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")

    def send(self, message: Message) -> int:
        """Send `message` to every open client; return how many got it."""
        return int(self.run(self._broadcast(message)))

    def close_clients(self, code: int = 1000, reason: str = "") -> None:
        """Close every open connection with a close frame (`code`, `reason`)."""
        self.run(self._close_all(code, reason))

    def wait_for_messages(self, count: int, timeout_s: float = 10.0) -> list[Message]:
        """Block until at least `count` messages arrived; return them all (in order)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.received) >= count, timeout_s):
                raise TimeoutError(f"expected {count} messages, got {len(self.received)} within {timeout_s}s")
            return list(self.received)

    def wait_for_connections(self, count: int, timeout_s: float = 10.0) -> list[Handshake]:
        """Block until at least `count` connections were accepted; return their handshakes."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.handshakes) >= count, timeout_s):
                raise TimeoutError(f"expected {count} connections, got {len(self.handshakes)} within {timeout_s}s")
            return list(self.handshakes)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> WebSocketTestServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- on the server's event loop ---------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None  # set once the handshake succeeded
        handshake = Handshake(request.path, {k.lower(): v for k, v in request.headers.raw_items()}, ws.subprotocol)
        with self._cond:
            self.handshakes.append(handshake)
            self._clients.add(ws)
            self._latest = ws
            self._cond.notify_all()
        try:
            if self.handler is not None:
                await self.handler(self, ws)
            else:
                async for message in ws:
                    self.record(message)
                    if self.echo:
                        await ws.send(message)
        except ConnectionClosed:
            pass
        finally:
            await ws.wait_closed()
            with self._cond:
                self._clients.discard(ws)
                if ws.close_code is not None:
                    handshake.closes.append((ws.close_code, ws.close_reason or ""))
                self._cond.notify_all()

    def _snapshot(self) -> list[ServerConnection]:
        with self._cond:
            return list(self._clients)

    async def _broadcast(self, message: Message) -> int:
        sent = 0
        for ws in self._snapshot():
            try:
                await ws.send(message)
                sent += 1
            except ConnectionClosed:
                pass
        return sent

    async def _close_all(self, code: int, reason: str) -> None:
        await asyncio.gather(*(ws.close(code, reason) for ws in self._snapshot()))
