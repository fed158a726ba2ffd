"""`pdk dev`: a real development host in a subprocess, on a copy of
examples/text-tools. `pdk call` / `pdk status` are served by it through its control
socket; an edit of app.py is rebuilt and swapped in; a syntax-error edit is reported
with file:line and the previous version keeps answering. No timing thresholds (the
reload cost is measured in bench/loop_bench.py)."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

pytestmark = pytest.mark.slow

# Generous: a rebuild is a real componentize-py build, which takes minutes on a loaded machine.
WAIT_S = 900.0
OLD_LINE = "    return TextStats(words=len(words), "
NEW_LINE = "    return TextStats(words=len(words) + 1000, "


class DevProcess:
    """`pdk dev DIR --dev-grants` with its stdout read line by line on a thread."""

    def __init__(self, plugin_dir: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pdk.cli", "dev", str(plugin_dir), "--dev-grants"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, needle: str, timeout_s: float = WAIT_S) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1.0)
            except queue.Empty:
                assert self.proc.poll() is None, f"pdk dev exited ({self.proc.returncode}):\n" + "\n".join(self.seen)
                continue
            self.seen.append(line)
            if needle in line:
                return line
        raise AssertionError(f"no line with {needle!r} within {timeout_s:g} s:\n" + "\n".join(self.seen))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pdkdev-", dir="/tmp"))  # short: a Unix socket path
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _pdk(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pdk.cli", *map(str, args)], capture_output=True, text=True, env=env, timeout=WAIT_S)


def test_dev_serves_reloads_and_survives_a_broken_edit(built_plugin: Callable[[str], Path], tmp_path: Path, runtime_dir: Path) -> None:
    plugin_dir = tmp_path / "text-tools"
    shutil.copytree(built_plugin("text-tools"), plugin_dir)  # with its build/: the first build is cached
    env = {**os.environ, "PDK_DEBUG": "", "YOI_PDK_RUNTIME_DIR": str(runtime_dir)}
    dev = DevProcess(plugin_dir, env)
    try:
        dev.wait_for("v1 serving")

        first = _pdk(env, "call", plugin_dir, "text_stats", '{"text": "a b a"}', "--json")
        assert first.returncode == 0, first.stderr
        assert "served by `pdk dev`" in first.stderr
        assert json.loads(first.stdout)["content"]["words"] == 3
        dev.wait_for("call text_stats (v1): ok")

        app = plugin_dir / "app.py"
        source = app.read_text(encoding="utf-8")
        assert OLD_LINE in source
        app.write_text(source.replace(OLD_LINE, NEW_LINE), encoding="utf-8")
        reloaded = dev.wait_for("pdk dev: reloaded v2")
        assert "app.py" in reloaded

        second = _pdk(env, "call", plugin_dir, "text_stats", '{"text": "a b a"}', "--json")
        assert second.returncode == 0, second.stderr
        assert "served by `pdk dev` (v2" in second.stderr
        assert json.loads(second.stdout)["content"]["words"] == 1003

        broken = source.replace(OLD_LINE, NEW_LINE).replace(NEW_LINE, "    return TextStats(words=len(words) +, ")
        app.write_text(broken, encoding="utf-8")
        lineno = next(i for i, line in enumerate(broken.splitlines(), 1) if "len(words) +," in line)
        failed = dev.wait_for("pdk dev: reload failed")
        assert f"app.py:{lineno}: syntax error" in failed
        assert "v2 keeps serving" in failed

        third = _pdk(env, "call", plugin_dir, "text_stats", '{"text": "a b a"}', "--json")
        assert third.returncode == 0, third.stderr
        assert json.loads(third.stdout)["content"]["words"] == 1003

        status = _pdk(env, "status", "--json")
        assert status.returncode == 0, status.stderr
        doc = json.loads(status.stdout)
        assert doc["plugin"]["id"] == "text-tools"
        assert doc["lifecycle"]["state"] == "running"
        assert doc["dev"]["version"] == 2
        assert [r["ok"] for r in doc["dev"]["reloads"]] == [True, False]
        text = _pdk(env, "status")
        assert text.returncode == 0 and "text-tools 0.1.0 (tool): running" in text.stdout
    finally:
        code = dev.stop()
    assert code == 0, "\n".join(dev.seen)
    assert not list(runtime_dir.glob("*.sock")), "the control socket is removed on stop"


def test_dev_serves_send_and_status_for_a_service(built_plugin: Callable[[str], Path], tmp_path: Path, runtime_dir: Path) -> None:
    plugin_dir = tmp_path / "counter-service"
    shutil.copytree(built_plugin("counter-service"), plugin_dir)
    env = {**os.environ, "PDK_DEBUG": "", "YOI_PDK_RUNTIME_DIR": str(runtime_dir)}
    dev = DevProcess(plugin_dir, env)
    try:
        dev.wait_for("v1 serving")
        sent = _pdk(env, "send", plugin_dir, "inbox", '"hi"', "--json")
        assert sent.returncode == 0, sent.stderr
        assert "served by `pdk dev`" in sent.stderr
        doc = json.loads(sent.stdout)
        assert [e["outcome"]["outcome"] for e in doc["events"]] == ["handled"]
        emitted = doc["events"][0]["emitted"]
        assert [r["topic"] for r in emitted] == ["counted"] and "hi" in json.dumps(emitted[0]["data"])
        dev.wait_for("inbox/message")  # the dev host prints the event outcome

        status = _pdk(env, "status", "--json")
        assert status.returncode == 0, status.stderr
        state = json.loads(status.stdout)
        assert state["lifecycle"]["state"] == "running" and state["dev"]["version"] == 1
        assert state["counters"]["handled"] >= 1
    finally:
        code = dev.stop()
    assert code == 0, "\n".join(dev.seen)
