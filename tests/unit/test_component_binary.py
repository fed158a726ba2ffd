"""Reading a component's imports and exports from its binary (no compile): the
outline of hand-encoded components, and typed, bounded refusals of everything that
is not a well-framed component — never another exception, never a hang.

(The same reading on real componentize-py components, compared with wasmtime's own
`Component.type`, is in tests/e2e/test_compile_tiers.py.)"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdk.host.component_binary import SORT_FUNC, SORT_INSTANCE, SORT_TYPE, ComponentFormatError, read_outline
from pdk.host.world import binary_shape, check_world

PREAMBLE = b"\x00asm\x0d\x00\x01\x00"


def leb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def name(text: str) -> bytes:
    raw = text.encode()
    return b"\x00" + leb(len(raw)) + raw


def string(text: str) -> bytes:
    raw = text.encode()
    return leb(len(raw)) + raw


def section(sid: int, body: bytes) -> bytes:
    return bytes([sid]) + leb(len(body)) + body


def vec(items: list[bytes]) -> bytes:
    return leb(len(items)) + b"".join(items)


# An instance-typed import (type index 0), a nested component that exports a function
# `call`, an instance made by instantiating it, and the export of that instance — the
# shape componentize-py gives an exported interface.
NESTED = PREAMBLE + section(11, vec([name("call") + b"\x01" + leb(0) + b"\x00"]))
TOOL_COMPONENT = (
    PREAMBLE
    + section(10, vec([name("yoi:host/log@2.0.0") + b"\x05" + leb(0)]))
    + section(1, b"\x00asm\x01\x00\x00\x00" + b"\xff" * 64)  # a core module, skipped by length
    + section(4, NESTED)
    + section(5, vec([b"\x00" + leb(0) + vec([string("import-func-log") + b"\x05" + leb(0)])]))
    + section(11, vec([name("yoi:plugin/tools@2.0.0") + b"\x05" + leb(1) + b"\x00"]))
)


def test_the_outline_of_a_hand_encoded_tool_component() -> None:
    outline = read_outline(TOOL_COMPONENT)
    assert outline.imports == [("yoi:host/log@2.0.0", SORT_INSTANCE)]
    assert outline.exports == [("yoi:plugin/tools@2.0.0", SORT_INSTANCE, [("call", SORT_FUNC)])]
    shape = binary_shape(TOOL_COMPONENT)
    assert shape.imports == ("yoi:host/log@2.0.0",)
    assert shape.exports == {"yoi:plugin/tools@2.0.0": frozenset({"call"})}
    assert check_world(shape, "tool") == []


def test_inline_exports_name_functions_and_types() -> None:
    inline = vec([b"\x01" + vec([name("handle") + b"\x01" + leb(0), name("event") + b"\x03" + leb(0)])])
    data = PREAMBLE + section(5, inline) + section(11, vec([name("yoi:plugin/events@2.0.0") + b"\x05" + leb(0) + b"\x00"]))
    outline = read_outline(data)
    assert outline.exports == [("yoi:plugin/events@2.0.0", SORT_INSTANCE, [("handle", SORT_FUNC), ("event", SORT_TYPE)])]
    assert binary_shape(data).exports == {"yoi:plugin/events@2.0.0": frozenset({"handle"})}


def test_an_export_of_an_imported_instance_lists_no_functions_and_fails_the_world() -> None:
    # Its functions cannot be known without reading types: the check must not pass it.
    data = (
        PREAMBLE
        + section(10, vec([name("yoi:plugin/tools@2.0.0") + b"\x05" + leb(0)]))
        + section(11, vec([name("yoi:plugin/tools@2.0.0") + b"\x05" + leb(0) + b"\x00"]))
    )
    shape = binary_shape(data)
    assert shape.exports == {"yoi:plugin/tools@2.0.0": frozenset()}
    assert [p.message for p in check_world(shape, "tool")] == [
        "yoi:plugin/tools@2.0.0 lacks functions: call",
        "import 'yoi:plugin/tools@2.0.0' is not an allowed host or WASI interface",
    ]


def test_a_versioned_name_is_read() -> None:
    data = PREAMBLE + section(10, vec([b"\x01" + string("wasi:io/poll@0.2.9") + string("0.2.9") + b"\x05" + leb(0)]))
    assert read_outline(data).imports == [("wasi:io/poll@0.2.9", SORT_INSTANCE)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not WebAssembly (shorter than the 8-byte preamble)"),
        (b"\x00asm\x01\x00\x00\x00not really", "malformed component at byte 8: a core module, not a component"),
        (b"GIF89a\x00\x00\x00\x00", "malformed component at byte 4: not WebAssembly (bad magic)"),
        (b"\x00asm\x0c\x00\x01\x00", "malformed component at byte 8: unsupported component version 0x0c00"),
        (PREAMBLE + b"\x0b\x05\x01", "malformed component at byte 10: length runs past the end"),
        (PREAMBLE + b"\x0b\xff\xff\xff\xff\xff\xff", "malformed component at byte 14: integer too long"),
        (PREAMBLE + section(11, leb(2**31)), "malformed component at byte 15: count larger than the section"),
        (PREAMBLE + section(11, vec([name("x") + b"\x05" + leb(7) + b"\x00"])), "malformed component at byte 17: instance index 7 out of range"),
        (PREAMBLE + section(42, b""), "malformed component at byte 10: unknown section id 42"),
        (PREAMBLE + section(11, vec([]) + b"\x00"), "malformed component at byte 11: section has trailing bytes"),
    ],
)
def test_what_is_not_a_component_is_refused_with_a_bounded_message(data: bytes, message: str) -> None:
    with pytest.raises(ComponentFormatError) as info:
        read_outline(data)
    assert str(info.value) == message


def test_nesting_is_bounded() -> None:
    data = PREAMBLE
    for _ in range(20):
        data = PREAMBLE + section(4, data)
    with pytest.raises(ComponentFormatError, match="components nested too deeply"):
        read_outline(data)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_damaged_components_raise_only_the_typed_error(data: st.DataObject) -> None:
    raw = bytearray(TOOL_COMPONENT)
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    try:
        read_outline(bytes(raw[:cut]))
    except ComponentFormatError as exc:
        assert len(str(exc)) < 200
