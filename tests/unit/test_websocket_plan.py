"""Pure logic of the WebSocket driver: who may dial what, backoff, send shapes,
secret headers, and the manifest's connection declarations. No sockets here."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from pdk.host.codec import Case
from pdk.host.grants import GrantsFile, GrantSet, SecretRef
from pdk.host.websocket import (
    Backoff,
    InvalidSend,
    SecretUnavailable,
    check_connection,
    declared_connections,
    handshake_headers,
    parse_send,
    plan_connections,
)
from pdk.host.websocket.plan import url_for_display, wanted_kinds
from pdk.host.websocket.send import SendItem, executed
from pdk.package.manifest import Manifest, ManifestError, parse_manifest

DIGEST = "sha256:" + "ab" * 32


def manifest(**over: Any) -> Manifest:
    return parse_manifest(manifest_data(**over))


def manifest_data(**over: Any) -> dict[str, Any]:
    conn: dict[str, Any] = {"name": "gateway", "url": "wss://chat.example.com/v1/socket?token=abc"}
    conn.update(over.pop("conn", {}))
    data: dict[str, Any] = {
        "schema_version": 2, "id": "bot", "name": "Bot", "version": "0.1.0",
        "surfaces": ["services", "ingresses"], "host_apis": ["websocket"],
        "runtime": {"kind": "wasm-component", "world": "service", "component": "build/bot.wasm"},
        "services": [{"name": "bot"}],
        "websocket": [{"scheme": "wss", "host": "chat.example.com", "path_prefixes": ["/v1"]}],
        "ingresses": [{"name": "chat", "sources": ["websocket"], "event_kinds": ["open", "text", "close"], "connections": [conn]}],
    }
    data.update(over)
    return data


def grants(body: str) -> GrantSet:
    text = f'[[plugins]]\nid = "bot"\nversion = "0.1.0"\ndigest = "{DIGEST}"\n' + body
    return GrantsFile.parse(text).for_package("bot", "0.1.0", DIGEST)


FULL = (
    'surfaces = ["services", "ingresses"]\nhost_apis = ["websocket"]\n'
    '[[plugins.websocket]]\nscheme = "wss"\nhost = "chat.example.com"\n'
)


def test_declared_and_granted_is_allowed() -> None:
    m = manifest()
    [plan] = plan_connections(m, grants(FULL))
    assert plan.allowed and plan.spec.name == "gateway" and plan.spec.ingress == "chat"
    assert plan.spec.event_kinds == ("open", "text", "close")  # the ingress's, by default
    assert "token" not in plan.reason  # reasons never show the query
    assert plan.spec.source_name == "websocket:gateway"


def test_dev_grants_allow_exactly_the_manifest() -> None:
    m = manifest()
    [plan] = plan_connections(m, GrantSet.dev_grants(m))
    assert plan.allowed


@pytest.mark.parametrize(
    "body, reason",
    [
        (FULL.replace('"services", "ingresses"', '"services"'), "'ingresses' surface is not granted"),
        (FULL.replace('host_apis = ["websocket"]', "host_apis = []"), "host api 'websocket' is not granted"),
        (FULL.replace("chat.example.com", "other.example.com"), "not granted"),
        (FULL + 'path_prefixes = ["/v2"]\n', "not granted"),
        (FULL.replace('scheme = "wss"', 'scheme = "ws"'), "not granted"),
    ],
    ids=["surface", "host-api", "host", "path", "scheme"],
)
def test_anything_missing_denies(body: str, reason: str) -> None:
    [plan] = plan_connections(manifest(), grants(body))
    assert not plan.allowed and reason in plan.reason


def test_a_grant_for_another_digest_allows_nothing() -> None:
    text = f'[[plugins]]\nid = "bot"\nversion = "0.1.0"\ndigest = "{DIGEST}"\n' + FULL
    other = GrantsFile.parse(text).for_package("bot", "0.1.0", "sha256:" + "cd" * 32)
    [plan] = plan_connections(manifest(), other)
    assert not plan.allowed and "no grant" in plan.reason


def test_secrets_must_be_granted_with_a_header() -> None:
    m = manifest(conn={"secrets": ["bot_token"]})
    assert "secret 'bot_token' is not granted" in check_connection(declared_connections(m)[0], m, grants(FULL)).reason
    no_header = FULL + '[[plugins.secrets]]\nname = "bot_token"\nenv = "BOT_TOKEN"\n'
    assert "without a header" in plan_connections(m, grants(no_header))[0].reason
    ok = FULL + '[[plugins.secrets]]\nname = "bot_token"\nenv = "BOT_TOKEN"\nheader = "Authorization"\n'
    [plan] = plan_connections(m, grants(ok))
    assert plan.allowed and plan.secrets == (SecretRef("bot_token", env="BOT_TOKEN", header="Authorization"),)
    dev = plan_connections(m, GrantSet.dev_grants(m))[0]
    assert not dev.allowed and "dev grants carry no secrets" in dev.reason


def test_connection_kinds_narrow_the_ingress_kinds() -> None:
    m = manifest(conn={"event_kinds": ["text"]})
    spec = declared_connections(m)[0]
    assert wanted_kinds(spec, ("open", "text", "close")) == frozenset({"text"})


def test_url_for_display_hides_the_query() -> None:
    assert url_for_display("wss://h/p?token=abc#x") == "wss://h/p?…"
    assert url_for_display("wss://h/p") == "wss://h/p"


def test_backoff_doubles_with_jitter_and_caps() -> None:
    backoff = Backoff(0.1, 2.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(12)]
    for n, delay in enumerate(delays, start=1):
        ceiling = min(2.0, 0.1 * 2 ** (n - 1))
        assert ceiling / 2 <= delay <= ceiling
    uncapped = [d for n, d in enumerate(delays, start=1) if 0.1 * 2 ** (n - 1) <= 1.0]
    assert uncapped == sorted(uncapped)
    backoff.reset()
    assert backoff.next_delay() <= 0.1


def test_parse_send_shapes() -> None:
    assert parse_send({"connection": "c", "message": Case("text", "hi")}).data == "hi"
    assert parse_send({"connection": "c", "message": Case("binary", bytearray(b"\x00"))}).data == b"\x00"
    assert parse_send(Case("websocket_send", {"connection": "c", "message": {"text": "x"}})).size == 1
    assert parse_send({"connection": "c", "message": Case("text", "é")}).size == 2
    for bad in (None, {"message": Case("text", "x")}, {"connection": "c", "message": Case("json", "{}")},
                {"connection": "c", "message": Case("text", b"x")}, Case("emit", {})):
        with pytest.raises(InvalidSend):
            parse_send(bad)


def test_send_item_is_sent_or_withdrawn_never_both() -> None:
    message = parse_send({"connection": "c", "message": Case("text", "x")})
    late = SendItem(message)
    assert late.abandon() == "queued"
    assert not late.claim()  # the writer skips a withdrawn message
    racing = SendItem(message)
    assert racing.claim()
    assert racing.abandon() == "sending"
    racing.finish(executed("sent"))
    assert racing.future.result(0)["result"] == "executed"


def test_handshake_headers_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WS_TOKEN", "Bearer abc123")
    secret_file = tmp_path / "token"
    secret_file.write_text("s3cr3t\n")
    refs = [SecretRef("a", env="WS_TOKEN", header="Authorization"), SecretRef("b", file=str(secret_file), header="X-Api-Key")]
    assert handshake_headers(refs) == [("Authorization", "Bearer abc123"), ("X-Api-Key", "s3cr3t")]


@pytest.mark.parametrize(
    "ref, env, message",
    [
        (SecretRef("a", env="WS_UNSET", header="Authorization"), None, "environment variable is not set"),
        (SecretRef("a", file="/nonexistent/secret", header="Authorization"), None, "could not be read from its file"),
        (SecretRef("a", env="WS_BAD", header="Authorization"), "line\nbreak-s3cr3t", "not a valid header value"),
        (SecretRef("a", env="WS_BAD", header="Sec-WebSocket-Key"), "s3cr3t", "cannot be sent as header"),
        (SecretRef("a", env="WS_BAD", header="Host"), "s3cr3t", "cannot be sent as header"),
    ],
)
def test_handshake_header_problems_never_show_the_value(ref: SecretRef, env: str | None, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WS_UNSET", raising=False)
    if env is not None:
        monkeypatch.setenv("WS_BAD", env)
    with pytest.raises(SecretUnavailable) as info:
        handshake_headers([ref])
    assert message in str(info.value) and "s3cr3t" not in str(info.value) and "/nonexistent" not in str(info.value)


# -- manifest declarations -----------------------------------------------------------------


def problems(**over: Any) -> list[str]:
    with pytest.raises(ManifestError) as info:
        manifest(**over)
    return [str(p) for p in info.value.problems]


def test_manifest_connection_checks() -> None:
    assert any("'reconnected' is not among the ingress's event_kinds" in p for p in problems(conn={"event_kinds": ["reconnected"]}))
    assert any("subprotocols: must be a list" in p for p in problems(conn={"subprotocols": ["a b"]}))
    assert any("secrets: must be a list" in p for p in problems(conn={"secrets": ["bad name"]}))
    assert any("is not inside any [[websocket]] target" in p for p in problems(conn={"url": "wss://evil.example.com/v1"}))
    assert any("is not inside any [[websocket]] target" in p for p in problems(conn={"url": "wss://chat.example.com/v1evil"}))
    assert any('"websocket" is not in host_apis' in p for p in problems(host_apis=[]))


def test_manifest_connection_names_are_unique_across_ingresses() -> None:
    base = manifest_data()
    second = {"name": "other", "sources": ["websocket"], "event_kinds": ["text"],
              "connections": [{"name": "gateway", "url": "wss://chat.example.com/v1/b"}]}
    data = {**base, "ingresses": [*base["ingresses"], second]}
    with pytest.raises(ManifestError) as info:
        parse_manifest(data)
    assert any("duplicate connection 'gateway'" in str(p) for p in info.value.problems)


def test_manifest_bad_websocket_target_is_reported() -> None:
    assert any(p.startswith("websocket[0]") for p in problems(websocket=[{"scheme": "https", "host": "chat.example.com"}]))
