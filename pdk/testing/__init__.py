"""Testing helpers for plugin authors: the pytest plugin's fixtures (`pdk.testing.plugin`,
loaded automatically once yoi-pdk is installed), `FakeHost` for unit tests, loopback
`HttpTestServer` / `WebSocketTestServer` for end-to-end tests, and `Case` (the host's
variant value, `pdk.host.Case`) for event payloads: `runtime.submit(..., Case("text", "hi"))`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .fake_host import FakeHost

if TYPE_CHECKING:
    from pdk.host.codec import Case
    from .http_server import HttpTestServer, RecordedRequest, ScriptedResponse
    from .websocket_server import Handshake, WebSocketTestServer

__all__ = ["Case", "FakeHost", "Handshake", "HttpTestServer", "RecordedRequest", "ScriptedResponse", "WebSocketTestServer"]

_LAZY = {
    "Case": "pdk.host.codec",
    "HttpTestServer": f"{__name__}.http_server",
    "RecordedRequest": f"{__name__}.http_server",
    "ScriptedResponse": f"{__name__}.http_server",
    "Handshake": f"{__name__}.websocket_server",
    "WebSocketTestServer": f"{__name__}.websocket_server",
}


def __getattr__(name: str) -> Any:
    # The servers pull in http.server / websockets, Case wasmtime; unit tests that only need
    # FakeHost skip that.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pdk.testing' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)
