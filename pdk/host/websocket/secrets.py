"""Handshake headers from host-side secret references.

A connection names the secrets it needs (`secrets = ["bot_token"]` in its manifest
entry); the grant says where each one lives (`env` or `file`) and which header it is
sent as. Reading and the header-value rule are `pdk.host.secrets`' (the same for
outbound HTTP); this module adds what the handshake reserves."""

from __future__ import annotations

from collections.abc import Sequence

from ..grants import SecretRef
from ..secrets import SecretUnavailable, header_secrets

__all__ = ["RESERVED_HEADERS", "SecretUnavailable", "handshake_headers"]

# The handshake's own headers are the WebSocket library's to set.
RESERVED_HEADERS = frozenset(
    {"host", "upgrade", "connection", "content-length", "transfer-encoding"}
)


def handshake_headers(refs: Sequence[SecretRef]) -> list[tuple[str, str]]:
    """`(header, value)` pairs for the handshake, read now. Every secret of a
    connection is sent as a header, so one without a header is refused."""
    for ref in refs:
        if not ref.header:
            raise SecretUnavailable(f"secret {ref.name!r} cannot be sent as header {ref.header or ''!r}")
    return header_secrets(refs, reserved=RESERVED_HEADERS, reserved_prefixes=("sec-websocket-",))
