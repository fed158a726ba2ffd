"""Time the PDK's guest path *inside* the component (CPython 3.14 in wasm).

    python bench/guest_probe.py [--work DIR] [--calls N] [--profile CASE]

No profiler reaches into a component from outside, so this builds a probe: a `tool`
world component (raw componentize-py, the same version `pdk build` uses) that bundles
the PDK of the importing checkout (`PYTHONPATH=<other checkout>` probes another), the
example plugins and the generated bindings, and whose `call` runs one named case in a
loop in the guest and answers the guest's own `time.perf_counter_ns` medians (or a
cProfile of it: `_lsprof` is part of the embedded interpreter). The cases are
bench/guest_path_bench.py's, with the same inputs: a text event through the real
`pdk._bridge.Bridge` for ws-echo (one direction, reply, record), counter-service, the
text-tools tool, and the floor (a handler written against the bindings alone).

The numbers exclude the lift of the argument and the lower of the result by the
bindings (the same for a PDK and a minimal guest of one world, apart from the output's
size); bench/host_bench.py's bare column includes them. Figures only.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import pdk  # noqa: E402

from minimal_guests import COMPONENTIZE_PY  # noqa: E402
from raw_floor import raw_instance  # noqa: E402

TOOLS = "yoi:plugin/tools@2.0.0"

_APP = '''
"""The probe: `call(tool=CASE, input_json={"calls": N, "profile": bool})` times CASE in the guest."""
import cProfile
import gc
import heapq  # noqa: F401 - Counter.most_common imports it lazily (pdk build preloads it too)
import importlib.util
import io
import json
import pstats
import statistics
import sys
import textwrap
import time
import timeit
import types as pytypes

import componentize_py_types
import wit_world
import wit_world.exports
from wit_world.imports import fs, log, request, types as t

from pdk import _bridge

import probe_ws_echo_a, probe_ws_echo_b, probe_ws_echo_c, probe_counter, probe_text_tools


def bridge(app):
    return _bridge.Bridge(app.plugin, types=t, err=componentize_py_types.Err, log=log, request=request, fs=fs)


def event(ingress, source, kind, text, i):
    return t.Event(f"ev-{i}", ingress, source, kind, t.Payload_Text(text), 0, 1, None)


def build_cases(calls):
    out = {}
    for label, app, config, text in (
        ("ws-echo", probe_ws_echo_a, {"record": False, "reply": False}, "seq:{} ."),
        ("ws-reply", probe_ws_echo_b, {"record": False, "reply": True}, "ping {}"),
        ("ws-record", probe_ws_echo_c, {"record": True, "reply": True}, "ping {}"),
    ):
        b = bridge(app)
        b.lifecycle_start(json.dumps(config))
        events = [event("chat", "echo", "text", text.format(i), i) for i in range(calls)]
        out[label] = (b.events_handle, events)
    b = bridge(probe_counter)
    b.lifecycle_start("{}")
    out["counter"] = (b.events_handle, [event("inbox", "manual", "message", "hello", i) for i in range(calls)])
    b = bridge(probe_text_tools)
    text = '{"text":"the quick brown fox jumps over the lazy dog"}'
    out["tool"] = (b.tools_call, [t.ToolCall("text_stats", text, f"call-{i}") for i in range(calls)])

    def minimal(e):
        emit = t.CommandKind_Emit(t.Emit(topic="counted", data_json='{"count": 1}'))
        return t.ServiceOutput(data_json=None, commands=[t.Command(id="c1", kind=emit)])

    out["minimal"] = (minimal, out["counter"][1])
    return out


class Tools(wit_world.exports.Tools):
    def call(self, call):
        try:
            args = json.loads(call.input_json)
            if call.tool == "loop":  # {"setup": ..., "stmt": ..., "number": N}: the host counts the fuel
                scope = {"cases": build_cases, "t": t, "bridge": bridge, "event": event}
                exec(args.get("setup", "pass"), scope)
                body = "def _loop(_n):\\n    for _ in range(_n):\\n" + textwrap.indent(args["stmt"], "        ") + "\\n"
                exec(body, scope)
                scope["_loop"](args["number"])
                return t.ToolOutput(summary="ok", content_json="{}")
            if call.tool == "timeit":  # {"setup": ..., "stmt": ..., "number": N}: µs per run, best of 5
                scope = {"cases": build_cases, "t": t, "bridge": bridge, "event": event}
                timer = timeit.Timer(args["stmt"], args.get("setup", "pass"), globals=scope)
                number = args.get("number", 1000)
                best = min(timer.repeat(5, number)) / number * 1e6
                return t.ToolOutput(summary="ok", content_json=json.dumps({"us": best}))
            calls = args["calls"]
            step, inputs = build_cases(calls)[call.tool]
            for x in inputs[: min(calls, 300)]:
                step(x)
            if args.get("profile"):
                profiler = cProfile.Profile()
                profiler.enable()
                for x in inputs:
                    step(x)
                profiler.disable()
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
                return t.ToolOutput(summary="profile", content_json=json.dumps({"profile": out.getvalue()}))
            clock = time.perf_counter_ns
            times = []
            if args.get("no_gc"):
                gc.disable()
            for x in inputs:
                started = clock()
                step(x)
                times.append(clock() - started)
            gc.enable()
            return t.ToolOutput(summary="ok", content_json=json.dumps({"median_us": statistics.median(times) / 1000, "mean_us": statistics.fmean(times) / 1000}))
        except BaseException as exc:
            import traceback
            return t.ToolOutput(summary="error", content_json=json.dumps({"error": traceback.format_exc()}))
'''

CASES = ("ws-echo", "ws-reply", "ws-record", "counter", "tool", "minimal")


def build_probe(work: Path) -> Path:
    """Writes and builds the probe into `work` (reused when it exists)."""
    out = work / "probe.wasm"
    if out.exists():
        return out
    src = work / "src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    (src / "app.py").write_text(textwrap.dedent(_APP).lstrip())
    echo = ROOT / "tests" / "plugins" / "ws-echo" / "app.py"
    for name in ("a", "b", "c"):  # one module per case: the plugin object holds the state
        shutil.copy(echo, src / f"probe_ws_echo_{name}.py")
    shutil.copy(ROOT / "examples" / "counter-service" / "app.py", src / "probe_counter.py")
    shutil.copy(ROOT / "examples" / "text-tools" / "app.py", src / "probe_text_tools.py")
    guest_pdk = Path(pdk.__file__).resolve().parent
    staged = work / "pdk-parent" / "pdk"
    shutil.rmtree(staged.parent, ignore_errors=True)
    shutil.copytree(guest_pdk, staged, ignore=shutil.ignore_patterns("host", "cli", "testing", "package", "__pycache__"))
    command = [
        str(COMPONENTIZE_PY), "-d", str(ROOT / "wit"), "-w", "yoi:plugin/tool",
        "componentize", "app", "-p", str(src), "-p", str(staged.parent), "-o", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=src, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"componentize-py failed for the probe:\n{done.stdout}\n{done.stderr}")
    return out


_COMPILED: dict[Path, Any] = {}


def fuel_of(path: Path, setup: str, stmt: str, number: int) -> float:
    """Fuel of one `stmt` (after `setup`) in the probe: the difference between a loop
    of `number` runs and one of none, each in a fresh instance."""
    import wasmtime
    from wasmtime.component import Component, Record

    from raw_floor import noop_linker

    if path not in _COMPILED:
        config = wasmtime.Config()
        config.epoch_interruption = True
        config.consume_fuel = True
        engine = wasmtime.Engine(config)
        _COMPILED[path] = (engine, Component(engine, path.read_bytes()))
    engine, component = _COMPILED[path]
    used = []
    for n in (0, number):
        store = wasmtime.Store(engine)
        store.set_wasi(wasmtime.WasiConfig())
        store.set_epoch_deadline(1 << 30)
        store.set_fuel(1 << 40)
        instance = noop_linker(engine).instantiate(store, component)
        func = instance.get_func(store, instance.get_export_index(store, "call", instance.get_export_index(store, TOOLS)))
        record = Record()
        setattr(record, "tool", "loop")
        setattr(record, "input-json", json.dumps({"setup": setup, "stmt": stmt, "number": n}))
        setattr(record, "call-id", "probe")
        before = store.get_fuel()
        func(store, record)
        func.post_return(store)
        used.append(before - store.get_fuel())
    return (used[1] - used[0]) / number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/yoi-pdk-guest-probe"))
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--profile", default=None, help="print a cProfile of this case instead")
    parser.add_argument("--no-gc", action="store_true", help="time the cases with the cyclic GC disabled")
    parser.add_argument("--fuel", nargs=2, metavar=("SETUP", "STMT"), help="wasm fuel of one STMT in the guest (the difference of --calls runs and none)")
    parser.add_argument("--timeit", nargs=2, metavar=("SETUP", "STMT"), help="time STMT in the guest (µs per run, best of 5)")
    args = parser.parse_args()
    started = time.perf_counter()
    path = build_probe(args.work)
    print(f"pdk from {Path(pdk.__file__).resolve().parent}; probe {path} ({time.perf_counter() - started:.0f} s to build or find)")
    from wasmtime.component import Record, Variant

    if args.fuel:
        print(f"{fuel_of(path, args.fuel[0], args.fuel[1], args.calls):.0f} fuel per run in the guest")
        return
    store, lookup = raw_instance(path)
    func = lookup(TOOLS, "call")

    def run(case: str, **extra: object) -> dict[str, object]:
        record = Record()
        setattr(record, "tool", case)
        setattr(record, "input-json", json.dumps({"calls": args.calls, **extra}))
        setattr(record, "call-id", "probe")
        result = func(store, record)
        func.post_return(store)
        if isinstance(result, Variant):  # result<tool-output, plugin-error>, both records: tagged
            if result.tag != "ok":
                raise RuntimeError(f"the probe failed: {vars(result.payload)}")
            result = result.payload
        content = json.loads(getattr(result, "content-json"))
        if "error" in content:
            raise RuntimeError(content["error"])
        return content  # type: ignore[no-any-return]

    if args.timeit:
        print(f"{run('timeit', setup=args.timeit[0], stmt=args.timeit[1], number=args.calls)['us']:.2f} µs per run in the guest")
        return
    if args.profile:
        print(run(args.profile, profile=True)["profile"])
        return
    for case in CASES:
        figures = run(case, no_gc=args.no_gc)
        print(f"{case:<10} median {figures['median_us']:8.1f} µs  mean {figures['mean_us']:8.1f} µs per call in the guest")


if __name__ == "__main__":
    main()
