"""A project's `.copier-answers.yml`: read it, and rewrite the keys that say where the
project's template came from (`_src_path`, `_commit`) in copier's own format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

ANSWERS_FILE = ".copier-answers.yml"


class AnswersError(Exception):
    """The answers file is missing or is not a YAML mapping."""


def read_answers(project: Path) -> dict[str, Any]:
    path = project / ANSWERS_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AnswersError(f"{project} has no {ANSWERS_FILE}: it was not generated from the yoi-pdk templates (pdk new or copier copy)") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise AnswersError(f"{path}: cannot read it ({type(exc).__name__}); restore it from git") from None
    if not isinstance(data, dict):
        raise AnswersError(f"{path}: expected a mapping of answers; restore it from git")
    return data


def write_answers(project: Path, updates: dict[str, Any]) -> None:
    """Set `updates` in the answers file, keeping its leading comment, in the layout the
    template writes it (`to_nice_yaml`: sorted keys, indent 4)."""
    path = project / ANSWERS_FILE
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    header = "".join(lines[: next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))])
    data = {**read_answers(project), **updates}
    body = yaml.dump(data, indent=4, allow_unicode=True, default_flow_style=False)
    path.write_text(header + body, encoding="utf-8")
