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
"""

from __future__ import annotations

import json as _json
import threading
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

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return _json.loads(self.body)


@dataclass(frozen=True)
class ScriptedResponse:
    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


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
    ephemeral port."""

    def __init__(self, *, port: int = 0) -> None:
        self.requests: list[RecordedRequest] = []
        self._routes: dict[tuple[str, str], ScriptedResponse | Responder] = {}
        self._cond = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="pdk-http-test-server", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    def url_for(self, path: str) -> str:
        return self.url + (path if path.startswith("/") else "/" + path)

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
                )
                response = server._answer(request)
                self.send_response(response.status)
                for name, value in response.headers:
                    self.send_header(name, value)
                self.send_header("content-length", str(len(response.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        return Handler
