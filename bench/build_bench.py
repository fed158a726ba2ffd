"""Benchmark `pdk build` against raw componentize-py on the same app.

    python bench/build_bench.py [--runs N]

Prints the raw floor (componentize-py alone on the staged app), the full `pdk build
--force` (introspection + manifest sync + staging + componentize-py) in-process and as
the `pdk build --force` command (what a user waits for: the CLI's start-up and imports
too), their ratios, and the no-op rebuild (in-process and as a `pdk build` subprocess). Targets: full build
<= 1.15x raw; no-op rebuild <= 0.5 s. Figures only; nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator import build as b  # noqa: E402
from generator._resources import wit_dir  # noqa: E402


def raw_componentize(plugin: Path) -> float:
    plan = b._load_plan(plugin)
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "stage"
        stage.mkdir()
        b._stage(plan, stage)
        cmd = b.componentize_command(wit_dir(), plan.world, b.ENTRY_MODULE, [stage], Path(tmp) / "raw.wasm")
        started = time.perf_counter()
        subprocess.run(cmd, cwd=tmp, check=True, capture_output=True)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plugin = Path(tmp) / "text-tools"
        shutil.copytree(ROOT / "examples" / "text-tools", plugin, ignore=shutil.ignore_patterns("build", "dist"))
        b.build(plugin)  # warm the OS caches and write the manifest once
        raw, full, full_cli = [], [], []
        for _ in range(args.runs):  # interleaved so machine load hits all alike
            raw.append(raw_componentize(plugin))
            started = time.perf_counter()
            b.build(plugin, force=True)
            full.append(time.perf_counter() - started)
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "pdk.cli", "build", str(plugin), "--force"], check=True, capture_output=True)
            full_cli.append(time.perf_counter() - started)
        noop = []
        for _ in range(10):
            started = time.perf_counter()
            result = b.build(plugin)
            noop.append(time.perf_counter() - started)
            assert result.cached
        cli = []
        for _ in range(3):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "pdk.cli", "build", str(plugin)], check=True, capture_output=True)
            cli.append(time.perf_counter() - started)
    r, f = statistics.median(raw), statistics.median(full)
    print(f"raw componentize-py (floor): median {r:.2f}s  runs {[round(x, 2) for x in raw]}")
    print(f"pdk build --force:           median {f:.2f}s  runs {[round(x, 2) for x in full]}")
    print(f"ratio full/raw:              {f / r:.3f}x   (target <= 1.15x)")
    c = statistics.median(full_cli)
    print(f"pdk build --force (command): median {c:.2f}s  runs {[round(x, 2) for x in full_cli]}  ratio {c / r:.3f}x")
    print(f"no-op rebuild (in-process):  median {statistics.median(noop) * 1000:.1f} ms")
    print(f"no-op rebuild (pdk build):   median {statistics.median(cli):.3f}s  (target <= 0.5 s)")


if __name__ == "__main__":
    main()
