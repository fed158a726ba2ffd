"""The `yoi:host/request` import, and the executor that `http-request` output commands reuse.

One request, start to finish (`execute_http_request`):

1. **shape**: method (an RFC 9110 token, sent upper-case; CONNECT refused), absolute
   http(s) URL without userinfo, headers as (name, value) strings, optional body and
   timeout. Malformed → `invalid`.
2. **authority**: `request` declared in the manifest's `host_apis` and granted, and the
   URL allowed by some declared `[[request]]` target AND some granted one
   (`GrantSet.check_request`, segment-aware, normalized). Otherwise `denied` - and no
   byte has left the host.
3. **headers**: hop-by-hop and upgrade headers, `host`, `content-length`, and
   credential headers (`authorization`, `cookie`, `proxy-authorization`, every header a
   grant secret is sent as) are the host's to set: a guest that sets one gets `invalid`.
   Counts, sizes and the body are bounded (`pdk.limits`) → `too_large`.
4. **secrets**: `[[plugins.secrets]]` with a `header` are read now (env or file, at call
   time, so rotation needs no reload) and added as headers the guest never sees. A
   secret that cannot be read fails the request (`failed`) rather than sending it
   without credentials. Note: a grant's secret headers go with *every* allowed request
   of that plugin; grant a plugin only the targets its secrets are meant for.
5. **time**: the timeout is the smallest of the guest's `timeout-ms`,
   `HTTP_TIMEOUT_MAX_S` and the caller's budget (for the import: what is left of the
   guest call's epoch deadline minus a margin, so the guest gets its typed `timeout`
   back before the deadline traps it). It covers resolution, connect, send and the whole
   response: a watchdog shuts the socket down when it runs out, so a server that drips
   one byte per second cannot hold the call.
6. **resolution**: the host name is resolved once, every address is judged with
   `targets.check_resolved` (loopback/private/link-local/metadata only when named
   explicitly), and the connection goes to exactly the address that was judged - the
   name is never resolved a second time, so DNS cannot switch answers in between. The
   `Host` header and TLS server name are the URL's host.
7. **response**: status, headers (hop-by-hop dropped, names lower-cased, count and
   values bounded) and body, cut at `HTTP_RESPONSE_MAX_BYTES` with `truncated=True`.
   Redirects are not followed: a 3xx is the response, and whatever the guest does
   with its `location` is a new request, checked like any other.

Errors are `Err({"code", "message"})` with the contract's codes; messages are bounded,
redacted and never contain query strings or secret values. Nothing here raises.
"""

from __future__ import annotations

import http.client
import ipaddress
import queue
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pdk.limits import (
    HOST_API_MESSAGE_MAX_BYTES,
    HOST_IMPORT_DEADLINE_MARGIN_S,
    HTTP_HEADER_VALUE_MAX_BYTES,
    HTTP_HEADERS_MAX,
    HTTP_RESOLVER_PENDING_MAX,
    HTTP_RESOLVER_THREADS,
    HTTP_RESPONSE_MAX_BYTES,
    HTTP_TIMEOUT_MAX_S,
)

from .codec import Err, Ok
from .diagnostics import DiagnosticLog
from .grants import GrantSet, SecretRef
from .http_check import RequestInvalid, check_line, check_parts
from .redact import bound_text, redact_bounded
from .secrets import SecretUnavailable, header_secrets
from pdk.package.manifest import Manifest
from pdk.package.targets import RequestLine, Target, check_resolved, parse_request

Resolver = Callable[[str, int], Sequence[str]]
DeadlineProvider = Callable[[], "float | None"]

USER_AGENT = "yoi-pdk-host"

_RESPONSE_DROPPED = frozenset({"connection", "keep-alive", "transfer-encoding", "proxy-connection"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_READ_CHUNK = 64 * 1024


class _Failure(Exception):
    """A request-error on its way to becoming an `Err` value."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _err(code: str, message: str) -> Any:
    return Err({"code": code, "message": redact_bounded(message, HOST_API_MESSAGE_MAX_BYTES)})


def resolve_system(host: str, port: int) -> list[str]:
    """The system resolver's addresses for `host`, in its order, without duplicates."""
    out: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = str(sockaddr[0])
        if address not in out:
            out.append(address)
    return out


@dataclass(frozen=True)
class _Prepared:
    """A request that passed shape, authority and bound checks."""

    line: RequestLine
    target: str  # path and query, as the guest wrote them (matching judged their normalized form)
    headers: list[tuple[str, str]]
    body: bytes | None
    timeout_s: float | None  # what the guest asked for


def execute_http_request(
    request: Mapping[str, Any],
    *,
    grants: GrantSet,
    declared: Sequence[Target],
    timeout_s: float,
    secrets: Sequence[SecretRef] | None = None,
    api_declared: bool = True,
    diagnostics: DiagnosticLog | None = None,
    resolver: Resolver | None = None,
    tls_context: ssl.SSLContext | None = None,
) -> Any:
    """Check and perform one HTTP request; `Ok(http-response)` or `Err(request-error)`
    as plain values (`{"status", "headers", "body", "truncated"}` /
    `{"code", "message"}`).

    `request` has the keys of `yoi:host/request.http-request` (`timeout_ms` optional,
    so the output command's `http-request` fits too). `timeout_s` is the caller's budget
    for the whole exchange. `secrets` default to the grant's. `api_declared`: whether
    the manifest lists `request` in `host_apis`. `resolver` defaults to
    `resolve_system`; `tls_context` to the system trust store with certificate and
    host-name checks (pass one to trust a private CA). Never raises."""
    described = _describe(request)
    try:
        refs = grants.secrets if secrets is None else secrets
        prepared = _prepare(request, grants, declared, api_declared, refs)
        extra = _secret_headers(refs)
        budget = min(HTTP_TIMEOUT_MAX_S, timeout_s, prepared.timeout_s if prepared.timeout_s is not None else HTTP_TIMEOUT_MAX_S)
        if budget <= 0:
            raise _Failure("timeout", "no time is left in the caller's deadline for this request")
        response = _perform(prepared, extra, budget, grants, declared, resolver or resolve_system, tls_context)
    except _Failure as failure:
        if diagnostics is not None:
            diagnostics.add("host", "warn", f"{described}: {failure.code}: {failure.message}")
        return _err(failure.code, failure.message)
    except Exception as exc:  # a host import never raises
        if diagnostics is not None:
            diagnostics.add("host", "error", f"{described}: failed: {type(exc).__name__}")
        return _err("failed", f"host error: {type(exc).__name__}")
    if diagnostics is not None:
        cut = ", truncated" if response["truncated"] else ""
        diagnostics.add("host", "info", f"{described} -> {response['status']} ({len(response['body'])} bytes{cut})")
    return Ok(response)


# --- checks before any traffic -----------------------------------------------------------------


def _describe(request: Any) -> str:
    """`request GET http://host:port/path` for logs: no query string, no userinfo."""
    try:
        return f"request {parse_request(request['url'], request['method']).describe()}"
    except Exception:
        return "request (malformed)"


def _prepare(
    request: Mapping[str, Any],
    grants: GrantSet,
    declared: Sequence[Target],
    api_declared: bool,
    secrets: Sequence[SecretRef],
) -> _Prepared:
    # The shape checks are `http_check`'s, shared with `http-request` output commands.
    try:
        line = check_line(request)
    except RequestInvalid as exc:
        raise _Failure(exc.code_text, exc.message) from None
    url = request["url"]
    # Authority before the finer shape checks: a denied request learns nothing more.
    if not api_declared:
        raise _Failure("denied", "the request host API is not declared in the manifest (host_apis)")
    verdict = grants.check_request(url, line.method, declared)
    if not verdict.allowed:
        raise _Failure("denied", verdict.reason)
    try:
        parts = check_parts(request, {ref.header.lower() for ref in secrets if ref.header})
    except RequestInvalid as exc:
        raise _Failure(exc.code_text, exc.message) from None
    split = urllib.parse.urlsplit(url)
    target = (split.path or "/") + (f"?{split.query}" if split.query else "")
    return _Prepared(line, target, parts.headers, parts.body, parts.timeout_s)


def _secret_headers(refs: Sequence[SecretRef]) -> list[tuple[str, str]]:
    """Read every header secret now (`pdk.host.secrets`, shared with WebSocket
    handshakes). Values never reach a message or a log."""
    try:
        return header_secrets(refs)
    except SecretUnavailable as exc:
        raise _Failure("failed", f"host {exc.message}") from None


# --- the exchange ------------------------------------------------------------------------------


class _Clock:
    def __init__(self, budget: float) -> None:
        self.deadline = time.monotonic() + budget

    def left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _Failure("timeout", "the request did not complete within its deadline")
        return left


def _perform(
    prepared: _Prepared,
    extra_headers: list[tuple[str, str]],
    budget: float,
    grants: GrantSet,
    declared: Sequence[Target],
    resolver: Resolver,
    tls: ssl.SSLContext | None,
) -> dict[str, Any]:
    line = prepared.line
    clock = _Clock(budget)
    addresses = _resolve(line.host, line.port, resolver, clock)
    verdict = check_resolved(line.host, addresses, declared, grants.request_targets)
    if not verdict.allowed:
        raise _Failure("denied", verdict.reason)
    conn = _connect(line, addresses, clock, tls)
    watchdog = _Watchdog(conn, clock)
    try:
        try:
            conn.putrequest(line.method, prepared.target, skip_accept_encoding=True)
            for name, value in (*prepared.headers, *extra_headers):
                conn.putheader(name, value)
            if prepared.body is not None or line.method in _BODY_METHODS:
                conn.putheader("Content-Length", str(len(prepared.body or b"")))
            if not any(name.lower() == "user-agent" for name, _ in prepared.headers):
                conn.putheader("User-Agent", USER_AGENT)
            conn.putheader("Connection", "close")  # one exchange per connection
            conn.endheaders(prepared.body)
            response = conn.getresponse()
            status = response.status
            headers = _response_headers(response.getheaders())
            body, truncated = _read_body(response, clock)
        except _Failure:
            raise
        except (TimeoutError, socket.timeout):
            raise _Failure("timeout", "the request did not complete within its deadline") from None
        except (http.client.InvalidURL, ValueError) as exc:
            raise _Failure("invalid", f"the request cannot be sent: {type(exc).__name__}") from None
        except http.client.IncompleteRead:
            raise _timeout_or(watchdog, "connection_failed", "the connection closed before the response was complete") from None
        except (http.client.RemoteDisconnected, ConnectionError) as exc:
            raise _timeout_or(watchdog, "connection_failed", f"the connection broke: {_os_text(exc)}") from None
        except http.client.HTTPException as exc:
            raise _timeout_or(watchdog, "failed", f"malformed response: {type(exc).__name__}") from None
        except OSError as exc:
            raise _timeout_or(watchdog, "connection_failed", f"the connection failed: {_os_text(exc)}") from None
        if watchdog.fired:
            raise _Failure("timeout", "the request did not complete within its deadline")
    finally:
        watchdog.cancel()
        conn.close()
    return {"status": status, "headers": headers, "body": body, "truncated": truncated}


class _Lookup:
    """One host name lookup handed to the resolver pool."""

    def __init__(self, resolver: Resolver, host: str, port: int) -> None:
        self.resolver, self.host, self.port = resolver, host, port
        self.done = threading.Event()
        self.abandoned = False  # the caller stopped waiting: skip it if not started
        self.addresses: list[str] | None = None

    def run(self) -> None:
        if self.abandoned:
            return
        try:
            self.addresses = [str(a) for a in self.resolver(self.host, self.port)]
        except Exception:  # reported by the caller as connection_failed
            self.addresses = None
        finally:
            self.done.set()


class _ResolverPool:
    """A fixed number of daemon threads (started on demand) and a bounded backlog.

    getaddrinfo has no timeout of its own, so a stalling resolver holds its thread until
    it returns; the caller stops waiting at its deadline. A lookup holds a slot from
    submission until it finishes, so stalled lookups can never add threads: once every
    thread is busy and the backlog is full, `submit` refuses at once. Daemon threads,
    so a stuck lookup never holds up interpreter exit."""

    def __init__(self, threads: int, pending_max: int) -> None:
        self.threads_max = threads
        self._slots = threading.BoundedSemaphore(threads + pending_max)
        self._jobs: queue.SimpleQueue[_Lookup] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, lookup: _Lookup) -> bool:
        if not self._slots.acquire(blocking=False):
            return False
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            if len(self._threads) < self.threads_max:
                worker = threading.Thread(target=self._work, name="yoi-resolve", daemon=True)
                worker.start()
                self._threads.append(worker)
        self._jobs.put(lookup)
        return True

    def _work(self) -> None:
        while True:
            lookup = self._jobs.get()
            try:
                lookup.run()
            finally:
                self._slots.release()


_RESOLVERS = _ResolverPool(HTTP_RESOLVER_THREADS, HTTP_RESOLVER_PENDING_MAX)


def _resolve(host: str, port: int, resolver: Resolver, clock: _Clock) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]  # an IP literal needs no resolver
    except ValueError:
        pass
    lookup = _Lookup(resolver, host, port)
    if not _RESOLVERS.submit(lookup):
        busy = HTTP_RESOLVER_THREADS + HTTP_RESOLVER_PENDING_MAX
        raise _Failure("connection_failed", f"cannot resolve host {host}: the host's resolver is busy ({busy} lookups in progress)")
    if not lookup.done.wait(clock.left()):
        lookup.abandoned = True
        raise _Failure("timeout", f"resolving {host} did not finish within the deadline")
    if not lookup.addresses:
        raise _Failure("connection_failed", f"cannot resolve host {host}")
    return lookup.addresses


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to `host` (for the `Host` header) over a socket to one checked address."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to `host` (Host header, SNI, certificate name) over one checked address."""

    def __init__(self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


_TLS_CONTEXT: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    global _TLS_CONTEXT
    if _TLS_CONTEXT is None:
        _TLS_CONTEXT = ssl.create_default_context()  # verifies certificates and host names
    return _TLS_CONTEXT


def _connect(line: RequestLine, addresses: list[str], clock: _Clock, tls: ssl.SSLContext | None) -> http.client.HTTPConnection:
    """Connect to the first checked address that answers; every one was judged."""
    last = "no address"
    for address in addresses:
        timeout = clock.left()
        conn: http.client.HTTPConnection
        if line.scheme == "https":
            conn = _PinnedHTTPSConnection(line.host, line.port, address, timeout, tls or _tls_context())
        else:
            conn = _PinnedHTTPConnection(line.host, line.port, address, timeout)
        try:
            conn.connect()
            return conn
        except (TimeoutError, socket.timeout):
            conn.close()
            raise _Failure("timeout", f"connecting to {line.host} did not finish within the deadline") from None
        except ssl.SSLError as exc:
            conn.close()
            raise _Failure("connection_failed", f"TLS with {line.host} failed: {exc.reason or 'handshake error'}") from None
        except OSError as exc:
            conn.close()
            last = _os_text(exc)
    raise _Failure("connection_failed", f"cannot connect to {line.host} port {line.port}: {last}")


class _Watchdog:
    """Shuts the connection's socket down when the budget runs out, so a blocked read
    returns at the deadline however the server paces its bytes."""

    def __init__(self, conn: http.client.HTTPConnection, clock: _Clock) -> None:
        self.fired = False
        # The socket itself: `getresponse` hands it to the response and clears `conn.sock`
        # (always, as we send `Connection: close`).
        self._sock = conn.sock
        self._timer = threading.Timer(max(0.0, clock.deadline - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        sock = self._sock
        if sock is not None:
            try:
                # The plain socket method: an SSLSocket's own shutdown would tear down TLS
                # state that the reading thread is still using.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass

    def cancel(self) -> None:
        self._timer.cancel()


def _timeout_or(watchdog: _Watchdog, code: str, message: str) -> _Failure:
    if watchdog.fired:
        return _Failure("timeout", "the request did not complete within its deadline")
    return _Failure(code, message)


def _response_headers(raw: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, value in raw:
        lower = name.lower()
        if lower in _RESPONSE_DROPPED:
            continue  # about the hop we already decoded (e.g. chunking), not the content
        out.append((lower, bound_text(value, HTTP_HEADER_VALUE_MAX_BYTES)))
        if len(out) == HTTP_HEADERS_MAX:
            break
    return out


def _read_body(response: http.client.HTTPResponse, clock: _Clock) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    total = 0
    while total <= HTTP_RESPONSE_MAX_BYTES:
        clock.left()
        chunk = response.read(min(_READ_CHUNK, HTTP_RESPONSE_MAX_BYTES + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    body = b"".join(chunks)
    if total > HTTP_RESPONSE_MAX_BYTES:
        # Cut, flagged, and the rest never read: the connection is closed, not drained.
        return body[:HTTP_RESPONSE_MAX_BYTES], True
    return body, False


def _os_text(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__


# --- the import ---------------------------------------------------------------------------------


class HttpRequestBackend:
    """`request.send` for one plugin: `execute_http_request` with the plugin's grants,
    declared targets and the time left in the current guest call."""

    def __init__(
        self,
        grants: GrantSet,
        declared: tuple[Target, ...],
        diagnostics: DiagnosticLog | None,
        deadline_provider: DeadlineProvider,
        *,
        api_declared: bool = True,
        resolver: Resolver | None = None,
    ) -> None:
        """`deadline_provider()` returns the seconds left in the current guest call (None
        when unknown). `api_declared`: whether the manifest lists `request` in `host_apis`."""
        self.grants = grants
        self.declared = declared
        self.diagnostics = diagnostics
        self.deadline_provider = deadline_provider
        self.api_declared = api_declared
        self.resolver = resolver

    @classmethod
    def for_manifest(
        cls,
        grants: GrantSet,
        manifest: Manifest,
        diagnostics: DiagnosticLog | None,
        deadline_provider: DeadlineProvider,
    ) -> HttpRequestBackend:
        return cls(grants, manifest.request_targets, diagnostics, deadline_provider, api_declared="request" in manifest.host_apis)

    def time_budget(self) -> float:
        """The longest a request may take now: the guest call's remaining time minus a
        margin for the guest to handle the answer, and never more than the maximum."""
        try:
            remaining = self.deadline_provider()
        except Exception:
            remaining = None
        if remaining is None:
            return HTTP_TIMEOUT_MAX_S
        return min(HTTP_TIMEOUT_MAX_S, remaining - HOST_IMPORT_DEADLINE_MARGIN_S)

    def send(self, request: dict[str, Any]) -> Any:
        return execute_http_request(
            request,
            grants=self.grants,
            declared=self.declared,
            timeout_s=self.time_budget(),
            api_declared=self.api_declared,
            diagnostics=self.diagnostics,
            resolver=self.resolver,
        )
