"""Benchmark the reference host against raw wasmtime-py on the same component.

    python bench/host_bench.py [--calls N]

Prints: cold compile vs warm load (compile cache) + instantiate (target <= 10 ms);
a raw wasmtime-py call of the same export vs `call_tool` through the host (median
µs, target <= 1.5x); resident memory per extra loaded instance. Figures only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from wasmtime.component import Record  # noqa: E402

from generator.build import build  # noqa: E402
from raw_floor import raw_instance  # noqa: E402
from pdk.host import Host  # noqa: E402
from pdk.host.compile_cache import CompiledComponentCache  # noqa: E402
from pdk.host.engine import EngineSettings, make_engine  # noqa: E402

TOOL = "text_stats"
INPUT = {"text": "the quick brown fox jumps over the lazy dog"}


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def raw_floor(component_path: Path, calls: int) -> list[float]:
    """The same export called with plain wasmtime-py: no codec, grants, schema or bounds."""
    store, lookup = raw_instance(component_path)
    func = lookup("yoi:plugin/tools@2.0.0", "call")
    payload = json.dumps(INPUT)
    times = []
    for i in range(calls):
        arg = Record()
        setattr(arg, "tool", TOOL)
        setattr(arg, "input-json", payload)
        setattr(arg, "call-id", str(i))
        started = time.perf_counter()
        func(store, arg)
        func.post_return(store)
        times.append(time.perf_counter() - started)
    del store
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        import shutil

        plugin = Path(tmp) / "text-tools"
        shutil.copytree(ROOT / "examples" / "text-tools", plugin, ignore=shutil.ignore_patterns("build", "dist"))
        build(plugin)
        component_path = next((plugin / "build").glob("*.wasm"))
        data = component_path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        settings = EngineSettings()
        engine = make_engine(settings)
        cache = CompiledComponentCache(Path(tmp) / "cache", settings.fingerprint)
        started = time.perf_counter()
        cache.load(engine, data, sha)
        cold = time.perf_counter() - started

        warm_loads = []
        with Host(cache_dir=Path(tmp) / "cache", stderr=open("/dev/null", "w")) as host:
            for _ in range(20):
                started = time.perf_counter()
                plugin_handle = host.load(plugin, dev_grants=True)
                plugin_handle.instance.warm()
                warm_loads.append(time.perf_counter() - started)

            host_times = []
            for i in range(args.calls):
                started = time.perf_counter()
                result = plugin_handle.call_tool(TOOL, INPUT)
                host_times.append(time.perf_counter() - started)
            assert result.ok, result

            base = rss_mib()
            extra = []
            for i in range(10):
                h = Host(cache_dir=Path(tmp) / "cache", stderr=open("/dev/null", "w"))
                p = h.load(plugin, dev_grants=True)
                p.call_tool(TOOL, INPUT)
                extra.append(h)
            per_instance = (rss_mib() - base) / 10
            for h in extra:
                h.close()

        raw_times = raw_floor(component_path, args.calls)
    raw_med = statistics.median(raw_times) * 1e6
    host_med = statistics.median(host_times) * 1e6
    warm = statistics.median(warm_loads) * 1000
    print(f"cold compile:                         {cold:.2f} s")
    print(f"warm load (cache) + instantiate:      median {warm:.2f} ms   (target <= 10 ms; {cold * 1000 / warm:.0f}x faster than cold)")
    print(f"raw wasmtime-py call (floor):         median {raw_med:.1f} us")
    print(f"call_tool through the host:           median {host_med:.1f} us")
    print(f"ratio host/raw:                       {host_med / raw_med:.2f}x   (target <= 1.5x)")
    print(f"RSS per extra loaded+called instance: {per_instance:.1f} MiB")


if __name__ == "__main__":
    main()
