"""Host-side secrets: the one reader, and the one rule for a secret sent as a header.

A grant names where each secret lives (`env` or `file`) and, for HTTP and WebSocket,
which header it is sent as. Values are read at every use (a request, a dial), so a
rotated file is picked up without a reload, and they go into headers only: never to
the guest, never into a message, a diagnostic or the status. Errors name the secret,
never its value nor the host path of its file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Sequence

from pdk.limits import HTTP_HEADER_VALUE_MAX_BYTES
from pdk.package.errors import PdkError

from .grants import SecretRef

__all__ = ["SecretUnavailable", "header_secrets", "read_secret", "valid_header_value"]

# Visible ASCII, space and tab: what every server (and WebSocket library) parses the same way.
_HEADER_VALUE_RE = re.compile(r"[\t\x20-\x7e]*\Z")


class SecretUnavailable(PdkError):
    """A secret could not be read or is not a valid header value. The message names
    the secret only."""

    default_code = "secret_unavailable"


def valid_header_value(value: str) -> bool:
    """Whether `value` may be sent as a header value: visible ASCII, space and tab, at
    most `HTTP_HEADER_VALUE_MAX_BYTES` (no CR, LF, NUL, VT or other controls)."""
    return len(value) <= HTTP_HEADER_VALUE_MAX_BYTES and _HEADER_VALUE_RE.match(value) is not None


def read_secret(ref: SecretRef) -> str:
    """The secret's value, read now. A trailing newline of a file is not part of it."""
    if ref.env is not None:
        value = os.environ.get(ref.env)
        if value is None:
            raise SecretUnavailable(f"secret {ref.name!r} is not available (its environment variable is not set)")
        return value
    if ref.file is not None:
        try:
            with open(ref.file, "rb") as handle:
                raw = handle.read(HTTP_HEADER_VALUE_MAX_BYTES + 3)
            return raw.decode("utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError):
            # The file's host path is the operator's business; do not show it.
            raise SecretUnavailable(f"secret {ref.name!r} could not be read from its file") from None
    raise SecretUnavailable(f"secret {ref.name!r} has no source")


def header_secrets(refs: Sequence[SecretRef], *, reserved: Collection[str] = (), reserved_prefixes: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """`(header, value)` for every secret with a header, read now. A header in
    `reserved` (lower-case) or starting with one of `reserved_prefixes` is refused:
    it belongs to the protocol, not to a secret."""
    out: list[tuple[str, str]] = []
    for ref in refs:
        if not ref.header:
            continue
        lowered = ref.header.lower()
        if lowered in reserved or lowered.startswith(reserved_prefixes):
            raise SecretUnavailable(f"secret {ref.name!r} cannot be sent as header {ref.header!r}")
        value = read_secret(ref)
        if not value or not valid_header_value(value):
            raise SecretUnavailable(f"secret {ref.name!r} is not a valid header value")
        out.append((ref.header, value))
    return out
