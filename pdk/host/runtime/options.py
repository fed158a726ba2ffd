"""Runtime options (host-side defaults an operator may change) and the per-ingress
settings resolved from them and the manifest.

Precedence: a value the plugin declares for an ingress (`queue_capacity`,
`max_attempts`, `retry_backoff_ms`) wins over the operator's default, because the
plugin knows what its events need; both are clamped to the host maximums in
`pdk.limits`, which no manifest or option can exceed.
"""

from __future__ import annotations

from dataclasses import dataclass

from pdk.limits import (
    MAX_ATTEMPTS_DEFAULT,
    MAX_ATTEMPTS_MAX,
    QUEUE_CAPACITY_DEFAULT,
    QUEUE_CAPACITY_MAX,
    RESTART_BACKOFF_INITIAL_S,
    RESTART_BACKOFF_MAX_S,
    RESTART_BUDGET,
    RESTART_WINDOW_S,
    RETRY_BACKOFF_DEFAULT_MS,
    RETRY_BACKOFF_MAX_MS,
)
from pdk.package.manifest import Manifest

# Rings that only this runtime uses (the shared ones live in pdk.limits).
OUTCOMES_RING = 256
RESTART_HISTORY_RING = 16
# Async command ids remembered so that their result events may come from a host
# executor (any `source`); older ids fall out and their results are checked normally.
ASYNC_COMMANDS_REMEMBERED = 1024
# Under continuous load the guest's `status` export is still read between two
# dispatches at most this often; when the queue goes idle it is read once the queue
# has stayed empty for IDLE_STATUS_SETTLE_S (so `wait_idle` returns a fresh status).
STATUS_REFRESH_INTERVAL_S = 1.0
IDLE_STATUS_SETTLE_S = 0.005
# How often an idle dispatcher looks for an instance recycled by a tool call.
IDLE_POLL_S = 0.25


@dataclass(frozen=True)
class RuntimeOptions:
    """Operator settings for one `ServiceRuntime`.

    `queue_capacity` bounds the whole queue of the plugin instance (queued, waiting
    for a retry and in flight); an ingress's own `queue_capacity` bounds its share.
    `max_attempts` / `retry_backoff_ms` apply to ingresses that do not declare them.
    `restart_*` is the restart budget and backoff after traps and deadlines.
    `call_deadline_s` overrides the instance's per-call deadline for runtime calls."""

    queue_capacity: int = QUEUE_CAPACITY_DEFAULT
    max_attempts: int = MAX_ATTEMPTS_DEFAULT
    retry_backoff_ms: int = RETRY_BACKOFF_DEFAULT_MS
    restart_budget: int = RESTART_BUDGET
    restart_window_s: float = RESTART_WINDOW_S
    restart_backoff_initial_s: float = RESTART_BACKOFF_INITIAL_S
    restart_backoff_max_s: float = RESTART_BACKOFF_MAX_S
    call_deadline_s: float | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.queue_capacity <= QUEUE_CAPACITY_MAX:
            raise ValueError(f"queue_capacity must be from 1 to {QUEUE_CAPACITY_MAX}")
        if not 1 <= self.max_attempts <= MAX_ATTEMPTS_MAX:
            raise ValueError(f"max_attempts must be from 1 to {MAX_ATTEMPTS_MAX}")
        if not 0 <= self.retry_backoff_ms <= RETRY_BACKOFF_MAX_MS:
            raise ValueError(f"retry_backoff_ms must be from 0 to {RETRY_BACKOFF_MAX_MS}")
        if self.restart_budget < 0:
            raise ValueError("restart_budget must be >= 0")
        if self.restart_window_s <= 0:
            raise ValueError("restart_window_s must be positive")
        if self.restart_backoff_initial_s < 0 or self.restart_backoff_max_s < self.restart_backoff_initial_s:
            raise ValueError("restart backoff: 0 <= initial <= max")
        if self.call_deadline_s is not None and self.call_deadline_s <= 0:
            raise ValueError("call_deadline_s must be positive")


@dataclass(frozen=True)
class IngressSettings:
    """The effective queue and retry settings of one ingress."""

    name: str
    capacity: int
    max_attempts: int
    retry_backoff_ms: int

    def retry_delay_s(self, failed_attempt: int) -> float:
        """Exponential backoff: the first retry waits `retry_backoff_ms`, each later
        one twice as long as the one before, capped at the host maximum."""
        delay_ms = min(float(RETRY_BACKOFF_MAX_MS), self.retry_backoff_ms * 2.0 ** max(0, failed_attempt - 1))
        return delay_ms / 1000.0


def _declared(value: int | None, default: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, default if value is None else value))


def resolve_settings(manifest: Manifest, options: RuntimeOptions) -> dict[str, IngressSettings]:
    """Per-ingress settings; an ingress's capacity never exceeds the whole queue's."""
    out: dict[str, IngressSettings] = {}
    for decl in manifest.ingresses:
        out[decl.name] = IngressSettings(
            name=decl.name,
            capacity=min(options.queue_capacity, _declared(decl.queue_capacity, options.queue_capacity, 1, QUEUE_CAPACITY_MAX)),
            max_attempts=_declared(decl.max_attempts, options.max_attempts, 1, MAX_ATTEMPTS_MAX),
            retry_backoff_ms=_declared(decl.retry_backoff_ms, options.retry_backoff_ms, 0, RETRY_BACKOFF_MAX_MS),
        )
    return out
