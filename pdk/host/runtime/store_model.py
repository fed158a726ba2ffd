"""The vocabulary of the state store (store.py): its typed error, the interface both
variants implement, what an opened store recovered, and its counts and caps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pdk.limits import STATE_DEAD_LETTERS_MAX, STATE_EMITTED_MAX, STATE_HANDLED_KEPT_MAX
from pdk.package.errors import PdkError

from .dead_letters import DeadLetter
from .model import QueuedEvent

MEMORY = ":memory:"
SYNC_MODES: tuple[str, ...] = ("normal", "full")
STORE_ERROR_CODES: tuple[str, ...] = (
    "corrupt",  # not a database, or a database that fails its integrity check
    "locked",  # another process (a running `pdk run`) holds the store
    "read_only",  # the file or its directory cannot be written
    "not_a_store",  # a readable SQLite database, but not a runtime state store
    "wrong_plugin",  # a store of another plugin id
    "unsupported_schema",  # a store written by a newer (or unknown) version
    "full",  # the store reached STATE_STORE_MAX_BYTES, or the disk is full
    "io",  # any other failure to read or write the file
    "closed",  # used after close()
)


class StoreError(PdkError):
    """The state store cannot be used (an operator's error: exit 1 in the CLI).
    `code` is one of `STORE_ERROR_CODES`; `message` is one bounded line naming the
    file and what to do about it; `to_json()` adds `path`."""

    default_code = "io"

    def __init__(self, code: str, message: str, path: str | None = None) -> None:
        super().__init__(" ".join(message.split())[:1024], code=code)
        self.path = path

    def json_fields(self) -> dict[str, Any]:
        return {"path": self.path}


@dataclass
class Tally:
    """What a store holds, by kind, and what its caps pushed out. The SQLite store
    updates it after each commit (and keeps the dropped counts in its metadata)."""

    pending: int = 0
    handled: int = 0
    dead_letters: int = 0
    emitted: int = 0
    handled_pruned: int = 0
    dead_letters_dropped: int = 0
    emitted_dropped: int = 0

    def excess(self) -> tuple[int, int, int]:
        """Rows over the caps: (handled, dead letters, emitted), oldest to go first."""
        return (
            max(0, self.handled - STATE_HANDLED_KEPT_MAX),
            max(0, self.dead_letters - STATE_DEAD_LETTERS_MAX),
            max(0, self.emitted - STATE_EMITTED_MAX),
        )

    def drop(self, handled: int, dead_letters: int, emitted: int) -> None:
        self.handled -= handled
        self.handled_pruned += handled
        self.dead_letters -= dead_letters
        self.dead_letters_dropped += dead_letters
        self.emitted -= emitted
        self.emitted_dropped += emitted

    def dropped_json(self) -> dict[str, int]:
        return {"handled_pruned": self.handled_pruned, "dead_letters": self.dead_letters_dropped, "emitted": self.emitted_dropped}

    def to_json(self) -> dict[str, Any]:
        return {
            "pending": self.pending,
            "handled": self.handled,
            "dead_letters": self.dead_letters,
            "emitted": self.emitted,
            "dropped": self.dropped_json(),
        }


@dataclass
class Recovered:
    """What a store held when it was opened.

    `pending`: the events that had not ended, in acceptance order, `attempt` as
    stored (the attempt of their next delivery as far as the store knew);
    `accepted_by`: per pending event id, the digest of the package that accepted it;
    `dead_letters` and `emitted`: oldest first; `previous_digest`: the digest of the
    last run (None for a new store); `runs`: how often the store was opened before;
    `clean_stop`: `{"at_ms", "left_pending"}` when the last run stopped cleanly (no
    delivery was under way, so every pending event's `attempt` is exact), None after
    a crash or a kill (or for a new store)."""

    pending: list[QueuedEvent] = field(default_factory=list)
    accepted_by: dict[str, str | None] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    emitted: list[dict[str, Any]] = field(default_factory=list)
    previous_digest: str | None = None
    runs: int = 0
    clean_stop: dict[str, Any] | None = None


class StateStore(Protocol):
    """The interface the runtime uses; `MemoryStore` and `SqliteStore` implement it.

    Durable when they return (or raise `StoreError`): `accept`, `replayed`,
    `requeued` (also clears the clean-stop mark: deliveries are under way again),
    `stopped` (everything queued so far, then the clean-stop mark), `flush`. Lazy (queued for the next batch; never raise; a failed
    batch shows in `stats()["last_error"]`): `retrying`, `handled`,
    `dead_lettered`, `emitted`."""

    path: str
    durable: bool
    synchronous: str

    def recovered(self) -> Recovered: ...
    def accept(self, event: QueuedEvent) -> None: ...
    def replayed(self, letter: DeadLetter, event: QueuedEvent) -> None: ...
    def requeued(self, events: list[QueuedEvent]) -> None: ...
    def stopped(self, left_pending: int) -> None: ...
    def retrying(self, event: QueuedEvent, error: dict[str, Any] | None) -> None: ...
    def handled(self, event: QueuedEvent) -> None: ...
    def dead_lettered(self, letter: DeadLetter) -> None: ...
    def emitted(self, record: dict[str, Any]) -> None: ...
    def flush(self) -> None: ...
    def stats(self) -> dict[str, Any]: ...
    def close(self) -> None: ...
