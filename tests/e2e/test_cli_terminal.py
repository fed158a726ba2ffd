"""The terminal belongs to the user (issue 11, family 6): raw ESC/OSC sequences (OSC 52
clipboard writes, screen clears, title changes), 8-bit C1 controls and bidirectional
overrides from tool summaries, error messages, event data, dead-letter errors and
manifest keys never reach the terminal raw through `pdk call`, `pdk send` or
`pdk check`: they are shown escaped. `--json` output stays exact.

Real subprocesses of the real CLI, real components."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

pytestmark = pytest.mark.slow

OSC52 = "\x1b]52;c;aGVsbG8gY2xpcGJvYXJk\x07"  # writes "hello clipboard" to the clipboard
CLEAR = "\x1b[2J\x1b[H"
TITLE = "\x1b]0;pwned\x1b\\"
C1_CSI = "\x9b31m"
BIDI = "\u202egnp.exe"
HOSTILE = f"ok {OSC52}{CLEAR}{TITLE}{C1_CSI}{BIDI}\r\x00\x08 done"
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def pdk(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pdk.cli", *map(str, args)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**os.environ, "PDK_DEBUG": ""},
        timeout=300,
    )


def assert_no_raw_controls(done: subprocess.CompletedProcess[str]) -> None:
    for name, text in (("stdout", done.stdout), ("stderr", done.stderr)):
        found = RAW.search(text)
        assert found is None, f"raw {found.group(0)!r} on {name}: {text!r}"


@pytest.fixture(scope="module")
def hostile_dir(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("hostile")


@pytest.fixture(scope="module")
def counter_dir(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("counter-service")


def test_call_shows_a_hostile_summary_and_content_escaped(hostile_dir: Path) -> None:
    done = pdk("call", hostile_dir, "shout", json.dumps({"text": HOSTILE}), "--dev-grants")
    assert done.returncode == 0, done.stderr
    assert_no_raw_controls(done)
    assert "ok \\x1b]52;c;aGVsbG8gY2xpcGJvYXJk\\x07\\x1b[2J" in done.stdout
    assert "\\x9b31m\\u202egnp.exe\\r\\x00\\x08 done" in done.stdout


def test_call_shows_a_hostile_error_message_escaped(hostile_dir: Path) -> None:
    done = pdk("call", hostile_dir, "shout", json.dumps({"text": HOSTILE, "fail": True}), "--dev-grants")
    assert done.returncode == 1
    assert_no_raw_controls(done)
    assert "tool error (failed): ok \\x1b]52;c;" in done.stderr


def test_call_json_stays_exact(hostile_dir: Path) -> None:
    done = pdk("call", hostile_dir, "shout", json.dumps({"text": HOSTILE}), "--dev-grants", "--json")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout  # JSON escapes C0 controls itself
    doc = json.loads(done.stdout)
    assert doc == {"summary": HOSTILE.strip(), "content": {"echo": HOSTILE}, "logs": []}


def test_send_shows_hostile_event_data_escaped(counter_dir: Path, tmp_path: Path) -> None:
    text = HOSTILE.replace("\r", "")  # the @file is read as text: a CR would become a newline
    event = tmp_path / "event.txt"
    event.write_text(text, encoding="utf-8", newline="")  # a file: arguments cannot hold NUL
    done = pdk("send", counter_dir, "inbox", f"@{event}", "--text", "--dev-grants", "--config", json.dumps({"fail_on": text}))
    assert done.returncode == 1  # dead-lettered: the plugin was asked to fail on this text
    assert_no_raw_controls(done)
    assert "dead-lettered" in done.stdout


def test_check_shows_hostile_manifest_keys_escaped(hostile_dir: Path, tmp_path: Path) -> None:
    plugin = tmp_path / "hostile"
    shutil.copytree(hostile_dir, plugin)
    manifest = plugin / "plugin.toml"
    evil_key = '"evil\\u001b]52;c;aGk=\\u0007\\u009b2J\\u202e"'
    manifest.write_text(manifest.read_text(encoding="utf-8") + f"\n{evil_key} = 1\n", encoding="utf-8")
    done = pdk("check", plugin)
    assert_no_raw_controls(done)
    assert "\\x1b]52;c;aGk=\\x07" in done.stdout + done.stderr
