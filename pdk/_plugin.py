"""`Plugin`: the registry that turns decorated, type-hinted functions into a plugin."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from ._decode import DecodeError, decode_arguments
from ._encode import EncodeError, to_json_value
from ._schema import input_schema_for
from ._wire import WireToolOutput, dumps, tool_output
from .errors import ErrorCode, PluginError, ToolError

F = TypeVar("F", bound=Callable[..., Any])

_TOOL_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-.")


@dataclass(frozen=True)
class ToolOutput:
    """What a tool may return to control its summary explicitly.

    `summary` is a short human line (cut to 1 KiB); `content` is any JSON value
    (at most 64 KiB once encoded)."""

    summary: str
    content: Any = None


@dataclass
class ToolSpec:
    """One registered tool."""

    name: str
    description: str
    func: Callable[..., Any]
    _schema: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def input_schema(self) -> dict[str, Any]:
        if self._schema is None:
            self._schema = input_schema_for(self.func)
        return self._schema


def _description_of(func: Callable[..., Any]) -> str:
    doc = inspect.getdoc(func) or ""
    # The first paragraph is the description; the rest is for humans reading code.
    return doc.split("\n\n", 1)[0].replace("\n", " ").strip()


def _check_tool_name(name: str) -> None:
    if not name or len(name) > 64 or not set(name) <= _TOOL_NAME_CHARS or not name[0].isalpha():
        raise ValueError(
            f"invalid tool name {name!r}: use 1-64 lower-case letters, digits, '_', '-' or '.', starting with a letter"
        )


class Plugin:
    """A Yoi plugin: tools, and (for services and ingresses) lifecycle and event handlers.

    Create one at module level (`plugin = Plugin()`) and decorate plain functions.
    The functions stay ordinary Python: unit tests call them directly."""

    def __init__(self) -> None:
        self.tools: dict[str, ToolSpec] = {}

    # -- tools ---------------------------------------------------------------------------

    def tool(
        self,
        func: F | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> Any:
        """Register a model-callable tool. Usable bare (`@plugin.tool`) or with
        arguments (`@plugin.tool(name="count", description="...")`)."""

        def register(f: F) -> F:
            tool_name = name or f.__name__
            _check_tool_name(tool_name)
            if tool_name in self.tools:
                raise ValueError(f"tool {tool_name!r} is registered twice")
            self.tools[tool_name] = ToolSpec(
                name=tool_name, description=description or _description_of(f), func=f
            )
            return f

        return register(func) if func is not None else register

    def run_tool(self, name: str, input_json: str) -> WireToolOutput:
        """Decode, validate, call and bound one tool call, as the component does.

        Raises `PluginError` (or any exception the tool raised); the export glue turns
        both into typed errors."""
        spec = self.tools.get(name)
        if spec is None:
            raise PluginError(
                f"unknown tool {name!r}; this plugin has: {', '.join(sorted(self.tools)) or 'none'}",
                code=ErrorCode.UNSUPPORTED,
            )
        try:
            data = json.loads(input_json)
        except ValueError as exc:
            raise ToolError(f"input is not valid JSON: {exc}", code=ErrorCode.INVALID_INPUT) from None
        try:
            kwargs = decode_arguments(spec.func, data)
        except DecodeError as exc:
            raise ToolError(
                str(exc),
                code=ErrorCode.INVALID_INPUT,
                details={"errors": [{"path": p, "message": m} for p, m in exc.errors]},
            ) from None
        result = spec.func(**kwargs)
        return self._tool_output(name, result)

    @staticmethod
    def _tool_output(name: str, result: Any) -> WireToolOutput:
        try:
            if isinstance(result, ToolOutput):
                return tool_output(result.summary, to_json_value(result.content))
            if isinstance(result, str):
                # A short string is its own summary; a long one also travels whole as content.
                return tool_output(result, result if len(result.encode("utf-8")) > 1024 else None)
            content = to_json_value(result)
        except EncodeError as exc:
            raise ToolError(f"tool {name!r} returned a value that is not JSON: {exc}", code=ErrorCode.INVALID_OUTPUT) from None
        summary = f"{name}: {dumps(content)}" if content is not None else f"{name}: done"
        return tool_output(summary, content)
