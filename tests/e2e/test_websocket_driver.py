"""The host-owned WebSocket driver, end to end: a real component (`tests/plugins/ws-echo`)
in the real runtime, real WebSocket servers on 127.0.0.1 (`pdk.testing.WebSocketTestServer`).

No test asserts on timing; every wait is a failure guard. Every frame is accounted
for: the driver's counters are checked against what the servers sent."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection
from ws_harness import FAST, Running, grants_for, plugin_copy, start, wait_until
from ws_server import collect, ws_server

from pdk.host import Host
from pdk.host.codec import Case
from pdk.testing import WebSocketTestServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("ws-echo")


@pytest.fixture
def server() -> Iterator[WebSocketTestServer]:
    s = ws_server()
    yield s
    s.close()


@pytest.fixture
def running_list() -> Iterator[list[Running]]:
    runs: list[Running] = []
    yield runs
    for run in runs:
        run.stop()


def accounted(conn: dict[str, Any]) -> int:
    """Frames in every bucket (stats.py): must equal `frames_in`."""
    filtered = conn["filtered"].get("text", 0) + conn["filtered"].get("binary", 0)
    return conn["delivered_frames"] + filtered + conn["refused_frames"] + conn["dropped_at_stop"] + (1 if conn["held"] else 0)


def test_echo_round_trip(host: Host, built: Path, tmp_path: Path, server: WebSocketTestServer, running_list: list[Running]) -> None:
    run = start(host, plugin_copy(built, tmp_path / "p", server.port))
    running_list.append(run)
    server.wait_for_connections(1, 30)
    run.wait_kinds(lambda k: k == ["open"])
    server.send("hello, plugin")
    assert server.wait_for_messages(1, 60) == ["hello, plugin"]  # answered by the plugin
    run.rt.wait_idle(10)
    seen = run.seen("echo")
    assert [s["kind"] for s in seen] == ["open", "text"]
    assert seen[1] == {"ingress": "chat", "source": "echo", "kind": "text", "payload_kind": "text", "text": "hello, plugin"}
    conn = run.conn()
    assert conn["state"] == "open" and conn["frames_in"] == 1 and conn["frames_out"] == 1
    assert conn["bytes_in"] == conn["bytes_out"] == len("hello, plugin")
    assert conn["events"] == {"open": 1, "text": 1}
    assert accounted(conn) == conn["frames_in"]
    status = run.rt.status()
    assert status["sources"]["websocket:echo"]["state"] == "open"
    assert status["commands"]["by_result"]["executed"] >= 1
    assert server.handshakes[0].path == "/echo"


def test_ten_thousand_messages_none_lost_order_kept(host: Host, built: Path, tmp_path: Path, running_list: list[Running]) -> None:
    total = 10_000
    acks: list[str] = []
    done = asyncio.Event()

    async def stream(srv: WebSocketTestServer, ws: ServerConnection) -> None:
        async def read() -> None:
            async for message in ws:
                acks.append(str(message))
                if len(acks) == total:
                    done.set()

        reader = asyncio.create_task(read())
        for i in range(total):
            await ws.send(f"seq:{i} .")  # `await` = the server feels the client's backpressure
        await done.wait()
        reader.cancel()

    srv = ws_server(stream)
    try:
        run = start(host, plugin_copy(built, tmp_path / "p", srv.port), config={"record": False})
        running_list.append(run)
        wait_until(lambda: len(acks) == total, 300, f"{total} acks (have {len(acks)})")
        assert acks == [f"ack:{i}" for i in range(total)]
        run.rt.wait_idle(10)
        conn = run.conn()
        assert conn["frames_in"] == conn["delivered_frames"] == total
        assert conn["frames_out"] == total and conn["send_failures"] == {}
        assert accounted(conn) == total
        plugin = run.rt.status(refresh=True)["plugin_status"]["data"]
        assert plugin["last_seq"] == total - 1 and plugin["out_of_order"] == 0
        counters = run.rt.status()["counters"]
        assert counters["dead_lettered"] == 0
    finally:
        srv.close()


def test_server_restart_reconnects_with_backoff_and_resumes(host: Host, built: Path, tmp_path: Path, server: WebSocketTestServer, running_list: list[Running]) -> None:
    run = start(host, plugin_copy(built, tmp_path / "p", server.port))
    running_list.append(run)
    run.wait_kinds(lambda k: k == ["open"])
    server.stop()  # closes the connection with 1001 and stops listening
    run.wait_kinds(lambda k: k.count("reconnecting") >= 3)  # refused dials, each followed by a retry
    assert run.conn()["state"] == "reconnecting"
    server.start()  # the same port
    run.wait_kinds(lambda k: "reconnected" in k)
    server.send("after the restart")
    assert server.wait_for_messages(1, 60) == ["after the restart"]
    kinds = run.wait_kinds(lambda k: k[-1] == "text")
    assert kinds[:3] == ["open", "close", "reconnecting"]
    assert kinds[-2:] == ["reconnected", "text"]
    assert "open" not in kinds[1:]  # later opens are `reconnected`
    seen = run.seen("echo")
    assert seen[1]["code"] == 1001
    # Exponential backoff: attempt n waits in [d/2, d] with d doubling, so no delay is
    # shorter than the one before it until the cap.
    delays = [s["json"]["delay_ms"] for s in seen if s["kind"] == "reconnecting"]
    attempts = [s["json"]["attempt"] for s in seen if s["kind"] == "reconnecting"]
    assert attempts == list(range(1, len(attempts) + 1))
    capped = [d for d in delays if d < FAST.reconnect_max_s * 1000 / 2]
    assert capped == sorted(capped)
    errors = [s["failure"] for s in seen if s["kind"] == "error"]
    assert errors and all(e.startswith("connect failed") for e in errors)
    conn = run.conn()
    assert conn["reconnects"] == 1 and conn["connects"] == 2 and conn["reconnect_attempts"] == len(attempts)
    assert len(server.handshakes) == 2


def test_binary_ping_and_close_frames(host: Host, built: Path, tmp_path: Path, server: WebSocketTestServer, running_list: list[Running]) -> None:
    run = start(host, plugin_copy(built, tmp_path / "p", server.port))
    running_list.append(run)
    run.wait_kinds(lambda k: k == ["open"])
    blob = bytes(range(256)) * 4
    server.send(blob)
    assert server.wait_for_messages(1, 60) == [blob]  # binary is delivered as bytes and echoed
    latency = server.run(_ping(server.latest()))  # answered by the host, not the plugin
    assert latency >= 0
    server.run(server.latest().close(4000, "custom reason"))
    kinds = run.wait_kinds(lambda k: "reconnected" in k)
    assert kinds == ["open", "binary", "close", "reconnecting", "reconnected"]
    seen = run.seen("echo")
    assert seen[1]["binary_hex"] == blob.hex()
    assert (seen[2]["code"], seen[2]["reason"]) == (4000, "custom reason")
    conn = run.conn()
    assert conn["last_close"] == {"code": 4000, "reason": "custom reason", "by_peer": True}
    assert "ping" not in conn["events"] and accounted(conn) == conn["frames_in"] == 1


async def _ping(ws: ServerConnection) -> float:
    pong = await ws.ping()
    return await asyncio.wait_for(pong, 10)


def test_slow_plugin_pauses_the_reader_and_loses_nothing(host: Host, built: Path, tmp_path: Path, running_list: list[Running]) -> None:
    """The plugin takes 5 ms per message and its queue holds 8: the reader stops
    reading, the server's writes back up (a send has to wait for the peer), and every
    message still arrives, in order."""
    pad = " " + "x" * (64 * 1024)
    state: dict[str, Any] = {"sent": 0, "blocked": 0, "paused_seen": False}

    async def flood(srv: WebSocketTestServer, ws: ServerConnection) -> None:
        for i in range(400):
            send = asyncio.ensure_future(ws.send(f"seq:{i}{pad}"))
            await asyncio.sleep(0)  # one step: a send that need not wait is done now
            if not send.done():
                state["blocked"] += 1  # waiting for the kernel: the client is not reading
            await send
            state["sent"] = i + 1
            if state["blocked"] and state["paused_seen"]:
                break
        await ws.wait_closed()

    srv = ws_server(flood)
    try:
        run = start(host, plugin_copy(built, tmp_path / "p", srv.port), config={"delay_ms": 5, "reply": False, "record": False})
        running_list.append(run)

        def observed() -> bool:
            if run.conn()["pauses"] > 0:
                state["paused_seen"] = True
            return bool(state["blocked"] and state["paused_seen"]) or state["sent"] == 400

        wait_until(observed, 120, "backpressure")
        assert state["blocked"] > 0, "the server never had to wait for the client"
        assert state["paused_seen"]
        wait_until(lambda: state["sent"] and run.conn()["delivered_frames"] == state["sent"], 120, "every frame delivered")
        sent = state["sent"]
        run.rt.wait_idle(30)
        conn = run.conn()
        assert conn["pauses"] >= 1 and conn["frames_in"] == sent and accounted(conn) == sent
        plugin = run.rt.status(refresh=True)["plugin_status"]["data"]
        assert plugin["counts"]["text"] == sent and plugin["last_seq"] == sent - 1 and plugin["out_of_order"] == 0
        counters = run.rt.status()["counters"]
        assert counters["refused"]["queue_full"] >= 1 and counters["dead_lettered"] == 0
    finally:
        srv.close()


def test_send_during_an_outage_fails_with_a_typed_result(host: Host, built: Path, tmp_path: Path, server: WebSocketTestServer, running_list: list[Running]) -> None:
    run = start(host, plugin_copy(built, tmp_path / "p", server.port))
    running_list.append(run)
    run.wait_kinds(lambda k: k == ["open"])
    run.rt.submit("control", "say", Case("text", "while up"))
    assert server.wait_for_messages(1, 60) == ["while up"]
    server.stop()
    run.wait_state("reconnecting")
    run.rt.submit("control", "say", Case("text", "while down"))
    run.rt.wait_idle(10)
    results = [r for r in run.command_results() if r["kind"] == "websocket_send"]
    assert results[0]["result"] == "executed"
    assert results[-1]["result"] == "failed" and results[-1]["detail"].startswith("not_connected:")
    assert run.conn()["send_failures"] == {"not_connected": 1}
    # Sent directly to the driver: the same typed answer, with a machine-readable reason.
    direct = run.driver.send({"connection": "echo", "message": Case("text", "x")})
    assert direct["result"] == "failed" and direct["reason"] == "not_connected"
    server.start()
    run.wait_kinds(lambda k: "reconnected" in k)
    run.rt.submit("control", "say", Case("text", "back"))
    assert server.wait_for_messages(2, 60) == ["while up", "back"]  # nothing queued from the outage


def test_send_results_for_unknown_and_too_large(host: Host, built: Path, tmp_path: Path, server: WebSocketTestServer, running_list: list[Running]) -> None:
    run = start(host, plugin_copy(built, tmp_path / "p", server.port), options=replace(FAST, max_send_bytes=8))
    running_list.append(run)
    run.wait_state("open")
    assert run.driver.send({"connection": "nope", "message": Case("text", "x")})["result"] == "invalid"
    assert run.driver.send({"connection": "echo", "message": Case("json", "{}")})["result"] == "invalid"
    big = run.driver.send({"connection": "echo", "message": Case("binary", b"123456789")})
    assert big["result"] == "failed" and big["reason"] == "too_large"
    assert run.driver.send({"connection": "echo", "message": Case("binary", b"12345678")})["result"] == "executed"
    assert server.wait_for_messages(1, 60) == [b"12345678"]


@pytest.mark.parametrize(
    "grant_body, reason",
    [
        ('surfaces = ["services", "ingresses"]\nhost_apis = ["websocket"]\n', "not granted: no targets"),
        ('surfaces = ["services", "ingresses"]\nhost_apis = []\n[[plugins.websocket]]\nscheme = "ws"\nhost = "127.0.0.1"\nport = {port}\n', "host api 'websocket' is not granted"),
        ('surfaces = ["services"]\nhost_apis = ["websocket"]\n[[plugins.websocket]]\nscheme = "ws"\nhost = "127.0.0.1"\nport = {port}\n', "the 'ingresses' surface is not granted"),
        ('surfaces = ["services", "ingresses"]\nhost_apis = ["websocket"]\n[[plugins.websocket]]\nscheme = "ws"\nhost = "127.0.0.1"\nport = {port}\npath_prefixes = ["/other"]\n', "not granted: no target allows"),
    ],
    ids=["no-target", "no-host-api", "no-ingress-surface", "other-path"],
)
def test_ungranted_connections_are_never_dialed(
    host: Host, built: Path, tmp_path: Path, server: WebSocketTestServer, running_list: list[Running], grant_body: str, reason: str
) -> None:
    path = plugin_copy(built, tmp_path / "p", server.port)
    grants = grants_for(path, grant_body.format(port=server.port))
    run = start(host, path, grants=grants)
    running_list.append(run)
    conn = run.conn()
    assert conn["state"] == "denied" and reason in conn["last_error"]
    assert run.rt.status()["sources"]["websocket:echo"]["state"] == "denied"
    run.stop()
    assert server.handshakes == []  # never dialed: denied connections get no task at all
    assert conn["frames_in"] == 0 and run.kinds() == []


def test_granted_connection_dials_while_a_denied_one_does_not(host: Host, built: Path, tmp_path: Path, server: WebSocketTestServer, running_list: list[Running]) -> None:
    """`aux` is granted (its own port), `echo` is not: only `aux` reaches a server."""
    aux = ws_server()
    try:
        path = plugin_copy(built, tmp_path / "p", server.port, aux.port)
        body = f'surfaces = ["services", "ingresses"]\nhost_apis = ["websocket"]\n[[plugins.websocket]]\nscheme = "ws"\nhost = "127.0.0.1"\nport = {aux.port}\n'
        run = start(host, path, grants=grants_for(path, body))
        running_list.append(run)
        assert aux.wait_for_connections(1, 30)[0].path == "/aux"
        run.wait_state("open", "aux")
        assert run.conn("echo")["state"] == "denied"
        run.stop()
        assert server.handshakes == [] and len(aux.handshakes) == 1
    finally:
        aux.close()


def _name_for_loopback() -> str | None:
    """A host name (not `localhost`) that resolves to loopback here, if there is one."""
    import socket

    for name in ("vm", "runsc", socket.gethostname()):
        try:
            infos = socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)
        except OSError:
            continue
        if name != "localhost" and infos and all(str(i[4][0]).startswith("127.") for i in infos):
            return name
    return None


def test_a_dns_name_that_resolves_to_loopback_is_denied_at_dial_time(host: Host, built: Path, tmp_path: Path, server: WebSocketTestServer, running_list: list[Running]) -> None:
    """Declared and granted by name, but the name resolves to 127.0.0.1: only a target
    naming the IP literal (or `localhost`) may reach loopback, so it is never dialed."""
    name = _name_for_loopback()
    if name is None:
        pytest.skip("no host name other than localhost resolves to loopback here")
    path = plugin_copy(built, tmp_path / "p", server.port)
    manifest = path / "plugin.toml"
    manifest.write_text(manifest.read_text().replace("127.0.0.1", name))
    run = start(host, path)
    running_list.append(run)
    conn = run.wait_state("denied")
    assert "restricted address" in conn["last_error"]
    run.stop()
    assert server.handshakes == [] and conn["reconnect_attempts"] == 0


def test_secret_header_reaches_the_server_only(
    host: Host, built: Path, tmp_path: Path, server: WebSocketTestServer, running_list: list[Running],
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:
    secret = "Bearer sk-test-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
    monkeypatch.setenv("WS_ECHO_TOKEN", secret)
    caplog.set_level(logging.DEBUG)  # even the WebSocket library's debug lines
    path = plugin_copy(built, tmp_path / "p", server.port, secrets=["token"])
    body = (
        f'surfaces = ["services", "ingresses"]\nhost_apis = ["websocket"]\n'
        f'[[plugins.websocket]]\nscheme = "ws"\nhost = "127.0.0.1"\nport = {server.port}\n'
        '[[plugins.secrets]]\nname = "token"\nenv = "WS_ECHO_TOKEN"\nheader = "Authorization"\n'
    )
    run = start(host, path, grants=grants_for(path, body))
    running_list.append(run)
    assert server.wait_for_connections(1, 30)[0].headers["authorization"] == secret
    run.wait_kinds(lambda k: k == ["open"])
    server.send("hi")
    server.wait_for_messages(1, 60)
    server.run(server.latest().close(1011, "server error"))  # errors and closes get reported...
    run.wait_kinds(lambda k: "reconnected" in k)
    run.rt.wait_idle(10)
    views = {
        "guest": json.dumps(run.rt.emitted()),
        "status": json.dumps(run.rt.status()),
        "driver": json.dumps(run.driver.status()),
        "diagnostics": json.dumps([r.to_json() for r in run.plugin.diagnostics.records()]),
        "logs": caplog.text,
        "outcomes": json.dumps(run.rt.outcomes()),
    }
    run.stop()
    out, err = capfd.readouterr()
    views["stdio"] = out + err
    for where, text in views.items():
        assert "sk-test-9f8e" not in text, f"the secret leaked into {where}"
    assert len(server.handshakes) == 2 and all(a.headers["authorization"] == secret for a in server.handshakes)


def test_unreadable_secret_fails_without_dialing(host: Host, built: Path, tmp_path: Path, server: WebSocketTestServer, running_list: list[Running], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WS_ECHO_MISSING", raising=False)
    path = plugin_copy(built, tmp_path / "p", server.port, secrets=["token"])
    body = (
        f'surfaces = ["services", "ingresses"]\nhost_apis = ["websocket"]\n'
        f'[[plugins.websocket]]\nscheme = "ws"\nhost = "127.0.0.1"\nport = {server.port}\n'
        '[[plugins.secrets]]\nname = "token"\nenv = "WS_ECHO_MISSING"\nheader = "Authorization"\n'
    )
    run = start(host, path, grants=grants_for(path, body))
    running_list.append(run)
    conn = run.wait_state("failed")
    assert "secret 'token' is not available" in conn["last_error"]
    assert run.wait_kinds(lambda k: k == ["error"])
    assert server.handshakes == []


def test_dev_grants_carry_no_secrets(host: Host, built: Path, tmp_path: Path, server: WebSocketTestServer, running_list: list[Running]) -> None:
    run = start(host, plugin_copy(built, tmp_path / "p", server.port, secrets=["token"]))
    running_list.append(run)
    assert run.conn()["state"] == "denied" and "dev grants carry no secrets" in run.conn()["last_error"]


def test_stop_closes_cleanly_without_spurious_events(host: Host, built: Path, tmp_path: Path, server: WebSocketTestServer, running_list: list[Running]) -> None:
    run = start(host, plugin_copy(built, tmp_path / "p", server.port))
    run.wait_kinds(lambda k: k == ["open"])
    server.send("one")
    server.wait_for_messages(1, 60)
    run.rt.wait_idle(10)
    run.driver.stop()
    server.wait(lambda: bool(server.handshakes[0].closes), 10, "the close handshake")
    assert server.handshakes[0].closes == [(1001, "host stopping")]
    run.rt.wait_idle(10)
    assert run.kinds() == ["open", "text"]  # no close, error or reconnecting event
    conn = run.conn()
    assert conn["state"] == "closed" and conn["last_error"] is None
    assert accounted(conn) == conn["frames_in"] == 1
    after = run.driver.send({"connection": "echo", "message": Case("text", "late")})
    assert after["result"] == "failed" and after["reason"] == "closed"
    run.rt.stop()
    assert len(server.handshakes) == 1  # no reconnect after stop


def test_a_dead_endpoint_does_not_delay_other_connections(host: Host, built: Path, tmp_path: Path, server: WebSocketTestServer, running_list: list[Running]) -> None:
    """`aux` accepts TCP but never answers the handshake; `echo` works meanwhile."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        options = replace(FAST, open_timeout_s=60.0)
        run = start(host, plugin_copy(built, tmp_path / "p", server.port, silent.getsockname()[1]), options=options)
        running_list.append(run)
        server.wait_for_connections(1, 30)
        server.send("still served")
        assert server.wait_for_messages(1, 60) == ["still served"]
        assert run.conn("aux")["state"] == "connecting"
        run.stop()  # stopping does not wait for the dead endpoint's handshake either
        assert run.conn("aux")["state"] == "closed"
    finally:
        silent.close()


def test_too_large_message_closes_with_1009_and_reconnects(host: Host, built: Path, tmp_path: Path, server: WebSocketTestServer, running_list: list[Running]) -> None:
    options = replace(FAST, max_message_bytes=1024)
    run = start(host, plugin_copy(built, tmp_path / "p", server.port), options=options)
    running_list.append(run)
    run.wait_kinds(lambda k: k == ["open"])
    server.send("x" * 2048)
    kinds = run.wait_kinds(lambda k: "reconnected" in k)
    assert kinds == ["open", "error", "close", "reconnecting", "reconnected"]
    seen = run.seen("echo")
    assert "exceeded 1024 bytes" in seen[1]["failure"] and seen[2]["code"] == 1009
    server.wait(lambda: bool(server.handshakes[0].closes), 10, "the close")
    assert server.handshakes[0].closes[0][0] == 1009


def test_heartbeat_detects_a_silent_peer(host: Host, built: Path, tmp_path: Path, running_list: list[Running]) -> None:
    """The first connection's server stops reading (so never answers pings): the
    heartbeat gives up, closes with 1011 and reconnects."""

    async def deaf_once(srv: WebSocketTestServer, ws: ServerConnection) -> None:
        if len(srv.handshakes) == 1:
            ws.transport.pause_reading()
            await ws.wait_closed()
            return
        await collect(srv, ws)

    srv = ws_server(deaf_once)
    try:
        options = replace(FAST, ping_interval_s=0.1, ping_timeout_s=0.2, close_timeout_s=0.2)
        run = start(host, plugin_copy(built, tmp_path / "p", srv.port), options=options)
        running_list.append(run)
        kinds = run.wait_kinds(lambda k: "reconnected" in k)
        assert kinds[:3] == ["open", "error", "close"]
        seen = run.seen("echo")
        assert "no pong" in seen[1]["failure"] and seen[2]["code"] == 1011
        assert run.conn()["ping_timeouts"] == 1
        srv.send("alive again")
        assert srv.wait_for_messages(1, 60) == ["alive again"]
    finally:
        srv.close()


def test_heartbeat_counts_frames_still_arriving_as_a_live_peer(host: Host, built: Path, tmp_path: Path, running_list: list[Running]) -> None:
    """A peer whose pong waits behind frames we are still reading is alive: the first
    server never reads (so never answers a ping) but keeps sending for ~3 s, more than
    the ping timeout; the heartbeat gives up only after its frames stop."""
    sent = 60

    async def deaf_but_talking(srv: WebSocketTestServer, ws: ServerConnection) -> None:
        if len(srv.handshakes) == 1:
            ws.transport.pause_reading()
            for i in range(sent):
                await ws.send(f"seq:{i} .")
                await asyncio.sleep(0.05)
            await ws.wait_closed()
            return
        await collect(srv, ws)

    srv = ws_server(deaf_but_talking)
    try:
        options = replace(FAST, ping_interval_s=0.1, ping_timeout_s=1.0, close_timeout_s=0.2)
        run = start(host, plugin_copy(built, tmp_path / "p", srv.port), options=options)
        running_list.append(run)
        kinds = run.wait_kinds(lambda k: "reconnected" in k, timeout_s=60)
        # Every frame of the first connection came before the heartbeat gave up.
        assert kinds[: sent + 3] == ["open"] + ["text"] * sent + ["error", "close"]
        assert run.conn()["ping_timeouts"] == 1 and len(srv.handshakes) == 2
    finally:
        srv.close()


def test_kinds_the_ingress_does_not_want_are_filtered(host: Host, built: Path, tmp_path: Path, running_list: list[Running]) -> None:
    """`aux` takes only open and text: a binary frame is counted, not submitted."""
    aux = ws_server()
    try:
        main = ws_server()
        run = start(host, plugin_copy(built, tmp_path / "p", main.port, aux.port))
        running_list.append(run)
        aux.wait_for_connections(1, 30)
        run.wait_kinds(lambda k: k == ["open"], source="aux")
        aux.send(b"\x01\x02")
        aux.send("text after binary")
        run.wait_kinds(lambda k: k == ["open", "text"], source="aux")
        conn = run.conn("aux")
        assert conn["filtered"] == {"binary": 1} and conn["frames_in"] == 2 and accounted(conn) == 2
        run.stop()
        main.close()
    finally:
        aux.close()


if sys.platform == "win32":  # pragma: no cover
    pytest.skip("loopback tests assume a POSIX host", allow_module_level=True)
