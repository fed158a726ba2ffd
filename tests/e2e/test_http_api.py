"""The `request` host API end to end: the http-fetch example, built with componentize-py,
run in wasmtime, talking to a real HTTP server on 127.0.0.1.

The plugin's `plugin.toml` declares its target with the server's port written in (the
copy is re-digested, so grants pin the edited package). Every denial is checked against
the server's request counter: a denied call must not have made a request at all. The
full table of matching rules is unit-tested in `tests/unit/test_targets.py`; here a
representative case of each rule goes through the real import.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from loopback_http import api_server

from pdk.errors import ErrorCode
from pdk.host import Host, InstanceLimits, LoadedPlugin, open_package
from pdk.host import http_api
from pdk.host.tools import ToolResult
from pdk.limits import HTTP_RESPONSE_MAX_BYTES
from pdk.testing import HttpTestServer

pytestmark = pytest.mark.slow

SECRET_TOKEN = "sk-proj-" + "T" * 40
SECRET_BEARER = "Bearer ghp_" + "B" * 36


@pytest.fixture(scope="module")
def server() -> Iterator[HttpTestServer]:
    s = api_server()
    yield s
    s.close()


@pytest.fixture(scope="module")
def built(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("http-fetch")


def toml_tables(table: str, items: Sequence[dict[str, Any]]) -> str:
    return "".join(f"\n[[{table}]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in item.items()) for item in items)


def with_targets(built: Path, dest: Path, targets: Sequence[dict[str, Any]]) -> Path:
    """A copy of the built plugin whose `[[request]]` tables are `targets`."""
    shutil.copytree(built, dest, ignore=shutil.ignore_patterns("__pycache__", "dist"))
    manifest = dest / "plugin.toml"
    text = manifest.read_text(encoding="utf-8")
    head, rest = text.split("[[request]]", 1)
    tools = rest[rest.index("[[tools]]"):]
    manifest.write_text(head.rstrip() + "\n" + toml_tables("request", targets) + "\n" + tools, encoding="utf-8")
    return dest


def grants_for(plugin_dir: Path, path: Path, *, targets: Sequence[dict[str, Any]], host_apis: Sequence[str] = ("request",), secrets: Sequence[dict[str, Any]] = ()) -> Path:
    digest = open_package(plugin_dir).digest
    path.write_text(
        "[[plugins]]\nid = \"http-fetch\"\nversion = \"0.1.0\"\n"
        f"digest = \"{digest}\"\nsurfaces = [\"tools\"]\ntools = [\"*\"]\nhost_apis = {json.dumps(list(host_apis))}\n"
        + toml_tables("plugins.request", targets)
        + toml_tables("plugins.secrets", secrets),
        encoding="utf-8",
    )
    return path


def api(server: HttpTestServer, **extra: Any) -> dict[str, Any]:
    return {"scheme": "http", "host": "127.0.0.1", "port": server.port, "methods": ["GET", "POST"], "path_prefixes": ["/api"], **extra}


@pytest.fixture(scope="module")
def plugin_dir(built: Path, server: HttpTestServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return with_targets(built, tmp_path_factory.mktemp("http") / "http-fetch", [api(server)])


@pytest.fixture
def load(host: Host, plugin_dir: Path, tmp_path: Path) -> Callable[..., LoadedPlugin]:
    def _load(*, targets: Sequence[dict[str, Any]] | None = None, directory: Path | None = None, limits: InstanceLimits | None = None, **kwargs: Any) -> LoadedPlugin:
        directory = directory or plugin_dir
        grants = grants_for(directory, tmp_path / "grants.toml", targets=targets if targets is not None else [], **kwargs)
        return host.load(directory, grants=grants, limits=limits)

    return _load


def request(plugin: LoadedPlugin, method: str, url: str, **extra: Any) -> ToolResult:
    return plugin.call_tool("request", {"method": method, "url": url, **extra})


def host_error(result: ToolResult) -> str:
    assert result.error is not None, result
    code: str = result.error.details["host_error"]
    return code


def everything_shown(plugin: LoadedPlugin, *results: ToolResult) -> str:
    """Everything a guest, a model or an operator gets to see about these calls."""
    return json.dumps([r.to_json() for r in results] + [r.error.to_json() for r in results if r.error] + [plugin.status()])


# --- allowed ------------------------------------------------------------------------------------


def test_fetch_json_from_a_declared_and_granted_api(load: Any, server: HttpTestServer) -> None:
    plugin = load(targets=[api(server)])
    before = server.count
    result = plugin.call_tool("fetch_json", {"url": server.url_for("/api/json")})
    assert result.ok, result
    assert result.content == {"status": 200, "data": {"hello": "world", "path": "/api/json"}}
    assert server.count == before + 1
    assert any(m.startswith("request GET http://127.0.0.1") and "-> 200" in m for m in plugin.diagnostics.messages("host"))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api"),  # the prefix itself
        ("GET", "/api/"),
        ("GET", "/api/json?q=1&r=2"),  # queries are not part of matching
        ("GET", "/api/x/../json"),  # normalized first: still inside /api
        ("POST", "/api/echo"),
    ],
)
def test_allowed_requests_reach_the_server(load: Any, server: HttpTestServer, method: str, path: str) -> None:
    plugin = load(targets=[api(server)])
    before = server.count
    result = request(plugin, method, server.url_for(path), body="payload" if method == "POST" else None)
    assert result.ok, result
    assert server.count == before + 1
    assert server.last().target == path  # the request target exactly as sent
    assert server.last().method == method


# --- denied: zero requests ----------------------------------------------------------------------


def denied_cases(server: HttpTestServer) -> list[tuple[str, str, str, list[dict[str, Any]], list[str]]]:
    """(id, method, url, granted targets, granted host APIs). Declared: GET/POST /api on 127.0.0.1:port."""
    url = server.url_for
    full = [api(server)]
    return [
        ("outside the declared prefix", "GET", url("/admin/secret"), [api(server, path_prefixes=["/"])], ["request"]),
        ("segment-aware prefix", "GET", url("/apiary"), [api(server, path_prefixes=["/"])], ["request"]),
        ("dot-dot traversal", "GET", url("/api/../admin/secret"), full, ["request"]),
        ("encoded traversal", "GET", url("/api/%2e%2e/admin/secret"), full, ["request"]),
        ("method not declared", "DELETE", url("/api/json"), [api(server, methods=["GET", "POST", "DELETE"])], ["request"]),
        ("method not granted", "POST", url("/api/echo"), [api(server, methods=["GET"])], ["request"]),
        ("grant narrower than the declaration", "GET", url("/api/json"), [api(server, path_prefixes=["/api/public"])], ["request"]),
        ("other port", "GET", f"http://127.0.0.1:{server.port + 1}/api/json", full, ["request"]),
        ("other scheme", "GET", f"https://127.0.0.1:{server.port}/api/json", full, ["request"]),
        ("localhost is another host than 127.0.0.1", "GET", url("/api/json", host="localhost"), full, ["request"]),
        ("request api not granted", "GET", url("/api/json"), full, []),
        ("no granted targets", "GET", url("/api/json"), [], ["request"]),
    ]


@pytest.mark.parametrize("case", range(12))
def test_denied_requests_make_no_request(load: Any, server: HttpTestServer, case: int) -> None:
    name, method, url, granted, host_apis = denied_cases(server)[case]
    plugin = load(targets=granted, host_apis=host_apis)
    before = server.count
    result = request(plugin, method, url)
    assert result.error is not None, name
    assert result.error.code is ErrorCode.DENIED, (name, result.error)
    assert host_error(result) == "denied"
    assert server.count == before, f"{name}: a denied call reached the server"
    assert plugin.status()["instance"]["recycles"] == 0  # a typed error, not a trap


def test_a_redirect_is_returned_not_followed(load: Any, server: HttpTestServer) -> None:
    plugin = load(targets=[api(server, path_prefixes=["/"])])  # granted broadly; declared /api only
    before = server.count
    result = request(plugin, "GET", server.url_for("/api/redirect"))
    assert result.ok, result
    assert result.content["status"] == 302
    assert ["location", server.url_for("/admin/secret")] in result.content["headers"]
    assert server.count == before + 1
    assert server.last().path == "/api/redirect"  # /admin/secret was never requested
    # Following it by hand is a new request, checked like any other.
    follow = request(plugin, "GET", server.url_for("/admin/secret"))
    assert host_error(follow) == "denied"
    assert server.count == before + 1


# --- bounds and time ------------------------------------------------------------------------------


def test_a_large_response_is_truncated_not_failed(load: Any, server: HttpTestServer) -> None:
    plugin = load(targets=[api(server)])
    result = request(plugin, "GET", server.url_for(f"/api/big?bytes={HTTP_RESPONSE_MAX_BYTES + 4096}"))
    assert result.ok, result
    assert result.content["body_bytes"] == HTTP_RESPONSE_MAX_BYTES
    assert result.content["truncated"] is True
    exact = request(plugin, "GET", server.url_for(f"/api/big?bytes={HTTP_RESPONSE_MAX_BYTES}"))
    assert exact.content["body_bytes"] == HTTP_RESPONSE_MAX_BYTES and exact.content["truncated"] is False
    # fetch_json cannot parse a cut document and says so, typed.
    cut = plugin.call_tool("fetch_json", {"url": server.url_for(f"/api/big?bytes={HTTP_RESPONSE_MAX_BYTES + 1}")})
    assert cut.error is not None and "too large" in cut.error.message


def test_the_guest_timeout_is_a_typed_timeout(load: Any, server: HttpTestServer) -> None:
    plugin = load(targets=[api(server)])
    result = request(plugin, "GET", server.url_for("/api/slow"), timeout_ms=300)
    assert result.error is not None and result.error.code is ErrorCode.TIMEOUT
    assert host_error(result) == "timeout"
    assert result.error.retryable is True
    assert plugin.status()["instance"]["recycles"] == 0


def test_the_host_caps_the_timeout_to_the_call_deadline(load: Any, server: HttpTestServer) -> None:
    """No timeout asked for (the host maximum is 10 s) and a 1 s call deadline: the host
    import gives up in time for the guest to turn it into a typed error. Had it blocked
    past the deadline, the epoch interrupt would have trapped the guest instead (a
    `fault` error and a recycled instance)."""
    plugin = load(targets=[api(server)], limits=InstanceLimits(deadline_s=1.0))
    result = plugin.call_tool("fetch_json", {"url": server.url_for("/api/slow")})
    assert result.error is not None
    assert host_error(result) == "timeout"
    assert "fault" not in result.error.details
    assert plugin.status()["instance"] == {"instantiations": 1, "recycles": 0, "calls": 1}
    after = plugin.call_tool("fetch_json", {"url": server.url_for("/api/json")})
    assert after.ok, after  # the same instance goes on serving


def test_guest_hop_by_hop_and_credential_headers_are_invalid(load: Any, server: HttpTestServer) -> None:
    plugin = load(targets=[api(server)])
    before = server.count
    for header in ("Connection", "Transfer-Encoding", "Upgrade", "Host", "Authorization", "Cookie"):
        result = request(plugin, "GET", server.url_for("/api/json"), headers={header: "x"})
        assert result.error is not None and result.error.code is ErrorCode.INVALID_INPUT, header
        assert host_error(result) == "invalid"
    assert server.count == before


# --- private addresses --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def names_dir(built: Path, server: HttpTestServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    port = server.port
    targets = [
        {"scheme": "http", "host": "internal.example.test", "port": port},
        {"scheme": "http", "host": "*.example.test", "port": port},
        {"scheme": "http", "host": "localhost", "port": port},
    ]
    return with_targets(built, tmp_path_factory.mktemp("names") / "http-fetch", targets)


class Resolver:
    """Stands in for DNS, which is what an attacker controls: every name resolves to
    127.0.0.1. It wraps the system resolver for `localhost` only."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return ["127.0.0.1"]


@pytest.mark.parametrize("name", ["internal.example.test", "api.example.test"])
def test_a_name_resolving_to_loopback_is_denied_without_an_explicit_grant(
    load: Any, server: HttpTestServer, names_dir: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """An exact name and a wildcard, both declared and granted, resolving to 127.0.0.1:
    only a target naming the IP literal (or `localhost`) may reach loopback."""
    resolver = Resolver()
    monkeypatch.setattr(http_api, "resolve_system", resolver)
    port = server.port
    plugin = load(directory=names_dir, targets=[{"scheme": "http", "host": "internal.example.test", "port": port}, {"scheme": "http", "host": "*.example.test", "port": port}])
    before = server.count
    result = request(plugin, "GET", f"http://{name}:{port}/api/json")
    assert host_error(result) == "denied"
    assert "restricted address 127.0.0.1" in result.error.message
    assert resolver.asked == [name]  # judged on the resolved address
    assert server.count == before


def test_localhost_named_explicitly_reaches_loopback(load: Any, server: HttpTestServer, names_dir: Path) -> None:
    """The system resolver, for real: `localhost` declared and granted by name."""
    plugin = load(directory=names_dir, targets=[{"scheme": "http", "host": "localhost", "port": server.port}])
    before = server.count
    result = request(plugin, "GET", f"http://localhost:{server.port}/api/json")
    assert result.ok, result
    assert server.count == before + 1
    assert server.last().headers["host"] == f"localhost:{server.port}"


# --- secrets and redaction ------------------------------------------------------------------------


def test_secret_headers_reach_the_server_but_not_the_guest(load: Any, server: HttpTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bearer_file = tmp_path / "bearer.txt"
    bearer_file.write_text(SECRET_BEARER + "\n")
    monkeypatch.setenv("HTTP_FETCH_TEST_TOKEN", SECRET_TOKEN)
    plugin = load(
        targets=[api(server)],
        secrets=[
            {"name": "api_token", "env": "HTTP_FETCH_TEST_TOKEN", "header": "X-Api-Key"},
            {"name": "bearer", "file": str(bearer_file), "header": "Authorization"},
        ],
    )
    result = request(plugin, "GET", server.url_for("/api/echo"))
    assert result.ok, result
    seen = server.last()
    assert seen.headers["x-api-key"] == SECRET_TOKEN
    assert seen.headers["authorization"] == SECRET_BEARER
    refused = request(plugin, "GET", server.url_for("/api/json"), headers={"X-Api-Key": "guest-made"})
    assert host_error(refused) == "invalid"  # the secret's header is the host's to set
    shown = everything_shown(plugin, result, refused)
    assert SECRET_TOKEN not in shown and "ghp_" not in shown and str(bearer_file) not in shown


def test_errors_and_diagnostics_are_redacted(load: Any, server: HttpTestServer) -> None:
    plugin = load(targets=[api(server)])
    token = "ghp_" + "Z" * 36
    allowed = request(plugin, "GET", server.url_for(f"/api/json?access_token={token}&api_key=AKIA{'Q' * 16}"))
    denied = request(plugin, "GET", server.url_for(f"/admin/secret?token={token}"))
    userinfo = request(plugin, "GET", f"http://admin:hunter2-{token}@127.0.0.1:{server.port}/api/json")
    assert allowed.ok and host_error(denied) == "denied" and host_error(userinfo) == "invalid"
    shown = everything_shown(plugin, denied, userinfo) + json.dumps(plugin.diagnostics.messages())
    assert token not in shown and "hunter2" not in shown and "AKIA" not in shown
    # The guest's own log line carried the URL with its token: redacted on the way in.
    assert any("[redacted]" in m for m in plugin.diagnostics.messages("log"))
