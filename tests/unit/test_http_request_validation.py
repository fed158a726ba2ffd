"""One HTTP request validator (`pdk.host.http_check`) behind both doors: the `request`
host import and `http-request` output commands refuse the same table of bad requests
(issue 11, family 8: commands used to take NUL and VT in header values), and one
secrets reader (`pdk.host.secrets`) with one header-value rule for HTTP and WebSocket."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pdk.host.codec import Err
from pdk.host.grants import GrantsFile, GrantSet, SecretRef
from pdk.host.http_api import execute_http_request
from pdk.host.http_check import RequestInvalid, check_line, check_parts
from pdk.host.runtime.commands import CommandChecker
from pdk.host.secrets import SecretUnavailable, header_secrets, valid_header_value
from pdk.host.websocket import handshake_headers
from pdk.limits import HTTP_HEADER_VALUE_MAX_BYTES, HTTP_HEADERS_MAX
from pdk.package.manifest import parse_manifest_text
from pdk.package.targets import Target

DIGEST = "sha256:" + "a" * 64
URL = "http://127.0.0.1:9/api/items"
TARGET = {"scheme": "http", "host": "127.0.0.1", "port": 9, "methods": ["GET", "POST", "CONNECT", "PUT"], "path_prefixes": ["/api"]}

MANIFEST = f"""
schema_version = 2
id = "p"
name = "P"
version = "0.1.0"
description = "validator tests"
surfaces = ["services", "ingresses"]
host_apis = ["request"]

[runtime]
kind = "wasm-component"
world = "service"
component = "build/p.wasm"

[[services]]
name = "p"

[[ingresses]]
name = "jobs"
sources = ["manual"]
event_kinds = ["job", "http_response"]

[[request]]
scheme = "http"
host = "127.0.0.1"
port = 9
methods = ["GET", "POST", "CONNECT", "PUT"]
path_prefixes = ["/api"]
"""


def grants(secrets: str = "") -> GrantSet:
    text = (
        '[[plugins]]\nid = "p"\nversion = "0.1.0"\n'
        f'digest = "{DIGEST}"\nsurfaces = ["services", "ingresses"]\nhost_apis = ["request"]\n'
        "[[plugins.request]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in TARGET.items()) + secrets
    )
    g = GrantsFile.parse(text).for_package("p", "0.1.0", DIGEST)
    assert g.matched
    return g


SECRET_GRANT = '[[plugins.secrets]]\nname = "tok"\nenv = "HTTP_CHECK_TOKEN"\nheader = "X-Api-Key"\n'


def request(**over: Any) -> dict[str, Any]:
    return {"method": "GET", "url": URL, "headers": [], "body": None, **over}


# (request, code the import answers, words both answers contain)
BAD_REQUESTS: list[tuple[dict[str, Any], str, str]] = [
    (request(method="CONNECT"), "invalid", "CONNECT"),
    (request(method="connect"), "invalid", "CONNECT"),
    (request(method="GET /x"), "invalid", "method"),
    (request(method=""), "invalid", "method"),
    (request(method=3), "invalid", "method"),
    (request(url=5), "invalid", "url"),
    (request(url="ftp://127.0.0.1:9/api/x"), "invalid", "url"),
    (request(url="http://user:pw@127.0.0.1:9/api/x"), "invalid", "url"),
    (request(headers=[("X-A", "a\x00b")]), "invalid", "visible ASCII"),  # NUL
    (request(headers=[("X-A", "a\x0bb")]), "invalid", "visible ASCII"),  # VT
    (request(headers=[("X-A", "a\x1b]52;c;aGk=\x07")]), "invalid", "visible ASCII"),  # OSC 52
    (request(headers=[("X-A", "a\r\nX-Injected: 1")]), "invalid", "visible ASCII"),
    (request(headers=[("X-A", "caf\u00e9")]), "invalid", "visible ASCII"),
    (request(headers=[("X-A", "\x7f")]), "invalid", "visible ASCII"),
    (request(headers=[("X-A", "v" * (HTTP_HEADER_VALUE_MAX_BYTES + 1))]), "too_large", "longer than"),
    (request(headers=[(f"X-{i}", "v") for i in range(HTTP_HEADERS_MAX + 1)]), "too_large", "headers"),
    (request(headers=[("Bad Name", "v")]), "invalid", "not a valid header name"),
    (request(headers=[("X-" + "n" * 100, "v")]), "invalid", "not a valid header name"),
    (request(headers=[("Host", "evil.example")]), "invalid", "set by the host"),
    (request(headers=[("Content-Length", "3")]), "invalid", "set by the host"),
    (request(headers=[("Transfer-Encoding", "chunked")]), "invalid", "hop-by-hop"),
    (request(headers=[("Upgrade", "websocket")]), "invalid", "hop-by-hop"),
    (request(headers=[("Proxy-Connection", "x")]), "invalid", "hop-by-hop"),
    (request(headers=[("Authorization", "Bearer x")]), "invalid", "credentials"),
    (request(headers=[("Cookie", "a=b")]), "invalid", "credentials"),
    (request(headers=[("x-api-key", "guest-made")]), "invalid", "credentials"),  # a grant secret's header
    (request(headers=[("X-A",)]), "invalid", "pair"),
    (request(headers=[("X-A", 1)]), "invalid", "pair"),
    (request(headers="X-A: 1"), "invalid", "list"),
    (request(method="POST", body="text, not bytes"), "invalid", "bytes"),
]


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_CHECK_TOKEN", "s3cr3t-value")


@pytest.mark.parametrize(("bad", "code", "words"), BAD_REQUESTS, ids=lambda v: repr(v)[:48] if isinstance(v, dict) else None)
def test_the_request_import_refuses_it_before_any_traffic(secret_env: None, bad: dict[str, Any], code: str, words: str) -> None:
    out = execute_http_request(bad, grants=grants(SECRET_GRANT), declared=(Target.from_mapping(TARGET),), timeout_s=1.0, resolver=_no_dns)
    assert isinstance(out, Err), out
    assert out.value["code"] == code
    assert words in out.value["message"]


@pytest.mark.parametrize(("bad", "code", "words"), BAD_REQUESTS, ids=lambda v: repr(v)[:48] if isinstance(v, dict) else None)
def test_an_http_request_command_is_invalid_for_the_same_reason(bad: dict[str, Any], code: str, words: str) -> None:
    checker = CommandChecker(parse_manifest_text(MANIFEST), grants(SECRET_GRANT))
    problem = checker.invalid("http_request", bad)
    assert problem is not None
    assert words in problem


@pytest.mark.parametrize(("bad", "code", "words"), BAD_REQUESTS, ids=lambda v: repr(v)[:48] if isinstance(v, dict) else None)
def test_the_validator_itself(bad: dict[str, Any], code: str, words: str) -> None:
    with pytest.raises(RequestInvalid) as info:
        check_line(bad)
        check_parts(bad, {"x-api-key"})
    assert info.value.code_text == code
    assert words in info.value.message


def test_a_good_request_passes_both_doors() -> None:
    good = request(method="post", headers=[("X-Trace", "abc\tdef"), ("Accept", "*/*")], body=b"{}")
    assert check_line(good).method == "POST"
    parts = check_parts(good)
    assert parts.headers == [("X-Trace", "abc\tdef"), ("Accept", "*/*")] and parts.body == b"{}"
    checker = CommandChecker(parse_manifest_text(MANIFEST), grants())
    assert checker.invalid("http_request", good) is None
    assert checker.denied("http_request", good) is None


def _no_dns(host: str, port: int) -> list[str]:
    raise AssertionError("a refused request must not resolve anything")


# -- one secrets reader ------------------------------------------------------------------------

BAD_SECRET_VALUES = ["a\x00b", "a\x0bb", "line\nbreak", "cr\rx", "esc\x1b[2J", "caf\u00e9", "\x7f", "", "v" * (HTTP_HEADER_VALUE_MAX_BYTES + 1)]


@pytest.mark.parametrize("value", BAD_SECRET_VALUES, ids=repr)
def test_http_and_websocket_refuse_the_same_secret_values(value: str, tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(value.encode("utf-8"))  # a file: the environment cannot hold NUL
    ref = SecretRef("tok", file=str(tmp_path / "secret"), header="X-Api-Key")
    assert not (value and valid_header_value(value))
    with pytest.raises(SecretUnavailable) as http_info:
        header_secrets([ref])
    with pytest.raises(SecretUnavailable) as ws_info:
        handshake_headers([ref])
    for info in (http_info, ws_info):
        assert "not a valid header value" in info.value.message
        if value:
            assert value not in str(info.value)
    # And the import answers `failed` without sending anything.
    out = execute_http_request(
        request(), grants=grants(f'[[plugins.secrets]]\nname = "tok"\nfile = {json.dumps(ref.file)}\nheader = "X-Api-Key"\n'),
        declared=(Target.from_mapping(TARGET),), timeout_s=1.0, resolver=_no_dns,
    )
    assert isinstance(out, Err) and out.value["code"] == "failed" and "not a valid header value" in out.value["message"]


def test_a_secret_file_is_read_at_each_use(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first\n")
    ref = SecretRef("tok", file=str(path), header="X-Api-Key")
    assert header_secrets([ref]) == handshake_headers([ref]) == [("X-Api-Key", "first")]
    path.write_text("second\r\n")
    assert header_secrets([ref]) == [("X-Api-Key", "second")]
    with pytest.raises(SecretUnavailable) as info:
        header_secrets([SecretRef("tok", file=str(tmp_path / "missing"), header="X-Api-Key")])
    assert str(tmp_path) not in str(info.value)
