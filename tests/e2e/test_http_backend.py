"""The `request` backend against a real HTTP server on loopback, without a component.

These are the cases a guest cannot reach through a tool's 64 KiB input (bodies over
the bound), need a scripted resolver (DNS answers that change or mix address kinds),
or need a server that misbehaves at the byte level. The same code runs behind the
component's import (`tests/e2e/test_http_api.py`). Real sockets, real files; the server's
request counter proves that refused requests made no request at all.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from loopback_http import api_server

from pdk.host.codec import Err, Ok
from pdk.host.diagnostics import DiagnosticLog
from pdk.host.grants import GrantsFile, GrantSet
from pdk.host.http_api import HttpRequestBackend, execute_http_request
from pdk.package.targets import Target
from pdk.limits import (
    HOST_IMPORT_DEADLINE_MARGIN_S,
    HTTP_HEADER_VALUE_MAX_BYTES,
    HTTP_HEADERS_MAX,
    HTTP_REQUEST_BODY_MAX_BYTES,
    HTTP_TIMEOUT_MAX_S,
)
from pdk.testing import HttpTestServer

DIGEST = "sha256:" + "a" * 64


@pytest.fixture(scope="module")
def server() -> Iterator[HttpTestServer]:
    s = api_server()
    yield s
    s.close()


def target_toml(table: str, t: dict[str, Any]) -> str:
    return f"[[{table}]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in t.items())


def grant_set(targets: Sequence[dict[str, Any]], *, host_apis: Sequence[str] = ("request",), secrets: Sequence[dict[str, Any]] = ()) -> GrantSet:
    text = (
        "[[plugins]]\nid = \"p\"\nversion = \"0.1.0\"\n"
        f"digest = \"{DIGEST}\"\nsurfaces = [\"tools\"]\nhost_apis = {json.dumps(list(host_apis))}\n"
        + "".join(target_toml("plugins.request", t) for t in targets)
        + "".join(target_toml("plugins.secrets", s) for s in secrets)
    )
    grants = GrantsFile.parse(text).for_package("p", "0.1.0", DIGEST)
    assert grants.matched
    return grants


def loopback(server: HttpTestServer, **extra: Any) -> dict[str, Any]:
    return {"scheme": "http", "host": server.address, "port": server.port, "methods": ["GET", "POST"], "path_prefixes": ["/api"], **extra}


def run(request: dict[str, Any], grants: GrantSet, declared: Sequence[Target], **kwargs: Any) -> Any:
    kwargs.setdefault("timeout_s", 5.0)
    return execute_http_request(request, grants=grants, declared=tuple(declared), **kwargs)


def get(url: str, **extra: Any) -> dict[str, Any]:
    return {"method": "GET", "url": url, "headers": [], "body": None, **extra}


@pytest.fixture
def setup(server: HttpTestServer) -> tuple[GrantSet, tuple[Target, ...]]:
    t = loopback(server)
    return grant_set([t]), (Target.from_mapping(t),)


def assert_err(result: Any, code: str) -> str:
    assert isinstance(result, Err), result
    assert result.value["code"] == code, result.value
    message: str = result.value["message"]
    return message


# --- the happy path ---------------------------------------------------------------------------


def test_get_returns_status_headers_and_body(server: HttpTestServer, setup: Any) -> None:
    grants, declared = setup
    result = run(get(server.url_for("/api/json?x=1")), grants, declared)
    assert isinstance(result, Ok)
    response = result.value
    assert response["status"] == 200
    assert json.loads(response["body"]) == {"hello": "world", "path": "/api/json?x=1"}
    assert response["truncated"] is False
    assert ("content-type", "application/json") in response["headers"]
    seen = server.last()
    assert seen.headers["host"] == f"127.0.0.1:{server.port}"
    assert seen.headers["connection"] == "close"


def test_method_is_sent_upper_case(server: HttpTestServer, setup: Any) -> None:
    grants, declared = setup
    result = run({"method": "post", "url": server.url_for("/api/echo"), "headers": [("content-type", "text/plain")], "body": b"hi"}, grants, declared)
    assert isinstance(result, Ok)
    echoed = json.loads(result.value["body"])
    assert echoed["method"] == "POST" and echoed["body"] == "hi"
    assert server.last().headers["content-length"] == "2"


def test_response_headers_are_bounded_in_count(server: HttpTestServer, setup: Any) -> None:
    grants, declared = setup
    result = run(get(server.url_for("/api/many-headers")), grants, declared)
    assert isinstance(result, Ok)
    assert len(result.value["headers"]) == HTTP_HEADERS_MAX


def test_a_body_without_length_is_read_to_the_bound(server: HttpTestServer, setup: Any) -> None:
    grants, declared = setup
    result = run(get(server.url_for("/api/stream?bytes=300000")), grants, declared)
    assert isinstance(result, Ok)
    assert result.value["truncated"] is True
    assert len(result.value["body"]) == 256 * 1024


# --- refused before any traffic ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        ({"method": "GET", "url": "/api/json"}, "invalid"),  # not absolute
        ({"method": "G E T", "url": "http://127.0.0.1/api"}, "invalid"),
        ({"method": "CONNECT", "url": "http://127.0.0.1/api"}, "invalid"),
        ({"method": "GET", "url": "ftp://127.0.0.1/api"}, "invalid"),
        ({"method": "GET", "url": "ws://127.0.0.1/api"}, "invalid"),
        ({"method": "GET", "url": "http://user:hunter2@127.0.0.1/api"}, "invalid"),
        ({"method": "GET", "url": "http://127.0.0.1/api\r\nX: y"}, "invalid"),
        ({"method": "GET", "url": "PORT/api/json", "timeout_ms": 0}, "invalid"),
        ({"method": "GET", "url": "PORT/api/json", "headers": [("x-a",)]}, "invalid"),
        ({"method": "GET", "url": "PORT/api/json", "headers": [("bad name", "v")]}, "invalid"),
        ({"method": "GET", "url": "PORT/api/json", "headers": [("x-a", "line\r\nInjected: 1")]}, "invalid"),
        ({"method": "GET", "url": "PORT/api/json", "headers": [("x-a", "caf\u00e9")]}, "invalid"),
        ({"method": "POST", "url": "PORT/api/echo", "body": "text"}, "invalid"),
    ],
)
def test_malformed_requests_are_invalid_and_send_nothing(server: HttpTestServer, setup: Any, request_: dict[str, Any], code: str) -> None:
    grants, declared = setup
    request_ = {**request_, "url": request_["url"].replace("PORT", f"http://127.0.0.1:{server.port}")}
    before = server.count
    message = assert_err(run(request_, grants, declared), code)
    assert "hunter2" not in message
    assert server.count == before


@pytest.mark.parametrize(
    "header",
    ["Connection", "keep-alive", "Transfer-Encoding", "Upgrade", "TE", "Trailer", "Proxy-Connection", "Proxy-Foo",
     "Expect", "Host", "Content-Length", "Authorization", "Cookie", "Proxy-Authorization", "x-api-key"],
)
def test_host_owned_and_credential_headers_are_refused(server: HttpTestServer, header: str) -> None:
    t = loopback(server)
    grants = grant_set([t], secrets=[{"name": "token", "env": "YOI_TEST_UNUSED", "header": "X-Api-Key"}])
    before = server.count
    message = assert_err(run(get(server.url_for("/api/json"), headers=[(header, "value")]), grants, [Target.from_mapping(t)]), "invalid")
    assert header.lower() in message.lower()
    assert server.count == before


def test_bounds_are_too_large_and_send_nothing(server: HttpTestServer, setup: Any) -> None:
    grants, declared = setup
    before = server.count
    url = server.url_for("/api/echo")
    body = b"b" * (HTTP_REQUEST_BODY_MAX_BYTES + 1)
    assert_err(run({"method": "POST", "url": url, "body": body}, grants, declared), "too_large")
    headers = [(f"x-h-{i}", "v") for i in range(HTTP_HEADERS_MAX + 1)]
    assert_err(run(get(url, headers=headers), grants, declared), "too_large")
    long_value = [("x-long", "v" * (HTTP_HEADER_VALUE_MAX_BYTES + 1))]
    assert_err(run(get(url, headers=long_value), grants, declared), "too_large")
    assert server.count == before
    # At the bounds exactly, the request goes out.
    at_bound = run({"method": "POST", "url": url, "body": b"b" * HTTP_REQUEST_BODY_MAX_BYTES, "headers": [(f"x-h-{i}", "v") for i in range(HTTP_HEADERS_MAX)]}, grants, declared)
    assert isinstance(at_bound, Ok)
    assert len(server.last().body) == HTTP_REQUEST_BODY_MAX_BYTES


def test_request_api_must_be_declared_and_granted(server: HttpTestServer) -> None:
    t = loopback(server)
    declared = (Target.from_mapping(t),)
    before = server.count
    assert "not declared" in assert_err(run(get(server.url_for("/api/json")), grant_set([t]), declared, api_declared=False), "denied")
    assert "not granted" in assert_err(run(get(server.url_for("/api/json")), grant_set([t], host_apis=[]), declared), "denied")
    assert "granted" in assert_err(run(get(server.url_for("/api/json")), GrantSet.empty("no grant"), declared), "denied")
    assert server.count == before


# --- time -------------------------------------------------------------------------------------


def test_no_time_left_is_a_timeout_without_traffic(server: HttpTestServer, setup: Any) -> None:
    grants, declared = setup
    before = server.count
    backend = HttpRequestBackend(grants, declared, None, lambda: HOST_IMPORT_DEADLINE_MARGIN_S / 2)
    assert backend.time_budget() <= 0
    assert "deadline" in assert_err(backend.send(get(server.url_for("/api/json"))), "timeout")
    assert server.count == before


def test_the_budget_follows_the_caller_deadline(setup: Any) -> None:
    grants, declared = setup
    assert HttpRequestBackend(grants, declared, None, lambda: None).time_budget() == HTTP_TIMEOUT_MAX_S
    assert HttpRequestBackend(grants, declared, None, lambda: 1000.0).time_budget() == HTTP_TIMEOUT_MAX_S
    assert HttpRequestBackend(grants, declared, None, lambda: 1.0).time_budget() == pytest.approx(1.0 - HOST_IMPORT_DEADLINE_MARGIN_S)

    def broken() -> float:
        raise RuntimeError("no clock")

    assert HttpRequestBackend(grants, declared, None, broken).time_budget() == HTTP_TIMEOUT_MAX_S


def test_a_dripping_server_cannot_hold_the_call(server: HttpTestServer, setup: Any) -> None:
    """Every byte arrives well within a socket timeout; only the overall deadline stops it."""
    grants, declared = setup
    assert_err(run(get(server.url_for("/api/drip")), grants, declared, timeout_s=0.5), "timeout")


def test_a_slow_server_is_a_timeout(server: HttpTestServer, setup: Any) -> None:
    grants, declared = setup
    assert_err(run(get(server.url_for("/api/slow"), timeout_ms=200), grants, declared), "timeout")


# --- resolution ---------------------------------------------------------------------------------


class ScriptedResolver:
    """A resolver whose answers the test picks (DNS is what an attacker controls)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return self.answers[min(len(self.calls), len(self.answers)) - 1]


def named(server: HttpTestServer, host: str) -> dict[str, Any]:
    return {"scheme": "http", "host": host, "port": server.port, "path_prefixes": ["/api"]}


@pytest.mark.parametrize(
    ("host", "answer"),
    [
        ("api.example.test", ["127.0.0.1"]),
        ("api.example.test", ["10.0.0.7"]),
        ("api.example.test", ["169.254.169.254"]),  # cloud metadata
        ("api.example.test", ["::ffff:127.0.0.1"]),
        ("api.example.test", ["93.184.216.34", "127.0.0.1"]),  # a rebinding smell: one bad address is enough
        ("localhost.example.test", ["::1"]),
    ],
)
def test_names_resolving_to_restricted_addresses_are_denied(server: HttpTestServer, host: str, answer: list[str]) -> None:
    t = named(server, host)
    resolver = ScriptedResolver(answer)
    before = server.count
    message = assert_err(run(get(f"http://{host}:{server.port}/api/json"), grant_set([t]), [Target.from_mapping(t)], resolver=resolver), "denied")
    assert "restricted address" in message
    assert resolver.calls == [host]
    assert server.count == before


def test_wildcards_never_reach_restricted_addresses(server: HttpTestServer) -> None:
    t = {"scheme": "http", "host": "*.example.test", "port": server.port}
    before = server.count
    result = run(get(f"http://api.example.test:{server.port}/api/json"), grant_set([t]), [Target.from_mapping(t)], resolver=ScriptedResolver(["127.0.0.1"]))
    assert_err(result, "denied")
    assert server.count == before


def test_the_connection_goes_to_the_checked_address(server: HttpTestServer) -> None:
    """The name is resolved once; the socket goes to that answer, not to a second lookup.
    `localhost` named explicitly may reach loopback. The scripted resolver answers
    127.0.0.2 (where a second server listens on the same port) the first time and
    127.0.0.1 afterwards; the system resolver would also say 127.0.0.1."""
    try:
        other = api_server("127.0.0.2", server.port)
    except OSError:
        pytest.skip("cannot listen on 127.0.0.2 here")
    try:
        t = named(server, "localhost")
        resolver = ScriptedResolver(["127.0.0.2"], ["127.0.0.1"])
        before = server.count
        result = run(get(f"http://localhost:{server.port}/api/json"), grant_set([t]), [Target.from_mapping(t)], resolver=resolver)
        assert isinstance(result, Ok), result
        assert resolver.calls == ["localhost"]
        assert other.count == 1 and server.count == before
        assert other.last().headers["host"] == f"localhost:{server.port}"
    finally:
        other.close()


def test_resolver_failure_is_connection_failed(server: HttpTestServer) -> None:
    t = named(server, "nowhere.example.test")

    def fail(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    result = run(get(f"http://nowhere.example.test:{server.port}/api"), grant_set([t]), [Target.from_mapping(t)], resolver=fail)
    assert "nowhere.example.test" in assert_err(result, "connection_failed")


def test_a_resolver_that_hangs_is_a_timeout(server: HttpTestServer) -> None:
    t = named(server, "slow-dns.example.test")
    release = threading.Event()

    def hang(host: str, port: int) -> list[str]:
        release.wait(30)
        return ["127.0.0.1"]

    try:
        result = run(get(f"http://slow-dns.example.test:{server.port}/api"), grant_set([t]), [Target.from_mapping(t)], resolver=hang, timeout_s=0.2)
        assert_err(result, "timeout")
    finally:
        release.set()


# --- broken peers ---------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_nothing_listening_is_connection_failed() -> None:
    port = closed_port()
    t = {"scheme": "http", "host": "127.0.0.1", "port": port}
    result = run(get(f"http://127.0.0.1:{port}/"), grant_set([t]), [Target.from_mapping(t)])
    assert_err(result, "connection_failed")


def test_a_garbage_response_is_failed() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def answer() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"this is not http\r\n\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        t = {"scheme": "http", "host": "127.0.0.1", "port": port}
        result = run(get(f"http://127.0.0.1:{port}/"), grant_set([t]), [Target.from_mapping(t)])
        thread.join(5)
    assert "malformed response" in assert_err(result, "failed")


def test_https_to_a_plain_http_server_is_connection_failed(server: HttpTestServer) -> None:
    t = {"scheme": "https", "host": "127.0.0.1", "port": server.port}
    result = run(get(f"https://127.0.0.1:{server.port}/api"), grant_set([t]), [Target.from_mapping(t)])
    assert "TLS" in assert_err(result, "connection_failed")


# --- secrets ------------------------------------------------------------------------------------


def test_secret_headers_are_added_and_never_shown(server: HttpTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "sk-proj-" + "Q" * 40
    bearer = "Bearer ghp_" + "R" * 36
    secret_file = tmp_path / "bearer.txt"
    secret_file.write_text(bearer + "\n")
    t = loopback(server)
    grants = grant_set([t], secrets=[
        {"name": "api_token", "env": "YOI_TEST_API_TOKEN", "header": "X-Api-Key"},
        {"name": "bearer", "file": str(secret_file), "header": "Authorization"},
        {"name": "unused", "env": "YOI_TEST_NOT_A_HEADER"},  # no header: not sent
    ])
    diagnostics = DiagnosticLog()
    monkeypatch.setenv("YOI_TEST_API_TOKEN", token)  # read at call time, after the grant was loaded
    result = run(get(server.url_for("/api/echo")), grants, [Target.from_mapping(t)], diagnostics=diagnostics)
    assert isinstance(result, Ok)
    seen = server.last()
    assert seen.headers["x-api-key"] == token
    assert seen.headers["authorization"] == bearer
    shown = json.dumps([result.value["headers"], result.value["body"].decode()]) + json.dumps(diagnostics.messages())
    assert token not in shown and "ghp_" not in shown
    assert "x-api-key" in json.loads(result.value["body"])["header_names"]  # the name is no secret


def test_an_unreadable_secret_fails_closed(server: HttpTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    t = loopback(server)
    declared = [Target.from_mapping(t)]
    before = server.count
    monkeypatch.delenv("YOI_TEST_MISSING", raising=False)
    missing_env = grant_set([t], secrets=[{"name": "api_token", "env": "YOI_TEST_MISSING", "header": "X-Api-Key"}])
    assert "api_token" in assert_err(run(get(server.url_for("/api/json")), missing_env, declared), "failed")
    missing_file = grant_set([t], secrets=[{"name": "bearer", "file": str(tmp_path / "nope.txt"), "header": "Authorization"}])
    message = assert_err(run(get(server.url_for("/api/json")), missing_file, declared), "failed")
    assert str(tmp_path) not in message  # host paths are the operator's, not the guest's
    monkeypatch.setenv("YOI_TEST_INJECT", "abc\r\nX-Injected: 1")
    injecting = grant_set([t], secrets=[{"name": "inj", "env": "YOI_TEST_INJECT", "header": "X-Api-Key"}])
    assert "not a valid header value" in assert_err(run(get(server.url_for("/api/json")), injecting, declared), "failed")
    assert server.count == before


# --- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HttpTestServer, ssl.SSLContext]]:
    """An HTTPS loopback server with a fresh self-signed certificate for `localhost`
    (made by the openssl command), and a client context that trusts only it."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )
    serving = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    serving.load_cert_chain(cert, key)
    server = api_server(tls=serving)
    client = ssl.create_default_context(cafile=str(cert))
    yield server, client
    server.close()


def test_https_verifies_the_url_host_while_connecting_to_the_checked_address(tls_server: tuple[HttpTestServer, ssl.SSLContext]) -> None:
    """SNI and the certificate check use the URL's host (`localhost`); the socket goes to
    the address the resolver gave and the checks judged."""
    server, client = tls_server
    t = {"scheme": "https", "host": "localhost", "port": server.port, "path_prefixes": ["/api"]}
    resolver = ScriptedResolver(["127.0.0.1"])
    result = run(get(f"https://localhost:{server.port}/api/json"), grant_set([t]), [Target.from_mapping(t)], resolver=resolver, tls_context=client)
    assert isinstance(result, Ok), result
    assert json.loads(result.value["body"])["hello"] == "world"
    assert server.last().headers["host"] == f"localhost:{server.port}"


def test_https_refuses_a_certificate_for_another_name(tls_server: tuple[HttpTestServer, ssl.SSLContext]) -> None:
    server, client = tls_server
    t = {"scheme": "https", "host": "127.0.0.1", "port": server.port}
    before = server.count
    result = run(get(f"https://127.0.0.1:{server.port}/api/json"), grant_set([t]), [Target.from_mapping(t)], tls_context=client)
    assert "TLS" in assert_err(result, "connection_failed")
    assert server.count == before
