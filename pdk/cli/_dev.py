"""`pdk dev DIR`: a development host for one plugin that reloads it when its sources
or plugin.toml change, and serves `pdk call` / `pdk send` / `pdk status` for that
directory through its control socket.

By default a reload runs on the dev runner (generator/dev_runner.py, pdk/_dev_runner.py,
pdk/host/dev_runner.py): the host-side checks of `pdk build` (syntax, imports, the
schemas re-derived from the code, plugin.toml's [[tools]] updated on drift), then the
sources handed to a fresh instance of a prebuilt runner component - no componentize-py
build and no compile. A change the runner cannot run (a module it did not preload) is
reloaded with a real build instead, as `--real-build` always does: `pdk build`, a
fast-tier (Winch) compile and a swap. Either way the plugin runs in the same host under
the same grants, limits, queue and command checks as `pdk run`. What it costs and
where the dev runner can differ from a real build: docs/dev.md. A broken edit
(syntax error, failed import, schema problem, refused component) is printed and the
previous version keeps serving."""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pdk._terminal import for_terminal

from . import _runtime_view as view
from ._exit import EXIT_OK, EXIT_USER
from ._plugin_cmds import UserError, _load_plugin, progress_renderer

POLL_S = 0.1  # how often the sources' mtimes are read (a reload waits for one quiet poll)
WATCH_SKIP_DIRS = frozenset({"build", "tests", ".venv", "venv", "__pycache__", ".git", ".pytest_cache", ".mypy_cache"})
SERVED_TIMEOUT_S = 300.0  # a served call may wait for a reload's swap (a compile) before it runs
PING_TIMEOUT_S = 1.0
DEV_HELP = (
    "Run one plugin for development: watch its *.py sources (not build/, tests/, .venv) and plugin.toml, "
    "and on every saved change check it as `pdk build` does (syntax, imports, schemas re-derived from the code, "
    "plugin.toml [[tools]] updated on drift) and hand the new sources to a fresh instance of the dev runner: a "
    "component built once per dependency set with the PDK and the standard library preloaded, so a reload takes "
    "well under a second, still inside the wasm sandbox under the plugin's grants and limits. A change the runner "
    "cannot run (a module it did not preload) is reloaded with a real build; --real-build always reloads with "
    "`pdk build` plus a fast-tier (Winch) compile (see docs/dev.md). While it runs, `pdk call DIR ...`, "
    "`pdk send DIR ...` and `pdk status` are served by it through its control socket. A broken edit is reported "
    "(file:line) and the previous version keeps serving. Security: like `pdk build`, it imports the project's code "
    "in a normal Python process."
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("dev", help="watch a plugin's sources; rebuild and hot-swap it on every save (development host)", description=DEV_HELP)
    p.add_argument("path", nargs="?", default=".", metavar="DIR", help="the plugin project directory (default: the current directory)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--grants", default=None, metavar="FILE", help="grants file (TOML)")
    g.add_argument("--dev-grants", action="store_true", help="grant exactly what plugin.toml declares (development only)")
    p.add_argument("--config", default=None, metavar="JSON", help="the service config: a JSON object, or @FILE (default: the grant's config)")
    p.add_argument("--http-port", type=int, default=0, metavar="N", help="port of the loopback HTTP ingress listener (default 0: a free port, kept across reloads)")
    p.add_argument("--control", default=None, metavar="PATH", help="control socket path (default: in the runtime dir, named after the plugin id)")
    p.add_argument("--real-build", action="store_true", help="reload with a real `pdk build` and a fast-tier compile instead of the dev runner (slower; exactly the built component)")
    p.set_defaults(func=cmd_dev)


# ============================================================================ watching


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """The watched files (relative path -> (mtime_ns, size)): `*.py` outside the
    skipped directories, and plugin.toml."""
    seen: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in WATCH_SKIP_DIRS and not d.startswith(".")]
        for name in filenames:
            if not name.endswith(".py") and not (name == "plugin.toml" and Path(dirpath) == root):
                continue
            full = Path(dirpath) / name
            try:
                st = full.stat()
            except OSError:
                continue
            seen[str(full.relative_to(root))] = (st.st_mtime_ns, st.st_size)
    return seen


def changes(old: dict[str, tuple[int, int]], new: dict[str, tuple[int, int]]) -> list[str]:
    """What changed between two snapshots, as `path`, `path (new)`, `path (deleted)`."""
    out = [p for p in sorted(new) if p in old and old[p] != new[p]]
    out += [f"{p} (new)" for p in sorted(new) if p not in old]
    out += [f"{p} (deleted)" for p in sorted(old) if p not in new]
    return out


# ============================================================================ the session


class _Broken(Exception):
    """A new version that does not load (its import failed on the dev runner)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class _Reload:
    version: int
    changed: list[str]
    ok: bool
    seconds: float
    at_ms: int
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "changed": self.changed, "ok": self.ok, "seconds": round(self.seconds, 3), "at_ms": self.at_ms, "error": self.error}


@dataclass
class _Service:
    """`pdk run`'s parts for one loaded version of a service/ingress plugin."""

    rt: Any
    http: Any = None
    timers: list[Any] = field(default_factory=list)
    websocket: Any = None

    def stop(self) -> dict[str, Any]:
        if self.http is not None:
            self.http.stop()
        for timer in self.timers:
            timer.stop()
        if self.websocket is not None:
            self.websocket.stop()
        doc: dict[str, Any] = self.rt.close()
        return doc


class DevSession:
    """The loaded version of one plugin, swapped under a lock on every good reload."""

    def __init__(self, host: Any, args: argparse.Namespace, root: Path) -> None:
        self.host = host
        self.args = args
        self.root = root
        self.lock = threading.RLock()  # held by calls and by a swap, never by a build
        self.lines: queue.Queue[str] = queue.Queue()
        self.plugin: Any = None
        self.service: _Service | None = None
        self.live: Any = None
        self.http_port = int(args.http_port)
        self.version = 0
        self.mode = "build" if getattr(args, "real_build", False) else "runner"
        self.serving = self.mode  # how the serving version was loaded: "runner" or "build"
        self.runner_key: str | None = None
        self.reloads: list[_Reload] = []
        self.started_ms = int(time.time() * 1000)
        self._finals: dict[str, dict[str, Any]] = {}
        self._finals_cv = threading.Condition()

    # ---------------------------------------------------------------- loading

    @property
    def plugin_id(self) -> str:
        return str(self.plugin.manifest.id)

    def _is_service(self, plugin: Any) -> bool:
        return str(plugin.manifest.runtime.world) != "tool"

    def _start_service(self, plugin: Any) -> _Service:
        from pdk.host.sources import HttpIngressServer, RouteConflict, has_http_ingress, timers_for, websocket_driver_for

        from ._runtime_cmds import _runtime, _started

        rt = _runtime(plugin, self.args)  # keeps nothing across reloads (docs/dev.md)
        if self.live is not None:
            rt.observe(self.live.observer)
        rt.on_outcome(self._outcome)
        svc = _Service(rt)
        try:
            svc.timers = timers_for(rt)
            svc.websocket = websocket_driver_for(rt)
            svc.http = HttpIngressServer([rt], "127.0.0.1", self.http_port) if has_http_ingress(rt) else None
        except RouteConflict as exc:
            rt.close()
            raise UserError(str(exc)) from None
        except OSError as exc:
            rt.close()
            raise UserError(f"cannot listen on 127.0.0.1:{self.http_port}: {exc.strerror or exc}") from None
        doc = rt.start()
        try:
            _started(rt, doc)
        except UserError:
            svc.stop()
            raise
        if svc.http is not None:
            self.http_port = svc.http.start()  # the same port on every reload
        for timer in svc.timers:
            timer.start()
        if svc.websocket is not None:
            svc.websocket.start()
        return svc

    def _outcome(self, record: dict[str, Any]) -> None:
        with self._finals_cv:
            self._finals[record["event_id"]] = record
            self._finals_cv.notify_all()

    def first_load(self) -> None:
        from generator.build import build
        from generator.diagnose import BuildError

        plugin = None
        if self.mode == "runner":
            try:
                plugin, _checks_s, problem = self._on_runner(first=True)
            except BuildError as exc:
                raise UserError(exc.message) from None
            if plugin is None:
                self.lines.put(f"pdk dev: {problem}; loading a real build instead")
        if plugin is None:
            try:
                build(self.root, progress=progress_renderer())
            except BuildError as exc:
                raise UserError(exc.message) from None
            plugin = _load_plugin(self.host, self._load_args())
            self.serving = "build"
        else:
            self.host._register(plugin)
            self.serving = "runner"
        self.plugin = plugin
        from ._runtime_cmds import _Live

        if self._is_service(self.plugin):
            self.live = _Live(self.plugin_id, json_lines=False, quiet=False)
            self.service = self._start_service(self.plugin)
            self.live.flush()
            self.live.started = True
        self.version = 1

    def _on_runner(self, *, first: bool = False) -> tuple[Any, float, str | None]:
        """Check the sources and load them on the dev runner, unregistered and probed:
        (plugin, seconds of the checks, None), or (None, seconds, why) when only a real
        build can run them. Raises `BuildError` for an author error (a syntax error,
        a failed introspection, a schema problem) and `_Broken` for a version that
        does not load."""
        from generator.dev_runner import ensure_runner, prepare
        from pdk.host.dev_runner import load_with_runner, probe

        started = time.monotonic()
        prepared = prepare(self.root)
        if prepared.manifest_updated and not first:
            self.lines.put(f"pdk dev: schema drift: plugin.toml [[tools]] re-derived from the code and updated ({', '.join(prepared.tools)})")
        checks_s = time.monotonic() - started
        runner = ensure_runner(self.root, progress=progress_renderer())
        if runner.built and not first:
            self.lines.put(f"pdk dev: built a new dev runner for the changed dependency set in {runner.seconds:.1f}s")
        self.runner_key = runner.key
        plugin = load_with_runner(self.host, self.root, runner.path, prepared.bundle, grants=self.args.grants, dev_grants=self.args.dev_grants, register=False, announce=first)
        if not first and plugin.manifest.id != self.plugin_id:
            plugin.close()
            raise _Broken(f"the plugin id changed ({self.plugin_id} -> {plugin.manifest.id}): restart `pdk dev`")
        found = probe(plugin)
        if found.loaded:
            return plugin, checks_s, None
        plugin.close()
        if found.needs_build:
            return None, checks_s, found.error
        raise _Broken(found.error or "the sources did not load")

    def _load_args(self) -> argparse.Namespace:
        return argparse.Namespace(path=str(self.root), grants=self.args.grants, dev_grants=self.args.dev_grants)

    def reload(self, changed: list[str]) -> _Reload:
        """Check and load the new version (on the dev runner, or by a real build), then
        swap it in. On any failure the loaded version stays."""
        from generator.build import build
        from generator.diagnose import BuildError
        from pdk.host import GrantsError, PluginRefused
        from pdk.host.loader import open_package
        from pdk.package import PackageError
        from pdk.package.manifest import ManifestError

        started = time.monotonic()
        version = self.version + 1

        def failed(message: str) -> _Reload:
            r = _Reload(version, changed, False, time.monotonic() - started, int(time.time() * 1000), message)
            self.reloads.append(r)
            return r

        if self.mode == "runner":
            try:
                plugin, checks_s, problem = self._on_runner()
            except BuildError as exc:
                return failed(exc.message)
            except _Broken as exc:
                return failed(exc.message)
            except (PackageError, ManifestError, GrantsError, PluginRefused) as exc:
                return failed(str(exc))
            except Exception as exc:  # an I/O error, a runner build that failed: reported, the old one serves
                return failed(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            if plugin is not None:
                error = self._swap(plugin)
                if error is not None:
                    return failed(error)
                r = _Reload(version, changed, True, time.monotonic() - started, int(time.time() * 1000))
                self.reloads.append(r)
                self.serving = "runner"
                self.lines.put(f"pdk dev: reloaded v{version} ({', '.join(changed)}) in {r.seconds:.2f}s (checks {checks_s:.2f}s, load+swap {r.seconds - checks_s:.2f}s; dev runner)")
                return r
            _say(f"pdk dev: {problem}; reloading with a real build")
        try:
            result = build(self.root, progress=progress_renderer())
            if result.manifest_updated:
                self.lines.put(f"pdk dev: schema drift: plugin.toml [[tools]] re-derived from the code and updated ({', '.join(result.tools)})")
            built_s = time.monotonic() - started
            package = open_package(self.root)
            if package.manifest.id != self.plugin_id:
                return failed(f"the plugin id changed ({self.plugin_id} -> {package.manifest.id}): restart `pdk dev`")
            self.host.inspect(package)  # compile now (fast tier), outside the lock: the swap below is quick
        except BuildError as exc:
            return failed(exc.message)
        except (PackageError, ManifestError) as exc:
            return failed(str(exc))
        except Exception as exc:  # a component wasmtime refuses, an I/O error: reported, the old one serves
            return failed(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        with self.lock:
            old_service = self.service
            if old_service is not None:
                old_service.stop()
                self.service = None
            try:
                plugin = self.host.load(self.root, grants=self.args.grants, dev_grants=self.args.dev_grants)
            except (ManifestError, PackageError, GrantsError, PluginRefused, UserError) as exc:
                if old_service is not None:  # the previous version serves again
                    try:
                        self.service = self._start_service(self.plugin)
                    except UserError as again:
                        self.lines.put(f"pdk dev: the previous version did not start again: {again}")
                return failed(str(exc))
            # Loaded: the host has closed the previous instance, so this version is the one now.
            self.plugin = plugin
            self.version = version
            if self._is_service(plugin):
                try:
                    self.service = self._start_service(plugin)
                except UserError as exc:
                    return failed(f"{exc} (the service is not running: save a fix)")
        r = _Reload(version, changed, True, time.monotonic() - started, int(time.time() * 1000))
        r.error = None
        self.reloads.append(r)
        self.serving = "build"
        self.lines.put(f"pdk dev: reloaded v{version} ({', '.join(changed)}) in {r.seconds:.2f}s (build {built_s:.2f}s, compile+swap {r.seconds - built_s:.2f}s; real build)")
        return r

    def _swap(self, plugin: Any) -> str | None:
        """Make the loaded, probed `plugin` the serving version (None), or say why its
        service did not start (it is loaded all the same: save a fix)."""
        with self.lock:
            if self.service is not None:
                self.service.stop()
                self.service = None
            self.host._register(plugin)
            self.plugin = plugin
            self.version += 1
            if self._is_service(plugin):
                try:
                    self.service = self._start_service(plugin)
                except UserError as exc:
                    return f"{exc} (the service is not running: save a fix)"
        return None

    def close(self) -> dict[str, Any] | None:
        with self.lock:
            if self.service is not None:
                doc = self.service.stop()
                self.service = None
                return doc
        return None

    # ---------------------------------------------------------------- served operations

    def call(self, tool: str, raw: str) -> dict[str, Any]:
        from ._plugin_cmds import guest_logs

        with self.lock:
            plugin, version = self.plugin, self.version
            mark = plugin.diagnostics.mark()
            started = time.perf_counter()
            result = plugin.call_tool(tool, raw)
            ms = (time.perf_counter() - started) * 1000
            logs, dropped = guest_logs(plugin.diagnostics, mark)
        state = "ok" if result.ok else f"error {result.error.code.value}"
        self.lines.put(f"call {tool} (v{version}): {state} in {ms:.1f} ms: {result.summary}")
        if self.service is None:  # a service's runtime observer prints log records itself
            for line in view.log_lines(logs, dropped):
                self.lines.put(line)
        return {
            "ok": result.ok,
            "summary": result.summary,
            "content": result.content,
            "error": result.error.to_json() if result.error is not None else None,
            "logs": logs,
            "dropped": dropped,
            "version": version,
        }

    def send(self, ingress: str, kind: str | None, payloads: list[Any], timeout_s: float) -> dict[str, Any]:
        from pdk.host.codec import Case
        from pdk.host.runtime import Refused

        from ._plugin_cmds import guest_logs
        from ._runtime_cmds import _check_ingress, _Sent, _submit_waiting

        with self.lock:
            if self.service is None:
                if self._is_service(self.plugin):
                    raise UserError(f"{self.plugin_id} v{self.version} is not running (it failed to start): save a fix")
                raise UserError(f"{self.plugin_id} is a tool plugin: use `pdk call`")
            rt = self.service.rt
            kind = _check_ingress(rt, ingress, kind)
            mark = self.plugin.diagnostics.mark()
        deadline = time.monotonic() + timeout_s
        sent = [_Sent(i, Case(p["case"], p.get("value"))) for i, p in enumerate(payloads)]
        for item in sent:
            result = _submit_waiting(rt, ingress, kind, item.payload, deadline)
            if isinstance(result, Refused):
                item.refusal = result.to_json()
            else:
                item.event_id = result.event_id
        ids = {item.event_id for item in sent if item.event_id is not None}
        with self._finals_cv:
            self._finals_cv.wait_for(lambda: ids <= self._finals.keys(), max(0.0, deadline - time.monotonic()))
            finals = {i: self._finals.pop(i) for i in ids if i in self._finals}
        emitted = rt.emitted()
        for item in sent:
            if item.event_id is not None:
                item.outcome = finals.get(item.event_id)
                item.emitted = [r for r in emitted if r["event_id"] == item.event_id]
        logs, dropped = guest_logs(self.plugin.diagnostics, mark)
        return {"ingress": ingress, "kind": kind, "drained": len(finals) == len(ids), "events": [i.to_json() for i in sent], "logs": logs, "dropped": dropped, "version": self.version}

    def dev_doc(self) -> dict[str, Any]:
        return {
            "dir": str(self.root), "version": self.version, "mode": self.mode, "serving": self.serving,
            "runner": self.runner_key, "reloads": [r.to_json() for r in self.reloads[-10:]],
        }

    def status(self, refresh: bool) -> dict[str, Any]:
        from ._runtime_cmds import STATUS_LOG_SOURCES, STATUS_LOGS

        with self.lock:
            plugin = self.plugin
            records = plugin.diagnostics.since(0, STATUS_LOG_SOURCES)[-STATUS_LOGS:]
            if self.service is not None:
                doc = self.service.rt.status(refresh=refresh)
            else:  # a tool plugin (or a service whose new version failed to start): what `pdk status` prints
                doc = {
                    "plugin": plugin.status(),
                    "lifecycle": {"state": "failed" if self._is_service(plugin) else "running", "since_ms": self.started_ms, "restarts": 0},
                    "queue": {"depth": 0, "capacity": 0, "in_flight": 0},
                    "counters": {"accepted": 0, "handled": 0, "retried": 0, "failed": 0, "dead_lettered": 0, "refused_total": 0, "refused": {}},
                    "commands": {"by_result": {}},
                    "dead_letters": {"count": 0, "capacity": 0},
                }
        return {**doc, "logs": [r.to_json() for r in records], "dev": self.dev_doc()}


class _DevDispatch:
    """The control socket's operations: `pdk run`'s, plus `call` and `send`."""

    def __init__(self, session: DevSession) -> None:
        self.session = session

    def __call__(self, request: dict[str, Any]) -> Any:
        from pdk.host.control import ControlError

        from ._runtime_cmds import _Dispatch

        s = self.session
        op = request["op"]
        try:
            if op == "ping":
                return {"plugin": s.plugin_id, "pid": os.getpid(), "started_ms": s.started_ms, "dev": s.dev_doc()}
            if op == "status":
                return s.status(bool(request.get("refresh")))
            if op == "call":
                tool, raw = request.get("tool"), request.get("input", "{}")
                if not isinstance(tool, str) or not isinstance(raw, str):
                    raise ControlError("bad_request", 'call needs "tool" and "input" (a JSON text)')
                return s.call(tool, raw)
            if op == "send":
                payloads, timeout = request.get("payloads"), request.get("timeout", 60.0)
                if not isinstance(payloads, list) or not all(isinstance(p, dict) and p.get("case") in ("json", "text", "empty") for p in payloads):
                    raise ControlError("bad_request", 'send needs "payloads": [{"case": "json"|"text"|"empty", "value": ...}]')
                if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
                    raise ControlError("bad_request", '"timeout" must be a positive number')
                return s.send(str(request.get("ingress", "")), request.get("kind"), payloads, float(timeout))
            with s.lock:
                service = s.service
            if service is None:
                raise ControlError("unknown_op", f"{s.plugin_id} is a tool plugin: ops ping, status, call")
            return _Dispatch(service.rt, s.started_ms)(request)
        except UserError as exc:
            raise ControlError("bad_request", exc.message) from None


# ============================================================================ the command


def cmd_dev(args: argparse.Namespace) -> int:
    from pdk.host import Host
    from pdk.host.control import ControlError, ControlServer, default_control_path

    from ._runtime_cmds import _refuse_if_running, _Stopper

    started = time.monotonic()
    root = Path(args.path).resolve()
    if not (root / "plugin.toml").is_file():
        raise UserError(f"{root} has no plugin.toml (pass the plugin project directory)")
    with Host(compile="tiered", upgrade="thread", progress=progress_renderer()) as host, _Stopper() as stopper:
        session = DevSession(host, args, root)
        seen = snapshot(root)
        session.first_load()
        seen = snapshot(root)  # the build may have updated plugin.toml
        control_path = Path(args.control) if args.control else default_control_path(session.plugin_id)
        _refuse_if_running(control_path)
        try:
            control = ControlServer(control_path, _DevDispatch(session))
        except ControlError as exc:
            session.close()
            raise UserError(exc.message) from None
        try:
            m = session.plugin.manifest
            _say(f"pdk dev: {m.id} {m.version} ({m.runtime.world}) v1 serving; watching {root} (*.py, plugin.toml)")
            if session.service is not None and session.service.http is not None:
                _say(f"http: {session.service.http.url}")
            _say(f"control: {control_path} (pdk call {args.path} TOOL INPUT | pdk send {args.path} INGRESS EVENT | pdk status)")
            if session.mode == "runner":
                _say("reload: a saved change is checked and its sources handed to a fresh dev-runner instance (no build; `pdk build` and the tests stay the truth); Ctrl-C stops")
            else:
                _say("reload: a saved change rebuilds (componentize-py, cached) and swaps in fast-tier code; Ctrl-C stops")
            _watch(session, stopper, seen)
        finally:
            control.close()
            final = session.close()
            _drain(session)
    if final is not None:
        summary = view.run_summary(final, time.monotonic() - started, stopper.signal)
        _say("pdk dev:" + summary.removeprefix("pdk run:"))
    return EXIT_OK


def _say(line: str) -> None:
    print(for_terminal(line), flush=True)


def _drain(session: DevSession) -> None:
    while True:
        try:
            _say(session.lines.get_nowait())
        except queue.Empty:
            break
    if session.live is not None:
        session.live.flush()


def _watch(session: DevSession, stopper: Any, seen: dict[str, tuple[int, int]]) -> None:
    while not stopper.event.is_set():
        _drain(session)
        stopper.event.wait(POLL_S)
        now = snapshot(session.root)
        if now == seen:
            continue
        # Editors save in steps: wait for one quiet poll before building.
        while not stopper.event.is_set():
            stopper.event.wait(POLL_S)
            later = snapshot(session.root)
            if later == now:
                break
            now = later
        changed = changes(seen, now)
        _say(f"pdk dev: changed: {', '.join(changed)}; {'reloading' if session.mode == 'runner' else 'rebuilding'}")
        try:
            result = session.reload(changed)
        except Exception as exc:  # never lose the serving version to a reload's bug
            result = _Reload(session.version + 1, changed, False, 0.0, int(time.time() * 1000), f"internal error: {type(exc).__name__}: {exc}")
        seen = snapshot(session.root)  # the build may have updated plugin.toml
        _drain(session)
        if not result.ok:
            serving = f"v{session.version} keeps serving" if result.version != session.version else f"v{session.version} is loaded"
            _say(f"pdk dev: reload failed ({result.seconds:.2f}s); {serving}: {result.error}")


# ============================================================================ clients: pdk call / pdk send


def dev_host_for(path: str) -> Path | None:
    """The control socket of a `pdk dev` running for the plugin directory `path`, or None."""
    from pdk.host.control import ControlError, ControlUnavailable, call, default_control_path

    root = Path(path)
    try:
        if not (root / "plugin.toml").is_file():
            return None
        plugin_id = tomllib.loads((root / "plugin.toml").read_text(encoding="utf-8")).get("id")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    if not isinstance(plugin_id, str):
        return None
    try:
        sock = default_control_path(plugin_id)
        if not sock.is_socket():
            return None
        pong = call(sock, {"op": "ping"}, timeout_s=PING_TIMEOUT_S)
    except (ControlUnavailable, ControlError, OSError, ValueError):
        return None
    dev = pong.get("dev") if isinstance(pong, dict) else None
    if not isinstance(dev, dict) or dev.get("dir") != str(root.resolve()):
        return None
    return sock


def _served(sock: Path, request: dict[str, Any]) -> dict[str, Any] | None:
    from pdk.host.control import CONTROL_REQUEST_MAX_BYTES, ControlError, ControlUnavailable, call

    if len(json.dumps(request, separators=(",", ":"), ensure_ascii=False).encode()) >= CONTROL_REQUEST_MAX_BYTES:
        print(f"pdk: the request is larger than the dev host's control socket takes ({CONTROL_REQUEST_MAX_BYTES} bytes); running it here instead", file=sys.stderr)
        return None
    try:
        doc: dict[str, Any] = call(sock, request, timeout_s=SERVED_TIMEOUT_S)
    except ControlUnavailable as exc:
        raise UserError(str(exc)) from None
    except ControlError as exc:
        raise UserError(f"{exc.code}: {exc.message}") from None
    return doc


def serve_call(args: argparse.Namespace, raw: str) -> int | None:
    """`pdk call DIR` while `pdk dev DIR` runs: served by it (exit code), else None."""
    from ._plugin_cmds import print_logs

    sock = dev_host_for(args.path)
    if sock is None:
        return None
    doc = _served(sock, {"op": "call", "tool": args.tool, "input": raw})
    if doc is None:
        return None
    print(f"pdk call: served by `pdk dev` (v{doc.get('version')}, its grants and limits) at {sock}", file=sys.stderr)
    logs, dropped = doc.pop("logs", []), doc.pop("dropped", 0)
    if args.json:
        out = {"summary": doc["summary"], "content": doc["content"], "logs": logs}
        print(json.dumps(out, indent=2, ensure_ascii=False, allow_nan=False))
    elif doc["ok"]:
        print(doc["summary"])
        compact = json.dumps(doc["content"], separators=(",", ":"), ensure_ascii=False)
        if doc["content"] is not None and compact not in doc["summary"]:
            print(json.dumps(doc["content"], indent=2, ensure_ascii=False, allow_nan=False))
    else:
        err = doc.get("error") or {}
        print(f"tool error ({err.get('code')}): {for_terminal(str(err.get('message')))}", file=sys.stderr)
    if not args.json and not getattr(args, "quiet", False):
        print_logs(logs, dropped)
    return EXIT_OK if doc["ok"] else EXIT_USER


def serve_send(args: argparse.Namespace) -> int | None:
    """`pdk send DIR` while `pdk dev DIR` runs: served by it (exit code), else None."""
    from ._plugin_cmds import print_logs
    from ._runtime_cmds import _payloads

    sock = dev_host_for(args.path)
    if sock is None:
        return None
    payloads = [{"case": p.tag, "value": p.value} for p in _payloads(args)]
    doc = _served(sock, {"op": "send", "ingress": args.ingress, "kind": args.kind, "payloads": payloads, "timeout": args.timeout})
    if doc is None:
        return None
    print(f"pdk send: served by `pdk dev` (v{doc.get('version')}, its grants, limits and queue) at {sock}", file=sys.stderr)
    events = doc["events"]
    ok = all(e["outcome"] is not None and e["outcome"]["outcome"] == "handled" for e in events)
    if args.json:
        print(json.dumps({"ok": ok, "ingress": doc["ingress"], "kind": doc["kind"], "drained": doc["drained"], "events": events, "logs": doc["logs"]}, indent=2, ensure_ascii=False))
    else:
        for e in events:
            print(view.sent_event(doc["ingress"], doc["kind"], e))
        print(view.send_summary(sent_docs=events))
        if not args.quiet:
            sys.stdout.flush()
            print_logs(doc["logs"], doc.get("dropped", 0))
    return EXIT_OK if ok else EXIT_USER
