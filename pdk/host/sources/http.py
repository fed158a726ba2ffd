"""`HttpIngressServer`: the inbound webhook listener owned by the host.

A POST to an ingress's `http_path` becomes one event submitted to that plugin's
runtime. `submit` only enqueues, so a request never waits for the plugin: the answer
is 202 with the event id, or the typed refusal (503 + Retry-After when the queue is
full or the service is not running, 422 for a payload the ingress does not accept).
Heads and bodies are read against fixed bounds, connections are capped, and every
answer other than 202 is counted — per route in `rt.sources["http:<ingress>"]`,
and listener-wide (404, malformed heads, ...) in `rt.sources["http"]`."""

from __future__ import annotations

import json
import math
import re
import socket
import socketserver
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from pdk.limits import HTTP_INGRESS_BODY_MAX_BYTES, HTTP_INGRESS_HEADERS_MAX_BYTES

from ._runtime import refusal_of, register
from .http_wire import HttpError, RequestHead, content_length, read_body, read_head, render_response
from .payload import payload_from
from .routes import Route, build_routes

KIND_HEADER = "x-yoi-event-kind"
CORRELATION_HEADERS = ("x-correlation-id", "x-request-id")
_CORRELATION_RE = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")

# Refusal reason -> HTTP status. Unknown reasons (a newer runtime) answer 500 but are
# still counted under their own name.
REFUSAL_STATUS = {
    "queue_full": 503,
    "not_running": 503,
    "invalid_payload": 422,
    "unknown_kind": 422,
    "too_large": 413,
    "source_not_allowed": 500,
    "unknown_ingress": 500,
}


@dataclass
class RouteCounters:
    accepted: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    aborted: int = 0


@dataclass
class ListenerCounters:
    connections: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # answered before a route was known


def _bump(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message[:1024]}}, ensure_ascii=False).encode()


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], owner: HttpIngressServer) -> None:
        self.owner = owner
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler, bind_and_activate=True)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.owner._admit(request):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.owner._release(request)


class _Handler(socketserver.StreamRequestHandler):
    server: _TCPServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.owner.idle_timeout_s)  # every read and write is bounded in time

    def handle(self) -> None:
        owner = self.server.owner
        while not owner.closing:
            try:
                head = read_head(self.rfile, owner.headers_max_bytes)
            except HttpError as err:
                owner._count_listener(err.status)
                self._send(err.status, _error_body(err.code, err.message), err.headers, close=True)
                return
            except OSError:  # timeout or reset while idle: just close
                return
            if head is None:
                return
            owner._busy(self.connection, True)
            try:
                keep = self._one(head)
            except OSError:
                return
            finally:
                owner._busy(self.connection, False)
            if not keep:
                return

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None, *, close: bool) -> None:
        try:
            self.wfile.write(render_response(status, body, headers=headers, close=close))
        except OSError:
            pass

    def _one(self, head: RequestHead) -> bool:
        """Answer one request; True when the connection may serve another."""
        owner = self.server.owner
        route = owner.routes.get(head.path)
        if route is None:
            owner._count_listener(404)
            known = ", ".join(sorted(owner.routes)) or "none"
            self._send(404, _error_body("not_found", f"no ingress at {head.path[:200]} (paths: {known})"), close=True)
            return False
        try:
            if head.method != "POST":
                raise HttpError(405, "method_not_allowed", f"{head.path} accepts POST only", headers={"Allow": "POST"})
            length = content_length(head, owner.body_max_bytes)
        except HttpError as err:
            owner._count_route(route, rejected=err.status)
            self._send(err.status, _error_body(err.code, err.message), err.headers, close=True)
            return False
        try:
            if head.expects_continue and head.version >= (1, 1):
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = read_body(self.rfile, length)
        except OSError:  # a timeout or reset mid-body
            body = None
        if body is None:
            owner._count_route(route, aborted=True)
            return False
        status, doc, headers = owner._submit(route, head, body)
        keep = head.keep_alive and not owner.closing
        self._send(status, json.dumps(doc, ensure_ascii=False).encode(), headers, close=not keep)
        return keep


class HttpIngressServer:
    """The webhook listener for the "http" ingresses of one or more runtimes.

    `HttpIngressServer(runtimes)` builds the route table (raising `RouteConflict` when
    two ingresses share a path) and binds (loopback by default; port 0 picks a free
    port); `start()` serves on a thread and returns the bound port; `stop()` stops
    intake and closes every connection."""

    def __init__(
        self,
        runtimes: Sequence[Any],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        body_max_bytes: int = HTTP_INGRESS_BODY_MAX_BYTES,
        headers_max_bytes: int = HTTP_INGRESS_HEADERS_MAX_BYTES,
        max_connections: int = 64,
        idle_timeout_s: float = 10.0,
    ) -> None:
        self.runtimes = list(runtimes)
        self.routes: dict[str, Route] = build_routes(self.runtimes)
        self.body_max_bytes = body_max_bytes
        self.headers_max_bytes = headers_max_bytes
        self.max_connections = max_connections
        self.idle_timeout_s = idle_timeout_s
        self.closing = False
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._connections: dict[Any, bool] = {}  # socket -> busy
        self._route_counters = {path: RouteCounters() for path in self.routes}
        self._listener = ListenerCounters()
        self._server = _TCPServer((host, port), self)
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None
        for route in self.routes.values():
            register(route.rt, route.source_name, self._route_status_of(route))
        for rt in self.runtimes:
            register(rt, "http", self.listener_status)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> int:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="pdk-http-ingress", daemon=True)
            self._thread.start()
        return self.port

    def stop(self, grace_s: float = 2.0) -> None:
        """Stop accepting, let requests being answered finish (up to `grace_s`), then
        close every connection and the listening socket."""
        with self._lock:
            if self.closing:
                return
            self.closing = True
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        with self._lock:
            for sock, busy in list(self._connections.items()):
                if not busy:
                    _shut(sock)
            self._idle.wait_for(lambda: not any(self._connections.values()), timeout=grace_s)
            for sock in list(self._connections):
                _shut(sock)
        self._server.server_close()

    def __enter__(self) -> HttpIngressServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- admission and bookkeeping (called from the server threads) --

    def _admit(self, sock: Any) -> bool:
        with self._lock:
            if self.closing or len(self._connections) >= self.max_connections:
                refuse = True
            else:
                self._connections[sock] = False
                self._listener.connections += 1
                refuse = False
        if refuse:
            self._count_listener(503)
            try:
                sock.settimeout(1.0)
                sock.sendall(render_response(503, _error_body("too_many_connections", "the listener is at its connection limit"), headers={"Retry-After": "1"}, close=True))
                sock.shutdown(socket.SHUT_WR)
                # Drain what already arrived (bounded, never waiting) so that closing
                # does not reset the connection before the client read the 503.
                for _ in range(16):
                    if not sock.recv(4096, socket.MSG_DONTWAIT):
                        break
            except OSError:
                pass
            return False
        return True

    def _release(self, sock: Any) -> None:
        with self._lock:
            self._connections.pop(sock, None)
            self._idle.notify_all()

    def _busy(self, sock: Any, busy: bool) -> None:
        with self._lock:
            if sock in self._connections:
                self._connections[sock] = busy
            self._idle.notify_all()

    def _submit(self, route: Route, head: RequestHead, body: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Turn one request into one `submit`; (status, JSON body, headers)."""
        try:
            kind = route.kind_for(head.get(KIND_HEADER))
            if kind is None:
                raise HttpError(422, "unknown_kind", f"{KIND_HEADER} names a kind that ingress {route.ingress!r} does not declare (declared: {', '.join(route.kinds)})")
            correlation_id = next((v for v in (head.get(h) for h in CORRELATION_HEADERS) if v), None)
            if correlation_id is not None and not _CORRELATION_RE.match(correlation_id):
                raise HttpError(400, "bad_request", "X-Correlation-Id / X-Request-Id must be 1-128 of [A-Za-z0-9._:@/+=-]")
            payload = payload_from(head.get("content-type"), body)
        except HttpError as err:
            self._count_route(route, rejected=err.status)
            return err.status, {"error": {"code": err.code, "message": err.message}}, err.headers
        try:
            result = route.rt.submit(route.ingress, kind, payload, source=route.source_name, correlation_id=correlation_id)
        except Exception as exc:  # a runtime bug: answer and count it, keep serving
            self._count_route(route, rejected=500)
            return 500, {"error": {"code": "internal", "message": f"{type(exc).__name__}: {exc}"[:1024]}}, {}
        refusal = refusal_of(result)
        if refusal is None:
            self._count_route(route, accepted=True)
            return 202, {"event_id": result.event_id}, {}
        reason, message, retry_after_s = refusal.reason, refusal.message, refusal.retry_after_s
        self._count_route(route, refused=reason)
        status = REFUSAL_STATUS.get(reason, 500)
        headers: dict[str, str] = {}
        if status == 503:
            headers["Retry-After"] = str(max(1, math.ceil(retry_after_s or 1)))
        return status, {"error": {"code": reason, "message": message[:1024]}}, headers

    def _count_route(self, route: Route, *, accepted: bool = False, refused: str | None = None, rejected: int | None = None, aborted: bool = False) -> None:
        with self._lock:
            c = self._route_counters[route.path]
            if accepted:
                c.accepted += 1
            if refused is not None:
                _bump(c.refused, refused)
            if rejected is not None:
                _bump(c.rejected, str(rejected))
            if aborted:
                c.aborted += 1

    def _count_listener(self, status: int) -> None:
        with self._lock:
            _bump(self._listener.rejected, str(status))

    # -- status --

    def route_status(self, route: Route) -> dict[str, Any]:
        with self._lock:
            c = self._route_counters[route.path]
            return {
                "kind": "http",
                "ingress": route.ingress,
                "path": route.path,
                "url": self.url + route.path,
                "accepted": c.accepted,
                "refused": dict(c.refused),
                "rejected": dict(c.rejected),
                "aborted": c.aborted,
            }

    def _route_status_of(self, route: Route) -> Callable[[], dict[str, Any]]:
        return lambda: self.route_status(route)

    def listener_status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "kind": "http_listener",
                "url": self.url,
                "serving": self._thread is not None and not self.closing,
                "connections": self._listener.connections,
                "open_connections": len(self._connections),
                "max_connections": self.max_connections,
                "body_max_bytes": self.body_max_bytes,
                "headers_max_bytes": self.headers_max_bytes,
                "rejected": dict(self._listener.rejected),
            }



def _shut(sock: Any) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
