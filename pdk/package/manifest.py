"""`plugin.toml`: the one reader of manifests, and the typed model it returns.

Everything a manifest declares is read through `Manifest` (frozen dataclasses, see
`pdk.package._manifest_model`); nothing else parses `plugin.toml` or looks at its raw
tables. Validation rules live in `pdk.package._manifest_validate`."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from pdk.limits import MANIFEST_MAX_BYTES, MANIFEST_NESTING_MAX
from pdk.package._manifest_model import (
    BuildDecl,
    ConnectionDecl,
    FsDecl,
    HandlerDecl,
    Manifest,
    ManifestError,
    Problem,
    Runtime,
    TimerDecl,
    ToolDecl,
)
from pdk.package._manifest_validate import RUNTIME_KIND, SCHEMA_VERSION, check_schema_subset, validate

__all__ = [
    "RUNTIME_KIND",
    "SCHEMA_VERSION",
    "BuildDecl",
    "ConnectionDecl",
    "FsDecl",
    "HandlerDecl",
    "Manifest",
    "ManifestError",
    "Problem",
    "Runtime",
    "TimerDecl",
    "ToolDecl",
    "check_schema_subset",
    "load_manifest",
    "parse_manifest",
    "parse_manifest_text",
    "read_toml",
]

_END_OF_DOCUMENT = "(at end of document)"


def read_toml(text: str | bytes, source: str = "plugin.toml") -> dict[str, Any]:
    """Decode `plugin.toml` text (bounded in size and nesting) or raise `ManifestError`
    whose message names the line and column of the first syntax error."""
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > MANIFEST_MAX_BYTES:
        raise ManifestError([Problem("", f"is {size} bytes; a manifest is at most {MANIFEST_MAX_BYTES} bytes")], source)
    try:
        decoded = text.decode("utf-8") if isinstance(text, bytes) else text
    except UnicodeDecodeError as exc:
        raise ManifestError([Problem("", f"not valid TOML: not UTF-8 (byte {exc.start})")], source) from None
    try:
        return tomllib.loads(decoded)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError([Problem("", f"not valid TOML: {_located(str(exc), decoded)}")], source) from None
    except RecursionError:
        # tomllib recurses into nested arrays and inline tables.
        raise ManifestError(
            [Problem("", f"not valid TOML: arrays or inline tables nested too deeply (at most {MANIFEST_NESTING_MAX} levels)")],
            source,
        ) from None


def _located(message: str, text: str) -> str:
    """tomllib says "at end of document" for an error at the end of the file; say
    which line and column that is (1-based, as tomllib counts elsewhere)."""
    if _END_OF_DOCUMENT in message:
        lines = text.split("\n")
        where = f"(at line {len(lines)}, column {len(lines[-1]) + 1}: the end of the file)"
        return message.replace(_END_OF_DOCUMENT, where)
    return message


def parse_manifest(data: Mapping[str, Any], source: str = "plugin.toml") -> Manifest:
    """Validate a decoded `plugin.toml` and return its model, or raise `ManifestError`
    listing every problem."""
    return validate(data, source)


_MEMO_TEXT_MAX = 64 * 1024  # manifests up to this size are remembered (real ones are a few KiB)


def parse_manifest_text(text: str | bytes, source: str = "plugin.toml") -> Manifest:
    """Decode and validate `plugin.toml` text, or raise `ManifestError`.

    A pure function of (text, source): the model of a text seen recently is returned
    again without re-parsing (a warm load of the same package parsed it ~1.3 ms each
    time). Its dataclasses are frozen; treat its schemas (plain dicts) as read-only
    too, since the same `Manifest` is handed to every load of the same text."""
    if len(text) <= _MEMO_TEXT_MAX:
        return _parse_remembered(text, source)
    return validate(read_toml(text, source), source)


@lru_cache(maxsize=32)  # thread-safe; a refused text raises and is not remembered
def _parse_remembered(text: str | bytes, source: str) -> Manifest:
    return validate(read_toml(text, source), source)


def load_manifest(plugin_dir: str | Path) -> Manifest:
    path = Path(plugin_dir) / "plugin.toml"
    if not path.is_file():
        raise ManifestError([Problem("", f"no plugin.toml in {Path(plugin_dir)}")], str(path))
    return parse_manifest_text(path.read_bytes(), str(path))
