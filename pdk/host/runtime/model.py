"""The values the runtime hands out and keeps: submit answers and queued events."""

from __future__ import annotations

import base64
import itertools
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..codec import Case
from ..redact import bound_text

# Every reason a submit can be refused for; status counts each (0 included, so the
# document's shape never depends on what happened).
REFUSAL_REASONS: tuple[str, ...] = (
    "queue_full",
    "not_running",
    "unknown_ingress",
    "unknown_kind",
    "source_not_allowed",
    "too_large",
    "invalid_payload",
    "store_unavailable",  # the durable state store could not record the event (store.py)
)

PAYLOAD_TAGS: tuple[str, ...] = ("text", "binary", "json", "closed", "failure", "empty")

# How much of a payload the JSON views (dead letters, outcomes) show.
PAYLOAD_PREVIEW_BYTES = 4096


@dataclass(frozen=True)
class Accepted:
    """The event is in the queue; it will end exactly once, handled or dead-lettered."""

    event_id: str
    accepted: ClassVar[bool] = True

    def to_json(self) -> dict[str, Any]:
        return {"accepted": True, "event_id": self.event_id}


@dataclass(frozen=True)
class Refused:
    """The event was not taken. `reason` is one of `REFUSAL_REASONS`; `retry_after_s`
    is a hint for `queue_full` (HTTP sources send it as Retry-After), else None."""

    reason: str
    message: str
    retry_after_s: float | None = None
    accepted: ClassVar[bool] = False

    def to_json(self) -> dict[str, Any]:
        return {"accepted": False, "reason": self.reason, "message": self.message, "retry_after_s": self.retry_after_s}


class UniqueIds:
    """Ids `<prefix>-` + 32 hex digits, unique across processes and runs: 16 random hex
    digits drawn once per process (again in a forked child) and a 64-bit counter. No
    system call per id (`uuid.uuid4` reads `os.urandom` each time, which also gives up
    the GIL on the submitting thread); `next()` on a counter is atomic under the GIL."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._reseed()
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._head = f"{self.prefix}-{os.urandom(8).hex()}"
        self._count = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._head}{next(self._count):016x}"


new_event_id = UniqueIds("ev")


@dataclass(slots=True)
class QueuedEvent:
    """One accepted event while the runtime owns it.

    `attempt` is the attempt its next delivery carries (starts at 1); `not_before`
    is the monotonic time before which a retry is not delivered; `seq` is the
    acceptance order."""

    id: str
    ingress: str
    source: str
    kind: str
    payload: Case
    created_at_ms: int
    correlation_id: str | None = None
    payload_bytes: int = 0
    attempt: int = 1
    not_before: float = 0.0
    seq: int = 0
    replay_of: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        """The contract's `event` record as plain codec values."""
        return {
            "id": self.id,
            "ingress": self.ingress,
            "source": self.source,
            "kind": self.kind,
            "payload": self.payload,
            "created_at_ms": self.created_at_ms,
            "attempt": self.attempt,
            "correlation_id": self.correlation_id,
        }

    def describe(self) -> dict[str, Any]:
        """A JSON-able, bounded view for dead letters and outcomes."""
        return {
            "id": self.id,
            "ingress": self.ingress,
            "source": self.source,
            "kind": self.kind,
            "payload": payload_preview(self.payload),
            "created_at_ms": self.created_at_ms,
            "correlation_id": self.correlation_id,
        }


def payload_preview(payload: Case) -> dict[str, Any]:
    """`{"type": tag, "value": ..., "bytes": n}`, the value cut to a preview (binary
    as base64). Payloads can be up to 256 KiB; views of them stay small."""
    tag, value = payload.tag, payload.value
    if tag == "empty":
        return {"type": "empty"}
    if tag == "closed":
        return {"type": "closed", "code": value["code"], "reason": bound_text(str(value["reason"]), PAYLOAD_PREVIEW_BYTES)}
    if tag == "binary":
        data = bytes(value)
        shown = data[: PAYLOAD_PREVIEW_BYTES * 3 // 4]
        return {"type": "binary", "base64": base64.b64encode(shown).decode("ascii"), "bytes": len(data), "truncated": len(shown) < len(data)}
    text = str(value)
    size = len(text.encode("utf-8"))
    shown_text = bound_text(text, PAYLOAD_PREVIEW_BYTES)
    return {"type": tag, "value": shown_text, "bytes": size, "truncated": len(shown_text) != len(text)}
