"""yoi-pdk: write Yoi plugins in plain, type-hinted Python.

This top-level package is the **guest authoring API**. It uses only the standard
library and is bundled into every component.

    from pdk import Plugin, ToolError

    plugin = Plugin()

    @plugin.tool
    def word_count(text: str, unique: bool = False) -> dict:
        \"\"\"Count the words in a text.\"\"\"
        words = text.split()
        return {"count": len(set(words) if unique else words)}
"""

from . import commands
from ._decode import DecodeError
from ._decode import decode_value as decode
from ._api import Files, Http, Logger, fs, http, log
from ._events import (
    CloseInfo,
    Command,
    Emit,
    Event,
    HttpRequest,
    LogCommand,
    Output,
    Status,
    StatusUpdate,
    WebSocketSend,
    emit,
    http_request,
    status_update,
    websocket_send,
)
from ._host import DirEntry, HostApiError, HttpResponse
from ._plugin import Plugin, ToolOutput, ToolSpec
from .errors import ErrorCode, PluginError, RetryableError, ToolError

__version__ = "0.1.0"

__all__ = [
    "CloseInfo",
    "Command",
    "DecodeError",
    "DirEntry",
    "Emit",
    "ErrorCode",
    "Event",
    "Files",
    "HostApiError",
    "Http",
    "HttpRequest",
    "HttpResponse",
    "LogCommand",
    "Logger",
    "Output",
    "Plugin",
    "PluginError",
    "RetryableError",
    "Status",
    "StatusUpdate",
    "ToolError",
    "ToolOutput",
    "ToolSpec",
    "WebSocketSend",
    "__version__",
    "commands",
    "decode",
    "emit",
    "fs",
    "http",
    "http_request",
    "log",
    "status_update",
    "websocket_send",
]
