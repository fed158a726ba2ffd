"""Benchmark the reference host against floors measured in the same run.

    python bench/host_bench.py [--calls N] [--loads N] [--work DIR]

`--work DIR` keeps the four built components in DIR and reuses them on the next run
and the compile cache (then the "cold" loads of a rerun are cache hits).

Four components: the PDK-built examples (text-tools: `tool` world, counter-service:
`service` world) and minimal guests of the same worlds built here without the PDK
(bench/minimal_guests.py). For each, on one plain wasmtime-py instance:

  bare     the wasm call itself: `wasmtime_component_func_call` + post_return with
           arguments already lowered, through the fast path's own prebuilt ctypes
           arguments (bench/raw_floor.py: `timed_bare_call`; no conversion)
  fast     pdk.host._fastcall: lower + call + post_return + lift (plain values)
  codec    the plain path: pdk.host.codec + wasmtime-py's own conversion
  raw      wasmtime-py alone, with hand-made Record arguments (no codec)

and through the host (`Host.load`, optimized tier): `call_tool` (tools) or
`PluginInstance.call("events", "handle")` (services), against the bare call of the
host's own live instance. Warm load (compile-cache hit + instantiate, `--loads` per
component after warm-ups, each plugin closed untimed) interleaved load by load with
two floors (bench/raw_floor.py `LoadFloor`): store + instantiate of the code in
memory, and a raw load (deserialize the serialized component + link +
instantiate); then the first load of a component in the host (its code forgotten,
so the compile cache's artifact is deserialized) against the raw load. Medians and
p90. Ratios are against floors of the same run; medians of N calls. Figures only:
nothing here asserts timings. RSS per extra loaded + called instance closes the report.

Host imports: a fifth component (a minimal `tool` guest built here whose `call` makes
`input_json` raw `log.write` calls) on the host's engine, with four linkers: a no-op
import through the host's fast import callback (pdk/host/_fastimport.py; the floor),
a no-op through wasmtime-py's `add_func`, and the host's own `log` import (into its
diagnostics) on the fast path and with `YOI_PDK_CODEC=plain`. Bare calls of 0 and
`IMPORTS_PER_CALL` imports, interleaved call by call; the cost of one import is the
difference over `IMPORTS_PER_CALL`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import textwrap
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from wasmtime.component import Linker, Record, Variant  # noqa: E402

from generator.build import build  # noqa: E402
from minimal_guests import COMPONENTIZE_PY, build_minimal  # noqa: E402
from raw_floor import LoadFloor, noop_linker, raw_instance, timed_bare_call  # noqa: E402
from pdk.host import Host  # noqa: E402
from pdk.host._fastcall import BoundFastCall, bind_export  # noqa: E402
from pdk.host.codec import Case  # noqa: E402
from pdk.host.diagnostics import DiagnosticLog  # noqa: E402
from pdk.host.instance import PluginInstance  # noqa: E402
from pdk.host.linker import HostContext, HostLinker, build_linker  # noqa: E402
from pdk.host._fastcall import ENV_CODEC  # noqa: E402

TOOLS, LIFECYCLE, EVENTS = "yoi:plugin/tools@2.0.0", "yoi:plugin/lifecycle@2.0.0", "yoi:plugin/events@2.0.0"
TOOL = "text_stats"
INPUT = {"text": "the quick brown fox jumps over the lazy dog"}
INPUT_JSON = json.dumps(INPUT, separators=(",", ":"))


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def median_us(fn: Callable[[int], Any], n: int) -> float:
    times = []
    for i in range(n):
        started = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def tool_call(i: int) -> dict[str, Any]:
    return {"tool": TOOL, "input_json": INPUT_JSON, "call_id": f"call-{i}"}


def tool_record(i: int) -> Record:
    record = Record()
    setattr(record, "tool", TOOL)
    setattr(record, "input-json", INPUT_JSON)
    setattr(record, "call-id", f"call-{i}")
    return record


def event(i: int) -> dict[str, Any]:
    return {"id": f"e{i}", "ingress": "inbox", "source": "manual", "kind": "message", "payload": Case("text", "hello"),
            "created_at_ms": 0, "attempt": 1, "correlation_id": None}  # fmt: skip


def event_record(i: int) -> Record:
    record = Record()
    for key, value in (("id", f"e{i}"), ("ingress", "inbox"), ("source", "manual"), ("kind", "message"),
                       ("payload", Variant("text", "hello")), ("created-at-ms", 0), ("attempt", 1), ("correlation-id", None)):  # fmt: skip
        setattr(record, key, value)
    return record


class Floors:
    """bare / fast / codec / raw per-call medians (µs) on one plain wasmtime-py instance,
    and the fast path's three steps timed one by one (`split`). The plain argument
    values are built before the clock starts: what is timed is the call, not the bench."""

    def __init__(self, component_path: Path, service: bool, calls: int) -> None:
        store, lookup = raw_instance(component_path)
        if service:
            start = lookup(LIFECYCLE, "start")
            start(store, "{}")
            start.post_return(store)
        iface, name = (EVENTS, "handle") if service else (TOOLS, "call")
        plain_of, record_of = (event, event_record) if service else (tool_call, tool_record)
        func = lookup(iface, name)
        owner = type("Owner", (), {})()  # bind_export caches converters on this object
        fast = bind_export(owner, (iface, name), func, store, mode="fast")
        plain = bind_export(owner, (iface, name), func, store, mode="plain")
        assert isinstance(fast, BoundFastCall)
        plains = [plain_of(i) for i in range(calls)]
        records = [record_of(i) for i in range(calls)]

        def raw(i: int) -> None:
            func(store, records[i])
            func.post_return(store)

        times: dict[str, list[float]] = {key: [] for key in ("raw", "codec", "fast", "bare", "lower", "invoke", "lift")}
        clock = time.perf_counter

        def timed(key: str, step: Callable[[int], Any]) -> Callable[[int], None]:
            def run(i: int) -> None:
                started = clock()
                step(i)
                times[key].append(clock() - started)

            return run

        def bare(i: int) -> None:
            times["bare"].append(timed_bare_call(fast, fast.lower(plains[i])))

        def split(i: int) -> None:
            t0 = clock()
            token = fast.lower(plains[i])
            t1 = clock()
            raw_result = fast.invoke(token)
            t2 = clock()
            fast.lift(raw_result)
            t3 = clock()
            times["lower"].append(t1 - t0)
            times["invoke"].append(t2 - t1)
            times["lift"].append(t3 - t2)

        fast_step = timed("fast", lambda i: fast(plains[i]))

        def fast_bare_split(i: int) -> None:
            fast_step(i)
            bare(i)
            split(i)

        # raw and codec each in a block of their own (their Python work would evict the
        # fast path's caches); fast, bare and the split interleaved call by call, so a
        # machine whose load changes slows them alike.
        for key, step in (("raw", timed("raw", raw)), ("codec", timed("codec", lambda i: plain(plains[i]))), ("fast", fast_bare_split)):
            for i in range(min(200, calls)):  # a warm-up of its own
                step(i)
            for name in ((key,) if key != "fast" else ("fast", "bare", "lower", "invoke", "lift")):
                times[name].clear()
            for i in range(calls):
                step(i)
        self.us = {key: statistics.median(values) * 1e6 for key, values in times.items()}
        del store


def host_figures(host: Host, plugin_dir: Path, service: bool, calls: int) -> dict[str, float]:
    """Per-call medians (µs) through the host, and the bare call of its own instance."""
    plugin = host.load(plugin_dir, dev_grants=True)
    instance = plugin.instance
    if service:
        instance.call(LIFECYCLE, "start", "{}")
        host_step: Callable[[int], Any] = lambda i: instance.call(EVENTS, "handle", event(i))  # noqa: E731
        iface, name, plain_of = EVENTS, "handle", event
    else:
        host_step = lambda i: plugin.call_tool(TOOL, INPUT)  # noqa: E731
        iface, name, plain_of = TOOLS, "call", tool_call
        assert plugin.call_tool(TOOL, INPUT).ok
    for i in range(min(200, calls)):
        host_step(i)
    host_us = median_us(host_step, calls)
    live = instance._live
    assert live is not None
    _func, caller = instance._func(live, iface, name)
    live.store.set_epoch_deadline(1 << 30)
    bare = [timed_bare_call(caller, caller.lower(plain_of(i))) for i in range(calls)]
    return {"host": host_us, "bare": statistics.median(bare) * 1e6, "tier": plugin.tier}  # type: ignore[dict-item]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load_figures(host: Host, plugin_dir: Path, component_path: Path, tmp: Path, loads: int) -> dict[str, list[float]]:
    """Warm loads (seconds) interleaved load by load with their floors
    (raw_floor.LoadFloor), after warm-ups:

      host         Host.load(dev_grants=True) + instance.warm() of a component this
                   host already has in memory (a compile-cache hit)
      instantiate  the floor: store + instantiate of the component in memory
      full         the raw load: deserialize + link + instantiate
      host_file    the first load of the component in this host: its in-memory code
                   is forgotten first (untimed), so the load deserializes the
                   compile cache's artifact; interleaved with `full_file` (the raw load)

    Each loaded plugin is closed after its timing (the close is not timed), so no
    instances pile up during the measurement."""
    floor = LoadFloor(component_path, tmp)
    clock = time.perf_counter
    times: dict[str, list[float]] = {key: [] for key in ("host", "instantiate", "full", "host_file", "full_file")}

    def host_load() -> float:
        started = clock()
        plugin = host.load(plugin_dir, dev_grants=True)
        plugin.instance.warm()
        elapsed = clock() - started
        plugin.close()
        return elapsed

    def forget_code() -> None:
        host.compiler._shared.clear()
        for cache in host.compiler.caches.values():
            cache._loaded.clear()

    warmups = min(20, loads)
    for i in range(warmups + loads):
        sample = (host_load(), floor.instantiate(), floor.full())
        if i >= warmups:
            for key, value in zip(("host", "instantiate", "full"), sample):
                times[key].append(value)
        del sample
    file_loads = max(5, loads // 10)
    for i in range(2 + file_loads):
        forget_code()
        host_s, full_s = host_load(), floor.full()
        if i >= 2:
            times["host_file"].append(host_s)
            times["full_file"].append(full_s)
    return times


IMPORTS_PER_CALL = 50

_LOG_TOOL_APP = '''
"""A `tool` world guest: `call` makes `int(input_json)` raw log.write calls, then answers."""
import wit_world
import wit_world.exports
from wit_world.imports import log, types


class Tools(wit_world.exports.Tools):
    def call(self, call: types.ToolCall) -> types.ToolOutput:
        write, level, message = log.write, log.Level.INFO, call.tool
        for _ in range(int(call.input_json)):
            write(level, message)
        return types.ToolOutput(summary="ok", content_json="{}")
'''

_LOG_TOOL_MANIFEST = '''
schema_version = 2
id = "log-tool"
name = "Log tool"
version = "0.1.0"
description = "A bench guest: each call writes input_json log records through the raw import."
surfaces = ["tools"]
host_apis = ["log"]

[runtime]
kind = "wasm-component"
world = "tool"
component = "build/log_tool.wasm"

[build]
module = "app"

[[tools]]
name = "log_lines"
description = "Writes log records."

[tools.input_schema]
type = "object"
additionalProperties = false
'''


def build_log_tool(directory: Path) -> Path:
    """Writes and builds the log-tool guest into `directory` (a plugin package)."""
    out = directory / "build" / "log_tool.wasm"
    if out.exists():
        return out
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.py").write_text(textwrap.dedent(_LOG_TOOL_APP).lstrip())
    (directory / "plugin.toml").write_text(textwrap.dedent(_LOG_TOOL_MANIFEST).lstrip())
    out.parent.mkdir(exist_ok=True)
    command = [str(COMPONENTIZE_PY), "-d", str(ROOT / "wit"), "-w", "yoi:plugin/tool", "componentize", "app", "-p", str(directory), "-o", str(out)]
    done = subprocess.run(command, cwd=directory, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"componentize-py failed for the log-tool guest:\n{done.stdout}\n{done.stderr}")
    return out


class _NoLog(DiagnosticLog):
    """Diagnostics that keep nothing: the host's import callback with a no-op behind it."""

    def add(self, source: str, level: str, message: str) -> None:
        return None


def import_figures(host: Host, plugin_dir: Path, calls: int) -> dict[str, dict[str, float]]:
    """Bare-call medians (µs) of 0 and IMPORTS_PER_CALL log imports per call, for each
    linker, on the host's engine and component; interleaved call by call."""
    plugin = host.load(plugin_dir, dev_grants=True)
    base = plugin.instance
    engine, component = base._engine, base._component
    previous = os.environ.pop(ENV_CODEC, None)
    try:
        os.environ[ENV_CODEC] = "plain"
        plain_linker = build_linker(engine, component, HostContext(DiagnosticLog()))
        del os.environ[ENV_CODEC]
        linkers: dict[str, Linker | HostLinker] = {
            "no-op, fast callback": build_linker(engine, component, HostContext(_NoLog())),
            "no-op, wasmtime-py": noop_linker(engine),
            "host log, fast": build_linker(engine, component, HostContext(DiagnosticLog())),
            "host log, plain": plain_linker,
        }
    finally:
        if previous is not None:
            os.environ[ENV_CODEC] = previous
    callers = {}
    for label, linker in linkers.items():
        instance = PluginInstance(engine, component, linker, base._ticker, base.limits, DiagnosticLog(), base._fuel_enabled)
        instance.call(TOOLS, "call", {"tool": "log_lines", "input_json": "1", "call_id": "warm"})
        live = instance._live
        assert live is not None
        _func, caller = instance._func(live, TOOLS, "call")
        live.store.set_epoch_deadline(1 << 30)
        callers[label] = (instance, caller)
    counts = (0, IMPORTS_PER_CALL)
    times: dict[str, dict[int, list[float]]] = {label: {n: [] for n in counts} for label in callers}
    args = {n: {"tool": "bench message of a usual length", "input_json": str(n), "call_id": "c"} for n in counts}
    for i in range(min(50, calls) + calls):
        for label, (_instance, caller) in callers.items():
            for n in counts:
                elapsed = timed_bare_call(caller, caller.lower(args[n]))
                if i >= min(50, calls):
                    times[label][n].append(elapsed)
    out = {}
    for label, by_count in times.items():
        zero, many = (statistics.median(by_count[n]) * 1e6 for n in counts)
        out[label] = {"zero": zero, "many": many, "per_import": (many - zero) / IMPORTS_PER_CALL}
    for instance, _caller in callers.values():
        instance.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--loads", type=int, default=200, help="warm loads per component (after 20 warm-ups)")
    parser.add_argument("--work", type=Path, default=None, help="keep and reuse the built components here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        work: Path = args.work.resolve() if args.work else tmp
        work.mkdir(parents=True, exist_ok=True)
        plugins: dict[str, tuple[Path, Path, bool]] = {}
        for example, service in (("text-tools", False), ("counter-service", True)):
            plugin_dir = work / example
            if not list((plugin_dir / "build").glob("*.wasm")):
                shutil.rmtree(plugin_dir, ignore_errors=True)
                shutil.copytree(ROOT / "examples" / example, plugin_dir, ignore=shutil.ignore_patterns("build", "dist"))
                build(plugin_dir)
            plugins[f"pdk {'service' if service else 'tool'}"] = (plugin_dir, next((plugin_dir / "build").glob("*.wasm")), service)
        for world in ("tool", "service"):
            plugin_dir = work / f"minimal-{world}"
            built = plugin_dir / "build" / f"minimal_{world}.wasm"
            plugins[f"minimal {world}"] = (plugin_dir, built if built.exists() else build_minimal(world, plugin_dir), world == "service")
        log_tool_dir = work / "log-tool"
        build_log_tool(log_tool_dir)

        floors = {label: Floors(path, service, args.calls).us for label, (_, path, service) in plugins.items()}

        cache = work / "cache"  # with --work, a rerun's "cold" loads are cache hits
        hosted: dict[str, dict[str, float]] = {}
        loads: dict[str, dict[str, list[float]]] = {}
        with Host(cache_dir=cache, stderr=io.StringIO()) as host:
            cold: dict[str, float] = {}
            for label, (plugin_dir, _, _) in plugins.items():
                started = time.perf_counter()
                host.load(plugin_dir, dev_grants=True).instance.warm()
                cold[label] = time.perf_counter() - started
            for label, (plugin_dir, _, service) in plugins.items():
                hosted[label] = host_figures(host, plugin_dir, service, args.calls)
            for label, (plugin_dir, path, _) in plugins.items():
                loads[label] = load_figures(host, plugin_dir, path, tmp, args.loads)
            imports = import_figures(host, log_tool_dir, args.calls)

            base = rss_mib()
            extra = []
            for _ in range(10):
                other = Host(cache_dir=cache, stderr=io.StringIO())
                other.load(plugins["pdk tool"][0], dev_grants=True).call_tool(TOOL, INPUT)
                extra.append(other)
            per_instance = (rss_mib() - base) / 10
            for other in extra:
                other.close()

    print(f"per-call medians over {args.calls} calls (µs); ratios against the bare wasm call of the same instance")
    print(f"{'component':<16}{'bare':>8}{'fast':>8}{'codec':>8}{'raw':>8}   fast/bare  raw/bare  codec/fast")
    for label, us in floors.items():
        print(f"{label:<16}{us['bare']:8.1f}{us['fast']:8.1f}{us['codec']:8.1f}{us['raw']:8.1f}   "
              f"{us['fast'] / us['bare']:8.2f}x {us['raw'] / us['bare']:8.2f}x {us['codec'] / us['fast']:9.2f}x")  # fmt: skip
    print("  target: fast/bare <= 1.5x for a trivial event or tool call")
    print("  the fast path step by step (µs; lower + invoke + lift, each timed alone, the same interleaved run):")
    for label, us in floors.items():
        print(f"    {label:<16} lower {us['lower']:6.1f}  invoke {us['invoke']:6.1f} (bare {us['bare']:6.1f})  lift {us['lift']:6.1f}")
    for kind in ("tool", "service"):
        pdk, minimal = floors[f"pdk {kind}"]["bare"], floors[f"minimal {kind}"]["bare"]
        print(f"  PDK guest cost ({kind}): bare {pdk:.1f} µs vs minimal {minimal:.1f} µs = +{pdk - minimal:.1f} µs ({pdk / minimal:.2f}x)")
    print()
    print("through the host (Host.load, optimized tier): tools via call_tool, services via PluginInstance.call")
    print(f"{'component':<16}{'host':>8}{'bare':>8}   host/bare  host/raw  host/fast(floor)")
    for label, fig in hosted.items():
        floor = floors[label]
        print(f"{label:<16}{fig['host']:8.1f}{fig['bare']:8.1f}   {fig['host'] / fig['bare']:8.2f}x "
              f"{fig['host'] / floor['raw']:8.2f}x {fig['host'] / floor['fast']:10.2f}x   (tier {fig['tier']})")  # fmt: skip
    print()
    print(f"host imports: bare calls of the log-tool guest with 0 and {IMPORTS_PER_CALL} log.write imports per call (µs, medians, interleaved)")
    noop_floor = imports["no-op, fast callback"]["per_import"]
    for label, fig in imports.items():
        print(f"  {label:<22} call(0) {fig['zero']:8.1f}  call({IMPORTS_PER_CALL}) {fig['many']:9.1f}  "
              f"per import {fig['per_import']:7.2f}   {fig['per_import'] / noop_floor:6.2f}x the no-op floor")  # fmt: skip
    fast_log, plain_log = imports["host log, fast"]["per_import"], imports["host log, plain"]["per_import"]
    print(f"  the host's log import: fast {fast_log:.2f} µs vs plain {plain_log:.2f} µs per call ({plain_log / fast_log:.1f}x), "
          f"{fast_log - noop_floor:.2f} µs above the no-op floor")  # fmt: skip
    print()
    print(f"load: cold (first load in this cache, compile included): " + ", ".join(f"{k} {v:.2f} s" for k, v in cold.items()))
    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1e3:6.2f} p90 {_percentile(values, 0.9) * 1e3:6.2f}"

    print(f"warm load (compile-cache hit, code in memory) + instantiate, {args.loads} loads after {min(20, args.loads)} warm-ups, "
          "each plugin closed untimed; interleaved load by load with the floors (ms, median and p90)")  # fmt: skip
    print(f"  {'component':<16}{'host':>18}{'floor: instantiate':>26}{'raw load':>20}   host/instantiate  host/raw load")
    for label, load in loads.items():
        host_ms, inst_ms, full_ms = (statistics.median(load[key]) for key in ("host", "instantiate", "full"))
        print(f"  {label:<16}{ms(load['host']):>18}{ms(load['instantiate']):>26}{ms(load['full']):>20}   "
              f"{host_ms / inst_ms:14.2f}x {host_ms / full_ms:12.2f}x")  # fmt: skip
    print("  target: host <= 5 ms. floor: instantiate = store + instantiate of the code in memory; "
          "raw load = deserialize + link + instantiate (plain wasmtime-py)")  # fmt: skip
    file_loads = len(next(iter(loads.values()))["host_file"])
    print(f"first load of a component in this host (deserialize the compile cache's artifact) + instantiate, {file_loads} loads, "
          "interleaved with the raw load (ms, median and p90)")  # fmt: skip
    for label, load in loads.items():
        host_ms, full_ms = statistics.median(load["host_file"]), statistics.median(load["full_file"])
        print(f"  {label:<16}{ms(load['host_file']):>18}   raw load {ms(load['full_file'])}   host/raw load {host_ms / full_ms:5.2f}x")
    print(f"RSS per extra loaded+called instance (own Host each): {per_instance:.1f} MiB")


if __name__ == "__main__":
    main()
