"""Output commands in real wasmtime: each command validated, grant-checked and
executed on its own, with a result; invalid or ungranted siblings never sink the
valid ones; the per-output bound; pluggable executors and async results that come
back as events carrying the command's id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pdk.host.codec import Case
from pdk.host.runtime import Accepted, CommandContext, Execution
from pdk.limits import COMMANDS_PER_OUTPUT_MAX

from runtime_support import IDLE_TIMEOUT_S, Runtimes, invariant, job, runtime_host, runtimes  # noqa: F401

pytestmark = pytest.mark.slow


def _results(rt: Any, event_id: str) -> list[dict[str, Any]]:
    (outcome,) = [o for o in rt.outcomes() if o["event_id"] == event_id]
    assert outcome["outcome"] == "handled"
    results: list[dict[str, Any]] = outcome["command_results"]
    return results


def test_each_command_gets_its_own_result(runtimes: Runtimes) -> None:
    rt = runtimes.make("chaos")
    seen: list[dict[str, Any]] = []
    # Read inside the callback: right after the event, before the next status read.
    rt.on_outcome(lambda outcome: seen.append(rt.status()["plugin_status"]))
    rt.start()
    accepted = job(rt, "commands:mixed")
    assert isinstance(accepted, Accepted)
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    results = _results(rt, accepted.event_id)
    assert [(r["command_id"], r["kind"], r["result"]) for r in results] == [
        ("emit-ok", "emit", "executed"),
        ("emit-bad-topic", "emit", "invalid"),
        ("log-ok", "log", "executed"),
        ("log-too-long", "log", "invalid"),
        ("status-ok", "status_update", "executed"),
        ("ws-declared", "websocket_send", "unsupported"),  # granted; no executor yet
        ("ws-undeclared", "websocket_send", "denied"),
        ("http-granted", "http_request", "unsupported"),  # granted; no executor yet
        ("http-undeclared", "http_request", "denied"),
        ("http-method-not-granted", "http_request", "denied"),
        ("emit-ok", "emit", "invalid"),  # a duplicate id
        ("", "emit", "invalid"),  # an empty id
    ]
    details = {r["command_id"] or "<empty>": r["detail"] for r in results[:-2]}
    assert "topic" in details["emit-bad-topic"]
    assert "not declared" in details["ws-undeclared"]
    assert "evil.example.net" in details["http-undeclared"]
    assert "method" in details["http-method-not-granted"]
    assert all(len(r["detail"].encode()) <= 1024 for r in results)
    # The valid siblings were executed.
    assert [e["command_id"] for e in rt.emitted()] == ["emit-ok"]
    assert rt.emitted()[0]["data"] == {"n": 1} and rt.emitted()[0]["event_id"] == accepted.event_id
    assert "a log line from chaos" in rt.plugin.diagnostics.messages("command")
    assert seen[0]["source"] == "status_update" and seen[0]["data"] == {"mood": "mixed"}
    doc = invariant(rt)
    assert doc["commands"]["by_result"] == {"executed": 3, "denied": 3, "invalid": 4, "failed": 0, "unsupported": 2}
    assert [r["command_id"] for r in doc["commands"]["recent"]][-3:] == ["http-method-not-granted", "emit-ok", ""]


def test_commands_beyond_the_per_output_bound_are_invalid(runtimes: Runtimes) -> None:
    rt = runtimes.make("chaos")
    rt.start()
    accepted = job(rt, "commands:many")  # 20 emits; the guest PDK's own bound is skipped
    assert isinstance(accepted, Accepted)
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    results = _results(rt, accepted.event_id)
    # The excess is refused with one result, not one per command.
    assert [r["result"] for r in results] == ["executed"] * COMMANDS_PER_OUTPUT_MAX + ["invalid"]
    assert results[-1]["kind"] == "excess" and "at most 16" in results[-1]["detail"]
    assert len(rt.emitted("chaos.many")) == COMMANDS_PER_OUTPUT_MAX


def test_ungranted_host_apis_deny_their_commands(runtimes: Runtimes, tmp_path: Path) -> None:
    digest = runtimes.load("chaos").digest
    grants = tmp_path / "grants.toml"
    grants.write_text(
        f'[[plugins]]\nid = "chaos"\nversion = "0.1.0"\ndigest = "{digest}"\n'
        'surfaces = ["tools", "services", "ingresses"]\ntools = ["*"]\nhost_apis = ["log"]\n'
    )
    rt = runtimes.make("chaos", load={"grants": grants})
    rt.start()
    accepted = job(rt, "commands:mixed")
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    assert isinstance(accepted, Accepted)
    results = {r["command_id"]: r for r in _results(rt, accepted.event_id)[:-2]}
    assert results["ws-declared"]["result"] == "denied" and "websocket" in results["ws-declared"]["detail"]
    assert results["http-granted"]["result"] == "denied" and "request" in results["http-granted"]["detail"]
    assert results["emit-ok"]["result"] == "executed"  # emit needs nothing but a running plugin


def test_executors_plug_in_and_async_results_come_back_as_events(runtimes: Runtimes) -> None:
    rt = runtimes.make("chaos")
    calls: list[CommandContext] = []

    def fake_http(context: CommandContext) -> Execution:
        calls.append(context)
        # A real executor would do the request elsewhere; the result is an event that
        # carries the command's id as its correlation id, from a host source.
        result = rt.submit(
            context.event.ingress, "http_response", Case("json", '{"status": 201}'), source="http_request", correlation_id=context.command_id
        )
        assert isinstance(result, Accepted), result
        return Execution("executed", "request started")

    def broken_ws(context: CommandContext) -> Execution:
        raise RuntimeError("the socket is gone")

    rt.register_executor("http_request", fake_http)
    rt.register_executor("websocket_send", broken_ws)
    rt.start()
    accepted = job(rt, "commands:mixed")
    assert isinstance(accepted, Accepted)
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    results = {r["command_id"]: r for r in _results(rt, accepted.event_id)[:-2]}
    assert results["http-granted"]["result"] == "executed" and results["http-granted"]["detail"] == "request started"
    assert results["ws-declared"]["result"] == "failed" and "the socket is gone" in results["ws-declared"]["detail"]
    assert results["http-undeclared"]["result"] == "denied"  # the grant check runs before any executor
    assert [c.command_id for c in calls] == ["http-granted"]
    assert calls[0].value["url"] == "https://api.example.com/v1/things"
    (response,) = rt.emitted("chaos.response")
    assert response["data"] == {"correlation_id": "http-granted", "data": {"status": 201}, "source": "http_request"}
    # An id the runtime never issued gets no such pass: the source must be declared.
    stray = rt.submit("jobs", "http_response", Case("json", "{}"), source="http_request", correlation_id="made-up")
    assert not stray.accepted and stray.reason == "source_not_allowed"
    invariant(rt)
