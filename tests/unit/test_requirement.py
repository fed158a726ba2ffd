"""The dependency a generated project gets on yoi-pdk: where the running yoi-pdk was
installed from (PEP 610 direct_url.json), or the version range from an index."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest

from generator.requirement import from_direct_url, index_range, installed_requirement


@pytest.mark.parametrize(
    ("version", "expected"),
    [("0.1.0", "yoi-pdk>=0.1,<0.2"), ("0.12.3", "yoi-pdk>=0.12,<0.13"), ("1.4.0", "yoi-pdk>=1.4,<2"), ("2.0.0rc1", "yoi-pdk>=2.0,<3")],
)
def test_an_index_install_gives_the_usual_range(version: str, expected: str) -> None:
    assert index_range(version) == expected


@pytest.mark.parametrize(
    ("direct_url", "expected"),
    [
        ({"url": "file:///src/yoi-pdk", "dir_info": {"editable": True}}, "yoi-pdk @ file:///src/yoi-pdk"),
        ({"url": "file:///src/yoi-pdk", "dir_info": {}}, "yoi-pdk @ file:///src/yoi-pdk"),
        (
            {"url": "file:///tmp/dist/yoi_pdk-0.1.0-py3-none-any.whl", "archive_info": {"hashes": {"sha256": "ab"}}},
            "yoi-pdk @ file:///tmp/dist/yoi_pdk-0.1.0-py3-none-any.whl",
        ),
        (
            {"url": "https://github.com/example/yoi-pdk.git", "vcs_info": {"vcs": "git", "commit_id": "0123abc", "requested_revision": "main"}},
            "yoi-pdk @ git+https://github.com/example/yoi-pdk.git@0123abc",
        ),
        (
            {"url": "https://example.com/mono.git", "vcs_info": {"vcs": "git", "commit_id": "ff"}, "subdirectory": "py/yoi-pdk"},
            "yoi-pdk @ git+https://example.com/mono.git@ff#subdirectory=py/yoi-pdk",
        ),
        ({}, "yoi-pdk>=0.1,<0.2"),
    ],
)
def test_a_direct_url_install_gives_that_place(direct_url: dict[str, object], expected: str) -> None:
    assert from_direct_url(direct_url, "0.1.0") == expected


def test_this_checkouts_install_gives_what_its_direct_url_says() -> None:
    # The development venv (and CI's) has yoi-pdk installed editable from this checkout.
    root = Path(__file__).resolve().parents[2]
    urls = [json.loads(text)["url"] for d in importlib.metadata.distributions(name="yoi-pdk") if (text := d.read_text("direct_url.json"))]
    assert urls == [root.as_uri()]
    assert installed_requirement() == f"yoi-pdk @ {root.as_uri()}"


def test_a_builds_egg_info_in_the_checkout_does_not_hide_the_install(tmp_path: Path) -> None:
    # Run from the checkout's own folder, `sys.path[0]` is the checkout, where
    # `python -m build` leaves a yoi_pdk.egg-info without direct_url.json.
    root = Path(__file__).resolve().parents[2]
    fake = tmp_path / "yoi_pdk.egg-info"
    fake.mkdir()
    (fake / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: yoi-pdk\nVersion: 0.1.0\n")
    code = "import sys; sys.path.insert(0, sys.argv[1]); from generator.requirement import installed_requirement; print(installed_requirement())"
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=root, capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"yoi-pdk @ {root.as_uri()}"
