"""The PDK's guest path timed natively: what `events.handle` and `tools.call` cost in
the PDK's own Python, outside the component.

    python bench/guest_path_bench.py [--calls N] [--profile ws-echo|counter|tool]

Inside a component the guest runs on CPython 3.14 in wasm, where no profiler reaches;
this runs the same code on the host's CPython with the *real* componentize-py binding
types (generated here with `componentize-py bindings` from wit/) and stand-ins for
the host imports, through the real `pdk._bridge.Bridge` and the example plugins, with
the inputs the benches send:

  ws-echo     tests/plugins/ws-echo, config {"record": false, "reply": false}, a text
              event `seq:N .` (bench/websocket_bench.py's one-direction case)
  ws-reply    the same plugin replying (`reply: true`, `ping N`: one websocket-send)
  ws-record   recording too (emit "seen" with a dict, and the reply)
  counter     examples/counter-service, a `message` text event (emit + log commands)
  tool        examples/text-tools `text_stats` (bench/host_bench.py's input)
  minimal     the floor: a handler written against the bindings without the PDK
              (bench/minimal_guests.py's service guest)

Each line is the median per call (µs) of this machine's CPython; the wasm guest is
several times slower, but the split between steps is what to cut. `--profile NAME`
prints a cProfile of that case instead. Run it with `PYTHONPATH=<other checkout>` to
time another version of `pdk/` with the same inputs. Figures only.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import json
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
import types as pytypes
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
COMPONENTIZE_PY = Path(sys.executable).with_name("componentize-py")
BINDINGS = Path(tempfile.gettempdir()) / "yoi-pdk-bench-bindings"


def bindings() -> tuple[Any, Any, Any]:
    """(types, Err, log) of the service world's generated bindings."""
    if not (BINDINGS / "wit_world" / "imports" / "types.py").exists():
        command = [str(COMPONENTIZE_PY), "-d", str(ROOT / "wit"), "-w", "yoi:plugin/service", "bindings", str(BINDINGS)]
        subprocess.run(command, check=True, capture_output=True)
    sys.path.insert(0, str(BINDINGS))
    import componentize_py_types  # type: ignore[import-not-found]
    from wit_world.imports import log, types  # type: ignore[import-not-found]

    log.write = lambda level, message: None  # the host import: a no-op here
    return types, componentize_py_types.Err, log


def load_app(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def cases(calls: int) -> dict[str, Callable[[int], Any]]:
    t, err, log = bindings()
    from pdk import _bridge

    def bridge(app: Any) -> Any:
        return _bridge.Bridge(app.plugin, types=t, err=err, log=log, request=pytypes.SimpleNamespace(), fs=pytypes.SimpleNamespace())

    def event(ingress: str, source: str, kind: str, text: str, i: int) -> Any:
        return t.Event(f"ev-{i}", ingress, source, kind, t.Payload_Text(text), 0, 1, None)

    out: dict[str, Callable[[int], Any]] = {}
    for label, config, text in (
        ("ws-echo", {"record": False, "reply": False}, "seq:{} ."),
        ("ws-reply", {"record": False, "reply": True}, "ping {}"),
        ("ws-record", {"record": True, "reply": True}, "ping {}"),
    ):
        # One module per case: the plugin object (and its state) is the module's.
        b = bridge(load_app(ROOT / "tests" / "plugins" / "ws-echo" / "app.py", f"bench_{label.replace('-', '_')}_app"))
        b.lifecycle_start(json.dumps(config))
        events = [event("chat", "echo", "text", text.format(i), i) for i in range(calls)]
        out[label] = lambda i, b=b, events=events: b.events_handle(events[i])
    counter = load_app(ROOT / "examples" / "counter-service" / "app.py", "bench_counter_app")
    b = bridge(counter)
    b.lifecycle_start("{}")
    events = [event("inbox", "manual", "message", "hello", i) for i in range(calls)]
    out["counter"] = lambda i, b=b, events=events: b.events_handle(events[i])
    tools = load_app(ROOT / "examples" / "text-tools" / "app.py", "bench_text_tools_app")
    b = bridge(tools)
    calls_in = [t.ToolCall("text_stats", '{"text":"the quick brown fox jumps over the lazy dog"}', f"call-{i}") for i in range(calls)]
    out["tool"] = lambda i, b=b, calls_in=calls_in: b.tools_call(calls_in[i])

    def minimal(i: int) -> Any:
        emit = t.CommandKind_Emit(t.Emit(topic="counted", data_json='{"count": 1}'))
        return t.ServiceOutput(data_json=None, commands=[t.Command(id="c1", kind=emit)])

    out["minimal"] = minimal
    return out


def median_us(step: Callable[[int], Any], calls: int) -> float:
    for i in range(min(calls, 500)):
        step(i)
    times = []
    clock = time.perf_counter
    for i in range(calls):
        started = clock()
        step(i)
        times.append(clock() - started)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--profile", default=None)
    args = parser.parse_args()
    found = cases(args.calls)
    import pdk

    print(f"pdk from {Path(pdk.__file__).parent}")
    if args.profile:
        step = found[args.profile]
        for i in range(min(args.calls, 500)):
            step(i)
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(args.calls):
            step(i)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return
    for label, step in found.items():
        print(f"{label:<10} {median_us(step, args.calls):7.2f} µs per call")


if __name__ == "__main__":
    main()
