"""Notes: keep text notes under a root the operator granted, through `pdk.fs`.

Paths are relative to the root named "notes" (`ideas/today.md`); the host refuses
absolute paths, `..`, backslashes and symbolic links, bounds every read, write and
listing, and writes atomically. Host errors become typed tool errors whose
`details.host_error` keeps the host's code (`not_found`, `invalid_path`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from pdk import HostApiError, Plugin, ToolError, fs, log

plugin = Plugin()

ROOT = "notes"
_TOOL_CODES = {"denied": "denied", "invalid_path": "invalid_input", "too_large": "invalid_input", "not_found": "invalid_input"}


def _tool_error(exc: HostApiError) -> ToolError:
    return ToolError(f"fs {exc.code}: {exc.message}", code=_TOOL_CODES.get(exc.code, "failed"), details={"host_error": exc.code})


@dataclass
class Written:
    path: str
    bytes: int


@plugin.tool
def write_note(path: str, text: str) -> Written:
    """Create or replace a note (atomically); missing parent directories are created."""
    data = text.encode("utf-8")
    try:
        fs.write(ROOT, path, data)
    except HostApiError as exc:
        raise _tool_error(exc) from None
    log.info(f"wrote {len(data)} bytes")
    return Written(path=path, bytes=len(data))


@dataclass
class Note:
    path: str
    text: str
    bytes: int


@plugin.tool
def read_note(path: str) -> Note:
    """Read a note as UTF-8 text."""
    try:
        data = fs.read(ROOT, path)
    except HostApiError as exc:
        raise _tool_error(exc) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ToolError("the note is not UTF-8 text", code="failed", details={"bytes": len(data)}) from None
    return Note(path=path, text=text, bytes=len(data))


@dataclass
class Entry:
    name: str
    kind: str
    size: int


@plugin.tool
def list_notes(dir: str = "") -> list[Entry]:
    """List a directory of notes (the root by default), sorted by name."""
    try:
        entries = fs.list(ROOT, dir)
    except HostApiError as exc:
        raise _tool_error(exc) from None
    return [Entry(name=e.name, kind=e.kind, size=e.size) for e in entries]
