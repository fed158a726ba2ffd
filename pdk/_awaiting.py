"""Drive an `async def` handler's coroutine to completion without an event loop.

Inside a component asyncio's event loop cannot start: its self-pipe needs
`socket.socketpair()`, which WASI refuses (`asyncio.run` raises `PermissionError`,
measured with componentize-py 0.25.1). Nothing in this contract needs one either: an
export is one synchronous call. So a coroutine is stepped by hand with `send(None)`:
awaiting other coroutines works (Python chains them itself) and so do bare yields
(`await asyncio.sleep(0)`). Anything that needs a real loop (a future, a task, a timed
sleep, asyncio I/O) becomes a typed `unsupported` error naming what was awaited and
where, instead of a hang or a trap.

Standard library only, no asyncio: bundled into every component."""

from __future__ import annotations

import inspect
import traceback
import types
from typing import Any

from .errors import ErrorCode, PluginError

_INSTEAD = (
    "A component has no event loop (no threads, no sockets): inside an async handler await only other "
    "coroutines or `asyncio.sleep(0)`, use the blocking pdk APIs (pdk.http, pdk.fs), or write a plain `def`."
)


def _where(tb: Any) -> str:
    """`function (file:line)` of the innermost frame of a traceback, or ''."""
    frames = traceback.extract_tb(tb)
    if not frames:
        return ""
    f = frames[-1]
    return f" in {f.name}() ({f.filename.rsplit('/', 1)[-1]}:{f.lineno})"


def _suspended_at(coro: Any) -> str:
    """Where a suspended coroutine chain is waiting: the innermost `cr_await` frame."""
    where = ""
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            where = f" in {frame.f_code.co_name}() ({frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno})"
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return where


# Types seen not to be awaitable, so `inspect` is asked once per type. For anything but
# a generator (awaitable or not by its code's flags) that is a property of the type:
# `__await__` in the class, or registered as `Awaitable` (before its first value is seen).
_PLAIN_TYPES: set[type] = {type(None), str, int, float, bool, bytes, list, tuple, dict}
_PLAIN_TYPES_MAX = 256


def awaitable(value: Any) -> bool:
    """Whether `resolve` has anything to drive (callers skip building `what` when not)."""
    kind = type(value)
    if kind in _PLAIN_TYPES:
        return False
    if inspect.isawaitable(value):
        return True
    if kind is not types.GeneratorType and len(_PLAIN_TYPES) < _PLAIN_TYPES_MAX:
        _PLAIN_TYPES.add(kind)
    return False


def resolve(value: Any, what: str) -> Any:
    """`value` itself, or, if it is awaitable, what it returns once driven to completion.

    `what` names the handler for error messages (`tool 'fetch'`, `on_start`)."""
    if not awaitable(value):
        return value
    # A coroutine or a @types.coroutine generator is stepped itself; other awaitables via __await__.
    coro: Any = value if inspect.iscoroutine(value) or inspect.isgenerator(value) else value.__await__()
    try:
        while True:
            try:
                yielded = coro.send(None)
            except StopIteration as done:
                return done.value
            except RuntimeError as exc:
                if "no running event loop" not in str(exc) and "no current event loop" not in str(exc):
                    raise
                raise PluginError(
                    f"{what} is async and needs an event loop{_where(exc.__traceback__)} "
                    f"(e.g. a timed asyncio.sleep, a task or asyncio I/O). {_INSTEAD}",
                    code=ErrorCode.UNSUPPORTED,
                ) from None
            if yielded is not None:
                name = type(yielded).__name__
                raise PluginError(
                    f"{what} awaited a {name}{_suspended_at(coro)}, which needs an event loop. {_INSTEAD}",
                    code=ErrorCode.UNSUPPORTED,
                )
    finally:
        close = getattr(coro, "close", None)
        if close is not None:
            close()
