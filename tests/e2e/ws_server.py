"""The WebSocket server of the driver's end-to-end tests: `pdk.testing.WebSocketTestServer`
as those tests need it. It records every connection and message and never answers
(the plugin under test answers), takes messages of any size, uncompressed; a
`handler` (`async fn(server, connection)`) replaces that per connection, and
`stop()` / `start()` restart it on the same port."""

from __future__ import annotations

from websockets.asyncio.server import ServerConnection

from pdk.testing import WebSocketTestServer
from pdk.testing.websocket_server import Handler


def ws_server(handler: Handler | None = None, *, port: int = 0) -> WebSocketTestServer:
    return WebSocketTestServer(port=port, echo=False, handler=handler, max_size=None, compression=None)


async def collect(server: WebSocketTestServer, ws: ServerConnection) -> None:
    """A handler that records every message and never answers (the default behaviour),
    for handlers that do something else first."""
    async for message in ws:
        server.record(message)
