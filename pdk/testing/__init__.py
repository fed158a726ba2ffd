"""Testing helpers for plugin authors: the pytest plugin's fixtures (`pdk.testing.plugin`,
loaded automatically once yoi-pdk is installed), `FakeHost` for unit tests, and loopback
`HttpTestServer` / `WebSocketTestServer` for end-to-end tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .fake_host import FakeHost

if TYPE_CHECKING:
    from .http_server import HttpTestServer, RecordedRequest, ScriptedResponse
    from .websocket_server import Handshake, WebSocketTestServer

__all__ = ["FakeHost", "Handshake", "HttpTestServer", "RecordedRequest", "ScriptedResponse", "WebSocketTestServer"]

_LAZY = {
    "HttpTestServer": "http_server",
    "RecordedRequest": "http_server",
    "ScriptedResponse": "http_server",
    "Handshake": "websocket_server",
    "WebSocketTestServer": "websocket_server",
}


def __getattr__(name: str) -> Any:
    # The servers pull in http.server / websockets; unit tests that only need FakeHost skip that.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pdk.testing' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)
