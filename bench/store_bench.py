"""Benchmark the runtime with its durable state store against `:memory:`.

    python bench/store_bench.py [--events N] [--producers P]

For `:memory:`, SQLite `synchronous=normal` (the default) and `synchronous=full`:
events/s through submit -> store -> queue -> dispatcher -> handler -> commands
(P producer threads, so that accepts share commits), and p50/p99 dispatch latency
accepted -> outcome, one event at a time (the time includes the durable write of
the accept). Then the store alone: accepts/s with 1 and 8 threads (group commit).
Target: the store keeps >= 0.7x the `:memory:` events/s. Figures only; nothing
here asserts timings.
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.build import build  # noqa: E402
from pdk.host import Host  # noqa: E402
from pdk.host.codec import Case  # noqa: E402
from pdk.host.runtime import Refused, RuntimeOptions, ServiceRuntime  # noqa: E402
from pdk.host.runtime.model import QueuedEvent, new_event_id  # noqa: E402
from pdk.host.runtime.store import open_store  # noqa: E402


def run_mode(host: Host, plugin_dir: Path, state: str, sync: str, n: int, producers: int) -> dict[str, float]:
    plugin = host.load(plugin_dir, dev_grants=True)
    rt = ServiceRuntime(plugin, {}, RuntimeOptions(queue_capacity=1024), state=state, state_sync=sync)
    accepted_at: dict[str, float] = {}
    latencies: list[float] = []
    lock = threading.Lock()

    def on_outcome(outcome: dict[str, Any]) -> None:
        done = time.perf_counter()
        with lock:
            t0 = accepted_at.pop(outcome["event_id"], None)
        if t0 is not None:
            latencies.append(done - t0)

    rt.on_outcome(on_outcome)
    rt.start()

    def produce(count: int) -> None:
        sent = 0
        while sent < count:
            result = rt.submit("inbox", "message", Case("text", "hello"))
            if isinstance(result, Refused):  # queue full: let the dispatcher catch up
                time.sleep(0.001)
                continue
            sent += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=produce, args=(n // producers,)) for _ in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rt.wait_idle(300)
    rate = (n // producers * producers) / (time.perf_counter() - started)

    for _ in range(300):  # latency without queueing: one event at a time
        t0 = time.perf_counter()
        result = rt.submit("inbox", "message", Case("text", "hello"))
        with lock:
            accepted_at[result.event_id] = t0  # type: ignore[union-attr]
        rt.wait_idle(10)
    doc = rt.close()
    lat = sorted(latencies)
    writes = doc["store"]["writes"] or {}
    return {
        "rate": rate,
        "p50": statistics.median(lat) * 1000,
        "p99": lat[int(len(lat) * 0.99) - 1] * 1000,
        "handled": doc["counters"]["handled"],
        "batches": writes.get("batches", 0),
        "largest": writes.get("largest_batch", 0),
    }


def store_accepts(path: Path, threads: int, n: int) -> float:
    store = open_store(path, "bench", None)
    per = n // threads

    def work() -> None:
        for _ in range(per):
            store.accept(QueuedEvent(new_event_id(), "inbox", "manual", "message", Case("text", "hello"), 0, None, 5))

    started = time.perf_counter()
    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    elapsed = time.perf_counter() - started
    store.close()
    return per * threads / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="modes run interleaved this many times; the best round of each is shown")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plugin_dir = Path(tmp) / "counter-service"
        shutil.copytree(ROOT / "examples" / "counter-service", plugin_dir, ignore=shutil.ignore_patterns("build", "dist"))
        build(plugin_dir)
        rounds: dict[str, list[dict[str, float]]] = {":memory:": [], "sqlite normal": [], "sqlite full": []}
        with Host(cache_dir=Path(tmp) / "cache", stderr=io.StringIO()) as host:
            host.load(plugin_dir, dev_grants=True)  # compile once, outside the timings
            # Interleaved, so that a shared machine's load hits every mode alike.
            for i in range(args.rounds):
                for name, state, sync in (
                    (":memory:", ":memory:", "normal"),
                    ("sqlite normal", str(Path(tmp) / f"normal-{i}.sqlite3"), "normal"),
                    ("sqlite full", str(Path(tmp) / f"full-{i}.sqlite3"), "full"),
                ):
                    rounds[name].append(run_mode(host, plugin_dir, state, sync, args.events, args.producers))
        results = {name: max(rs, key=lambda r: r["rate"]) for name, rs in rounds.items()}
        alone = {k: store_accepts(Path(tmp) / f"alone-{k}.sqlite3", k, 4000) for k in (1, 8)}
    base = results[":memory:"]["rate"]
    print(f"{args.events} events, {args.producers} producers, counter-service (emit + log per event), best of {args.rounds} interleaved rounds")
    for name, r in results.items():
        batches = f", {r['batches']:.0f} commits (largest {r['largest']:.0f} ops)" if r["batches"] else ""
        print(
            f"{name:14s} {r['rate']:7.0f} events/s ({r['rate'] / base:.2f}x :memory:; target >= 0.7x)  "
            f"latency p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms{batches}"
        )
    print(f"store alone (normal): {alone[1]:7.0f} accepts/s with 1 thread, {alone[8]:7.0f} with 8 threads (group commit)")


if __name__ == "__main__":
    main()
