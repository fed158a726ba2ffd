"""One shape and one wording for validation errors: the host's schema check (before any
guest code runs) and the guest's decoder answer the same bad input with the same
`(path, message)` list, every error listed up to `VALIDATION_ERRORS_MAX`."""

import enum
import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Optional

import pytest

from pdk._decode import DecodeError, decode_arguments
from pdk._schema import input_schema_for
from pdk._validation import path_of, validation_details, validation_message
from pdk.errors import ErrorCode
from pdk.host.schema_check import schema_problems, schema_validator
from pdk.host.tools import validate_input
from pdk.limits import VALIDATION_ERRORS_MAX


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclass
class Item:
    name: str
    qty: int = 1
    tags: list[str] = field(default_factory=list)


def tool(
    text: Annotated[str, "The text"],
    items: list[Item],
    mode: Literal["a", "b"] = "a",
    color: Optional[Color] = None,
    note: Optional[str] = None,
    scale: float = 1.0,
    flags: Optional[list[bool]] = None,
) -> None: ...


BAD_INPUTS: list[Any] = [
    [1, 2],
    {},
    {"text": 5, "items": []},
    {"text": "x", "items": [], "extra": 1},
    {"text": "x", "items": [], "extra": 1, "other": 2},
    {"text": "x", "items": [{"name": 3}]},
    {"text": "x", "items": [{"qty": 2}]},
    {"text": "x", "items": [{"name": "a", "qty": "2", "tags": [1, "b", None]}]},
    {"text": "x", "items": [{"name": "a", "nmae": "b"}]},
    {"text": "x", "items": [], "mode": "c"},
    {"text": "x", "items": [], "color": "blue"},
    {"text": "x", "items": [], "note": 3},
    {"text": "x", "items": [], "scale": "big"},
    {"text": "x", "items": [], "flags": [True, 1]},
    {"text": "x", "items": [], "flags": "yes"},
    {"text": "x", "items": "none"},
    {"text": "x", "items": [{"name": 1}, {"name": 2}, {"name": 3}]},
]


def guest_answer(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(DecodeError) as info:
        decode_arguments(tool, data)
    return info.value.errors


def host_answer(data: Any) -> list[tuple[str, str]]:
    problems = schema_problems(schema_validator(input_schema_for(tool)), data)
    assert problems is not None
    return problems.items


@pytest.mark.parametrize("data", BAD_INPUTS, ids=lambda d: json.dumps(d)[:40])
def test_host_and_guest_give_the_same_errors(data: Any) -> None:
    assert sorted(host_answer(data)) == sorted(guest_answer(data))


def test_guest_wording_examples() -> None:
    assert host_answer({"text": 5, "items": []}) == [("$.text", "expected string, got number")]
    assert host_answer({"text": "x", "items": [], "note": 3}) == [("$.note", "expected string or null, got number")]
    assert host_answer({"text": "x", "items": [], "mode": "c"}) == [("$.mode", 'expected one of "a", "b", got "c"')]
    assert host_answer({"text": "x", "items": [{"qty": 2}]}) == [("$.items[0]", 'missing required property "name"')]
    assert host_answer({"text": "x", "items": [], "extra": 1}) == [("$", 'unexpected property "extra"')]


def test_more_errors_than_listed_are_counted_alike() -> None:
    data = {"items": [{"name": i} for i in range(30)]}
    with pytest.raises(DecodeError) as info:
        decode_arguments(tool, data)
    problems = schema_problems(schema_validator(input_schema_for(tool)), data)
    assert problems is not None
    assert len(problems.items) == len(info.value.errors) == VALIDATION_ERRORS_MAX
    assert problems.total == info.value.total == 31


def test_every_error_is_listed_up_to_the_bound() -> None:
    data = {"text": "x", "items": [{"name": i} for i in range(30)]}
    validator = schema_validator(input_schema_for(tool))
    problems = schema_problems(validator, data)
    assert problems is not None
    assert len(problems.items) == VALIDATION_ERRORS_MAX
    assert problems.total == 30
    assert problems.items[0] == ("$.items[0].name", "expected string, got number")
    assert problems.items[-1] == (f"$.items[{VALIDATION_ERRORS_MAX - 1}].name", "expected string, got number")


def test_tool_input_error_document_has_the_one_shape() -> None:
    validator = schema_validator(input_schema_for(tool))
    _, result = validate_input("t", "c1", validator, json.dumps({"text": 1, "items": [{"name": 2}]}))
    assert result is not None and result.error is not None
    assert result.error.code is ErrorCode.INVALID_INPUT
    assert result.error.message == "$.text: expected string, got number (and 1 more)"
    assert result.error.details == {
        "errors": [
            {"path": "$.text", "message": "expected string, got number"},
            {"path": "$.items[0].name", "message": "expected string, got number"},
        ]
    }
    # The guest's decoder would have answered the same document.
    with pytest.raises(DecodeError) as info:
        decode_arguments(tool, {"text": 1, "items": [{"name": 2}]})
    assert validation_message(info.value.errors, info.value.total) == result.error.message
    assert validation_details(info.value.errors) == result.error.details


def test_valid_input_has_no_problems() -> None:
    validator = schema_validator(input_schema_for(tool))
    assert schema_problems(validator, {"text": "x", "items": [{"name": "a"}]}) is None


def test_keywords_without_decoder_words_keep_a_bounded_message() -> None:
    validator = schema_validator({"type": "object", "properties": {"n": {"type": "integer", "minimum": 3}, "s": {"type": "string", "maxLength": 2}}})
    problems = schema_problems(validator, {"n": 1, "s": "abcdef"})
    assert problems is not None
    assert problems.items == [("$.n", "expected a number >= 3, got 1"), ("$.s", "expected at most 2 characters, got 6")]
    huge = schema_validator({"not": {"type": "string"}})
    problems = schema_problems(huge, "x" * 100_000)
    assert problems is not None and len(problems.items[0][1]) <= 513


def test_paths_quote_keys_that_are_not_identifiers() -> None:
    assert path_of(["items", 2, "name"]) == "$.items[2].name"
    assert path_of(["a b", 0]) == '$["a b"][0]'
    assert path_of([]) == "$"


INGRESS_MANIFEST = """
schema_version = 2
id = "p"
name = "P"
version = "0.1.0"
description = "payload schema wording"
surfaces = ["services", "ingresses"]
host_apis = ["log"]

[runtime]
kind = "wasm-component"
world = "service"
component = "build/p.wasm"

[[services]]
name = "p"

[[ingresses]]
name = "orders"
sources = ["manual"]
event_kinds = ["order"]
payload_schema = { type = "object", properties = { id = { type = "integer" }, note = { type = "string" } }, required = ["id"], additionalProperties = false }
"""


def test_ingress_payloads_get_the_same_wording() -> None:
    from pdk.host.codec import Case
    from pdk.host.runtime.intake import Intake
    from pdk.host.runtime.model import Refused
    from pdk.package.manifest import parse_manifest_text

    intake = Intake(parse_manifest_text(INGRESS_MANIFEST))
    refused = intake.check("orders", "order", Case("json", json.dumps({"id": "7", "note": 3, "x": 1})), "manual")
    assert isinstance(refused, Refused) and refused.reason == "invalid_payload"
    assert refused.message == (
        "the payload does not match the schema of ingress 'orders': "
        '$: unexpected property "x" (and 2 more)'
    )
    assert intake.check("orders", "order", Case("json", json.dumps({"id": 7})), "manual") == len(json.dumps({"id": 7}))
