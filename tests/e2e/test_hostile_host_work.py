"""Family 4 (bullets 2-4) of the hostile-plugin suite: host work is bounded before it starts.

(a) Schema `pattern`s come from the plugin's own manifest: they run on RE2 (linear time),
    for tool inputs and ingress payloads alike, and a pattern RE2 cannot run
    (backreferences, lookaround) is refused when the manifest is read (`pdk check`, load).
    The catastrophic patterns below are matched against inputs thousands of characters
    long: with a backtracking engine these calls would not return in any reasonable time.
(b) A handler returning thousands of commands: the host judges the first
    `COMMANDS_PER_OUTPUT_MAX` and refuses the rest with one result; outcomes and the
    status document stay bounded however many such events arrive.
(c) Host name lookups run on one small shared pool: with a resolver that stalls, the
    number of live resolver threads stays at the pool's size after many calls, and calls
    past the pool's backlog fail at once with a typed request-error."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pdk.host import Case, Host
from pdk.host.grants import GrantsFile, GrantSet
from pdk.host.http_api import execute_http_request
from pdk.host.runtime import Accepted, Refused, RuntimeOptions, ServiceRuntime
from pdk.host.schema_check import schema_problems, schema_validator
from pdk.limits import COMMAND_RESULTS_RING, COMMANDS_PER_OUTPUT_MAX, HTTP_RESOLVER_PENDING_MAX, HTTP_RESOLVER_THREADS
from pdk.package.manifest import ManifestError, parse_manifest_text
from pdk.package.targets import Target

from runtime_support import IDLE_TIMEOUT_S, Runtimes, invariant, job, runtime_host, runtimes  # noqa: F401

# (pattern, an input far longer than any backtracking engine could finish, does it match)
CATASTROPHIC = [
    ("^(a+)+$", "a" * 5000 + "b", False),
    ("^(a|aa)+$", "a" * 5000 + "!", False),
    ("^(a|a)*b$", "a" * 5000, False),
    ("^(\\w+\\s?)*$", "word " * 1000 + "!", False),
    ("(x+x+)+y", "x" * 5000, False),
    ("^(a+)+$", "a" * 5000, True),
    ("^([a-z0-9]+[-.]?)*[a-z0-9]+@", "a" * 3000 + "-" + "b" * 2000, False),
]
REFUSED = ["(a)\\1", "(?=a)a", "(?!b)a", "(?<=a)b", "(?<!a)b", "(?P<x>a)(?P=x)", "a{2,100000}", "[z-a]", "(unclosed"]


def _manifest_with_pattern(pattern: str, *, payload: bool = False) -> str:
    where = "[ingresses.payload_schema.properties]" if payload else "[tools.input_schema.properties]"
    ingress = (
        '[[ingresses]]\nname = "orders"\ndescription = "d"\nsources = ["manual"]\nevent_kinds = ["webhook"]\n\n'
        '[ingresses.payload_schema]\ntype = "object"\n\n'
    )
    tool = '[[tools]]\nname = "t"\ndescription = "d"\n\n[tools.input_schema]\ntype = "object"\n\n'
    return (
        'schema_version = 2\nid = "p"\nname = "P"\nversion = "0.1.0"\ndescription = "d"\n'
        f'surfaces = ["{"ingresses" if payload else "tools"}"]\nhost_apis = []\n\n'
        '[runtime]\nkind = "wasm-component"\nworld = "' + ("ingress" if payload else "tool") + '"\ncomponent = "build/p.wasm"\n\n'
        + (ingress if payload else tool)
        + f"{where}\ns = {{ type = \"string\", pattern = {json.dumps(pattern)} }}\n"
    )


# ----------------------------------------------------------------------------- (a) patterns


@pytest.mark.parametrize(("pattern", "text", "matches"), CATASTROPHIC)
def test_catastrophic_patterns_are_judged_correctly(pattern: str, text: str, matches: bool) -> None:
    validator = schema_validator({"type": "object", "properties": {"s": {"type": "string", "pattern": pattern}}})
    for _ in range(20):  # repeated: each evaluation is linear, none is cached away
        problems = schema_problems(validator, {"s": text})
        assert (problems is None) is matches
    if not matches:
        assert problems is not None and problems.items[0][0] == "$.s" and "expected a string matching" in problems.items[0][1]


def test_pattern_properties_and_additional_properties_use_the_same_engine() -> None:
    schema = {"type": "object", "patternProperties": {"^(a+)+$": {"type": "integer"}}, "additionalProperties": False}
    validator = schema_validator(schema)
    keys = {"a" * 4000: 1, "a" * 4000 + "b": 2, "aaa": "not an integer"}
    problems = schema_problems(validator, keys)
    assert problems is not None
    messages = [m for _, m in problems.items]
    assert any(m.startswith("unexpected properties (matching none of '^(a+)+$'): 'aaaa") for m in messages)  # the "...b" key
    assert ("$.aaa", "expected integer, got string") in problems.items


@pytest.mark.parametrize("pattern", REFUSED)
@pytest.mark.parametrize("payload", [False, True], ids=["tool-input", "ingress-payload"])
def test_patterns_re2_cannot_run_are_a_manifest_problem(pattern: str, payload: bool) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest_text(_manifest_with_pattern(pattern, payload=payload))
    where = "ingresses[0].payload_schema" if payload else "tools[0].input_schema"
    problems = [(p.path, p.message) for p in caught.value.problems]
    assert [path for path, _ in problems] == [f"{where}.properties.s.pattern"], problems
    assert "cannot be evaluated in linear time (RE2:" in problems[0][1]


@pytest.mark.parametrize("pattern", ["^[a-z]+$", "\\d{3}-\\w+", "(?i)abc", "^(a+)+$", "\\p{L}+", "x|y|z"])
def test_common_patterns_are_accepted(pattern: str) -> None:
    parse_manifest_text(_manifest_with_pattern(pattern))
    parse_manifest_text(_manifest_with_pattern(pattern, payload=True))


@pytest.mark.slow
def test_pdk_check_refuses_a_backreference(built_plugin: Callable[[str], Path], tmp_path: Path) -> None:
    dest = tmp_path / "text-tools"
    shutil.copytree(built_plugin("text-tools"), dest, ignore=shutil.ignore_patterns("__pycache__", "dist"))
    manifest = dest / "plugin.toml"
    text = manifest.read_text()
    assert text.count('text = {type = "string"}') == 1
    manifest.write_text(text.replace('text = {type = "string"}', 'text = {type = "string", pattern = "(a)\\\\1"}'))
    proc = subprocess.run([sys.executable, "-m", "pdk.cli", "check", str(dest), "--json"], capture_output=True, text=True, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    found = json.dumps(doc)
    assert "tools[0].input_schema.properties.text.pattern" in found and "RE2" in found


def _with_pattern(built: Path, tmp_path: Path, old: str, new: str) -> Path:
    dest = tmp_path / built.name
    shutil.copytree(built, dest, ignore=shutil.ignore_patterns("__pycache__", "dist"))
    manifest = dest / "plugin.toml"
    text = manifest.read_text()
    assert text.count(old) == 1
    manifest.write_text(text.replace(old, new))
    return dest


@pytest.mark.slow
def test_tool_input_pattern_runs_in_linear_time(pdk_host: Host, built_plugin: Callable[[str], Path], tmp_path: Path) -> None:
    path = _with_pattern(built_plugin("text-tools"), tmp_path, 'text = {type = "string"}', 'text = {type = "string", pattern = "^(a+)+$"}')
    plugin = pdk_host.load(path, dev_grants=True)
    for n in (27, 1000, 20000):
        result = plugin.call_tool("text_stats", {"text": "a" * n + "b"})
        assert result.error is not None and result.error.code.value == "invalid_input"
        assert "expected a string matching" in result.error.message
    assert plugin.call_tool("text_stats", {"text": "a" * 20000}).ok


@pytest.mark.slow
def test_ingress_payload_pattern_runs_in_linear_time(pdk_host: Host, built_plugin: Callable[[str], Path], tmp_path: Path) -> None:
    path = _with_pattern(built_plugin("webhook-ingress"), tmp_path, 'customer = { type = "string" }', 'customer = { type = "string", pattern = "^(a|aa)+$" }')
    rt = ServiceRuntime(pdk_host.load(path, dev_grants=True), {}, RuntimeOptions())
    rt.start()
    try:
        for n in (27, 1000, 20000):
            payload = {"order_id": "o1", "amount_cents": 1, "currency": "EUR", "customer": "a" * n + "!"}
            refused = rt.submit("orders", "webhook", Case("json", json.dumps(payload)))
            assert isinstance(refused, Refused) and refused.reason == "invalid_payload"
            assert "expected a string matching" in refused.message
        good = {"order_id": "o1", "amount_cents": 1, "currency": "EUR", "customer": "a" * 20000}
        assert isinstance(rt.submit("orders", "webhook", Case("json", json.dumps(good))), Accepted)
        assert rt.wait_idle(IDLE_TIMEOUT_S)
        assert rt.state == "running"
    finally:
        rt.stop(drain_deadline_s=0.0)


# ----------------------------------------------------------------------------- (b) commands


@pytest.mark.slow
@pytest.mark.parametrize("count", [COMMANDS_PER_OUTPUT_MAX + 1, 1000, 2000])  # past RESULT_LIST_ITEMS_MAX: test_hostile_output.py
def test_a_command_flood_gets_one_refusal(runtimes: Runtimes, count: int) -> None:
    rt = runtimes.make("chaos")
    rt.start()
    accepted = job(rt, f"commands:flood:{count}")
    assert isinstance(accepted, Accepted)
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    (outcome,) = [o for o in rt.outcomes() if o["event_id"] == accepted.event_id]
    results = outcome["command_results"]
    assert [r["result"] for r in results] == ["executed"] * COMMANDS_PER_OUTPUT_MAX + ["invalid"]
    assert results[-1]["kind"] == "excess" and results[-1]["command_id"] == ""
    excess = count - COMMANDS_PER_OUTPUT_MAX
    assert results[-1]["detail"] == (
        f"{excess} commands after the first {COMMANDS_PER_OUTPUT_MAX} refused: at most {COMMANDS_PER_OUTPUT_MAX} per output ({count} returned)"
    )
    assert [e["command_id"] for e in rt.emitted("chaos.flood")] == [f"flood-{i}" for i in range(COMMANDS_PER_OUTPUT_MAX)]
    doc = invariant(rt)
    assert doc["commands"]["by_result"]["executed"] == COMMANDS_PER_OUTPUT_MAX
    assert doc["commands"]["by_result"]["invalid"] == 1


@pytest.mark.slow
def test_many_flooding_events_keep_results_bounded(runtimes: Runtimes) -> None:
    rt = runtimes.make("chaos")
    rt.start()
    events = 20
    for _ in range(events):
        assert isinstance(job(rt, "commands:flood:2000"), Accepted)
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    doc = invariant(rt)
    assert doc["counters"]["handled"] == events
    assert doc["commands"]["by_result"]["executed"] == events * COMMANDS_PER_OUTPUT_MAX
    assert doc["commands"]["by_result"]["invalid"] == events  # one per event, not 1,984
    assert len(doc["commands"]["recent"]) <= COMMAND_RESULTS_RING
    kept = sum(len(o["command_results"]) for o in rt.outcomes())
    assert kept <= len(rt.outcomes()) * (COMMANDS_PER_OUTPUT_MAX + 1)
    assert len(json.dumps(doc)) < 256 * 1024  # the status document stays small
    assert rt.state == "running"


# ----------------------------------------------------------------------------- (c) resolver

DIGEST = "sha256:" + "a" * 64


def _grants(hosts: list[str]) -> tuple[GrantSet, tuple[Target, ...]]:
    targets = [{"scheme": "http", "host": h, "port": 80, "path_prefixes": ["/"]} for h in hosts]
    text = '[[plugins]]\nid = "p"\nversion = "0.1.0"\n' f'digest = "{DIGEST}"\nsurfaces = ["tools"]\nhost_apis = ["request"]\n' + "".join(
        "[[plugins.request]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in t.items()) for t in targets
    )
    grants = GrantsFile.parse(text).for_package("p", "0.1.0", DIGEST)
    return grants, tuple(Target.from_mapping(t) for t in targets)


def _resolver_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "yoi-resolve"]


@pytest.fixture
def stalling_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """`socket.getaddrinfo` stalls until released, then answers 127.0.0.1 (which the
    targets, public names, refuse: no traffic)."""
    release = threading.Event()
    calls: list[str] = []

    def stall(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(str(host))
        release.wait(60)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", stall)
    yield release
    release.set()


def test_resolver_threads_stay_bounded_with_a_stalling_resolver(stalling_dns: threading.Event) -> None:
    hosts = [f"h{i}.example.test" for i in range(60)]
    grants, declared = _grants(hosts)
    before = threading.active_count()
    codes: list[str] = []
    for host in hosts:
        out = execute_http_request({"method": "GET", "url": f"http://{host}/x", "headers": [], "body": None}, grants=grants, declared=declared, timeout_s=0.05)
        codes.append(out.value["code"])
        assert len(_resolver_threads()) <= HTTP_RESOLVER_THREADS
    # Never more threads than the pool: the stalled lookups hold its slots.
    assert len(_resolver_threads()) <= HTTP_RESOLVER_THREADS
    assert threading.active_count() <= before + HTTP_RESOLVER_THREADS
    slots = HTTP_RESOLVER_THREADS + HTTP_RESOLVER_PENDING_MAX
    # The first lookups wait out their deadline; once every slot is held, the rest fail at once.
    assert set(codes[:slots]) == {"timeout"}
    assert set(codes[slots:]) == {"connection_failed"}
    busy = execute_http_request({"method": "GET", "url": "http://h0.example.test/x", "headers": [], "body": None}, grants=grants, declared=declared, timeout_s=5.0)
    assert busy.value["code"] == "connection_failed" and "resolver is busy" in busy.value["message"]


RECOVERY_BOUND_S = 30.0  # a generous bound: released lookups end in milliseconds when idle


def test_the_pool_recovers_when_the_resolver_answers(stalling_dns: threading.Event) -> None:
    grants, declared = _grants(["again.example.test"])
    request = {"method": "GET", "url": "http://again.example.test/x", "headers": [], "body": None}
    stalling_dns.set()  # lookups answer (abandoned ones still queued are skipped)
    # Lookups an earlier test stalled were let go at its end; on a loaded machine they
    # may still hold the pool's slots for a moment. The pool must free them (bounded).
    deadline = time.monotonic() + RECOVERY_BOUND_S
    out = execute_http_request(request, grants=grants, declared=declared, timeout_s=5.0)
    while "resolver is busy" in str(out.value.get("message")) and time.monotonic() < deadline:
        time.sleep(0.05)
        out = execute_http_request(request, grants=grants, declared=declared, timeout_s=5.0)
    assert out.value["code"] == "denied", out.value
    for _ in range(HTTP_RESOLVER_THREADS + HTTP_RESOLVER_PENDING_MAX + 5):
        out = execute_http_request(request, grants=grants, declared=declared, timeout_s=5.0)
        # The lookup answered; the loopback answer is then refused for a public name.
        assert out.value["code"] == "denied", out.value
    assert len(_resolver_threads()) <= HTTP_RESOLVER_THREADS
