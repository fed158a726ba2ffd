"""What the ingress listener checks in a request head, on top of h11's parsing.

h11 (see `http_conn.py`) frames and validates the HTTP/1.1 syntax: the request line,
header names and values, Content-Length (digits only, one value), Transfer-Encoding,
one Host on HTTP/1.1, and the head's size. This module turns an `h11.Request` into a
`RequestHead` and refuses what the listener does not serve, each with a typed
`HttpError` (status + code): folded header lines, too many fields, a malformed Host, an
HTTP version other than 1.0/1.1, a body framed by Transfer-Encoding, a Content-Encoding,
a Content-Length above the bound."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import h11

from pdk.limits import HTTP_INGRESS_HEADER_FIELDS_MAX

MAX_HEADER_COUNT = HTTP_INGRESS_HEADER_FIELDS_MAX
# RFC 3986 host (reg-name, IPv4, or a bracketed IPv6/IPvFuture literal) and an optional port.
_HOST_RE = re.compile(r"^(?:\[[0-9A-Fa-f:.vV]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]*)(?::[0-9]{0,5})?$")
_FOLD_RE = re.compile(rb"\n[ \t]")
HEAD_END_RE = re.compile(rb"\r?\n\r?\n")  # the blank line that ends a head


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


def head_of(request: h11.Request, raw: bytes) -> RequestHead:
    """The checked head of a request h11 parsed. `raw` is the head's bytes as received
    (see `http_conn.Stream`), for the checks h11 leaves to the server."""
    if _FOLD_RE.search(raw):
        raise HttpError(400, "bad_request", "obsolete header line folding is not accepted")
    version = request.http_version.decode("ascii")
    if version not in ("1.0", "1.1"):
        raise HttpError(505, "version_not_supported", "only HTTP/1.0 and HTTP/1.1 are served")
    if len(request.headers) > MAX_HEADER_COUNT:
        raise HttpError(431, "headers_too_large", f"more than {MAX_HEADER_COUNT} header fields")
    head = RequestHead(
        request.method.decode("ascii"),
        request.target.decode("ascii"),
        (1, int(version[2])),
        [(name.decode("ascii"), value.decode("latin-1")) for name, value in request.headers],
    )
    target = head.target
    if not (target.startswith("/") or target.startswith(("http://", "https://")) or target == "*"):
        raise HttpError(400, "bad_request", "malformed request target")
    host = head.get("host")
    if host is not None and not _HOST_RE.fullmatch(host):
        raise HttpError(400, "bad_request", "malformed Host header")
    return head


def content_length(head: RequestHead, limit: int) -> int:
    """The body length. Raises 411 for Transfer-Encoding (only Content-Length bodies
    are accepted), 400 for Transfer-Encoding together with Content-Length, 415 for a
    Content-Encoding (bodies are never decompressed), 413 above `limit`. h11 has
    already refused a malformed or conflicting Content-Length."""
    if head.get_all("transfer-encoding"):
        if head.get_all("content-length"):
            raise HttpError(400, "bad_request", "Transfer-Encoding and Content-Length together are not accepted")
        raise HttpError(411, "length_required", "send the body with a Content-Length (Transfer-Encoding is not accepted)")
    codings = {t.strip().lower() for v in head.get_all("content-encoding") for t in v.split(",")} - {"", "identity"}
    if codings:
        raise HttpError(
            415, "unsupported_content_encoding",
            f"Content-Encoding {', '.join(sorted(codings))[:64]!r} is not accepted; send the body as is",
            headers={"Accept-Encoding": "identity"},
        )
    value = head.get("content-length")
    length = int(value) if value is not None else 0  # h11 checked: ASCII digits, at most 20
    if length > limit:
        raise HttpError(413, "payload_too_large", f"the body is {length} bytes; this listener accepts at most {limit}")
    return length


def head_too_large(raw: bytes, limit: int) -> HttpError:
    """414 while the request line itself is longer than `limit`, 431 after."""
    line_end = raw.find(b"\n")
    if line_end < 0 or line_end > limit:
        return HttpError(414, "uri_too_long", f"the request line is longer than {limit} bytes")
    return HttpError(431, "headers_too_large", f"the request head is larger than {limit} bytes")


def error_of(exc: h11.RemoteProtocolError, raw: bytes) -> HttpError:
    """The answer to a request h11 could not parse. h11's 431 for an over-long head
    becomes 414 while the request line itself has not ended; its hints other than 4xx
    (501 for an unknown Transfer-Encoding) become 400, so every malformed request gets
    a 4xx."""
    status = exc.error_status_hint
    message = str(exc)[:200]
    if status == 431:
        return head_too_large(raw, len(raw))
    if not 400 <= status < 500:
        status = 400
    return HttpError(status, "bad_request", f"malformed request: {message}")
