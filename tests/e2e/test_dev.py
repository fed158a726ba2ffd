"""`pdk dev`: a real development host in a subprocess, on a copy of
examples/text-tools. `pdk call` / `pdk status` are served by it through its control
socket; an edit of app.py is reloaded - on the dev runner (the default) or by a real
build (`--real-build`) - and swapped in; a broken edit is reported with file:line and
the previous version keeps answering. No timing thresholds (the reload cost is
measured in bench/loop_bench.py)."""

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

    def __init__(self, plugin_dir: Path, env: dict[str, str], *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pdk.cli", "dev", str(plugin_dir), "--dev-grants", *extra],
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


@pytest.mark.parametrize("mode", ["runner", "real-build"])
def test_dev_serves_reloads_and_survives_a_broken_edit(built_plugin: Callable[[str], Path], tmp_path: Path, runtime_dir: Path, mode: str) -> None:
    plugin_dir = tmp_path / "text-tools"
    shutil.copytree(built_plugin("text-tools"), plugin_dir)  # with its build/: the first build is cached
    env = {**os.environ, "PDK_DEBUG": "", "YOI_PDK_RUNTIME_DIR": str(runtime_dir)}
    dev = DevProcess(plugin_dir, env, *(["--real-build"] if mode == "real-build" else []))
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
        assert reloaded.endswith("; dev runner)" if mode == "runner" else "; real build)"), reloaded

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
        assert doc["dev"]["mode"] == ("runner" if mode == "runner" else "build")
        assert doc["dev"]["serving"] == ("runner" if mode == "runner" else "build")
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


def _source_copy(name: str, dest: Path) -> Path:
    """A copy of an example without its build output: the dev runner needs no build."""
    shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / name, dest, ignore=shutil.ignore_patterns("build", "dist", "__pycache__"))
    return dest


def _edit(app: Path, old: str, new: str) -> str:
    source = app.read_text(encoding="utf-8")
    assert old in source
    changed = source.replace(old, new, 1)
    app.write_text(changed, encoding="utf-8")
    return changed


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_dev_runner_reports_a_broken_import_and_an_unknown_module_without_building(tmp_path: Path, runtime_dir: Path) -> None:
    plugin_dir = _source_copy("text-tools", tmp_path / "text-tools")
    env = {**os.environ, "PDK_DEBUG": "", "YOI_PDK_RUNTIME_DIR": str(runtime_dir)}
    dev = DevProcess(plugin_dir, env)
    app = plugin_dir / "app.py"
    original = app.read_text(encoding="utf-8")
    try:
        dev.wait_for("v1 serving")
        assert not (plugin_dir / "build").exists(), "the dev runner serves the sources: nothing is built"

        # An exception at import time: reported with file:line, v1 keeps serving.
        broken = _edit(app, "plugin = Plugin()\n", 'plugin = Plugin()\nraise RuntimeError("boom at import")\n')
        failed = dev.wait_for("pdk dev: reload failed")
        assert f"app.py:{_line_of(broken, 'boom at import')}:" in failed and "RuntimeError: boom at import" in failed, failed
        assert "v1 keeps serving" in failed

        # A module that is neither the plugin's, the standard library nor declared:
        # refused inside the sandbox (the host's venv has tomlkit; the runner does not),
        # with pdk build's advice, and without a real build.
        app.write_text(original, encoding="utf-8")
        dev.wait_for("pdk dev: reloaded v2")
        unknown = _edit(app, "from pdk import Plugin", "import tomlkit  # noqa: F401\nfrom pdk import Plugin")
        failed = dev.wait_for("pdk dev: reload failed")
        assert f"app.py:{_line_of(unknown, 'import tomlkit')}: module 'tomlkit' is not part of the plugin" in failed, failed
        assert "[build] dependencies" in failed and "v2 keeps serving" in failed
        assert not any("real build" in line for line in dev.seen), dev.seen

        served = _pdk(env, "call", plugin_dir, "text_stats", '{"text": "a b a"}', "--json")
        assert served.returncode == 0, served.stderr
        assert "served by `pdk dev` (v2" in served.stderr
        assert json.loads(served.stdout)["content"]["words"] == 3
        doc = json.loads(_pdk(env, "status", "--json").stdout)
        assert doc["dev"]["serving"] == "runner" and doc["dev"]["version"] == 2
        assert [r["ok"] for r in doc["dev"]["reloads"]] == [False, True, False]
        assert not (plugin_dir / "build").exists()
    finally:
        code = dev.stop()
    assert code == 0, "\n".join(dev.seen)


def test_dev_runner_falls_back_to_a_real_build_for_a_module_it_did_not_preload(tmp_path: Path, runtime_dir: Path) -> None:
    plugin_dir = _source_copy("text-tools", tmp_path / "text-tools")
    env = {**os.environ, "PDK_DEBUG": "", "YOI_PDK_RUNTIME_DIR": str(runtime_dir)}
    dev = DevProcess(plugin_dir, env)
    app = plugin_dir / "app.py"
    try:
        dev.wait_for("v1 serving")
        # `this` is standard library the runner leaves out (it prints at import); a
        # real build imports it while componentize-py snapshots the plugin.
        _edit(app, "from pdk import Plugin", "import this  # noqa: F401\nfrom pdk import Plugin")
        notice = dev.wait_for("reloading with a real build")
        assert "module 'this' is not in the dev runner" in notice
        reloaded = dev.wait_for("pdk dev: reloaded v2")
        assert reloaded.endswith("; real build)"), reloaded
        served = _pdk(env, "call", plugin_dir, "text_stats", '{"text": "a b a"}', "--json")
        assert served.returncode == 0, served.stderr
        assert json.loads(served.stdout)["content"]["words"] == 3
        doc = json.loads(_pdk(env, "status", "--json").stdout)
        assert doc["dev"]["mode"] == "runner" and doc["dev"]["serving"] == "build"
        assert (plugin_dir / "build" / "text_tools.wasm").is_file()
    finally:
        code = dev.stop()
    assert code == 0, "\n".join(dev.seen)
