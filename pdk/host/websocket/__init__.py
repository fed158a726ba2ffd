"""Host-owned WebSocket connections for Service and Ingress plugins.

A plugin never holds a socket: the host dials the connections its ingresses declare
(when declared *and* granted), reads frames into events on the owning ingress's queue,
keeps the connection alive (heartbeat, reconnect with backoff and jitter), and sends
what the plugin asks for through `websocket-send` output commands.

    from pdk.host.websocket import WebSocketDriver, DriverOptions

    driver = WebSocketDriver(rt, loaded_plugin, loaded_plugin.grants)
    driver.start()                 # non-blocking; registers the websocket_send executor
    ...
    driver.status()                # per connection: state, counters, last error
    driver.stop()                  # clean close (1001), no events

Manifest (owned by an ingress with the "websocket" source)::

    host_apis = ["websocket"]

    [[websocket]]                      # declared targets (the grant must allow them too)
    scheme = "wss"
    host = "gateway.example.com"

    [[ingresses]]
    name = "chat"
    sources = ["websocket"]
    event_kinds = ["open", "text", "close", "reconnected"]

    [[ingresses.connections]]
    name = "gateway"
    url = "wss://gateway.example.com/v1"
    event_kinds = ["text"]             # optional: a subset of the ingress's kinds
    subprotocols = ["chat.v1"]         # optional
    secrets = ["bot_token"]            # optional: grant secrets sent as handshake headers
"""

from .connection import CloseResult, Connection, describe_dial_error
from .driver import COMMAND_KIND, WebSocketDriver
from .options import Backoff, DriverOptions
from .plan import EVENT_KINDS, ConnectionPlan, ConnectionSpec, check_connection, declared_connections, plan_connections
from .secrets import SecretUnavailable, handshake_headers
from .send import FAILURE_REASONS, InvalidSend, OutboundMessage, parse_send
from .stats import STATES, ConnectionStats

__all__ = [
    "COMMAND_KIND",
    "EVENT_KINDS",
    "FAILURE_REASONS",
    "STATES",
    "Backoff",
    "CloseResult",
    "Connection",
    "ConnectionPlan",
    "ConnectionSpec",
    "ConnectionStats",
    "DriverOptions",
    "InvalidSend",
    "OutboundMessage",
    "SecretUnavailable",
    "WebSocketDriver",
    "check_connection",
    "declared_connections",
    "describe_dial_error",
    "handshake_headers",
    "parse_send",
    "plan_connections",
]
