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
    for spec in plugin.tools.values():
        try:
            schema = spec.input_schema
        except TypeError as exc:
            return {"error": {"kind": "schema", "tool": spec.name, "message": str(exc)}}
        tools.append({"name": spec.name, "description": spec.description, "input_schema": schema})
    info: dict[str, Any] = {"tools": tools}
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
