"""The local control socket of a running host (`pdk run`), and its client.

A Unix domain socket (mode 0600, in a private 0700 directory) speaking one JSON
request per line and answering one JSON line each:

    -> {"op": "status"}
    <- {"ok": true, "result": {...}}
    <- {"ok": false, "error": {"code": "unknown_op", "message": "..."}}

Requests are bounded (`CONTROL_REQUEST_MAX_BYTES`), answers too on the client side
(`CONTROL_RESPONSE_MAX_BYTES`). Error codes: bad_request, too_large, unknown_op,
not_found, refused, internal. Only the owner of the socket can connect."""

from __future__ import annotations

import json
import os
import socket
import socketserver
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

from pdk.package.errors import PdkError

CONTROL_REQUEST_MAX_BYTES = 4096
CONTROL_RESPONSE_MAX_BYTES = 16 * 1024 * 1024
CONTROL_TIMEOUT_S = 10.0
SOCKET_SUFFIX = ".sock"
_UNIX_PATH_MAX = 104  # the smallest sun_path among the platforms we run on (macOS), minus NUL


class ControlError(PdkError):
    """A typed error answered to (or received from) a control client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


class ControlUnavailable(PdkError):
    """Nothing answers at a control socket path (no `pdk run` there)."""

    default_code = "control_unavailable"


Dispatch = Callable[[dict[str, Any]], Any]


def control_dir() -> Path:
    """Where control sockets live: `$YOI_PDK_RUNTIME_DIR`, else
    `$XDG_RUNTIME_DIR/yoi-pdk`, else `<tmp>/yoi-pdk-<uid>`."""
    explicit = os.environ.get("YOI_PDK_RUNTIME_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_dir():
        return Path(xdg) / "yoi-pdk"
    return Path(tempfile.gettempdir()) / f"yoi-pdk-{os.getuid()}"


def default_control_path(plugin_id: str) -> Path:
    return control_dir() / f"{plugin_id}{SOCKET_SUFFIX}"


def running_sockets(directory: Path | None = None) -> list[Path]:
    """Control sockets present in the control directory (possibly stale)."""
    directory = directory or control_dir()
    try:
        return sorted(p for p in directory.iterdir() if p.name.endswith(SOCKET_SUFFIX) and p.is_socket())
    except OSError:
        return []


def _private_dir(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.stat()
    if info.st_uid != os.getuid():
        raise ControlError("refused", f"{directory} belongs to another user; set YOI_PDK_RUNTIME_DIR or pass --control")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(directory, 0o700)


class _Conn(socketserver.StreamRequestHandler):
    server: _UnixServer
    timeout = CONTROL_TIMEOUT_S

    def handle(self) -> None:
        while True:
            try:
                line = self.rfile.readline(CONTROL_REQUEST_MAX_BYTES + 1)
            except OSError:
                return
            if not line:
                return
            if len(line) > CONTROL_REQUEST_MAX_BYTES and not line.endswith(b"\n"):
                self._answer({"ok": False, "error": {"code": "too_large", "message": f"a request is at most {CONTROL_REQUEST_MAX_BYTES} bytes"}})
                return
            if not line.strip():
                continue
            self._answer(self.server.answer(line))

    def _answer(self, doc: dict[str, Any]) -> None:
        try:
            self.wfile.write(json.dumps(doc, ensure_ascii=False, default=str).encode() + b"\n")
        except OSError:
            pass


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, dispatch: Dispatch) -> None:
        self.dispatch = dispatch
        super().__init__(path, _Conn)

    def answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except (ValueError, RecursionError):
            return {"ok": False, "error": {"code": "bad_request", "message": "a request is one JSON object per line"}}
        if not isinstance(request, dict) or not isinstance(request.get("op"), str):
            return {"ok": False, "error": {"code": "bad_request", "message": 'a request is an object with an "op" string'}}
        try:
            return {"ok": True, "result": self.dispatch(request)}
        except ControlError as err:
            return {"ok": False, "error": {"code": err.code, "message": err.message}}
        except Exception as exc:  # the host keeps running; the client learns what failed
            return {"ok": False, "error": {"code": "internal", "message": f"{type(exc).__name__}: {exc}"[:1024]}}


class ControlServer:
    """Serves `dispatch(request) -> result` on a Unix socket until `close()`.

    Refuses to start when another host answers at `path`; removes a stale socket."""

    def __init__(self, path: str | Path, dispatch: Dispatch) -> None:
        self.path = Path(path)
        if len(os.fsencode(self.path)) > _UNIX_PATH_MAX:
            raise ControlError("refused", f"control socket path is too long for a Unix socket ({len(str(self.path))} > {_UNIX_PATH_MAX}): {self.path}")
        _private_dir(self.path.parent)
        if self.path.exists() or self.path.is_symlink():
            if not self.path.is_socket():
                raise ControlError("refused", f"{self.path} exists and is not a socket")
            try:
                call(self.path, {"op": "ping"}, timeout_s=2.0)
            except ControlUnavailable:
                self.path.unlink()  # stale: its host is gone
            except ControlError:
                raise ControlError("refused", f"another host is already running at {self.path}") from None
            else:
                raise ControlError("refused", f"another host is already running at {self.path}")
        self._server = _UnixServer(str(self.path), dispatch)
        os.chmod(self.path, 0o600)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="pdk-control", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> ControlServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def call(path: str | Path, request: dict[str, Any], *, timeout_s: float = CONTROL_TIMEOUT_S) -> Any:
    """Send one request; return its result. Raises `ControlUnavailable` when nothing
    answers at `path`, `ControlError` for a typed error answer."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError) as exc:
            raise ControlUnavailable(f"nothing is running at {path} ({exc.strerror or type(exc).__name__})") from None
        except OSError as exc:
            raise ControlUnavailable(f"cannot connect to {path}: {exc.strerror or exc}") from None
        sock.sendall(json.dumps(request).encode() + b"\n")
        data = bytearray()
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if len(data) > CONTROL_RESPONSE_MAX_BYTES:
                raise ControlError("too_large", f"the answer is larger than {CONTROL_RESPONSE_MAX_BYTES} bytes")
    except socket.timeout:
        raise ControlError("timeout", f"no answer from {path} within {timeout_s:g} s") from None
    finally:
        sock.close()
    if not data:
        raise ControlUnavailable(f"the host at {path} closed the connection without an answer")
    try:
        doc = json.loads(bytes(data))
    except ValueError:
        raise ControlError("bad_response", f"the host at {path} answered something that is not JSON") from None
    if not isinstance(doc, dict):
        raise ControlError("bad_response", f"the host at {path} answered something that is not an object")
    if doc.get("ok") is True:
        return doc.get("result")
    error = doc.get("error") or {}
    raise ControlError(str(error.get("code", "failed")), str(error.get("message", "failed")))
