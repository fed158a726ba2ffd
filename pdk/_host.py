"""The slot through which guest code reaches the host's imports.

Inside a component, the generated entry module installs a backend that calls the
real `yoi:host` imports. In ordinary CPython (unit tests) nothing is installed
until a test installs a fake host (`pdk.testing.FakeHost`); the default backend
keeps log records in memory and refuses every other host API, like an ungranted
host would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

LOG_LEVELS = ("debug", "info", "warn", "error")


@dataclass(frozen=True)
class HttpResponse:
    """A response from the host's `request` import."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    truncated: bool = False

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass(frozen=True)
class DirEntry:
    """One entry of a granted directory listing."""

    name: str
    kind: str  # "file" | "directory" | "other"
    size: int


class HostApiError(Exception):
    """A typed failure returned by a host import (never a trap).

    `code` is the host's snake_case error code, e.g. `denied`, `timeout`,
    `not_found`, `invalid_path`."""

    def __init__(self, api: str, code: str, message: str) -> None:
        super().__init__(f"{api} {code}: {message}")
        self.api = api
        self.code = code
        self.message = message


class HostBackend(Protocol):
    def log(self, level: str, message: str) -> None: ...

    def http_send(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        timeout_ms: int | None,
    ) -> HttpResponse: ...

    def fs_read(self, root: str, path: str) -> bytes: ...

    def fs_write(self, root: str, path: str, data: bytes) -> None: ...

    def fs_list(self, root: str, path: str) -> list[DirEntry]: ...


@dataclass
class DetachedHost:
    """The backend outside any host: logs are kept, everything else is denied."""

    records: list[tuple[str, str]] = field(default_factory=list)

    def log(self, level: str, message: str) -> None:
        self.records.append((level, message))
        del self.records[:-256]

    def http_send(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        timeout_ms: int | None,
    ) -> HttpResponse:
        raise HostApiError("request", "denied", "no host is attached (install a fake host in tests)")

    def fs_read(self, root: str, path: str) -> bytes:
        raise HostApiError("fs", "denied", "no host is attached (install a fake host in tests)")

    def fs_write(self, root: str, path: str, data: bytes) -> None:
        raise HostApiError("fs", "denied", "no host is attached (install a fake host in tests)")

    def fs_list(self, root: str, path: str) -> list[DirEntry]:
        raise HostApiError("fs", "denied", "no host is attached (install a fake host in tests)")


_current: HostBackend = DetachedHost()


def current() -> HostBackend:
    return _current


def install(backend: HostBackend) -> HostBackend:
    """Install `backend` and return the previous one (so tests can restore it)."""
    global _current
    previous, _current = _current, backend
    return previous
