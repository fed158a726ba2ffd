"""Output-command builders. A handler returns these; the host validates, grant-checks
and executes each one and records a result.

    from pdk import commands
    return [commands.emit("orders", {"id": 7}), commands.log("info", "handled")]
"""

from ._events import emit, http_request, log, status_update, websocket_send

__all__ = ["emit", "http_request", "log", "status_update", "websocket_send"]
