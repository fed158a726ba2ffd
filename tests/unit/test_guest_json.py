"""`pdk.host.guest_json`: guest JSON is bounded in depth and size and strict about numbers."""

from __future__ import annotations

import json

import pytest

from pdk.host.guest_json import GuestJsonError, check_depth, dumps_strict, loads_guest
from pdk.limits import GUEST_JSON_DEPTH_MAX


@pytest.mark.parametrize("depth", [GUEST_JSON_DEPTH_MAX + 1, 2_000, 20_000, 200_000])
@pytest.mark.parametrize("open_, close", [("[", "]"), ('{"a":', "}")])
def test_deep_nesting_is_a_typed_error(depth: int, open_: str, close: str) -> None:
    text = open_ * depth + "1" + close * depth
    with pytest.raises(GuestJsonError, match="nested deeper"):
        loads_guest(text)


def test_unbalanced_deep_prefix_is_refused_before_parsing() -> None:
    with pytest.raises(GuestJsonError, match="nested deeper"):
        loads_guest("[" * 1_000_000)


def test_nesting_at_the_bound_is_fine() -> None:
    text = "[" * GUEST_JSON_DEPTH_MAX + "]" * GUEST_JSON_DEPTH_MAX
    assert isinstance(loads_guest(text), list)


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"s": "[" * 10_000 + '\\"{' * 500})
    assert loads_guest(text)["s"].startswith("[[[")
    check_depth(text)


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"x": -Infinity}', "1e999", "[-1e400]", '{"a": [1, 2e308]}'])
def test_non_finite_numbers_are_refused(text: str) -> None:
    with pytest.raises(GuestJsonError):
        loads_guest(text)


@pytest.mark.parametrize("text", ["", "{", "[1,]", "{'a': 1}", "\x00", '"\\ud800"x'])
def test_malformed_json_is_a_typed_error(text: str) -> None:
    with pytest.raises(GuestJsonError):
        loads_guest(text)


def test_bytes_must_be_utf8() -> None:
    with pytest.raises(GuestJsonError, match="UTF-8"):
        loads_guest(b'"\xff"')
    assert loads_guest(b'{"a": "\xc3\xa9"}') == {"a": "é"}


def test_size_bound() -> None:
    with pytest.raises(GuestJsonError, match="larger than"):
        loads_guest(json.dumps("x" * 2000), max_bytes=1000)
    assert loads_guest(json.dumps("é" * 100), max_bytes=1000) == "é" * 100


def test_ordinary_values_round_trip() -> None:
    value = {"a": [1, 2.5, -3e10, True, None, "é\n"], "b": {"c": []}}
    assert loads_guest(json.dumps(value)) == value


def test_dumps_strict_refuses_nan() -> None:
    with pytest.raises(GuestJsonError):
        dumps_strict({"x": float("nan")})
    assert dumps_strict({"x": 1.5}) == '{"x": 1.5}'
