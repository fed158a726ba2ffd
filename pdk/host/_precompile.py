"""`python -m pdk.host._precompile`: fill the compile cache with optimized code, detached.

Started by `pdk.host.compiler.Compiler` (upgrade `process`) after a short command
loaded fast-tier code, so the next run finds Cranelift code. It runs at the lowest
CPU priority, reopens the package itself (a directory or a `.yoi-plugin`), compiles
only if the component still has the sha256 it was started for (a rebuild since
makes the job moot), and removes its pending marker at the end. It prints nothing;
every failure just leaves the cache as it was.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pdk.host._precompile")
    parser.add_argument("package")
    parser.add_argument("--cache-dir", required=True)
    parser.add_argument("--sha256", required=True)
    parser.add_argument("--fuel", type=int, default=0)
    parser.add_argument("--marker", default=None)
    args = parser.parse_args(argv)
    try:
        os.nice(19)
    except OSError:
        pass
    try:
        from .compiler import precompile
        from .loader import open_package

        package = open_package(args.package)
        entry = package.files.entry(package.manifest.runtime.component)
        if entry.sha256.hex() != args.sha256:
            return 0
        precompile(package.component_bytes(), args.sha256, Path(args.cache_dir), consume_fuel=bool(args.fuel))
        return 0
    except Exception:  # noqa: BLE001 - a background job has no one to tell
        return 1
    finally:
        if args.marker:
            try:
                Path(args.marker).unlink()
            except OSError:
                pass


if __name__ == "__main__":
    sys.exit(main())
