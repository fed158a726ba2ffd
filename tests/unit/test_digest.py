"""The package digest: the published test vector, the streaming form, ordering."""

from __future__ import annotations

import hashlib

import pytest

from pdk.package.digest import (
    DIGEST_DOMAIN,
    is_package_digest,
    package_digest,
    package_digest_from_hashes,
)

VECTOR_FILES = {"plugin.toml": b"x", "a.txt": b""}
VECTOR_DIGEST = "sha256:b2a924c0c3f8aa58049ac4d18a02266446ab30ea30527d1103974d5600d27076"


def _triples(files: dict[str, bytes]) -> list[tuple[str, bytes, int]]:
    return [(path, hashlib.sha256(data).digest(), len(data)) for path, data in files.items()]


def test_published_test_vector() -> None:
    assert package_digest(VECTOR_FILES) == VECTOR_DIGEST


def test_vector_uses_raw_sha256_not_hex() -> None:
    # Spelled out independently of the module: the per-file hash is the raw 32 bytes.
    outer = hashlib.sha256(DIGEST_DOMAIN)
    for path in sorted(VECTOR_FILES, key=str.encode):
        data = VECTOR_FILES[path]
        outer.update(path.encode() + b"\0" + len(data).to_bytes(8, "big") + hashlib.sha256(data).digest())
    assert "sha256:" + outer.hexdigest() == VECTOR_DIGEST


def test_streaming_form_matches_mapping_form() -> None:
    files = {"plugin.toml": b"id = 'x'", "build/plugin.wasm": b"\0asm" * 1000, "README.md": b"hi"}
    assert package_digest_from_hashes(_triples(files)) == package_digest(files)


def test_order_of_input_does_not_matter() -> None:
    triples = _triples({"b": b"2", "a": b"1", "c/d": b"3"})
    assert package_digest_from_hashes(triples) == package_digest_from_hashes(list(reversed(triples)))


def test_paths_are_sorted_by_utf8_bytes() -> None:
    files = {"é.txt": b"1", "z.txt": b"2", "Z.txt": b"3", "plugin.toml": b"4"}
    outer = hashlib.sha256(DIGEST_DOMAIN)
    for path in sorted(files, key=lambda p: p.encode("utf-8")):
        data = files[path]
        outer.update(path.encode() + b"\0" + len(data).to_bytes(8, "big") + hashlib.sha256(data).digest())
    assert package_digest(files) == "sha256:" + outer.hexdigest()


def test_content_path_and_size_all_change_the_digest() -> None:
    base = package_digest({"plugin.toml": b"x"})
    assert package_digest({"plugin.toml": b"y"}) != base
    assert package_digest({"plugin.tom": b"x"}) != base
    assert package_digest({"plugin.toml": b"x", "a": b""}) != base


def test_printed_form() -> None:
    assert is_package_digest(VECTOR_DIGEST)
    assert not is_package_digest(VECTOR_DIGEST.upper())
    assert not is_package_digest("sha256:abc")
    assert not is_package_digest(VECTOR_DIGEST[len("sha256:") :])


@pytest.mark.parametrize(
    "triples",
    [
        [("a", b"\0" * 32, 0), ("a", b"\0" * 32, 0)],
        [("a\0b", b"\0" * 32, 0)],
        [("", b"\0" * 32, 0)],
        [("a", b"\0" * 31, 0)],
        [("a", b"\0" * 32, -1)],
    ],
)
def test_streaming_form_rejects_impossible_inputs(triples: list[tuple[str, bytes, int]]) -> None:
    with pytest.raises(ValueError):
        package_digest_from_hashes(triples)
