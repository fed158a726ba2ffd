"""The terminal belongs to the user: plugin- and manifest-supplied text is shown with
its control characters escaped.

A tool summary, an error message, a dead letter's error or an unknown manifest key can
hold raw ESC/OSC sequences (colours, cursor moves, title changes, OSC 52 clipboard
writes) or bidirectional overrides that make a line read differently from what it
holds. `for_terminal` shows each such character as an escape (`\\x1b`, `\\u202e`),
keeping newlines and tabs where the output is multi-line. `TerminalStream` applies it
to everything written to a stream: the CLI wraps its human standard output in one, so
no print site can forget; JSON output is left exact (`json.dumps` escapes controls).

Standard library only, and cheap to import: the CLI loads it before anything else.
"""

from __future__ import annotations

import io
import re
from typing import TextIO

__all__ = ["TerminalStream", "for_terminal"]

# C0 controls (but tab and newline), DEL, C1 controls (U+0080-U+009F: 8-bit CSI/OSC),
# bidirectional marks/overrides/isolates, the BOM, lone surrogates (not printable at all).
_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff"
_MULTI_LINE_RE = re.compile(f"[{_UNSAFE}]")
_ONE_LINE_RE = re.compile(f"[{_UNSAFE}\t\n]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def for_terminal(text: str, *, multiline: bool = True) -> str:
    """`text` with every control character shown escaped (`\\x1b[31m` stays visible as
    text and does nothing). `multiline=False` escapes newlines and tabs too."""
    return (_MULTI_LINE_RE if multiline else _ONE_LINE_RE).sub(_escape, text)


class TerminalStream(io.TextIOBase):
    """A text stream that writes `for_terminal(text)` to the stream it wraps."""

    def __init__(self, inner: TextIO) -> None:
        super().__init__()
        self.inner = inner

    def write(self, text: str) -> int:
        self.inner.write(for_terminal(text))
        return len(text)

    def flush(self) -> None:
        self.inner.flush()

    def isatty(self) -> bool:
        return self.inner.isatty()

    def fileno(self) -> int:
        return self.inner.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.inner, "encoding", "utf-8") or "utf-8"
