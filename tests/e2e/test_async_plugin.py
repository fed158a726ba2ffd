"""`async def` tools, lifecycle hooks and event handlers in a real component: the
PDK drives their coroutines inside the guest (there is no event loop there), and a
coroutine that needs one is a typed `unsupported` error naming what it awaited."""

from __future__ import annotations

import pytest

from runtime_support import IDLE_TIMEOUT_S, Runtimes, invariant, job, runtime_host, runtimes  # noqa: F401

pytestmark = pytest.mark.slow


def test_async_tool_start_status_and_handler_run_in_the_component(runtimes: Runtimes) -> None:
    rt = runtimes.make("async-plugin", {"prefix": "ok"})
    doc = rt.start()
    assert doc["lifecycle"]["state"] == "running"
    for text in ("a", "bc"):
        assert job(rt, text).__class__.__name__ == "Accepted"
    assert rt.wait_idle(IDLE_TIMEOUT_S)
    assert [e["data"] for e in rt.emitted("done")] == [{"text": "ok: A", "handled": 1}, {"text": "ok: BC", "handled": 2}]
    doc = invariant(rt)
    assert doc["counters"]["dead_lettered"] == 0
    assert doc["plugin_status"]["data"] == {"handled": 2}
    result = rt.plugin.call_tool("shout", {"text": "hi", "times": 2})
    assert result.error is None, result.error
    assert result.content == {"text": "HI HI"}


def test_an_async_tool_needing_an_event_loop_is_a_typed_error(runtimes: Runtimes) -> None:
    rt = runtimes.make("async-plugin")
    assert rt.start()["lifecycle"]["state"] == "running"
    result = rt.plugin.call_tool("nap", {"seconds": 0.01})
    assert result.error is not None
    assert result.error.code.value == "unsupported"
    assert "tool 'nap' is async and needs an event loop in sleep()" in result.error.message
    # The instance was not poisoned: the next call is served.
    assert rt.plugin.call_tool("shout", {"text": "x"}).content == {"text": "X"}
