"""The edit loop: seconds from a one-line edit of a tool to its new result.

    python bench/loop_bench.py [--runs N]

In a copy of examples/text-tools, each run edits the return value of `text_stats`
(one line: `lines=len(text.splitlines()) + K`, K new every run, so the build cache
and the compile cache have never seen the component), then measures

  (a) `pdk build DIR` + `pdk call DIR text_stats ...` as subprocesses, with a compile
      cache that is cold for the new component (the call prints the new result);
      and the first `pdk check DIR` after the build;
  (b) `pdk dev` running (after the (a) runs, on a fresh copy): the save, the dev
      host's reload line, then `pdk call DIR` served by it (the new result printed).
      `pdk dev` reloads on its dev runner (no build); its first start, which builds
      and compiles the runner once per dependency set, is printed separately.

against floors measured in the same run, interleaved with (a) so machine load hits
both alike: a raw componentize-py build of the same staged app, a raw Cranelift
compile of that component (plain wasmtime-py, default config) and a raw call
(instantiate + one `tools.call`, no-op host imports). Figures are printed as ratios;
nothing here asserts timings. Targets (issue 12): (a) <= 0.6x the floor sum; the
first check <= 0.2x the raw Cranelift compile.

The detached optimizing compile that `pdk call` starts after a fast-tier load is
switched off here (`YOI_PDK_NO_BACKGROUND_COMPILE=1`): it runs after the command has
answered, and left on it would compete with the next run's measurements.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator import build as b  # noqa: E402
from generator._resources import wit_dir  # noqa: E402

PDK = Path(sys.executable).with_name("pdk")
EDIT_LINE = re.compile(r"lines=len\(text\.splitlines\(\)\)( \+ \d+)?")
CALL_INPUT = {"text": "a b a"}

# Runs in a fresh interpreter: a raw Cranelift compile, then instantiate + one call.
_RAW_COMPILE_AND_CALL = r"""
import json, pathlib, sys, time
sys.path.insert(0, sys.argv[2])
from wasmtime.component import Component, Record
from raw_floor import raw_engine, raw_instance

path = pathlib.Path(sys.argv[1])
data = path.read_bytes()
engine = raw_engine()
t0 = time.perf_counter()
component = Component(engine, data)
compile_s = time.perf_counter() - t0
t0 = time.perf_counter()
store, func = raw_instance(path, (engine, component))
call = func("yoi:plugin/tools@2.0.0", "call")
arg = Record()
setattr(arg, "tool", "text_stats")
setattr(arg, "input-json", sys.argv[3])
setattr(arg, "call-id", "1")
call(store, arg)
call.post_return(store)
call_s = time.perf_counter() - t0
print(json.dumps({"compile_s": compile_s, "call_s": call_s}))
"""


@dataclass
class Run:
    raw_build_s: float
    raw_compile_s: float
    raw_call_s: float
    build_s: float
    call_s: float
    check_s: float
    call_output: str

    @property
    def floor_s(self) -> float:
        return self.raw_build_s + self.raw_compile_s + self.raw_call_s

    @property
    def loop_a_s(self) -> float:
        return self.build_s + self.call_s


def edit(plugin: Path, k: int) -> None:
    app = plugin / "app.py"
    text = app.read_text()
    new, n = EDIT_LINE.subn(f"lines=len(text.splitlines()) + {k}", text)
    assert n == 1, "the line to edit is not in examples/text-tools/app.py any more"
    app.write_text(new)


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed, done


def raw_floor(plugin: Path, tmp: Path) -> tuple[float, float, float]:
    plan = b._load_plan(plugin)
    stage = tmp / "raw-stage"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    b._stage(plan, stage)
    out = tmp / "raw.wasm"
    cmd = b.componentize_command(wit_dir(), plan.world, b.ENTRY_MODULE, [stage], out)
    started = time.perf_counter()
    subprocess.run(cmd, cwd=tmp, check=True, capture_output=True)
    build_s = time.perf_counter() - started
    done = subprocess.run(
        [sys.executable, "-c", _RAW_COMPILE_AND_CALL, str(out), str(ROOT / "bench"), json.dumps(CALL_INPUT)],
        check=True, capture_output=True, text=True,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return build_s, figures["compile_s"], figures["call_s"]


def part_a(plugin: Path, tmp: Path, k: int, env: dict[str, str]) -> tuple[float, float, float, str]:
    edit(plugin, k)
    build_s, _ = timed([str(PDK), "build", str(plugin)], env)
    check_s, _ = timed([str(PDK), "check", str(plugin)], env)
    call_s, done = timed([str(PDK), "call", str(plugin), "text_stats", json.dumps(CALL_INPUT), "--dev-grants"], env)
    expected = f'"lines":{1 + k}'
    assert expected in done.stdout, f"the edit is not in the result: {done.stdout!r}"
    return build_s, call_s, check_s, done.stdout.strip()


def part_b(plugin: Path, tmp: Path, runs: int, env: dict[str, str]) -> tuple[float, list[tuple[float, float, float]]]:
    """(b) with `pdk dev` running: a saved edit, then `pdk call DIR ...` served by the
    dev host. Per run: seconds from the save to the reload line, from the save to the
    new result printed by `pdk call`, and the served call alone; and the seconds from
    the start of `pdk dev` to its first version serving. Run after (a), so the dev
    host does not reload for (a)'s edits."""
    import queue
    import signal
    import threading

    dev_env = {**env, "YOI_PDK_RUNTIME_DIR": tempfile.mkdtemp(prefix="lb-", dir="/tmp")}
    launched = time.perf_counter()
    proc = subprocess.Popen([str(PDK), "dev", str(plugin), "--dev-grants"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dev_env)
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()

    def wait_for(needle: str) -> str:
        while True:
            line = lines.get(timeout=1800)
            if needle in line:
                return line
            if "reload failed" in line:
                raise SystemExit(f"pdk dev: {line}")

    out: list[tuple[float, float, float]] = []
    try:
        wait_for("v1 serving")
        start_s = time.perf_counter() - launched
        print(f"(b) pdk dev start (builds and compiles the dev runner on first use): {start_s:.2f}s", file=sys.stderr)
        for i in range(1, runs + 1):
            k = 1000 + i
            saved = time.perf_counter()
            edit(plugin, k)
            wait_for(f"reloaded v{i + 1}")
            reload_s = time.perf_counter() - saved
            call_s, done = timed([str(PDK), "call", str(plugin), "text_stats", json.dumps(CALL_INPUT)], dev_env)
            assert f'"lines":{1 + k}' in done.stdout and "served by `pdk dev`" in done.stderr, (done.stdout, done.stderr)
            out.append((reload_s, time.perf_counter() - saved, call_s))
            print(f"(b) run {i}: save -> reload line {reload_s:.2f}s, save -> new result {out[-1][1]:.2f}s, served pdk call {call_s:.2f}s", file=sys.stderr)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    return start_s, out


def fresh_copy(tmp: Path) -> tuple[Path, dict[str, str]]:
    """A copy of examples/text-tools in `tmp` without build output, and the environment
    of its `pdk` commands: a compile cache in `tmp` (cold) and no background compile."""
    plugin = tmp / "text-tools"
    shutil.copytree(ROOT / "examples" / "text-tools", plugin, ignore=shutil.ignore_patterns("build", "dist", "__pycache__"))
    env = {**os.environ, "YOI_PDK_CACHE_DIR": str(tmp / "compile-cache"), "YOI_PDK_NO_BACKGROUND_COMPILE": "1"}
    env.pop("YOI_PDK_NO_CACHE", None)
    return plugin, env


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="loop-bench-") as tmp_name:
        tmp = Path(tmp_name)
        plugin, env = fresh_copy(tmp)
        b.build(plugin)  # warm the OS caches and write the manifest once
        for k in range(1, args.runs + 1):
            raw_build_s, raw_compile_s, raw_call_s = raw_floor(plugin, tmp)
            build_s, call_s, check_s, output = part_a(plugin, tmp, k, env)
            runs.append(Run(raw_build_s, raw_compile_s, raw_call_s, build_s, call_s, check_s, output))
            r = runs[-1]
            print(f"run {k}: raw build {r.raw_build_s:.2f}s, raw Cranelift {r.raw_compile_s:.2f}s, raw call {r.raw_call_s * 1000:.0f} ms | "
                  f"pdk build {r.build_s:.2f}s, pdk call {r.call_s:.2f}s, pdk check {r.check_s:.2f}s | {output}", file=sys.stderr)

    def med(values: list[float]) -> float:
        return statistics.median(values)

    floor = med([r.floor_s for r in runs])
    raw_compile = med([r.raw_compile_s for r in runs])
    print(f"runs: {len(runs)} (medians; per-run figures in brackets)")
    print(f"floor: raw componentize-py {med([r.raw_build_s for r in runs]):.2f}s + raw Cranelift compile {raw_compile:.2f}s "
          f"+ raw call {med([r.raw_call_s for r in runs]) * 1000:.0f} ms = {floor:.2f}s  {[round(r.floor_s, 2) for r in runs]}")
    print(f"(a) pdk build {med([r.build_s for r in runs]):.2f}s + pdk call {med([r.call_s for r in runs]):.2f}s "
          f"= {med([r.loop_a_s for r in runs]):.2f}s  {[round(r.loop_a_s, 2) for r in runs]}")
    print(f"(a) / floor sum:               {med([r.loop_a_s / r.floor_s for r in runs]):.3f}x  (target <= 0.6x)  "
          f"{[round(r.loop_a_s / r.floor_s, 3) for r in runs]}")
    print(f"    pdk build / raw build:     {med([r.build_s / r.raw_build_s for r in runs]):.3f}x")
    print(f"    pdk call / (raw compile + raw call): {med([r.call_s / (r.raw_compile_s + r.raw_call_s) for r in runs]):.3f}x")
    print(f"first pdk check / raw compile: {med([r.check_s / r.raw_compile_s for r in runs]):.3f}x  (target <= 0.2x)  "
          f"check {med([r.check_s for r in runs]):.2f}s {[round(r.check_s, 2) for r in runs]}")
    with tempfile.TemporaryDirectory(prefix="loop-bench-b-") as tmp_name:
        tmp = Path(tmp_name)
        plugin, env = fresh_copy(tmp)  # no build: pdk dev serves the sources on its dev runner
        start_s, dev_runs = part_b(plugin, tmp, args.runs, env)
    loop_b = med([r[1] for r in dev_runs])
    print(f"(b) pdk dev: save -> new result {loop_b:.2f}s  {[round(r[1], 2) for r in dev_runs]}  "
          f"(reload {med([r[0] for r in dev_runs]):.2f}s, served call {med([r[2] for r in dev_runs]):.2f}s)")
    print(f"(b) / floor sum:               {loop_b / floor:.3f}x  (target <= 2 s and <= 0.1x)")
    print(f"(b) first start of pdk dev:    {start_s:.2f}s = {start_s / floor:.3f}x the floor sum (the dev runner built and compiled once per dependency set)")


if __name__ == "__main__":
    main()
