"""`ToolGate`: whether a plugin's tools may run now.

Every `LoadedPlugin` owns one; it is open (tools run whenever they are granted)
until a `ServiceRuntime` governs it. A combined plugin (world `plugin`) then runs
its tools only while its service is running: the runtime hands the gate a function
that says why not, and `LoadedPlugin.call_tool` asks the gate before every call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

Refusal = Callable[[], "str | None"]


class ToolGate:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._refusal: Refusal | None = None

    def govern(self, refusal: Refusal) -> None:
        """From now on `refusal()` decides: None lets a tool call run, a string is
        the reason it may not (shown to the caller). A later governor replaces it."""
        with self._lock:
            self._refusal = refusal

    def refusal(self) -> str | None:
        """Why a tool call may not run now, or None."""
        check = self._refusal
        return check() if check is not None else None
