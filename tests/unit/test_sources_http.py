"""The HTTP ingress listener's own logic against a fake runtime: routing, bounds,
status codes, payload mapping and counters. (The real runtime and real components
are exercised in tests/e2e/test_http_ingress.py.)"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from pdk.host.codec import Case
from pdk.host.runtime import Accepted, Refused
from pdk.host.sources import HttpIngressServer, RouteConflict, payload_from
from pdk.host.sources.http_wire import HttpError
from pdk.limits import HTTP_INGRESS_BODY_MAX_BYTES, HTTP_INGRESS_HEADERS_MAX_BYTES
from pdk.package.manifest import Manifest, parse_manifest

ROOT = Path(__file__).resolve().parents[2]


def manifest(name: str) -> Manifest:
    return parse_manifest(tomllib.loads((ROOT / "examples" / name / "plugin.toml").read_text()))


def src(rt: Any, name: str) -> dict[str, Any]:
    """A source's entry as the runtime's status document would show it."""
    entry = rt.sources[name]
    return entry() if callable(entry) else entry  # type: ignore[no-any-return]


@dataclass
class FakeRuntime:
    manifest: Manifest
    refuse: Refused | None = None
    submitted: list[dict[str, Any]] = field(default_factory=list)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)

    def submit(self, ingress: str, kind: str, payload: Case | None = None, *, source: str = "manual", correlation_id: str | None = None) -> Any:
        if self.refuse is not None:
            return self.refuse
        self.submitted.append({"ingress": ingress, "kind": kind, "payload": payload, "source": source, "correlation_id": correlation_id})
        return Accepted(f"ev-{len(self.submitted)}")

    def has_pending(self, ingress: str, kind: str) -> bool:
        return False


@pytest.fixture
def rt() -> FakeRuntime:
    return FakeRuntime(manifest("counter-service"))


@pytest.fixture
def server(rt: FakeRuntime) -> Iterator[HttpIngressServer]:
    with HttpIngressServer([rt]) as srv:
        yield srv


def request(server: HttpIngressServer, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(data) if data else None
    finally:
        conn.close()


def raw_exchange(server: HttpIngressServer, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # the listener may answer and close before reading everything
            pass
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_accepted_text_event(server: HttpIngressServer, rt: FakeRuntime) -> None:
    status, headers, doc = request(server, "POST", "/inbox", b"hi", {"Content-Type": "text/plain; charset=utf-8", "X-Request-Id": "req-1"})
    assert status == 202 and doc == {"event_id": "ev-1"}
    assert rt.submitted == [{"ingress": "inbox", "kind": "message", "payload": Case("text", "hi"), "source": "http:inbox", "correlation_id": "req-1"}]
    assert src(rt, "http:inbox")["accepted"] == 1
    assert src(rt, "http:inbox")["path"] == "/inbox"


def test_query_string_is_ignored_for_routing(server: HttpIngressServer, rt: FakeRuntime) -> None:
    assert request(server, "POST", "/inbox?x=1", b"{}", {"Content-Type": "application/json"})[0] == 202
    assert rt.submitted[0]["payload"] == Case("json", "{}")


def test_unknown_path_is_404(server: HttpIngressServer, rt: FakeRuntime) -> None:
    status, _, doc = request(server, "POST", "/inbox/", b"x")
    assert status == 404 and doc["error"]["code"] == "not_found"
    assert request(server, "POST", "/nope", b"x")[0] == 404
    assert src(rt, "http")["rejected"] == {"404": 2}
    assert rt.submitted == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_wrong_method_is_405_with_allow(server: HttpIngressServer, rt: FakeRuntime, method: str) -> None:
    status, headers, doc = request(server, method, "/inbox")
    assert status == 405 and headers["allow"] == "POST"
    assert doc["error"]["code"] == "method_not_allowed"
    assert src(rt, "http:inbox")["rejected"] == {"405": 1}


def test_oversized_body_is_413_without_reading_it(server: HttpIngressServer, rt: FakeRuntime) -> None:
    # Only the head is sent: the listener answers from Content-Length alone.
    head = f"POST /inbox HTTP/1.1\r\nHost: x\r\nContent-Length: {HTTP_INGRESS_BODY_MAX_BYTES + 1}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert src(rt, "http:inbox")["rejected"] == {"413": 1}
    assert rt.submitted == []


def test_body_at_the_bound_is_accepted(server: HttpIngressServer, rt: FakeRuntime) -> None:
    body = b"\x00" * HTTP_INGRESS_BODY_MAX_BYTES
    status, _, _ = request(server, "POST", "/inbox", body, {"Content-Type": "application/octet-stream"})
    assert status == 202 and rt.submitted[0]["payload"] == Case("binary", body)


def test_oversized_head_is_431(server: HttpIngressServer, rt: FakeRuntime) -> None:
    big = "a" * 1000
    head = "POST /inbox HTTP/1.1\r\n" + "".join(f"X-H{i}: {big}\r\n" for i in range(HTTP_INGRESS_HEADERS_MAX_BYTES // 1000 + 1)) + "\r\n"
    assert raw_exchange(server, head.encode()).startswith(b"HTTP/1.1 431 ")
    assert src(rt, "http")["rejected"] == {"431": 1}


def test_oversized_request_line_is_414(server: HttpIngressServer) -> None:
    line = f"POST /{'a' * HTTP_INGRESS_HEADERS_MAX_BYTES} HTTP/1.1\r\n\r\n"
    assert raw_exchange(server, line.encode()).startswith(b"HTTP/1.1 414 ")


@pytest.mark.parametrize(
    "data",
    [
        b"NONSENSE\r\n\r\n",
        b"POST /inbox HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n",
        b"POST /inbox HTTP/1.1\r\nHost: t\r\nX: a\r\n folded\r\n\r\n",
        b"POST /inbox HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"POST /inbox HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
    ],
)
def test_malformed_requests_are_400(server: HttpIngressServer, rt: FakeRuntime, data: bytes) -> None:
    assert raw_exchange(server, data).startswith(b"HTTP/1.1 400 ")
    assert rt.submitted == []


def test_chunked_bodies_are_refused_with_411(server: HttpIngressServer) -> None:
    data = b"POST /inbox HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
    assert raw_exchange(server, data).startswith(b"HTTP/1.1 411 ")


def test_invalid_json_is_400(server: HttpIngressServer, rt: FakeRuntime) -> None:
    for body in (b"{nope", b"NaN", b"\xff"):
        status, _, doc = request(server, "POST", "/inbox", body, {"Content-Type": "application/json"})
        assert status == 400, body
    assert rt.submitted == []
    assert src(rt, "http:inbox")["rejected"] == {"400": 3}


def test_kind_header(rt: FakeRuntime) -> None:
    rt.manifest = manifest("counter-service")
    with HttpIngressServer([rt]) as server:
        assert request(server, "POST", "/inbox", b"x", {"X-Yoi-Event-Kind": "message"})[0] == 202
        status, _, doc = request(server, "POST", "/inbox", b"x", {"X-Yoi-Event-Kind": "other"})
        assert status == 422 and doc["error"]["code"] == "unknown_kind"
    assert [s["kind"] for s in rt.submitted] == ["message"]


@pytest.mark.parametrize(("reason", "status"), [("queue_full", 503), ("not_running", 503), ("invalid_payload", 422), ("too_large", 413)])
def test_refusals_map_to_status_codes(rt: FakeRuntime, reason: str, status: int) -> None:
    rt.refuse = Refused(reason, f"refused: {reason}", 0.2)
    with HttpIngressServer([rt]) as server:
        got, headers, doc = request(server, "POST", "/inbox", b"x")
    assert got == status
    assert doc == {"error": {"code": reason, "message": f"refused: {reason}"}}
    if status == 503:
        assert headers["retry-after"] == "1"  # at least one second
    assert src(rt, "http:inbox")["refused"] == {reason: 1}


def test_retry_after_rounds_up(rt: FakeRuntime) -> None:
    rt.refuse = Refused("queue_full", "full", 2.5)
    with HttpIngressServer([rt]) as server:
        assert request(server, "POST", "/inbox", b"x")[1]["retry-after"] == "3"


def test_keep_alive_serves_several_requests(server: HttpIngressServer, rt: FakeRuntime) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for i in range(3):
            conn.request("POST", "/inbox", body=f"m{i}".encode(), headers={"Content-Type": "text/plain"})
            resp = conn.getresponse()
            assert resp.status == 202
            resp.read()
    finally:
        conn.close()
    assert [s["payload"].value for s in rt.submitted] == ["m0", "m1", "m2"]
    assert src(rt, "http")["connections"] == 1


def test_expect_continue(server: HttpIngressServer, rt: FakeRuntime) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /inbox HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nExpect: 100-continue\r\nContent-Type: text/plain\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"ok")
        assert sock.recv(4096).startswith(b"HTTP/1.1 202 ")
    assert rt.submitted[0]["payload"] == Case("text", "ok")


def test_several_plugins_and_path_collisions() -> None:
    a, b = FakeRuntime(manifest("counter-service")), FakeRuntime(manifest("webhook-ingress"))
    with HttpIngressServer([a, b]) as server:
        assert request(server, "POST", "/inbox", b"x")[0] == 202
        assert request(server, "POST", "/hooks/orders", b"{}", {"Content-Type": "application/json"})[0] == 202
    assert len(a.submitted) == 1 and b.submitted[0]["ingress"] == "orders"
    with pytest.raises(RouteConflict, match="/inbox is declared twice"):
        HttpIngressServer([a, FakeRuntime(manifest("counter-service"))])


@dataclass
class GatedRuntime(FakeRuntime):
    """`submit` waits for `gate`: the request being submitted holds its connection."""

    gate: threading.Event = field(default_factory=threading.Event)
    entered: threading.Event = field(default_factory=threading.Event)

    def submit(self, ingress: str, kind: str, payload: Case | None = None, *, source: str = "manual", correlation_id: str | None = None) -> Any:
        self.entered.set()
        assert self.gate.wait(30)
        return super().submit(ingress, kind, payload, source=source, correlation_id=correlation_id)


def test_connection_limit_answers_503() -> None:
    # Every connection at the cap is being submitted (none can be shed): a newcomer
    # gets a fast 503. (An idle or slow connection would be shed instead: see below.)
    rt = GatedRuntime(manifest("counter-service"))
    with HttpIngressServer([rt], max_connections=1) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as first:
            first.sendall(b"POST /inbox HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx")
            assert rt.entered.wait(10)
            answer = raw_exchange(server, b"POST /inbox HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx")
            rt.gate.set()
            assert first.recv(4096).startswith(b"HTTP/1.1 202 ")  # the first connection is served
        assert answer.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in answer
    assert src(rt, "http")["rejected"] == {"503": 1}


def test_at_the_cap_an_idle_connection_is_shed_for_a_newcomer(rt: FakeRuntime) -> None:
    with HttpIngressServer([rt], max_connections=1) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as first:
            first.sendall(b"POST /inbox HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx")
            assert first.recv(4096).startswith(b"HTTP/1.1 202 ")  # admitted, now idle and kept alive
            assert request(server, "POST", "/inbox", b"y")[0] == 202  # the newcomer sheds it
            assert first.recv(4096) == b""  # closed by the listener
    assert src(rt, "http")["shed"] == 1 and src(rt, "http")["rejected"] == {}
    assert len(rt.submitted) == 2


def test_stop_closes_idle_keep_alive_connections(rt: FakeRuntime) -> None:
    server = HttpIngressServer([rt])
    server.start()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(b"POST /inbox HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx")
    assert sock.recv(4096).startswith(b"HTTP/1.1 202 ")
    server.stop()
    assert sock.recv(4096) == b""  # closed by the listener
    sock.close()
    assert src(rt, "http")["serving"] is False


@pytest.mark.parametrize(
    ("ctype", "body", "case"),
    [
        ("application/json", b'{"a": 1}', Case("json", '{"a": 1}')),
        ("application/cloudevents+json; charset=utf-8", b"[]", Case("json", "[]")),
        ("text/plain", "é".encode(), Case("text", "é")),
        ("text/plain; charset=latin-1", "é".encode("latin-1"), Case("text", "é")),
        ("application/octet-stream", b"\x00\x01", Case("binary", b"\x00\x01")),
        (None, b"", Case("empty", None)),
        (None, b"raw", Case("binary", b"raw")),
    ],
)
def test_payload_mapping(ctype: str | None, body: bytes, case: Case) -> None:
    assert payload_from(ctype, body) == case


def test_payload_errors() -> None:
    for ctype, body in (("text/plain", b"\xff"), ("text/plain; charset=nope", b"x"), ("application/json", b"")):
        with pytest.raises(HttpError) as info:
            payload_from(ctype, body)
        assert info.value.status == 400


def test_a_body_cut_short_is_counted_as_aborted(server: HttpIngressServer, rt: FakeRuntime) -> None:
    assert raw_exchange(server, b"POST /inbox HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc") == b""
    assert rt.submitted == []
    assert src(rt, "http:inbox")["aborted"] == 1


class NoSocket:
    def get_extra_info(self, name: str) -> None:
        return None


def test_the_connection_table_sheds_the_slowest_phase_first_and_never_a_submission() -> None:
    from pdk.host.sources.http_conn import BODY, BUSY, HEAD, IDLE, WRITE, Connection, ConnectionTable

    def conn(phase: str, since: float) -> Connection:
        c = Connection(writer=NoSocket())  # type: ignore[arg-type]  # nothing unread: no socket to ask
        c.phase, c.since = phase, since
        return c

    table = ConnectionTable(5)
    old_write, idle, body, new_head, old_head = conn(WRITE, 0), conn(IDLE, 1), conn(BODY, 2), conn(HEAD, 4), conn(HEAD, 3)
    for c in (old_write, idle, body, new_head, old_head):
        assert table.admit(c) == (True, None)
    shed = [table.admit(conn(BUSY, 10 + i))[1] for i in range(5)]
    assert shed == [old_head, new_head, body, idle, old_write]
    assert table.admit(conn(IDLE, 20)) == (False, None)  # every connection is being submitted
    assert len(table.open) == 5
