"""Bounded per-plugin diagnostics: guest log records and captured stdout/stderr.

Everything here is a ring: however long a plugin runs and however much it prints,
memory stays bounded (v1's diagnostics list grew without bound)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass

from pdk.limits import GUEST_STDIO_MAX_BYTES, LOG_MESSAGE_MAX_BYTES, LOG_RING_MAX_RECORDS

from .redact import redact_bounded


# The sources whose records are the plugin's own words (the `log` import, print()):
# what `pdk call/send/run/status` show as its logs.
GUEST_SOURCES: tuple[str, ...] = ("log", "stdout", "stderr")

LogListener = Callable[["LogRecord"], None]

# Short messages that redaction leaves as they are repeat from record to record (a
# handler that logs on every event): they are remembered and skip the patterns. Only
# messages redaction did not change are kept, so no secret is held here.
_new = object.__new__
_time = time.time

CLEAN_REMEMBERED = 1024
CLEAN_REMEMBERED_MAX_LEN = 256
_clean: dict[str, None] = {}


def _redacted(message: str) -> str:
    """`redact_bounded(message, LOG_MESSAGE_MAX_BYTES)`, remembered for short clean messages."""
    if message in _clean:
        return message
    redacted = redact_bounded(message, LOG_MESSAGE_MAX_BYTES)
    if redacted == message and len(message) <= CLEAN_REMEMBERED_MAX_LEN:
        if len(_clean) >= CLEAN_REMEMBERED:
            _clean.clear()  # simple and bounded; the next repeats fill it again
        _clean[message] = None
    return redacted


@dataclass(frozen=True)
class LogRecord:
    at_ms: int
    source: str  # "log" (the log import), "stdout", "stderr", "host"
    level: str
    message: str

    def to_json(self) -> dict[str, object]:
        return asdict(self)


class DiagnosticLog:
    """A thread-safe ring of redacted, bounded records.

    Every record gets a sequence number: `mark()` is the number the next record will
    get, and `since(mark)` returns the records added after that mark (those still in
    the ring; `dropped_since(mark)` says how many of them the ring already lost), so
    a caller can show exactly the records one call produced. `subscribe(listener)`
    calls `listener(record)` for every record added from then on, on the adding
    thread, outside the lock (it must not block; its exceptions are swallowed)."""

    def __init__(self, max_records: int = LOG_RING_MAX_RECORDS) -> None:
        self._records: deque[tuple[int, LogRecord]] = deque(maxlen=max_records)
        self._max = max_records
        self._lock = threading.Lock()
        self._next = 0
        # Replaced whole (never changed in place) under the lock, so `add` reads it
        # without copying it.
        self._listeners: tuple[LogListener, ...] = ()
        self.dropped = 0

    def add(self, source: str, level: str, message: str) -> None:
        # The frozen dataclass without its `__init__` (one setattr call per field):
        # the same object, in about half the time; a plugin can log on every call.
        record = _new(LogRecord)
        fields = record.__dict__
        fields["at_ms"] = int(_time() * 1000)
        fields["source"] = source
        fields["level"] = level
        fields["message"] = _redacted(message)
        records = self._records
        with self._lock:
            if len(records) == self._max:
                self.dropped += 1
            records.append((self._next, record))
            self._next += 1
        for listener in self._listeners:
            try:
                listener(record)
            except Exception:  # a listener's bug must not break the plugin's logging
                pass

    def subscribe(self, listener: LogListener) -> None:
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def unsubscribe(self, listener: LogListener) -> None:
        with self._lock:
            if listener in self._listeners:
                listeners = list(self._listeners)
                listeners.remove(listener)
                self._listeners = tuple(listeners)

    def mark(self) -> int:
        """The sequence number of the next record (a mark for `since`)."""
        with self._lock:
            return self._next

    def since(self, mark: int, sources: tuple[str, ...] | None = None) -> list[LogRecord]:
        """The records added at or after `mark` that the ring still holds, oldest
        first; only those of `sources` when given."""
        with self._lock:
            return [r for seq, r in self._records if seq >= mark and (sources is None or r.source in sources)]

    def dropped_since(self, mark: int) -> int:
        """How many records added at or after `mark` the ring no longer holds."""
        with self._lock:
            oldest = self._records[0][0] if self._records else self._next
            return max(0, oldest - mark)

    def records(self, source: str | None = None) -> list[LogRecord]:
        with self._lock:
            return [r for _, r in self._records if source is None or r.source == source]

    def messages(self, source: str | None = None) -> list[str]:
        return [r.message for r in self.records(source)]


class StdioCapture:
    """Collects a guest's stdout or stderr bytes into lines of the diagnostic log.

    A budget per stream bounds how much one instance can print in total; the rest is
    counted, not stored."""

    def __init__(self, log: DiagnosticLog, source: str, budget: int = GUEST_STDIO_MAX_BYTES) -> None:
        self._log = log
        self._source = source
        self._budget = budget
        self._partial = b""
        self.discarded_bytes = 0

    def write(self, data: bytes) -> None:
        if self._budget <= 0:
            self.discarded_bytes += len(data)
            return
        data, rest = data[: self._budget], data[self._budget :]
        self._budget -= len(data)
        self.discarded_bytes += len(rest)
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            self._log.add(self._source, "info", line.decode("utf-8", "replace"))
        if len(self._partial) > LOG_MESSAGE_MAX_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._partial:
            self._log.add(self._source, "info", self._partial.decode("utf-8", "replace"))
            self._partial = b""
