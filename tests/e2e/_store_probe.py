"""What the durable-state tests (test_durable_state, test_durable_stop) read back from a
`pdk run --state FILE` host and its SQLite file: `pdk` commands as subprocesses, the
status document, a wait until the queue and the store have drained, and the store's
final word on every event (read-only SQL, no host)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from _pdk_run import WAIT_S, env_for


def pdk(*args: str | Path, runtime_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pdk.cli", *map(str, args)], capture_output=True, text=True, env=env_for(runtime_dir), timeout=300)


def status_of(control: Path, runtime_dir: Path) -> dict[str, Any]:
    done = pdk("status", "--json", "--control", control, runtime_dir=runtime_dir)
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def wait_drained(control: Path, runtime_dir: Path) -> dict[str, Any]:
    """The status once nothing is pending, queued or in flight (fails after WAIT_S)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        doc = status_of(control, runtime_dir)
        if doc["store"]["pending"] == 0 and doc["queue"]["depth"] == 0 and doc["queue"]["in_flight"] == 0:
            return doc
        assert time.monotonic() < deadline, doc["store"]
        time.sleep(0.2)


def accounting(path: Path) -> tuple[dict[str, tuple[str, int, str | None]], dict[str, list[int]]]:
    """The store's final word: per event id (state, attempt, dead-letter reason), and
    per event id the attempts of its `job.done` emits (durable-sink's)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        events = {i: (s, a, r) for i, s, a, r in conn.execute("SELECT id, state, attempt, dl_reason FROM events")}
        emits: dict[str, list[int]] = defaultdict(list)
        for (record,) in conn.execute("SELECT record FROM emitted ORDER BY seq"):
            doc = json.loads(record)
            if doc["topic"] == "job.done":
                assert doc["data"]["event_id"] == doc["event_id"]
                emits[doc["event_id"]].append(doc["data"]["attempt"])
    finally:
        conn.close()
    return events, dict(emits)
