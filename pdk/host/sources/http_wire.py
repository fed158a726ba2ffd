"""Bounded HTTP/1.x request parsing for the ingress listener.

Nothing is read beyond its bound: the request head (request line + headers) is read
line by line against `HTTP_INGRESS_HEADERS_MAX_BYTES`, the body only after its
declared Content-Length was checked against `HTTP_INGRESS_BODY_MAX_BYTES`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

MAX_HEADER_COUNT = 100
_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_VERSION_RE = re.compile(r"^HTTP/(\d)\.(\d)$")


class Readable(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...
    def read(self, size: int = -1, /) -> bytes: ...


class HttpError(Exception):
    """A request answered by the listener itself, with a typed error code."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


@dataclass
class RequestHead:
    method: str
    target: str
    version: tuple[int, int]
    headers: list[tuple[str, str]] = field(default_factory=list)  # names lower-cased
    size: int = 0

    @property
    def path(self) -> str:
        """The target's path: absolute-form is reduced to its path, the query dropped."""
        target = self.target
        if target.startswith(("http://", "https://")):
            rest = target.split("://", 1)[1]
            target = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        return target.split("?", 1)[0].split("#", 1)[0]

    def get(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for v in self.get_all("connection") for t in v.split(",")}
        if self.version >= (1, 1):
            return "close" not in tokens
        return False  # HTTP/1.0 connections are closed after one response

    @property
    def expects_continue(self) -> bool:
        return (self.get("expect") or "").strip().lower() == "100-continue"


def read_head(rfile: Readable, limit: int) -> RequestHead | None:
    """Read one request head. None on a clean end of stream before the first byte.
    Raises `HttpError` (400, 414, 431, 505) for a malformed or oversized head."""
    total = 0
    lines: list[bytes] = []
    while True:
        line = rfile.readline(limit - total + 1)
        if not line:
            if not lines and total == 0:
                return None
            raise HttpError(400, "bad_request", "the request head ended before its blank line")
        total += len(line)
        if total > limit or not line.endswith(b"\n"):
            if not lines:
                raise HttpError(414, "uri_too_long", f"the request line is longer than {limit} bytes")
            raise HttpError(431, "headers_too_large", f"the request head is larger than {limit} bytes")
        if line in (b"\r\n", b"\n"):
            if not lines:
                continue  # tolerated: empty lines before the request line (RFC 9112 2.2)
            break
        lines.append(line)
        if len(lines) > MAX_HEADER_COUNT + 1:
            raise HttpError(431, "headers_too_large", f"more than {MAX_HEADER_COUNT} header fields")
    head = _parse_request_line(lines[0].rstrip(b"\r\n").decode("latin-1"))
    head.size = total
    for raw in lines[1:]:
        text = raw.rstrip(b"\r\n").decode("latin-1")
        if text[:1] in (" ", "\t"):
            raise HttpError(400, "bad_request", "obsolete header line folding is not accepted")
        name, sep, value = text.partition(":")
        if not sep or not _TOKEN_RE.match(name):
            raise HttpError(400, "bad_request", f"malformed header field {name[:64]!r}")
        head.headers.append((name.lower(), value.strip(" \t")))
    return head


def _parse_request_line(line: str) -> RequestHead:
    parts = line.split(" ")
    if len(parts) != 3 or not _TOKEN_RE.match(parts[0]) or not parts[1]:
        raise HttpError(400, "bad_request", "malformed request line")
    method, target, version = parts
    m = _VERSION_RE.match(version)
    if m is None:
        raise HttpError(400, "bad_request", f"malformed HTTP version {version[:16]!r}")
    if m.group(1) != "1":
        raise HttpError(505, "version_not_supported", "only HTTP/1.0 and HTTP/1.1 are served")
    if not (target.startswith("/") or target.startswith(("http://", "https://")) or target == "*"):
        raise HttpError(400, "bad_request", "malformed request target")
    return RequestHead(method, target, (1, int(m.group(2))))


def content_length(head: RequestHead, limit: int) -> int:
    """The body length. Raises 411 for Transfer-Encoding (only Content-Length bodies
    are accepted), 400 for a malformed or conflicting length, 413 above `limit`."""
    if head.get_all("transfer-encoding"):
        raise HttpError(411, "length_required", "send the body with a Content-Length (Transfer-Encoding is not accepted)")
    values = {v.strip() for raw in head.get_all("content-length") for v in raw.split(",")}
    if not values:
        return 0
    if len(values) > 1:
        raise HttpError(400, "bad_request", "conflicting Content-Length values")
    value = values.pop()
    if not value.isdigit() or len(value) > 19:
        raise HttpError(400, "bad_request", "malformed Content-Length")
    length = int(value)
    if length > limit:
        raise HttpError(413, "payload_too_large", f"the body is {length} bytes; this listener accepts at most {limit}")
    return length


def read_body(rfile: Readable, length: int) -> bytes | None:
    """Exactly `length` bytes, or None when the client closed the stream early."""
    chunks: list[bytes] = []
    remaining = length
    while remaining > 0:
        chunk = rfile.read(remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


_REASONS = {
    100: "Continue", 202: "Accepted", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
    411: "Length Required", 413: "Content Too Large", 414: "URI Too Long", 422: "Unprocessable Content",
    431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


def render_response(status: int, body: bytes, *, headers: dict[str, str] | None = None, close: bool = False, content_type: str = "application/json") -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    lines.extend(f"{k}: {v}" for k, v in (headers or {}).items())
    lines.append("Connection: close" if close else "Connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
