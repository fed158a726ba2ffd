"""`HttpIngressServer`: the inbound webhook listener owned by the host.

A POST to an ingress's `http_path` becomes one event submitted to that plugin's
runtime. `submit` only enqueues, so a request never waits for the plugin: the answer
is 202 with the event id, or the typed refusal (503 + Retry-After when the queue is
full or the service is not running, 422 for a payload the ingress does not accept).
The event is submitted first and answered after: 202 means the runtime accepted it
(`_submit` is the one place a request becomes an event).

HTTP/1.1 is parsed by h11 on an asyncio event loop that runs on one thread (see
`http_conn.py` for the time bounds and the connection cap with shedding, `http_wire.py`
for what is refused on top of h11); `submit` runs on a small thread pool so that a slow
runtime never stalls the other connections. Every answer other than 202 is counted —
per route in `rt.sources["http:<ingress>"]`, and listener-wide (404, malformed or slow
heads, the connection cap) in `rt.sources["http"]`."""

from __future__ import annotations

import asyncio
import json
import math
import re
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import h11

from pdk.limits import (
    HTTP_INGRESS_BODY_MAX_BYTES,
    HTTP_INGRESS_BODY_TIMEOUT_S,
    HTTP_INGRESS_CONNECTIONS_MAX,
    HTTP_INGRESS_HEAD_TIMEOUT_S,
    HTTP_INGRESS_HEADERS_MAX_BYTES,
    HTTP_INGRESS_IDLE_TIMEOUT_S,
    HTTP_INGRESS_WRITE_TIMEOUT_S,
)

from ._runtime import refusal_of, register
from .http_conn import BODY, BUSY, HEAD, IDLE, Connection, ConnectionTable, CountingReader, Stream, close
from .http_wire import HttpError, RequestHead, content_length, head_of
from .payload import payload_from
from .routes import Route, build_routes

KIND_HEADER = "x-yoi-event-kind"
CORRELATION_HEADERS = ("x-correlation-id", "x-request-id")
_CORRELATION_RE = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
SUBMIT_WORKERS = 4  # submissions in flight at once; each connection has at most one
LINGER_S = 1.0  # after an error answer, how long unread request bytes are drained
ADMIT_WAIT_S = 0.25  # at the cap, how long a newcomer waits for a connection it may shed

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
    "store_unavailable": 503,  # the durable state store could not record the event
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
    shed: int = 0  # connections closed to make room for a newer one at the cap
    rejected: dict[str, int] = field(default_factory=dict)  # answered before a route was known


def _bump(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message[:1024]}}, ensure_ascii=False).encode()


class HttpIngressServer:
    """The webhook listener for the "http" ingresses of one or more runtimes.

    `HttpIngressServer(runtimes)` builds the route table (raising `RouteConflict` when
    two ingresses share a path) and binds (loopback by default; port 0 picks a free
    port); `start()` serves on a thread and returns the bound port; `stop()` stops
    intake and closes every connection. The time bounds default to `pdk.limits`."""

    def __init__(
        self,
        runtimes: Sequence[Any],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        body_max_bytes: int = HTTP_INGRESS_BODY_MAX_BYTES,
        headers_max_bytes: int = HTTP_INGRESS_HEADERS_MAX_BYTES,
        max_connections: int = HTTP_INGRESS_CONNECTIONS_MAX,
        idle_timeout_s: float = HTTP_INGRESS_IDLE_TIMEOUT_S,
        head_timeout_s: float = HTTP_INGRESS_HEAD_TIMEOUT_S,
        body_timeout_s: float = HTTP_INGRESS_BODY_TIMEOUT_S,
        write_timeout_s: float = HTTP_INGRESS_WRITE_TIMEOUT_S,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.runtimes = list(runtimes)
        self.routes: dict[str, Route] = build_routes(self.runtimes)
        self.body_max_bytes = body_max_bytes
        self.headers_max_bytes = headers_max_bytes
        self.max_connections = max_connections
        self.idle_timeout_s = idle_timeout_s
        self.head_timeout_s = head_timeout_s
        self.body_timeout_s = body_timeout_s
        self.write_timeout_s = write_timeout_s
        self.closing = False
        self._lock = threading.RLock()
        self._table = ConnectionTable(max_connections)
        self._route_counters = {path: RouteCounters() for path in self.routes}
        self._listener = ListenerCounters()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.create_server((host, port), family=family, backlog=max(128, max_connections))
        if hasattr(socket, "TCP_DEFER_ACCEPT"):  # Linux: a connection is accepted once it has sent data
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, max(1, math.ceil(idle_timeout_s)))
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._pool = ThreadPoolExecutor(max_workers=SUBMIT_WORKERS, thread_name_prefix="pdk-http-submit")
        self._server: asyncio.Server | None = None
        self._waiting = 0  # newcomers waiting for a connection to shed (loop thread)
        self._tasks: set[asyncio.Task[Any]] = set()  # every connection's task, until it has closed (loop thread)
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
        with self._lock:
            if self._thread is None and not self.closing:
                ready = threading.Event()
                self._thread = threading.Thread(target=self._run, args=(ready,), name="pdk-http-ingress", daemon=True)
                self._thread.start()
                ready.wait()
            if self._server is None:
                raise OSError(f"the webhook listener on {self.url} did not start")
        return self.port

    def stop(self, grace_s: float = 2.0) -> None:
        """Stop accepting, let requests being submitted and answered finish (up to
        `grace_s`), then close every connection and the listening socket."""
        with self._lock:
            if self.closing:
                return
            self.closing = True
            thread = self._thread
        if thread is None:
            self._sock.close()
            self._loop.close()
        else:
            asyncio.run_coroutine_threadsafe(self._shutdown(grace_s), self._loop).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            thread.join()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> HttpIngressServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the event loop thread --

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(self._loop.create_server(self._protocol, sock=self._sock))
        finally:
            ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    def _protocol(self) -> asyncio.StreamReaderProtocol:
        """`asyncio.start_server`'s protocol, with a reader that counts what it was fed."""
        return asyncio.StreamReaderProtocol(CountingReader(loop=self._loop), self._on_connection, loop=self._loop)

    async def _shutdown(self, grace_s: float) -> None:
        if self._server is not None:
            self._server.close()  # no new connections
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        with self._lock:
            conns = list(self._table.open)
        for conn in conns:  # no request under way: close now
            if conn.phase in (IDLE, HEAD) and conn.task is not None:
                conn.task.cancel()
        while loop.time() < deadline:  # a body arriving, a submission, an answer: up to grace_s
            with self._lock:
                if not any(c.phase not in (IDLE, HEAD) for c in self._table.open):
                    break
            await asyncio.sleep(0.01)
        tasks = list(self._tasks)  # also those answering a refusal or draining after an answer
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._connection(reader, writer)
        except (asyncio.CancelledError, OSError, TimeoutError):
            writer.close()
        finally:
            self._tasks.discard(task)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(writer, reader if isinstance(reader, CountingReader) else None)
        conn.enter(IDLE)
        conn.task = asyncio.current_task()
        if self.closing:
            writer.close()
            return
        if not await self._admit(conn):
            self._count_listener(503)
            await self._refuse(reader, writer)
            return
        stream = Stream(conn, reader, writer, self.headers_max_bytes)
        lingering = False
        try:
            lingering = await self._serve(conn, stream)
        except asyncio.CancelledError:
            if conn.shed and conn.phase in (HEAD, BODY):
                await self._answer_shed(stream)
        except (OSError, TimeoutError, h11.LocalProtocolError):
            pass  # reset, or a client that does not take its answer
        except Exception as exc:  # a listener bug: answer (best effort) and count it, keep serving
            self._count_listener(500)
            try:
                await stream.respond(500, _error_body("internal", f"{type(exc).__name__}: {exc}"), {}, close=True, write_timeout_s=0.0, wait=False)
            except Exception:
                pass
        finally:
            with self._lock:
                self._table.release(conn)
        if lingering:
            await close(reader, writer, linger_s=LINGER_S, linger_bytes=self.body_max_bytes + self.headers_max_bytes)
        else:
            writer.close()

    async def _admit(self, conn: Connection) -> bool:
        """Take `conn` into the table, shedding another if at the cap. When none may be
        shed because the others are requests that have just arrived, wait (at most
        ADMIT_WAIT_S, and only while no more than the cap wait) for those to be read —
        a burst of new connections must not get a legitimate newcomer refused."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ADMIT_WAIT_S
        self._waiting += 1
        try:
            attempt = 0
            while True:
                with self._lock:
                    admitted, victim = self._table.admit(conn)
                    if admitted:
                        self._listener.connections += 1
                    if victim is not None:
                        self._listener.shed += 1
                if victim is not None and victim.task is not None:
                    victim.shed = True
                    victim.task.cancel()
                if admitted or self.closing or self._waiting > self.max_connections or loop.time() >= deadline:
                    return admitted
                await asyncio.sleep(0 if attempt < 4 else 0.005)  # let the loop read the others
                attempt += 1
        finally:
            self._waiting -= 1

    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The fast 503 when every connection at the cap is being submitted."""
        body = _error_body("too_many_connections", "the listener is at its connection limit")
        conn = Connection(writer)
        stream = Stream(conn, reader, writer, self.headers_max_bytes)
        try:
            await stream.respond(503, body, {"Retry-After": "1"}, close=True, write_timeout_s=self.write_timeout_s)
        except (OSError, TimeoutError, h11.LocalProtocolError):
            writer.close()
            return
        await close(reader, writer, linger_s=LINGER_S, linger_bytes=self.headers_max_bytes)

    async def _answer_shed(self, stream: Stream) -> None:
        """Best effort: tell a shed client why (not waited for)."""
        body = _error_body("shed", "closed to make room for a newer connection; retry")
        try:
            await stream.respond(503, body, {"Retry-After": "1"}, close=True, write_timeout_s=0.0, wait=False)
        except (OSError, TimeoutError, h11.LocalProtocolError, RuntimeError):
            pass

    async def _serve(self, conn: Connection, stream: Stream) -> bool:
        """Serve one connection's requests; True when it ends on an error answer, whose
        connection is closed after draining what the client still sends."""
        while not self.closing:
            try:
                request = await stream.read_head(self.idle_timeout_s, self.head_timeout_s)
                if request is None:
                    return False
                head = head_of(request, stream.head_bytes)
            except HttpError as err:
                self._count_listener(err.status)
                return await self._answer_error(stream, err)
            route = self.routes.get(head.path)
            if route is None:
                self._count_listener(404)
                known = ", ".join(sorted(self.routes)) or "none"
                return await self._answer_error(stream, HttpError(404, "not_found", f"no ingress at {head.path[:200]} (paths: {known})"))
            try:
                if head.method != "POST":
                    raise HttpError(405, "method_not_allowed", f"{head.path} accepts POST only", headers={"Allow": "POST"})
                content_length(head, self.body_max_bytes)
                body = await stream.read_body(self.body_timeout_s, self.write_timeout_s)
            except HttpError as err:
                self._count_route(route, rejected=err.status)
                return await self._answer_error(stream, err)
            if body is None:
                self._count_route(route, aborted=True)
                return False
            conn.enter(BUSY)
            status, doc, headers = await asyncio.get_running_loop().run_in_executor(self._pool, self._submit, route, head, body)
            keep = await stream.respond(status, json.dumps(doc, ensure_ascii=False).encode(), headers, close=self.closing, write_timeout_s=self.write_timeout_s)
            if not keep:
                return True
        return False

    async def _answer_error(self, stream: Stream, err: HttpError) -> bool:
        await stream.respond(err.status, _error_body(err.code, err.message), err.headers, close=True, write_timeout_s=self.write_timeout_s)
        return True

    def _submit(self, route: Route, head: RequestHead, body: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Turn one request into one `submit`; (status, JSON body, headers)."""
        try:
            kind = route.kind_for(head.get(KIND_HEADER))
            if kind is None:
                raise HttpError(422, "unknown_kind", f"{KIND_HEADER} names a kind that ingress {route.ingress!r} does not declare (declared: {', '.join(route.kinds)})")
            correlation_id = next((v for v in (head.get(h) for h in CORRELATION_HEADERS) if v), None)
            if correlation_id is not None and not _CORRELATION_RE.fullmatch(correlation_id):
                raise HttpError(400, "bad_request", "X-Correlation-Id / X-Request-Id must be 1-128 of [A-Za-z0-9._:@/+=-]")
            payload = payload_from(head.get("content-type"), body)
        except HttpError as err:
            self._count_route(route, rejected=err.status)
            return err.status, {"error": {"code": err.code, "message": err.message}}, err.headers
        except Exception as exc:  # a payload-mapping bug: answer and count it, keep serving
            self._count_route(route, rejected=500)
            return 500, {"error": {"code": "internal", "message": f"{type(exc).__name__}: {exc}"[:1024]}}, {}
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
                "open_connections": len(self._table.open),
                "max_connections": self.max_connections,
                "body_max_bytes": self.body_max_bytes,
                "headers_max_bytes": self.headers_max_bytes,
                "head_timeout_s": self.head_timeout_s,
                "body_timeout_s": self.body_timeout_s,
                "idle_timeout_s": self.idle_timeout_s,
                "shed": self._listener.shed,
                "rejected": dict(self._listener.rejected),
            }

