"""Bounded per-plugin diagnostics: guest log records and captured stdout/stderr.

Everything here is a ring: however long a plugin runs and however much it prints,
memory stays bounded (v1's diagnostics list grew without bound)."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass

from pdk.limits import GUEST_STDIO_MAX_BYTES, LOG_MESSAGE_MAX_BYTES, LOG_RING_MAX_RECORDS

from .redact import redact_bounded


@dataclass(frozen=True)
class LogRecord:
    at_ms: int
    source: str  # "log" (the log import), "stdout", "stderr", "host"
    level: str
    message: str

    def to_json(self) -> dict[str, object]:
        return asdict(self)


class DiagnosticLog:
    """A thread-safe ring of redacted, bounded records."""

    def __init__(self, max_records: int = LOG_RING_MAX_RECORDS) -> None:
        self._records: deque[LogRecord] = deque(maxlen=max_records)
        self._lock = threading.Lock()
        self.dropped = 0

    def add(self, source: str, level: str, message: str) -> None:
        record = LogRecord(int(time.time() * 1000), source, level, redact_bounded(message, LOG_MESSAGE_MAX_BYTES))
        with self._lock:
            if len(self._records) == self._records.maxlen:
                self.dropped += 1
            self._records.append(record)

    def records(self, source: str | None = None) -> list[LogRecord]:
        with self._lock:
            return [r for r in self._records if source is None or r.source == source]

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
