"""The PDK never traps (issue 11, family 9): in a real component, an exception whose
`__str__`/`__repr__` raise, details whose repr or JSON encoding raise, or a message
with a lone surrogate come back as typed errors, and the instance keeps its state
(no recycle, the call counter goes on)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest

from pdk.errors import ErrorCode
from pdk.host import Host, LoadedPlugin

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hostile_dir(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("hostile")


@pytest.fixture
def hostile(host: Host, hostile_dir: Path) -> LoadedPlugin:
    return host.load(hostile_dir, dev_grants=True)


@pytest.mark.parametrize(
    ("kind", "code", "message"),
    [
        ("str", ErrorCode.FAILED, "_Unshowable: (the message cannot be shown: formatting it raised)"),
        ("details", ErrorCode.FAILED, "details cannot be shown"),
        ("encoding", ErrorCode.FAILED, "details cannot be encoded"),
        ("surrogate", ErrorCode.FAILED, "half a character: \ufffd"),
    ],
)
def test_an_unshowable_exception_is_a_typed_error_and_the_state_survives(hostile: LoadedPlugin, kind: str, code: ErrorCode, message: str) -> None:
    assert hostile.call_tool("count").content == 1
    result = hostile.call_tool("unshowable", {"kind": kind})
    assert result.error is not None, result
    assert result.error.code is code
    assert result.error.message == message
    assert "instance_recycled" not in json.dumps(result.error.details)
    # Same instance, same state: nothing trapped.
    assert hostile.call_tool("count").content == 2
    assert hostile.status()["instance"]["recycles"] == 0


def test_many_unshowable_exceptions_in_a_row_never_recycle(hostile: LoadedPlugin) -> None:
    for round in range(1, 4):
        for kind in ("str", "details", "encoding", "surrogate"):
            assert hostile.call_tool("unshowable", {"kind": kind}).error is not None
        assert hostile.call_tool("count").content == round
    assert hostile.status()["instance"] == {"instantiations": 1, "recycles": 0, "calls": 15}
