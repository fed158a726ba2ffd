"""What the runtime's per-event shortcuts must not change (issue 16): ids stay unique
and keep their format, remembered intake routes never let a refused source through,
and a handled outcome kept as its parts reads back as the record a callback gets."""

from __future__ import annotations

import multiprocessing
import re
import threading
from typing import Any

from pdk.host.codec import Case
from pdk.host.runtime import Accepted, Refused
from pdk.host.runtime.intake import CHECKED_ROUTES_REMEMBERED, Intake
from pdk.host.runtime.model import UniqueIds, new_event_id
from pdk.package.manifest import parse_manifest_text

from test_runtime_queue_logic import MANIFEST, job, make_runtime

EVENT_ID = re.compile(r"ev-[0-9a-f]{32}")


def test_event_ids_are_unique_across_threads_and_keep_the_uuid_hex_format() -> None:
    ids: list[list[str]] = [[] for _ in range(4)]

    def draw(out: list[str]) -> None:
        out.extend(new_event_id() for _ in range(5000))

    threads = [threading.Thread(target=draw, args=(out,)) for out in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    drawn = [i for out in ids for i in out]
    assert len(set(drawn)) == len(drawn) == 20000
    assert all(EVENT_ID.fullmatch(i) for i in drawn)


def _child_ids(ids: UniqueIds, conn: Any) -> None:
    conn.send([ids() for _ in range(3)])


def test_a_forked_child_draws_ids_the_parent_never_draws() -> None:
    ids = UniqueIds("ev")
    before = ids()
    parent_end, child_end = multiprocessing.get_context("fork").Pipe()
    child = multiprocessing.get_context("fork").Process(target=_child_ids, args=(ids, child_end))
    child.start()
    from_child: list[str] = parent_end.recv()
    child.join(10)
    after = [ids() for _ in range(3)]
    assert not set(from_child) & {before, *after}
    assert {i[:19] for i in from_child} != {before[:19]}  # a new random head, not the parent's counter
    assert UniqueIds("ev")()[:19] != before[:19]  # another process's runtime: another head


def test_remembered_routes_never_admit_a_source_the_ingress_refuses() -> None:
    intake = Intake(parse_manifest_text(MANIFEST))
    text = Case("text", "x")
    assert intake.check("jobs", "job", text, "manual") == 1
    assert intake.check("jobs", "job", text, "manual") == 1  # remembered
    refused = intake.check("jobs", "job", text, "http")
    assert isinstance(refused, Refused) and refused.reason == "source_not_allowed"
    # An async command's result may come from any source; that does not open the route.
    assert intake.check("jobs", "job", text, "http", any_source=True) == 1
    refused = intake.check("jobs", "job", text, "http")
    assert isinstance(refused, Refused) and refused.reason == "source_not_allowed"
    # The size is still checked on every call (the route says nothing about the payload).
    assert intake.check("jobs", "job", Case("text", "héllo"), "manual") == 6
    refused = intake.check("jobs", "job", Case("text", "\ud800"), "manual")
    assert isinstance(refused, Refused) and refused.reason == "invalid_payload"
    # Bounded: past the bound routes are checked every time, and still judged right.
    for i in range(CHECKED_ROUTES_REMEMBERED + 10):
        refused = intake.check("jobs", "job", text, f"conn-{i}")
        assert isinstance(refused, Refused) and refused.reason == "source_not_allowed"
    assert intake.check("jobs", "tick", text, "timer:jobs") == 1


def test_handled_outcomes_kept_as_parts_read_back_as_the_records_callbacks_get() -> None:
    rt, _guest = make_runtime()
    rt.start()
    early = job(rt, "ok")  # no callback yet: kept as its parts
    assert isinstance(early, Accepted) and rt.wait_idle(10)
    seen: list[dict[str, Any]] = []
    rt.on_outcome(seen.append)
    late = job(rt, "ok")  # made into its record for the callback
    assert isinstance(late, Accepted) and rt.wait_idle(10)
    rt.stop()
    records = {o["event_id"]: o for o in rt.outcomes() if o["outcome"] == "handled"}
    assert records[late.event_id] == seen[0]
    lazy, eager = records[early.event_id], records[late.event_id]
    assert list(lazy) == list(eager)  # the same keys, in the same order
    for record, event_id in ((lazy, early.event_id), (eager, late.event_id)):
        (result,) = record["command_results"]
        assert result == {
            "command_id": f"c-{event_id}",
            "kind": "emit",
            "result": "executed",
            "detail": "emitted on done",
            "event_id": event_id,
            "at_ms": record["at_ms"],  # one time per output: its results and its outcome
        }
        assert record["attempts"] == 1 and record["error"] is None and record["data"] is None
    doc = rt.status()
    assert doc["commands"]["by_result"]["executed"] == 2
    assert [r["event_id"] for r in doc["commands"]["recent"]] == [early.event_id, late.event_id]
