"""The package digest: one hash over a package's files, independent of how they are stored.

sha256 over `b"yoi-plugin-package-digest-v1\\0"`, then for each file in byte-sorted
path order: `path + b"\\0" + len(content) as 8-byte big-endian + sha256(content)`
(the raw 32-byte digest, not its hex). Printed as `sha256:<lowercase hex>`.

It covers file paths and contents only (no timestamps, modes or ZIP framing), so a
plugin directory and the `.yoi-plugin` archive packed from it hash the same. This is
the value grants pin, so the algorithm must never change under the `-v1` domain.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from collections.abc import Iterable, Mapping

DIGEST_DOMAIN = b"yoi-plugin-package-digest-v1\0"
DIGEST_PREFIX = "sha256:"
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_SHA256_LEN = 32
_MAX_SIZE = 1 << 64  # the size field is 8 bytes


def package_digest(files: Mapping[str, bytes]) -> str:
    """Digest of in-memory files (`path -> content`)."""
    return package_digest_from_hashes(
        (path, hashlib.sha256(content).digest(), len(content)) for path, content in files.items()
    )


def package_digest_from_hashes(entries: Iterable[tuple[str, bytes, int]]) -> str:
    """Digest from `(path, sha256_bytes, size)` triples, in any order.

    Lets readers hash large files in chunks instead of keeping them in memory.
    Raises `ValueError` for inputs no valid package can produce (duplicate or
    NUL-containing paths, a hash that is not 32 raw bytes, a negative size)."""
    records: dict[bytes, tuple[bytes, int]] = {}
    for path, sha, size in entries:
        key = _path_bytes(path)
        if key in records:
            raise ValueError(f"duplicate path in package digest: {path!r}")
        if len(sha) != _SHA256_LEN:
            raise ValueError(f"sha256 of {path!r} must be {_SHA256_LEN} raw bytes, got {len(sha)}")
        if not 0 <= size < _MAX_SIZE:
            raise ValueError(f"size of {path!r} out of range: {size}")
        records[key] = (bytes(sha), size)
    outer = hashlib.sha256(DIGEST_DOMAIN)
    for key in sorted(records):  # bytes sort = byte-sorted path order
        sha, size = records[key]
        outer.update(key + b"\0" + size.to_bytes(8, "big") + sha)
    return DIGEST_PREFIX + outer.hexdigest()


def is_package_digest(text: str) -> bool:
    """True for the printed form `sha256:<64 lowercase hex>` (as grants carry it)."""
    return _DIGEST_RE.fullmatch(text) is not None


def _path_bytes(path: str) -> bytes:
    # A NUL inside a path would let two different file lists frame to the same bytes.
    if not path or "\0" in path:
        raise ValueError(f"invalid path in package digest: {path!r}")
    return path.encode("utf-8")


def sha256_file(path: Path) -> str:
    """The plain sha256 (lowercase hex) of a file, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
