"""Family 3 of the hostile-plugin suite: nothing a guest returns crashes the host or the
runtime.

The chaos plugin's `raw:<where>:<doc>` jobs and its `raw_content` tool skip the guest
PDK's strict encoder and hand the host hostile JSON text: arrays or objects nested
2,000-20,000 levels deep, `NaN`, `Infinity`, `-Infinity`, `1e999` (an overflow to
infinity) and broken JSON, as tool content, error details, handler output data, emit
data, status_update data and the status export's data. Invariants: each is a typed
`invalid_output` (a tool result, a dead letter, an `invalid` command result or an
`invalid_output` marker in status), the runtime stays `running` and keeps handling
events, and every document the host hands out serializes as strict JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pdk.host.runtime import Accepted
from pdk.limits import RESULT_LIST_ITEMS_MAX

from runtime_support import IDLE_TIMEOUT_S, Runtimes, invariant, job, runtime_host, runtimes  # noqa: F401

pytestmark = pytest.mark.slow

DEEP = ["deep:2000", "deep:20000", "deepobj:5000"]
NUMBERS = ["nan", "inf", "-inf", "big"]
HOSTILE = [*DEEP, *NUMBERS, "broken"]


def _strict(doc: Any) -> str:
    """The document as strict JSON (raises on NaN/Infinity or unserializable values)."""
    return json.dumps(doc, allow_nan=False)


def _outcome(rt: Any, event_id: str) -> dict[str, Any]:
    (final,) = [o for o in rt.outcomes() if o["event_id"] == event_id and o["outcome"] in ("handled", "dead_lettered")]
    return final


def _run_job(rt: Any, text: str) -> dict[str, Any]:
    accepted = job(rt, text)
    assert isinstance(accepted, Accepted), accepted
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    return _outcome(rt, accepted.event_id)


def _still_serving(rt: Any) -> None:
    """The runtime is running and handles the next event normally."""
    assert rt.state == "running"
    outcome = _run_job(rt, "ok")
    assert outcome["outcome"] == "handled"
    doc = invariant(rt)
    assert doc["lifecycle"]["state"] == "running"
    _strict(doc)
    _strict(rt.outcomes())
    _strict(rt.emitted())
    _strict(rt.dead_letters())


# ----------------------------------------------------------------------------- tools


@pytest.mark.parametrize("doc", HOSTILE)
def test_tool_content_is_invalid_output(runtimes: Runtimes, doc: str) -> None:
    plugin = runtimes.load("chaos")
    result = plugin.call_tool("raw_content", {"doc": doc})  # returns, never raises
    assert not result.ok and result.error is not None
    assert result.error.code.value == "invalid_output"
    assert result.summary == "tool error: invalid_output"
    assert "content is refused" in result.error.message
    _strict(result.to_json())
    # The instance is intact: the next call succeeds.
    again = plugin.call_tool("raw_content", {"doc": "lit:[1,2]"})
    assert again.ok and again.content == [1, 2]


@pytest.mark.parametrize("doc", [*DEEP, *NUMBERS])
def test_tool_error_details_are_refused_not_raised(runtimes: Runtimes, doc: str) -> None:
    plugin = runtimes.load("chaos")
    result = plugin.call_tool("raw_content", {"doc": doc, "error": True})
    assert result.error is not None
    assert result.error.code.value == "failed" and result.error.message == "raw details"
    details = result.error.details
    assert isinstance(details, dict) and set(details) <= {"invalid_output", "truncated", "bytes"}, details
    _strict(result.to_json())


def test_deep_content_within_the_bound_is_accepted(runtimes: Runtimes) -> None:
    plugin = runtimes.load("chaos")
    result = plugin.call_tool("raw_content", {"doc": "deep:64"})
    assert result.ok
    depth, value = 0, result.content
    while isinstance(value, list) and value:
        depth, value = depth + 1, value[0]
    assert depth + 1 == 64 and value == []


# ----------------------------------------------------------------------------- service


@pytest.mark.parametrize("doc", ["deep:2000", "deepobj:600", *NUMBERS, "broken"])  # within OUTPUT_DATA_MAX_BYTES
def test_handler_output_data_is_a_permanent_invalid_output(runtimes: Runtimes, doc: str) -> None:
    rt = runtimes.make("chaos")
    rt.start()
    outcome = _run_job(rt, f"raw:data:{doc}")
    assert outcome["outcome"] == "dead_lettered" and outcome["reason"] == "permanent_error"
    assert outcome["error"]["code"] == "invalid_output" and outcome["error"]["retryable"] is False
    assert outcome["attempts"] == 1  # not retried: the same code returns the same output
    # The output was refused as a whole, before any of its commands ran.
    assert rt.emitted("chaos.raw") == []
    _still_serving(rt)


@pytest.mark.parametrize(("doc", "size"), [("deep:20000", 40000), ("deepobj:5000", 30001)])
def test_handler_output_data_past_the_view_bound_is_a_marker(runtimes: Runtimes, doc: str, size: int) -> None:
    rt = runtimes.make("chaos")
    rt.start()
    outcome = _run_job(rt, f"raw:data:{doc}")
    assert outcome["outcome"] == "handled"
    assert outcome["data"] == {"truncated": True, "bytes": size}  # never parsed
    _still_serving(rt)


@pytest.mark.parametrize("doc", HOSTILE)
def test_emit_data_is_an_invalid_command(runtimes: Runtimes, doc: str) -> None:
    rt = runtimes.make("chaos")
    rt.start()
    outcome = _run_job(rt, f"raw:emit:{doc}")
    assert outcome["outcome"] == "handled"
    assert [(r["command_id"], r["result"]) for r in outcome["command_results"]] == [("raw-emit", "invalid"), ("raw-ok", "executed")]
    assert "emit data_json is refused" in outcome["command_results"][0]["detail"]
    assert [e["command_id"] for e in rt.emitted()] == ["raw-ok"]  # the valid sibling still ran
    _still_serving(rt)


@pytest.mark.parametrize("doc", HOSTILE)
def test_status_update_data_is_an_invalid_command(runtimes: Runtimes, doc: str) -> None:
    rt = runtimes.make("chaos")
    rt.start()
    outcome = _run_job(rt, f"raw:status:{doc}")
    assert [(r["command_id"], r["result"]) for r in outcome["command_results"]] == [("raw-status", "invalid"), ("raw-ok", "executed")]
    assert rt.status()["plugin_status"]["source"] != "status_update"
    _still_serving(rt)


@pytest.mark.parametrize("doc", [*DEEP, *NUMBERS])
def test_error_details_in_a_dead_letter(runtimes: Runtimes, doc: str) -> None:
    rt = runtimes.make("chaos")
    rt.start()
    outcome = _run_job(rt, f"raw:error:{doc}")
    assert outcome["outcome"] == "dead_lettered"
    assert outcome["error"]["code"] == "failed" and outcome["error"]["message"] == "raw details"
    assert set(outcome["error"]["details"]) <= {"invalid_output", "truncated", "bytes"}
    (letter,) = rt.dead_letters()
    assert letter["error"] == outcome["error"]
    _still_serving(rt)


@pytest.mark.parametrize("doc", HOSTILE)
def test_status_export_data_is_marked_invalid_output(runtimes: Runtimes, doc: str) -> None:
    rt = runtimes.make("chaos")
    rt.start()
    assert _run_job(rt, f"raw:export:{doc}")["outcome"] == "handled"
    status = rt.status(refresh=True)
    plugin_status = status["plugin_status"]
    assert plugin_status["source"] == "status_export"
    # Refused by the parser, or (past PLUGIN_STATUS_MAX_BYTES) never parsed at all.
    assert set(plugin_status["data"]) in ({"invalid_output"}, {"truncated", "bytes"}), plugin_status
    _strict(status)
    # Many refreshes in a row: still running, still valid JSON.
    for _ in range(5):
        _strict(rt.status(refresh=True))
    _still_serving(rt)


def test_a_stream_of_hostile_outputs_leaves_the_runtime_running(runtimes: Runtimes) -> None:
    rt = runtimes.make("chaos")
    rt.start()
    texts = [f"raw:{where}:{doc}" for where in ("data", "emit", "status", "error") for doc in ("deep:20000", "nan", "big")]
    ids = []
    for text in texts:
        accepted = job(rt, text)
        assert isinstance(accepted, Accepted)
        ids.append(accepted.event_id)
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    finals = [_outcome(rt, i)["outcome"] for i in ids]
    # data (deep:20000 is past the view bound: a marker) and error dead-lettered; emit + status handled
    assert finals.count("dead_lettered") == 5 and finals.count("handled") == 7
    doc = invariant(rt)
    assert doc["counters"]["accepted"] == len(texts) and doc["commands"]["by_result"]["invalid"] == 6
    _still_serving(rt)


def test_a_result_past_the_list_bound_is_a_permanent_invalid_output(runtimes: Runtimes) -> None:
    """4,161 commands: the codec refuses the result while reading it (RESULT_LIST_ITEMS_MAX)
    and the event is dead-lettered at once. The plain path (YOI_PDK_CODEC=plain) refuses
    it in the same words (tests/e2e/test_codec.py), but only after wasmtime-py has
    converted every command itself, which can outlast the call deadline on a loaded machine."""
    rt = runtimes.make("chaos")
    rt.start()
    count = RESULT_LIST_ITEMS_MAX + 1
    outcome = _run_job(rt, f"commands:flood:{count}")
    assert outcome["outcome"] == "dead_lettered" and outcome["reason"] == "permanent_error"
    assert outcome["attempts"] == 1
    assert outcome["error"] == {
        "code": "invalid_output",
        "message": f"contract mismatch: $.ok.commands: the result holds more than {RESULT_LIST_ITEMS_MAX} list elements in all (this list has {count})",
        "retryable": False,
    }
    assert outcome["command_results"] == [] and rt.emitted("chaos.flood") == []  # none of them ran
    _still_serving(rt)


# ----------------------------------------------------------------------------- CLI


@pytest.mark.parametrize("doc", ["deep:20000", "nan", "big"])
def test_pdk_call_prints_valid_json(built_plugin: Any, doc: str) -> None:
    path: Path = built_plugin("chaos")
    proc = subprocess.run(
        [sys.executable, "-m", "pdk.cli", "call", str(path), "raw_content", json.dumps({"doc": doc}), "--dev-grants", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr  # a tool error, not an internal error (2)
    printed = json.loads(proc.stdout, parse_constant=lambda c: pytest.fail(f"{c} in printed JSON"))
    assert printed["summary"] == "tool error: invalid_output"
    assert printed["content"]["error"]["code"] == "invalid_output"
