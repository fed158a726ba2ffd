"""Char-safe bounding of text, shared by every guest output path."""

from __future__ import annotations

ELLIPSIS = "…"


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def bound_text(text: str, max_bytes: int, marker: str = ELLIPSIS) -> str:
    """Return `text` cut to at most `max_bytes` of UTF-8, never inside a character.

    The marker counts against the budget, so the result always fits."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    budget = max_bytes - len(marker.encode("utf-8"))
    if budget <= 0:
        return marker.encode("utf-8")[:max(max_bytes, 0)].decode("utf-8", "ignore")
    # errors="ignore" drops a partial trailing character instead of splitting it.
    return encoded[:budget].decode("utf-8", "ignore") + marker
