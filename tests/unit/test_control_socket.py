"""The control socket: one JSON request per line, typed errors, bounds, 0600, stale sockets."""

from __future__ import annotations

import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from pdk.host.control import CONTROL_REQUEST_MAX_BYTES, ControlError, ControlServer, ControlUnavailable, call, default_control_path, running_sockets


def dispatch(request: dict[str, Any]) -> Any:
    if request["op"] == "status":
        return {"state": "running"}
    if request["op"] == "boom":
        raise RuntimeError("kaput")
    raise ControlError("unknown_op", f"unknown op {request['op']!r}")


@pytest.fixture
def sock_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("YOI_PDK_RUNTIME_DIR", str(tmp_path / "rt"))
    return default_control_path("demo")


def test_round_trip_and_permissions(sock_path: Path) -> None:
    with ControlServer(sock_path, dispatch):
        assert call(sock_path, {"op": "status"}) == {"state": "running"}
        assert stat.S_IMODE(sock_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(sock_path.parent.stat().st_mode) == 0o700
        assert running_sockets() == [sock_path]
        with pytest.raises(ControlError) as info:
            call(sock_path, {"op": "nope"})
        assert info.value.code == "unknown_op"
        with pytest.raises(ControlError) as info:
            call(sock_path, {"op": "boom"})
        assert info.value.code == "internal" and "kaput" in info.value.message
    assert not sock_path.exists()
    with pytest.raises(ControlUnavailable):
        call(sock_path, {"op": "status"})


def test_bad_and_oversized_requests(sock_path: Path) -> None:
    with ControlServer(sock_path, dispatch):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(sock_path))
            s.sendall(b"[1]\nnot json\n")
            f = s.makefile("rb")
            assert b'"bad_request"' in f.readline()
            assert b'"bad_request"' in f.readline()
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(sock_path))
            s.sendall(b"x" * (CONTROL_REQUEST_MAX_BYTES + 10))
            assert b'"too_large"' in s.makefile("rb").readline()


def test_stale_socket_is_replaced_and_a_live_one_refused(sock_path: Path) -> None:
    sock_path.parent.mkdir(mode=0o700, parents=True)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(sock_path))
    stale.close()  # the file stays, nobody listens
    with ControlServer(sock_path, dispatch):
        with pytest.raises(ControlError, match="already running"):
            ControlServer(sock_path, dispatch)
        assert call(sock_path, {"op": "status"}) == {"state": "running"}
