"""How a generated project depends on yoi-pdk: the requirement that resolves for the
user who generated it.

yoi-pdk is not on a package index, so `yoi-pdk>=0.1,<0.2` alone does not install
anywhere. The installed distribution says where it came from (PEP 610's
`direct_url.json`): a checkout (editable or not), a wheel or sdist file, or a VCS URL.
The project then depends on that same place; a distribution installed from an index
(no `direct_url.json`) gives the usual version range.
"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import Any

DISTRIBUTION = "yoi-pdk"
_CHECKOUT_ROOT = Path(__file__).resolve().parent.parent


def index_range(version: str) -> str:
    """`yoi-pdk>=X.Y,<X.(Y+1)` for 0.x (minor releases may break), `<(X+1)` from 1.0."""
    parts = [int(p) for p in version.split(".")[:2] if p.isdigit()]
    major, minor = (parts + [0, 0])[:2]
    upper = f"{major}.{minor + 1}" if major == 0 else f"{major + 1}"
    return f"{DISTRIBUTION}>={major}.{minor},<{upper}"


def from_direct_url(direct_url: dict[str, Any], version: str) -> str:
    """The requirement for a distribution installed from `direct_url` (PEP 610)."""
    url = direct_url.get("url")
    if not isinstance(url, str) or not url:
        return index_range(version)
    vcs = direct_url.get("vcs_info")
    if isinstance(vcs, dict) and isinstance(vcs.get("vcs"), str):
        ref = vcs.get("commit_id") or vcs.get("requested_revision")
        subdir = direct_url.get("subdirectory")
        tail = f"@{ref}" if isinstance(ref, str) and ref else ""
        fragment = f"#subdirectory={subdir}" if isinstance(subdir, str) and subdir else ""
        return f"{DISTRIBUTION} @ {vcs['vcs']}+{url}{tail}{fragment}"
    # dir_info (a checkout, editable or not) or archive_info (a wheel or sdist file).
    return f"{DISTRIBUTION} @ {url}"


def _direct_url(dist: importlib.metadata.Distribution) -> dict[str, Any] | None:
    text = dist.read_text("direct_url.json")
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def installed_requirement() -> str:
    """The requirement for the yoi-pdk running this code.

    The distribution is matched to the running code, not just found by name: a checkout
    run from its own folder also has a `yoi_pdk.egg-info` left by builds, first on
    `sys.path`, which says nothing about how yoi-pdk was installed."""
    here = _CHECKOUT_ROOT  # the folder holding generator/: a checkout, or site-packages
    located: list[importlib.metadata.Distribution] = []
    for dist in importlib.metadata.distributions(name=DISTRIBUTION):
        direct = _direct_url(dist)
        if direct is not None and direct.get("url") == here.as_uri() and isinstance(direct.get("dir_info"), dict):
            return from_direct_url(direct, dist.version)  # installed from this very folder (editable or not)
        if Path(str(dist.locate_file(""))).resolve() == here:
            located.append(dist)
    if (here / "pyproject.toml").is_file():
        # A checkout, run in place (not installed, or only a build's egg-info next to it).
        return f"{DISTRIBUTION} @ {here.as_uri()}"
    for dist in located:  # the dist-info next to the running code (site-packages)
        direct = _direct_url(dist)
        return from_direct_url(direct, dist.version) if direct is not None else index_range(dist.version)
    from pdk import __version__

    return index_range(__version__)
