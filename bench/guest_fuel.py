"""The guest's work per call counted in wasm fuel: a figure the machine's load cannot move.

    python bench/guest_fuel.py [--calls N] [--work DIR]

Wall-clock figures of a 2-core machine shared with other work move by 2-3x between
runs; wasmtime's fuel counts the wasm instructions the guest executes, so it compares
two versions of the PDK exactly, whatever else runs. Each component is built with the
PDK this process imports (`pdk build`'s own `generator.build`; run with
`PYTHONPATH=<other checkout>` from outside this checkout to build with another one)
and called on one plain wasmtime-py instance (no-op host imports, fuel on), with the
inputs the other benches send:

  ws-echo one-way   tests/plugins/ws-echo, {"record": false, "reply": false}, `seq:N .`
                    (bench/websocket_bench.py's one-direction case: no command)
  ws-echo reply     {"record": false, "reply": true}, `ping N`: one websocket-send
  ws-echo record    {"record": true, "reply": true}: an emit of a dict and the reply
  counter-service   `hello` on inbox/message (bench/host_bench.py's event): emit + log
  text-tools        `text_stats` (bench/host_bench.py's input; one log import)
  minimal service   bench/minimal_guests.py (one emit command, no PDK)
  minimal tool      bench/minimal_guests.py (a fixed output, no PDK)

Per call: mean fuel over N calls after a warm-up (the cyclic GC's share included), and
the median wall time of the same calls (load-dependent). Figures only.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # after PYTHONPATH: another checkout's pdk wins

import wasmtime  # noqa: E402
from wasmtime.component import Component, Record, Variant  # noqa: E402

import pdk  # noqa: E402
from generator.build import build  # noqa: E402
from minimal_guests import build_minimal  # noqa: E402
from raw_floor import noop_linker  # noqa: E402

TOOLS, LIFECYCLE, EVENTS = "yoi:plugin/tools@2.0.0", "yoi:plugin/lifecycle@2.0.0", "yoi:plugin/events@2.0.0"
FUEL = 1 << 40


def built(work: Path, name: str, source: Path) -> Path:
    plugin_dir = work / name
    if not list((plugin_dir / "build").glob("*.wasm")):
        shutil.rmtree(plugin_dir, ignore_errors=True)
        shutil.copytree(source, plugin_dir, ignore=shutil.ignore_patterns("build", "dist", "__pycache__"))
        build(plugin_dir)
    return next((plugin_dir / "build").glob("*.wasm"))


def record(**fields: Any) -> Record:
    r = Record()
    for key, value in fields.items():
        setattr(r, key.replace("_", "-"), value)
    return r


def event(ingress: str, source: str, kind: str, text: str) -> Callable[[int], Record]:
    return lambda i: record(id=f"e{i}", ingress=ingress, source=source, kind=kind, payload=Variant("text", text.format(i)),
                            created_at_ms=0, attempt=1, correlation_id=None)  # fmt: skip


def measure(engine: wasmtime.Engine, path: Path, config: str | None, iface: str, name: str, arg: Callable[[int], Record], calls: int) -> tuple[float, float]:
    component = Component(engine, path.read_bytes())
    store = wasmtime.Store(engine)
    store.set_wasi(wasmtime.WasiConfig())
    store.set_epoch_deadline(1 << 30)
    store.set_fuel(FUEL)
    instance = noop_linker(engine).instantiate(store, component)

    def func(i: str, n: str) -> Any:
        return instance.get_func(store, instance.get_export_index(store, n, instance.get_export_index(store, i)))

    if config is not None:
        start = func(LIFECYCLE, "start")
        start(store, config)
        start.post_return(store)
    call = func(iface, name)
    args = [arg(i) for i in range(calls + 200)]
    for a in args[:200]:
        result = call(store, a)
        call.post_return(store)
    if isinstance(result, Variant) and result.tag != "ok":
        raise RuntimeError(f"{path.name}: {vars(result.payload)}")
    times = []
    before = store.get_fuel()
    for a in args[200:]:
        started = time.perf_counter()
        call(store, a)
        call.post_return(store)
        times.append(time.perf_counter() - started)
    used = before - store.get_fuel()
    return used / calls, statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/yoi-pdk-guest-fuel"))
    args = parser.parse_args()
    work: Path = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"pdk from {Path(pdk.__file__).resolve().parent}; components in {work}")
    echo = built(work, "ws-echo", ROOT / "tests" / "plugins" / "ws-echo")
    counter = built(work, "counter-service", ROOT / "examples" / "counter-service")
    tools = built(work, "text-tools", ROOT / "examples" / "text-tools")
    minimal: dict[str, Path] = {}
    for world in ("service", "tool"):
        path = work / f"minimal-{world}" / "build" / f"minimal_{world}.wasm"
        minimal[world] = path if path.exists() else build_minimal(world, work / f"minimal-{world}")
    tool_input = json.dumps({"text": "the quick brown fox jumps over the lazy dog"}, separators=(",", ":"))
    tool_call = lambda i: record(tool="text_stats", input_json=tool_input, call_id=f"call-{i}")  # noqa: E731
    minimal_call = lambda i: record(tool="text_stats", input_json=tool_input, call_id=f"call-{i}")  # noqa: E731
    cases = (
        ("ws-echo one-way", echo, '{"record": false, "reply": false}', EVENTS, "handle", event("chat", "echo", "text", "seq:{} .")),
        ("ws-echo reply", echo, '{"record": false, "reply": true}', EVENTS, "handle", event("chat", "echo", "text", "ping {}")),
        ("ws-echo record", echo, '{"record": true, "reply": true}', EVENTS, "handle", event("chat", "echo", "text", "ping {}")),
        ("counter-service", counter, "{}", EVENTS, "handle", event("inbox", "manual", "message", "hello")),
        ("minimal service", minimal["service"], "{}", EVENTS, "handle", event("inbox", "manual", "message", "hello")),
        ("text-tools", tools, None, TOOLS, "call", tool_call),
        ("minimal tool", minimal["tool"], None, TOOLS, "call", minimal_call),
    )
    config = wasmtime.Config()
    config.epoch_interruption = True
    config.consume_fuel = True
    engine = wasmtime.Engine(config)
    print(f"{'case':<18}{'fuel/call':>12}{'wall µs':>10}   (mean fuel over {args.calls} calls; median wall)")
    for label, path, start_config, iface, name, arg in cases:
        fuel, wall = measure(engine, path, start_config, iface, name, arg, args.calls)
        print(f"{label:<18}{fuel:12.0f}{wall:10.1f}")


if __name__ == "__main__":
    main()
