"""`pdk send`, `pdk run`, `pdk status`, `pdk dead-letters` and `pdk replay` as a user
runs them: real subprocesses, real components, a real HTTP POST and a real signal.

Every subprocess gets its own control-socket directory (`YOI_PDK_RUNTIME_DIR`) and
inherits the session compile cache, so only the first load compiles."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from _pdk_run import PdkRun, env_for

pytestmark = pytest.mark.slow

WAIT_S = 60.0


@pytest.fixture(scope="module")
def counter_dir(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("counter-service")


@pytest.fixture(scope="module")
def webhook_dir(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("webhook-ingress")


def pdk(*args: str | Path, runtime_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pdk.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env_for(runtime_dir),
        timeout=300,
    )


def error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line and not line.startswith("pdk: ")]  # notices, progress
    assert len(lines) == 1, done.stderr
    return lines[0]


# ------------------------------------------------------------------------------- send


def test_send_prints_outcomes_and_command_results(counter_dir: Path) -> None:
    done = pdk("send", counter_dir, "inbox", '"hi"', '{"n": 2}', "--dev-grants", "--config", '{"greeting": "yo"}')
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith('[1] inbox/message (json "hi"): handled ev-') and "(attempt 1" in lines[0]
    assert lines[1] == '    emit: executed - emitted on counted {"count":1,"text":"hi","attempt":1}'
    assert lines[2] == "    log: executed - logged info: yo: hi"  # a log command's result carries its message
    assert lines[3].startswith('[2] inbox/message (json {"n": 2}): handled ev-')
    assert lines[-1] == "2 events: 2 handled, 0 dead-lettered, 0 refused"
    assert done.stderr.startswith("pdk: DEV GRANTS: counter-service 0.1.0")


def test_send_json_document(counter_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "event.txt").write_text("from a file")
    done = pdk("send", counter_dir, "inbox", "@" + str(tmp_path / "event.txt"), "--text", "--dev-grants", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["ok"] is True and doc["ingress"] == "inbox" and doc["kind"] == "message"
    (event,) = doc["events"]
    assert event["payload"] == {"type": "text", "value": "from a file", "bytes": 11, "truncated": False}
    assert event["outcome"]["outcome"] == "handled"
    assert [r["kind"] for r in event["outcome"]["command_results"]] == ["emit", "log"]
    assert all(r["result"] == "executed" for r in event["outcome"]["command_results"])
    assert event["emitted"][0]["data"] == {"count": 1, "text": "from a file", "attempt": 1}
    assert doc["counters"]["accepted"] == doc["counters"]["handled"] == 1
    assert doc["lifecycle"]["state"] == "stopped"


def test_send_exit_1_when_an_event_is_dead_lettered(counter_dir: Path) -> None:
    done = pdk("send", counter_dir, "inbox", "ok", "bad", "", "--text", "--dev-grants", "--config", '{"fail_on": "bad"}')
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith('[1] inbox/message (text "ok"): handled')
    dead = [line for line in lines if "dead-lettered" in line and line.startswith("[")]
    assert len(dead) == 2
    assert "(retries_exhausted after 3 attempts)" in dead[0] and "failed: asked to fail on 'bad'" in dead[0]
    assert "(permanent_error after 1 attempt)" in dead[1] and "invalid_input: empty message" in dead[1]
    assert lines[-1] == "3 events: 1 handled, 2 dead-lettered, 0 refused"


def test_send_refusals_and_user_errors(counter_dir: Path, webhook_dir: Path) -> None:
    done = pdk("send", counter_dir, "ticks", "--dev-grants")  # a timer-only ingress
    assert done.returncode == 1
    assert "refused (source_not_allowed)" in done.stdout
    bad_order = json.dumps({"order_id": "X", "amount_cents": 1, "currency": "GBP"})
    done = pdk("send", webhook_dir, "orders", bad_order, "--dev-grants")
    assert done.returncode == 1 and "refused (invalid_payload)" in done.stdout
    assert error_line(pdk("send", counter_dir, "nope", "--dev-grants")) == "pdk send: counter-service has no ingress 'nope' (ingresses: inbox, ticks)"
    assert "takes no events of kind 'x'" in error_line(pdk("send", counter_dir, "inbox", "--kind", "x", "--dev-grants"))
    assert "is not valid JSON" in error_line(pdk("send", counter_dir, "inbox", "{nope", "--dev-grants"))


def test_send_exit_1_when_the_plugin_fails_to_start(counter_dir: Path, webhook_dir: Path) -> None:
    line = error_line(pdk("send", counter_dir, "inbox", '"hi"'))  # no grants at all
    assert "counter-service failed to start: denied:" in line
    line = error_line(pdk("send", counter_dir, "inbox", '"hi"', "--dev-grants", "--config", '{"greeting": 5}'))
    assert "counter-service failed to start: invalid_input:" in line
    order = json.dumps({"order_id": "W-1", "amount_cents": 100, "currency": "USD"})
    done = pdk("send", webhook_dir, "orders", order, "--dev-grants")  # an ingress plugin: no lifecycle, still fine
    assert done.returncode == 0, done.stderr
    assert 'emit: executed - emitted on orders.normalized {"id":"W-1","amount":1.0,"currency":"USD","customer":"anonymous"}' in done.stdout


# ------------------------------------------------------------------------------- run


def post(port: int, path: str, body: bytes) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "text/plain"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def status_json(runtime_dir: Path, *extra: str) -> dict[str, Any]:
    done = pdk("status", "--json", *extra, runtime_dir=runtime_dir)
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def wait_status(runtime_dir: Path, condition: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        doc = status_json(runtime_dir)
        if condition(doc):
            return doc
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {doc}"
        time.sleep(0.1)


def test_run_http_status_and_a_clean_stop(counter_dir: Path, runtime_dir: Path, run_pdk: Callable[..., PdkRun]) -> None:
    run = run_pdk(counter_dir, "--dev-grants", "--http-port", "0")
    assert run.until("pdk run: ") == "pdk run: counter-service 0.1.0 (service) is running"
    port = int(run.until("http: listening on ").rsplit(":", 1)[1])
    control = Path(run.until("control: ").split(": ", 1)[1])
    assert control == runtime_dir / "counter-service.sock"
    assert oct(control.stat().st_mode & 0o777) == "0o600"
    run.ready()

    status, doc = post(port, "/inbox", b"hello from curl")
    assert status == 202 and doc["event_id"].startswith("ev-")
    doc = wait_status(runtime_dir, lambda d: (d["plugin_status"] or {}).get("data", {}).get("count") == 1, "the message to be counted")
    assert doc["lifecycle"]["state"] == "running"
    assert doc["sources"]["http:inbox"]["accepted"] == 1
    assert doc["sources"]["timer:ticks"]["kind"] == "timer"
    assert doc["counters"]["handled"] >= 1 and doc["counters"]["refused_total"] == 0
    assert doc["plugin_status"]["data"]["last"] == ["hello from curl"]

    human = pdk("status", runtime_dir=runtime_dir)
    assert human.returncode == 0, human.stderr
    assert human.stdout.startswith("counter-service 0.1.0 (service): running since ")
    assert "  http:inbox: POST http://127.0.0.1:" in human.stdout
    same = pdk("status", "--json", "--control", control, runtime_dir=runtime_dir)
    assert same.returncode == 0 and json.loads(same.stdout)["plugin"]["id"] == "counter-service"

    assert run.stop(signal.SIGINT) == 0
    summary = run.rest()[-1]
    assert summary.startswith("pdk run: counter-service stopped on SIGINT after ")
    assert "0 dead-lettered, 0 refused" in summary
    assert not control.exists()

    line = error_line(pdk("status", runtime_dir=runtime_dir))
    assert line == f"pdk status: nothing is running: no control socket in {runtime_dir} (start one with `pdk run`)"


def test_status_with_nothing_running(runtime_dir: Path) -> None:
    line = error_line(pdk("status", "--control", runtime_dir / "none.sock", runtime_dir=runtime_dir))
    assert line.startswith(f"pdk status: nothing is running at {runtime_dir / 'none.sock'}")
    assert "nothing is running" in error_line(pdk("status", "--id", "counter-service", runtime_dir=runtime_dir))
    assert "nothing is running" in error_line(pdk("dead-letters", runtime_dir=runtime_dir))


def test_run_dead_letters_and_replay(counter_dir: Path, runtime_dir: Path, run_pdk: Callable[..., PdkRun]) -> None:
    run = run_pdk(counter_dir, "--dev-grants", "--config", '{"fail_on": "bad"}')
    port = int(run.until("http: listening on ").rsplit(":", 1)[1])
    run.ready()
    assert post(port, "/inbox", b"bad")[0] == 202
    wait_status(runtime_dir, lambda d: d["counters"]["dead_lettered"] == 1, "the dead letter")

    done = pdk("dead-letters", "--json", runtime_dir=runtime_dir)
    assert done.returncode == 0, done.stderr
    (letter,) = json.loads(done.stdout)
    assert letter["reason"] == "retries_exhausted" and letter["attempts"] == 3
    assert letter["event"]["payload"]["value"] == "bad" and letter["event"]["source"] == "http:inbox"
    human = pdk("dead-letters", runtime_dir=runtime_dir)
    assert human.stdout.startswith(f"{letter['id']}  inbox/message  retries_exhausted after 3 attempts")

    done = pdk("replay", letter["id"], runtime_dir=runtime_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"replayed {letter['id']} as event {letter['event']['id']}")
    doc = wait_status(runtime_dir, lambda d: d["counters"]["dead_lettered"] == 2, "the replayed event to fail again")
    assert doc["counters"]["replayed"] == 1
    assert "no dead letter 'dl-nope'" in error_line(pdk("replay", "dl-nope", runtime_dir=runtime_dir))

    assert run.stop(signal.SIGTERM) == 0
    assert run.rest()[-1].startswith("pdk run: counter-service stopped on SIGTERM")


def test_a_second_run_of_the_same_plugin_is_refused(counter_dir: Path, runtime_dir: Path, run_pdk: Callable[..., PdkRun]) -> None:
    first = run_pdk(counter_dir, "--dev-grants")
    first.ready()
    second = pdk("run", counter_dir, "--dev-grants", runtime_dir=runtime_dir)
    assert "another host is already running at" in error_line(second)
    assert first.stop() == 0
