"""A stop that cannot drain, as a user meets it: `pdk run --state FILE --http-port N`
as a real subprocess, jobs accepted over loopback HTTP faster than the plugin handles
them, SIGTERM before they drain, a restart on the same store.

The promise checked: nothing accepted is lost across a normal restart. The stop
leaves the undrained events pending in the store (none dead-lettered), says how many
in its summary, and the next run delivers them: every event answered 202 ends
handled exactly once (one `job.done` emit per event id, with attempt 1: a clean stop
knows no delivery was under way). `pdk replay ID --state FILE` turns a dead letter
back into a pending event without a running host; the next run delivers it.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
from pathlib import Path
from typing import Any, Callable

import pytest
from _pdk_run import PdkRun
from _store_probe import accounting, pdk, wait_drained

pytestmark = pytest.mark.slow

# A deadline for a line or state that never comes (a failure), not a timing expectation.
WAIT_S = 90.0
JOBS = 40
# Each job spins this long: the 40 take ~8 s of plugin time, far beyond the drain
# deadline below, so the stop always finds a backlog (the test asserts it did).
SPIN_MS = 200


@pytest.fixture(scope="module")
def sink_dir(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("durable-sink")




def post_jobs(port: int, bodies: list[dict[str, Any]]) -> list[str]:
    """POST each job on one keep-alive connection; the event ids of the 202s."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S)
    ids = []
    try:
        for body in bodies:
            conn.request("POST", "/jobs", body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            doc = json.loads(resp.read() or b"{}")
            assert resp.status == 202, (resp.status, doc)
            ids.append(doc["event_id"])
    finally:
        conn.close()
    return ids








def store_of(state: Path, runtime_dir: Path) -> dict[str, Any]:
    done = pdk("status", "--state", state, "--json", runtime_dir=runtime_dir)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_sigterm_leaves_undrained_events_pending_and_the_restart_handles_each_once(
    sink_dir: Path, runtime_dir: Path, tmp_path: Path, run_pdk: Callable[..., PdkRun]
) -> None:
    state = tmp_path / "state.sqlite3"
    control = runtime_dir / "sink.sock"
    first = run_pdk(sink_dir, "--dev-grants", "--state", state, "--control", control, "--http-port", "0", "--drain-deadline", "0.1")
    port = first.port()
    first.until("press Ctrl-C to stop")
    acked = post_jobs(port, [{"n": n, "spin_ms": SPIN_MS} for n in range(JOBS)])
    assert len(set(acked)) == JOBS
    first.proc.send_signal(signal.SIGTERM)
    assert first.proc.wait(timeout=WAIT_S) == 0
    rest = first.rest()
    summary = rest[-1]
    match = re.search(r"(\d+) handled, (\d+) dead-lettered, .*; (\d+) left pending in (.+) \(the next start delivers them\)$", summary)
    assert summary.startswith("pdk run: durable-sink stopped on SIGTERM after ") and match, rest
    handled, dead, left = int(match[1]), int(match[2]), int(match[3])
    assert dead == 0 and left >= 1 and handled + left == JOBS and match[4] == str(state)

    # The store, read without a host: the undrained events are pending, none dead,
    # and the stop was clean.
    before = store_of(state, runtime_dir)
    assert (before["pending"], before["dead_letters"], before["handled"]) == (left, 0, handled)
    assert before["clean_stop"]["left_pending"] == left
    text = pdk("status", "--state", state, runtime_dir=runtime_dir).stdout
    assert f"{left} events left pending (the next start delivers them)" in text
    events, emits = accounting(state)
    pending = {i for i, (s, _, _) in events.items() if s == "pending"}
    assert len(pending) == left and pending <= set(acked)
    assert {events[i][1] for i in pending} == {1}  # never delivered: their next attempt is the first

    # The restart delivers them, each once, with attempt 1.
    second = run_pdk(sink_dir, "--dev-grants", "--state", state, "--control", control)
    banner = second.until("state: ")
    assert banner == f"state: {state} (synchronous=normal); recovered {left} pending events: {left} queued again after a clean stop"
    second.until("press Ctrl-C to stop")
    doc = wait_drained(control, runtime_dir)
    rec = doc["store"]["recovery"]
    assert (rec["pending"], rec["requeued"], rec["dead_lettered"], rec["clean_stop"]) == (left, left, 0, True)
    c = doc["counters"]
    assert (c["accepted"], c["recovered"], c["handled"], c["dead_lettered"], c["left_pending"]) == (left, left, left, 0, 0)
    second.proc.send_signal(signal.SIGTERM)
    assert second.proc.wait(timeout=WAIT_S) == 0
    assert "left pending" not in second.rest()[-1]

    events, emits = accounting(state)
    assert set(events) == set(acked)
    assert {s for s, _, _ in events.values()} == {"handled"}
    assert {i: (events[i][1], emits.get(i)) for i in acked} == {i: (1, [1]) for i in acked}  # exactly once, attempt 1
    after = store_of(state, runtime_dir)
    assert (after["pending"], after["handled"], after["dead_letters"], after["runs"]) == (0, JOBS, 0, 2)
    assert after["clean_stop"]["left_pending"] == 0


def test_replay_with_state_makes_a_dead_letter_pending_for_the_next_run(
    sink_dir: Path, runtime_dir: Path, tmp_path: Path, run_pdk: Callable[..., PdkRun]
) -> None:
    state = tmp_path / "state.sqlite3"
    control = runtime_dir / "sink.sock"
    first = run_pdk(sink_dir, "--dev-grants", "--state", state, "--control", control)
    port = first.port()
    first.until("press Ctrl-C to stop")
    (failed,) = post_jobs(port, [{"n": 1, "fail": True}])
    first.until(f"event {failed} ")  # its outcome line: dead-lettered (permanent_error)
    first.proc.send_signal(signal.SIGINT)
    assert first.proc.wait(timeout=WAIT_S) == 0

    done = pdk("dead-letters", "--state", state, "--json", runtime_dir=runtime_dir)
    (letter,) = json.loads(done.stdout)
    assert letter["event"]["id"] == failed and letter["reason"] == "permanent_error"
    unknown = pdk("replay", "dl-nope", "--state", state, runtime_dir=runtime_dir)
    assert unknown.returncode == 1 and "Traceback" not in unknown.stderr
    assert f"no dead letter 'dl-nope' in the state store {state}" in unknown.stderr
    done = pdk("replay", letter["id"], "--state", state, runtime_dir=runtime_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"replayed {letter['id']} as event {failed}: pending in {state} (1 pending); the next `pdk run --state` delivers it"
    seen = store_of(state, runtime_dir)
    assert (seen["pending"], seen["dead_letters"]) == (1, 0)

    second = run_pdk(sink_dir, "--dev-grants", "--state", state, "--control", control)
    assert second.until("state: ").endswith("recovered 1 pending events: 1 queued again after a clean stop")
    second.until("press Ctrl-C to stop")
    held = pdk("replay", letter["id"], "--state", state, runtime_dir=runtime_dir)  # a running host holds the store
    assert held.returncode == 1 and "is locked by another process" in held.stderr and "replay through it with --id or --control" in held.stderr
    doc = wait_drained(control, runtime_dir)
    assert doc["counters"]["recovered"] == 1
    (again,) = json.loads(pdk("dead-letters", "--json", "--control", control, runtime_dir=runtime_dir).stdout)
    # Delivered again (the job fails again by design): a new letter naming the old one.
    assert again["event"]["id"] == failed and again["replay_of"] == letter["id"] and again["attempts"] == 1
    second.proc.send_signal(signal.SIGINT)
    assert second.proc.wait(timeout=WAIT_S) == 0
