"""Many service plugins in one host: shared code, RSS per plugin, events/s when all are busy.

    python bench/many_plugins_bench.py [--plugins 50] [--events 40] [--pair-events 600]

Loads `--plugins` Service/Ingress plugins into one `Host`: one copy per distinct
component (counter-service, webhook-ingress, durable-sink, async-plugin) and the rest
copies of counter-service under other ids (`id` changed in plugin.toml: a new package
digest, the same component bytes). Starts a `ServiceRuntime` on each and prints:

- how many compiled `Component` objects the plugins hold (one per distinct component:
  code is shared, not deserialized per plugin) and how many engines;
- RSS per plugin (/proc/self/statm) after load, after start and after one event each,
  against the floor of a raw wasmtime-py instance of the same component on a shared
  engine (no host, no runtime) measured in this run;
- events/s with every plugin busy (events submitted to all of them), against the raw
  `events.handle` call rate of counter-service;
- two busy plugins against one (2 cores: wasm runs with the GIL released), against the
  same ratio for two raw wasmtime-py instances on two threads.

Figures only; nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import wasmtime  # noqa: E402
from wasmtime.component import Component, Record, Variant  # noqa: E402

from generator.build import build  # noqa: E402
from raw_floor import raw_instance  # noqa: E402
from pdk.host import Host  # noqa: E402
from pdk.host.codec import Case  # noqa: E402
from pdk.host.loader import open_package  # noqa: E402
from pdk.host.runtime import RuntimeOptions, ServiceRuntime  # noqa: E402

LIFECYCLE, EVENTS = "yoi:plugin/lifecycle@2.0.0", "yoi:plugin/events@2.0.0"
MIB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")

# name -> (source dir, ingress, kind, payload); the first is the one copied under many ids.
DISTINCT: dict[str, tuple[Path, str, str, Case]] = {
    "counter-service": (ROOT / "examples" / "counter-service", "inbox", "message", Case("text", "hello")),
    "webhook-ingress": (
        ROOT / "examples" / "webhook-ingress", "orders", "webhook",
        Case("json", '{"order_id": "o-1", "amount_cents": 1250, "currency": "EUR"}'),
    ),
    "durable-sink": (ROOT / "tests" / "plugins" / "durable-sink", "jobs", "job", Case("json", '{"n": 1, "spin_ms": 0}')),
    "async-plugin": (ROOT / "tests" / "plugins" / "async-plugin", "jobs", "job", Case("text", "hi")),
}


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def event_record(i: int) -> Record:
    ev = Record()
    for k, v in (("id", str(i)), ("ingress", "inbox"), ("source", "manual"), ("kind", "message"),
                 ("payload", Variant("text", "hello")), ("created-at-ms", 0), ("attempt", 1), ("correlation-id", None)):
        setattr(ev, k, v)
    return ev


def raw_started(component_path: Path, compiled: tuple[wasmtime.Engine, Component]) -> tuple[wasmtime.Store, Any]:
    store, func = raw_instance(component_path, compiled)
    start = func(LIFECYCLE, "start")
    start(store, "{}")
    start.post_return(store)
    return store, func(EVENTS, "handle")


def raw_handle(store: wasmtime.Store, handle: Any, n: int) -> None:
    for i in range(n):
        handle(store, event_record(i))
        handle.post_return(store)


def raw_floors(component_path: Path, compiled: tuple[wasmtime.Engine, Component], n: int, n_instances: int) -> dict[str, float]:
    """Raw wasmtime-py on the host's engine and compiled component (the same code):
    RSS per started instance after one event, calls/s on one thread, and on two
    threads at once."""
    first = raw_started(component_path, compiled)
    raw_handle(*first, 5)
    before = rss()
    extra = [raw_started(component_path, compiled) for _ in range(n_instances)]
    for store, handle in extra:
        raw_handle(store, handle, 1)
    per_instance = (rss() - before) / n_instances
    del extra
    started = time.perf_counter()
    raw_handle(*first, n)
    one = n / (time.perf_counter() - started)
    second = raw_started(component_path, compiled)
    threads = [threading.Thread(target=raw_handle, args=(*inst, n)) for inst in (first, second)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    two = 2 * n / (time.perf_counter() - started)
    return {"rss_per_instance": per_instance, "one": one, "two": two}


def prepare(tmp: Path, n_plugins: int) -> list[tuple[Path, str, str, Case]]:
    """Built package dirs: each distinct component once, then counter-service copies."""
    out: list[tuple[Path, str, str, Case]] = []
    for name, (src, ingress, kind, payload) in DISTINCT.items():
        dst = tmp / name
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("dist", "__pycache__"))
        build(dst)
        out.append((dst, ingress, kind, payload))
    base, ingress, kind, payload = out[0]
    toml = (base / "plugin.toml").read_text()
    for i in range(n_plugins - len(out)):
        dst = tmp / f"counter-copy-{i:02d}"
        shutil.copytree(base, dst)
        text = re.sub(r'^id = "counter-service"', f'id = "counter-copy-{i:02d}"', toml, count=1, flags=re.M)
        (dst / "plugin.toml").write_text(text)
        out.append((dst, ingress, kind, payload))
    return out


def busy(runtimes: list[tuple[ServiceRuntime, str, str, Case]], per_plugin: int) -> float:
    """Events/s with every runtime given `per_plugin` events (round-robin submits)."""
    before = sum(rt.status()["counters"]["handled"] for rt, *_ in runtimes)
    pending = {i: per_plugin for i in range(len(runtimes))}
    started = time.perf_counter()
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
    for rt, *_ in runtimes:
        rt.wait_idle(300)
    elapsed = time.perf_counter() - started
    handled = sum(rt.status()["counters"]["handled"] for rt, *_ in runtimes) - before
    assert handled == per_plugin * len(runtimes), (handled, per_plugin * len(runtimes))
    return float(handled) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plugins", type=int, default=50)
    parser.add_argument("--events", type=int, default=40, help="events per plugin with all plugins busy")
    parser.add_argument("--pair-events", type=int, default=600, help="events per plugin for one vs two busy plugins")
    parser.add_argument("--compile", default="optimized", help="the host's compile mode (optimized, fast, tiered)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        packages = prepare(tmp, args.plugins)
        counter_wasm = next((packages[0][0] / "build").glob("*.wasm"))

        with Host(cache_dir=True, stderr=io.StringIO(), compile=args.compile, upgrade="none") as host:
            # Warm the compile cache for every distinct component first, so the RSS
            # figures are about instances, not about a first compile's working memory.
            for path, *_ in packages[: len(DISTINCT)]:
                host.inspect(open_package(path))
            rss0 = rss()
            plugins = [host.load(path, dev_grants=True) for path, *_ in packages]
            rss_loaded = rss()
            components = {id(p.instance._component) for p in plugins}
            engines = {id(p.instance._engine) for p in plugins}
            runtimes = [
                (ServiceRuntime(p, {}, RuntimeOptions(queue_capacity=1024)), ingress, kind, payload)
                for p, (_, ingress, kind, payload) in zip(plugins, packages)
            ]
            def start_and_one_event(group: list[tuple[ServiceRuntime, str, str, Case]]) -> tuple[int, int]:
                for rt, *_ in group:
                    doc = rt.start()
                    assert doc["lifecycle"]["state"] == "running", doc["lifecycle"]
                after_start = rss()
                for rt, ingress, kind, payload in group:
                    rt.submit(ingress, kind, payload)
                for rt, *_ in group:
                    rt.wait_idle(60)
                return after_start, rss()

            # The distinct components first, then the copies: the copies' figure is the
            # marginal cost of one more plugin of a component the host already runs.
            distinct_started, distinct_one = start_and_one_event(runtimes[: len(DISTINCT)])
            rss_started, rss_one = start_and_one_event(runtimes[len(DISTINCT):])
            copies = runtimes[len(DISTINCT):]
            all_rate = busy(runtimes, args.events)
            rss_busy = rss()
            one_rate = busy(copies[:1], args.pair_events)
            two_rate = busy(copies[1:3], args.pair_events)
            for rt, *_ in runtimes:
                rt.stop(drain_deadline_s=0.0)
            counter = plugins[0].instance
            floor = raw_floors(counter_wasm, (counter._engine, counter._component), args.pair_events, 10)

    n = len(plugins)
    print(f"plugins in one host: {n} ({len(DISTINCT)} distinct components, {n - len(DISTINCT) + 1} plugins share counter-service's); compile mode {args.compile}")
    print(f"compiled Component objects held by the plugins: {len(components)} (distinct components: {len(DISTINCT)}); engines: {len(engines)}")
    print(f"RSS floor: raw wasmtime-py instance of counter-service on a shared engine, started + one event: {floor['rss_per_instance'] / MIB:.2f} MiB")
    n_copies = n - len(DISTINCT)
    rows = [
        ("all plugins, after load (no instance yet)", (rss_loaded - rss0) / n),
        ("all plugins, after start (copies not yet called)", (rss_started - rss0) / n),
        ("all plugins, after one event each", (rss_one - rss0) / n),
        (f"all plugins, after {args.events} more events each", (rss_busy - rss0) / n),
        ("a distinct component, started", (distinct_started - rss_loaded) / len(DISTINCT)),
        ("a distinct component, after one event", (distinct_one - rss_loaded) / len(DISTINCT)),
    ]
    if n_copies:
        rows += [
            ("an extra counter copy, started", (rss_started - distinct_one) / n_copies),
            ("an extra counter copy, after one event", (rss_one - distinct_one) / n_copies),
        ]
    for label, per in rows:
        print(f"RSS per plugin, {label:42s}: {per / MIB:6.2f} MiB  ({per / floor['rss_per_instance']:.2f}x the floor; target <= 12 MiB)")
    print(f"raw wasmtime-py events.handle, 1 thread (floor): {floor['one']:8.0f} calls/s")
    print(f"raw wasmtime-py, 2 instances on 2 threads:        {floor['two']:8.0f} calls/s  ({floor['two'] / floor['one']:.2f}x one thread)")
    print(f"all {n} plugins busy ({args.events} events each):   {all_rate:8.0f} events/s  ({all_rate / floor['one']:.2f}x the 1-thread floor)")
    print(f"one busy counter plugin:                          {one_rate:8.0f} events/s  ({one_rate / floor['one']:.2f}x the floor)")
    print(f"two busy counter plugins:                         {two_rate:8.0f} events/s  ({two_rate / one_rate:.2f}x one plugin; target >= 1.6x; raw 2-thread ratio {floor['two'] / floor['one']:.2f}x)")
    print(f"cores: {os.cpu_count()}; load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
