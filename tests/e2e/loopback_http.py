"""The HTTP API the host's `request` tests talk to: routes scripted on a
`pdk.testing.HttpTestServer` (a real server on a loopback address, in a thread, that
records every request; tests use `count` to prove that a denied call made no request
at all). Routes (the query string is ignored for routing):

    /api/json              200 JSON {"hello": "world", "path": <target as received>}
    /api/echo              200 JSON {"method", "path", "body", "header_names"}; header
                           *names* only, so a secret can never come back in a response
    /api/big?bytes=N       200 with N bytes of "x" and a Content-Length
    /api/stream?bytes=N    200 with N bytes of "y", no Content-Length (read until close)
    /api/slow              200 after the server is closed (the responder waits)
    /api/drip              200 headers, then one byte every 50 ms until the server closes
    /api/redirect          302 to /admin/secret on the same server
    /api/status?code=N     status N
    /api/many-headers      200 with 80 X-H-<i> headers
    /admin/secret          200 "admin area"
    anything else          404

Every responder that waits, waits on `server.closing` (set by `close()`), so no test
waits for a sleeping thread.
"""

from __future__ import annotations

import json
import ssl
import urllib.parse
from collections.abc import Iterator

from pdk.testing import HttpTestServer, RecordedRequest, ScriptedResponse

TEXT = (("content-type", "text/plain"),)


def _json(doc: object) -> ScriptedResponse:
    return ScriptedResponse(200, json.dumps(doc).encode(), (("content-type", "application/json"),))


def _query(request: RecordedRequest, name: str, default: str) -> str:
    return dict(urllib.parse.parse_qsl(request.query)).get(name, default)


def api_server(address: str = "127.0.0.1", port: int = 0, *, tls: ssl.SSLContext | None = None) -> HttpTestServer:
    server = HttpTestServer(address=address, port=port, tls=tls)

    def slow(request: RecordedRequest) -> ScriptedResponse:
        server.closing.wait(60)
        return ScriptedResponse(200, b"late", TEXT)

    def drip() -> Iterator[bytes]:
        while not server.closing.wait(0.05):
            yield b"."

    server.respond("/api/json", responder=lambda r: _json({"hello": "world", "path": r.target}))
    server.respond(
        "/api/echo",
        responder=lambda r: _json({"method": r.method, "path": r.target, "body": r.text, "header_names": sorted(r.headers)}),
    )
    server.respond("/api/big", responder=lambda r: ScriptedResponse(200, b"x" * int(_query(r, "bytes", "0")), TEXT))
    server.respond("/api/stream", responder=lambda r: ScriptedResponse(200, stream=[b"y" * int(_query(r, "bytes", "0"))]))
    server.respond("/api/slow", responder=slow)
    server.respond("/api/drip", responder=lambda r: ScriptedResponse(200, stream=drip()))
    server.respond("/api/redirect", status=302, headers={"Location": server.url_for("/admin/secret")})
    server.respond("/api/status", responder=lambda r: ScriptedResponse(int(_query(r, "code", "200")), b"status", TEXT))
    server.respond("/api/many-headers", headers={f"X-H-{i:02d}": str(i) for i in range(80)})
    server.respond("/admin/secret", body="admin area", headers={"content-type": "text/plain"})
    return server
