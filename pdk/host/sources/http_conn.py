"""The listener's connections: h11 over asyncio streams, every wait against a deadline.

h11 is the HTTP/1.1 parser (sans-IO: it never reads or blocks by itself); this module
feeds it bytes and holds the time and connection bounds around it:

* `ConnectionTable` caps the open connections. At the cap a new connection sheds the
  one that has waited longest in the cheapest phase (a head still arriving, then a body
  still arriving, then an idle connection, then an answer the client does not take) —
  never one whose request is being submitted, nor an idle one with bytes waiting to be
  read (in the kernel or the stream buffer: a request that has arrived and is about to
  be parsed). On Linux, TCP_DEFER_ACCEPT (see `http.py`) hands a connection to the
  listener only once it has sent data, so a fresh connection is such a one. Only when
  no connection may be shed does the newcomer get a fast 503. A slowloris therefore sheds itself, not a
  legitimate client, whose request arrives whole in one round trip — even when the
  attacker opens more than the cap at once right behind it.
* `Stream` reads one request head (idle timeout before its first byte, head timeout
  from its first byte to its end), its body (body timeout), and writes the answer
  (write timeout)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import h11

from .http_wire import HEAD_END_RE, HttpError, error_of, head_too_large

READ_CHUNK = 64 * 1024

IDLE, HEAD, BODY, BUSY, WRITE = "idle", "head", "body", "busy", "write"
# Which connection a newcomer sheds first; BUSY (a request being submitted) never.
_SHED_ORDER = {HEAD: 0, BODY: 1, IDLE: 2, WRITE: 3}

REASONS = {
    100: "Continue", 202: "Accepted", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
    408: "Request Timeout", 411: "Length Required", 413: "Content Too Large", 414: "URI Too Long",
    415: "Unsupported Media Type", 422: "Unprocessable Content", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 503: "Service Unavailable", 505: "HTTP Version Not Supported",
}


try:
    import fcntl
    import termios

    def _kernel_unread(sock: object) -> int:
        """Bytes received by the kernel and not yet read (FIONREAD); 0 if unknown."""
        fileno = getattr(sock, "fileno", None)
        try:
            fd = fileno() if callable(fileno) else -1
            if fd < 0:
                return 0
            return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"), "little", signed=True)
        except (OSError, ValueError):
            return 0

except ImportError:  # no FIONREAD here: only the stream buffer is looked at

    def _kernel_unread(sock: object) -> int:
        return 0


class CountingReader(asyncio.StreamReader):
    """A `StreamReader` that counts what the transport fed it (see `Connection.unread`)."""

    fed = 0

    def feed_data(self, data: bytes) -> None:  # type: ignore[override]  # the transport feeds bytes
        self.fed += len(data)
        super().feed_data(data)


@dataclass(eq=False)
class Connection:
    """One open connection: its phase and since when (loop time) it is in it."""

    writer: asyncio.StreamWriter
    reader: CountingReader | None = None
    phase: str = IDLE
    since: float = 0.0
    task: asyncio.Task[None] | None = None
    shed: bool = False
    consumed: int = 0  # bytes taken from `reader`

    def enter(self, phase: str) -> None:
        self.phase = phase
        self.since = asyncio.get_running_loop().time()

    def unread(self) -> bool:
        """True when bytes have arrived that the connection has not read yet."""
        if self.reader is not None and self.reader.fed > self.consumed:
            return True
        return _kernel_unread(self.writer.get_extra_info("socket")) > 0


class ConnectionTable:
    """The open connections, capped at `cap`. Used from the event loop thread only."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.open: set[Connection] = set()

    def admit(self, conn: Connection) -> tuple[bool, Connection | None]:
        """(admitted, the connection shed to make room)."""
        if len(self.open) < self.cap:
            self.open.add(conn)
            return True, None
        victim = self.victim()
        if victim is None:
            return False, None
        self.open.discard(victim)
        self.open.add(conn)
        return True, victim

    def victim(self) -> Connection | None:
        candidates = sorted((c for c in self.open if c.phase in _SHED_ORDER), key=lambda c: (_SHED_ORDER[c.phase], c.since))
        # An idle connection whose request has just arrived (not read yet) is never shed:
        # when only such are left, the newcomer is the one refused (it came after them).
        # Only idle ones: a slowloris always has a line just arrived.
        return next((c for c in candidates if c.phase != IDLE or not c.unread()), None)

    def release(self, conn: Connection) -> None:
        self.open.discard(conn)


class Stream:
    """h11 on one connection's streams."""

    def __init__(self, conn: Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head_max_bytes: int) -> None:
        self.conn = conn
        self.reader = reader
        self.writer = writer
        self.head_max_bytes = head_max_bytes
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=head_max_bytes)
        self.raw = bytearray()  # the current request head as received (bounded), for checks h11 leaves to us
        self.head_end: int | None = None  # where the head ends in `raw`, once seen

    @property
    def head_bytes(self) -> bytes:
        """The current request head as received, without its final blank line."""
        return bytes(self.raw if self.head_end is None else self.raw[: self.head_end])

    def _take(self, data: bytes) -> None:
        """Mirror the head's bytes (h11 bounds only a head that is still incomplete when
        it parses, so a whole oversized head arriving in one read is caught here)."""
        if self.head_end is not None:
            return
        if not self.raw:
            data = data.lstrip(b"\r\n")  # blank lines before the request line are tolerated
        start = max(0, len(self.raw) - 3)
        self.raw += data[: self.head_max_bytes + 4 - len(self.raw)]
        end = HEAD_END_RE.search(self.raw, start)
        if end is not None:
            self.head_end = end.start()
        if (self.head_end if self.head_end is not None else len(self.raw)) > self.head_max_bytes:
            raise head_too_large(bytes(self.raw), self.head_max_bytes)

    async def _read(self, deadline: float) -> bytes:
        async with asyncio.timeout_at(deadline):
            data = await self.reader.read(READ_CHUNK)
        self.conn.consumed += len(data)
        return data

    async def read_head(self, idle_timeout_s: float, head_timeout_s: float) -> h11.Request | None:
        """The next request head; None when the client closed or stayed idle before
        sending a byte. Raises `HttpError` (400, 408, 414, 431) for a head that is
        malformed, too large or too slow."""
        loop = asyncio.get_running_loop()
        pending = self.h11.trailing_data[0]  # a pipelined request already received
        self.raw, self.head_end = bytearray(), None
        self.conn.enter(HEAD if pending else IDLE)
        self._take(pending)
        deadline = loop.time() + (head_timeout_s if pending else idle_timeout_s)
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise error_of(exc, bytes(self.raw)) from None
            if isinstance(event, h11.Request):
                return event
            if isinstance(event, h11.ConnectionClosed):
                return None
            try:
                data = await self._read(deadline)
            except TimeoutError:
                if self.conn.phase == IDLE:
                    return None
                raise HttpError(408, "request_timeout", f"the request head did not arrive within {head_timeout_s:g} s") from None
            if data and self.conn.phase == IDLE:
                self.conn.enter(HEAD)
                deadline = loop.time() + head_timeout_s
            self._take(data)
            self.h11.receive_data(data)

    async def read_body(self, body_timeout_s: float, write_timeout_s: float) -> bytes | None:
        """The whole body (h11 frames it by its Content-Length, already checked against
        the bound); None when the client closed the connection before its end. Raises
        `HttpError(408)` when it does not arrive within `body_timeout_s`."""
        if self.h11.they_are_waiting_for_100_continue:
            await self.send([h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")], write_timeout_s)
        self.conn.enter(BODY)
        deadline = asyncio.get_running_loop().time() + body_timeout_s
        chunks: list[bytes] = []
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError:  # the stream ended inside the body
                return None
            if isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            elif isinstance(event, h11.ConnectionClosed):
                return None
            else:
                try:
                    data = await self._read(deadline)
                except TimeoutError:
                    raise HttpError(408, "request_timeout", f"the request body did not arrive within {body_timeout_s:g} s") from None
                self.h11.receive_data(data)

    async def respond(self, status: int, body: bytes, headers: dict[str, str], *, close: bool, write_timeout_s: float, wait: bool = True) -> bool:
        """Send one answer; True when the connection may serve another request.
        `wait=False` only queues the bytes (for an answer nobody waits for)."""
        fields = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers.items()]
        if close:
            fields.append(("Connection", "close"))
        reason = REASONS.get(status, "Status").encode()
        await self.send([h11.Response(status_code=status, headers=fields, reason=reason), h11.Data(data=body), h11.EndOfMessage()], write_timeout_s, wait=wait)
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
            return True
        return False

    async def send(self, events: list[h11.Event], write_timeout_s: float, *, wait: bool = True) -> None:
        data = b"".join(self.h11.send(event) or b"" for event in events)
        self.conn.enter(WRITE)
        self.writer.write(data)
        if not wait:
            return
        async with asyncio.timeout(write_timeout_s):
            await self.writer.drain()


async def close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, linger_s: float, linger_bytes: int) -> None:
    """Close after an answer without resetting it away: stop sending, then read (and
    drop) what the client still sends, at most `linger_bytes` for at most `linger_s`,
    so that unread request bytes do not turn the close into a reset that destroys the
    answer before the client read it."""
    try:
        if writer.can_write_eof():
            writer.write_eof()
        left = linger_bytes
        async with asyncio.timeout(linger_s):
            while left > 0:
                chunk = await reader.read(min(READ_CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
    except (OSError, TimeoutError, RuntimeError):
        pass
    finally:
        writer.close()
