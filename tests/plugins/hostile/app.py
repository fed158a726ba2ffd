"""Hostile: a test plugin for the reference host.

Each tool misbehaves in one way: it spins forever, allocates more memory than the
host allows, returns or raises too much, aborts or exits the process, or tries to
reach outside its sandbox (files, environment, network, processes). The sandbox tools catch what happens and
report it, so a test can check that the attempt failed *inside* the guest.

Every module is imported at module level: componentize-py keeps only the modules
imported while it builds the component.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import Any

from pdk import Plugin, ToolError, ToolOutput
from pdk._wire import WireToolOutput, dumps


class HostilePlugin(Plugin):
    """A plugin that can skip the guest PDK's own output bounds (`raw_output`), so the
    host's checks are what stands between a malicious guest and the caller."""

    @staticmethod
    def _tool_output(name: str, result: Any) -> WireToolOutput:
        if name == "raw_output" and isinstance(result, WireToolOutput):
            return result
        return Plugin._tool_output(name, result)


plugin = HostilePlugin()

_calls = 0


def _attempt(action: Any) -> dict[str, Any]:
    """Run an escape attempt; report its result or the exception it raised."""
    try:
        value = action()
    except BaseException as exc:  # noqa: BLE001 - reporting is the point
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "value": value}


# -- well-behaved ----------------------------------------------------------------------------


@plugin.tool
def echo(text: str, length_only: bool = False) -> dict[str, Any]:
    """Return the text and its length (only the length when asked: for inputs near the size limit)."""
    if length_only:
        return {"length": len(text), "utf8_bytes": len(text.encode("utf-8"))}
    return {"text": text, "length": len(text)}


@plugin.tool
def count() -> int:
    """Count calls served by this instance (state is lost when the instance is recycled)."""
    global _calls
    _calls += 1
    return _calls


# -- resource abuse --------------------------------------------------------------------------


@plugin.tool
def spin() -> str:
    """Loop forever."""
    n = 0
    while True:
        n += 1


@plugin.tool
def allocate(mib: int) -> dict[str, int]:
    """Allocate `mib` MiB at once and touch it."""
    block = bytearray(mib * 1024 * 1024)
    block[-1] = 1
    return {"allocated": len(block)}


@plugin.tool
def big_output(kib: int) -> dict[str, str]:
    """Return about `kib` KiB of content through the normal PDK path."""
    return {"data": "x" * (kib * 1024)}


@plugin.tool
def raw_output(summary_kib: int = 0, content_kib: int = 0, bad_json: bool = False) -> ToolOutput:
    """Return a result that skips the guest PDK's bounds: a long summary, huge content or broken JSON."""
    summary = "s" * (summary_kib * 1024) if summary_kib else "raw"
    if bad_json:
        content_json = '{"not": json'
    elif content_kib:
        content_json = dumps({"data": "y" * (content_kib * 1024)})
    else:
        content_json = dumps({"fine": True})
    return WireToolOutput(summary=summary, content_json=content_json)  # type: ignore[return-value]


@plugin.tool
def print_noise(lines: int, width: int = 20) -> int:
    """Print `lines` lines of `width` characters to stdout and to stderr."""
    for i in range(lines):
        print(f"out {i} " + "o" * width)
        print(f"err {i} " + "e" * width, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    return lines


# -- errors ----------------------------------------------------------------------------------


def _deeper(depth: int, size: int) -> None:
    if depth > 0:
        _deeper(depth - 1, size)
        return
    raise RuntimeError(" ".join(["kaboom"] * size))


@plugin.tool
def boom(depth: int = 0, size: int = 1) -> str:
    """Raise an unexpected RuntimeError `depth` calls deep, with a message of `size` words."""
    _deeper(depth, size)
    return "unreachable"


@plugin.tool
def refuse() -> str:
    """Refuse on purpose with a typed error."""
    raise ToolError("this plugin refuses", code="denied", details={"reason": "policy", "attempts": 1})


class _Unshowable(Exception):
    """An exception that resists every way of showing it."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ raises")

    def __repr__(self) -> str:
        raise RuntimeError("__repr__ raises")


class _Unencodable:
    def __repr__(self) -> str:
        raise RuntimeError("__repr__ raises")


class _EvilDict(dict):  # type: ignore[type-arg]
    def __iter__(self) -> Any:
        raise RuntimeError("__iter__ raises")

    def items(self) -> Any:
        raise RuntimeError("items raises")


@plugin.tool
def unshowable(kind: str = "str") -> str:
    """Raise an exception that cannot be shown: `str` (its __str__ and __repr__ raise),
    `details` (details whose repr raises), `encoding` (details whose JSON encoding
    raises), `surrogate` (a message no string lowering takes)."""
    if kind == "details":
        raise ToolError("details cannot be shown", details={"x": _Unencodable()})
    if kind == "encoding":
        raise ToolError("details cannot be encoded", details=_EvilDict(a=1))
    if kind == "surrogate":
        raise ToolError("half a character: \ud800", details={"s": "\udfff"})
    raise _Unshowable()


@plugin.tool
def shout(text: str, fail: bool = False) -> ToolOutput:
    """Return (or raise, with `fail`) `text` verbatim as the summary, the content and the
    error message: terminal escape sequences included, for the CLI's terminal guard."""
    if fail:
        raise ToolError(text, details={"echo": text})
    return ToolOutput(summary=text, content={"echo": text})


@plugin.tool
def abort() -> str:
    """Abort the interpreter (a wasm trap: no Python handler runs)."""
    os.abort()
    return "unreachable"


@plugin.tool
def exit(status: int = 3) -> str:
    """Exit the process the hard way (WASI proc_exit), skipping every handler."""
    os._exit(status)
    return "unreachable"


# -- sandbox escapes -------------------------------------------------------------------------


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read(4096)


@plugin.tool
def read_file(path: str) -> dict[str, Any]:
    """Try to read a file."""
    return _attempt(lambda: _read(path))


@plugin.tool
def list_dir(path: str) -> dict[str, Any]:
    """Try to list a directory."""
    return _attempt(lambda: sorted(os.listdir(path))[:100])


@plugin.tool
def read_env() -> dict[str, Any]:
    """Report the environment variables, argv and working directory the guest sees."""
    return {"environ": dict(os.environ), "argv": list(sys.argv), "cwd": _attempt(os.getcwd)}


def _connect(port: int) -> str:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(2.0)
        s.connect(("127.0.0.1", port))
        return "connected"
    finally:
        s.close()


@plugin.tool
def connect(port: int) -> dict[str, Any]:
    """Try to open a TCP connection to 127.0.0.1:port."""
    return _attempt(lambda: _connect(port))


def _system() -> int:
    return os.system("echo escaped")  # type: ignore[attr-defined,unused-ignore]


@plugin.tool
def spawn() -> dict[str, Any]:
    """Try to start a process with subprocess and with os.system."""
    return {
        "subprocess": _attempt(lambda: subprocess.run(["/bin/echo", "escaped"], capture_output=True).returncode),
        "system": _attempt(_system),
    }
