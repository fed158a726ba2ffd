"""The `pdk.testing` pytest plugin: its fixtures used the way plugin authors use them
(this project's tests get them through the same `pytest11` entry point), against real
loopback servers, real builds and the real reference host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import pdk
from pdk.host.codec import Case
from pdk import HttpResponse
from pdk.testing import FakeHost, HttpTestServer, ScriptedResponse, WebSocketTestServer

# -- fake host ------------------------------------------------------------------------------


def test_fake_host_captures_logs_and_serves_scripted_responses(fake_host: FakeHost) -> None:
    pdk.log.info("hello")
    fake_host.http_responses["https://api.example.com/v1/x"] = HttpResponse(200, [], b'{"ok": true}')
    fake_host.files[("data", "notes/a.txt")] = b"a"
    assert pdk.http.get("https://api.example.com/v1/x").text == '{"ok": true}'
    assert pdk.fs.read_text("data", "notes/a.txt") == "a"
    assert [e.name for e in pdk.fs.list("data", "notes")] == ["a.txt"]
    with pytest.raises(pdk.HostApiError) as raised:
        pdk.http.get("https://api.example.com/v1/unscripted")
    assert raised.value.code == "denied"
    assert fake_host.logs == [("info", "hello")]
    assert [r["url"] for r in fake_host.requests] == ["https://api.example.com/v1/x", "https://api.example.com/v1/unscripted"]


# -- http_server ----------------------------------------------------------------------------


def _fetch(request: urllib.request.Request) -> tuple[int, bytes, dict[str, str]]:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def test_http_server_records_requests_and_answers_scripted_responses(http_server: HttpTestServer) -> None:
    http_server.respond("/v1/items", json={"items": [1]}, headers={"x-served-by": "test"})
    http_server.respond("/v1/items", method="DELETE", status=204)
    http_server.respond("/echo", responder=lambda r: ScriptedResponse(201, r.body[::-1]))
    assert http_server.url.startswith("http://127.0.0.1:")

    status, body, headers = _fetch(urllib.request.Request(http_server.url_for("/v1/items?page=2"), headers={"Authorization": "t"}))
    assert (status, json.loads(body), headers["x-served-by"]) == (200, {"items": [1]}, "test")
    assert _fetch(urllib.request.Request(http_server.url_for("/v1/items"), method="DELETE"))[0] == 204
    assert _fetch(urllib.request.Request(http_server.url_for("/echo"), data=b"abc", method="POST"))[:2] == (201, b"cba")
    assert _fetch(urllib.request.Request(http_server.url_for("/nowhere")))[0] == 404

    first, *_ = http_server.wait_for(4)
    assert (first.method, first.path, first.query, first.headers["authorization"]) == ("GET", "/v1/items", "page=2", "t")
    assert [(r.method, r.path) for r in http_server.requests] == [("GET", "/v1/items"), ("DELETE", "/v1/items"), ("POST", "/echo"), ("GET", "/nowhere")]
    assert http_server.requests[2].text == "abc"


def test_http_server_wait_for_says_when_requests_did_not_come(http_server: HttpTestServer) -> None:
    with pytest.raises(TimeoutError, match="expected 1 requests, got 0"):
        http_server.wait_for(1, timeout_s=0.05)


# -- websocket_server ---------------------------------------------------------------------------


def test_websocket_server_echoes_records_pushes_and_closes(websocket_server: WebSocketTestServer) -> None:
    with connect(websocket_server.url + "feed", additional_headers={"X-Token": "secret"}) as client:
        client.send("hi")
        assert client.recv(timeout=10) == "hi"
        client.send(b"\x00\x01")
        assert client.recv(timeout=10) == b"\x00\x01"
        assert websocket_server.send("pushed") == 1
        assert client.recv(timeout=10) == "pushed"
        assert websocket_server.open_clients == 1
        websocket_server.close_clients(4000, "bye")
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=10)
        assert closed.value.rcvd is not None and (closed.value.rcvd.code, closed.value.rcvd.reason) == (4000, "bye")
    assert websocket_server.wait_for_messages(2) == ["hi", b"\x00\x01"]
    [handshake] = websocket_server.wait_for_connections(1)
    assert (handshake.path, handshake.headers["x-token"]) == ("/feed", "secret")


def test_websocket_server_without_echo_only_records() -> None:
    with WebSocketTestServer(echo=False) as server, connect(server.url) as client:
        client.send("one")
        assert server.wait_for_messages(1) == ["one"]
        with pytest.raises(TimeoutError):
            client.recv(timeout=0.05)


# -- build_plugin / load_plugin / service_runtime ----------------------------------------------------


@pytest.mark.slow
def test_load_plugin_uses_dev_grants_or_the_grants_given(
    built_plugin: Callable[[str], Path], load_plugin: Callable[..., Any], build_plugin: Callable[[str | Path], Path], tmp_path: Path
) -> None:
    directory = built_plugin("text-tools")
    assert build_plugin(directory) == directory.resolve()
    plugin = load_plugin(directory)
    assert plugin.grants.dev
    assert plugin.call_tool("text_stats", {"text": "a b a"}).content["unique_words"] == 2

    grants = tmp_path / "grants.toml"
    grants.write_text(
        f'[[plugins]]\nid = "text-tools"\nversion = "0.1.0"\ndigest = "{plugin.digest}"\nsurfaces = ["tools"]\ntools = ["reshape"]\n'
    )
    granted = load_plugin(directory, grants=grants)
    assert not granted.grants.dev
    assert granted.call_tool("text_stats", {"text": "a"}).error.code.value == "denied"
    assert granted.call_tool("reshape", {"records": []}).ok


@pytest.mark.slow
def test_service_runtime_starts_the_plugin_and_runs_events(built_plugin: Callable[[str], Path], service_runtime: Callable[..., Any]) -> None:
    runtime = service_runtime(built_plugin("counter-service"), config={"greeting": "yo"})
    assert runtime.state == "running"
    assert runtime.submit("inbox", "message", Case("text", "hi")).accepted
    assert runtime.wait_idle(30)
    assert [e["data"]["count"] for e in runtime.emitted("counted")] == [1]


@pytest.mark.slow
def test_service_runtime_stops_what_it_started_when_the_test_ends(built_plugin: Callable[[str], Path], tmp_path: Path) -> None:
    # An author's test suite in a subprocess: the fixtures arrive through the
    # installed `pytest11` entry point, and the runtime of the first test is stopped
    # before the second runs.
    (tmp_path / "test_author.py").write_text(
        "from pathlib import Path\n"
        "from pdk.host.codec import Case\n"
        f"PLUGIN = Path({str(built_plugin('counter-service'))!r})\n"
        "seen = []\n\n"
        "def test_runs(service_runtime):\n"
        "    seen.append(service_runtime(PLUGIN))\n"
        "    assert seen[0].state == 'running'\n\n"
        "def test_stopped_afterwards():\n"
        "    assert seen[0].state == 'stopped'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_author.py"],
        cwd=tmp_path, capture_output=True, text=True, env=dict(os.environ),
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert proc.stdout.strip().splitlines()[-1].startswith("2 passed")
