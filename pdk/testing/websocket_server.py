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
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

Message = str | bytes


@dataclass(frozen=True)
class Handshake:
    """One accepted connection's opening request. Header names are lower-case."""

    path: str
    headers: dict[str, str]
    subprotocol: str | None


class WebSocketTestServer:
    """A WebSocket server on 127.0.0.1 (an ephemeral port), run by an event loop in a
    background thread (`port=0`: an ephemeral port). `echo=False` records messages
    without answering them."""

    def __init__(self, *, port: int = 0, echo: bool = True, subprotocols: list[str] | None = None) -> None:
        self.echo = echo
        self.received: list[Message] = []
        self.handshakes: list[Handshake] = []
        self._clients: set[ServerConnection] = set()
        self._cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pdk-websocket-test-server", daemon=True)
        self._thread.start()
        self._server: Server = self._run(self._start(port, subprotocols))

    def _run(self, coro: Any, timeout_s: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    async def _start(self, port: int, subprotocols: list[str] | None) -> Server:
        return await serve(self._handle, "127.0.0.1", port, subprotocols=subprotocols)  # type: ignore[arg-type]

    @property
    def port(self) -> int:
        return int(next(iter(self._server.sockets)).getsockname()[1])

    @property
    def url(self) -> str:
        """`ws://127.0.0.1:<port>/` (any path is accepted)."""
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def open_clients(self) -> int:
        with self._cond:
            return len(self._clients)

    def send(self, message: Message) -> int:
        """Send `message` to every open client; return how many got it."""
        return int(self._run(self._broadcast(message)))

    def close_clients(self, code: int = 1000, reason: str = "") -> None:
        """Close every open connection with a close frame (`code`, `reason`)."""
        self._run(self._close_all(code, reason))

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
        self._run(self._shutdown())
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
            self._cond.notify_all()
        try:
            async for message in ws:
                with self._cond:
                    self.received.append(message)
                    self._cond.notify_all()
                if self.echo:
                    await ws.send(message)
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                self._clients.discard(ws)

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

    async def _shutdown(self) -> None:
        self._server.close()
        await self._server.wait_closed()
