"""HTTP fetch: call an HTTP API through the host's `request` import (`pdk.http`).

The plugin never opens a socket (it cannot: the sandbox has no network). Every request
goes to the host, which allows it only when `plugin.toml` declares the target and the
operator's grant allows it, adds host-side credentials the plugin never sees, bounds
the response and answers with a typed error instead of trapping. This module turns
those host errors into typed tool errors (`details.host_error` keeps the host's code).

Every module is imported at module level: componentize-py keeps only the modules
imported while it builds the component.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, Optional

from pdk import HostApiError, HttpResponse, Plugin, ToolError, http, log

plugin = Plugin()

# How host `request` errors surface as tool errors. `connection_failed` and `timeout`
# may well succeed on a second try; the others will not.
_TOOL_CODES = {"denied": "denied", "timeout": "timeout", "invalid": "invalid_input", "too_large": "invalid_input"}
_RETRYABLE = frozenset({"timeout", "connection_failed"})
_PREVIEW_CHARS = 2048


def _send(method: str, url: str, headers: dict[str, str], body: Optional[str], timeout_ms: Optional[int]) -> HttpResponse:
    try:
        return http.request(method, url, headers=headers, body=body, timeout_ms=timeout_ms)
    except HostApiError as exc:
        log.warn(f"{method} {url}: {exc.code}")
        raise ToolError(
            f"request {exc.code}: {exc.message}",
            code=_TOOL_CODES.get(exc.code, "failed"),
            details={"host_error": exc.code},
            retryable=exc.code in _RETRYABLE,
        ) from None


@dataclass
class FetchedJson:
    status: int
    data: Any


@plugin.tool
def fetch_json(url: str, timeout_ms: Optional[int] = None) -> FetchedJson:
    """GET a JSON document from a URL that plugin.toml declares and the operator granted."""
    response = _send("GET", url, {"accept": "application/json"}, None, timeout_ms)
    if not 200 <= response.status < 300:
        raise ToolError(
            f"HTTP {response.status} from the API",
            code="failed",
            details={"status": response.status},
            retryable=response.status >= 500,
        )
    if response.truncated:
        raise ToolError("the response is too large to parse as JSON", code="failed", details={"bytes": len(response.body)})
    try:
        data = json.loads(response.body)
    except ValueError:
        raise ToolError("the response is not JSON", code="failed", details={"status": response.status}) from None
    log.info(f"fetch_json {url}: {response.status}")
    return FetchedJson(status=response.status, data=data)


@dataclass
class HttpResult:
    status: int
    headers: list[list[str]]
    body_preview: str
    body_bytes: int
    truncated: bool


@plugin.tool
def request(
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
    url: str,
    headers: Optional[dict[str, str]] = None,
    body: Optional[str] = None,
    timeout_ms: Optional[int] = None,
) -> HttpResult:
    """Send one HTTP request; report the status, headers and a preview of the body (redirects are not followed)."""
    response = _send(method, url, headers or {}, body, timeout_ms)
    return HttpResult(
        status=response.status,
        headers=[[name, value] for name, value in response.headers],
        body_preview=response.text[:_PREVIEW_CHARS],
        body_bytes=len(response.body),
        truncated=response.truncated,
    )
