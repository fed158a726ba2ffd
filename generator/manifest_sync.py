"""Keep `plugin.toml`'s generated declarations in agreement with the code.

`pdk build` owns `[[tools]]` entries' `description` and `input_schema`; everything
else in the file is the author's, and tomlkit keeps its comments and formatting."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.items import AoT, Comment, Table, Whitespace


@dataclass
class Drift:
    """What differs between the manifest and the code."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def describe(self) -> str:
        parts = []
        if self.added:
            parts.append(f"tools in the code but not in plugin.toml: {', '.join(self.added)}")
        if self.removed:
            parts.append(f"tools in plugin.toml but not in the code: {', '.join(self.removed)}")
        if self.changed:
            parts.append(f"tools whose description or input_schema differ: {', '.join(self.changed)}")
        return "; ".join(parts)


def _plain(value: Any) -> Any:
    """tomlkit items → plain Python for comparison."""
    if hasattr(value, "unwrap"):
        return value.unwrap()
    return value


def _toml_value(value: Any) -> Any:
    # Small leaf tables (e.g. {"type": "string"}) read best inline; larger ones as tables.
    if isinstance(value, dict):
        if all(not isinstance(v, (dict, list)) or (isinstance(v, list) and all(not isinstance(x, dict) for x in v)) for v in value.values()) and len(value) <= 4:
            inline = tomlkit.inline_table()
            for k, v in value.items():
                inline[k] = v
            return inline
        table = tomlkit.table()
        for k, v in value.items():
            table[k] = _toml_value(v)
        return table
    if isinstance(value, list) and any(isinstance(x, dict) for x in value):
        arr = tomlkit.array()
        for x in value:
            arr.append(_toml_value_inline(x))
        return arr
    return value


def _toml_value_inline(value: Any) -> Any:
    if isinstance(value, dict):
        inline = tomlkit.inline_table()
        for k, v in value.items():
            inline[k] = _toml_value_inline(v)
        return inline
    if isinstance(value, list):
        arr = tomlkit.array()
        for x in value:
            arr.append(_toml_value_inline(x))
        return arr
    return value


def toml_safe(value: Any, path: str = "$") -> Any:
    """TOML has no null: drop `default = null` (an absent default means the same to a
    validator) and refuse other nulls, which a TOML manifest cannot hold."""
    if isinstance(value, dict):
        return {k: toml_safe(v, f"{path}.{k}") for k, v in value.items() if not (k == "default" and v is None)}
    if isinstance(value, list):
        return [toml_safe(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if value is None:
        raise ValueError(f"{path}: null cannot be written to plugin.toml (TOML has no null)")
    return value


def tool_drift(doc: tomlkit.TOMLDocument, tools: list[dict[str, Any]]) -> Drift:
    current = {str(t.get("name")): t for t in _plain(doc.get("tools", []))}
    wanted = {t["name"]: t for t in tools}
    drift = Drift(
        added=[n for n in wanted if n not in current],
        removed=[n for n in current if n not in wanted],
    )
    for name in wanted:
        if name in current:
            cur, new = current[name], wanted[name]
            if cur.get("description") != new["description"] or cur.get("input_schema", {"type": "object"}) != new["input_schema"]:
                drift.changed.append(name)
    return drift


def _innermost_last(container: Container) -> Container:
    """The container whose text ends `container`'s text (descending into sub-tables)."""
    while container.body:
        item = container.body[-1][1]
        if isinstance(item, Table):
            container = item.value
        elif isinstance(item, AoT) and item.body:
            container = item.body[-1].value
        else:
            break
    return container


def _pop_trailing_trivia(aot: AoT) -> list[Comment | Whitespace]:
    """Remove and return the comments and blank lines that end the `[[tools]]` text.

    tomlkit attaches a comment written above the *next* section (`# Data dir` above
    `[[fs]]`) to the end of the preceding table; it belongs to that next section, so
    it must stay where it is when the tool tables are rewritten."""
    if not aot.body:
        return []
    container = _innermost_last(aot.body[-1].value)
    trivia: list[Comment | Whitespace] = []
    while container.body and container.body[-1][0] is None:
        item = container.body[-1][1]
        if not isinstance(item, (Comment, Whitespace)):
            break
        container.body.pop()
        trivia.insert(0, item)
    return trivia


def sync_tools(doc: tomlkit.TOMLDocument, tools: list[dict[str, Any]]) -> Drift:
    """Rewrite `[[tools]]` in place to match `tools`; returns what changed.

    The tool tables keep their position in the file, and everything that is not a
    tool table (comments above the next section included) is left as written."""
    drift = tool_drift(doc, tools)
    if not drift:
        return drift
    existing = doc.get("tools")
    by_name: dict[str, Table] = {}
    trivia: list[Comment | Whitespace] = []
    if isinstance(existing, AoT):
        trivia = _pop_trailing_trivia(existing)
        by_name = {str(t.get("name")): t for t in existing}
    aot = tomlkit.aot()
    for spec in tools:
        table = by_name.get(spec["name"])
        if table is None:
            table = tomlkit.table()
            table["name"] = spec["name"]
        table["description"] = spec["description"]
        if "input_schema" in table:
            del table["input_schema"]
        table["input_schema"] = _toml_value(spec["input_schema"])
        aot.append(table)
    if tools:
        if trivia:
            tail = _innermost_last(aot.body[-1].value)
            for item in trivia:
                tail.append(None, item)
        if isinstance(existing, AoT):
            doc["tools"] = aot  # replaced where it was, not moved to the end
        else:
            if "tools" in doc:
                del doc["tools"]
            doc.append("tools", aot)
    elif "tools" in doc:
        del doc["tools"]
    return drift
