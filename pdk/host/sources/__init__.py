"""Event sources owned by the host: timers and the inbound HTTP webhook listener.

    from pdk.host.sources import TimerSource, HttpIngressServer, timers_for

    timers = timers_for(rt)                        # one TimerSource per "timer" ingress
    for t in timers: t.start()
    http = HttpIngressServer([rt], port=0)         # loopback; RouteConflict on a shared path
    port = http.start()
    ...
    http.stop(); [t.stop() for t in timers]

    ws = websocket_driver_for(rt)                  # None without a "websocket" ingress
    ws.start() ... ws.stop()                       # see pdk.host.websocket

Manual dispatch is `rt.submit(...)` itself (and `pdk send`). Each source publishes
its state in `rt.sources[name]` ("timer:<ingress>", "http:<ingress>", "http",
"websocket:<connection>")."""

from __future__ import annotations

from typing import Any

from ._runtime import ingresses_with_source
from .http import REFUSAL_STATUS, HttpIngressServer
from .http_wire import HttpError
from .payload import payload_from
from .routes import Route, RouteConflict, build_routes
from .timer import TimerSource


def timers_for(rt: Any) -> list[TimerSource]:
    """One (unstarted) `TimerSource` per ingress of `rt` with the "timer" source."""
    return [TimerSource(rt, decl) for decl in ingresses_with_source(rt, "timer")]


def has_http_ingress(rt: Any) -> bool:
    return bool(ingresses_with_source(rt, "http"))


def websocket_driver_for(rt: Any) -> Any:
    """A (not started) `WebSocketDriver` for the connections of `rt`'s plugin, or None
    when no ingress has the "websocket" source. Start it after `rt.start()` and stop
    it before `rt.stop()` (intake first). See `pdk.host.websocket`."""
    if not ingresses_with_source(rt, "websocket"):
        return None
    from pdk.host.websocket import WebSocketDriver  # the websockets library only when needed

    return WebSocketDriver(rt, rt.plugin, rt.plugin.grants)


__all__ = [
    "HttpError",
    "HttpIngressServer",
    "REFUSAL_STATUS",
    "Route",
    "RouteConflict",
    "TimerSource",
    "build_routes",
    "has_http_ingress",
    "payload_from",
    "timers_for",
    "websocket_driver_for",
]
