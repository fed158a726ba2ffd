"""Where the shipped data (WIT contract, copier templates) lives.

Installed wheels carry them as the data packages `pdk._wit` and
`generator._templates`; a source checkout has them at the top level.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_CHECKOUT_ROOT = Path(__file__).resolve().parent.parent


def _data_dir(package: str, checkout_name: str, marker: str) -> Path:
    candidates: list[Path] = []
    try:
        spec = importlib.util.find_spec(package)
    except ModuleNotFoundError:
        spec = None
    if spec is not None and spec.submodule_search_locations:
        candidates.extend(Path(p) for p in spec.submodule_search_locations)
    candidates.append(_CHECKOUT_ROOT / checkout_name)
    for candidate in candidates:
        if (candidate / marker).exists():
            return candidate
    raise FileNotFoundError(f"yoi-pdk data folder {checkout_name!r} is missing from this installation")


def wit_dir() -> Path:
    """The folder holding `plugin.wit` and `deps/yoi-host/host.wit`."""
    return _data_dir("pdk._wit", "wit", "plugin.wit")


def templates_dir() -> Path:
    """The folder holding the copier templates."""
    return _data_dir("generator._templates", "templates", "copier.yml")
