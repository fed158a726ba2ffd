"""Import a plugin's app module in a child CPython and describe its `Plugin`.

Run as `python -m generator.introspect DIR MODULE [ATTR]`; prints one JSON document.
A child process keeps the author's module out of the toolchain's interpreter (no
stale `sys.modules` between builds, no side effects on the caller)."""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any


def _find_plugin(module: Any, attr: str | None) -> Any:
    from pdk import Plugin

    if attr:
        return getattr(module, attr, None)
    found = [v for v in vars(module).values() if isinstance(v, Plugin)]
    return found[0] if len(found) == 1 else (None if not found else "many")


def _param_line(func: Any, name: str) -> tuple[str, int]:
    """Where parameter `name` of `func` is written: (file, line); the def line, or 0,
    when the source cannot be read."""
    import ast
    import inspect

    code = getattr(func, "__code__", None)
    path = (inspect.getsourcefile(func) if code is not None else None) or "?"
    line = code.co_firstlineno if code is not None else 0
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        return path, line
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == func.__name__:
            every = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
            for arg in every:
                if arg.arg == name and abs(node.lineno - line) <= len(node.decorator_list) + 1:
                    return path, arg.lineno
    return path, line


def untyped_parameters(plugin_dir: str, spec: Any) -> list[str]:
    """One warning per tool parameter without a type hint (it accepts any JSON value,
    unchecked): `app.py:12: tool 'x': parameter 'y' has no type hint ...`."""
    import inspect
    import os

    try:
        params = inspect.signature(spec.func).parameters.values()
    except (TypeError, ValueError):
        return []
    warnings = []
    for param in params:
        if param.annotation is inspect.Parameter.empty and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            path, line = _param_line(spec.func, param.name)
            shown = os.path.relpath(path, plugin_dir) if os.path.isabs(path) and path.startswith(os.path.abspath(plugin_dir)) else path
            example = type(param.default).__name__ if isinstance(param.default, (bool, int, float, str)) else "str"
            warnings.append(
                f"{shown}:{line}: tool {spec.name!r}: parameter {param.name!r} has no type hint, so it accepts any JSON value "
                f"unchecked; annotate it (e.g. `{param.name}: {example}`)"
            )
    return warnings


def describe(plugin_dir: str, module_name: str, attr: str | None) -> dict[str, Any]:
    import importlib

    from pdk import Plugin

    sys.path.insert(0, plugin_dir)
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as exc:
        return {"error": {"kind": "syntax", "file": exc.filename, "line": exc.lineno, "message": exc.msg}}
    except Exception as exc:  # the author's import failed: report where
        tb = traceback.extract_tb(exc.__traceback__)
        frame = tb[-1] if tb else None
        return {
            "error": {
                "kind": "import",
                "exception": type(exc).__name__,
                "message": str(exc),
                "file": frame.filename if frame else None,
                "line": frame.lineno if frame else None,
            }
        }
    plugin = _find_plugin(module, attr)
    if plugin == "many":
        return {"error": {"kind": "plugin", "message": f"module {module_name!r} defines several Plugin objects; name one with [build] plugin = \"...\""}}
    if not isinstance(plugin, Plugin):
        where = f"attribute {attr!r}" if attr else "a module-level `plugin = Plugin()`"
        return {"error": {"kind": "plugin", "message": f"module {module_name!r} has no {where}"}}
    tools = []
    warnings: list[str] = []
    for spec in plugin.tools.values():
        try:
            schema = spec.input_schema
        except TypeError as exc:
            return {"error": {"kind": "schema", "tool": spec.name, "message": str(exc)}}
        tools.append({"name": spec.name, "description": spec.description, "input_schema": schema})
        warnings.extend(untyped_parameters(plugin_dir, spec))
    info: dict[str, Any] = {"tools": tools, "warnings": warnings}
    describe_handlers = getattr(plugin, "describe_handlers", None)
    if callable(describe_handlers):
        info.update(describe_handlers())
    return info


def main() -> None:
    plugin_dir, module_name = sys.argv[1], sys.argv[2]
    attr = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else None
    print(json.dumps(describe(plugin_dir, module_name, attr)))


if __name__ == "__main__":
    main()
