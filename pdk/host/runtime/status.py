"""The status document of a `ServiceRuntime`: one snake_case JSON object, bounded
however long the runtime runs (every list in it is a ring or fixed-size).

    {
      "schema": "yoi.runtime.status/1",
      "at_ms": 1700000000000,                       # when the document was made
      "plugin": {"id", "version", "digest", "world", "source", "grants",   # the plugin's own
                 "instance", "tools", "diagnostics"},   # document: LoadedPlugin.status()
      "lifecycle": {
        "state": "stopped|starting|running|restarting|stopping|failed",
        "since_ms": ...,                            # when `state` was entered
        "restarts": 2,                              # instance restarts after faults, ever
        "last_error": null | {"code", "message", "retryable", "during", "at_ms", "fault"?},
        "recent_restarts": [{"at_ms", "delay_s", "cause"}],      # ring of 16
        "restart_budget": {"budget", "window_s", "used"}
      },
      "queue": {"depth", "capacity", "in_flight",   # depth: waiting incl. retry waits
                "by_ingress": {name: {"held", "capacity", "max_attempts", "retry_backoff_ms"}}},
      "counters": {"accepted", "refused": {reason: n}, "refused_total", "handled",
                   "retried", "failed", "dead_lettered", "replayed", "recovered",
                   "left_pending"},             # left_pending: what stops left in a durable store
      "commands": {"by_result": {result: n}, "recent": [command result]},  # ring of 64
      "plugin_status": null | {"healthy", "data", "source", "at_ms", "status_age_s"},
      "sources": {name: {...}},                     # filled by the host's event sources
      "dead_letters": {"count", "capacity", "evicted"},
      "emitted": {"count", "capacity", "appended", "dropped"},
      "store": {"path", "durable", "synchronous", "size_bytes",      # the state store (store.py)
                "pending", "handled", "dead_letters", "emitted",
                "dropped": {"handled_pruned", "dead_letters", "emitted"},
                "writes": null | {"batches", "operations", "largest_batch", "queued"},
                "last_error": null | {"code", "message", "path", "at_ms", "operations_lost"},
                "recovery": null | {"previous_digest", "digest_changed", "clean_stop", "pending",
                                    "requeued", "dead_lettered", "accepted_by": {digest: n}, "rule"}}
    }

`plugin_status.source` says where the plugin's own status came from: `start`,
`status_export` (read between two dispatches, never while an event is handled),
`status_update` (a command) or `stop`. Invariant, readable from the document:
`counters.accepted == counters.handled + counters.dead_lettered + counters.left_pending
+ queue.depth + queue.in_flight` (an event a stop left pending is accepted again, as
`recovered`, by the next start).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..guest_json import dumps_strict
from ..redact import redact_bounded

STATUS_SCHEMA = "yoi.runtime.status/1"
SOURCE_ENTRY_MAX_BYTES = 4096
SOURCES_MAX = 64


def source_view(value: Any) -> Any:
    """A source's entry: a dict, or a callable returning one (called now). An entry
    that fails or is too large is replaced by a short error, never raised."""
    try:
        entry = value() if callable(value) else value
        text = dumps_strict(entry, default=str)  # no NaN/Infinity in a printed document
    except Exception as exc:  # a source's status bug must not break status
        return {"error": redact_bounded(f"{type(exc).__name__}: {exc}", 512)}
    if len(text.encode("utf-8")) > SOURCE_ENTRY_MAX_BYTES:
        return {"error": f"status entry larger than {SOURCE_ENTRY_MAX_BYTES} bytes"}
    return json.loads(text)


def sources_view(sources: Mapping[str, Any | Callable[[], Any]]) -> dict[str, Any]:
    names = sorted(sources)[:SOURCES_MAX]
    return {name: source_view(sources[name]) for name in names}


def status_document(
    *,
    plugin: dict[str, Any],
    lifecycle: dict[str, Any],
    queue: dict[str, Any],
    counters: dict[str, Any],
    commands: dict[str, Any],
    plugin_status: dict[str, Any] | None,
    sources: dict[str, Any],
    dead_letters: dict[str, Any],
    emitted: dict[str, Any],
    store: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "schema": STATUS_SCHEMA,
        "at_ms": int(time.time() * 1000),
        "plugin": plugin,
        "lifecycle": lifecycle,
        "queue": queue,
        "counters": counters,
        "commands": commands,
        "plugin_status": plugin_status,
        "sources": sources,
        "dead_letters": dead_letters,
        "emitted": emitted,
        "store": store,
    }
