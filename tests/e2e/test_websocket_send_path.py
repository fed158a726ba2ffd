"""The send path of the WebSocket driver (pdk/host/websocket/wire.py): a send is
written from the sender's thread when the socket takes it, through the event loop
otherwise. Both paths share one connection without tearing or reordering a frame, and
a frame the socket took only in part is finished before anything else.

No test asserts on timing; every wait is a failure guard."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection
from ws_harness import FAST, Running, plugin_copy, start, wait_until
from ws_server import ws_server

from pdk.host import Host
from pdk.host.codec import Case
from pdk.testing import WebSocketTestServer

pytestmark = pytest.mark.slow

THREADS = 4
PER_THREAD = 40
SIZE = 60_000  # near the send limit: a few of them fill the socket's buffers


@pytest.fixture(scope="module")
def built(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("ws-echo")


@pytest.fixture
def running_list() -> Iterator[list[Running]]:
    runs: list[Running] = []
    yield runs
    for run in runs:
        run.stop()


def message(thread: int, i: int) -> str:
    head = f"t{thread}:{i}:"
    return head + "x" * (SIZE - len(head))


def test_sends_from_many_threads_through_a_full_socket_arrive_whole_and_in_order(host: Host, built: Path, tmp_path: Path, running_list: list[Running]) -> None:
    received: list[str] = []
    read_now = threading.Event()

    async def late_reader(srv: WebSocketTestServer, ws: ServerConnection) -> None:
        while not read_now.is_set():  # not reading: the client's socket fills up
            await asyncio.sleep(0.01)
        async for data in ws:
            received.append(str(data))

    srv = ws_server(late_reader)
    try:
        # A send may wait while the peer is not reading; none is meant to time out here.
        run = start(host, plugin_copy(built, tmp_path / "p", srv.port), options=replace(FAST, send_timeout_s=120.0))
        running_list.append(run)
        run.wait_state("open")
        conn = run.driver.connections["echo"]
        results: list[list[str]] = [[] for _ in range(THREADS)]

        def sender(thread: int) -> None:
            for i in range(PER_THREAD):
                outcome = run.driver.send({"connection": "echo", "message": Case("text", message(thread, i))})
                results[thread].append(outcome["result"] if outcome["result"] == "executed" else f"{outcome['result']}: {outcome['detail']}")

        threads = [threading.Thread(target=sender, args=(t,), daemon=True) for t in range(THREADS)]
        for t in threads:
            t.start()
        # The socket is full once a message waits on the loop's path (or one went in part).
        wait_until(lambda: conn.gate.loop_items > 0 or conn.gate.partial > 0, 120, "a send that the socket could not take at once")
        read_now.set()
        for t in threads:
            t.join(300)
        assert results == [["executed"] * PER_THREAD for _ in range(THREADS)]
        total = THREADS * PER_THREAD
        wait_until(lambda: len(received) == total, 120, f"{total} messages at the server (have {len(received)})")
        assert sorted(received) == sorted(message(t, i) for t in range(THREADS) for i in range(PER_THREAD))  # each one whole
        for thread in range(THREADS):
            mine = [m for m in received if m.startswith(f"t{thread}:")]
            assert mine == [message(thread, i) for i in range(PER_THREAD)]  # in each sender's order
        status = run.conn()
        assert status["state"] == "open" and status["connects"] == 1  # no frame was torn
        assert status["frames_out"] == total and status["bytes_out"] == total * SIZE
        assert status["send_failures"] == {}
        assert conn.gate.direct >= 1  # some went straight from their thread
        assert conn.gate.loop_items == 0  # every message on the loop's path was settled
    finally:
        srv.close()


def test_the_plugin_echo_is_sent_from_the_dispatcher_thread(host: Host, built: Path, tmp_path: Path, running_list: list[Running]) -> None:
    srv = ws_server()
    try:
        run = start(host, plugin_copy(built, tmp_path / "p", srv.port), config={"record": False})
        running_list.append(run)
        run.wait_state("open")
        for i in range(20):
            srv.send(f"hello {i}")
            assert srv.wait_for_messages(i + 1, 60)[-1] == f"hello {i}"
        assert run.rt.wait_idle(30)  # the last event ended: its send returned
        conn = run.driver.connections["echo"]
        assert conn.gate.direct == 20 and conn.gate.loop_items == 0
        assert run.conn()["frames_out"] == 20
    finally:
        srv.close()
