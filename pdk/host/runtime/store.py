"""The runtime's state store: what one plugin instance accepted, until it ends.

One store per plugin instance. It holds every accepted event until it ends handled
or dead-lettered (with its attempt and last error), the dead letters (with their
payloads, so that they can be replayed after a restart), a bounded log of emitted
events, and metadata (the plugin id, the digest of the package that accepted each
event, the digest of the last run). Two variants share one interface
(`StateStore`, store_model.py):

- `SqliteStore` (store_sqlite.py): a SQLite file in WAL mode, written by one
  writer thread. `accept` and `replayed` are durable when they return (group
  commit: concurrent accepts share one transaction); completions (`handled`,
  `dead_lettered`, `retrying`, `emitted`) are written lazily, in batches, because
  at-least-once delivery allows losing them: an event whose completion was lost is
  still pending in the store and is delivered again after a restart.
- `MemoryStore` (`":memory:"`): nothing outlives the process (today's behaviour);
  the same counts and caps, for tests and `pdk send`.

A clean stop of a durable runtime leaves what it could not drain pending in the
store (`stopped` marks the attempts exact); the next start queues it again
(`requeued`). `inspect_store` and `replay_offline` read and change a store without
a running host.

`open_store(path, plugin_id, digest)` picks the variant. Faults are typed
`StoreError`s; a store is never reset or rewritten to get past one. Durability
policy and bounds: docs/runtime.md ("State store").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pdk.limits import STATE_EMITTED_MAX, STATE_HANDLED_KEPT_MAX

from .dead_letters import DeadLetter
from .model import QueuedEvent
from .store_model import MEMORY, STORE_ERROR_CODES, SYNC_MODES, Recovered, StateStore, StoreError, Tally
from .store_sqlite import SqliteStore, inspect_store, replay_offline

STATE_FILE_NAME = "state.sqlite3"

__all__ = [
    "MEMORY",
    "STATE_FILE_NAME",
    "STORE_ERROR_CODES",
    "SYNC_MODES",
    "MemoryStore",
    "Recovered",
    "SqliteStore",
    "StateStore",
    "StoreError",
    "default_state_path",
    "inspect_store",
    "open_store",
    "replay_offline",
]


def default_state_path(plugin_id: str) -> Path:
    """`$XDG_STATE_HOME/yoi-pdk/<plugin-id>/state.sqlite3` (XDG_STATE_HOME must be
    absolute, as the XDG spec says), else under `~/.local/state`. A plugin id is
    `[a-z0-9._-]` (the manifest checks it), so it is a safe directory name."""
    base = os.environ.get("XDG_STATE_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "state"
    return root / "yoi-pdk" / plugin_id / STATE_FILE_NAME


class MemoryStore:
    """`":memory:"`: nothing outlives the process. Keeps the same counts and caps as
    the SQLite store, so that status reads the same."""

    durable = False
    synchronous = "none"

    def __init__(self, plugin_id: str = "", digest: str | None = None) -> None:
        self.path = MEMORY
        self.plugin_id = plugin_id
        self.digest = digest
        self.tally = Tally()
        self._closed = False

    def recovered(self) -> Recovered:
        return Recovered()

    def accept(self, event: QueuedEvent) -> None:
        self._check_open()
        self.tally.pending += 1

    def replayed(self, letter: DeadLetter, event: QueuedEvent) -> None:
        self._check_open()
        self.tally.dead_letters = max(0, self.tally.dead_letters - 1)
        self.tally.pending += 1

    def requeued(self, events: list[QueuedEvent]) -> None:
        self._check_open()

    def stopped(self, left_pending: int) -> None:
        self._check_open()

    def retrying(self, event: QueuedEvent, error: dict[str, Any] | None) -> None:
        pass

    def handled(self, event: QueuedEvent) -> None:
        tally = self.tally
        tally.pending = max(0, tally.pending - 1)
        tally.handled += 1
        over = tally.handled - STATE_HANDLED_KEPT_MAX  # (only the count just raised can be over its cap)
        if over > 0:
            tally.handled -= over
            tally.handled_pruned += over

    def dead_lettered(self, letter: DeadLetter) -> None:
        self.tally.pending = max(0, self.tally.pending - 1)
        self.tally.dead_letters += 1
        self.tally.drop(*self.tally.excess())

    def emitted(self, record: dict[str, Any]) -> None:
        tally = self.tally
        tally.emitted += 1
        over = tally.emitted - STATE_EMITTED_MAX
        if over > 0:
            tally.emitted -= over
            tally.emitted_dropped += over

    def flush(self) -> None:
        self._check_open()

    def stats(self) -> dict[str, Any]:
        return {
            "path": MEMORY,
            "durable": False,
            "synchronous": self.synchronous,
            "size_bytes": 0,
            **self.tally.to_json(),
            "writes": None,
            "last_error": None,
        }

    def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("closed", "the state store is closed", MEMORY)


def open_store(path: str | os.PathLike[str], plugin_id: str, digest: str | None, *, synchronous: str = "normal") -> StateStore:
    """`MemoryStore` for `":memory:"`, else the SQLite store at `path` (created with
    its directory when missing). Raises `StoreError`."""
    if str(path) == MEMORY:
        return MemoryStore(plugin_id, digest)
    return SqliteStore(Path(path), plugin_id, digest, synchronous=synchronous)
