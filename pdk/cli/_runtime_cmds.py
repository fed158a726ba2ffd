"""`pdk send`, `pdk run`, `pdk status`, `pdk dead-letters`, `pdk replay`: the
Service/Ingress runtime from the command line.

`send` runs a plugin for the length of a few manual events; `run` is a foreground
host (service, timers, HTTP listener) serving its status on a local control socket
that `status`, `dead-letters` and `replay` talk to. `run` keeps its state in a
SQLite store (`--state`, default per plugin under the user's state directory), so
accepted events, dead letters and emitted events outlive a restart or a crash (a
stop leaves what it could not drain pending there for the next run);
`status --state` and `dead-letters --state` read such a store without a host, and
`replay --state` turns a dead letter back into a pending event in it.
Output formatting lives in `_runtime_view`."""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pdk._terminal import for_terminal

from . import _runtime_view as view
from ._exit import EXIT_OK, EXIT_USER
from ._plugin_cmds import UserError, _load_plugin, _print_json, guest_logs, print_logs, progress_renderer

SEND_TIMEOUT_S = 60.0
# Live lines of `pdk run` waiting to be printed; past this (a terminal or pipe that does
# not keep up) they are counted and dropped, never held without bound.
LIVE_QUEUE_MAX = 4096
EMITTED_DEFAULT_LIMIT = 100
# The recent plugin log records `pdk status` shows (the log import, stdout/stderr, log commands).
STATUS_LOGS = 20
STATUS_LOG_SOURCES = ("log", "stdout", "stderr", "command")
SEND_NO_CONNECTIONS = (
    "pdk send has no connections: websocket_send needs a live WebSocket connection; "
    "run the plugin with `pdk run` or `pdk dev` to send on its connections"
)


# ============================================================================ parsers


def _add_plugin_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", metavar="DIR|PKG", help="plugin directory or .yoi-plugin archive")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--grants", default=None, metavar="FILE", help="grants file (TOML)")
    g.add_argument("--dev-grants", action="store_true", help="grant exactly what plugin.toml declares (development only)")
    p.add_argument("--config", default=None, metavar="JSON", help="the service config: a JSON object, or @FILE (default: the grant's config)")


def _add_control_args(p: argparse.ArgumentParser, *, offline: str | None = None) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--control", default=None, metavar="PATH", help="control socket of a running `pdk run`")
    g.add_argument("--id", default=None, metavar="PLUGIN_ID", help="the plugin id of a running `pdk run` (its default control socket)")
    if offline:
        g.add_argument("--state", default=None, metavar="PATH", help=offline)


_READ_STORE = "read this state store file directly, without a running host (read-only)"


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("send", help="start a service or ingress plugin, deliver events to one ingress, drain, stop")
    _add_plugin_args(p)
    p.add_argument("ingress", metavar="INGRESS")
    p.add_argument("events", nargs="*", metavar="EVENT_JSON|@FILE", help="one event per argument: JSON (sent as a JSON payload), or @FILE; none sends one empty event")
    p.add_argument("--kind", default=None, help="event kind (default: the ingress's first declared kind)")
    p.add_argument("--text", action="store_true", help="send each event as a text payload instead of JSON")
    p.add_argument("--timeout", type=float, default=SEND_TIMEOUT_S, help=f"seconds to wait for the events to be handled (default {SEND_TIMEOUT_S:g})")
    p.add_argument("--json", action="store_true", help="print a JSON document (with the plugin's \"logs\")")
    p.add_argument("-q", "--quiet", action="store_true", help="do not show the plugin's log records and stdout/stderr (shown on stderr after the results)")
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("run", help="run a service/ingress plugin in the foreground with its timers and HTTP listener")
    _add_plugin_args(p)
    p.add_argument("--http-port", type=int, default=0, metavar="N", help="port of the loopback HTTP ingress listener (default 0: a free port)")
    p.add_argument("--control", default=None, metavar="PATH", help="control socket path (default: in the runtime dir, named after the plugin id)")
    p.add_argument("--drain-deadline", type=float, default=None, metavar="S", help="seconds to drain the queue on stop (default 5)")
    p.add_argument(
        "--state",
        default=None,
        metavar="PATH",
        help="state store (SQLite) keeping accepted events, dead letters and emitted events across restarts "
        "(default: $XDG_STATE_HOME/yoi-pdk/<plugin-id>/state.sqlite3); :memory: keeps nothing",
    )
    p.add_argument("--state-sync", choices=("normal", "full"), default="normal", help="normal: survives a crash of the process; full: also a power loss, slower (docs/runtime.md)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the banner and the summary, not a line per lifecycle change, connection change, event, command and log record")
    p.add_argument("--json", action="store_true", help="print JSON lines (one object per line, with a \"type\") instead of text")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="print the status of a running `pdk run` (or of a state store: --state)")
    _add_control_args(p, offline=_READ_STORE)
    p.add_argument("--json", action="store_true", help="print the status document")
    p.add_argument("--refresh", action="store_true", help="ask the running host to read the plugin's own status (its status export) now")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("dead-letters", help="list the dead letters of a running `pdk run` (or of a state store: --state)")
    _add_control_args(p, offline=_READ_STORE)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dead_letters)

    p = sub.add_parser("replay", help="queue a dead letter of a running `pdk run` again (or, with --state, make it pending for the next run)")
    p.add_argument("dead_letter_id", metavar="ID")
    _add_control_args(
        p,
        offline="without a running host: turn the dead letter back into a pending event in this state store file; "
        "the next `pdk run --state PATH` delivers it",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_replay)


# ============================================================================ shared


def _read_arg(raw: str, what: str) -> str:
    if not raw.startswith("@"):
        return raw
    path = Path(raw[1:])
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {what} file {path}: {exc}") from None


def _config(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    text = _read_arg(raw, "config")
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UserError(f"--config is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UserError("--config must be a JSON object")
    return value


def _runtime(plugin: Any, args: argparse.Namespace, options: Any = None, *, state: Any = None, state_sync: str = "normal") -> Any:
    """The runtime; `state` None keeps nothing (`pdk send`), else a store path."""
    from pdk.host.runtime import ServiceRuntime
    from pdk.host.runtime.store import StoreError

    try:
        return ServiceRuntime(plugin, _config(args.config), options, state=state, state_sync=state_sync)
    except ValueError as exc:  # a tool-only plugin
        raise UserError(f"{exc}; use `pdk call` for tools") from None
    except StoreError as exc:  # corrupt, locked, read-only: the file is left as it is
        raise UserError(exc.message) from None


def _state_path(args: argparse.Namespace, plugin_id: str) -> str:
    from pdk.host.runtime.store import default_state_path

    return str(args.state) if args.state else str(default_state_path(plugin_id))


def _started(rt: Any, doc: dict[str, Any]) -> None:
    """Raise `UserError` when the runtime did not reach `running`."""
    lifecycle = doc["lifecycle"]
    if lifecycle["state"] != "running":
        error = lifecycle.get("last_error") or {}
        raise UserError(f"{rt.manifest.id} failed to start: {error.get('code', 'failed')}: {error.get('message', lifecycle['state'])}")


# ============================================================================ send


@dataclass
class _Sent:
    index: int
    payload: Any
    event_id: str | None = None
    refusal: dict[str, Any] | None = None
    outcome: dict[str, Any] | None = None
    emitted: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome is not None and self.outcome["outcome"] == "handled"

    def to_json(self) -> dict[str, Any]:
        from pdk.host.runtime.model import payload_preview

        return {
            "index": self.index,
            "payload": payload_preview(self.payload),
            "accepted": self.event_id is not None,
            "event_id": self.event_id,
            "refusal": self.refusal,
            "outcome": self.outcome,
            "emitted": self.emitted,
        }


def _payloads(args: argparse.Namespace) -> list[Any]:
    from pdk.host.codec import Case

    if not args.events:
        return [Case("empty", None)]
    out = []
    for raw in args.events:
        text = _read_arg(raw, "event")
        if args.text:
            out.append(Case("text", text))
            continue
        try:
            json.loads(text)
        except ValueError as exc:
            where = raw if raw.startswith("@") else "an event"
            raise UserError(f"{where} is not valid JSON: {exc} (pass JSON such as '{{\"a\": 1}}', @file.json, or --text)") from None
        out.append(Case("json", text))
    return out


def _check_ingress(rt: Any, ingress: str, kind: str | None) -> str:
    decl = next((d for d in rt.manifest.ingresses if d.name == ingress), None)
    if decl is None:
        known = ", ".join(d.name for d in rt.manifest.ingresses) or "none"
        raise UserError(f"{rt.manifest.id} has no ingress {ingress!r} (ingresses: {known})")
    if kind is None:
        return str(decl.event_kinds[0])
    if kind not in decl.event_kinds:
        raise UserError(f"ingress {ingress!r} takes no events of kind {kind!r} (kinds: {', '.join(decl.event_kinds)})")
    return kind


def _submit_waiting(rt: Any, ingress: str, kind: str, payload: Any, deadline: float) -> Any:
    """Submit; a full queue is waited out (this sender can wait), anything else returned."""
    from pdk.host.runtime import Refused

    while True:
        result = rt.submit(ingress, kind, payload, source="manual")
        if not (isinstance(result, Refused) and result.reason == "queue_full") or time.monotonic() >= deadline:
            return result
        time.sleep(min(1.0, max(0.01, result.retry_after_s or 0.05)))


def cmd_send(args: argparse.Namespace) -> int:
    from pdk.host import Host
    from pdk.host.progress import step
    from pdk.host.runtime import Refused

    payloads = _payloads(args)
    from ._dev import serve_send

    served = serve_send(args)  # `pdk dev` of this directory is running: it answers
    if served is not None:
        return served
    progress = progress_renderer()
    with Host(compile="tiered", upgrade="process", progress=progress) as host:
        plugin = _load_plugin(host, args)
        mark = plugin.diagnostics.mark()
        rt = _runtime(plugin, args)
        kind = _check_ingress(rt, args.ingress, args.kind)
        rt.register_executor("websocket_send", _no_connections)
        finals: dict[str, dict[str, Any]] = {}
        rt.on_outcome(lambda record: finals.__setitem__(record["event_id"], record))
        with step(progress, "start", f"starting {rt.manifest.id}", show_after_s=1.0):
            start_doc = rt.start()
        if start_doc["lifecycle"]["state"] != "running":
            rt.stop()
            logs, dropped = guest_logs(plugin.diagnostics, mark)
            if args.json:
                _print_json({"ok": False, "plugin": start_doc["plugin"], "start": start_doc["lifecycle"], "events": [], "logs": logs})
                return EXIT_USER
            if not args.quiet:
                print_logs(logs, dropped)
            _started(rt, start_doc)
        deadline = time.monotonic() + args.timeout
        sent = [_Sent(i, payload) for i, payload in enumerate(payloads)]
        for item in sent:
            result = _submit_waiting(rt, args.ingress, kind, item.payload, deadline)
            if isinstance(result, Refused):
                item.refusal = result.to_json()
            else:
                item.event_id = result.event_id
        drained = rt.wait_idle(max(0.0, deadline - time.monotonic()))
        stop_doc = rt.stop()  # dead-letters (reason `stopping`) whatever did not finish
        emitted = rt.emitted()
        for item in sent:
            if item.event_id is not None:
                item.outcome = finals.get(item.event_id)
                item.emitted = [r for r in emitted if r["event_id"] == item.event_id]
        logs, dropped = guest_logs(plugin.diagnostics, mark)
    ok = all(item.ok for item in sent)
    if args.json:
        _print_json(
            {
                "ok": ok,
                "plugin": stop_doc["plugin"],
                "ingress": args.ingress,
                "kind": kind,
                "drained": drained,
                "events": [item.to_json() for item in sent],
                "counters": stop_doc["counters"],
                "lifecycle": stop_doc["lifecycle"],
                "logs": logs,
            }
        )
    else:
        for item in sent:
            print(view.sent_event(args.ingress, kind, item.to_json()))
        if not drained:
            print(f"pdk send: not drained within {args.timeout:g} s; the rest was dead-lettered on stop", file=sys.stderr)
        print(view.send_summary(sent_docs=[item.to_json() for item in sent]))
        if not args.quiet:
            sys.stdout.flush()  # the results first, then the plugin's words
            print_logs(logs, dropped)
    return EXIT_OK if ok else EXIT_USER


def _no_connections(context: Any) -> Any:
    """`websocket_send` under `pdk send`: there is no connection to send on."""
    from pdk.host.runtime import Execution

    return Execution("unsupported", SEND_NO_CONNECTIONS)


# ============================================================================ run


class _Dispatch:
    """The control socket's operations on one runtime."""

    def __init__(self, rt: Any, started_ms: int) -> None:
        self.rt = rt
        self.started_ms = started_ms

    def __call__(self, request: dict[str, Any]) -> Any:
        from pdk.host.control import ControlError
        from pdk.limits import EMIT_LOG_MAX

        op = request["op"]
        if op == "ping":
            return {"plugin": self.rt.manifest.id, "pid": os.getpid(), "started_ms": self.started_ms}
        if op == "status":
            doc = self.rt.status(refresh=bool(request.get("refresh")))
            records = self.rt.plugin.diagnostics.since(0, STATUS_LOG_SOURCES)[-STATUS_LOGS:]
            return {**doc, "logs": [r.to_json() for r in records]}
        if op == "dead_letters":
            return self.rt.dead_letters()
        if op == "outcomes":
            return self.rt.outcomes()
        if op == "emitted":
            topic, limit = request.get("topic"), request.get("limit", EMITTED_DEFAULT_LIMIT)
            if topic is not None and not isinstance(topic, str):
                raise ControlError("bad_request", '"topic" must be a string')
            if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= EMIT_LOG_MAX:
                raise ControlError("bad_request", f'"limit" must be an integer from 1 to {EMIT_LOG_MAX}')
            return self.rt.emitted(topic)[-limit:]
        if op == "replay":
            letter_id = request.get("id")
            if not isinstance(letter_id, str) or not letter_id:
                raise ControlError("bad_request", 'replay needs "id": a dead letter id')
            try:
                return self.rt.replay(letter_id).to_json()
            except KeyError:
                raise ControlError("not_found", f"no dead letter {letter_id!r}") from None
        raise ControlError("unknown_op", f"unknown op {op!r} (ops: ping, status, dead_letters, replay, emitted, outcomes)")


class _Stopper:
    """SIGINT/SIGTERM set an event the foreground loop waits on."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: str | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Stopper:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signal = signal.Signals(signum).name
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _say(line: str) -> None:
    print(line, flush=True)


class _Live:
    """`pdk run`'s live lines: a runtime observer (pdk/host/runtime/observer.py) that
    only queues what happened; the foreground thread prints it, in order, as text
    (control characters escaped) or as JSON lines (`{"type": ..., ...}`).

    Log records of the source `command` are not repeated: the log command's result
    line carries its message. Lifecycle changes before the banner are not printed
    (the banner says the state)."""

    def __init__(self, plugin_id: str, *, json_lines: bool, quiet: bool) -> None:
        from pdk.host.runtime.observer import RuntimeObserver

        self.plugin_id = plugin_id
        self.json_lines = json_lines
        self.quiet = quiet
        self.items: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue(LIVE_QUEUE_MAX)
        self.started = False
        self.dropped = 0
        live = self

        def put(kind: str, doc: dict[str, Any]) -> None:
            try:
                live.items.put_nowait((kind, doc))
            except queue.Full:
                live.dropped += 1

        class Observer(RuntimeObserver):
            def lifecycle_changed(self, state: str, last_error: dict[str, Any] | None) -> None:
                put("lifecycle", {"state": state, "last_error": last_error})

            def outcome(self, record: dict[str, Any]) -> None:
                put("outcome", record)

            def command_result(self, result: dict[str, Any]) -> None:
                put("command", result)

            def connection_changed(self, connection: dict[str, Any]) -> None:
                put("connection", connection)

            def log_record(self, record: dict[str, Any]) -> None:
                if record.get("source") not in ("command", "websocket"):  # said by the command and connection lines
                    put("log", record)

        self.observer = Observer()

    def line(self, kind: str, doc: dict[str, Any]) -> str:
        if self.json_lines:
            return json.dumps({"type": kind, **doc}, ensure_ascii=False, separators=(",", ":"), default=str)
        if kind == "lifecycle":
            return view.lifecycle_line(self.plugin_id, doc["state"], doc.get("last_error"))
        if kind == "outcome":
            return view.outcome_line(doc)
        if kind == "command":
            return view.command_line(doc)
        if kind == "connection":
            return view.connection_line(doc)
        return view.log_line(doc)

    def say(self, text: str, kind: str = "message", doc: dict[str, Any] | None = None) -> None:
        """A banner or summary line: text, or a JSON line of `doc`."""
        if self.json_lines:
            print(json.dumps({"type": kind, **(doc or {"text": text})}, ensure_ascii=False, separators=(",", ":"), default=str), flush=True)
        else:
            print(text, flush=True)

    def flush(self, timeout_s: float = 0.0) -> None:
        """Print what is queued (waiting up to `timeout_s` for a first item)."""
        try:
            item = self.items.get(timeout=timeout_s) if timeout_s > 0 else self.items.get_nowait()
        except queue.Empty:
            return
        if self.dropped:
            dropped, self.dropped = self.dropped, 0
            print(json.dumps({"type": "dropped", "lines": dropped}) if self.json_lines else f"({dropped} live lines dropped: the output did not keep up)", flush=True)
        while True:
            kind, doc = item
            skip = self.quiet or (kind == "lifecycle" and not self.started and doc["state"] in ("starting", "running"))
            if not skip:
                text = self.line(kind, doc)
                print(text if self.json_lines else for_terminal(text), flush=True)
            try:
                item = self.items.get_nowait()
            except queue.Empty:
                return


def cmd_run(args: argparse.Namespace) -> int:
    from pdk.host import Host
    from pdk.host.progress import step
    from pdk.host.control import ControlError, ControlServer, default_control_path
    from pdk.host.sources import HttpIngressServer, RouteConflict, has_http_ingress, timers_for, websocket_driver_for

    started = time.monotonic()
    progress = progress_renderer()
    # A long-running host: fast-tier code at once, optimized code compiled by a thread.
    with Host(compile="tiered", upgrade="thread", progress=progress) as host, _Stopper() as stopper:
        plugin = _load_plugin(host, args)
        _refuse_if_running(Path(args.control) if args.control else default_control_path(plugin.manifest.id))
        rt = _runtime(plugin, args, state=_state_path(args, plugin.manifest.id), state_sync=args.state_sync)
        live = _Live(rt.manifest.id, json_lines=args.json, quiet=args.quiet)
        rt.observe(live.observer)  # before the sources: their first connection states are seen
        try:
            timers = timers_for(rt)
            websocket = websocket_driver_for(rt)  # registers its executor and sources now
            http = HttpIngressServer([rt], "127.0.0.1", args.http_port) if has_http_ingress(rt) else None
        except RouteConflict as exc:
            raise UserError(str(exc)) from None
        except OSError as exc:
            raise UserError(f"cannot listen on 127.0.0.1:{args.http_port}: {exc.strerror or exc}") from None
        control_path = Path(args.control) if args.control else default_control_path(rt.manifest.id)
        try:
            control = ControlServer(control_path, _Dispatch(rt, int(time.time() * 1000)))
        except ControlError as exc:
            if http is not None:
                http.stop()
            raise UserError(exc.message) from None
        try:
            with step(progress, "start", f"starting {rt.manifest.id}", show_after_s=1.0):
                doc = rt.start()
            _started(rt, doc)
            if http is not None:
                http.start()
            for timer in timers:
                timer.start()
            if websocket is not None:
                websocket.start()  # dials in the background; never blocks
            if args.json:
                live.say("", "started", {"plugin": doc["plugin"]["id"], "state": doc["lifecycle"]["state"],
                                          "http": http.url if http is not None else None, "control": str(control_path)})
            else:
                for line in view.run_banner(rt, doc, http, timers, control_path, websocket):
                    _say(line)
            live.flush()  # what starting said (its lifecycle lines are the banner's first line)
            live.started = True
            _foreground(live, stopper)
        finally:
            # Intake first (no new events), then drain the queue, then the socket.
            if http is not None:
                http.stop()
            for timer in timers:
                timer.stop()
            if websocket is not None:
                websocket.stop()  # clean close (1001), no events
            final = rt.close(args.drain_deadline) if args.drain_deadline is not None else rt.close()
            control.close()
            live.started = True
            live.flush()  # what the drain and the stop did
    summary = view.run_summary(final, time.monotonic() - started, stopper.signal)
    live.say(summary, "stopped", {"plugin": final["plugin"]["id"], "state": final["lifecycle"]["state"], "signal": stopper.signal,
                                   "counters": final["counters"], "text": summary})
    return EXIT_OK if final["lifecycle"]["state"] == "stopped" else EXIT_USER


def _refuse_if_running(control_path: Path) -> None:
    """A host of this plugin already answers: say so before its state store (which
    it holds) is reported as locked."""
    from pdk.host.control import ControlError, ControlUnavailable, call

    if not control_path.is_socket():
        return
    try:
        call(control_path, {"op": "ping"}, timeout_s=2.0)
    except ControlUnavailable:
        return  # stale; the control server removes it
    except ControlError:
        pass
    raise UserError(f"another host is already running at {control_path}")


def _foreground(live: _Live, stopper: _Stopper) -> None:
    """Print the live lines until Ctrl-C/SIGTERM."""
    while not stopper.event.is_set():
        live.flush(timeout_s=0.2)


# ============================================================================ control clients


def _control_path(args: argparse.Namespace) -> Path:
    from pdk.host.control import control_dir, default_control_path, running_sockets

    if args.control:
        return Path(args.control)
    if args.id:
        return default_control_path(args.id)
    found = running_sockets()
    if not found:
        raise UserError(f"nothing is running: no control socket in {control_dir()} (start one with `pdk run`)")
    if len(found) > 1:
        ids = ", ".join(p.name.removesuffix(".sock") for p in found)
        raise UserError(f"several hosts are running ({ids}); pick one with --id or --control")
    return found[0]


def _ask(args: argparse.Namespace, request: dict[str, Any]) -> Any:
    from pdk.host.control import ControlError, ControlUnavailable, call

    path = _control_path(args)
    try:
        return call(path, request)
    except ControlUnavailable as exc:
        raise UserError(str(exc)) from None
    except ControlError as exc:
        raise UserError(f"{exc.code}: {exc.message}") from None


def _inspect(args: argparse.Namespace) -> dict[str, Any]:
    """`--state PATH`: the store read directly (read-only), without a running host."""
    from pdk.host.runtime.store import StoreError, inspect_store

    try:
        return inspect_store(args.state)
    except StoreError as exc:
        hint = " (a running host holds it: ask it with --id or --control instead)" if exc.code == "locked" else ""
        raise UserError(exc.message + hint) from None


def cmd_status(args: argparse.Namespace) -> int:
    if getattr(args, "state", None):
        seen = _inspect(args)
        seen.pop("dead_letter_list")
        if args.json:
            _print_json(seen)
        else:
            print("\n".join(view.store_lines(seen)))
        return EXIT_OK
    doc = _ask(args, {"op": "status", "refresh": True} if args.refresh else {"op": "status"})
    if args.json:
        _print_json(doc)
    else:
        print("\n".join(view.status_lines(doc)))
    return EXIT_OK


def cmd_dead_letters(args: argparse.Namespace) -> int:
    letters = _inspect(args)["dead_letter_list"] if getattr(args, "state", None) else _ask(args, {"op": "dead_letters"})
    if args.json:
        _print_json(letters)
    else:
        print("\n".join(view.dead_letter_lines(letters)))
    return EXIT_OK


def _replay_offline(args: argparse.Namespace) -> int:
    """`pdk replay ID --state PATH`: the dead letter becomes a pending event in the store."""
    from pdk.host.runtime.store import StoreError, replay_offline

    try:
        done = replay_offline(args.state, args.dead_letter_id)
    except StoreError as exc:
        hint = " (a running host holds it: replay through it with --id or --control instead)" if exc.code == "locked" else ""
        raise UserError(exc.message + hint) from None
    except KeyError:
        raise UserError(f"no dead letter {args.dead_letter_id!r} in the state store {args.state} (list them with `pdk dead-letters --state {args.state}`)") from None
    if args.json:
        _print_json(done)
    else:
        print(
            f"replayed {args.dead_letter_id} as event {done['event_id']}: pending in {args.state} "
            f"({done['pending']} pending); the next `pdk run --state` delivers it"
        )
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    if getattr(args, "state", None):
        return _replay_offline(args)
    result = _ask(args, {"op": "replay", "id": args.dead_letter_id})
    if args.json:
        _print_json(result)
    elif result.get("accepted"):
        print(f"replayed {args.dead_letter_id} as event {result['event_id']}")
    else:
        print(for_terminal(f"pdk replay: refused ({result.get('reason')}): {result.get('message')}"), file=sys.stderr)
    return EXIT_OK if result.get("accepted") else EXIT_USER
