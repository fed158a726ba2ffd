"""Benchmark the Service/Ingress runtime against the raw export call.

    python bench/runtime_bench.py [--events N] [--rounds R]

Two components of the `service` world: the PDK-built example counter-service and a
minimal guest built here without the PDK (bench/minimal_guests.py: its handler returns
one emit command), so the PDK's guest cost and the host's cost show separately. For
each, floors measured in this run, all calls/s of `events.handle` on one thread:

  raw wasmtime-py   plain wasmtime-py with hand-made Records (no codec, queue, commands)
  raw fast call     the same instance through pdk.host._fastcall (converters built once)
  host call         the host's own instance, `PluginInstance.call_here` (limits, deadline)

and events/s through submit -> queue -> dispatcher -> handler -> commands (target >= 90%
of the raw fast call). Every column is measured once per round, the rounds interleaved
(a load swing hits all columns alike); the table gives the medians of the rounds, and
each round's runtime/fast ratio is printed above it, and the process's CPU time per
call/event (all threads) beside them, which other work on the machine moves less. Then the runtime's own cost per event without wasm (a guest object that
answers what the minimal guest answers: `submit` with the dispatcher held, `dispatch`
of a full queue with no submitter); then, for counter-service, p50/p99 dispatch latency
(accepted -> outcome) and HTTP ingress requests/s on loopback (202s). The load average
is printed before and after (other work on the machine moves every figure). Figures
only; nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from wasmtime.component import Record, Variant  # noqa: E402

from generator.build import build  # noqa: E402
from minimal_guests import build_minimal  # noqa: E402
from raw_floor import raw_instance  # noqa: E402
from pdk.host import Host  # noqa: E402
from pdk.host._fastcall import bind_export  # noqa: E402
from pdk.host.codec import Case, Ok  # noqa: E402
from pdk.host.runtime import RuntimeOptions, ServiceRuntime  # noqa: E402
from pdk.host.sources import HttpIngressServer  # noqa: E402

LIFECYCLE, EVENTS = "yoi:plugin/lifecycle@2.0.0", "yoi:plugin/events@2.0.0"


def plain_event(i: int) -> dict[str, object]:
    return {"id": str(i), "ingress": "inbox", "source": "manual", "kind": "message", "payload": Case("text", "hello"),
            "created_at_ms": 0, "attempt": 1, "correlation_id": None}  # fmt: skip


def raw_floor(component_path: Path, n: int) -> tuple[float, float, float]:
    """Calls/s of `events.handle` on one plain wasmtime-py instance (no queue or
    commands): with wasmtime-py's own conversion, and through pdk.host._fastcall;
    then the process's CPU µs per fast call."""
    store, func = raw_instance(component_path)
    start = func(LIFECYCLE, "start")
    start(store, "{}")
    start.post_return(store)
    handle = func(EVENTS, "handle")
    started = time.perf_counter()
    for i in range(n):
        ev = Record()
        for k, v in (("id", str(i)), ("ingress", "inbox"), ("source", "manual"), ("kind", "message"),
                     ("payload", Variant("text", "hello")), ("created-at-ms", 0), ("attempt", 1), ("correlation-id", None)):
            setattr(ev, k, v)
        handle(store, ev)
        handle.post_return(store)
    plain = n / (time.perf_counter() - started)
    owner = type("Owner", (), {})()  # bind_export caches converters on this object
    fast = bind_export(owner, (EVENTS, "handle"), handle, store, mode="fast")  # type: ignore[arg-type]
    for i in range(min(200, n)):
        fast(plain_event(i))
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        fast(plain_event(i))
    fast_rate = n / (time.perf_counter() - started)
    fast_cpu = (time.process_time() - cpu) / n * 1e6
    del store
    return plain, fast_rate, fast_cpu


def host_call_rate(host: Host, plugin_dir: Path, n: int) -> tuple[float, float]:
    """Calls/s of `events.handle` on the host's own instance (`call_here`: the call the
    dispatcher makes), without the runtime."""
    instance = host.load(plugin_dir, dev_grants=True).instance
    instance.call(LIFECYCLE, "start", "{}")
    call = getattr(instance, "call_here", instance.call)  # (`call` in builds before call_here)
    for i in range(min(200, n)):
        call(EVENTS, "handle", plain_event(i))
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        call(EVENTS, "handle", plain_event(i))
    rate = n / (time.perf_counter() - started)
    cpu_us = (time.process_time() - cpu) / n * 1e6
    instance.close()
    return rate, cpu_us


def runtime_rate(host: Host, plugin_dir: Path, n: int) -> tuple[float, int, float]:
    """Events/s through submit -> queue -> dispatcher -> handler -> commands, the
    submitter retrying as soon as the queue is full (1 ms naps); the events handled;
    the process's CPU µs per event (every thread: submitter, dispatcher, ticker)."""
    plugin = host.load(plugin_dir, dev_grants=True)
    rt = ServiceRuntime(plugin, {}, RuntimeOptions(queue_capacity=1024))
    rt.start()
    for _ in range(100):  # warm up
        rt.submit("inbox", "message", Case("text", "hello"))
    rt.wait_idle(120)
    before = rt.status()["counters"]["handled"]
    started, cpu = time.perf_counter(), time.process_time()
    sent = 0
    while sent < n:
        if getattr(rt.submit("inbox", "message", Case("text", "hello")), "event_id", None) is None:
            time.sleep(0.001)  # queue full: let the dispatcher catch up
            continue
        sent += 1
    rt.wait_idle(300)
    rate = n / (time.perf_counter() - started)
    cpu_us = (time.process_time() - cpu) / n * 1e6
    handled = rt.status()["counters"]["handled"] - before
    rt.stop()
    return rate, handled, cpu_us


class NoWasmGuest:
    """A runtime `Guest` without a component: `handle` answers what the minimal service
    guest answers (one emit command), so the runtime's own per-event cost shows apart
    from the codec and the wasm call. While `gate` is clear, `handle` holds the
    dispatcher (`held` is set) so that the queue can be filled."""

    has_lifecycle = True
    recycles = 0
    OUTPUT = Ok({"data_json": None, "commands": [{"id": "c1", "kind": Case("emit", {"topic": "counted", "data_json": '{"count": 1}'})}]})

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.held = threading.Event()

    def start(self, config_json: str) -> Ok:
        return Ok({"healthy": True, "data_json": None})

    def handle(self, event: dict) -> Ok:
        if not self.gate.is_set():
            self.held.set()
            self.gate.wait()
        return self.OUTPUT

    def status(self) -> dict:
        return {"healthy": True, "data_json": None}

    def stop(self) -> Ok:
        return Ok({"healthy": True, "data_json": None})

    def warm(self) -> None:
        pass

    def discard(self) -> None:
        pass


def runtime_overhead(host: Host, plugin_dir: Path, rounds: int = 10, batch: int = 1000) -> tuple[float, float]:
    """(µs per `submit` with the dispatcher held, µs per event dispatched from a full
    queue with nothing submitting), medians over `rounds` batches, without wasm."""
    guest = NoWasmGuest()
    rt = ServiceRuntime(host.load(plugin_dir, dev_grants=True), {}, RuntimeOptions(queue_capacity=batch + 1), guest=guest)
    rt.start()
    submits: list[float] = []
    dispatches: list[float] = []
    for _ in range(rounds):
        guest.gate.clear()
        guest.held.clear()
        rt.submit("inbox", "message", Case("text", "hello"))
        guest.held.wait()  # the dispatcher waits in `handle` with this event
        started = time.perf_counter()
        for _ in range(batch):
            rt.submit("inbox", "message", Case("text", "hello"))
        submits.append((time.perf_counter() - started) / batch * 1e6)
        started = time.perf_counter()
        guest.gate.set()
        rt.wait_idle(60)
        dispatches.append((time.perf_counter() - started) / (batch + 1) * 1e6)
    rt.stop()
    return statistics.median(submits), statistics.median(dispatches)


def load_average() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (each measures every column once)")
    args = parser.parse_args()
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        plugin_dir = Path(tmp) / "counter-service"
        shutil.copytree(ROOT / "examples" / "counter-service", plugin_dir, ignore=shutil.ignore_patterns("build", "dist"))
        build(plugin_dir)
        component_path = next((plugin_dir / "build").glob("*.wasm"))
        minimal_dir = Path(tmp) / "minimal-service"
        components = {"counter-service (PDK)": (plugin_dir, component_path), "minimal service": (minimal_dir, build_minimal("service", minimal_dir))}
        # Per component, per round: (raw wasmtime-py, raw fast call, host call, runtime, handled).
        measured: dict[str, list[tuple[float, float, float, float, int]]] = {label: [] for label in components}
        # Per component, per round: the process's CPU µs per call/event (fast call, host call, runtime).
        cpu_costs: dict[str, list[tuple[float, float, float]]] = {label: [] for label in components}
        overheads: list[tuple[float, float]] = []
        with Host(cache_dir=Path(tmp) / "cache", stderr=io.StringIO()) as host:
            for _ in range(args.rounds):  # interleaved: every column once per round, so a load swing hits all
                for label, (directory, wasm) in components.items():
                    plain, fast, fast_cpu = raw_floor(wasm, args.events)
                    here, here_cpu = host_call_rate(host, directory, args.events)
                    rate, handled, rate_cpu = runtime_rate(host, directory, args.events)
                    measured[label].append((plain, fast, here, rate, handled))
                    cpu_costs[label].append((fast_cpu, here_cpu, rate_cpu))
                overheads.append(runtime_overhead(host, minimal_dir))
        submit_us = statistics.median(o[0] for o in overheads)
        dispatch_us = statistics.median(o[1] for o in overheads)
        rows: list[tuple[str, float, float, float, float, int]] = []
        for label, runs in measured.items():
            med = [statistics.median(run[i] for run in runs) for i in range(4)]
            rows.append((label, med[0], med[1], med[2], med[3], min(run[4] for run in runs)))
        floor = rows[0][1]

        with Host(cache_dir=Path(tmp) / "cache", stderr=io.StringIO()) as host:
            plugin = host.load(plugin_dir, dev_grants=True)
            rt = ServiceRuntime(plugin, {}, RuntimeOptions(queue_capacity=1024))
            accepted_at: dict[str, float] = {}
            latencies: list[float] = []
            lock = threading.Lock()

            def on_outcome(outcome: dict) -> None:
                done = time.perf_counter()
                with lock:
                    t0 = accepted_at.pop(outcome["event_id"], None)
                if t0 is not None:
                    latencies.append(done - t0)

            rt.on_outcome(on_outcome)
            rt.start()
            started = time.perf_counter()
            sent = 0
            while sent < args.events:
                t0 = time.perf_counter()
                result = rt.submit("inbox", "message", Case("text", "hello"))
                event_id = getattr(result, "event_id", None)
                if event_id is None:  # queue full: let the dispatcher catch up
                    time.sleep(0.001)
                    continue
                with lock:
                    accepted_at[event_id] = t0
                sent += 1
            rt.wait_idle(120)
            rate = args.events / (time.perf_counter() - started)
            handled = rt.status()["counters"]["handled"]
            # Latency without queueing: one event at a time.
            latencies.clear()
            for _ in range(300):
                t0 = time.perf_counter()
                result = rt.submit("inbox", "message", Case("text", "hello"))
                with lock:
                    accepted_at[result.event_id] = t0  # type: ignore[union-attr]
                rt.wait_idle(10)

            server = HttpIngressServer([rt], host="127.0.0.1", port=0)
            port = server.start()
            conn = http.client.HTTPConnection("127.0.0.1", port)
            n_http = min(args.events, 1000)
            codes: dict[int, int] = {}
            started = time.perf_counter()
            for i in range(n_http):
                conn.request("POST", "/inbox", body=f"m{i}", headers={"Content-Type": "text/plain"})
                resp = conn.getresponse()
                resp.read()
                codes[resp.status] = codes.get(resp.status, 0) + 1
            http_rate = n_http / (time.perf_counter() - started)
            conn.close()
            server.stop()
            rt.wait_idle(120)
            rt.stop()
    lat = sorted(latencies)
    p50 = statistics.median(lat) * 1000
    p99 = lat[int(len(lat) * 0.99) - 1] * 1000
    print(f"events.handle calls/s on one thread ({args.events} calls/events each, {args.rounds} interleaved rounds; runtime target >= 90% of the raw fast call)")
    for label, runs in measured.items():
        ratios = [run[3] / run[1] for run in runs]
        print(f"  {label}: runtime/fast per round {', '.join(f'{r:.0%}' for r in ratios)} (median {statistics.median(ratios):.0%});"
              f" runtime events/s per round {', '.join(f'{run[3]:.0f}' for run in runs)}")  # fmt: skip
    print("medians of the rounds:")
    print(f"{'component':<24}{'raw wasmtime-py':>16}{'raw fast call':>14}{'host call':>11}{'runtime':>9}   runtime/fast  runtime/host  runtime/wasmtime-py")
    for label, plain, fast, here, rate_, handled_ in rows:
        print(f"{label:<24}{plain:16.0f}{fast:14.0f}{here:11.0f}{rate_:9.0f}   {rate_ / fast:11.0%}  {rate_ / here:12.0%}  {rate_ / plain:18.0%}"
              f"{'' if handled_ == args.events else f'  (handled {handled_})'}")  # fmt: skip
    print("CPU µs per call/event, the whole process (less moved by other load than wall time; medians of the rounds):")
    for label, costs in cpu_costs.items():
        fast_cpu, here_cpu, rate_cpu = (statistics.median(c[i] for c in costs) for i in range(3))
        print(f"  {label:<22} fast call {fast_cpu:7.1f}   host call {here_cpu:7.1f}   runtime {rate_cpu:7.1f}   fast/runtime {fast_cpu / rate_cpu:.0%}")
    print(f"runtime's own cost per event, no wasm (the minimal guest's output): submit {submit_us:.1f} µs, dispatch {dispatch_us:.1f} µs")
    print(f"raw wasmtime-py events.handle (floor): {floor:8.0f} calls/s")
    print(f"submit -> queue -> handler -> commands: {rate:8.0f} events/s  ({rate / floor:.0%} of the floor; handled {handled})")
    print(f"dispatch latency accepted -> outcome:   p50 {p50:.2f} ms, p99 {p99:.2f} ms (one event at a time)")
    print(f"HTTP ingress on loopback (1 client):    {http_rate:8.0f} requests/s  status codes {codes}")
    print(f"{load_before} before, {load_average()} after")


if __name__ == "__main__":
    main()
