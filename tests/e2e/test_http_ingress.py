"""The inbound HTTP webhook listener in front of real runtimes running real components,
talked to with a real HTTP client on 127.0.0.1.

How the tests make the queue full or the plugin unavailable without timing bets:

* 503 (queue full): `RuntimeOptions(queue_capacity=1, retry_backoff_ms=60000)` and
  counter-service's `fail_on` config. The first message fails with a retryable error
  and waits a minute for its retry, holding the only slot; the second request is
  refused whatever the scheduling, because an accepted event holds its slot until it
  ends (handled or dead-lettered), and that one cannot end before the retry.
  `stop(drain_deadline_s=0)` then dead-letters it with reason `stopping`.
* "requests never wait for the plugin": the dispatcher is stalled for real — a job
  that spins past a short call deadline traps, the runtime waits a one-minute
  restart backoff — and a request still gets its 202 at once.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from pdk.host import Host
from pdk.host.runtime import RuntimeOptions, ServiceRuntime
from pdk.host.sources import HttpIngressServer
from pdk.limits import HTTP_INGRESS_BODY_MAX_BYTES, HTTP_INGRESS_HEADERS_MAX_BYTES

pytestmark = pytest.mark.slow

WAIT_S = 30.0  # an upper bound for conditions that hold after a few milliseconds


Runtimes = Callable[..., tuple[ServiceRuntime, HttpIngressServer]]


@pytest.fixture
def serve(host: Host, built_plugin: Callable[[str], Path]) -> Iterator[Runtimes]:
    """`serve(name, config, options)`: a started runtime and a listener in front of it."""
    started: list[tuple[ServiceRuntime, HttpIngressServer]] = []

    def _serve(name: str, config: dict[str, Any] | None = None, options: RuntimeOptions | None = None) -> tuple[ServiceRuntime, HttpIngressServer]:
        plugin = host.load(built_plugin(name), dev_grants=True)
        rt = ServiceRuntime(plugin, config or {}, options)
        assert rt.start()["lifecycle"]["state"] == "running"
        server = HttpIngressServer([rt])
        server.start()
        started.append((rt, server))
        return rt, server

    yield _serve
    for rt, server in started:
        server.stop()
        rt.stop(drain_deadline_s=0)


def post(server: HttpIngressServer, path: str, body: bytes, content_type: str | None = "text/plain", method: str = "POST", headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT_S)
    try:
        hdrs = dict(headers or {})
        if content_type:
            hdrs["Content-Type"] = content_type
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(data) if data else None
    finally:
        conn.close()


def final_outcome(rt: ServiceRuntime, event_id: str) -> dict[str, Any] | None:
    return next((o for o in rt.outcomes() if o["event_id"] == event_id and o["outcome"] != "retrying"), None)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def assert_invariant(rt: ServiceRuntime) -> dict[str, Any]:
    doc = rt.status()
    c, q = doc["counters"], doc["queue"]
    assert c["accepted"] == c["handled"] + c["dead_lettered"] + q["depth"] + q["in_flight"]
    return doc


def test_accepted_202_and_the_event_is_handled(serve: Runtimes) -> None:
    rt, server = serve("counter-service")
    status, _, doc = post(server, "/inbox", b"hello over http", headers={"X-Request-Id": "req-42"})
    assert status == 202
    event_id = doc["event_id"]
    assert rt.wait_idle(WAIT_S)
    outcome = final_outcome(rt, event_id)
    assert outcome is not None and outcome["outcome"] == "handled"
    assert outcome["source"] == "http:inbox" and outcome["correlation_id"] == "req-42"
    (emitted,) = [r for r in rt.emitted("counted") if r["event_id"] == event_id]
    assert emitted["data"] == {"count": 1, "text": "hello over http", "attempt": 1}
    doc = assert_invariant(rt)
    assert doc["sources"]["http:inbox"]["accepted"] == 1
    assert doc["counters"]["handled"] >= 1


def test_webhook_json_normalized_and_invalid_payload_422(serve: Runtimes) -> None:
    rt, server = serve("webhook-ingress")
    order = {"order_id": "A-1", "amount_cents": 1250, "currency": "EUR"}
    status, _, doc = post(server, "/hooks/orders", json.dumps(order).encode(), "application/json")
    assert status == 202
    assert rt.wait_idle(WAIT_S)
    (emitted,) = rt.emitted("orders.normalized")
    assert emitted["event_id"] == doc["event_id"]
    assert emitted["data"] == {"id": "A-1", "amount": 12.5, "currency": "EUR", "customer": "anonymous"}

    bad = {"order_id": "A-2", "amount_cents": -5, "currency": "GBP"}
    status, headers, doc = post(server, "/hooks/orders", json.dumps(bad).encode(), "application/json")
    assert status == 422
    assert doc["error"]["code"] == "invalid_payload" and "schema" in doc["error"]["message"]
    status, _, doc = post(server, "/hooks/orders", b"{not json", "application/json")
    assert status == 400 and doc["error"]["code"] == "invalid_json"

    doc = assert_invariant(rt)
    assert doc["counters"]["accepted"] == 1 and doc["counters"]["refused"]["invalid_payload"] == 1
    assert doc["sources"]["http:orders"]["refused"] == {"invalid_payload": 1}
    assert doc["sources"]["http:orders"]["rejected"] == {"400": 1}


def test_queue_full_is_503_with_retry_after(serve: Runtimes) -> None:
    rt, server = serve("counter-service", {"fail_on": "hold"}, RuntimeOptions(queue_capacity=1, retry_backoff_ms=60_000))
    status, _, first = post(server, "/inbox", b"hold")
    assert status == 202
    # `hold` fails with a retryable error and waits 60 s for its retry: it holds the only slot.
    status, headers, doc = post(server, "/inbox", b"next")
    assert status == 503
    assert int(headers["retry-after"]) >= 1
    assert doc["error"]["code"] == "queue_full"
    status, headers, _ = post(server, "/inbox", b"again")
    assert status == 503 and int(headers["retry-after"]) >= 1

    server.stop()
    final = rt.stop(drain_deadline_s=0)
    c = final["counters"]
    assert c["accepted"] == 1 and c["refused"]["queue_full"] == 2
    assert c["accepted"] == c["handled"] + c["dead_lettered"]
    assert final["sources"]["http:inbox"]["refused"] == {"queue_full": 2}
    (letter,) = rt.dead_letters()
    assert letter["event"]["id"] == first["event_id"] and letter["reason"] == "stopping"


def test_not_running_is_503(serve: Runtimes) -> None:
    rt, server = serve("counter-service")
    rt.stop()
    status, headers, doc = post(server, "/inbox", b"late")
    assert status == 503 and headers["retry-after"] == "1"
    assert doc["error"]["code"] == "not_running"
    assert rt.status()["sources"]["http:inbox"]["refused"] == {"not_running": 1}


def test_requests_never_wait_for_the_plugin(serve: Runtimes) -> None:
    rt, server = serve(
        "slow-service",
        {},
        RuntimeOptions(call_deadline_s=0.5, restart_backoff_initial_s=60, restart_backoff_max_s=60),
    )
    status, _, _ = post(server, "/work", json.dumps({"spin_ms": 10**9}).encode(), "application/json")
    assert status == 202
    wait_for(lambda: rt.state == "restarting", "the trapped job to stall the dispatcher")
    # The plugin cannot handle anything for a minute; the listener still answers at once.
    status, _, doc = post(server, "/work", json.dumps({"n": 2}).encode(), "application/json")
    assert status == 202
    assert final_outcome(rt, doc["event_id"]) is None
    assert rt.status()["queue"]["depth"] == 2
    server.stop()
    final = rt.stop(drain_deadline_s=0)
    assert final["counters"]["accepted"] == 2 == final["counters"]["dead_lettered"]


def test_unknown_path_wrong_method_oversized(serve: Runtimes) -> None:
    rt, server = serve("counter-service")
    status, _, doc = post(server, "/nope", b"x")
    assert status == 404 and doc["error"]["code"] == "not_found"
    status, headers, _ = post(server, "/inbox", b"", method="GET")
    assert status == 405 and headers["allow"] == "POST"
    status, _, doc = post(server, "/inbox", b"x" * (HTTP_INGRESS_BODY_MAX_BYTES + 1))
    assert status == 413 and doc["error"]["code"] == "payload_too_large"
    status, _, _ = post(server, "/inbox", b"x", headers={"X-Big": "a" * HTTP_INGRESS_HEADERS_MAX_BYTES})
    assert status == 431
    doc = rt.status()
    assert doc["counters"]["accepted"] == 0
    assert doc["sources"]["http"]["rejected"] == {"404": 1, "431": 1}
    assert doc["sources"]["http:inbox"]["rejected"] == {"405": 1, "413": 1}


def test_an_oversized_body_is_never_read(serve: Runtimes) -> None:
    """413 comes from the Content-Length alone: the client sends no body at all."""
    _, server = serve("counter-service")
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S) as sock:
        sock.sendall(f"POST /inbox HTTP/1.1\r\nHost: t\r\nContent-Length: {10 * HTTP_INGRESS_BODY_MAX_BYTES}\r\n\r\n".encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 413 ")


def test_two_plugins_on_one_listener(host: Host, built_plugin: Callable[[str], Path]) -> None:
    runtimes = [ServiceRuntime(host.load(built_plugin(name), dev_grants=True), {}) for name in ("counter-service", "webhook-ingress")]
    for rt in runtimes:
        rt.start()
    try:
        with HttpIngressServer(runtimes) as server:
            assert post(server, "/inbox", b"one")[0] == 202
            order = {"order_id": "B-1", "amount_cents": 1, "currency": "USD", "customer": "c"}
            assert post(server, "/hooks/orders", json.dumps(order).encode(), "application/json")[0] == 202
        counter, webhook = runtimes
        assert counter.wait_idle(WAIT_S) and webhook.wait_idle(WAIT_S)
        assert [r["data"]["text"] for r in counter.emitted("counted")] == ["one"]
        assert [r["data"]["id"] for r in webhook.emitted("orders.normalized")] == ["B-1"]
    finally:
        for rt in runtimes:
            rt.stop()
