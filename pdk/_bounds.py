"""Char-safe bounding of text: the one `bound_text` of the guest and the host.

Standard library only: bundled into every component (the guest bounds its output
with it) and imported by the host (which bounds everything again)."""

from __future__ import annotations

import re

ELLIPSIS = "…"

_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def bound_text(text: str, max_bytes: int, marker: str = ELLIPSIS) -> str:
    """`text` cut to at most `max_bytes` bytes of UTF-8, never inside a character.

    When a cut is needed, `marker` is appended and counts against the budget; if even
    the marker does not fit, the marker itself is cut (char-safely). Lone surrogates,
    which cannot be encoded, become U+FFFD first, so the result is always valid UTF-8."""
    if max_bytes < 0:
        raise ValueError("max_bytes must be >= 0")
    if len(text) <= max_bytes and str.isascii(text):  # one byte per character: nothing to cut or replace
        return text
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError:
        text = _SURROGATE_RE.sub("\ufffd", text)
        encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    marker = encodable(marker)
    marker_bytes = marker.encode("utf-8")
    if len(marker_bytes) > max_bytes:
        return _cut_utf8(marker_bytes, max_bytes)
    return _cut_utf8(encoded, max_bytes - len(marker_bytes)) + marker


def _cut_utf8(encoded: bytes, limit: int) -> str:
    cut = limit
    # Continuation bytes look like 0b10xxxxxx; step back to the start of the character.
    while 0 < cut < len(encoded) and (encoded[cut] & 0xC0) == 0x80:
        cut -= 1
    return encoded[:cut].decode("utf-8")


def encodable(text: str) -> str:
    """`text` with lone surrogates (not encodable as UTF-8) replaced by U+FFFD."""
    if str.isascii(text):  # a flag check: no copy
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE_RE.sub("\ufffd", text)
    return text
