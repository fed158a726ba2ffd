"""Human-readable renderings of runtime documents for `pdk send/run/status/dead-letters`.

Pure functions of the JSON documents (status, outcomes, dead letters), so what a
user reads is exactly what `--json` would show, summarized."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

VALUE_PREVIEW_CHARS = 120


def _compact(value: Any, limit: int = VALUE_PREVIEW_CHARS) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ago(at_ms: int | None) -> str:
    if not at_ms:
        return "-"
    seconds = max(0.0, time.time() - at_ms / 1000)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def _error(error: dict[str, Any] | None) -> str:
    if not error:
        return ""
    return f"{error.get('code', 'failed')}: {error.get('message', '')}"


def _payload(preview: dict[str, Any]) -> str:
    kind = preview.get("type")
    if kind == "empty":
        return "empty"
    if kind == "binary":
        return f"binary {preview.get('bytes', 0)} bytes"
    value = str(preview.get("value", ""))
    if kind == "text":
        value = json.dumps(value, ensure_ascii=False)
    shown = value if len(value) <= 60 else value[:59] + "…"
    return f"{kind} {shown}"


# ----------------------------------------------------------------------------- send


def sent_event(ingress: str, kind: str, doc: dict[str, Any]) -> str:
    """One event of `pdk send`: its outcome, then one indented line per command."""
    head = f"[{doc['index'] + 1}] {ingress}/{kind} ({_payload(doc['payload'])})"
    if not doc["accepted"]:
        refusal = doc["refusal"] or {}
        return f"{head}: refused ({refusal.get('reason')}): {refusal.get('message')}"
    outcome = doc["outcome"]
    if outcome is None:  # cannot happen: stop() ends every accepted event
        return f"{head}: {doc['event_id']}: no outcome recorded"
    lines = []
    attempts = outcome.get("attempts", 1)
    if outcome["outcome"] == "handled":
        took = f", {outcome['duration_ms']:.1f} ms" if isinstance(outcome.get("duration_ms"), (int, float)) else ""
        lines.append(f"{head}: handled {doc['event_id']} (attempt {attempts}{took})")
    else:
        lines.append(
            f"{head}: dead-lettered {doc['event_id']} ({outcome.get('reason')} after {attempts} attempt{'s' if attempts != 1 else ''}) "
            f"as {outcome.get('dead_letter_id')}: {_error(outcome.get('error'))}"
        )
    emitted = {r["command_id"]: r for r in doc.get("emitted", [])}
    for result in outcome.get("command_results", []):
        line = f"    {result['kind']}: {result['result']}"
        if result.get("detail"):
            line += f" - {result['detail']}"
        record = emitted.get(result["command_id"])
        if record is not None:
            line += f" {_compact(record['data'])}"
        lines.append(line)
    return "\n".join(lines)


def send_summary(sent_docs: Sequence[dict[str, Any]]) -> str:
    handled = sum(1 for d in sent_docs if d["outcome"] and d["outcome"]["outcome"] == "handled")
    dead = sum(1 for d in sent_docs if d["outcome"] and d["outcome"]["outcome"] == "dead_lettered")
    refused = sum(1 for d in sent_docs if not d["accepted"])
    return f"{len(sent_docs)} event{'s' if len(sent_docs) != 1 else ''}: {handled} handled, {dead} dead-lettered, {refused} refused"


# ----------------------------------------------------------------------------- run


def run_banner(rt: Any, doc: dict[str, Any], http: Any, timers: Sequence[Any], control_path: Path, websocket: Any = None) -> list[str]:
    p = doc["plugin"]
    lines = [f"pdk run: {p['id']} {p['version']} ({p['world']}) is {doc['lifecycle']['state']}"]
    if http is not None:
        lines.append(f"http: listening on {http.url}")
        for path, route in sorted(http.routes.items()):
            lines.append(f"  POST {http.url}{path} -> ingress {route.ingress} ({', '.join(route.kinds)})")
    for timer in timers:
        lines.append(f"timer: ingress {timer.ingress} ({timer.kind}) every {timer.interval_ms} ms")
    if websocket is not None:
        for name, conn in sorted(websocket.status().items()):
            denied = f" (denied: {conn['last_error']})" if conn["state"] == "denied" else ""
            lines.append(f"websocket: {name} -> {conn['url']} for ingress {conn['ingress']}{denied}")
    store = doc.get("store")
    if store:
        lines.append(state_banner(store))
    lines.append(f"control: {control_path}")
    lines.append("press Ctrl-C to stop")
    return lines


def _size(n: int) -> str:
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"


def state_banner(store: dict[str, Any]) -> str:
    if not store.get("durable"):
        return "state: in memory (nothing outlives this process)"
    line = f"state: {store['path']} (synchronous={store.get('synchronous')})"
    rec = store.get("recovery") or {}
    if rec.get("pending"):
        line += f"; recovered {rec['pending']} pending events: {rec['requeued']} queued again"
        line += " after a clean stop" if rec.get("clean_stop") else " with attempt + 1 (the last run did not stop cleanly)"
        if rec.get("dead_lettered"):
            line += f", {rec['dead_lettered']} dead-lettered"
        if rec.get("digest_changed"):
            line += " (the plugin was rebuilt: they go to this build)"
    return line


def store_line(store: dict[str, Any]) -> str:
    """The store's counts and size, one line (status)."""
    if not store.get("durable"):
        return "store: in memory"
    dropped = {k: v for k, v in (store.get("dropped") or {}).items() if v}
    line = (
        f"store: {store['path']}, {_size(int(store.get('size_bytes', 0)))}: {store.get('pending', 0)} pending, "
        f"{store.get('handled', 0)} handled, {store.get('dead_letters', 0)} dead letters, {store.get('emitted', 0)} emitted"
    )
    if dropped:
        line += f" (dropped {_compact(dropped)})"
    return line


def store_lines(store: dict[str, Any]) -> list[str]:
    """A store read with `--state` (no running host)."""
    lines = [f"{store.get('plugin_id')}: state store, {store.get('runs', 0)} runs, last digest {store.get('digest') or '-'}", store_line({**store, "durable": True})]
    clean = store.get("clean_stop")
    if clean:
        lines.append(f"last run: stopped cleanly {_ago(clean.get('at_ms'))}, {clean.get('left_pending', 0)} events left pending (the next start delivers them)")
    elif store.get("runs"):
        lines.append("last run: did not stop cleanly (killed or crashed): its pending events are delivered again with attempt + 1")
    return lines


def run_summary(doc: dict[str, Any], seconds: float, signal_name: str | None) -> str:
    c = doc["counters"]
    why = f" on {signal_name}" if signal_name else ""
    line = (
        f"pdk run: {doc['plugin']['id']} {doc['lifecycle']['state']}{why} after {seconds:.1f}s: "
        f"{c['accepted']} accepted, {c['handled']} handled, {c['dead_lettered']} dead-lettered, "
        f"{c['refused_total']} refused, {c['retried']} retried"
    )
    if c.get("left_pending"):
        line += f"; {c['left_pending']} left pending in {doc['store']['path']} (the next start delivers them)"
    return line


def state_change(rt: Any, state: str) -> str:
    line = f"pdk run: {rt.manifest.id} is {state}"
    if state in ("failed", "restarting"):
        error = rt.status()["lifecycle"].get("last_error")
        if error:
            line += f" ({_error(error)})"
    return line


# ----------------------------------------------------------------------------- status


def _source_line(name: str, src: dict[str, Any]) -> str:
    kind = src.get("kind")
    if kind == "http":
        refused = sum(src.get("refused", {}).values())
        rejected = sum(src.get("rejected", {}).values())
        detail = f"POST {src.get('url', src.get('path'))}: {src.get('accepted', 0)} accepted, {refused} refused, {rejected} rejected"
        extra = {**src.get("refused", {}), **src.get("rejected", {})}
        return f"  {name}: {detail}" + (f" {_compact(extra)}" if extra else "")
    if kind == "timer":
        return (
            f"  {name}: every {src.get('interval_ms')} ms: {src.get('fired', 0)} fired, {src.get('coalesced', 0)} coalesced"
            + (f", refused {_compact(src['refused'])}" if src.get("refused") else "")
            + f", last {_ago(src.get('last_fired_ms'))}"
        )
    if kind == "websocket":
        line = (
            f"  {name}: {src.get('state')} since {_ago(src.get('since_ms'))}, {src.get('url')}: "
            f"{src.get('frames_in', 0)} in, {src.get('frames_out', 0)} out, {src.get('reconnects', 0)} reconnects, "
            f"{src.get('pauses', 0)} pauses"
        )
        if src.get("send_failures"):
            line += f", send failures {_compact(src['send_failures'])}"
        if src.get("last_error") and src.get("state") != "open":
            line += f" ({src['last_error']})"
        return line
    if kind == "http_listener":
        rejected = src.get("rejected", {})
        return f"  {name}: {src.get('url')}, {src.get('connections', 0)} connections" + (f", rejected {_compact(rejected)}" if rejected else "")
    return f"  {name}: {_compact(src)}"


def status_lines(doc: dict[str, Any]) -> list[str]:
    p, life, q, c = doc["plugin"], doc["lifecycle"], doc["queue"], doc["counters"]
    lines = [
        f"{p['id']} {p['version']} ({p['world']}): {life['state']} since {_ago(life.get('since_ms'))}, {life.get('restarts', 0)} restarts",
        f"queue: {q['depth']}/{q['capacity']} waiting, {q['in_flight']} in flight",
        f"events: {c['accepted']} accepted, {c['handled']} handled, {c['retried']} retried, {c['failed']} failed attempts, "
        f"{c['dead_lettered']} dead-lettered, {c['refused_total']} refused"
        + (f", {c['left_pending']} left pending by a stop" if c.get("left_pending") else ""),
    ]
    refused = {k: v for k, v in c.get("refused", {}).items() if v}
    if refused:
        lines.append(f"  refused: {_compact(refused)}")
    by_result = {k: v for k, v in doc["commands"]["by_result"].items() if v}
    lines.append(f"commands: {_compact(by_result) if by_result else 'none yet'}")
    ps = doc.get("plugin_status")
    if ps:
        lines.append(
            f"plugin status: {'healthy' if ps.get('healthy') else 'UNHEALTHY'} (as of {status_age(ps)}, from {ps.get('source')}) {_compact(ps.get('data'))}"
        )
    dl = doc.get("dead_letters", {})
    lines.append(f"dead letters: {dl.get('count', 0)}/{dl.get('capacity', 0)}" + (f" ({dl['evicted']} evicted)" if dl.get("evicted") else ""))
    store = doc.get("store")
    if store:
        lines.append(store_line(store))
        rec = store.get("recovery") or {}
        if rec.get("pending"):
            changed = ", accepted by an earlier build (the plugin was rebuilt): delivered to this one" if rec.get("digest_changed") else ""
            how = " (after a clean stop)" if rec.get("clean_stop") else " (with attempt + 1: the last run did not stop cleanly)"
            lines.append(f"  recovered at start: {rec['pending']} pending events, {rec['requeued']} queued again, {rec['dead_lettered']} dead-lettered{changed}{how}")
        if store.get("last_error"):
            lines.append(f"  store error: {_error(store['last_error'])}")
    if life.get("last_error"):
        lines.append(f"last error ({life['last_error'].get('during', '?')}): {_error(life['last_error'])}")
    sources = doc.get("sources") or {}
    if sources:
        lines.append("sources:")
        lines.extend(_source_line(name, src) for name, src in sorted(sources.items()))
    logs = doc.get("logs") or []
    if logs:
        lines.append(f"recent logs ({len(logs)}):")
        lines.extend(f"  {_ago(r.get('at_ms'))} {log_line(r)}" for r in logs)
    return lines


def dead_letter_lines(letters: Sequence[dict[str, Any]]) -> list[str]:
    if not letters:
        return ["no dead letters"]
    lines = []
    for letter in letters:
        event = letter["event"]
        lines.append(
            f"{letter['id']}  {event['ingress']}/{event['kind']}  {letter['reason']} after {letter['attempts']} attempts, {_ago(letter.get('at_ms'))}"
            f"  ({_payload(event['payload'])})" + (f": {_error(letter.get('error'))}" if letter.get("error") else "")
        )
    return lines


# ----------------------------------------------------------------------------- logs and live lines


def log_line(record: dict[str, Any]) -> str:
    """One diagnostics record: `log info: text` for the log import, `stdout: text` for
    print(), `<source> <level>: text` for the rest."""
    source, level, message = record.get("source"), record.get("level"), record.get("message", "")
    if source in ("stdout", "stderr"):
        return f"{source}: {message}"
    return f"{source} {level}: {message}"


def log_lines(records: Sequence[dict[str, Any]], dropped: int = 0) -> list[str]:
    lines = [log_line(r) for r in records]
    if dropped:
        lines.insert(0, f"({dropped} earlier log records no longer kept)")
    return lines


def status_age(ps: dict[str, Any]) -> str:
    age = ps.get("status_age_s")
    if not isinstance(age, (int, float)):
        return _ago(ps.get("at_ms"))
    return f"{age:.1f} s ago" if age < 10 else f"{age:.0f} s ago"


def outcome_line(record: dict[str, Any]) -> str:
    """A final event outcome, one line (`pdk run`)."""
    head = f"event {record['event_id']} {record['ingress']}/{record['kind']} from {record['source']}"
    attempts = record.get("attempts", 1)
    if record["outcome"] == "handled":
        took = f", {record['duration_ms']:.1f} ms" if isinstance(record.get("duration_ms"), (int, float)) else ""
        return f"{head}: handled (attempt {attempts}{took})"
    return (
        f"{head}: dead-lettered as {record.get('dead_letter_id')} ({record.get('reason')} after {attempts} "
        f"attempt{'s' if attempts != 1 else ''}): {_error(record.get('error'))}"
    )


def command_line(result: dict[str, Any]) -> str:
    line = f"command {result['command_id']} ({result['kind']}) of {result['event_id']}: {result['result']}"
    return line + (f" - {result['detail']}" if result.get("detail") else "")


def connection_line(conn: dict[str, Any]) -> str:
    line = f"connection {conn.get('connection')}: {conn.get('state')} ({conn.get('url')})"
    if conn.get("last_error") and conn.get("state") != "open":
        line += f": {conn['last_error']}"
    return line


def lifecycle_line(plugin_id: str, state: str, last_error: dict[str, Any] | None) -> str:
    line = f"lifecycle: {plugin_id} is {state}"
    if state in ("failed", "restarting") and last_error:
        line += f" ({_error(last_error)})"
    return line
