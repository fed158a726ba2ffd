"""`loads_guest` answers a text that starts and ends with its value from the decoder's
scanner alone; everything else goes the full `decode` way. Both must give the same
value or the same refusal (tests/unit/test_guest_json.py has the refusals' words)."""

from __future__ import annotations

import json

import pytest

from pdk.host import guest_json
from pdk.host.guest_json import GuestJsonError, loads_guest
from pdk.limits import GUEST_JSON_DEPTH_MAX

TEXTS = [
    '{"count": 1}',
    "[1, 2.5, -3e2, true, false, null]",
    '"plain"',
    "0",
    "-0.0",
    '{"nested": {"a": [[], {}]}, "s": "\\u00e9\\n"}',
    '  {"lead": 1}',
    '{"trail": 1}  \n',
    " 7 ",
    '{"a": 1}{"b": 2}',
    '{"a": 1} x',
    "",
    "   ",
    "\ufeff{}",
    "[1, 2",
    '{"a" 1}',
    '"bad \x01 control"',
    "NaN",
    "[Infinity]",
    "[1e999]",
    " -Infinity",
    '{"a": 1} NaN',
    "tru",
    "[" * 40 + "]" * 40,
    "[" * 70 + "]" * 70,
]


def _full_decode(text: str) -> object:
    """What `loads_guest` gave before the scanner shortcut: the decoder's own `decode`."""
    try:
        if text.startswith("\ufeff"):
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return ("value", guest_json._DECODER.decode(text))
    except GuestJsonError as exc:
        return ("refused", str(exc))
    except json.JSONDecodeError as exc:
        return ("refused", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")


@pytest.mark.parametrize("text", TEXTS)
def test_the_shortcut_gives_what_decode_gives(text: str) -> None:
    try:
        got: object = ("value", loads_guest(text))
    except GuestJsonError as exc:
        got = ("refused", str(exc))
    if text.count("[") > GUEST_JSON_DEPTH_MAX:  # deeper than GUEST_JSON_DEPTH_MAX: refused before any parse
        assert got[0] == "refused" and "deeper" in str(got[1])
        return
    assert got == _full_decode(text)


def test_values_are_fresh_objects_per_call() -> None:
    first = loads_guest('{"a": [1]}')
    first["a"].append(2)
    assert loads_guest('{"a": [1]}') == {"a": [1]}
