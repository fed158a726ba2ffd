"""Guest-facing wrappers over the host imports: `pdk.log`, `pdk.http`, `pdk.fs`.

Every call goes through `pdk._host.current()`, so the same plugin code runs inside
a component (real imports) and in CPython unit tests (a fake host)."""

from __future__ import annotations

import json
from typing import Any

from . import _host
from ._bounds import bound_text
from ._host import DirEntry, HttpResponse
from .limits import LOG_MESSAGE_MAX_BYTES


class Logger:
    """Structured-enough logging into the host's bounded per-plugin diagnostics.

    Never raises and never writes to stdout (stdout is not a channel the host reads)."""

    def _write(self, level: str, message: object) -> None:
        try:
            text = message if isinstance(message, str) else repr(message)
            _host.current().log(level, bound_text(text, LOG_MESSAGE_MAX_BYTES))
        except Exception:  # logging must never take the plugin down
            pass

    def debug(self, message: object) -> None:
        self._write("debug", message)

    def info(self, message: object) -> None:
        self._write("info", message)

    def warn(self, message: object) -> None:
        self._write("warn", message)

    warning = warn

    def error(self, message: object) -> None:
        self._write("error", message)


class Http:
    """One-shot outbound HTTP through the host (`yoi:host/request`).

    Only targets declared in `plugin.toml` and granted by the operator are reachable;
    anything else raises `HostApiError(code="denied")` without touching the network."""

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        body: bytes | str | None = None,
        json_body: Any = None,
        timeout_ms: int | None = None,
    ) -> HttpResponse:
        header_list = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":"))
            header_list.append(("content-type", "application/json"))
        raw = body.encode("utf-8") if isinstance(body, str) else body
        return _host.current().http_send(method.upper(), url, header_list, raw, timeout_ms)

    def get(self, url: str, **kwargs: Any) -> HttpResponse:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> HttpResponse:
        return self.request("POST", url, **kwargs)


class Files:
    """Files under roots the operator granted (`yoi:host/fs`), addressed as
    (root name, relative path). Host paths never reach the plugin."""

    def read(self, root: str, path: str) -> bytes:
        return _host.current().fs_read(root, path)

    def read_text(self, root: str, path: str) -> str:
        return self.read(root, path).decode("utf-8")

    def write(self, root: str, path: str, data: bytes | str) -> None:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        _host.current().fs_write(root, path, raw)

    def list(self, root: str, path: str = "") -> list[DirEntry]:
        return _host.current().fs_list(root, path)


log = Logger()
http = Http()
fs = Files()
