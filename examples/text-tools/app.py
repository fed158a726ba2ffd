"""Text tools: two tools of different shapes.

`text_stats` takes primitives and returns a dataclass; `reshape` takes a list of
records (TypedDict), an enum and a Literal, and returns plain JSON.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import Enum
from typing import Literal, Optional, TypedDict

from pdk import Plugin, ToolError, log

plugin = Plugin()


@dataclass
class TextStats:
    words: int
    unique_words: int
    lines: int
    top: list[str]


@plugin.tool
def text_stats(text: str, top: int = 3, case_sensitive: bool = False) -> TextStats:
    """Count the words, unique words and lines of a text, and list the most common words."""
    if top < 0 or top > 100:
        raise ToolError("top must be between 0 and 100", code="invalid_input", details={"top": top})
    words = text.split() if case_sensitive else text.lower().split()
    common = [w for w, _ in Counter(words).most_common(top)]
    log.info(f"text_stats: {len(words)} words")
    return TextStats(words=len(words), unique_words=len(set(words)), lines=len(text.splitlines()), top=common)


class Record(TypedDict):
    name: str
    value: float
    tags: list[str]


class SortOrder(Enum):
    ASCENDING = "asc"
    DESCENDING = "desc"


@plugin.tool(name="reshape")
def reshape_records(
    records: list[Record],
    key: Literal["name", "value"] = "name",
    order: SortOrder = SortOrder.ASCENDING,
    tag: Optional[str] = None,
) -> dict[str, object]:
    """Sort records by a key, optionally keep only those with a tag, and index them by name."""
    kept = [r for r in records if tag is None or tag in r["tags"]]
    kept.sort(key=lambda r: r[key], reverse=order is SortOrder.DESCENDING)
    return {
        "count": len(kept),
        "names": [r["name"] for r in kept],
        "by_name": {r["name"]: r["value"] for r in kept},
        "total": sum(r["value"] for r in kept),
    }
