"""`SqliteStore`: the runtime's state store in one SQLite file (WAL mode).

Layout (schema `yoi.runtime.state/1`):

- `meta(key, value)`: `schema`, `plugin_id`, `created_at_ms`, `digest` (of the
  last run), `runs`, `dropped` (JSON: what the caps pushed out, ever), and
  `clean_stop` (JSON `{"at_ms", "left_pending"}`) while the last run's clean stop
  is the last thing that happened to the pending events: written by `stopped`,
  removed by `requeued` (the next start). With it, every pending row's `attempt`
  is exact (no delivery was under way); without it, one may have been.
- `events`: one row per accepted event id, `state` `pending` -> `handled` | `dead`
  (a replay turns `dead` back into `pending`, also offline: `replay_offline`). A pending or dead row keeps the
  payload; a handled row drops it (ids, attempts and times stay, for accounting).
  `digest` is the package digest that accepted the event; `attempt` the attempt of
  its next delivery as far as the store knows; `dl_*` the dead letter.
- `emitted`: the emitted-event log, newest `STATE_EMITTED_MAX` rows.

Writes. One connection (opened with `locking_mode=EXCLUSIVE`, so a second host on
the same file fails with `locked` instead of interleaving), used by one writer at a
time (`_write_lock`). Callers queue operations; a batch is everything queued (at
most `STATE_WRITE_BATCH_MAX` operations) in one transaction. A durable operation
(`accept`) is committed by its own caller: it takes the write lock and writes the
batch, or finds that the holder before it wrote its operation — so concurrent
accepts share one commit (leader-based group commit) without a hand-off to another
thread. Lazy operations (completions) do not wait: they ride along with the next
accept, or the writer thread writes them after at most `STATE_FLUSH_DELAY_S`.
Operations are applied in the order they were queued, so a completion is never
written before the acceptance it completes.

Opening validates the file first through a separate read-only connection
(`quick_check`, tables, schema, plugin id), so a corrupt, foreign or locked file is
reported without a byte of it being written.
"""

from __future__ import annotations

import copy
import json
import os
import sqlite3
import threading
import time
import urllib.parse
from collections import deque
from pathlib import Path
from typing import Any

from pdk.limits import (
    STATE_LOCK_TIMEOUT_S,
    STATE_STORE_MAX_BYTES,
    STATE_FLUSH_DELAY_S,
    STATE_WRITE_BATCH_MAX,
    STATE_WRITE_TIMEOUT_S,
)

from ..codec import Case
from .dead_letters import DeadLetter
from .model import QueuedEvent
from .store_model import SYNC_MODES, Recovered, StoreError, Tally

SCHEMA = "yoi.runtime.state/1"
_TABLES = frozenset({"meta", "events", "emitted"})

_DDL = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL CHECK (state IN ('pending', 'handled', 'dead')),
        ingress TEXT NOT NULL,
        source TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload_tag TEXT NOT NULL,
        payload BLOB,
        payload_bytes INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL,
        correlation_id TEXT,
        attempt INTEGER NOT NULL,
        last_error TEXT,
        replay_of TEXT,
        digest TEXT,
        accepted_at_ms INTEGER NOT NULL,
        ended_seq INTEGER,
        ended_at_ms INTEGER,
        dl_id TEXT,
        dl_reason TEXT,
        dl_attempts INTEGER
    )""",
    "CREATE INDEX events_by_state ON events (state, ended_seq)",
    "CREATE TABLE emitted (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL, record TEXT NOT NULL)",
)

_INSERT = (
    "INSERT INTO events (id, state, ingress, source, kind, payload_tag, payload, payload_bytes, created_at_ms,"
    " correlation_id, attempt, replay_of, digest, accepted_at_ms) VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_EVENT_COLUMNS = "id, ingress, source, kind, payload_tag, payload, payload_bytes, created_at_ms, correlation_id, attempt, replay_of, last_error"


def _now_ms() -> int:
    return int(time.time() * 1000)


# ============================================================================ rows


def _encode_payload(payload: Case) -> tuple[str, Any]:
    tag, value = payload.tag, payload.value
    if tag == "binary":
        return tag, bytes(value)
    if tag == "closed":
        return tag, json.dumps({"code": value["code"], "reason": value["reason"]})
    if tag == "empty":
        return tag, None
    return tag, str(value)


def _decode_payload(tag: str, value: Any) -> Case:
    if tag == "binary":
        return Case("binary", bytes(value or b""))
    if tag == "closed":
        data = json.loads(value)
        return Case("closed", {"code": int(data["code"]), "reason": str(data["reason"])})
    if tag == "empty":
        return Case("empty", None)
    return Case(tag, value.decode("utf-8") if isinstance(value, bytes) else str(value))


def _error_json(error: dict[str, Any] | None) -> str | None:
    return None if error is None else json.dumps(error, separators=(",", ":"), default=str)


def _event_from_row(row: tuple[Any, ...]) -> QueuedEvent:
    event_id, ingress, source, kind, tag, payload, size, created, correlation, attempt, replay_of, last_error = row
    errors = [json.loads(last_error)] if last_error else []
    return QueuedEvent(
        event_id, ingress, source, kind, _decode_payload(tag, payload), created, correlation, size, attempt, replay_of=replay_of, errors=errors
    )


# ============================================================================ errors


def classify(exc: BaseException, path: Path, doing: str) -> StoreError:
    """A typed `StoreError` for a sqlite3 or OS error met while `doing` something."""
    where = str(path)
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, PermissionError):
        return StoreError("read_only", f"the state store {where} cannot be written ({exc.strerror}); give the file and its directory write access or pass another --state", where)
    if isinstance(exc, OSError):
        return StoreError("io", f"the state store {where}: {doing} failed: {exc.strerror or exc}", where)
    name = str(getattr(exc, "sqlite_errorname", ""))
    text = str(exc)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreError("locked", f"the state store {where} is locked by another process (is another `pdk run` using it?); stop it or pass another --state", where)
    if name.startswith("SQLITE_READONLY"):
        return StoreError("read_only", f"the state store {where} is read-only; give the file and its directory write access or pass another --state", where)
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        return StoreError("corrupt", f"the state store {where} is corrupt ({text}); it was left as it is: move it away to start with an empty store", where)
    if name.startswith("SQLITE_FULL"):
        return StoreError("full", f"the state store {where} is full ({text}; the cap is {STATE_STORE_MAX_BYTES // (1024 * 1024)} MiB, or the disk is full)", where)
    if name.startswith("SQLITE_CANTOPEN"):
        return StoreError("io", f"cannot open the state store {where} ({text}); check that its directory exists and is writable", where)
    return StoreError("io", f"the state store {where}: {doing} failed: {text}", where)


# ============================================================================ validation


def _read_only_connection(path: Path) -> sqlite3.Connection:
    uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=STATE_LOCK_TIMEOUT_S, isolation_level=None, check_same_thread=False)


def _validate(conn: sqlite3.Connection, path: Path, plugin_id: str | None) -> dict[str, str]:
    """Check an existing store through `conn`; its metadata when it is usable."""
    where = str(path)
    (check,) = conn.execute("PRAGMA quick_check(1)").fetchone()
    if check != "ok":
        raise StoreError("corrupt", f"the state store {where} fails its integrity check ({str(check)[:200]}); it was left as it is: move it away to start with an empty store", where)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not _TABLES <= tables:
        raise StoreError("not_a_store", f"{where} is a SQLite database but not a runtime state store (no {', '.join(sorted(_TABLES - tables))} table); pass another --state", where)
    meta = {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM meta")}
    schema = meta.get("schema")
    if schema != SCHEMA:
        raise StoreError("unsupported_schema", f"the state store {where} has schema {schema!r}; this host reads {SCHEMA!r}", where)
    if plugin_id is not None and meta.get("plugin_id") != plugin_id:
        raise StoreError("wrong_plugin", f"the state store {where} belongs to plugin {meta.get('plugin_id')!r}, not {plugin_id!r}; pass another --state", where)
    return meta


def _is_empty_file(path: Path) -> bool:
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size == 0 and not (wal.exists() and wal.stat().st_size > 0)


def _counts(conn: sqlite3.Connection, meta: dict[str, str]) -> Tally:
    tally = Tally()
    for state, n in conn.execute("SELECT state, count(*) FROM events GROUP BY state"):
        if state == "pending":
            tally.pending = n
        elif state == "handled":
            tally.handled = n
        elif state == "dead":
            tally.dead_letters = n
    (tally.emitted,) = conn.execute("SELECT count(*) FROM emitted").fetchone()
    dropped = json.loads(meta.get("dropped", "{}"))
    tally.handled_pruned = int(dropped.get("handled_pruned", 0))
    tally.dead_letters_dropped = int(dropped.get("dead_letters", 0))
    tally.emitted_dropped = int(dropped.get("emitted", 0))
    return tally


def _dead_letters(conn: sqlite3.Connection) -> list[DeadLetter]:
    rows = conn.execute(f"SELECT {_EVENT_COLUMNS}, dl_id, dl_reason, dl_attempts, ended_at_ms FROM events WHERE state = 'dead' ORDER BY ended_seq")
    letters = []
    for row in rows:
        event = _event_from_row(row[:12])
        error = event.errors[-1] if event.errors else None
        letters.append(DeadLetter(row[12], event, row[13], row[14], error, row[15]))
    return letters


def _size_bytes(path: Path) -> int:
    total = 0
    for p in (path, path.with_name(path.name + "-wal")):
        try:
            total += p.stat().st_size
        except OSError:
            pass
    return total


def _clean_stop(meta: dict[str, str]) -> dict[str, Any] | None:
    raw = meta.get("clean_stop")
    if not raw:
        return None
    doc = json.loads(raw)
    return {"at_ms": int(doc["at_ms"]), "left_pending": int(doc["left_pending"])}


def inspect_store(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a store without a running host and without writing to it: its metadata,
    counts, size, how the last run stopped (`clean_stop`, None after a crash) and
    dead letters. Raises `StoreError` (`locked` while a host holds it)."""
    p = Path(path)
    if not p.is_file():
        raise StoreError("io", f"no state store at {p}", str(p))
    try:
        conn = _read_only_connection(p)
        try:
            meta = _validate(conn, p, None)
            tally = _counts(conn, meta)
            letters = _dead_letters(conn)
            clean_stop = _clean_stop(meta)
        finally:
            conn.close()
    except (sqlite3.Error, OSError) as exc:
        raise classify(exc, p, "reading") from None
    except (ValueError, KeyError, TypeError) as exc:  # undecodable rows or metadata
        raise StoreError("corrupt", f"the state store {p} holds rows this host cannot read ({exc}); it was left as it is", str(p)) from None
    return {
        "path": str(p),
        "plugin_id": meta.get("plugin_id"),
        "digest": meta.get("digest"),
        "runs": int(meta.get("runs", "0")),
        "size_bytes": _size_bytes(p),
        **tally.to_json(),
        "clean_stop": clean_stop,
        "dead_letter_list": [letter.to_json() for letter in letters],
    }


def replay_offline(path: str | os.PathLike[str], dead_letter_id: str) -> dict[str, Any]:
    """Turn one dead letter of a store back into a pending event, without a running
    host: the next host on the store delivers it (same event id, attempt 1, or 2 when
    the last run did not stop cleanly, as every pending event then; `replay_of` is
    the letter's id). The event takes a new place at the end of the acceptance order,
    as an online replay does. Raises `StoreError` (`locked` while a host holds the
    store); KeyError for an id that is not a dead letter of the store."""
    p = Path(path)
    if not p.is_file():
        raise StoreError("io", f"no state store at {p}", str(p))
    try:
        check = _read_only_connection(p)
        try:
            _validate(check, p, None)
        finally:
            check.close()
        os.close(os.open(p, os.O_RDWR))  # PermissionError: read-only (SQLite would say "disk I/O error")
        conn = sqlite3.connect(str(p), timeout=STATE_LOCK_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute("PRAGMA locking_mode = EXCLUSIVE")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")  # `locked` while a host holds the store
            try:
                row = conn.execute("SELECT id FROM events WHERE state = 'dead' AND dl_id = ?", (dead_letter_id,)).fetchone()
                if row is None:
                    raise KeyError(dead_letter_id)
                conn.execute(
                    "UPDATE events SET seq = (SELECT max(seq) + 1 FROM events), state = 'pending', attempt = 1, last_error = NULL,"
                    " replay_of = dl_id, accepted_at_ms = ?, ended_seq = NULL, ended_at_ms = NULL, dl_id = NULL, dl_reason = NULL,"
                    " dl_attempts = NULL WHERE dl_id = ? AND state = 'dead'",
                    (_now_ms(), dead_letter_id),
                )
                (pending,) = conn.execute("SELECT count(*) FROM events WHERE state = 'pending'").fetchone()
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()
    except (sqlite3.Error, OSError) as exc:
        raise classify(exc, p, "writing") from None
    return {"replayed": dead_letter_id, "event_id": str(row[0]), "pending": int(pending)}


# ============================================================================ writer


class _Waiter:
    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = False  # set and read under the store's write lock
        self.error: StoreError | None = None


# An operation: (kind, args, waiter or None). Kinds: accept, replay, requeue, stopped,
# retry, handled, dead, emit, flush.
_Op = tuple[str, tuple[Any, ...], "_Waiter | None"]


class SqliteStore:
    """See the module docstring. Thread-safe; one writer thread per store."""

    durable = True

    def __init__(self, path: Path, plugin_id: str, digest: str | None, *, synchronous: str = "normal") -> None:
        if synchronous not in SYNC_MODES:
            raise ValueError(f"synchronous must be one of {', '.join(SYNC_MODES)}")
        self.path = str(path)
        self.synchronous = synchronous
        self.plugin_id = plugin_id
        self.digest = digest
        self._file = path
        self._ops: deque[_Op] = deque()
        self._cv = threading.Condition(threading.Lock())
        self._waiting = 0  # queued operations somebody waits for
        self._write_lock = threading.Lock()  # held by whoever writes a batch (one at a time)
        self._closing = False
        self._closed = False
        self._last_error: dict[str, Any] | None = None
        self._batches = 0
        self._ops_written = 0
        self._largest_batch = 0
        self._conn, self._recovered, self.tally, self._ended_seq = self._open(path, plugin_id, digest)
        self._thread = threading.Thread(target=self._run, name=f"yoi-state:{plugin_id}", daemon=True)
        self._thread.start()

    # -------------------------------------------------------------------- opening

    def _open(self, path: Path, plugin_id: str, digest: str | None) -> tuple[sqlite3.Connection, Recovered, Tally, int]:
        fresh = not path.exists() or (path.is_file() and _is_empty_file(path))
        try:
            if not fresh:
                if not path.is_file():
                    raise StoreError("not_a_store", f"{path} is not a file; pass a file path (or :memory:) to --state", str(path))
                check = _read_only_connection(path)
                try:
                    _validate(check, path, plugin_id)
                finally:
                    check.close()
                os.close(os.open(path, os.O_RDWR))  # PermissionError: read-only (SQLite would say "disk I/O error")
            else:
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            conn = sqlite3.connect(str(path), timeout=STATE_LOCK_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        except (sqlite3.Error, OSError) as exc:
            raise classify(exc, path, "opening") from None
        try:
            conn.execute("PRAGMA locking_mode = EXCLUSIVE")
            (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if str(mode).lower() != "wal":
                raise StoreError("io", f"the state store {path} cannot use WAL mode (journal mode {mode!r})", str(path))
            conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
            (page_size,) = conn.execute("PRAGMA page_size").fetchone()
            conn.execute(f"PRAGMA max_page_count = {max(1, STATE_STORE_MAX_BYTES // int(page_size))}")
            conn.execute("BEGIN IMMEDIATE")  # takes the exclusive lock: `locked` if someone has it
            try:
                if fresh:
                    for statement in _DDL:
                        conn.execute(statement)
                    now = str(_now_ms())
                    conn.executemany(
                        "INSERT INTO meta (key, value) VALUES (?, ?)",
                        [("schema", SCHEMA), ("plugin_id", plugin_id), ("created_at_ms", now), ("runs", "0"), ("dropped", "{}")],
                    )
                meta = _validate(conn, path, plugin_id) if not fresh else {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM meta")}
                recovered = self._load(conn, meta)
                tally = _counts(conn, meta)
                (ended_seq,) = conn.execute("SELECT coalesce(max(ended_seq), 0) FROM events").fetchone()
                runs = int(meta.get("runs", "0"))
                conn.executemany(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                    [("runs", str(runs + 1)), ("digest", digest or ""), ("opened_at_ms", str(_now_ms()))],
                )
                conn.execute("COMMIT")  # a read-only file fails here, before anything is used
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except (sqlite3.Error, OSError, StoreError, ValueError, KeyError, TypeError) as exc:
            conn.close()
            if isinstance(exc, (ValueError, KeyError, TypeError)):  # undecodable rows or metadata
                raise StoreError("corrupt", f"the state store {path} holds rows this host cannot read ({exc}); it was left as it is", str(path)) from None
            raise classify(exc, path, "opening") from None
        return conn, recovered, tally, int(ended_seq)

    @staticmethod
    def _load(conn: sqlite3.Connection, meta: dict[str, str]) -> Recovered:
        recovered = Recovered(previous_digest=meta.get("digest") or None, runs=int(meta.get("runs", "0")), clean_stop=_clean_stop(meta))
        for row in conn.execute(f"SELECT {_EVENT_COLUMNS}, digest FROM events WHERE state = 'pending' ORDER BY seq"):
            event = _event_from_row(row[:12])
            recovered.pending.append(event)
            recovered.accepted_by[event.id] = row[12] or None
        recovered.dead_letters = _dead_letters(conn)
        recovered.emitted = [json.loads(record) for (record,) in conn.execute("SELECT record FROM emitted ORDER BY seq")]
        return recovered

    # -------------------------------------------------------------------- interface

    def recovered(self) -> Recovered:
        return self._recovered

    def accept(self, event: QueuedEvent) -> None:
        tag, value = _encode_payload(event.payload)
        args = (event.id, event.ingress, event.source, event.kind, tag, value, event.payload_bytes, event.created_at_ms,
                event.correlation_id, event.attempt, event.replay_of, self.digest, _now_ms())  # fmt: skip
        self._wait(self._queue("accept", args, True))

    def replayed(self, letter: DeadLetter, event: QueuedEvent) -> None:
        tag, value = _encode_payload(event.payload)
        args = (event.id, event.ingress, event.source, event.kind, tag, value, event.payload_bytes, event.created_at_ms,
                event.correlation_id, event.attempt, event.replay_of, self.digest, _now_ms())  # fmt: skip
        self._wait(self._queue("replay", args, True))

    def requeued(self, events: list[QueuedEvent]) -> None:
        """The attempts of the pending events a start queued again; also removes the
        clean-stop mark (called by every start of a durable runtime, even with none)."""
        self._wait(self._queue("requeue", tuple((e.attempt, e.id) for e in events), True))

    def stopped(self, left_pending: int) -> None:
        """A clean stop: everything queued so far is written, then the clean-stop
        mark (the pending events' attempts are exact; see the module docstring)."""
        self._wait(self._queue("stopped", (json.dumps({"at_ms": _now_ms(), "left_pending": left_pending}),), True))

    def retrying(self, event: QueuedEvent, error: dict[str, Any] | None) -> None:
        self._queue("retry", (event.attempt, _error_json(error), event.id), False)

    def handled(self, event: QueuedEvent) -> None:
        self._queue("handled", (event.attempt, _now_ms(), event.id), False)

    def dead_lettered(self, letter: DeadLetter) -> None:
        args = (letter.event.attempt, _error_json(letter.error), letter.id, letter.reason, letter.attempts, letter.at_ms, letter.event.id)
        self._queue("dead", args, False)

    def emitted(self, record: dict[str, Any]) -> None:
        self._queue("emit", (str(record.get("event_id", "")), json.dumps(record, separators=(",", ":"), default=str)), False)

    def flush(self) -> None:
        """Wait until everything queued so far is written; raises the batch's error."""
        self._wait(self._queue("flush", (), True))

    def stats(self) -> dict[str, Any]:
        with self._cv:
            queued = len(self._ops)
        return {
            "path": self.path,
            "durable": True,
            "synchronous": self.synchronous,
            "size_bytes": _size_bytes(self._file),
            **self.tally.to_json(),
            "writes": {"batches": self._batches, "operations": self._ops_written, "largest_batch": self._largest_batch, "queued": queued},
            "last_error": dict(self._last_error) if self._last_error else None,
        }

    def close(self) -> None:
        """Write what is queued, stop the writer and close the file (a clean close
        checkpoints the WAL into the database file). Idempotent."""
        with self._cv:
            if self._closing:
                already = True
            else:
                already = False
                self._closing = True
                self._cv.notify_all()
        if not already and self._thread is not threading.current_thread():
            self._thread.join()
        if not already:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._closed = True

    # -------------------------------------------------------------------- writer thread

    def _queue(self, kind: str, args: tuple[Any, ...], wait: bool) -> _Waiter | None:
        waiter = _Waiter() if wait else None
        with self._cv:
            if self._closing:
                if waiter is None:
                    return None  # a lazy write after close: at-least-once allows it
                raise StoreError("closed", f"the state store {self.path} is closed", self.path)
            self._ops.append((kind, args, waiter))
            if waiter is not None:
                self._waiting += 1
            elif len(self._ops) == 1:
                self._cv.notify_all()  # the writer thread: completions to write
        return waiter

    def _wait(self, waiter: _Waiter | None) -> None:
        """Wait for a durable operation: its caller commits itself (leader-based group
        commit: whoever holds the write lock writes everything queued, so callers
        that queued meanwhile find their operation done, or lead the next batch) —
        no hand-off to the writer thread on the accept path."""
        assert waiter is not None
        deadline = time.monotonic() + STATE_WRITE_TIMEOUT_S
        while not waiter.done:
            if not self._write_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise StoreError("io", f"the state store {self.path} did not finish a write within {STATE_WRITE_TIMEOUT_S:g} s", self.path)
            try:
                if not waiter.done:
                    batch = self._take()
                    if batch:
                        self._write(batch)
            finally:
                self._write_lock.release()
        if waiter.error is not None:
            raise waiter.error

    def _take(self) -> list[_Op]:
        with self._cv:
            n = min(len(self._ops), STATE_WRITE_BATCH_MAX)
            batch = [self._ops.popleft() for _ in range(n)]
            self._waiting -= sum(1 for op in batch if op[2] is not None)
            return batch

    def _run(self) -> None:
        """The writer thread: writes completions nobody waits for, in batches."""
        while True:
            with self._cv:
                while not self._ops and not self._closing:
                    self._cv.wait()
                if not self._ops:
                    return
                if not self._closing:
                    # Only completions to write: let more join this batch (or an accept
                    # carry them).
                    self._cv.wait(STATE_FLUSH_DELAY_S)
            with self._write_lock:
                batch = self._take()
                if batch:
                    self._write(batch)

    def _write(self, batch: list[_Op]) -> None:
        conn = self._conn
        tally = copy.copy(self.tally)
        ended_seq = self._ended_seq
        error: StoreError | None = None
        try:
            conn.execute("BEGIN IMMEDIATE")
            for kind, args, _ in batch:
                ended_seq = self._apply(conn, tally, kind, args, ended_seq)
            self._prune(conn, tally)
            conn.execute("COMMIT")
        except (sqlite3.Error, OSError, ValueError) as exc:
            error = classify(exc, self._file, "writing")
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self._last_error = {**error.to_json(), "at_ms": _now_ms(), "operations_lost": len(batch)}
        else:
            self.tally = tally
            self._ended_seq = ended_seq
            self._batches += 1
            self._ops_written += len(batch)
            self._largest_batch = max(self._largest_batch, len(batch))
        for _, _, waiter in batch:
            if waiter is not None:
                waiter.error = error
                waiter.done = True

    @staticmethod
    def _apply(conn: sqlite3.Connection, tally: Tally, kind: str, args: tuple[Any, ...], ended_seq: int) -> int:
        if kind == "accept":
            conn.execute(_INSERT, args)
            tally.pending += 1
        elif kind == "replay":
            row = conn.execute("SELECT state FROM events WHERE id = ?", (args[0],)).fetchone()
            if row is not None:
                conn.execute("DELETE FROM events WHERE id = ?", (args[0],))
                if row[0] == "dead":
                    tally.dead_letters -= 1
                elif row[0] == "handled":
                    tally.handled -= 1
                else:
                    tally.pending -= 1
            conn.execute(_INSERT, args)
            tally.pending += 1
        elif kind == "requeue":
            conn.executemany("UPDATE events SET attempt = ? WHERE id = ? AND state = 'pending'", args)
            conn.execute("DELETE FROM meta WHERE key = 'clean_stop'")
        elif kind == "stopped":
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('clean_stop', ?)", args)
        elif kind == "retry":
            conn.execute("UPDATE events SET attempt = ?, last_error = ? WHERE id = ? AND state = 'pending'", args)
        elif kind == "handled":
            attempt, at_ms, event_id = args
            ended_seq += 1
            cur = conn.execute(
                "UPDATE events SET state = 'handled', attempt = ?, payload = NULL, last_error = NULL, ended_seq = ?, ended_at_ms = ?"
                " WHERE id = ? AND state = 'pending'",
                (attempt, ended_seq, at_ms, event_id),
            )
            if cur.rowcount:
                tally.pending -= 1
                tally.handled += 1
        elif kind == "dead":
            attempt, error, dl_id, reason, attempts, at_ms, event_id = args
            ended_seq += 1
            cur = conn.execute(
                "UPDATE events SET state = 'dead', attempt = ?, last_error = ?, dl_id = ?, dl_reason = ?, dl_attempts = ?,"
                " ended_seq = ?, ended_at_ms = ? WHERE id = ? AND state = 'pending'",
                (attempt, error, dl_id, reason, attempts, ended_seq, at_ms, event_id),
            )
            if cur.rowcount:
                tally.pending -= 1
                tally.dead_letters += 1
        elif kind == "emit":
            conn.execute("INSERT INTO emitted (event_id, record) VALUES (?, ?)", args)
            tally.emitted += 1
        elif kind != "flush":
            raise ValueError(f"unknown store operation {kind!r}")
        return ended_seq

    @staticmethod
    def _prune(conn: sqlite3.Connection, tally: Tally) -> None:
        handled, dead, emitted = tally.excess()
        if not (handled or dead or emitted):
            return
        if handled:
            conn.execute("DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE state = 'handled' ORDER BY ended_seq LIMIT ?)", (handled,))
        if dead:
            conn.execute("DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE state = 'dead' ORDER BY ended_seq LIMIT ?)", (dead,))
        if emitted:
            conn.execute("DELETE FROM emitted WHERE seq IN (SELECT seq FROM emitted ORDER BY seq LIMIT ?)", (emitted,))
        tally.drop(handled, dead, emitted)
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('dropped', ?)", (json.dumps(tally.dropped_json()),))
