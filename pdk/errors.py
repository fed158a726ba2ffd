"""The one error-code enum of the runtime model, and the PDK's error types.

Standard library only: bundled into every component.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class ErrorCode(str, Enum):
    """Error codes shared by the contract (`yoi:plugin/types.error-code`), the guest
    PDK and the host. Values are the snake_case JSON spelling."""

    INVALID_INPUT = "invalid_input"
    INVALID_OUTPUT = "invalid_output"
    DENIED = "denied"
    UNSUPPORTED = "unsupported"
    TIMEOUT = "timeout"
    FAILED = "failed"

    @property
    def wit_name(self) -> str:
        """The kebab-case case name used in WIT."""
        return self.value.replace("_", "-")


class PluginError(Exception):
    """An error a handler raises on purpose; it reaches the host as a typed
    `plugin-error` instead of a trap.

    `retryable=True` tells the host that delivering the same input again may
    succeed (the event queue retries such failures)."""

    default_code: ErrorCode = ErrorCode.FAILED

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | str | None = None,
        details: Any = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = ErrorCode(code) if code is not None else self.default_code
        self.details = details
        self.retryable = retryable

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code.value!r})"


class ToolError(PluginError):
    """Raised by a tool to return a typed error to the model."""


class RetryableError(PluginError):
    """Raised by an event handler when the event should be delivered again."""

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message, code=ErrorCode.FAILED, details=details, retryable=True)
