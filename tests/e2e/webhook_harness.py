"""Helpers for attacking the webhook listener over real loopback sockets: a fake
runtime (submit target), raw exchanges, and a slowloris that holds many connections
open by sending one header line every few seconds."""

from __future__ import annotations

import http.client
import json
import selectors
import socket
import struct
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pdk.host.codec import Case
from pdk.host.runtime import Accepted
from pdk.package.manifest import Manifest, parse_manifest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 10.0  # every legitimate exchange must end within this (a generous bound)


def manifest(name: str) -> Manifest:
    return parse_manifest(tomllib.loads((ROOT / "examples" / name / "plugin.toml").read_text()))


@dataclass
class FakeRuntime:
    """What the listener needs of a runtime; every accepted event is kept."""

    manifest: Manifest
    submitted: list[dict[str, Any]] = field(default_factory=list)
    sources: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def submit(self, ingress: str, kind: str, payload: Case | None = None, *, source: str = "manual", correlation_id: str | None = None) -> Any:
        with self._lock:
            self.submitted.append({"ingress": ingress, "kind": kind, "payload": payload, "source": source, "correlation_id": correlation_id})
            return Accepted(f"ev-{len(self.submitted)}")

    def has_pending(self, ingress: str, kind: str) -> bool:
        return False

    def source(self, name: str) -> dict[str, Any]:
        entry = self.sources[name]
        return entry() if callable(entry) else entry  # type: ignore[no-any-return]


def exchange(port: int, data: bytes, *, half_close: bool = True) -> bytes:
    """Send `data` on a new connection and read until the listener closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:  # the listener may answer and close before reading everything
            pass
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)


def status_of(answer: bytes) -> int | None:
    """The status code of the first response in `answer`, None for no answer."""
    if not answer.startswith(b"HTTP/1.1 "):
        return None
    return int(answer[9:12])


def statuses_of(answer: bytes) -> list[int]:
    """Every final status in a stream of pipelined responses (each framed by its
    Content-Length)."""
    statuses, pos = [], 0
    while answer.startswith(b"HTTP/1.1 ", pos):
        end = answer.index(b"\r\n\r\n", pos) + 4
        head = answer[pos:end].decode("latin-1").lower()
        status = int(head[9:12])
        length = next((int(line.split(":", 1)[1]) for line in head.split("\r\n") if line.startswith("content-length:")), 0)
        if status != 100:
            statuses.append(status)
        pos = end + length
    assert pos == len(answer), f"trailing bytes after the responses: {answer[pos:pos + 64]!r}"
    return statuses


def post(port: int, path: str, body: bytes, content_type: str = "text/plain") -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else None
    finally:
        conn.close()


class Slowloris:
    """`sockets` connections, each sending a request line and then one more header
    line every `interval_s`, never ending its head. Like the classic tool, every round
    reopens the connections the listener closed. Also usable as an idle flood
    (`first=b""`, nothing sent) or a slow body (`first` is a whole head with a
    Content-Length, then one body byte per round)."""

    def __init__(self, port: int, sockets: int, interval_s: float, *, first: bytes = b"POST /inbox HTTP/1.1\r\nHost: t\r\n", line: bytes = b"X-Slow: 1\r\n") -> None:
        self.port = port
        self.sockets = sockets
        self.interval_s = interval_s
        self.first = first
        self.line = line
        self.rounds = 0
        self.connects = 0
        self.answers: list[int | None] = []  # what the listener said to a connection it closed
        self._stop = threading.Event()
        self._open: dict[socket.socket, bytes] = {}
        self._sel = selectors.DefaultSelector()
        self._thread = threading.Thread(target=self._run, name="slowloris", daemon=True)

    def __enter__(self) -> Slowloris:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        for sock in list(self._open):
            # Reset, not close: a half-sent head that ends would be a (counted) 400.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._drop(sock, record=False)

    def wait_rounds(self, n: int) -> None:
        deadline = time.monotonic() + 60
        while self.rounds < n:
            assert time.monotonic() < deadline, "the slowloris did not run"
            time.sleep(0.05)

    def _connect(self) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            if self.first:
                sock.sendall(self.first)
            sock.setblocking(False)
        except OSError:
            return
        self.connects += 1
        self._open[sock] = b""
        self._sel.register(sock, selectors.EVENT_READ)

    def _drop(self, sock: socket.socket, *, record: bool = True) -> None:
        if record:
            self.answers.append(status_of(self._open.get(sock, b"")))
        self._open.pop(sock, None)
        try:
            self._sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()

    def _run(self) -> None:
        next_round = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_round:
                for _ in range(self.sockets - len(self._open)):
                    self._connect()
                for sock in list(self._open):
                    try:
                        sock.send(self.line)
                    except BlockingIOError:
                        pass
                    except OSError:
                        self._drop(sock)
                self.rounds += 1
                next_round = now + self.interval_s
            for key, _ in self._sel.select(timeout=0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    self._open[sock] = self._open.get(sock, b"") + data
                else:
                    self._drop(sock)
