"""`PdkError`, the base of every error the host side raises or returns as a
document, and `PackageError`, the one exception type of package reading, digesting
and packing.

`PdkError` lives here, in the package layer, so that `pdk.package`, `pdk.host`,
`generator` and `pdk.cli` can all derive from it (the guest's own errors are in
`pdk.errors`). Every one has a snake_case `code`, a `message` and `to_json()`; the
CLI maps them all to exit codes in one place (`pdk.cli._exit`).

Package codes (snake_case, stable; shown in `pdk check` JSON):

- `not_a_zip` — the file is not a readable ZIP archive.
- `unreadable` — the file or directory could not be read (permissions, I/O).
- `too_many_entries` — more entries than `PACKAGE_MAX_ENTRIES` (or a central
  directory larger than that many entries can need).
- `bad_path` — empty, control characters, backslash, `.`/empty segments,
  non-ASCII name without the ZIP UTF-8 flag, not encodable as UTF-8.
- `absolute_path` — leading `/` or a drive letter (`C:`).
- `path_traversal` — a `..` segment.
- `path_too_long` — more than `PACKAGE_MAX_PATH_LEN` UTF-8 bytes.
- `duplicate_entry` — the same path twice, also after Unicode/case normalization,
  or a path that is both a file and a directory.
- `symlink` — a symlink entry (archive) or a symlink on the way (directory).
- `not_regular_file` — a device, FIFO, socket or directory where a file is expected.
- `encrypted` — an encrypted entry.
- `unsupported_compression` — a compression method other than stored/deflated.
- `entry_too_large` — one file larger than `PACKAGE_MAX_FILE_BYTES`.
- `expansion_bomb` — the declared or the really read bytes exceed the total bound,
  or an entry inflates beyond its declared size.
- `package_too_large` — a directory's files together exceed `PACKAGE_MAX_TOTAL_BYTES`.
- `overlapping_entries` — two entries share archive bytes (the overlap zip bomb).
- `corrupt_entry` — local header disagrees with the central directory, truncated
  or malformed data, fewer bytes than declared.
- `bad_crc` — the CRC-32 of the content does not match the archive.
- `missing_manifest` — no `plugin.toml` at the root.
- `missing_file` — a file the caller (or the manifest) names does not exist.
- `changed_on_disk` — a file's content changed between checking and reading it.
- `bad_manifest` — `pack` could not read the id/version/component it needs.
- `bad_output` — `pack` was asked to write over one of the package's own files.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, ClassVar

# Bounds keep hostile names (an archive entry name can be 64 KiB) out of logs and JSON.
MESSAGE_MAX_CHARS = 400
SHOWN_NAME_MAX_CHARS = 120


def show(name: str) -> str:
    """A quoted, escaped, length-bounded rendering of an untrusted name for a message.

    `repr` escapes control characters and newlines, so a message stays on one line."""
    if len(name) > SHOWN_NAME_MAX_CHARS:
        return repr(name[:SHOWN_NAME_MAX_CHARS]) + "…"
    return repr(name)


def _one_line(message: str) -> str:
    flat = " ".join(message.split())
    if len(flat) > MESSAGE_MAX_CHARS:
        flat = flat[: MESSAGE_MAX_CHARS - 1] + "…"
    return flat


class PdkError(Exception):
    """An error the user, the author or the operator can act on (never a bug).

    `code` is a stable snake_case reason (a `str` or a `str`-valued enum); `message`
    says what is wrong, without the location prefix `str()` may add. Subclasses add
    their own fields to the document by overriding `json_fields`."""

    default_code: ClassVar[str] = "failed"

    def __init__(self, message: str, *, code: str | Enum | None = None, text: str | None = None) -> None:
        super().__init__(message if text is None else text)
        self.message = message
        self.code: Any = code if code is not None else self.default_code

    @property
    def code_text(self) -> str:
        """`code` as its snake_case string (the value of an enum member)."""
        return str(self.code.value if isinstance(self.code, Enum) else self.code)

    def json_fields(self) -> dict[str, Any]:
        """Extra fields of the JSON document (none by default)."""
        return {}

    def to_json(self) -> dict[str, Any]:
        """The snake_case JSON document: `{"code", "message", ...json_fields()}`."""
        return {"code": self.code_text, "message": self.message, **self.json_fields()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code_text!r})"


class PackageError(PdkError):
    """A package (directory or `.yoi-plugin` archive) that cannot be used as-is.

    `code` is one of the snake_case codes listed in this module's docstring;
    `message` is one bounded line naming the offending entry; `entry` is the
    (bounded) entry name when there is one."""

    def __init__(self, message: str, *, code: str, entry: str | None = None) -> None:
        super().__init__(_one_line(message), code=code)
        self.entry = entry[: SHOWN_NAME_MAX_CHARS * 2] if entry is not None else None

    def json_fields(self) -> dict[str, Any]:
        return {} if self.entry is None else {"entry": self.entry}

    def to_dict(self) -> dict[str, Any]:
        """The snake_case JSON shape used by `pdk check` (same as `to_json`)."""
        return self.to_json()
