"""The guest sandbox, tested from inside a real component.

tests/plugins/hostile tries to read host files, list directories, read the
environment, open a TCP connection, start processes and flood stdout/stderr. The
attempts run in the guest and report what happened, so each test checks that the
attempt failed *inside* the guest (and, for the network, that the host side saw
nothing). Guest output must land in the plugin's bounded diagnostics, never on the
host's own stdout/stderr.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from pdk.host import Host, LoadedPlugin
from pdk.limits import GUEST_STDIO_MAX_BYTES, LOG_MESSAGE_MAX_BYTES, LOG_RING_MAX_RECORDS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hostile_dir(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("hostile")


@pytest.fixture
def hostile(host: Host, hostile_dir: Path) -> LoadedPlugin:
    return host.load(hostile_dir, dev_grants=True)


def attempt(plugin: LoadedPlugin, tool: str, input: Any = None) -> dict[str, Any]:
    result = plugin.call_tool(tool, input)
    assert result.ok, result.error  # the tool ran; what it attempted is in the content
    content: dict[str, Any] = result.content
    return content


# --------------------------------------------------------------------- filesystem


def test_host_files_cannot_be_read(hostile: LoadedPlugin, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the host's secret")
    for path in ("/etc/passwd", str(secret), str(Path(__file__)), "app.py", "plugin.toml"):
        outcome = attempt(hostile, "read_file", {"path": path})
        assert outcome["ok"] is False, f"the guest read {path}: {outcome}"
        assert outcome["error"].startswith("FileNotFoundError:")


def test_directories_cannot_be_listed(hostile: LoadedPlugin, tmp_path: Path) -> None:
    (tmp_path / "visible").write_text("x")
    for path in ("/", ".", "/etc", "/tmp", str(tmp_path), os.getcwd()):
        outcome = attempt(hostile, "list_dir", {"path": path})
        assert outcome["ok"] is False, f"the guest listed {path}: {outcome}"
        assert outcome["error"].startswith("FileNotFoundError:")


# --------------------------------------------------------------------- environment


def test_the_environment_is_empty(hostile: LoadedPlugin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOI_TEST_HOST_SECRET", "do-not-leak")
    assert os.environ  # the host process has an environment...
    seen = attempt(hostile, "read_env")
    assert seen["environ"] == {}  # ...the guest does not see it
    assert seen["argv"] == []
    assert "do-not-leak" not in repr(seen)


# --------------------------------------------------------------------- network


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def accepted_connections(server: socket.socket) -> int:
    """Connections waiting in the listener's accept queue (non-blocking: the guest's
    connect has returned, so a completed handshake would already be queued)."""
    count = 0
    while True:
        try:
            conn, _ = server.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def test_the_guest_cannot_connect_to_a_loopback_listener(hostile: LoadedPlugin, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    for _ in range(3):
        outcome = attempt(hostile, "connect", {"port": port})
        assert outcome["ok"] is False, f"the guest connected: {outcome}"
        assert outcome["error"].startswith("PermissionError:")
    assert accepted_connections(listener) == 0

    # The same check does see a real connection (so zero above means zero).
    with socket.create_connection(("127.0.0.1", port)):
        pass
    assert accepted_connections(listener) == 1


# --------------------------------------------------------------------- processes


def test_the_guest_cannot_start_processes(hostile: LoadedPlugin) -> None:
    outcome = attempt(hostile, "spawn")
    assert outcome["subprocess"]["ok"] is False, outcome
    assert outcome["subprocess"]["error"].startswith("OSError:")
    assert outcome["system"]["ok"] is False, outcome  # os.system does not even exist


# --------------------------------------------------------------------- stdio


def test_guest_prints_go_to_the_diagnostics_not_the_host(hostile: LoadedPlugin, capfd: pytest.CaptureFixture[str]) -> None:
    assert hostile.call_tool("print_noise", {"lines": 3, "width": 5}).content == 3
    assert hostile.diagnostics.messages("stdout") == ["out 0 ooooo", "out 1 ooooo", "out 2 ooooo"]
    assert hostile.diagnostics.messages("stderr") == ["err 0 eeeee", "err 1 eeeee", "err 2 eeeee"]
    sources = [(r["source"], r["message"]) for r in hostile.status()["diagnostics"]]
    assert ("stdout", "out 2 ooooo") in sources and ("stderr", "err 2 eeeee") in sources
    captured = capfd.readouterr()
    assert "ooooo" not in captured.out + captured.err
    assert "eeeee" not in captured.out + captured.err


def test_guest_output_is_bounded(hostile: LoadedPlugin) -> None:
    # 1000 lines x 200 chars per stream is ~3x the per-stream budget; more lines only
    # add host callbacks (each print crosses into the host), which a loaded CI machine
    # may not finish within the 2 s call deadline.
    lines = 1000
    result = hostile.call_tool("print_noise", {"lines": lines, "width": 200})
    assert result.ok, result.error
    # Each stream has a byte budget per instance; the rest is counted, not kept...
    for source, prefix in (("stdout", "out"), ("stderr", "err")):
        kept = hostile.diagnostics.messages(source)
        assert sum(len(m.encode()) + 1 for m in kept) <= GUEST_STDIO_MAX_BYTES
        assert not any(m.startswith(f"{prefix} {lines - 1} ") for m in kept)
    # ...and the log is a ring.
    assert len(hostile.diagnostics.records()) <= LOG_RING_MAX_RECORDS
    assert len(hostile.status()["diagnostics"]) <= 20
    # Flooding is not a fault: the instance keeps working.
    assert hostile.call_tool("echo", {"text": "after"}).ok
    assert hostile.status()["instance"]["recycles"] == 0


def test_one_huge_line_is_cut(hostile: LoadedPlugin) -> None:
    result = hostile.call_tool("print_noise", {"lines": 1, "width": 50_000})
    assert result.ok, result.error
    messages = hostile.diagnostics.messages("stdout")
    assert messages and all(len(m.encode()) <= LOG_MESSAGE_MAX_BYTES for m in messages)
    assert messages[0].startswith("out 0 ooo")
