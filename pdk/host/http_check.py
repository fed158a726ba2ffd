"""The one shape check of an outbound HTTP request from a plugin.

Used by the `request` host import (`pdk.host.http_api`) and by `http-request` output
commands (`pdk.host.runtime.commands`), so both refuse exactly the same requests:

- method: an RFC 9110 token, sent upper-case; CONNECT (tunnels) refused;
- url: an absolute http(s) URL that target matching can judge (`parse_request`);
- headers: at most `HTTP_HEADERS_MAX` (name, value) string pairs; names are tokens;
  hop-by-hop and upgrade headers, `host`, `content-length` and credential headers
  (`authorization`, `cookie`, `proxy-authorization`, and every header a grant secret
  is sent as) are the host's to set; values are visible ASCII, space and tab (no CR,
  LF, NUL, VT or other controls) and at most `HTTP_HEADER_VALUE_MAX_BYTES`;
- body: bytes, at most `HTTP_REQUEST_BODY_MAX_BYTES`;
- timeout_ms (the import only): a positive integer.

A refusal is a `RequestInvalid` with the contract's code (`invalid` or `too_large`).
Authority (grants, declared targets) is not judged here.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from pdk._bounds import bound_text
from pdk._contract import token_re
from pdk.limits import HTTP_HEADER_VALUE_MAX_BYTES, HTTP_HEADERS_MAX, HTTP_REQUEST_BODY_MAX_BYTES
from pdk.package.errors import PdkError
from pdk.package.targets import HTTP_SCHEMES, RequestLine, UrlError, parse_request

from .secrets import valid_header_value

__all__ = ["RequestInvalid", "RequestParts", "check_line", "check_parts"]

_TOKEN_RE = token_re(64)
# Headers that describe one connection, not the message, or switch protocols: the host
# owns the connection (and closes it after one exchange).
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer", "expect", "http2-settings"}
)
HOST_OWNED = frozenset({"host", "content-length"})
CREDENTIALS = frozenset({"authorization", "cookie", "proxy-authorization"})


class RequestInvalid(PdkError):
    """A request the host will not send; `code` is `invalid` or `too_large`."""

    default_code = "invalid"


@dataclass(frozen=True)
class RequestParts:
    headers: list[tuple[str, str]]
    body: bytes | None
    timeout_s: float | None  # what the guest asked for


def check_line(request: Any) -> RequestLine:
    """The method and URL, judged for shape (not authority)."""
    if not isinstance(request, Mapping):
        raise RequestInvalid("the request must be an http-request record")
    method, url = request.get("method"), request.get("url")
    if not isinstance(method, str) or not _TOKEN_RE.match(method):
        raise RequestInvalid("the method must be an HTTP method name such as GET")
    method = method.upper()
    if method == "CONNECT":
        raise RequestInvalid("CONNECT (tunnels) is not available to plugins")
    if not isinstance(url, str):
        raise RequestInvalid("the url must be a string")
    try:
        line = parse_request(url, method)
    except UrlError as exc:
        raise RequestInvalid(f"invalid url: {exc}") from None
    if line.scheme not in HTTP_SCHEMES:
        raise RequestInvalid(f"a request url must be http or https, not {line.scheme}")
    return line


def check_parts(request: Mapping[str, Any], secret_headers: Collection[str] = ()) -> RequestParts:
    """Headers, body and timeout. `secret_headers` (lower-case) are the headers the
    grant's secrets are sent as: a guest may not set them either."""
    headers = _headers(request.get("headers"), secret_headers)
    body = request.get("body")
    if body is not None:
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise RequestInvalid("the body must be bytes")
        body = bytes(body)
        if len(body) > HTTP_REQUEST_BODY_MAX_BYTES:
            raise RequestInvalid(f"the body is {len(body)} bytes; the limit is {HTTP_REQUEST_BODY_MAX_BYTES}", code="too_large")
    timeout_ms = request.get("timeout_ms")
    if timeout_ms is not None and (isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms <= 0):
        raise RequestInvalid("timeout_ms must be a positive number of milliseconds")
    return RequestParts(headers, body, timeout_ms / 1000 if timeout_ms is not None else None)


def _headers(raw: Any, secret_headers: Collection[str]) -> list[tuple[str, str]]:
    if raw is None:
        return []
    if not isinstance(raw, (list, tuple)):
        raise RequestInvalid("headers must be a list of (name, value) pairs")
    if len(raw) > HTTP_HEADERS_MAX:
        raise RequestInvalid(f"{len(raw)} headers; the limit is {HTTP_HEADERS_MAX}", code="too_large")
    out: list[tuple[str, str]] = []
    for index, pair in enumerate(raw):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(isinstance(p, str) for p in pair):
            raise RequestInvalid(f"header {index} is not a (name, value) pair of strings")
        name, value = pair
        if not _TOKEN_RE.match(name):
            raise RequestInvalid(f"header {index}: {bound_text(name, 64)!r} is not a valid header name")
        lower = name.lower()
        if lower in HOP_BY_HOP or lower.startswith("proxy-") and lower != "proxy-authorization":
            raise RequestInvalid(f"header {name!r} is hop-by-hop; the host manages the connection")
        if lower in HOST_OWNED:
            raise RequestInvalid(f"header {name!r} is set by the host from the url and body")
        if lower in CREDENTIALS or lower in secret_headers:
            # Credentials come from host-side secrets only; a guest-made credential header
            # could also smuggle a token the operator never approved.
            raise RequestInvalid(f"header {name!r} carries credentials and is set by the host only")
        if len(value.encode("utf-8", "surrogatepass")) > HTTP_HEADER_VALUE_MAX_BYTES:
            raise RequestInvalid(f"header {name!r} is longer than {HTTP_HEADER_VALUE_MAX_BYTES} bytes", code="too_large")
        if not valid_header_value(value):
            raise RequestInvalid(f"header {name!r} has characters other than visible ASCII, space and tab")
        out.append((name, value))
    return out
