"""Benchmark the host-owned WebSocket driver against a plain `websockets` client.

    python bench/websocket_bench.py [--round-trips N] [--messages N] [--server process|thread]

Both receivers run in this process, against the same server on 127.0.0.1; the server
runs in a process of its own (`--server thread`: on a thread of this process, sharing
its GIL with the receiver, so that each thread the receiver keeps busy delays it):

* round trip: the server sends a text message and waits for it to come back, one at a
  time. Through the plugin the path is server -> driver (reader) -> runtime queue ->
  guest handler -> `websocket-send` command -> driver (writer) -> server. The floor is
  a plain `websockets` client on its own event loop thread that echoes.
* one direction: the server sends N messages as fast as the receiver takes them;
  through the plugin a message counts once its handler returned (nothing is answered);
  the floor counts messages read by the plain client. A second floor offers the same
  events to the runtime with `rt.submit` (no WebSocket): the guest's own cost.

Prints p50/p99 latency, messages/s and the ratios. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
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

Scenario = Callable[[ServerConnection], Awaitable[Any]]


async def round_trips(ws: ServerConnection, n: int) -> list[float]:
    times: list[float] = []
    for i in range(n):
        started = time.perf_counter()
        await ws.send(f"ping {i}")
        await ws.recv()
        times.append(time.perf_counter() - started)
    return times


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


def through_plugin(host: Host, work: Path, rounds: int, messages: int, in_process: bool) -> tuple[list[float], float, float]:
    server = Server(in_process)
    try:
        path = plugin_dir(server.port, work)
        # Queue capacity as the manifest says (8 for this ingress): a realistic, small bound.
        plugin = host.load(path, dev_grants=True)
        rt = ServiceRuntime(plugin, {"record": False})
        rt.start()
        driver = WebSocketDriver(rt, plugin, options=DriverOptions(ping_interval_s=None))
        driver.start()
        server.next_client()
        server.round_trips(20)  # warm-up
        times = server.round_trips(rounds)
        rt.wait_idle(30)
        driver.stop()
        rt.stop()

        # One direction: nothing answered, a message counts once handled.
        rt = ServiceRuntime(plugin, {"record": False, "reply": False})
        rt.start()
        driver = WebSocketDriver(rt, plugin, options=DriverOptions(ping_interval_s=None))
        driver.start()
        server.next_client()
        before = rt.status()["counters"]["handled"]
        started = server.one_way(messages)
        while rt.status()["counters"]["handled"] - before < messages:
            rt.wait_idle(0.05)
        rate = messages / (time.perf_counter() - started)
        pauses = driver.status()["echo"]["pauses"]
        driver.stop()
        rt.stop()
        print(f"  (one direction through the plugin: the reader paused {pauses} times)")
        return times, rate, runtime_floor(host, path, messages)
    finally:
        server.close()


def runtime_floor(host: Host, path: Path, messages: int) -> float:
    """The same events offered by `rt.submit` directly (no WebSocket), retrying as
    soon as a slot frees: what the runtime and the guest can take at most."""
    plugin = host.load(path, dev_grants=True)
    rt = ServiceRuntime(plugin, {"record": False, "reply": False})
    room = threading.Event()
    rt.on_outcome(lambda _: room.set())
    rt.start()
    started = time.perf_counter()
    for i in range(messages):
        while True:
            room.clear()
            if getattr(rt.submit("chat", "text", Case("text", f"seq:{i} ."), source="echo"), "reason", None) is None:
                break
            room.wait(0.1)
    while rt.status()["counters"]["handled"] < messages:
        rt.wait_idle(0.05)
    rate = messages / (time.perf_counter() - started)
    rt.stop()
    return rate


def plain(rounds: int, messages: int, in_process: bool) -> tuple[list[float], float]:
    server = Server(in_process)
    try:
        client = PlainClient(f"ws://127.0.0.1:{server.port}/", echo=True)
        server.next_client()
        server.round_trips(20)
        times = server.round_trips(rounds)
        client.close()
        client = PlainClient(f"ws://127.0.0.1:{server.port}/", echo=False, target=messages)
        server.next_client()
        started = server.one_way(messages)
        client.done.wait(600)
        rate = messages / (time.perf_counter() - started)
        client.close()
        return times, rate
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--round-trips", type=int, default=500)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--server", choices=("process", "thread"), default="process", help="where the peer runs (default: its own process)")
    args = parser.parse_args()
    in_process = args.server == "thread"
    with tempfile.TemporaryDirectory(prefix="ws-bench-") as tmp, Host() as host:
        work = Path(tmp)
        plain_times, plain_rate = plain(args.round_trips, args.messages, in_process)
        print(f"building {PLUGIN.name} and loading it (compile cache)...")
        plugin_times, plugin_rate, floor_rate = through_plugin(host, work, args.round_trips, args.messages, in_process)
    us = 1e6
    print(f"\nround trip, text echo, {args.round_trips} sequential messages on loopback:")
    for label, times in (("plain websockets", plain_times), ("through the plugin", plugin_times)):
        print(f"  {label:<20} p50 {percentile(times, 50) * us:8.0f} µs   p99 {percentile(times, 99) * us:8.0f} µs   mean {statistics.fmean(times) * us:8.0f} µs")
    print(f"  ratio (plugin / plain): p50 {percentile(plugin_times, 50) / percentile(plain_times, 50):.1f}x, p99 {percentile(plugin_times, 99) / percentile(plain_times, 99):.1f}x")
    print(f"\none direction, server -> receiver, {args.messages} messages:")
    print(f"  plain websockets     {plain_rate:10.0f} msg/s")
    print(f"  through the plugin   {plugin_rate:10.0f} msg/s (handled by the guest)")
    print(f"  runtime floor        {floor_rate:10.0f} msg/s (the same events by rt.submit, no WebSocket)")
    print(f"  ratio plugin / plain: {plugin_rate / plain_rate:.3f}; plugin / runtime floor: {plugin_rate / floor_rate:.2f}")
    plain_p50, plugin_p50 = percentile(plain_times, 50) * us, percentile(plugin_times, 50) * us
    print(f"\nsummary (plain websockets and through the plugin in this run, the server in {'this process' if in_process else 'its own process'}; issue 16 targets):")
    print(f"  {'':<22}{'plain websockets':>18}{'through the plugin':>20}{'ratio':>9}   target")
    print(f"  {'echo round trip p50':<22}{plain_p50:15.0f} µs{plugin_p50:17.0f} µs{plugin_p50 / plain_p50:8.1f}x   <= 3x")
    print(f"  {'one direction':<22}{plain_rate:12.0f} msg/s{plugin_rate:14.0f} msg/s{plugin_rate / plain_rate:8.3f}x   >= 0.3x")


if __name__ == "__main__":
    main()
