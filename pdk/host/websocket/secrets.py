"""Handshake headers from host-side secret references.

A connection names the secrets it needs (`secrets = ["bot_token"]` in its manifest
entry); the grant says where each one lives (`env` or `file`) and which header it is
sent as. Values are read at every dial, so a rotated file is picked up on the next
reconnect, and they go into the handshake only: never to the guest, never into a
message, a diagnostic or the status (errors name the secret, not its value)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from pdk.limits import HTTP_HEADER_VALUE_MAX_BYTES

from ..grants import SecretRef

# The handshake's own headers are the WebSocket library's to set.
RESERVED_HEADERS = frozenset(
    {"host", "upgrade", "connection", "content-length", "transfer-encoding"}
)
_VALUE_RE = re.compile(r"^[\t\x20-\x7e\x80-\xff]*$")


class SecretUnavailable(Exception):
    """A secret could not be read or is not a valid header value. The message names
    the secret only."""


def handshake_headers(refs: Sequence[SecretRef]) -> list[tuple[str, str]]:
    """`(header, value)` pairs for the handshake, read now."""
    out: list[tuple[str, str]] = []
    for ref in refs:
        header = ref.header or ""
        lowered = header.lower()
        if not header or lowered in RESERVED_HEADERS or lowered.startswith("sec-websocket-"):
            raise SecretUnavailable(f"secret {ref.name!r} cannot be sent as header {header!r}")
        value = _read(ref)
        if not value or len(value.encode("utf-8")) > HTTP_HEADER_VALUE_MAX_BYTES or not _VALUE_RE.match(value):
            raise SecretUnavailable(f"secret {ref.name!r} is not a valid header value")
        out.append((header, value))
    return out


def _read(ref: SecretRef) -> str:
    if ref.env is not None:
        value = os.environ.get(ref.env)
        if value is None:
            raise SecretUnavailable(f"secret {ref.name!r} is not available (its environment variable is not set)")
        return value
    if ref.file is not None:
        try:
            with open(ref.file, "rb") as handle:
                raw = handle.read(HTTP_HEADER_VALUE_MAX_BYTES + 3)
            # A trailing newline is how files end, not part of the secret.
            return raw.decode("utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError):
            # The file's host path is the operator's business; do not show it.
            raise SecretUnavailable(f"secret {ref.name!r} could not be read from its file") from None
    raise SecretUnavailable(f"secret {ref.name!r} has no source")
