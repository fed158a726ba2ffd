"""Issue 13, items 1, 2 and 5: the plugin's own words reach the author, and `pdk run`
is live. Real `pdk` subprocesses against real built components:

- `pdk call` / `pdk send` show the guest's log records and captured stdout/stderr
  on stderr after the result (`-q` hides them) and as `"logs"` in `--json`, exactly
  the records of this call; a `log` command's result carries its message;
- `pdk run` prints one line per lifecycle change, connection change, event outcome,
  command result and log record (`--json`: JSON lines, `-q`: quiet), and a failed
  connection shows at once;
- `pdk status` says how old the plugin's own status is, `--refresh` reads it now,
  and shows the recent logs;
- `websocket_send` under `pdk send` says plainly that send has no connections;
- missing grants name `--grants FILE` and `--dev-grants`."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from _pdk_run import PdkRun, env_for

from pdk.cli._runtime_cmds import SEND_NO_CONNECTIONS

pytestmark = pytest.mark.slow

WAIT_S = 60.0
LOG_KEYS = ("source", "level", "message")


@pytest.fixture(scope="module")
def text_tools(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("text-tools")


@pytest.fixture(scope="module")
def hostile(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("hostile")


@pytest.fixture(scope="module")
def counter(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("counter-service")


@pytest.fixture(scope="module")
def ws_echo(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("ws-echo")


def pdk(*args: str | Path, runtime_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pdk.cli", *map(str, args)], capture_output=True, text=True, env=env_for(runtime_dir), timeout=300)


def plugin_lines(stderr: str) -> list[str]:
    """stderr without the host's own notices and progress (`pdk: ...`)."""
    return [line for line in stderr.splitlines() if line and not line.startswith("pdk: ")]


def logs_of(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    for record in doc["logs"]:
        assert isinstance(record["at_ms"], int)
    return [tuple(r[k] for k in LOG_KEYS) for r in doc["logs"]]


# ------------------------------------------------------------------------------- call


def test_call_shows_the_plugins_log_after_the_result(text_tools: Path) -> None:
    done = pdk("call", text_tools, "text_stats", '{"text": "a b a"}', "--dev-grants")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == 'text_stats: {"words":3,"unique_words":2,"lines":1,"top":["a","b"]}'
    assert plugin_lines(done.stderr) == ["log info: text_stats: 3 words"]

    quiet = pdk("call", text_tools, "text_stats", '{"text": "a b a"}', "--dev-grants", "-q")
    assert quiet.returncode == 0 and quiet.stdout == done.stdout
    assert plugin_lines(quiet.stderr) == []

    as_json = pdk("call", text_tools, "text_stats", '{"text": "a b a"}', "--dev-grants", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert logs_of(json.loads(as_json.stdout)) == [("log", "info", "text_stats: 3 words")]
    assert plugin_lines(as_json.stderr) == []  # in the document, not repeated


def test_call_shows_captured_stdout_and_stderr(hostile: Path) -> None:
    done = pdk("call", hostile, "print_noise", '{"lines": 2, "width": 3}', "--dev-grants")
    assert done.returncode == 0, done.stderr
    lines = plugin_lines(done.stderr)
    assert sorted(lines) == ["stderr: err 0 eee", "stderr: err 1 eee", "stdout: out 0 ooo", "stdout: out 1 ooo"]
    doc = json.loads(pdk("call", hostile, "print_noise", '{"lines": 2, "width": 3}', "--dev-grants", "--json").stdout)
    assert sorted(logs_of(doc)) == [
        ("stderr", "info", "err 0 eee"),
        ("stderr", "info", "err 1 eee"),
        ("stdout", "info", "out 0 ooo"),
        ("stdout", "info", "out 1 ooo"),
    ]


def test_call_output_is_bounded(hostile: Path) -> None:
    # 2 x 400 lines of ~1 KiB: past the per-instance stdio budget (GUEST_STDIO_MAX_BYTES per
    # stream) and the ring; what is shown is bounded and says what was lost.
    from pdk.limits import GUEST_STDIO_MAX_BYTES, LOG_MESSAGE_MAX_BYTES, LOG_RING_MAX_RECORDS

    doc = json.loads(pdk("call", hostile, "print_noise", '{"lines": 400, "width": 1000}', "--dev-grants", "--json").stdout)
    assert doc["content"] == 400
    assert 0 < len(doc["logs"]) <= LOG_RING_MAX_RECORDS
    for source in ("stdout", "stderr"):
        kept = sum(len(r["message"].encode()) + 1 for r in doc["logs"] if r["source"] == source)
        assert kept <= GUEST_STDIO_MAX_BYTES
    assert all(len(r["message"].encode()) <= LOG_MESSAGE_MAX_BYTES for r in doc["logs"])


def test_missing_grants_name_both_ways_to_grant(text_tools: Path, counter: Path) -> None:
    done = pdk("call", text_tools, "text_stats", '{"text": "a"}')
    assert done.returncode == 1
    (line,) = plugin_lines(done.stderr)
    assert line.startswith("tool error (denied): the tools surface is not granted to text-tools (no grants file given: ")
    assert "--grants FILE" in line and "--dev-grants" in line
    sent = pdk("send", counter, "inbox", '"hi"')
    assert sent.returncode == 1
    assert "--grants FILE" in sent.stderr and "--dev-grants" in sent.stderr


# ------------------------------------------------------------------------------- send


def test_send_shows_the_log_command_and_the_plugins_log(counter: Path) -> None:
    done = pdk("send", counter, "inbox", '"hi"', "--dev-grants", "--config", '{"greeting": "yo"}')
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1:] == [
        '    emit: executed - emitted on counted {"count":1,"text":"hi","attempt":1}',
        "    log: executed - logged info: yo: hi",
        "1 event: 1 handled, 0 dead-lettered, 0 refused",
    ]
    assert plugin_lines(done.stderr) == ["log info: counter starting with greeting 'yo'", "log info: counter stopping after 1 messages"]

    quiet = pdk("send", counter, "inbox", '"hi"', "--dev-grants", "--config", '{"greeting": "yo"}', "-q")
    assert quiet.returncode == 0 and plugin_lines(quiet.stderr) == []

    doc = json.loads(pdk("send", counter, "inbox", '"hi"', "--dev-grants", "--json").stdout)
    assert logs_of(doc) == [("log", "info", "counter starting with greeting 'hello'"), ("log", "info", "counter stopping after 1 messages")]
    results = doc["events"][0]["outcome"]["command_results"]
    assert [(r["kind"], r["result"], r["detail"]) for r in results] == [("emit", "executed", "emitted on counted"), ("log", "executed", "logged info: hello: hi")]


def test_send_escapes_control_characters_in_a_log_message(counter: Path, tmp_path: Path) -> None:
    event = tmp_path / "event.txt"
    event.write_text("\x1b]52;c;aGk=\x07\x1b[2J", encoding="utf-8")
    done = pdk("send", counter, "inbox", f"@{event}", "--text", "--dev-grants")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    assert "    log: executed - logged info: hello: \\x1b]52;c;aGk=\\x07\\x1b[2J" in done.stdout.splitlines()
    doc = json.loads(pdk("send", counter, "inbox", f"@{event}", "--text", "--dev-grants", "--json").stdout)
    detail = doc["events"][0]["outcome"]["command_results"][1]["detail"]
    assert detail == "logged info: hello: \x1b]52;c;aGk=\x07\x1b[2J"  # JSON stays exact


def test_send_says_websocket_send_needs_a_connection(ws_echo: Path) -> None:
    done = pdk("send", ws_echo, "control", "hello", "--text", "--kind", "say", "--dev-grants")
    assert done.returncode == 0, done.stderr
    assert f"    websocket_send: unsupported - {SEND_NO_CONNECTIONS}" in done.stdout.splitlines()
    assert "pdk run" in SEND_NO_CONNECTIONS and "not executed by this host yet" not in done.stdout


# ------------------------------------------------------------------------------- run


def post(port: int, path: str, body: bytes) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "text/plain"})
        resp = conn.getresponse()
        assert resp.status == 202
        event_id: str = json.loads(resp.read())["event_id"]
        return event_id
    finally:
        conn.close()


def test_run_prints_a_line_per_change_outcome_command_and_log(counter: Path, runtime_dir: Path, run_pdk: Callable[..., PdkRun]) -> None:
    run = run_pdk(counter, "--dev-grants")
    port = int(run.until(lambda line: line.startswith("http: listening on "), "the listener").rsplit(":", 1)[1])
    run.ready()
    # What starting said comes right after the banner; the banner said "is running".
    assert run.until(lambda line: not line.startswith("event "), "the start log") == "log info: counter starting with greeting 'hello'"

    event_id = post(port, "/inbox", b"hi")
    mine = lambda line: event_id in line  # noqa: E731  (timer ticks have their own lines)
    emit = run.until(mine, "the emit result")
    assert emit.startswith("command ") and emit.endswith(f" (emit) of {event_id}: executed - emitted on counted")
    assert run.until(mine, "the log result").endswith(f" (log) of {event_id}: executed - logged info: hello: hi")
    handled = run.until(mine, "the outcome")
    assert handled.startswith(f"event {event_id} inbox/message from http:inbox: handled (attempt 1, ")

    before_ms = int(time.time() * 1000)
    done = pdk("status", "--json", "--refresh", runtime_dir=runtime_dir)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    ps = doc["plugin_status"]
    assert ps["source"] == "status_export" and ps["at_ms"] >= before_ms  # read on request, after we asked
    assert ps["data"]["count"] == 1
    assert isinstance(ps["status_age_s"], float) and ps["status_age_s"] >= 0
    assert [(r["source"], r["message"]) for r in doc["logs"]] == [("log", "counter starting with greeting 'hello'"), ("command", "hello: hi")]
    human = pdk("status", runtime_dir=runtime_dir).stdout.splitlines()
    (line,) = [line for line in human if line.startswith("plugin status: ")]
    assert line.startswith("plugin status: healthy (as of ") and " s ago, from status_export) {\"count\":1," in line
    at = human.index("recent logs (2):")
    assert human[at + 1].endswith(" log info: counter starting with greeting 'hello'")
    assert human[at + 2].endswith(" command info: hello: hi")

    rest = [line for line in run.stopped() if not line.startswith("event ") or event_id in line]
    assert rest[-4:-1] == ["lifecycle: counter-service is stopping", "log info: counter stopping after 1 messages", "lifecycle: counter-service is stopped"]
    assert rest[-1].startswith("pdk run: counter-service stopped on SIGINT after ")


def test_run_json_lines_and_quiet(counter: Path, runtime_dir: Path, run_pdk: Callable[..., PdkRun]) -> None:
    run = run_pdk(counter, "--dev-grants", "--json")
    first = json.loads(run.until(lambda line: True, "the first line"))
    assert first["type"] == "started" and first["plugin"] == "counter-service" and first["state"] == "running"
    port = int(first["http"].rsplit(":", 1)[1])
    log = json.loads(run.until(lambda line: json.loads(line)["type"] == "log", "the start log"))
    assert (log["source"], log["level"], log["message"]) == ("log", "info", "counter starting with greeting 'hello'")
    event_id = post(port, "/inbox", b"hi")
    outcome = json.loads(run.until(lambda line: (d := json.loads(line))["type"] == "outcome" and d["event_id"] == event_id, "the outcome"))
    assert outcome["outcome"] == "handled" and outcome["source"] == "http:inbox"
    docs = [json.loads(line) for line in run.seen[2:]]
    commands = [(d["kind"], d["result"], d["detail"]) for d in docs if d["type"] == "command" and d["event_id"] == event_id]
    assert commands == [("emit", "executed", "emitted on counted"), ("log", "executed", "logged info: hello: hi")]
    rest = [json.loads(line) for line in run.stopped()]
    assert [(d["state"]) for d in rest if d["type"] == "lifecycle"] == ["stopping", "stopped"]
    assert rest[-1]["type"] == "stopped" and rest[-1]["signal"] == "SIGINT" and rest[-1]["counters"]["dead_lettered"] == 0

    quiet = run_pdk(counter, "--dev-grants", "-q", "--control", runtime_dir / "quiet.sock")
    quiet.ready()
    rest_q = quiet.stopped()
    assert len(rest_q) == 1 and rest_q[0].startswith("pdk run: counter-service stopped on SIGINT after ")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: nothing listens there


def test_run_shows_a_failed_connection_at_once(ws_echo: Path, tmp_path: Path, runtime_dir: Path, run_pdk: Callable[..., PdkRun]) -> None:
    dead, dead_aux = free_port(), free_port()
    copy = tmp_path / "ws-echo"
    shutil.copytree(ws_echo, copy)
    manifest = copy / "plugin.toml"
    manifest.write_text(manifest.read_text().replace("59999", str(dead)).replace("59998", str(dead_aux)))
    run = run_pdk(copy, "--dev-grants")
    run.ready()
    failed = run.until(lambda line: line.startswith("connection echo: ") and "connect failed" in line, "the failed connect")
    assert failed.startswith(f"connection echo: connecting (ws://127.0.0.1:{dead}/echo): connect failed: ")
    assert f"connection echo: connecting (ws://127.0.0.1:{dead}/echo)" in run.seen  # its first state, before the dial
    rest = run.stopped()
    assert f"connection echo: closed (ws://127.0.0.1:{dead}/echo): {failed.split(': ', 2)[2]}" in rest
