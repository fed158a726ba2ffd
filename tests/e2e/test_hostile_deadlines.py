"""Family 2 of the hostile-plugin suite: deadlines cover time the guest spends blocked.

The epoch interrupt only fires while wasm runs; a guest blocked in a WASI call
(`time.sleep` -> `wasi:io/poll`) holds its thread until the call returns. The host runs
guest calls on a per-instance thread and stops waiting at the deadline (plus a grace),
abandons the instance and answers `timeout`. Bound asserted: the issue's deadline + 0.5 s
(elapsed time is measured from outside; the guest sleeps far longer than the bound)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pdk.host import Host, InstanceLimits
from pdk.limits import ABANDONED_CALLS_MAX

pytestmark = pytest.mark.slow

DEADLINE_S = 1.0
BOUND_S = DEADLINE_S + 0.5
NAP_S = 6.0  # far past the bound: an uninterrupted sleep would be obvious


@pytest.fixture(scope="module")
def sleepy_host() -> Iterator[Host]:
    with Host(limits=InstanceLimits(deadline_s=DEADLINE_S), stderr=io.StringIO()) as host:
        yield host


@pytest.fixture
def sleeper(sleepy_host: Host, built_plugin: Callable[[str], Path]):  # type: ignore[no-untyped-def]
    return sleepy_host.load(built_plugin("sleeper"), dev_grants=True)


def _timed(fn: Callable[[], object]) -> tuple[object, float]:
    started = time.monotonic()
    result = fn()
    return result, time.monotonic() - started


@pytest.mark.parametrize("nap", [NAP_S, 1.2, 60.0])
def test_a_sleeping_tool_is_answered_by_its_deadline(sleeper, nap: float) -> None:  # type: ignore[no-untyped-def]
    result, elapsed = _timed(lambda: sleeper.call_tool("nap", {"seconds": nap}))
    assert not result.ok
    assert result.error.code.value == "timeout"
    assert elapsed < BOUND_S


def test_the_next_call_is_served_by_a_fresh_instance(sleeper) -> None:  # type: ignore[no-untyped-def]
    assert not sleeper.call_tool("nap", {"seconds": NAP_S}).ok
    result = sleeper.call_tool("nap", {"seconds": 0.0})
    assert result.ok and result.content == {"slept": 0.0}
    assert sleeper.instance.recycles >= 1


def test_a_short_sleep_within_the_deadline_completes(sleeper) -> None:  # type: ignore[no-untyped-def]
    result = sleeper.call_tool("nap", {"seconds": 0.2})
    assert result.ok and result.content == {"slept": 0.2}


def test_blocked_calls_are_bounded(sleeper) -> None:  # type: ignore[no-untyped-def]
    # Each abandoned call keeps a thread (and its store) until the sleep ends. Past the
    # cap the plugin refuses to instantiate again instead of piling up threads.
    for _ in range(ABANDONED_CALLS_MAX):
        assert sleeper.call_tool("nap", {"seconds": 30.0}).error.code.value == "timeout"
    assert sleeper.instance.blocked_calls == ABANDONED_CALLS_MAX
    result, elapsed = _timed(lambda: sleeper.call_tool("nap", {"seconds": 0.0}))
    assert not result.ok
    assert "still blocked" in result.error.message
    assert elapsed < BOUND_S
