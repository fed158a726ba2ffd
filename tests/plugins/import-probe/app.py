"""import-probe: a test plugin that calls the `yoi:host` imports with raw values.

Its tools skip the PDK's own guest-side checks and bounds (`pdk.log` bounds the text,
`pdk.http` checks the method, ...): they call the generated import bindings
directly, so whatever a tool's input asks for (huge strings, thousands of headers or
log calls) reaches the host as it is. Each answers what the import answered, as
plain JSON: `{"ok": value}` or `{"err": value}` (bytes as latin-1 text and a length,
enums by name). `tests/e2e/test_fast_imports.py` compares these answers between the
host's two import paths.

Every module is imported at module level: componentize-py keeps only the modules
imported while it builds the component.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any, Callable, Optional

from pdk import Plugin

try:  # inside the component; `pdk build` also imports this module in the host's CPython
    import componentize_py_types as _cpt
    from wit_world.imports import fs as _fs, log as _log, request as _request
except ImportError:  # pragma: no cover - introspection only
    _cpt = _fs = _log = _request = None  # type: ignore[assignment]

plugin = Plugin()


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if isinstance(value, bytes):
        return {"length": len(value), "head": value[:64].decode("latin-1"), "sum": sum(value) % 65521}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _answer(action: Callable[[], Any]) -> dict[str, Any]:
    try:
        value = action()
    except _cpt.Err as err:
        return {"err": _plain(err.value)}
    return {"ok": _plain(value)}


@plugin.tool
def log_many(count: int, level: str = "info", text: str = "", repeat: int = 1) -> int:
    """Writes `count` log records of `text * repeat` through the raw log import."""
    write, value, message = _log.write, _log.Level[level.upper()], text * repeat
    for _ in range(count):
        write(value, message)
    return count


@plugin.tool
def send(
    method: str,
    url: str,
    headers_json: str = "[]",
    header_repeat: int = 1,
    body: Optional[str] = None,
    body_repeat: int = 1,
    timeout_ms: Optional[int] = None,
    url_pad: int = 0,
    value_repeat: int = 1,
) -> dict[str, Any]:
    """One raw request.send of `url + "a" * url_pad`; headers are
    `json.loads(headers_json) * header_repeat`, each value repeated `value_repeat` times."""
    headers = [(str(k), str(v) * value_repeat) for k, v in json.loads(headers_json)] * header_repeat
    data = None if body is None else body.encode("utf-8") * body_repeat
    return _answer(lambda: _request.send(_request.HttpRequest(method, url + "a" * url_pad, headers, data, timeout_ms)))


@plugin.tool
def read(root: str, path: str) -> dict[str, Any]:
    """One raw fs.read_file."""
    return _answer(lambda: _fs.read_file(root, path))


@plugin.tool
def write(root: str, path: str, text: str = "", repeat: int = 1) -> dict[str, Any]:
    """One raw fs.write_file of `text * repeat` (UTF-8)."""
    return _answer(lambda: _fs.write_file(root, path, (text * repeat).encode("utf-8")))


@plugin.tool
def listing(root: str, path: str = "") -> dict[str, Any]:
    """One raw fs.list_dir."""
    return _answer(lambda: _fs.list_dir(root, path))
