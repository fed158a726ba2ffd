"""`client_frame` (pdk/host/websocket/wire.py), the frame a direct send writes: the
library's own serializer makes the same bytes for the same masking key, and its
parser reads back the message, for every length encoding (7-bit, 16-bit, 64-bit)."""

from __future__ import annotations

from collections.abc import Generator

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from pdk.host.websocket import wire
from pdk.host.websocket.wire import MASK_KEYS_PER_READ, client_frame

LENGTHS = [0, 1, 125, 126, 127, 65535, 65536, 70000]


def _parse(data: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser: Generator[None, None, Frame] = Frame.parse(reader.read_exact, mask=True)
    try:
        next(parser)
    except StopIteration as done:
        frame: Frame = done.value
        return frame
    raise AssertionError("the frame did not parse from the bytes alone")


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("text", [True, False])
def test_same_bytes_as_the_library(length: int, text: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = (b"a" if text else b"\x00\xff") * (length // (1 if text else 2) or 0)
    payload = payload[:length].ljust(length, b"b")
    key = b"\x01\x82\x43\xc4"
    monkeypatch.setattr(wire._mask_keys, "pool", key)
    monkeypatch.setattr(wire._mask_keys, "at", 0)
    ours = client_frame(payload, text)
    monkeypatch.setattr("secrets.token_bytes", lambda n: key)
    theirs = Frame(Opcode.TEXT if text else Opcode.BINARY, payload).serialize(mask=True)
    assert ours == theirs
    frame = _parse(ours)
    assert frame.fin and frame.opcode is (Opcode.TEXT if text else Opcode.BINARY) and frame.data == payload


def test_masking_keys_change_and_refill() -> None:
    """Each frame takes the next 4 random bytes; the pool is read again when used up."""
    keys = [client_frame(b"x", True)[2:6] for _ in range(MASK_KEYS_PER_READ + 3)]
    assert len(set(keys)) > MASK_KEYS_PER_READ  # 4 random bytes: a repeat is a 1-in-millions event
    assert all(len(key) == 4 for key in keys)
    assert all(_parse(client_frame(b"hello", True)).data == b"hello" for _ in range(3))
