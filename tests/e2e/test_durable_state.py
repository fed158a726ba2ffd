"""Durable runtime state, as a user meets it: `pdk run --state` as a real subprocess,
a webhook flood over loopback, `SIGKILL` (or a stop) in the middle, a restart on
the same store, then the accounting read from the store file itself.

The promise checked: every event answered 202 ends, exactly once in the store's
final accounting, handled or dead-lettered; an event delivered again after the
crash carries the same id and a higher `attempt` (the durable-sink plugin emits
both for every handled job); a corrupt, locked or read-only store is one clear
error line, exit 1, and the file is left as it was.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

import pytest
from _pdk_run import PdkRun
from _store_probe import accounting, pdk, wait_drained

from pdk.host.runtime.store import open_store

pytestmark = pytest.mark.slow

WAIT_S = 90.0
CLIENTS = 4


@pytest.fixture(scope="module")
def sink_dir(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("durable-sink")




def error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr
    # Notices (dev grants, compile progress) are `pdk: ...`; the error is `pdk <command>: ...`.
    lines = [line for line in done.stderr.splitlines() if line and not line.startswith("pdk: ")]
    assert len(lines) == 1, done.stderr
    return lines[0]


class Flood:
    """`CLIENTS` keep-alive clients POSTing jobs until told to stop or the host dies.
    A 503 (queue full) is retried as a new request; only 202s are recorded."""

    def __init__(self, port: int, spin_ms: int) -> None:
        self.port = port
        self.spin_ms = spin_ms
        self.acked: list[str] = []
        self.codes: dict[int, int] = defaultdict(int)
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._n = 0
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(CLIENTS)]
        for t in self.threads:
            t.start()

    def _client(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT_S)
        try:
            while not self.stop.is_set():
                with self._lock:
                    self._n += 1
                    n = self._n
                body = json.dumps({"n": n, "spin_ms": self.spin_ms}).encode()
                try:
                    conn.request("POST", "/jobs", body=body, headers={"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    doc = json.loads(resp.read() or b"{}")
                except (OSError, http.client.HTTPException, ValueError):
                    return  # the host went away (killed or stopped)
                with self._lock:
                    self.codes[resp.status] += 1
                    if resp.status == 202:
                        self.acked.append(doc["event_id"])
                if resp.status == 503:
                    time.sleep(0.005)
                if resp.will_close:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT_S)
        finally:
            conn.close()

    def wait_for(self, n_acked: int) -> None:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.acked) >= n_acked:
                    return
            time.sleep(0.01)
        raise AssertionError(f"only {len(self.acked)} 202s within {WAIT_S} s: {dict(self.codes)}")

    def join(self) -> list[str]:
        self.stop.set()
        for t in self.threads:
            t.join(WAIT_S)
        with self._lock:
            return list(self.acked)








def digest_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------ crash


def test_sigkill_in_a_webhook_flood_loses_no_accepted_event(sink_dir: Path, runtime_dir: Path, tmp_path: Path, run_pdk: Callable[..., PdkRun]) -> None:
    state = tmp_path / "state.sqlite3"
    control = runtime_dir / "sink.sock"
    first = run_pdk(sink_dir, "--dev-grants", "--state", state, "--control", control)
    flood = Flood(first.port(), spin_ms=20)  # ~50 jobs/s: the 64-slot queue stays full
    first.ready()
    flood.wait_for(150)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=WAIT_S)
    acked = flood.join()
    assert first.proc.returncode == -signal.SIGKILL

    # The held store is readable by the CLI now that its host is gone.
    done = pdk("status", "--state", state, "--json", runtime_dir=runtime_dir)
    assert done.returncode == 0, done.stderr
    before = json.loads(done.stdout)
    assert before["plugin_id"] == "durable-sink" and before["pending"] >= 1

    second = run_pdk(sink_dir, "--dev-grants", "--state", state, "--control", control)
    banner = second.until("state: ")
    assert banner.startswith(f"state: {state} (synchronous=normal); recovered {before['pending']} pending events: {before['pending']} queued again")
    second.ready()
    doc = wait_drained(control, runtime_dir)
    rec = doc["store"]["recovery"]
    assert (rec["pending"], rec["requeued"], rec["dead_lettered"], rec["digest_changed"]) == (before["pending"], before["pending"], 0, False)
    c = doc["counters"]
    assert c["recovered"] == c["accepted"] == c["handled"] == rec["pending"] and c["dead_lettered"] == 0
    status_text = pdk("status", "--control", control, runtime_dir=runtime_dir)
    assert f"recovered at start: {rec['pending']} pending events, {rec['pending']} queued again, 0 dead-lettered" in status_text.stdout
    second.proc.send_signal(signal.SIGINT)
    assert second.proc.wait(timeout=WAIT_S) == 0

    events, emits = accounting(state)
    # Every 202 ends, once: the store holds each id once, none left pending.
    assert set(acked) <= set(events)
    assert len(acked) == len(set(acked))
    assert {s for s, _, _ in events.values()} == {"handled"}
    # Redeliveries only as at-least-once allows, and visible by `attempt`: the
    # recovered events (and only they) were delivered again, with attempt 2.
    redelivered = {i for i, (_, attempt, _) in events.items() if attempt > 1}
    assert len(redelivered) == rec["pending"]
    assert {events[i][1] for i in redelivered} == {2}
    for event_id, (_, attempt, _) in events.items():
        seen = emits.get(event_id, [])
        assert seen and seen[-1] == attempt, (event_id, seen, attempt)  # the final delivery emitted
        assert len(seen) == len(set(seen))  # a repeat is a new attempt, never the same one twice
        if len(seen) > 1:
            assert event_id in redelivered
    done = pdk("status", "--state", state, "--json", runtime_dir=runtime_dir)
    after = json.loads(done.stdout)
    assert (after["pending"], after["handled"], after["dead_letters"], after["runs"]) == (0, len(events), 0, 2)


def test_a_stop_during_the_flood_leaves_the_backlog_pending_and_the_restart_ends_it(
    sink_dir: Path, runtime_dir: Path, tmp_path: Path, run_pdk: Callable[..., PdkRun]
) -> None:
    state = tmp_path / "state.sqlite3"
    control = runtime_dir / "sink.sock"
    first = run_pdk(sink_dir, "--dev-grants", "--state", state, "--control", control, "--drain-deadline", "0.1")
    flood = Flood(first.port(), spin_ms=20)
    first.ready()
    flood.wait_for(100)
    first.proc.send_signal(signal.SIGTERM)
    assert first.proc.wait(timeout=WAIT_S) == 0
    acked = flood.join()

    events, emits = accounting(state)
    assert set(acked) <= set(events)
    assert {s for s, _, _ in events.values()} <= {"handled", "pending"}
    pending = {i for i, (s, _, _) in events.items() if s == "pending"}
    assert pending  # the drain deadline cut the backlog: left pending, none dead-lettered
    assert all(i in emits for i, (s, _, _) in events.items() if s == "handled")
    assert not any(i in emits for i in pending)

    # Without a host: no dead letters, and the store knows the stop was clean.
    done = pdk("dead-letters", "--state", state, "--json", runtime_dir=runtime_dir)
    assert done.returncode == 0 and json.loads(done.stdout) == [], done.stderr
    seen = json.loads(pdk("status", "--state", state, "--json", runtime_dir=runtime_dir).stdout)
    assert seen["pending"] == len(pending) and seen["clean_stop"]["left_pending"] == len(pending)

    # After a restart: the backlog is delivered, each event once, with attempt 1.
    second = run_pdk(sink_dir, "--dev-grants", "--state", state, "--control", control)
    second.ready()
    held = pdk("dead-letters", "--state", state, runtime_dir=runtime_dir)
    assert "is locked by another process" in error_line(held) and "ask it with --id or --control" in error_line(held)
    doc = wait_drained(control, runtime_dir)
    assert doc["store"]["recovery"]["requeued"] == len(pending) and doc["counters"]["handled"] == len(pending)
    assert f"store: {state}" in pdk("status", "--control", control, runtime_dir=runtime_dir).stdout
    second.proc.send_signal(signal.SIGINT)
    assert second.proc.wait(timeout=WAIT_S) == 0
    events, emits = accounting(state)
    assert {s for s, _, _ in events.values()} == {"handled"}
    assert {i: emits.get(i) for i in pending} == {i: [1] for i in pending}


# ------------------------------------------------------------------------------ faults


def test_a_corrupt_store_is_a_clear_error_and_left_untouched(sink_dir: Path, runtime_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    state.write_bytes(os.urandom(4096))
    before = digest_of(state)
    line = error_line(pdk("run", sink_dir, "--dev-grants", "--state", state, runtime_dir=runtime_dir))
    assert line.startswith(f"pdk run: the state store {state} is corrupt") and "left as it is" in line
    assert digest_of(state) == before
    line = error_line(pdk("dead-letters", "--state", state, runtime_dir=runtime_dir))
    assert "is corrupt" in line
    assert digest_of(state) == before


def test_a_locked_store_is_a_clear_error_and_left_untouched(sink_dir: Path, runtime_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    open_store(state, "durable-sink", None).close()
    before = digest_of(state)  # not while locked: closing any fd of the file drops this process's locks
    other = sqlite3.connect(state, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        line = error_line(pdk("run", sink_dir, "--dev-grants", "--state", state, runtime_dir=runtime_dir))
        assert line == f"pdk run: the state store {state} is locked by another process (is another `pdk run` using it?); stop it or pass another --state"
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert digest_of(state) == before


def test_a_store_of_another_plugin_or_read_only_is_refused(sink_dir: Path, runtime_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    open_store(state, "counter-service", None).close()
    line = error_line(pdk("run", sink_dir, "--dev-grants", "--state", state, runtime_dir=runtime_dir))
    assert "belongs to plugin 'counter-service', not 'durable-sink'" in line
    mine = tmp_path / "mine.sqlite3"
    open_store(mine, "durable-sink", None).close()
    before = digest_of(mine)
    mine.chmod(0o444)
    if os.geteuid() == 0:  # root ignores modes; the immutable flag stops it too
        subprocess.run(["chattr", "+i", str(mine)], check=True)
    try:
        line = error_line(pdk("run", sink_dir, "--dev-grants", "--state", mine, runtime_dir=runtime_dir))
        assert line.startswith(f"pdk run: the state store {mine} cannot be written")
        assert digest_of(mine) == before
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(mine)], check=True)
        mine.chmod(0o644)


def test_the_default_store_is_per_plugin_under_the_state_home(sink_dir: Path, runtime_dir: Path, run_pdk: Callable[..., PdkRun]) -> None:
    control = runtime_dir / "sink.sock"
    running = run_pdk(sink_dir, "--dev-grants", "--control", control)
    expected = Path(os.environ["XDG_STATE_HOME"]) / "yoi-pdk" / "durable-sink" / "state.sqlite3"
    assert running.until("state: ") == f"state: {expected} (synchronous=normal)"
    running.ready()
    running.proc.send_signal(signal.SIGINT)
    assert running.proc.wait(timeout=WAIT_S) == 0
    assert expected.is_file()
    memory = run_pdk(sink_dir, "--dev-grants", "--control", control, "--state", ":memory:")
    assert memory.until("state: ") == "state: in memory (nothing outlives this process)"
