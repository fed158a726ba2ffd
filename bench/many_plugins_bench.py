"""Many service plugins in one host: shared code, memory per plugin, events/s when all
are busy, and two busy plugins against one on 2 cores.

    python bench/many_plugins_bench.py [--plugins 50] [--events 40] [--pair-events 600]
                                       [--rounds 3] [--work DIR]

Loads `--plugins` Service/Ingress plugins into one `Host`: one copy per distinct
component (counter-service, webhook-ingress, durable-sink, async-plugin) and the rest
copies of counter-service under other ids (`id` changed in plugin.toml: a new package
digest, the same component bytes). Starts a `ServiceRuntime` on each and prints:

- how many compiled `Component` objects the plugins hold (one per distinct component:
  code is shared, not deserialized per plugin) and how many engines;
- memory per plugin after load, after start and after one event each: RSS (what the
  issue's target counts), PSS and private dirty memory (/proc/self/smaps_rollup).
  RSS counts a resident page once per *mapping*: the clean pages of the component's
  memory image that two instances of one component both read (copy-on-write from the
  mmapped artifact) are one page of memory but two in RSS. PSS counts each page
  once; private dirty is what no other instance shares (the pages a guest wrote);
- events/s with every plugin busy, against the raw `events.handle` call rate;
- one vs two threads, in `--rounds` interleaved rounds (the machine is shared: a
  round's ratios are comparable with each other, not with another run's):

    machine     sha256 of 1 MiB per call (C code, GIL released): what 2 cores give now
    bare wasm   `wasmtime_component_func_call` + post_return, arguments lowered once
                (no conversion): what wasm itself gives on 2 threads
    fast call   pdk.host._fastcall: lower + call + lift (the host's converters)
    wasmtime-py wasmtime-py's own `Func.__call__` with hand-made Records
    PDK pair    two busy counter-service plugins against one (the issue's figure)
    minimal pair  the same with a minimal service guest (bench/minimal_guests.py: no
                PDK), so the PDK's guest cost and the host's show separately

  and, per guest, the ceiling the GIL allows: with `c` CPU seconds per event (every
  thread of the process, the submitter's share included) of which `w` run in wasm
  with the GIL released (measured in a separate run of one busy plugin), two plugins
  reach at most min(2, c / (c - w)) times one. Unlike the wall-clock ratios, CPU
  seconds barely change when other processes load the machine.

Submitting. One thread submits to every busy plugin round-robin (and naps 1 ms when
every queue is full), then waits for them by polling (`wait_idle(0)` every 2 ms): a
blocking `wait_idle` is woken at the end of every event and takes the GIL each time,
a third thread competing with the two dispatchers. The pair is also run with one
submitting thread per plugin.

Figures only; nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import io
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import wasmtime  # noqa: E402
from wasmtime.component import Component, Record, Variant  # noqa: E402

from generator.build import build  # noqa: E402
from minimal_guests import build_minimal  # noqa: E402
from raw_floor import raw_instance  # noqa: E402
from pdk.host import Host  # noqa: E402
from pdk.host import _fastcall  # noqa: E402
from pdk.host._fastcall import bind_export  # noqa: E402
from pdk.host.codec import Case  # noqa: E402
from pdk.host.loader import open_package  # noqa: E402
from pdk.host.runtime import RuntimeOptions, ServiceRuntime  # noqa: E402

LIFECYCLE, EVENTS = "yoi:plugin/lifecycle@2.0.0", "yoi:plugin/events@2.0.0"
MIB = 1024 * 1024

# name -> (source dir, ingress, kind, payload); the first is the one copied under many ids.
DISTINCT: dict[str, tuple[Path, str, str, Case]] = {
    "counter-service": (ROOT / "examples" / "counter-service", "inbox", "message", Case("text", "hello")),
    "webhook-ingress": (
        ROOT / "examples" / "webhook-ingress", "orders", "webhook",
        Case("json", '{"order_id": "o-1", "amount_cents": 1250, "currency": "EUR"}'),
    ),
    "durable-sink": (ROOT / "tests" / "plugins" / "durable-sink", "jobs", "job", Case("json", '{"n": 1, "spin_ms": 0}')),
    "async-plugin": (ROOT / "tests" / "plugins" / "async-plugin", "jobs", "job", Case("text", "hi")),
}  # fmt: skip
MESSAGE = ("inbox", "message", Case("text", "hello"))  # what counter-service and the minimal guest take

Busy = tuple[ServiceRuntime, str, str, Case]


# -- memory ------------------------------------------------------------------------------------


def memory() -> dict[str, int]:
    """Rss, Pss and Private_Dirty of the whole process, in bytes."""
    out: dict[str, int] = {}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss", "Private_Dirty"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def per(after: dict[str, int], before: dict[str, int], n: int) -> dict[str, float]:
    return {k: (after[k] - before[k]) / max(1, n) for k in after}


# -- one thread vs two -------------------------------------------------------------------------


def one_vs_two(make: Callable[[], Callable[[int], None]], n: int) -> tuple[float, float]:
    """(calls/s of one `run(n)` on this thread, calls/s of two runs of n on two threads);
    `make()` gives a fresh, warmed-up run (its own instance)."""
    first, second = make(), make()
    first(max(1, n // 10))
    second(max(1, n // 10))
    started = time.perf_counter()
    first(n)
    one = n / (time.perf_counter() - started)
    threads = [threading.Thread(target=run, args=(n,)) for run in (first, second)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return one, 2 * n / (time.perf_counter() - started)


_BLOCK = b"\0" * MIB


def sha256_run() -> Callable[[int], None]:
    def run(n: int) -> None:
        for _ in range(n):
            hashlib.sha256(_BLOCK).digest()

    return run


def event_record(i: int) -> Record:
    ev = Record()
    for k, v in (("id", str(i)), ("ingress", "inbox"), ("source", "manual"), ("kind", "message"),
                 ("payload", Variant("text", "hello")), ("created-at-ms", 0), ("attempt", 1), ("correlation-id", None)):
        setattr(ev, k, v)  # fmt: skip
    return ev


def plain_event(i: int) -> dict[str, object]:
    return {"id": str(i), "ingress": "inbox", "source": "manual", "kind": "message", "payload": Case("text", "hello"),
            "created_at_ms": 0, "attempt": 1, "correlation_id": None}  # fmt: skip


def raw_started(component_path: Path, compiled: tuple[wasmtime.Engine, Component]) -> tuple[wasmtime.Store, Any]:
    """A plain wasmtime-py instance (no host) on the host's engine and compiled
    component, started; its `events.handle`."""
    store, func = raw_instance(component_path, compiled)
    start = func(LIFECYCLE, "start")
    start(store, "{}")
    start.post_return(store)
    return store, func(EVENTS, "handle")


def wasmtime_py_run(component_path: Path, compiled: tuple[wasmtime.Engine, Component]) -> Callable[[int], None]:
    store, handle = raw_started(component_path, compiled)

    def run(n: int) -> None:
        for i in range(n):
            handle(store, event_record(i))
            handle.post_return(store)

    return run


def fast_run(component_path: Path, compiled: tuple[wasmtime.Engine, Component]) -> Callable[[int], None]:
    store, handle = raw_started(component_path, compiled)
    owner = type("Owner", (), {})()  # bind_export caches its converters on this object
    fast = bind_export(owner, (EVENTS, "handle"), handle, store, mode="fast")  # type: ignore[arg-type]

    def run(n: int) -> None:
        for i in range(n):
            fast(plain_event(i))

    return run


def bare_run(component_path: Path, compiled: tuple[wasmtime.Engine, Component]) -> Callable[[int], None]:
    """The wasm call itself: the host's fast call with its arguments lowered once,
    then only `invoke` (`wasmtime_component_func_call` + post_return), the result
    never read (no conversion either way)."""
    store, handle = raw_started(component_path, compiled)
    owner = type("Owner", (), {})()
    call = bind_export(owner, (EVENTS, "handle"), handle, store, mode="fast")  # type: ignore[arg-type]
    lowered = call.lower(plain_event(0))
    invoke, delete = call.invoke, _fastcall._val_delete

    def run(n: int) -> None:
        for _ in range(n):
            result = invoke(lowered)
            if isinstance(result, ctypes.Array):  # a C result this bench owns (older _fastcall)
                delete(ctypes.addressof(result))

    run.keep = (store, handle, call)  # type: ignore[attr-defined]
    return run


def wasm_cpu_in_context(group: list[Busy], events: int) -> tuple[float, float]:
    """(process CPU seconds per event, CPU seconds per event inside the wasm call) for
    one busy runtime: the C function the host's fast call uses is wrapped for this
    run only, timing it with `time.thread_time` (in the dispatcher's context: its
    caches are shared with the Python around the call, unlike a bare loop's)."""
    name = "_func_call_c" if hasattr(_fastcall, "_func_call_c") else "_func_call"
    inner = getattr(_fastcall, name)
    spent = [0.0]

    def timed(*args: Any) -> Any:
        started = time.thread_time()
        try:
            return inner(*args)
        finally:
            spent[0] += time.thread_time() - started

    setattr(_fastcall, name, timed)
    try:
        _, cpu = busy(group, events)
    finally:
        setattr(_fastcall, name, inner)
    return cpu, spent[0] / events


# -- busy plugins ------------------------------------------------------------------------------


def _submit(runtimes: list[Busy], per_plugin: int) -> None:
    """Round-robin submits until each runtime took `per_plugin` events."""
    pending = {i: per_plugin for i in range(len(runtimes))}
    while pending:
        full = 0  # runtimes whose queue was full this round
        for i in list(pending):
            rt, ingress, kind, payload = runtimes[i]
            result = rt.submit(ingress, kind, payload)
            if getattr(result, "event_id", None) is None:
                if getattr(result, "reason", "") != "queue_full":
                    raise SystemExit(f"{rt.manifest.id} refused an event: {result}")
                full += 1
                continue
            pending[i] -= 1
            if not pending[i]:
                del pending[i]
        if pending and full == len(pending):
            # Every queue is full: nap instead of spinning (a submitter that spins, or
            # reads status documents, holds the GIL the dispatchers need).
            time.sleep(0.001)


def busy(runtimes: list[Busy], per_plugin: int, *, submitter_each: bool = False) -> tuple[float, float]:
    """(events/s, process CPU seconds per event) with every runtime given `per_plugin`
    events: one thread submits to all (or one per runtime), then polls for idle."""
    before = sum(rt.status()["counters"]["handled"] for rt, *_ in runtimes)
    cpu = time.process_time()
    started = time.perf_counter()
    if submitter_each:
        threads = [threading.Thread(target=_submit, args=([r], per_plugin)) for r in runtimes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        _submit(runtimes, per_plugin)
    deadline = time.monotonic() + 300
    # Polled, not a blocking wait_idle: that one wakes (and takes the GIL) per event.
    while not all(rt.wait_idle(0) for rt, *_ in runtimes) and time.monotonic() < deadline:
        time.sleep(0.002)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    handled = sum(rt.status()["counters"]["handled"] for rt, *_ in runtimes) - before
    assert handled == per_plugin * len(runtimes), (handled, per_plugin * len(runtimes))
    return float(handled) / elapsed, cpu / handled


def start_all(group: list[Busy]) -> tuple[dict[str, int], dict[str, int]]:
    """Start each runtime, then give each one event: (memory after start, after the event)."""
    for rt, *_ in group:
        doc = rt.start()
        assert doc["lifecycle"]["state"] == "running", doc["lifecycle"]
    after_start = memory()
    for rt, ingress, kind, payload in group:
        rt.submit(ingress, kind, payload)
    for rt, *_ in group:
        rt.wait_idle(60)
    return after_start, memory()


# -- setup -------------------------------------------------------------------------------------


def renamed_copy(base: Path, dst: Path, old_id: str, new_id: str) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(base, dst)
    toml = (base / "plugin.toml").read_text()
    (dst / "plugin.toml").write_text(re.sub(rf'^id = "{old_id}"', f'id = "{new_id}"', toml, count=1, flags=re.M))
    return dst


def prepare(work: Path, n_plugins: int) -> tuple[list[tuple[Path, str, str, Case]], list[Path]]:
    """Built package dirs: each distinct component once, then counter-service copies;
    and two copies of the minimal service guest."""
    out: list[tuple[Path, str, str, Case]] = []
    for name, (src, ingress, kind, payload) in DISTINCT.items():
        dst = work / name
        if not dst.exists():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("build", "dist", "__pycache__"))
        build(dst)  # a no-op when its inputs did not change (--work)
        out.append((dst, ingress, kind, payload))
    base, ingress, kind, payload = out[0]
    for i in range(n_plugins - len(out)):
        out.append((renamed_copy(base, work / f"counter-copy-{i:02d}", "counter-service", f"counter-copy-{i:02d}"), ingress, kind, payload))
    minimal = work / "minimal-service"
    if not (minimal / "build" / "minimal_service.wasm").is_file():
        build_minimal("service", minimal)
    pair = [renamed_copy(minimal, work / f"minimal-copy-{i}", "minimal-service", f"minimal-copy-{i}") for i in range(2)]
    return out, pair


# -- report ------------------------------------------------------------------------------------


def ratio(pair: tuple[float, float]) -> float:
    return pair[1] / pair[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plugins", type=int, default=50)
    parser.add_argument("--events", type=int, default=40, help="events per plugin with all plugins busy")
    parser.add_argument("--pair-events", type=int, default=600, help="events per plugin for one vs two busy plugins")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the one-vs-two figures")
    parser.add_argument("--compile", default="optimized", help="the host's compile mode (optimized, fast, tiered)")
    parser.add_argument("--work", type=Path, default=None, help="keep and reuse the built plugins and the compile cache here")
    args = parser.parse_args()
    n_pair = args.pair_events
    with tempfile.TemporaryDirectory() as tmp_s:
        work = args.work.resolve() if args.work else Path(tmp_s)
        work.mkdir(parents=True, exist_ok=True)
        packages, minimal_dirs = prepare(work, args.plugins)
        counter_wasm = next((packages[0][0] / "build").glob("*.wasm"))
        minimal_wasm = minimal_dirs[0] / "build" / "minimal_service.wasm"
        cache: Path | bool = work / "cache" if args.work else True

        with Host(cache_dir=cache, stderr=io.StringIO(), compile=args.compile, upgrade="none") as host:
            # Warm the compile cache for every distinct component first, so the memory
            # figures are about instances, not about a first compile's working memory.
            for path, *_ in packages[: len(DISTINCT)]:
                host.inspect(open_package(path))
            for path in minimal_dirs[:1]:
                host.inspect(open_package(path))
            mem0 = memory()
            plugins = [host.load(path, dev_grants=True) for path, *_ in packages]
            mem_loaded = memory()
            components = {id(p.instance._component) for p in plugins}
            engines = {id(p.instance._engine) for p in plugins}
            runtimes: list[Busy] = [
                (ServiceRuntime(p, {}, RuntimeOptions(queue_capacity=1024)), ingress, kind, payload)
                for p, (_, ingress, kind, payload) in zip(plugins, packages)
            ]
            # The distinct components first, then the copies: the copies' figure is the
            # marginal cost of one more plugin of a component the host already runs.
            distinct_started, distinct_one = start_all(runtimes[: len(DISTINCT)])
            mem_started, mem_one = start_all(runtimes[len(DISTINCT) :])
            all_rate, _ = busy(runtimes, args.events)
            mem_busy = memory()
            copies = runtimes[len(DISTINCT) : len(DISTINCT) + 2]  # they stay running for the pair
            for rt, *_ in runtimes:
                if all(rt is not c for c, *_ in copies):
                    rt.stop(drain_deadline_s=0.0)
            minimal_pair: list[Busy] = []
            for path in minimal_dirs:
                rt = ServiceRuntime(host.load(path, dev_grants=True), {}, RuntimeOptions(queue_capacity=1024))
                rt.start()
                minimal_pair.append((rt, *MESSAGE))
            counter = plugins[0].instance
            compiled = (counter._engine, counter._component)
            minimal = minimal_pair[0][0].plugin.instance
            minimal_compiled = (minimal._engine, minimal._component)  # type: ignore[attr-defined]
            for group in (copies, minimal_pair):
                busy(group, 100)  # warm up

            rounds: list[dict[str, tuple[float, float]]] = []
            cpu: dict[str, list[tuple[float, float]]] = {"PDK": [], "minimal": []}
            for _ in range(args.rounds):
                r: dict[str, tuple[float, float]] = {}
                r["machine (sha256 1 MiB)"] = one_vs_two(sha256_run, max(20, n_pair // 10))
                r["bare wasm, counter-service"] = one_vs_two(lambda: bare_run(counter_wasm, compiled), n_pair)
                r["bare wasm, minimal"] = one_vs_two(lambda: bare_run(minimal_wasm, minimal_compiled), n_pair * 4)
                r["fast call, counter-service"] = one_vs_two(lambda: fast_run(counter_wasm, compiled), n_pair)
                r["fast call, minimal"] = one_vs_two(lambda: fast_run(minimal_wasm, minimal_compiled), n_pair * 4)
                r["wasmtime-py, counter-service"] = one_vs_two(lambda: wasmtime_py_run(counter_wasm, compiled), n_pair // 2)
                for label, group in (("PDK", copies), ("minimal", minimal_pair)):
                    events = n_pair if label == "PDK" else n_pair * 4
                    one, _ = busy(group[:1], events)
                    two, _ = busy(group, events)
                    r[f"{label} pair, one submitter"] = (one, two)
                    two_each, _ = busy(group, events, submitter_each=True)
                    r[f"{label} pair, a submitter each"] = (one, two_each)
                    cpu[label].append(wasm_cpu_in_context(group[:1], events))
                r["load average"] = (os.getloadavg()[0], 0.0)
                rounds.append(r)
            for rt, *_ in [*copies, *minimal_pair]:
                rt.stop(drain_deadline_s=0.0)

    n = len(plugins)
    n_copies = n - len(DISTINCT)
    print(f"plugins in one host: {n} ({len(DISTINCT)} distinct components, {n_copies + 1} plugins share counter-service's); compile mode {args.compile}")
    print(f"compiled Component objects held by the plugins: {len(components)} (distinct components: {len(DISTINCT)}); engines: {len(engines)}")
    rows = [
        ("all plugins, after load (no instance yet)", per(mem_loaded, mem0, n)),
        ("all plugins, after start (copies not yet called)", per(mem_started, mem0, n)),
        ("all plugins, after one event each", per(mem_one, mem0, n)),
        (f"all plugins, after {args.events} more events each", per(mem_busy, mem0, n)),
        ("a distinct component, started", per(distinct_started, mem_loaded, len(DISTINCT))),
        ("a distinct component, after one event", per(distinct_one, mem_loaded, len(DISTINCT))),
    ]
    if n_copies:
        rows += [
            ("an extra counter copy, started", per(mem_started, distinct_one, n_copies)),
            ("an extra counter copy, after one event", per(mem_one, distinct_one, n_copies)),
        ]
    print("memory per plugin (MiB; RSS target <= 12 MiB for an extra plugin)            RSS     PSS  private dirty")
    for label, m in rows:
        print(f"  {label:72s} {m['Rss'] / MIB:6.2f}  {m['Pss'] / MIB:6.2f}  {m['Private_Dirty'] / MIB:6.2f}")
    print(f"all {n} plugins busy ({args.events} events each): {all_rate:8.0f} events/s")
    print()
    labels = [k for k in rounds[0] if k != "load average"]
    print(f"one thread vs two ({args.rounds} interleaved rounds; calls or events per second; two-plugin target >= 1.6x)")
    print(f"  {'':34s}" + "".join(f"{'round ' + str(i + 1):>28s}" for i in range(len(rounds))) + "   median ratio")
    for label in labels:
        cells = "".join(f"{r[label][0]:9.0f} {r[label][1]:9.0f} {ratio(r[label]):6.2f}x  " for r in rounds)
        print(f"  {label:34s}{cells} {statistics.median(ratio(r[label]) for r in rounds):6.2f}x")
    print("  load average (1 min) per round: " + ", ".join(f"{r['load average'][0]:.2f}" for r in rounds))
    for label, splits in cpu.items():
        ceilings = [min(2.0, c / max(1e-9, c - w)) for c, w in splits]
        c, w = statistics.median(s[0] for s in splits), statistics.median(s[1] for s in splits)
        print(f"  GIL ceiling, {label} guest: {c * 1e6:.0f} us CPU per event, {w * 1e6:.0f} us of it wasm (GIL released): "
              f"two plugins <= {statistics.median(ceilings):.2f}x one")  # fmt: skip
    print(f"cores: {os.cpu_count()}; load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
