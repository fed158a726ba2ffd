"""examples/echo-bot against a chat server on 127.0.0.1: in process, and as a user runs
it (`pdk run ... --dev-grants`, `pdk status`, Ctrl-C)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ws_harness import start, wait_until
from ws_server import ws_server

from pdk.host import Host
from pdk.testing import WebSocketTestServer

pytestmark = pytest.mark.slow

EXAMPLE_PORT = "8765"


@pytest.fixture(scope="module")
def echo_bot(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("echo-bot")


def bot_copy(built: Path, dest: Path, port: int) -> Path:
    shutil.copytree(built, dest)
    manifest = dest / "plugin.toml"
    manifest.write_text(manifest.read_text().replace(EXAMPLE_PORT, str(port)))
    return dest


@pytest.fixture
def server() -> Iterator[WebSocketTestServer]:
    s = ws_server()
    yield s
    s.close()


def test_echo_bot_answers_and_counts(host: Host, echo_bot: Path, tmp_path: Path, server: WebSocketTestServer) -> None:
    run = start(host, bot_copy(echo_bot, tmp_path / "bot", server.port), config={"prefix": "bot"})
    try:
        assert server.wait_for_messages(1, 60) == ["bot bot here (0 answered so far)"]  # greeted on open
        server.send("hi")
        server.send("how are you?")
        assert server.wait_for_messages(3, 60)[1:] == ["bot #1: hi", "bot #2: how are you?"]
        run.rt.wait_idle(10)
        plugin = run.rt.status(refresh=True)["plugin_status"]
        assert plugin["healthy"] is True
        assert plugin["data"] == {"answered": 2, "connected": True, "reconnects": 0, "last": "how are you?"}
        server.stop()
        wait_until(lambda: run.conn("chat")["state"] == "reconnecting", 30, "reconnecting")
        run.rt.wait_idle(10)
        assert run.rt.status(refresh=True)["plugin_status"]["healthy"] is False
        server.start()
        wait_until(lambda: len(server.received) == 4, 30, "the greeting after the reconnect")
        assert server.received[3] == "bot bot here (2 answered so far)"  # state survived
    finally:
        run.stop()


def test_pdk_run_starts_and_stops_the_driver(echo_bot: Path, tmp_path: Path, server: WebSocketTestServer) -> None:
    plugin_dir = bot_copy(echo_bot, tmp_path / "bot", server.port)
    runtime_dir = Path(tempfile.mkdtemp(prefix="pdk-ws-"))  # a Unix socket path must be short
    env = {**os.environ, "YOI_PDK_RUNTIME_DIR": str(runtime_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pdk.cli", "run", str(plugin_dir), "--dev-grants"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert server.wait_for_messages(1, timeout_s=120) == ["echo bot here (0 answered so far)"]
        server.send("hello from a human")
        assert server.wait_for_messages(2, 60)[1] == "echo #1: hello from a human"

        def status() -> dict[str, object] | None:
            done = subprocess.run([sys.executable, "-m", "pdk.cli", "status", "--json"], capture_output=True, text=True, env=env, timeout=120)
            doc = json.loads(done.stdout) if done.returncode == 0 else None
            return doc if doc and doc["sources"]["websocket:chat"]["frames_out"] == 2 else None

        doc = wait_until(status, 60, "pdk status")
        chat = doc["sources"]["websocket:chat"]
        assert chat["state"] == "open" and chat["frames_in"] == 1 and chat["ingress"] == "chat"
        human = subprocess.run([sys.executable, "-m", "pdk.cli", "status"], capture_output=True, text=True, env=env, timeout=120)
        assert "websocket:chat: open since" in human.stdout
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "websocket: chat -> ws://127.0.0.1:" in out
        assert "stopped on SIGINT" in out
        server.wait(lambda: bool(server.handshakes[0].closes), 10, "the close")
        assert server.handshakes[0].closes == [(1001, "host stopping")]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(runtime_dir, ignore_errors=True)
