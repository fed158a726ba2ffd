"""`CompiledComponentCache`: compiled components on disk, loaded in ~1 ms.

Compiling a Python component takes seconds; `Component.deserialize_file` of a
serialized artifact takes about a millisecond (it mmaps the file). Entries are keyed
on (component sha256, engine fingerprint) - an artifact from another wasmtime
version, engine config or compiler tier fails to load or, worse, misbehaves. The
fingerprint names the tier (`pdk.host.engine.Tier`), so the fast and the optimized
code of one component are two entries; `pdk.host.compiler` decides which to use.

Integrity without hashing 30 MiB on every load: each artifact has a sidecar that
records its sha256 and its size, inode and mtime as written. A load whose stat
matches the sidecar is trusted; any mismatch (truncation, rewrite, copy) triggers a
full hash check, and a bad entry is deleted and rebuilt - never loaded. Writers
write to unique temporary files and rename, so concurrent writers cannot interleave.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import wasmtime
from wasmtime.component import Component

from pdk.package.digest import sha256_file

ENV_DIR = "YOI_PDK_CACHE_DIR"
ENV_DISABLE = "YOI_PDK_NO_CACHE"


def default_cache_dir() -> Path | None:
    """`$YOI_PDK_CACHE_DIR`, else `$XDG_CACHE_HOME/yoi-pdk/compiled`, else
    `~/.cache/yoi-pdk/compiled`; None when `$YOI_PDK_NO_CACHE` is set."""
    if os.environ.get(ENV_DISABLE):
        return None
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "yoi-pdk" / "compiled"


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    discarded: int = 0


def _read_source(source: bytes | Path | Callable[[], bytes]) -> bytes:
    return source.read_bytes() if isinstance(source, Path) else source() if callable(source) else source


class CompiledComponentCache:
    """One tier's compiled artifacts in one directory (the fingerprint names the tier)."""

    def __init__(self, directory: Path | None, fingerprint: str) -> None:
        self.directory = directory
        self.fingerprint = fingerprint
        self.stats = CacheStats()
        # Components this process already deserialized and still uses, so loading the
        # same plugin again (or under another id) shares its code and skips the mmap.
        self._loaded: weakref.WeakValueDictionary[tuple[str, int], Component] = weakref.WeakValueDictionary()

    def _paths(self, component_sha256: str) -> tuple[Path, Path]:
        assert self.directory is not None
        key = hashlib.sha256(f"{component_sha256}|{self.fingerprint}".encode()).hexdigest()[:40]
        return self.directory / f"{key}.cwasm", self.directory / f"{key}.json"

    def load(
        self,
        engine: wasmtime.Engine,
        component_bytes_or_path: bytes | Path | Callable[[], bytes],
        component_sha256: str,
    ) -> Component:
        """The compiled component, from the cache when a good entry exists.

        The source may be a callable so the component is only read on a miss."""
        cached = self.try_load(engine, component_sha256)
        if cached is not None:
            return cached
        return self.compile_and_store(engine, _read_source(component_bytes_or_path), component_sha256)

    def has(self, component_sha256: str) -> bool:
        """Whether a good entry exists (without loading it)."""
        if self.directory is None:
            return False
        artifact, sidecar = self._paths(component_sha256)
        return self._entry_is_good(artifact, sidecar)

    def try_load(self, engine: wasmtime.Engine, component_sha256: str) -> Component | None:
        """The cached compiled component, or None (no entry, or a bad one - discarded)."""
        if self.directory is None:
            return None
        artifact, sidecar = self._paths(component_sha256)
        if self._entry_is_good(artifact, sidecar):
            shared = self._loaded.get((component_sha256, id(engine)))
            if shared is not None and getattr(shared, "_yoi_engine", None) is engine:
                self.stats.hits += 1
                return shared
            try:
                component = Component.deserialize_file(engine, str(artifact))
                component._yoi_engine = engine  # type: ignore[attr-defined]  # keeps the id above unique
                self._loaded[(component_sha256, id(engine))] = component
                self.stats.hits += 1
                return component
            except wasmtime.WasmtimeError:
                self._discard(artifact, sidecar)
        return None

    def compile_and_store(self, engine: wasmtime.Engine, data: bytes, component_sha256: str) -> Component:
        """Compile (a miss) and write the artifact when the cache is on.

        Once written, the artifact is what is returned (deserialized, ~1 ms): the
        compile's own code lives in anonymous memory, all of it resident and private
        to this process, while the mmapped artifact's code and memory image are clean
        file pages, resident only where touched and shared with every other process
        that maps it. Later loads of the same component in this process share it."""
        self.stats.misses += 1
        component = Component(engine, data)
        if self.directory is not None:
            artifact, sidecar = self._paths(component_sha256)
            if self._store(component, artifact, sidecar):
                try:
                    mapped = Component.deserialize_file(engine, str(artifact))
                except wasmtime.WasmtimeError:
                    return component
                mapped._yoi_engine = engine  # type: ignore[attr-defined]  # see try_load
                self._loaded[(component_sha256, id(engine))] = mapped
                return mapped
        return component

    def store(self, component: Component, component_sha256: str) -> None:
        """Write an artifact compiled elsewhere (another engine of the same settings)."""
        if self.directory is not None:
            artifact, sidecar = self._paths(component_sha256)
            self._store(component, artifact, sidecar)

    def pending_marker(self, component_sha256: str) -> Path | None:
        """Where a background compile of this entry says it is under way."""
        if self.directory is None:
            return None
        return self._paths(component_sha256)[0].with_suffix(".pending")

    def _entry_is_good(self, artifact: Path, sidecar: Path) -> bool:
        try:
            meta = json.loads(sidecar.read_text())
            st = artifact.stat()
        except FileNotFoundError:
            # No entry, or one being written by another process or thread right now
            # (artifact renamed into place, sidecar not yet): not bad, just not there.
            return False
        except (OSError, ValueError):
            self._discard(artifact, sidecar)
            return False
        if not isinstance(meta, dict) or meta.get("fingerprint") != self.fingerprint:
            self._discard(artifact, sidecar)
            return False
        if meta.get("size") == st.st_size and meta.get("mtime_ns") == st.st_mtime_ns and meta.get("ino") == st.st_ino:
            return True
        # Changed since it was written (or copied here): only a full hash can vouch for it.
        if st.st_size == meta.get("size") and sha256_file(artifact) == meta.get("sha256"):
            self._write_sidecar(artifact, sidecar, meta["sha256"])
            return True
        self._discard(artifact, sidecar)
        return False

    def _discard(self, artifact: Path, sidecar: Path) -> None:
        self.stats.discarded += 1
        for p in (artifact, sidecar):
            try:
                p.unlink()
            except OSError:
                pass

    def _store(self, component: Component, artifact: Path, sidecar: Path) -> bool:
        """Write the artifact and its sidecar; False when the directory refused."""
        try:
            artifact.parent.mkdir(parents=True, exist_ok=True)
            data = bytes(component.serialize())
            fd, tmp = tempfile.mkstemp(dir=artifact.parent, prefix=".tmp-", suffix=".cwasm")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, artifact)
            self._write_sidecar(artifact, sidecar, hashlib.sha256(data).hexdigest())
        except OSError:
            # A read-only or full cache directory only costs speed, never correctness.
            return False
        return True

    def _write_sidecar(self, artifact: Path, sidecar: Path, digest: str) -> None:
        st = artifact.stat()
        meta = {"fingerprint": self.fingerprint, "sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}
        fd, tmp = tempfile.mkstemp(dir=sidecar.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(meta, f)
        os.replace(tmp, sidecar)
