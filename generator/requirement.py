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


def installed_requirement() -> str:
    """The requirement for the yoi-pdk running this code."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        # Run from a checkout that is not installed (e.g. `python -m pdk.cli` in it).
        if (_CHECKOUT_ROOT / "pyproject.toml").is_file():
            return f"{DISTRIBUTION} @ {_CHECKOUT_ROOT.as_uri()}"
        from pdk import __version__

        return index_range(__version__)
    text = dist.read_text("direct_url.json")
    if not text:
        return index_range(dist.version)
    try:
        direct_url = json.loads(text)
    except ValueError:
        return index_range(dist.version)
    return from_direct_url(direct_url if isinstance(direct_url, dict) else {}, dist.version)
