"""`HttpTestServer`: a loopback HTTP server for end-to-end tests.

It records every request and answers with scripted responses (404 for anything not
scripted), so a test can check what a plugin's `http-request` commands or `request`
imports really sent:

    server = HttpTestServer()
    server.respond("/v1/items", json={"items": []})
    ...                                   # the plugin calls f"{server.url}/v1/items"
    [request] = server.wait_for(1)
    assert request.method == "GET"
    server.close()

A responder computes an answer per request (`respond(path, responder=fn)`); it may wait
for `server.closing` (set by `close()`) to model a server that never answers in time,
and a `ScriptedResponse` with `stream` sends its body in chunks without a
Content-Length (the client reads until the connection closes). `address` binds another
loopback address (e.g. 127.0.0.2); `tls` serves HTTPS with a server-side SSL context.
"""

from __future__ import annotations

import json as _json
import ssl
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import urlsplit

ANY_METHOD = "*"
_MAX_BODY = 16 << 20


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it. Header names are lower-case."""

    method: str
    path: str  # the path without the query string
    query: str
    headers: dict[str, str]
    body: bytes
    target: str = ""  # the request target exactly as received (path and query)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return _json.loads(self.body)


@dataclass(frozen=True)
class ScriptedResponse:
    """`stream`: chunks sent one by one (flushed) after the headers, with no
    Content-Length and `Connection: close`; `body` is then ignored."""

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    stream: Iterable[bytes] | None = None


Responder = Callable[[RecordedRequest], ScriptedResponse]


def _response(status: int, body: bytes | str | None, json: Any, headers: dict[str, str] | None) -> ScriptedResponse:
    pairs = dict(headers or {})
    if json is not None:
        raw = _json.dumps(json).encode("utf-8")
        pairs.setdefault("content-type", "application/json")
    else:
        raw = body.encode("utf-8") if isinstance(body, str) else (body or b"")
    return ScriptedResponse(status, raw, tuple(pairs.items()))


class HttpTestServer:
    """An HTTP/1.1 server on 127.0.0.1 (an ephemeral port) in a background thread.

    `requests` lists every request received, in arrival order. `port=0` picks an
    ephemeral port; `address` another loopback address; `tls` a server-side SSL
    context (HTTPS)."""

    def __init__(self, *, port: int = 0, address: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[RecordedRequest] = []
        self.address = address
        self.closing = threading.Event()  # set by close(): waiting responders answer now
        self._routes: dict[tuple[str, str], ScriptedResponse | Responder] = {}
        self._cond = threading.Condition()
        self._server = ThreadingHTTPServer((address, port), self._handler_class())
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="pdk-http-test-server", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """`http://<address>:<port>` (no trailing slash)."""
        return f"http://{self.address}:{self.port}"

    def url_for(self, path: str, host: str | None = None) -> str:
        """The URL of `path` on this server; `host` replaces the address in it (e.g.
        `localhost`), the scheme stays `http`."""
        base = f"http://{host}:{self.port}" if host is not None else self.url
        return base + (path if path.startswith("/") else "/" + path)

    @property
    def count(self) -> int:
        """How many requests arrived so far."""
        with self._cond:
            return len(self.requests)

    def last(self) -> RecordedRequest:
        """The latest request (IndexError when none arrived)."""
        with self._cond:
            return self.requests[-1]

    def respond(
        self,
        path: str,
        *,
        status: int = 200,
        body: bytes | str | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        method: str = ANY_METHOD,
        responder: Responder | None = None,
    ) -> None:
        """Script the answer to `method path` (the query string is ignored); a later call
        for the same route replaces it. `responder(request) -> ScriptedResponse` computes
        the answer per request instead."""
        with self._cond:
            self._routes[(method.upper(), path)] = responder or _response(status, body, json, headers)

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[RecordedRequest]:
        """Block until at least `count` requests arrived; return them all.
        Raises `TimeoutError` if they do not arrive in time."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= count, timeout_s):
                raise TimeoutError(f"expected {count} requests, got {len(self.requests)} within {timeout_s}s")
            return list(self.requests)

    def close(self) -> None:
        self.closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> HttpTestServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the request handler ---------------------------------------------------------------

    def _answer(self, request: RecordedRequest) -> ScriptedResponse:
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()
            route = self._routes.get((request.method, request.path)) or self._routes.get((ANY_METHOD, request.path))
        if route is None:
            return ScriptedResponse(404, f"no scripted response for {request.method} {request.path}".encode())
        return route(request) if callable(route) else route

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(min(length, _MAX_BODY)) if length else b""
                parts = urlsplit(self.path)
                request = RecordedRequest(
                    method=self.command,
                    path=parts.path,
                    query=parts.query,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    target=self.path,
                )
                response = server._answer(request)
                try:
                    self._send(response)
                except OSError:
                    self.close_connection = True  # the client hung up (a timeout test)

            def _send(self, response: ScriptedResponse) -> None:
                self.send_response(response.status)
                for name, value in response.headers:
                    self.send_header(name, value)
                if response.stream is not None:
                    self.send_header("connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    for chunk in response.stream if self.command != "HEAD" else ():
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    return
                self.send_header("content-length", str(len(response.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        return Handler
