"""A real HTTP server on a loopback address, in a thread, that records every request.

Tests use `count` to prove that a denied call made no request at all. Routes (the
query string is ignored for routing):

    /api/json              200 JSON {"hello": "world", "path": <path as received>}
    /api/echo              200 JSON {"method", "path", "body", "header_names"}; header
                           *names* only, so a secret can never come back in a response
    /api/big?bytes=N       200 with N bytes of "x" and a Content-Length
    /api/stream?bytes=N    200 with N bytes of "y", no Content-Length (read until close)
    /api/slow              200 after the server is closed (the handler waits)
    /api/drip              200 headers, then one byte every 50 ms until the server closes
    /api/redirect          302 to /admin/secret on the same server
    /api/status?code=N     status N
    /api/many-headers      200 with 80 X-H-<i> headers
    anything else          404

Every handler that waits, waits on an event set by `close()`, so no test waits for a
sleeping thread.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


class LoopbackServer:
    def __init__(self, address: str = "127.0.0.1", port: int = 0) -> None:
        self.requests: list[Seen] = []
        self.released = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server._handle(self)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

        self.httpd = ThreadingHTTPServer((address, port), Handler)
        self.httpd.daemon_threads = True
        self.address = address
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="loopback-http", daemon=True)
        self._thread.start()

    # -- test API --------------------------------------------------------------------------------

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.address}:{self.port}{path}"

    def last(self) -> Seen:
        with self._lock:
            return self.requests[-1]

    def close(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- serving -----------------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("content-length") or 0)
        body = h.rfile.read(length) if length else b""
        seen = Seen(h.command, h.path, {k.lower(): v for k, v in h.headers.items()}, body)
        with self._lock:
            self.requests.append(seen)
        parts = urllib.parse.urlsplit(h.path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        route = parts.path
        if route == "/api/json":
            self._send(h, 200, json.dumps({"hello": "world", "path": h.path}).encode(), "application/json")
        elif route == "/api/echo":
            doc = {"method": h.command, "path": h.path, "body": body.decode("utf-8", "replace"), "header_names": sorted(seen.headers)}
            self._send(h, 200, json.dumps(doc).encode(), "application/json")
        elif route == "/api/big":
            self._send(h, 200, b"x" * int(query.get("bytes", "0")), "text/plain")
        elif route == "/api/stream":
            h.send_response(200)
            h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.write(b"y" * int(query.get("bytes", "0")))
            h.close_connection = True
        elif route == "/api/slow":
            self.released.wait(60)
            self._send(h, 200, b"late", "text/plain")
        elif route == "/api/drip":
            h.send_response(200)
            h.send_header("Connection", "close")
            h.end_headers()
            h.close_connection = True
            try:
                while not self.released.wait(0.05):
                    h.wfile.write(b".")
                    h.wfile.flush()
            except OSError:
                pass  # the client hung up: what a timeout looks like from here
        elif route == "/api/redirect":
            h.send_response(302)
            h.send_header("Location", self.url("/admin/secret"))
            h.send_header("Content-Length", "0")
            h.end_headers()
        elif route == "/api/status":
            self._send(h, int(query.get("code", "200")), b"status", "text/plain")
        elif route == "/api/many-headers":
            h.send_response(200)
            for i in range(80):
                h.send_header(f"X-H-{i:02d}", str(i))
            h.send_header("Content-Length", "0")
            h.end_headers()
        elif route == "/admin/secret":
            self._send(h, 200, b"admin area", "text/plain")
        else:
            self._send(h, 404, b"not found", "text/plain")

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", content_type)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(body)
        except OSError:
            pass  # the client gave up (a timeout test)
