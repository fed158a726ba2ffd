"""`FakeHost`: the host imports for unit tests that call plugin handlers in CPython.

    with FakeHost() as host:
        host.http_responses["https://api.example.com/v1/x"] = HttpResponse(200, [], b"{}")
        host.files[("data", "notes.txt")] = b"hello"
        my_tool(...)
        assert host.logs == [("info", "...")]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pdk import _host
from pdk._host import DirEntry, HostApiError, HttpResponse


@dataclass
class FakeHost:
    """Captures logs; serves scripted HTTP responses and an in-memory file tree."""

    logs: list[tuple[str, str]] = field(default_factory=list)
    http_responses: dict[str, HttpResponse | HostApiError] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    files: dict[tuple[str, str], bytes] = field(default_factory=dict)
    _previous: Any = None

    def __enter__(self) -> FakeHost:
        self._previous = _host.install(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _host.install(self._previous)

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))

    def http_send(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None, timeout_ms: int | None) -> HttpResponse:
        self.requests.append({"method": method, "url": url, "headers": headers, "body": body})
        scripted = self.http_responses.get(url)
        if scripted is None:
            raise HostApiError("request", "denied", f"no scripted response for {url}")
        if isinstance(scripted, HostApiError):
            raise scripted
        return scripted

    def fs_read(self, root: str, path: str) -> bytes:
        if (root, path) not in self.files:
            raise HostApiError("fs", "not_found", f"{root}:{path}")
        return self.files[(root, path)]

    def fs_write(self, root: str, path: str, data: bytes) -> None:
        self.files[(root, path)] = data

    def fs_list(self, root: str, path: str) -> list[DirEntry]:
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        names = sorted({p[len(prefix):].split("/")[0] for r, p in self.files if r == root and p.startswith(prefix)})
        return [DirEntry(n, "file" if (root, prefix + n) in self.files else "directory", len(self.files.get((root, prefix + n), b""))) for n in names]
