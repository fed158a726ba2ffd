"""Benchmark the host-owned WebSocket driver against a plain `websockets` client.

    python bench/websocket_bench.py [--rounds R] [--round-trips N] [--messages N] [--server process|thread]
                                    [--switch-interval S] [--timeline N]

Both receivers run in this process, against the same server on 127.0.0.1; the server
runs in a process of its own (`--server thread`: on a thread of this process, sharing
its GIL with the receiver, so that each thread the receiver keeps busy delays it):

* round trip: the server sends a text message and waits for it to come back, one at a
  time. Through the plugin the path is server -> driver (reader) -> runtime queue ->
  guest handler -> `websocket-send` command -> driver (writer) -> server. The floor is
  a plain `websockets` client on its own event loop thread that echoes.
* one direction: the server sends N messages as fast as the receiver takes them;
  through the plugin a message counts once its handler returned (nothing is answered;
  counted by an outcome callback, as the driver's own wake-up is); the floor counts
  messages read by the plain client. Two more floors: the same events offered to the
  runtime with `rt.submit` (no WebSocket), and the guest's own cost, the host's
  `events.handle` call (`call_here`) in a loop with no runtime at all (wall and CPU
  per event; its rate over the plain rate is the most the plugin path could reach if
  the host and the driver cost nothing).

Every scenario runs once per round, the rounds one after another (`--rounds`, default
5), so that a load change on the machine hits plain and plugin alike. Each round gives
its own ratios (p50 over p50, rate over rate); the summary is the median of the
rounds' figures, with their range. Figures only; nothing is asserted.

`--timeline N` instead follows N echo round trips through the plugin hop by hop: a
`time.perf_counter()` stamp (CLOCK_MONOTONIC on Linux: the peer process's stamps are
on the same clock) at each hand-over, appended to a list (nothing printed on the
path), and the p50/p90 of each hop's share, with the dispatcher thread's own CPU time
for its hops (CPU below wall = waiting: for the GIL, or for the OS to run the thread).
`--switch-interval S` sets `sys.setswitchinterval(S)` in this process first (CPython's
default is 0.005 s), to measure how much of the path is GIL hand-over; the host never
changes it (a process-wide setting is the embedding application's to choose).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import connect  # noqa: E402
from websockets.asyncio.server import ServerConnection, serve  # noqa: E402

from generator.build import build  # noqa: E402
from pdk.host import Host  # noqa: E402
from pdk.host.codec import Case  # noqa: E402
from pdk.host.runtime import ServiceRuntime  # noqa: E402
from pdk.host.websocket import DriverOptions, WebSocketDriver  # noqa: E402

PLUGIN = ROOT / "tests" / "plugins" / "ws-echo"
PLACEHOLDER_PORT = "59999"
LIFECYCLE, EVENTS = "yoi:plugin/lifecycle@2.0.0", "yoi:plugin/events@2.0.0"

Scenario = Callable[[ServerConnection], Awaitable[Any]]


async def round_trips(ws: ServerConnection, n: int) -> list[float]:
    times: list[float] = []
    for i in range(n):
        started = time.perf_counter()
        await ws.send(f"ping {i}")
        await ws.recv()
        times.append(time.perf_counter() - started)
    return times


async def stamped_round_trips(ws: ServerConnection, n: int) -> list[tuple[float, float]]:
    """(sent, answer received) perf_counter stamps of each round trip."""
    stamps: list[tuple[float, float]] = []
    for i in range(n):
        started = time.perf_counter()
        await ws.send(f"ping {i}")
        await ws.recv()
        stamps.append((started, time.perf_counter()))
    return stamps


async def one_way(ws: ServerConnection, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        await ws.send(f"seq:{i} .")
    return started


class _Peer:
    """A loopback server whose one client connection at a time runs the scenarios."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.clients: asyncio.Queue[ServerConnection] | None = None
        self.ws: ServerConnection | None = None
        self.server = self.run(self._start())
        self.port: int = next(iter(self.server.sockets)).getsockname()[1]

    def run(self, coro: Awaitable[Any], timeout_s: float = 600.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)  # type: ignore[arg-type]

    async def _start(self) -> Any:
        self.clients = asyncio.Queue()
        return await serve(self._handle, "127.0.0.1", 0, compression=None, max_size=None)

    async def _handle(self, ws: ServerConnection) -> None:
        assert self.clients is not None
        await self.clients.put(ws)
        await ws.wait_closed()

    def do(self, command: str, n: int = 0) -> Any:
        if command == "accept":
            assert self.clients is not None
            self.ws = self.run(self.clients.get(), 120)
            return None
        assert self.ws is not None
        if command == "round_trips":
            return self.run(round_trips(self.ws, n))
        if command == "stamped_round_trips":
            return self.run(stamped_round_trips(self.ws, n))
        if command == "one_way":
            return self.run(one_way(self.ws, n))
        raise ValueError(command)

    def close(self) -> None:
        self.server.close()
        self.run(self.server.wait_closed())
        self.loop.call_soon_threadsafe(self.loop.stop)


def _peer_process(pipe: Any) -> None:
    """The server in a process of its own: answers (command, n) requests on `pipe`."""
    peer = _Peer()
    pipe.send(peer.port)
    while True:
        request = pipe.recv()
        if request is None:
            peer.close()
            return
        pipe.send(peer.do(*request))


class Server:
    """The peer of both clients. By default in a process of its own, as a remote peer
    is: in this process it shares the GIL with the receiver, and whichever thread of the
    receiver holds the GIL when the peer's socket wakes delays the peer's reading.
    `in_process=True` measures that setting too."""

    def __init__(self, in_process: bool = False) -> None:
        self._peer: _Peer | None = None
        self._pipe: Any = None
        self._process: Any = None
        if in_process:
            self._peer = _Peer()
            self.port = self._peer.port
            return
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_peer_process, args=(child,), daemon=True)
        self._process.start()
        self.port = self._pipe.recv()

    def do(self, command: str, n: int = 0) -> Any:
        if self._peer is not None:
            return self._peer.do(command, n)
        self._pipe.send((command, n))
        return self._pipe.recv()

    def next_client(self) -> None:
        self.do("accept")

    def round_trips(self, n: int) -> list[float]:
        return self.do("round_trips", n)  # type: ignore[no-any-return]

    def stamped_round_trips(self, n: int) -> list[tuple[float, float]]:
        return self.do("stamped_round_trips", n)  # type: ignore[no-any-return]

    def one_way(self, n: int) -> float:
        """Send n messages; the perf_counter (system-wide monotonic) when it started."""
        return self.do("one_way", n)  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._peer is not None:
            self._peer.close()
            return
        self._pipe.send(None)
        self._process.join(30)


class PlainClient:
    """The floor: a `websockets` client on its own loop thread (as the driver is)."""

    def __init__(self, url: str, echo: bool, target: int = 0) -> None:
        self.loop = asyncio.new_event_loop()
        self.received = 0
        self.target = target
        self.done = threading.Event()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._task = asyncio.run_coroutine_threadsafe(self._run(url, echo), self.loop)

    async def _run(self, url: str, echo: bool) -> None:
        async with connect(url, compression=None, proxy=None, max_queue=(4, 2), ping_interval=None) as ws:
            self.ws = ws
            async for message in ws:
                self.received += 1
                if echo:
                    await ws.send(message)
                if self.target and self.received >= self.target:
                    self.done.set()

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            asyncio.run_coroutine_threadsafe(ws.close(), self.loop).result(30)
        self._task.result(30)  # the reading loop ends once the connection is closed
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
        self.loop.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def plugin_dir(port: int, work: Path) -> Path:
    dest = work / "ws-echo"
    if not dest.exists():
        shutil.copytree(PLUGIN, dest, ignore=shutil.ignore_patterns("build", "__pycache__"))
        build(dest)
    manifest = dest / "plugin.toml"
    text = (PLUGIN / "plugin.toml").read_text()  # the placeholder port, every time
    manifest.write_text(text.replace(PLACEHOLDER_PORT, str(port)))
    return dest


class Counted:
    """Counts a runtime's final outcomes (`on_outcome`, on the dispatcher thread) and
    tells when `expect`'s number of them has ended. Cheaper and more exact than polling
    `status()`, which a waiting loop would do at every empty queue."""

    def __init__(self, rt: ServiceRuntime) -> None:
        self.ended = 0
        self._target: int | None = None
        self.reached = threading.Event()
        rt.on_outcome(self._outcome)

    def _outcome(self, _: Any) -> None:
        self.ended += 1
        if self._target is not None and self.ended >= self._target:
            self.reached.set()

    def expect(self, more: int) -> None:
        self.reached.clear()
        self._target = self.ended + more

    def wait(self, timeout_s: float = 600.0) -> None:
        if not self.reached.wait(timeout_s):
            raise TimeoutError(f"{self.ended} events ended; waited for {self._target}")


def driven(plugin: Any, config: dict[str, Any]) -> tuple[ServiceRuntime, WebSocketDriver, Counted]:
    """A runtime (queue capacity as the manifest says: 8 for this ingress, a realistic,
    small bound) with the driver, started."""
    rt = ServiceRuntime(plugin, config)
    counted = Counted(rt)
    rt.start()
    driver = WebSocketDriver(rt, plugin, options=DriverOptions(ping_interval_s=None))
    driver.start()
    return rt, driver, counted


def plugin_echo(plugin: Any, server: Server, n: int) -> list[float]:
    rt, driver, _ = driven(plugin, {"record": False})
    server.next_client()
    server.round_trips(20)  # warm-up
    times = server.round_trips(n)
    rt.wait_idle(30)
    driver.stop()
    rt.stop()
    return times


def plugin_one_way(plugin: Any, server: Server, n: int) -> tuple[float, int]:
    """One direction: nothing answered, a message counts once handled. (msg/s, how
    many times the reader paused for a full queue)."""
    rt, driver, counted = driven(plugin, {"record": False, "reply": False})
    server.next_client()
    counted.expect(n)
    started = server.one_way(n)
    counted.wait()
    rate = n / (time.perf_counter() - started)
    pauses = int(driver.status()["echo"]["pauses"])
    driver.stop()
    rt.stop()
    return rate, pauses


def text_event(i: int) -> Case:
    return Case("text", f"seq:{i} .")


def runtime_floor(plugin: Any, messages: int) -> float:
    """The same events offered by `rt.submit` directly (no WebSocket), retrying as
    soon as a slot frees: what the runtime and the guest can take at most."""
    rt = ServiceRuntime(plugin, {"record": False, "reply": False})
    counted = Counted(rt)
    room = threading.Event()
    rt.on_outcome(lambda _: room.set())
    rt.start()
    counted.expect(messages)
    started = time.perf_counter()
    for i in range(messages):
        while True:
            room.clear()
            if getattr(rt.submit("chat", "text", text_event(i), source="echo"), "reason", None) is None:
                break
            room.wait(0.1)
    counted.wait()
    rate = messages / (time.perf_counter() - started)
    rt.stop()
    return rate


def guest_cost(plugin: Any, messages: int) -> tuple[float, float]:
    """The guest's own cost per event: the host's `events.handle` call on its instance
    (`call_here`, the call the dispatcher makes: codec, deadline, wasm) in a loop, no
    runtime, queue or driver. (wall µs, CPU µs of this thread) per event."""
    instance = plugin.instance
    instance.call(LIFECYCLE, "start", json.dumps({"record": False, "reply": False}))
    call = getattr(instance, "call_here", instance.call)

    def event(i: int) -> dict[str, Any]:
        return {"id": f"ev-{i}", "ingress": "chat", "source": "echo", "kind": "text", "payload": text_event(i),
                "created_at_ms": 0, "attempt": 1, "correlation_id": None}  # fmt: skip

    for i in range(200):
        call(EVENTS, "handle", event(i))
    events = [event(i) for i in range(messages)]
    cpu, wall = time.thread_time(), time.perf_counter()
    for ev in events:
        call(EVENTS, "handle", ev)
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    instance.close()
    return wall / messages * 1e6, cpu / messages * 1e6


def plain_echo(server: Server, n: int) -> list[float]:
    client = PlainClient(f"ws://127.0.0.1:{server.port}/", echo=True)
    server.next_client()
    server.round_trips(20)
    times = server.round_trips(n)
    client.close()
    return times


def plain_one_way(server: Server, n: int) -> float:
    client = PlainClient(f"ws://127.0.0.1:{server.port}/", echo=False, target=n)
    server.next_client()
    started = server.one_way(n)
    client.done.wait(600)
    rate = n / (time.perf_counter() - started)
    client.close()
    return rate


@dataclass
class Round:
    plain_p50: float
    plain_p99: float
    plugin_p50: float
    plugin_p99: float
    plain_rate: float
    plugin_rate: float
    floor_rate: float
    guest_wall_us: float
    guest_cpu_us: float
    pauses: int

    @property
    def echo_ratio(self) -> float:
        return self.plugin_p50 / self.plain_p50

    @property
    def one_way_ratio(self) -> float:
        return self.plugin_rate / self.plain_rate

    @property
    def guest_rate(self) -> float:
        return 1e6 / self.guest_wall_us


def one_round(plugin: Any, server: Server, rounds: int, messages: int) -> Round:
    plain_times = plain_echo(server, rounds)
    plugin_times = plugin_echo(plugin, server, rounds)
    plain_rate = plain_one_way(server, messages)
    plugin_rate, pauses = plugin_one_way(plugin, server, messages)
    floor_rate = runtime_floor(plugin, messages)
    wall, cpu = guest_cost(plugin, min(messages, 2000))
    us = 1e6
    return Round(
        percentile(plain_times, 50) * us, percentile(plain_times, 99) * us,
        percentile(plugin_times, 50) * us, percentile(plugin_times, 99) * us,
        plain_rate, plugin_rate, floor_rate, wall, cpu, pauses,
    )  # fmt: skip


class Stamps:
    """perf_counter (and thread CPU) stamps per hop, appended on the path."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}

    def __call__(self, hop: str) -> None:
        self.wall.setdefault(hop, []).append(time.perf_counter())
        self.cpu.setdefault(hop, []).append(time.thread_time())


# The hops of an echo, in path order: (name, thread it runs on).
HOPS = (
    ("frame read by the loop", "loop"),  # the library's data_received: the socket had data
    ("reader submits", "loop"),  # the library parsed the frame; our reader has the message
    ("submit returned", "loop"),  # intake checks, queued, the dispatcher notified
    ("dispatcher awake", "dispatcher"),  # its wait on the runtime condition returned
    ("event taken", "dispatcher"),
    ("guest call starts", "dispatcher"),
    ("guest call ended", "dispatcher"),  # codec, wasm (GIL released), codec
    ("send executor starts", "dispatcher"),  # output checked, the command judged
    ("send executor ended", "dispatcher"),  # frame written (after the peer may have it)
)


def instrument(rt: ServiceRuntime, driver: WebSocketDriver, stamp: Stamps) -> None:
    """Wrap the hand-over points of this runtime and driver (instance attributes only;
    the classes are untouched, except the library's `data_received`, restored by
    `uninstrument`)."""
    from websockets.asyncio.client import ClientConnection

    names = [name for name, _ in HOPS]
    original = ClientConnection.data_received

    def data_received(self: Any, data: bytes) -> None:
        stamp(names[0])
        original(self, data)

    ClientConnection.data_received = data_received  # type: ignore[method-assign]
    rt._pdk_bench_restore = lambda: setattr(ClientConnection, "data_received", original)  # type: ignore[attr-defined]
    conn = driver.connections["echo"]
    submit = conn._submit_fn

    def submit_stamped(*args: Any, **kwargs: Any) -> Any:
        stamp(names[1])
        result = submit(*args, **kwargs)
        stamp(names[2])
        return result

    conn._submit_fn = submit_stamped
    wait = rt._cv.wait

    def wait_stamped(timeout: float | None = None) -> bool:
        woke = wait(timeout)
        stamp(names[3])
        return woke

    rt._cv.wait = wait_stamped  # type: ignore[method-assign]
    queue = rt._queue
    take = queue.take

    def take_stamped(now: float) -> Any:
        event = take(now)
        if event is not None:
            stamp(names[4])
        return event

    queue.take = take_stamped  # type: ignore[method-assign]
    guest: Any = rt.guest
    handle = guest.handle

    def handle_stamped(event: Any) -> Any:
        stamp(names[5])
        result = handle(event)
        stamp(names[6])
        return result

    guest.handle = handle_stamped
    executor = rt._executors["websocket_send"]

    def executor_stamped(context: Any) -> Any:
        stamp(names[7])
        result = executor(context)
        stamp(names[8])
        return result

    rt._executors["websocket_send"] = executor_stamped


def timeline(plugin: Any, server: Server, n: int) -> None:
    import bisect

    stamp = Stamps()
    rt, driver, _ = driven(plugin, {"record": False})
    instrument(rt, driver, stamp)
    server.next_client()
    server.round_trips(50)  # warm-up
    pairs = server.stamped_round_trips(n)
    rt.wait_idle(30)
    driver.stop()
    rt.stop()
    rt._pdk_bench_restore()  # type: ignore[attr-defined]
    # Each hop's stamp of round trip i: the first one at or after the previous hop's.
    chain = [sent for sent, _ in pairs]
    rows: list[tuple[str, str, list[float], list[int]]] = []  # (hop, thread, stamps, their indexes)
    for name, thread in HOPS:
        stamps = stamp.wall.get(name, [])
        if stamps:
            at = [min(len(stamps) - 1, bisect.bisect_left(stamps, t)) for t in chain]
            chain = [stamps[i] for i in at]
            rows.append((name, thread, chain, at))
    print(f"\n{n} echo round trips through the plugin, hop by hop (µs; each hop from the previous one's stamp;")
    print("the dispatcher's CPU time between its own stamps beside the wall time):")
    print(f"  {'hop':<28}{'thread':>11}{'p50':>8}{'p90':>8}{'cpu p50':>9}")
    previous = [sent for sent, _ in pairs]
    for k, (name, thread, times, at) in enumerate(rows):
        shares = [(t - p) * 1e6 for t, p in zip(times, previous)]
        cpu = ""
        if k and thread == "dispatcher" and rows[k - 1][1] == "dispatcher":
            before, before_at = rows[k - 1][0], rows[k - 1][3]
            spent = [(stamp.cpu[name][i] - stamp.cpu[before][j]) * 1e6 for i, j in zip(at, before_at)]
            cpu = f"{statistics.median(spent):9.0f}"
        print(f"  {name:<28}{thread:>11}{statistics.median(shares):8.0f}{percentile(shares, 90):8.0f}{cpu}")
        previous = times
    starts = next(times for name, _, times, _ in rows if name == "send executor starts")
    got = [(answered - start) * 1e6 for (_, answered), start in zip(pairs, starts)]
    print(f"  {'the peer has the answer':<28}{'peer':>11}{statistics.median(got):8.0f}{percentile(got, 90):8.0f}   (from the executor's start)")
    total = [(answered - sent) * 1e6 for sent, answered in pairs]
    print(f"  {'round trip':<28}{'':>11}{statistics.median(total):8.0f}{percentile(total, 90):8.0f}")


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _spread(values: list[float], fmt: str) -> str:
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of every scenario (default 5)")
    parser.add_argument("--round-trips", type=int, default=500)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--server", choices=("process", "thread"), default="process", help="where the peer runs (default: its own process)")
    parser.add_argument("--switch-interval", type=float, default=None, help="sys.setswitchinterval for this process (default: leave CPython's)")
    parser.add_argument("--timeline", type=int, default=0, metavar="N", help="only follow N echo round trips hop by hop")
    args = parser.parse_args()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    in_process = args.server == "thread"
    where = "this process" if in_process else "its own process"
    print(f"load average at the start: {load_average()}; switch interval {sys.getswitchinterval() * 1e3:g} ms")
    results: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="ws-bench-") as tmp, Host() as host:
        server = Server(in_process)
        try:
            print(f"building {PLUGIN.name} and loading it (compile cache)...")
            plugin = host.load(plugin_dir(server.port, Path(tmp)), dev_grants=True)
            if args.timeline:
                timeline(plugin, server, args.timeline)
                return
            print(f"\n{'round':>5} {'echo p50 plain/plugin µs':>26} {'ratio':>6} {'one way plain/plugin msg/s':>28} {'ratio':>7}"
                  f" {'rt.submit':>10} {'guest µs wall/cpu':>18} {'load':>15}")  # fmt: skip
            for i in range(args.rounds):
                r = one_round(plugin, server, args.round_trips, args.messages)
                results.append(r)
                print(f"{i + 1:>5} {r.plain_p50:12.0f} /{r.plugin_p50:8.0f}    {r.echo_ratio:5.2f}x {r.plain_rate:13.0f} /{r.plugin_rate:7.0f}"
                      f"     {r.one_way_ratio:6.3f}x {r.floor_rate:9.0f} {r.guest_wall_us:10.1f} /{r.guest_cpu_us:5.1f} {load_average():>15}")  # fmt: skip
        finally:
            server.close()
    med = statistics.median
    print(f"\nmedians over {len(results)} rounds (range), the server in {where}, load average at the end: {load_average()}")
    print(f"  echo round trip p50: plain {_spread([r.plain_p50 for r in results], '.0f')} µs, "
          f"through the plugin {_spread([r.plugin_p50 for r in results], '.0f')} µs")  # fmt: skip
    print(f"  echo round trip p99: plain {_spread([r.plain_p99 for r in results], '.0f')} µs, "
          f"through the plugin {_spread([r.plugin_p99 for r in results], '.0f')} µs")  # fmt: skip
    print(f"  one direction: plain {_spread([r.plain_rate for r in results], '.0f')} msg/s, "
          f"through the plugin {_spread([r.plugin_rate for r in results], '.0f')} msg/s "
          f"(the reader paused {med([r.pauses for r in results]):.0f} times per {args.messages} messages)")  # fmt: skip
    print(f"  runtime floor (rt.submit, no WebSocket): {_spread([r.floor_rate for r in results], '.0f')} msg/s; "
          f"plugin / floor {_spread([r.plugin_rate / r.floor_rate for r in results], '.2f')}")  # fmt: skip
    print(f"  the guest's own cost (host call_here, no runtime): {_spread([r.guest_wall_us for r in results], '.1f')} µs wall, "
          f"{_spread([r.guest_cpu_us for r in results], '.1f')} µs CPU per event = {_spread([r.guest_rate for r in results], '.0f')} events/s, "
          f"{_spread([r.guest_rate / r.plain_rate for r in results], '.3f')}x the plain one-direction rate")  # fmt: skip
    print(f"\nsummary (median of the {len(results)} rounds' own ratios; issue 16 targets):")
    print(f"  {'echo round trip p50':<22}{_spread([r.echo_ratio for r in results], '.2f')}x   target <= 3x")
    print(f"  {'one direction':<22}{_spread([r.one_way_ratio for r in results], '.3f')}x   target >= 0.3x"
          f" (a guest that cost the host nothing else would reach {med([r.guest_rate / r.plain_rate for r in results]):.3f}x;"
          f" by its CPU time alone, load aside, {med([1e6 / r.guest_cpu_us / r.plain_rate for r in results]):.3f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
