"""`pdk new`: a new plugin project from the copier templates shipped with yoi-pdk.

A thin wrapper over `copier.run_copy`: the same templates and questions as
`copier copy <templates> DEST`, with the kind given up front and two refusals copier
does not make on its own (a non-empty destination, an answer to a question the
template does not ask). Two answers are pdk's own: `yoi_pdk`, the dependency on the
yoi-pdk running it (generator/requirement.py), and `_commit: vX.Y.Z`, the template
version, so that `pdk upgrade` knows what to merge from (generator/upgrade.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml  # type: ignore[import-untyped]

from pdk._contract import PLUGIN_KINDS
from pdk.package.errors import PdkError

from ._resources import templates_dir
from .answers import write_answers
from .requirement import installed_requirement
from .template_repo import TAG_PREFIX, tree_version

KINDS = PLUGIN_KINDS


class ScaffoldError(PdkError):
    """A request `pdk new` refuses (the user's to fix); one line, no traceback."""

    default_code = "scaffold_refused"


@dataclass(frozen=True)
class Scaffold:
    kind: str
    path: Path
    answers: dict[str, Any]


def template_version() -> str:
    """The version of the templates shipped with this yoi-pdk."""
    return tree_version(templates_dir())


def questions(kind: str) -> dict[str, dict[str, Any]]:
    """The questions the kind's template asks (hidden values left out), in order."""
    config = yaml.safe_load((templates_dir() / kind / "copier.yml").read_text(encoding="utf-8"))
    return {
        name: spec if isinstance(spec, dict) else {"default": spec}
        for name, spec in config.items()
        if not name.startswith("_") and not (isinstance(spec, dict) and spec.get("when") is False)
    }


def _check_destination(dest: Path, force: bool) -> None:
    if dest.exists() and not dest.is_dir():
        raise ScaffoldError(f"{dest} exists and is not a directory")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise ScaffoldError(f"{dest} is not empty; choose a new directory, or pass --force to write into it (existing files with the same names are overwritten)")


def _check_data(kind: str, data: Mapping[str, str]) -> None:
    if "plugin_kind" in data:
        raise ScaffoldError(f"the kind is given as `pdk new {kind} ...`; drop --data plugin_kind=...")
    asked = questions(kind)
    unknown = sorted(set(data) - set(asked))
    if unknown:
        raise ScaffoldError(f"the {kind} template has no question {unknown[0]!r} (its questions: {', '.join(asked)})")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def new_project(kind: str, dest: str | Path, data: Mapping[str, str] | None = None, *, defaults: bool = False, force: bool = False) -> Scaffold:
    """Render the `kind` template into `dest`. `defaults=True` takes the default of
    every question not answered in `data` instead of asking. Raises `ScaffoldError`."""
    import copier
    from copier.errors import CopierAnswersInterrupt, CopierError

    if kind not in KINDS:
        raise ScaffoldError(f"unknown plugin kind {kind!r} (one of: {', '.join(KINDS)})")
    data = dict(data or {})
    dest = Path(dest)
    _check_destination(dest, force)
    _check_data(kind, data)
    try:
        worker = copier.run_copy(
            str(templates_dir()),
            str(dest),
            data={"plugin_kind": kind, "yoi_pdk": installed_requirement(), **data},
            defaults=defaults,
            overwrite=force,
            unsafe=False,  # the templates need no tasks, migrations or extensions
            quiet=True,
        )
    except CopierAnswersInterrupt:
        raise ScaffoldError("interrupted; nothing was answered") from None
    except (ValueError, CopierError) as exc:
        # Validator failures arrive as ValueError("Validation error for question 'x': <message>").
        raise ScaffoldError(_one_line(exc)) from None
    write_answers(dest, {"_commit": f"{TAG_PREFIX}{template_version()}"})
    answers = {k: v for k, v in worker.answers.combined.items() if k in questions(kind)}
    return Scaffold(kind, dest, answers)
