"""`Wire`: the send side of one open connection, usable from any thread.

A send normally runs on the executor's thread (the runtime's dispatcher) without a
hop to the event loop: the frame is built here (the library's own serializer, masked
as a client must) and written straight to the non-blocking socket, under a lock that
every write of the event loop's transport also takes. Waking the loop thread, an
`asyncio.Queue` hand-over and waking the executor again cost more than the guest call
itself (bench/websocket_bench.py), so this is the hot path of an echo.

It is taken only when the write cannot reorder or tear anything, checked under the
lock: a plain TCP transport (TLS is the loop's to encrypt), the protocol open, the
transport's write buffer empty, nothing closing, and no earlier message still on the
loop's path (`Connection.offer`). Otherwise `send` returns None and the caller takes
the loop's path, which keeps the bounded queue, the flow control and the typed
failures. When the socket takes only part of a frame, the rest is kept here and
written by the loop before any other byte (the wrapped `transport.write` writes it
first), and the sender waits until then, as for any send.

The event loop's own writes (pongs, pings, close frames) go through the transport's
`write`, wrapped here to take the same lock; the transport's buffered flush runs only
while its buffer is non-empty, when no direct write happens.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
import struct
import threading
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection
from websockets.frames import Opcode
from websockets.protocol import State

try:  # the library's C masking, as its own serializer uses (a pure-Python fallback otherwise)
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

# A send that wrote part of its frame: True once the loop wrote the rest, False when
# the connection closed first.
RestWritten = concurrent.futures.Future[bool]

# Masking keys are drawn from the OS's random source (as the library's serializer
# does, RFC 6455 section 5.3), this many per read and per thread: one `os.urandom`
# call (a syscall that also gives the GIL away) per 1024 frames, not one per frame.
MASK_KEYS_PER_READ = 1024
_FIN_TEXT, _FIN_BINARY = 0x80 | Opcode.TEXT, 0x80 | Opcode.BINARY


class _MaskKeys(threading.local):
    def __init__(self) -> None:
        self.pool = b""
        self.at = 0

    def take(self) -> bytes:
        at = self.at
        if at >= len(self.pool):
            self.pool, at = os.urandom(4 * MASK_KEYS_PER_READ), 0
        self.at = at + 4
        return self.pool[at : at + 4]


_mask_keys = _MaskKeys()


def client_frame(payload: bytes, text: bool) -> bytes:
    """One whole (FIN) unfragmented text or binary frame, masked as a client's must be:
    the bytes the library's `Frame(...).serialize(mask=True)` makes without extensions
    (tests/unit/test_websocket_wire.py compares them)."""
    head1 = _FIN_TEXT if text else _FIN_BINARY
    length = len(payload)
    if length < 126:
        head = bytes((head1, 0x80 | length))
    elif length < 65536:
        head = struct.pack("!BBH", head1, 0xFE, length)
    else:
        head = struct.pack("!BBQ", head1, 0xFF, length)
    key = _mask_keys.take()
    return head + key + apply_mask(payload, key)


class SendGate:
    """Per connection (across reconnects): the lock of every write, and how many
    messages were offered to the loop's path and are not settled yet (sent, failed or
    skipped). A direct write waits its turn behind them: it happens only at zero."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loop_items = 0
        self.direct = 0  # messages written from the sender's thread, whole ...
        self.partial = 0  # ... or in part (the loop wrote the rest)

    def enter_loop_path(self) -> None:
        with self.lock:
            self.loop_items += 1

    def leave_loop_path(self) -> None:
        with self.lock:
            self.loop_items -= 1


class Wire:
    def __init__(self, ws: ClientConnection, gate: SendGate) -> None:
        self.ws = ws
        self.gate = gate
        lock = self.lock = gate.lock
        self.loop = asyncio.get_running_loop()
        transport: Any = ws.transport
        self.transport = transport
        sock = getattr(transport, "_sock", None)  # asyncio's selector transport (CPython)
        plain = transport.get_extra_info("sslcontext") is None and transport.get_extra_info("ssl_object") is None
        self._sock: socket.socket | None = sock if plain and isinstance(sock, socket.socket) else None
        self._closing = False
        self._rest: bytes | None = None  # the unwritten end of a frame, first in line
        self._rest_done: RestWritten | None = None
        self._write, close, abort = transport.write, transport.close, transport.abort

        def locked_write(data: Any) -> None:
            with lock:
                self._flush_rest_locked()
                self._write(data)

        def locked_close() -> None:
            with lock:
                self._flush_rest_locked()
                self._closing = True
                close()

        def locked_abort() -> None:
            with lock:
                self._closing = True
                self._drop_rest_locked()
                abort()

        # Instance attributes shadow the transport's methods for the library's calls.
        transport.write, transport.close, transport.abort = locked_write, locked_close, locked_abort

    @property
    def direct(self) -> bool:
        """Whether this connection can take a send without the loop at all."""
        return self._sock is not None

    def send(self, data: bytes, text: bool) -> Literal[True] | RestWritten | None:
        """Write one message (`data`: its bytes, UTF-8 for a text message) now, from
        any thread. True: the whole frame is in the socket. None: nothing was written;
        use the loop's path. A future: part of it was written, the loop writes the rest."""
        sock = self._sock
        if sock is None:
            return None
        payload = client_frame(data, text)
        with self.lock:
            if self.gate.loop_items or not self._ready_locked():
                return None
            try:
                sent = sock.send(payload)
            except OSError:  # full (BlockingIOError), or lost: the loop's path judges
                return None
            if sent == len(payload):
                self.gate.direct += 1
                return True
            if sent <= 0:
                return None
            self.gate.partial += 1
            done: RestWritten = concurrent.futures.Future()
            self._rest, self._rest_done = payload[sent:], done
        try:
            self.loop.call_soon_threadsafe(self._take_rest)
        except RuntimeError:  # the loop is gone: so is the connection
            with self.lock:
                self._drop_rest_locked()
        return done

    def _ready_locked(self) -> bool:
        return not (
            self._closing
            or self._rest is not None
            or self.ws.protocol.state is not State.OPEN
            or self.transport.is_closing()
            or self.transport.get_write_buffer_size()
        )

    def _take_rest(self) -> None:
        """(event loop thread)"""
        with self.lock:
            self._flush_rest_locked()

    def _flush_rest_locked(self) -> None:
        rest, done = self._rest, self._rest_done
        if rest is None:
            return
        self._rest = self._rest_done = None
        written = not self.transport.is_closing()
        if written:
            self._write(rest)
        if done is not None:
            done.set_result(written)

    def _drop_rest_locked(self) -> None:
        done = self._rest_done
        self._rest = self._rest_done = None
        if done is not None and not done.done():
            done.set_result(False)
