"""The runtime's state store on a real SQLite file (and its `:memory:` twin).

Covers what a restart relies on: accepted events come back pending, completions
end them, dead letters come back replayable, the caps prune oldest first and count
what they dropped, a killed writer loses no accepted event, and a corrupt, foreign,
locked or read-only file is a typed `StoreError` that leaves the file as it was.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pdk.host.codec import Case
from pdk.host.runtime import store_model
from pdk.host.runtime.dead_letters import DeadLetter
from pdk.host.runtime.model import QueuedEvent, new_event_id
from pdk.host.runtime.store import MEMORY, MemoryStore, SqliteStore, StoreError, default_state_path, inspect_store, open_store

ROOT = Path(__file__).resolve().parents[2]


def event(i: int, payload: Case | None = None) -> QueuedEvent:
    payload = payload if payload is not None else Case("text", f"m{i}")
    size = len(payload.value) if isinstance(payload.value, (str, bytes)) else 0
    return QueuedEvent(new_event_id(), "inbox", "manual", "message", payload, 1_700_000_000_000 + i, None, size)


def letter(ev: QueuedEvent, reason: str = "retries_exhausted") -> DeadLetter:
    return DeadLetter("dl-" + ev.id[3:], ev, reason, ev.attempt, {"code": "failed", "message": "boom", "retryable": True}, 1_700_000_000_500)


def digest_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "state.sqlite3"


@pytest.fixture
def store(path: Path) -> Iterator[SqliteStore]:
    s = open_store(path, "demo", "sha256:aaa")
    assert isinstance(s, SqliteStore)
    yield s
    s.close()


def reopen(s: SqliteStore, digest: str = "sha256:bbb") -> SqliteStore:
    s.close()
    again = open_store(Path(s.path), "demo", digest)
    assert isinstance(again, SqliteStore)
    return again


# ------------------------------------------------------------------------ lifecycle of events


def test_new_store_is_created_with_its_directory_and_recovers_nothing(store: SqliteStore, path: Path) -> None:
    assert path.is_file()
    assert oct(path.parent.stat().st_mode & 0o777) == oct(0o700)
    rec = store.recovered()
    assert rec.pending == [] and rec.dead_letters == [] and rec.emitted == []
    assert rec.previous_digest is None and rec.runs == 0
    stats = store.stats()
    assert stats["durable"] is True and stats["synchronous"] == "normal" and stats["pending"] == 0


def test_accepted_events_come_back_pending_in_order_with_their_payloads(store: SqliteStore) -> None:
    payloads = [
        Case("text", "héllo"),
        Case("json", '{"a": 1}'),
        Case("binary", b"\x00\xff" * 10),
        Case("closed", {"code": 1001, "reason": "going away"}),
        Case("empty", None),
        Case("failure", "dial failed"),
    ]
    events = [event(i, p) for i, p in enumerate(payloads)]
    events[1].correlation_id = "cmd-1"
    for ev in events:
        store.accept(ev)
    again = reopen(store)
    try:
        rec = again.recovered()
        assert [e.id for e in rec.pending] == [e.id for e in events]
        assert [e.payload for e in rec.pending] == payloads
        assert rec.pending[1].correlation_id == "cmd-1"
        assert all(e.attempt == 1 for e in rec.pending)
        assert rec.accepted_by == {e.id: "sha256:aaa" for e in events}
        assert rec.previous_digest == "sha256:aaa" and rec.runs == 1
        assert again.stats()["pending"] == 6
    finally:
        again.close()


def test_completions_end_events_and_survive_a_reopen(store: SqliteStore) -> None:
    a, b, c, d = (event(i) for i in range(4))
    for ev in (a, b, c, d):
        store.accept(ev)
    store.handled(a)
    c.attempt = 2
    store.retrying(c, {"code": "failed", "message": "try again", "retryable": True})
    b.attempt = 3
    store.dead_lettered(letter(b))
    store.emitted({"topic": "done", "data": {"n": 1}, "event_id": a.id, "command_id": "c1", "at_ms": 1})
    store.flush()
    assert {k: store.stats()[k] for k in ("pending", "handled", "dead_letters", "emitted")} == {"pending": 2, "handled": 1, "dead_letters": 1, "emitted": 1}
    again = reopen(store)
    try:
        rec = again.recovered()
        assert [e.id for e in rec.pending] == [c.id, d.id]
        assert rec.pending[0].attempt == 2 and rec.pending[0].errors == [{"code": "failed", "message": "try again", "retryable": True}]
        (dead,) = rec.dead_letters
        assert (dead.id, dead.reason, dead.attempts, dead.error, dead.at_ms) == (letter(b).id, "retries_exhausted", 3, letter(b).error, 1_700_000_000_500)
        assert dead.event.id == b.id and dead.event.payload == b.payload and dead.event.attempt == 3
        assert rec.emitted == [{"topic": "done", "data": {"n": 1}, "event_id": a.id, "command_id": "c1", "at_ms": 1}]
        assert again.stats()["handled"] == 1
    finally:
        again.close()


def test_replay_turns_a_dead_letter_into_a_pending_event_again(store: SqliteStore) -> None:
    ev = event(0)
    store.accept(ev)
    dl = letter(ev)
    store.dead_lettered(dl)
    store.replayed(dl, QueuedEvent(ev.id, ev.ingress, ev.source, ev.kind, ev.payload, ev.created_at_ms, None, ev.payload_bytes, replay_of=dl.id))
    assert store.stats()["dead_letters"] == 0 and store.stats()["pending"] == 1
    again = reopen(store)
    try:
        rec = again.recovered()
        assert rec.dead_letters == []
        (pending,) = rec.pending
        assert (pending.id, pending.attempt, pending.replay_of, pending.payload) == (ev.id, 1, dl.id, ev.payload)
    finally:
        again.close()


def test_requeued_attempts_are_durable(store: SqliteStore) -> None:
    ev = event(0)
    store.accept(ev)
    ev.attempt = 4
    store.requeued([ev])
    again = reopen(store)
    try:
        assert again.recovered().pending[0].attempt == 4
    finally:
        again.close()


def test_concurrent_accepts_share_a_commit(store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Hold the writer inside its first batch until nine more accepts are queued: they
    # must then be written together, in one transaction, and all be durable.
    release = threading.Event()
    real_write = store._write
    first = [True]

    def write(batch: list[Any]) -> None:
        if first[0]:
            first[0] = False
            release.wait()
        real_write(batch)

    monkeypatch.setattr(store, "_write", write)
    events = [event(i) for i in range(10)]
    threads = [threading.Thread(target=store.accept, args=(ev,)) for ev in events]
    threads[0].start()
    while store._thread.is_alive() and first[0]:
        threading.Event().wait(0.001)
    for t in threads[1:]:
        t.start()
    while True:
        with store._cv:
            if len(store._ops) == 9:
                break
        threading.Event().wait(0.001)
    release.set()
    for t in threads:
        t.join()
    writes = store.stats()["writes"]
    assert writes["largest_batch"] == 9 and writes["operations"] == 10
    assert store.stats()["pending"] == 10


# ------------------------------------------------------------------------ caps


def test_caps_prune_oldest_first_and_count_what_they_dropped(store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_model, "STATE_HANDLED_KEPT_MAX", 3)
    monkeypatch.setattr(store_model, "STATE_DEAD_LETTERS_MAX", 2)
    monkeypatch.setattr(store_model, "STATE_EMITTED_MAX", 4)
    handled = [event(i) for i in range(5)]
    dead = [event(10 + i) for i in range(4)]
    for ev in handled + dead:
        store.accept(ev)
    for ev in handled:
        store.handled(ev)
        store.emitted({"topic": "t", "event_id": ev.id})
    for ev in dead:
        store.dead_lettered(letter(ev))
    store.flush()
    stats = store.stats()
    assert (stats["pending"], stats["handled"], stats["dead_letters"], stats["emitted"]) == (0, 3, 2, 4)
    assert stats["dropped"] == {"handled_pruned": 2, "dead_letters": 2, "emitted": 1}
    again = reopen(store)
    try:
        rec = again.recovered()
        assert [d.event.id for d in rec.dead_letters] == [dead[2].id, dead[3].id]  # the newest kept
        assert [r["event_id"] for r in rec.emitted] == [ev.id for ev in handled[1:]]
        assert again.stats()["dropped"] == {"handled_pruned": 2, "dead_letters": 2, "emitted": 1}  # kept in the metadata
    finally:
        again.close()
    conn = sqlite3.connect(f"file:{again.path}?mode=ro", uri=True)
    try:
        kept = [row[0] for row in conn.execute("SELECT id FROM events WHERE state = 'handled' ORDER BY ended_seq")]
    finally:
        conn.close()
    assert kept == [ev.id for ev in handled[2:]]


def test_handled_rows_drop_their_payload(store: SqliteStore) -> None:
    ev = event(0, Case("binary", b"x" * 100_000))
    store.accept(ev)
    store.handled(ev)
    store.close()
    conn = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True)
    try:
        ((payload, attempt, state),) = conn.execute("SELECT payload, attempt, state FROM events").fetchall()
    finally:
        conn.close()
    assert (payload, attempt, state) == (None, 1, "handled")


def test_a_full_store_refuses_the_accept_with_a_typed_error(store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.accept(event(0))
    # Shrink the file cap to what the file already uses: the next page cannot be had.
    (pages,) = store._conn.execute("PRAGMA page_count").fetchone()
    store._conn.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StoreError) as info:
        store.accept(event(1, Case("binary", b"x" * 200_000)))
    assert info.value.code == "full"
    assert store.stats()["last_error"]["code"] == "full"
    assert store.stats()["pending"] == 1


# ------------------------------------------------------------------------ crash


CRASHER = textwrap.dedent(
    """
    import sys
    from pdk.host.codec import Case
    from pdk.host.runtime.model import QueuedEvent
    from pdk.host.runtime.store import open_store
    store = open_store(sys.argv[1], "demo", "sha256:aaa")
    i = 0
    while True:
        ev = QueuedEvent(f"ev-{i:06d}", "inbox", "manual", "message", Case("text", "x" * 500), 0, None, 500)
        store.accept(ev)
        if i % 3 == 0:
            store.handled(ev)  # lazy: may or may not be written when the kill comes
        print(ev.id, flush=True)
        i += 1
    """
)


def test_a_killed_writer_loses_no_accepted_event(path: Path) -> None:
    path.parent.mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-c", CRASHER, str(path)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    acked = [proc.stdout.readline().strip() for _ in range(300)]
    proc.send_signal(signal.SIGKILL)
    acked += [line.strip() for line in proc.stdout if line.strip()]  # what it printed before dying
    proc.wait()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        states = dict(conn.execute("SELECT id, state FROM events").fetchall())
    finally:
        conn.close()
    # Every acknowledged accept is in the store: pending, or handled when its lazy
    # completion was written before the kill (only every third one was handled).
    assert all(i in states for i in acked)
    assert all(states[i] == "pending" or (states[i] == "handled" and int(i[3:]) % 3 == 0) for i in acked)
    s = open_store(path, "demo", "sha256:aaa")  # and it opens again, as it was
    try:
        assert {e.id for e in s.recovered().pending} == {i for i, state in states.items() if state == "pending"}
    finally:
        s.close()


# ------------------------------------------------------------------------ faults


def test_garbage_file_is_corrupt_and_left_untouched(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(8192))
    before = digest_of(path)
    with pytest.raises(StoreError) as info:
        open_store(path, "demo", None)
    assert info.value.code == "corrupt" and str(path) in info.value.message and "left as it is" in info.value.message
    assert digest_of(path) == before


def test_damaged_pages_are_corrupt_and_left_untouched(store: SqliteStore, path: Path) -> None:
    for i in range(400):
        store.accept(event(i, Case("text", "y" * 300)))
    store.close()
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 3000] = os.urandom(3000)
    path.write_bytes(bytes(data))
    before = digest_of(path)
    with pytest.raises(StoreError) as info:
        open_store(path, "demo", None)
    assert info.value.code == "corrupt"
    assert digest_of(path) == before
    with pytest.raises(StoreError) as info:
        inspect_store(path)
    assert info.value.code == "corrupt"


def test_a_foreign_database_is_not_a_store(path: Path) -> None:
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()
    before = digest_of(path)
    with pytest.raises(StoreError) as info:
        open_store(path, "demo", None)
    assert info.value.code == "not_a_store"
    assert digest_of(path) == before


def test_a_store_of_another_plugin_is_refused(store: SqliteStore, path: Path) -> None:
    store.accept(event(0))
    store.close()
    before = digest_of(path)
    with pytest.raises(StoreError) as info:
        open_store(path, "other", None)
    assert info.value.code == "wrong_plugin" and "'demo'" in info.value.message
    assert digest_of(path) == before


def test_a_directory_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as info:
        open_store(tmp_path, "demo", None)
    assert info.value.code == "not_a_store"


def test_a_store_in_use_by_another_host_is_locked(store: SqliteStore, path: Path) -> None:
    store.accept(event(0))
    with pytest.raises(StoreError) as info:
        open_store(path, "demo", None)
    assert info.value.code == "locked"
    with pytest.raises(StoreError) as info:
        inspect_store(path)
    assert info.value.code == "locked"
    assert store.stats()["pending"] == 1  # the holder is unaffected
    store.accept(event(1))


def test_a_store_locked_by_another_connection_is_locked(store: SqliteStore, path: Path) -> None:
    store.close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError) as info:
            open_store(path, "demo", None)
        assert info.value.code == "locked" and "another process" in info.value.message
    finally:
        other.execute("ROLLBACK")
        other.close()
    again = open_store(path, "demo", None)  # usable once the lock is gone
    again.close()


def make_read_only(path: Path) -> None:
    path.chmod(0o444)
    if os.geteuid() == 0:  # root ignores modes; the immutable flag stops it too
        subprocess.run(["chattr", "+i", str(path)], check=True)


def undo_read_only(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    path.chmod(0o644)


def test_a_read_only_store_is_refused_untouched_and_still_inspectable(store: SqliteStore, path: Path) -> None:
    ev = event(0)
    store.accept(ev)
    store.dead_lettered(letter(ev))
    store.close()
    before = digest_of(path)
    make_read_only(path)
    try:
        with pytest.raises(StoreError) as info:
            open_store(path, "demo", None)
        assert info.value.code == "read_only" and str(path) in info.value.message
        assert digest_of(path) == before
        seen = inspect_store(path)
        assert seen["plugin_id"] == "demo" and seen["dead_letters"] == 1
        assert [d["event"]["id"] for d in seen["dead_letter_list"]] == [ev.id]
    finally:
        undo_read_only(path)


def test_inspect_reads_a_store_without_writing(store: SqliteStore, path: Path) -> None:
    ev = event(0)
    store.accept(ev)
    store.accept(event(1))
    store.dead_lettered(letter(ev, "permanent_error"))
    store.close()
    before = digest_of(path)
    seen = inspect_store(path)
    assert (seen["plugin_id"], seen["digest"], seen["pending"], seen["dead_letters"], seen["runs"]) == ("demo", "sha256:aaa", 1, 1, 1)
    (dl,) = seen["dead_letter_list"]
    assert dl["reason"] == "permanent_error" and dl["event"]["payload"] == {"type": "text", "value": "m0", "bytes": 2, "truncated": False}
    assert digest_of(path) == before
    with pytest.raises(StoreError) as info:
        inspect_store(path.with_name("missing.sqlite3"))
    assert info.value.code == "io"


def test_closed_store_refuses_accepts_and_ignores_late_completions(store: SqliteStore) -> None:
    ev = event(0)
    store.accept(ev)
    store.close()
    store.handled(ev)  # lazy, after close: dropped (the event stays pending)
    with pytest.raises(StoreError) as info:
        store.accept(event(1))
    assert info.value.code == "closed"
    store.close()  # idempotent


# ------------------------------------------------------------------------ memory twin and paths


def test_memory_store_keeps_the_same_counts_and_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_model, "STATE_HANDLED_KEPT_MAX", 2)
    s = open_store(MEMORY, "demo", None)
    assert isinstance(s, MemoryStore)
    events = [event(i) for i in range(4)]
    for ev in events:
        s.accept(ev)
    for ev in events[:3]:
        s.handled(ev)
    s.dead_lettered(letter(events[3]))
    stats = s.stats()
    assert (stats["path"], stats["durable"], stats["pending"], stats["handled"], stats["dead_letters"]) == (MEMORY, False, 0, 2, 1)
    assert stats["dropped"]["handled_pruned"] == 1
    assert s.recovered().pending == []
    s.close()
    with pytest.raises(StoreError):
        s.accept(event(9))


def test_default_state_path_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_state_path("counter-service") == tmp_path / "yoi-pdk" / "counter-service" / "state.sqlite3"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/dir")  # not absolute: ignored, as the spec says
    assert default_state_path("x") == Path.home() / ".local" / "state" / "yoi-pdk" / "x" / "state.sqlite3"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_state_path("x") == Path.home() / ".local" / "state" / "yoi-pdk" / "x" / "state.sqlite3"


def test_full_synchronous_mode_is_accepted_and_reported(path: Path) -> None:
    s = open_store(path, "demo", None, synchronous="full")
    try:
        s.accept(event(0))
        assert s.stats()["synchronous"] == "full"
    finally:
        s.close()
    with pytest.raises(ValueError):
        open_store(path, "demo", None, synchronous="off")
