"""The observer example of docs/runtime.md ("Watching a runtime live"), run as
written against the real counter-service component: what it prints is what the
document says it prints. Plus the observer rules the example relies on: an
observer's exception does not stop dispatch, and connection changes reported by a
source reach it."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

from runtime_support import Runtimes, runtime_host, runtimes  # noqa: F401

from pdk.host.codec import Case
from pdk.host.runtime import RuntimeOptions, ServiceRuntime
from pdk.host.runtime.observer import RuntimeObserver

DOC = Path(__file__).resolve().parents[2] / "docs" / "runtime.md"
MARKER = "<!-- example: observer (run by tests/e2e/test_runtime_observer.py) -->"


def example() -> tuple[str, str]:
    """The example's code and the output the document shows for it."""
    text = DOC.read_text(encoding="utf-8")
    after = text[text.index(MARKER) + len(MARKER) :]
    code, output = re.findall(r"```[a-z]*\n(.*?)```", after, re.S)[:2]
    return code, output


def test_the_documented_observer_example_prints_what_the_document_says(runtimes: Runtimes) -> None:  # noqa: F811
    code, expected = example()
    plugin = runtimes.load("counter-service", dev_grants=True)
    out = io.StringIO()
    namespace: dict[str, Any] = {"plugin": plugin, "__name__": "docs_example"}
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"{DOC}:observer-example", "exec"), namespace)  # noqa: S102 - the document's own example
    assert out.getvalue() == expected, out.getvalue()
    rt = namespace["rt"]
    assert rt.status()["lifecycle"]["state"] == "stopped"


class Broken(RuntimeObserver):
    def __init__(self) -> None:
        self.connections: list[dict[str, Any]] = []

    def outcome(self, record: dict[str, Any]) -> None:
        raise RuntimeError("an observer's bug")

    def lifecycle_changed(self, state: str, last_error: dict[str, Any] | None) -> None:
        raise RuntimeError("an observer's bug")

    def connection_changed(self, connection: dict[str, Any]) -> None:
        self.connections.append(connection)


def test_an_observers_exception_does_not_stop_dispatch_and_connections_are_heard(runtimes: Runtimes) -> None:  # noqa: F811
    plugin = runtimes.load("counter-service", dev_grants=True)
    rt = ServiceRuntime(plugin, {"greeting": "yo"}, RuntimeOptions())
    broken = Broken()
    rt.observe(broken)
    assert rt.start()["lifecycle"]["state"] == "running"
    assert all(rt.submit("inbox", "message", Case("text", t)).accepted for t in ("a", "b"))
    assert rt.wait_idle(60)
    rt.notify_connection({"connection": "feed", "state": "open", "url": "ws://127.0.0.1:1/", "last_error": None})
    doc = rt.stop()
    assert doc["counters"]["handled"] == 2 and doc["lifecycle"]["state"] == "stopped"
    assert broken.connections == [{"connection": "feed", "state": "open", "url": "ws://127.0.0.1:1/", "last_error": None}]
