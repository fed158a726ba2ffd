"""Service lifecycle in real wasmtime: start, stop, start failures, restarts after
traps and deadlines with backoff, the restart budget, tool calls of a combined
plugin gated by the lifecycle, and the Ingress world (no lifecycle exports)."""

from __future__ import annotations

import pytest

from pdk.errors import ErrorCode
from pdk.host.codec import Case
from pdk.host.runtime import Accepted, Refused

from runtime_support import IDLE_TIMEOUT_S, Runtimes, invariant, job, runtime_host, runtimes  # noqa: F401

pytestmark = pytest.mark.slow


def test_counter_service_runs_and_stops(runtimes: Runtimes) -> None:
    rt = runtimes.make("counter-service", {"greeting": "yo"})
    assert rt.status()["lifecycle"]["state"] == "stopped"
    doc = rt.start()
    assert doc["lifecycle"]["state"] == "running"
    assert doc["plugin_status"] == {**doc["plugin_status"], "healthy": True, "source": "start"}
    for text in ("hi", "there"):
        assert isinstance(rt.submit("inbox", "message", Case("text", text)), Accepted)
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    assert [e["data"]["text"] for e in rt.emitted("counted")] == ["hi", "there"]
    assert rt.plugin.diagnostics.messages("command") == ["yo: hi", "yo: there"]
    doc = invariant(rt)
    # Read from the guest's status export between dispatches, once the queue was idle.
    assert doc["plugin_status"]["source"] == "status_export"
    assert doc["plugin_status"]["data"]["count"] == 2
    plugin_doc = {k: doc["plugin"][k] for k in ("id", "version", "digest", "world")}
    assert plugin_doc == {"id": "counter-service", "version": "0.1.0", "digest": rt.plugin.digest, "world": "service"}
    # One status document per plugin: the runtime's carries the plugin's own.
    assert doc["plugin"] == rt.plugin.status()
    doc = rt.stop()
    assert doc["lifecycle"]["state"] == "stopped"
    assert "counter stopping after 2 messages" in rt.plugin.diagnostics.messages("log")
    refused = rt.submit("inbox", "message", Case("text", "late"))
    assert isinstance(refused, Refused) and refused.reason == "not_running"
    # Started again: a fresh instance, a fresh count.
    assert rt.start()["lifecycle"]["state"] == "running"
    rt.submit("inbox", "message", Case("text", "again"))
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    assert rt.emitted("counted")[-1]["data"]["count"] == 1


def test_a_failed_start_is_reported_with_its_error(runtimes: Runtimes) -> None:
    rt = runtimes.make("counter-service", {"greeting": 5})  # not a str: the typed config refuses it
    doc = rt.start()
    assert doc["lifecycle"]["state"] == "failed"
    error = doc["lifecycle"]["last_error"]
    assert error["code"] == "invalid_input" and error["during"] == "start" and "greeting" in error["message"]
    refused = rt.submit("inbox", "message", Case("text", "hi"))
    assert isinstance(refused, Refused) and refused.reason == "not_running"
    assert rt.stop()["lifecycle"]["state"] == "failed"  # stays failed until started again
    rt.config = {"greeting": "fixed"}
    assert rt.start()["lifecycle"]["state"] == "running"


def test_a_start_that_traps_is_reported(runtimes: Runtimes) -> None:
    rt = runtimes.make("chaos", {"trap_start": True})
    doc = rt.start()
    assert doc["lifecycle"]["state"] == "failed"
    assert doc["lifecycle"]["last_error"]["fault"] == "trap"


def test_a_trap_restarts_the_instance_with_backoff(runtimes: Runtimes) -> None:
    rt = runtimes.make("chaos", max_attempts=1, restart_backoff_initial_s=0.02, restart_backoff_max_s=1.0)
    rt.start()
    assert isinstance(job(rt, "ok"), Accepted)
    assert isinstance(job(rt, "trap"), Accepted)
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    doc = invariant(rt)
    assert doc["lifecycle"]["state"] == "running" and doc["lifecycle"]["restarts"] == 1
    assert doc["lifecycle"]["last_error"]["fault"] == "trap"
    # `start` ran again on the fresh instance; the guest state began anew.
    assert rt.plugin.diagnostics.messages("log").count("chaos started") == 2
    assert doc["plugin_status"]["data"]["handled"] == 0
    job(rt, "trap")
    job(rt, "ok")
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    doc = invariant(rt)
    assert [r["delay_s"] for r in doc["lifecycle"]["recent_restarts"]] == [0.02, 0.04]  # exponential
    assert doc["counters"]["handled"] == 2 and doc["counters"]["dead_lettered"] == 2
    assert doc["lifecycle"]["restart_budget"]["used"] == 2


def test_a_deadline_restarts_the_instance(runtimes: Runtimes) -> None:
    rt = runtimes.make("chaos", max_attempts=1, call_deadline_s=0.3)
    rt.start()
    job(rt, "spin")
    job(rt, "ok")
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    doc = invariant(rt)
    (letter,) = rt.dead_letters()
    assert letter["error"]["code"] == "timeout" and letter["error"]["fault"] == "timeout"
    assert doc["lifecycle"]["restarts"] == 1 and doc["lifecycle"]["state"] == "running"
    assert doc["counters"]["handled"] == 1


def test_the_restart_budget_fails_the_service_until_started_again(runtimes: Runtimes) -> None:
    rt = runtimes.make("chaos", max_attempts=1, restart_budget=2)
    finals: list[dict[str, object]] = []
    rt.on_outcome(finals.append)
    rt.start()
    for text in ("trap", "trap", "trap", "ok", "ok"):
        assert isinstance(job(rt, text), Accepted)
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    doc = invariant(rt)
    assert doc["lifecycle"]["state"] == "failed" and doc["lifecycle"]["restarts"] == 2
    assert "restart budget spent" in doc["lifecycle"]["last_error"]["message"]
    # The third trap spent the budget; the events queued behind it were dead-lettered, not lost.
    assert [f["outcome"] for f in finals] == ["dead_lettered"] * 5
    assert [d["reason"] for d in rt.dead_letters()] == ["retries_exhausted"] * 3 + ["failed"] * 2
    refused = job(rt, "ok")
    assert isinstance(refused, Refused) and refused.reason == "not_running"
    tool = rt.plugin.call_tool("peek", {})
    assert tool.error is not None and tool.error.code is ErrorCode.DENIED and "failed" in tool.error.message
    # Only an explicit start leaves `failed`; replay brings the dead letters back.
    assert rt.start()["lifecycle"]["state"] == "running"
    for letter in rt.dead_letters()[-2:]:
        assert isinstance(rt.replay(letter["id"]), Accepted)
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    assert invariant(rt)["counters"]["handled"] == 2


def test_tool_calls_respect_the_lifecycle(runtimes: Runtimes) -> None:
    rt = runtimes.make("chaos")
    plugin = rt.plugin
    before = plugin.call_tool("peek", {})
    assert before.error is not None and before.error.code is ErrorCode.DENIED and "stopped" in before.error.message
    rt.start()
    job(rt, "ok")
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    assert plugin.call_tool("peek", {}).content == {"handled": 1}  # tools share the service state
    crashed = plugin.call_tool("crash", {})
    assert crashed.error is not None  # the trap poisoned the shared instance ...
    assert rt.wait_idle(IDLE_TIMEOUT_S)  # ... so the runtime restarted the service
    doc = rt.status()
    assert doc["lifecycle"]["restarts"] == 1 and doc["lifecycle"]["last_error"]["during"] == "tool"
    assert plugin.call_tool("peek", {}).content == {"handled": 0}
    rt.stop()
    after = plugin.call_tool("peek", {})
    assert after.error is not None and after.error.code is ErrorCode.DENIED


def test_an_ingress_plugin_has_no_lifecycle_calls(runtimes: Runtimes) -> None:
    rt = runtimes.make("webhook-ingress")
    assert rt.start()["lifecycle"]["state"] == "running"
    order = '{"order_id": "A-1", "amount_cents": 1250, "currency": "EUR"}'
    assert isinstance(rt.submit("orders", "webhook", Case("json", order)), Accepted)
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    (event,) = rt.emitted("orders.normalized")
    assert event["data"] == {"id": "A-1", "amount": 12.5, "currency": "EUR", "customer": "anonymous"}
    doc = invariant(rt)
    assert doc["plugin_status"] is None  # no status export in the ingress world
    assert rt.stop()["lifecycle"]["state"] == "stopped"


def test_ungranted_surfaces_fail_the_start(runtimes: Runtimes, tmp_path) -> None:  # type: ignore[no-untyped-def]
    plugin = runtimes.load("counter-service", dev_grants=True)
    grants = tmp_path / "grants.toml"
    grants.write_text(
        f'[[plugins]]\nid = "counter-service"\nversion = "0.1.0"\ndigest = "{plugin.digest}"\n'
        'surfaces = ["ingresses"]\nhost_apis = ["log"]\n'
    )
    from pdk.host.runtime import ServiceRuntime

    rt = ServiceRuntime(runtimes.load("counter-service", grants=grants))
    runtimes.made.append(rt)
    doc = rt.start()
    assert doc["lifecycle"]["state"] == "failed"
    assert doc["lifecycle"]["last_error"]["code"] == "denied" and "services" in doc["lifecycle"]["last_error"]["message"]
