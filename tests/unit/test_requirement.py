"""The dependency a generated project gets on yoi-pdk: where the running yoi-pdk was
installed from (PEP 610 direct_url.json), or the version range from an index."""

from __future__ import annotations

import importlib.metadata
import json
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
    text = importlib.metadata.distribution("yoi-pdk").read_text("direct_url.json")
    assert text is not None
    assert json.loads(text)["url"] == Path(__file__).resolve().parents[2].as_uri()
    assert installed_requirement() == f"yoi-pdk @ {Path(__file__).resolve().parents[2].as_uri()}"
